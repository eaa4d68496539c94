// Package publish publishes container ports on the external network (the
// CNI portMappings capability: `podman run -p 8080:80`, CRI hostPort).
//
// A published port answers on the external address of the router of the
// container's network (its gateway's IP), at hostPort: one Load_Balancer
// per mapping, VIP "EXTERNAL_IP:HOSTPORT" -> "CONTAINER_IP:CONTAINERPORT",
// attached to the router, so OVN's gateway node does the DNAT and the
// container sees the client's real address (no SNAT). The load balancer is
// named "published:IP:PORT/PROTO", which makes an address, port and
// protocol publishable once: a second container asking for it is refused.
// Rows are owned (kind "published-port", ovlmgr.io/port = the container's
// Logical_Switch_Port) and go with the port (ReleasePort: CNI DEL, GC).
//
// On a dual-stack gateway a mapping is published per family that both the
// gateway and the container have: hostIP "" or "::" publishes on both
// external addresses (what `podman run -p 8080:80` sends: one mapping
// with an empty hostIP, which the portmap plugin installs for both
// families), "0.0.0.0" or the IPv4 external address on IPv4 only, the
// IPv6 external address on IPv6 only. An IPv6 load balancer is named
// "published:[IP]:PORT/PROTO", its VIP "[IP]:PORT".
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Errors callers test with errors.Is.
var (
	// ErrConflict: the address, port and protocol are published already.
	ErrConflict = errors.New("host port already published")
	// ErrRefused: the mapping cannot be published (bad values, a hostIP
	// other than the published address, no router or no gateway).
	ErrRefused = errors.New("port mapping refused")
)

// Keys of a published port's external_ids besides the owner keys.
const (
	KeyHostPort      = "ovlmgr.io/host-port"
	KeyContainerPort = "ovlmgr.io/container-port"
	KeyProtocol      = "ovlmgr.io/protocol"
	KeyAddress       = "ovlmgr.io/address"
	KeyBackend       = "ovlmgr.io/backend"
)

// Mapping is one entry of runtimeConfig.portMappings.
type Mapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// String is "HOSTPORT:CONTAINERPORT/PROTO" (with "HOSTIP:" first if given).
func (m Mapping) String() string {
	s := fmt.Sprintf("%d:%d/%s", m.HostPort, m.ContainerPort, proto(m.Protocol))
	if m.HostIP != "" {
		h := m.HostIP
		if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
			h = "[" + h + "]"
		}
		s = h + ":" + s
	}
	return s
}

// Proto is the mapping's protocol, lower case, tcp when empty.
func (m Mapping) Proto() string { return proto(m.Protocol) }

func proto(p string) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(p)
}

// Check validates mappings without reading anything: ports 1-65535, a
// protocol of tcp, udp or sctp, a hostIP that is an IP address, and no
// host port mapped twice to different container ports. Errors are
// *names.FieldError on "portMappings" wrapping ErrRefused.
func Check(mappings []Mapping) error {
	seen := map[string]Mapping{}
	for _, m := range mappings {
		bad := func(f string, a ...any) error {
			return names.Bad("portMappings", names.Shown(m.String()), "%w: "+f, append([]any{ErrRefused}, a...)...)
		}
		if m.HostPort < 1 || m.HostPort > 65535 {
			return bad("hostPort %d: allowed 1..65535", m.HostPort)
		}
		if m.ContainerPort < 1 || m.ContainerPort > 65535 {
			return bad("containerPort %d: allowed 1..65535", m.ContainerPort)
		}
		switch proto(m.Protocol) {
		case "tcp", "udp", "sctp":
		default:
			return bad("protocol %q: allowed tcp, udp, sctp", m.Protocol)
		}
		if m.HostIP != "" {
			if _, err := netip.ParseAddr(m.HostIP); err != nil {
				return bad("hostIP %q: not an IP address", m.HostIP)
			}
		}
		k := fmt.Sprintf("%d/%s", m.HostPort, proto(m.Protocol))
		if o, ok := seen[k]; ok && o.ContainerPort != m.ContainerPort {
			return bad("host port %s is also mapped to container port %d", k, o.ContainerPort)
		}
		seen[k] = m
	}
	return nil
}

// Spec is a container interface whose ports to publish.
type Spec struct {
	Network   string
	Port      string // the container's Logical_Switch_Port
	Container string
	IfName    string
	Node      string
	IP        netip.Addr // the container's IPv4 address (invalid on an IPv6-only network)
	IP6       netip.Addr // the container's IPv6 address (invalid without IPv6)
	Mappings  []Mapping
}

// Published is one published port.
type Published struct {
	Address       netip.Addr `json:"address"`
	HostPort      int        `json:"hostPort"`
	Protocol      string     `json:"protocol"`
	ContainerPort int        `json:"containerPort"`
	Backend       netip.Addr `json:"backend"`
	Router        string     `json:"router"`
	Network       string     `json:"network"`
	Container     string     `json:"container"`
	IfName        string     `json:"ifname"`
	Port          string     `json:"port"`
	UUID          string     `json:"uuid"`
}

// String is "ADDRESS:HOSTPORT/PROTO -> BACKEND:CONTAINERPORT" (IPv6
// addresses in brackets).
func (p Published) String() string {
	return fmt.Sprintf("%s/%s -> %s", hostPort(p.Address, p.HostPort), p.Protocol, hostPort(p.Backend, p.ContainerPort))
}

// hostPort is "IP:PORT", "[IP]:PORT" for IPv6 (an OVN VIP or backend).
func hostPort(ip netip.Addr, port int) string {
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

// LBName is the Load_Balancer name of address:hostPort/protocol.
func LBName(addr netip.Addr, port int, protocol string) string {
	return fmt.Sprintf("published:%s/%s", hostPort(addr, port), proto(protocol))
}

// Publish publishes s.Mappings on the external address of the router of
// s.Network, all in one transaction: all or none. Duplicate mappings are
// published once. A hostIP other than "", 0.0.0.0, :: or the published
// address is refused (ErrRefused), as is a network without router or
// gateway; an address:port/protocol published already is ErrConflict,
// naming the container holding it. Nothing is written on error.
func Publish(ctx context.Context, nb client.Client, s Spec) ([]Published, error) {
	if len(s.Mappings) == 0 {
		return nil, nil
	}
	if err := Check(s.Mappings); err != nil {
		return nil, err
	}
	n, err := network.Lookup(ctx, nb, s.Network)
	if err != nil {
		return nil, fmt.Errorf("publish ports: %w", err)
	}
	if n.Router == "" {
		return nil, names.Bad("portMappings", names.Shown(s.Mappings[0].String()), "%w: network %q is on no router; published ports answer on a router gateway's external address (ovlmgr router attach, ovlmgr router gateway set)", ErrRefused, n.Name)
	}
	gw, err := gateway.Get(ctx, nb, n.Router)
	if errors.Is(err, gateway.ErrNoGateway) {
		return nil, names.Bad("portMappings", names.Shown(s.Mappings[0].String()), "%w: network %q is on router %q, which has no gateway (ovlmgr router gateway set %s ...)", ErrRefused, n.Name, n.Router, n.Router)
	}
	if err != nil {
		return nil, fmt.Errorf("publish ports: %w", err)
	}
	// Unique (mapping, family) pairs, in a stable order.
	uniq := map[string]Mapping{}
	addrOf := map[string]netip.Addr{} // the external address of each
	backendOf := map[string]netip.Addr{}
	for _, m := range s.Mappings {
		on, err := families(m, gw, s, n.Name)
		if err != nil {
			return nil, err
		}
		for _, six := range on {
			addr, backend := gw.ExternalIP, s.IP
			if six {
				addr, backend = gw.ExternalIP6, s.IP6
			}
			k := LBName(addr, m.HostPort, m.Protocol)
			uniq[k], addrOf[k], backendOf[k] = m, addr, backend
		}
	}
	keys := make([]string, 0, len(uniq))
	for k := range uniq {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Taken already? One read of the few names.
	tx := dbops.NewTx(nb)
	var qs []*dbops.Result[nbdb.LoadBalancer]
	for _, k := range keys {
		qs = append(qs, dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(k)}, func(m *nbdb.LoadBalancer) []any { return []any{&m.UUID, &m.Name, &m.ExternalIDs} }))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("publish ports: %w", err)
	}
	// A holder whose container port is gone (removed without CNI DEL,
	// e.g. by net delete --force) is stale: its load balancer goes in
	// the same transaction, guarded on the port staying absent.
	stale := map[string]*nbdb.LoadBalancer{}
	for i, q := range qs {
		rows, err := q.Rows()
		if err != nil {
			return nil, fmt.Errorf("publish ports: %w", err)
		}
		if len(rows) == 0 {
			continue
		}
		gone, err := holderGone(ctx, nb, rows[0])
		if err != nil {
			return nil, fmt.Errorf("publish ports: %w", err)
		}
		if !gone {
			return nil, conflict(uniq[keys[i]], addrOf[keys[i]], rows[0])
		}
		stale[keys[i]] = rows[0]
	}
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs(n.Router)}, func(m *nbdb.LogicalRouter) []any { return []any{&m.UUID} })
	if err != nil || len(lrs) != 1 {
		return nil, fmt.Errorf("publish ports: read router %q: %d rows, %v", n.Router, len(lrs), err)
	}
	tx = dbops.NewTx(nb)
	var staleGuards []*dbops.Op
	for _, lb := range stale {
		port := lb.ExternalIDs[owner.KeyPort]
		staleGuards = append(staleGuards, dbops.Typed[nbdb.LogicalSwitchPort](tx).None([]ovsdb.Condition{dbops.NameIs(port)}, "name", port))
		removeOps(tx, lb.UUID)
	}
	var guards []*dbops.Op
	var ins []*dbops.Op
	var out []Published
	for i, k := range keys {
		m, addr, backend := uniq[k], addrOf[k], backendOf[k]
		pr := proto(m.Protocol)
		lb := &nbdb.LoadBalancer{UUID: fmt.Sprintf("newpub%d", i), Name: k, Protocol: &pr,
			Vips: map[string]string{hostPort(addr, m.HostPort): hostPort(backend, m.ContainerPort)},
			ExternalIDs: owner.IDs(owner.KindPublished, fmt.Sprintf("%s/%s", hostPort(addr, m.HostPort), pr), map[string]string{
				owner.KeyPort: s.Port, owner.KeyContainer: s.Container, owner.KeyIfName: s.IfName, owner.KeyNetwork: s.Network,
				owner.KeyRouter: n.Router, owner.KeyNode: s.Node, KeyHostPort: strconv.Itoa(m.HostPort),
				KeyContainerPort: strconv.Itoa(m.ContainerPort), KeyProtocol: pr, KeyAddress: addr.String(), KeyBackend: backend.String()})}
		guards = append(guards, dbops.Typed[nbdb.LoadBalancer](tx).None([]ovsdb.Condition{dbops.NameIs(k)}, "name", k))
		ins = append(ins, tx.Create(lb))
		dbops.Typed[nbdb.LogicalRouter](tx).AddRefs(dbops.ByUUID(lrs[0].UUID), "load_balancer", lb.UUID)
		out = append(out, Published{Address: addr, HostPort: m.HostPort, Protocol: pr, ContainerPort: m.ContainerPort, Backend: backend,
			Router: n.Router, Network: s.Network, Container: s.Container, IfName: s.IfName, Port: s.Port})
	}
	alive := dbops.Typed[nbdb.LogicalSwitchPort](tx).Exists([]ovsdb.Condition{dbops.NameIs(s.Port)}, "name", s.Port)
	err = tx.Transact(ctx)
	for _, g := range staleGuards {
		if g.Failed(err) {
			return nil, fmt.Errorf("publish ports: a stale holder's container port came back meanwhile; retry")
		}
	}
	for i, g := range guards {
		if g.Failed(err) {
			return nil, names.Bad("portMappings", names.Shown(uniq[keys[i]].String()), "%w: %s/%s was published by another container meanwhile", ErrConflict, hostPort(addrOf[keys[i]], uniq[keys[i]].HostPort), proto(uniq[keys[i]].Protocol))
		}
	}
	if alive.Failed(err) {
		return nil, fmt.Errorf("publish ports: port %s went away meanwhile", s.Port)
	}
	if err != nil {
		return nil, fmt.Errorf("publish ports: %w", err)
	}
	for i := range out {
		out[i].UUID = ins[i].UUID()
	}
	return out, nil
}

// removeOps adds to tx the removal of load balancer uuid: the router's
// (and any switch's) reference first, as a referenced root row cannot be
// deleted, then the row.
func removeOps(tx *dbops.Tx, uuid string) {
	dbops.Typed[nbdb.LogicalRouter](tx).DelRefs([]ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(uuid))}, "load_balancer", uuid)
	dbops.Typed[nbdb.LogicalSwitch](tx).DelRefs([]ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(uuid))}, "load_balancer", uuid)
	dbops.Typed[nbdb.LoadBalancer](tx).Delete(dbops.ByUUID(uuid))
}

// holderGone reports whether lb is our published port of a container port
// that no longer exists (an indexed select of the port by name).
func holderGone(ctx context.Context, nb client.Client, lb *nbdb.LoadBalancer) (bool, error) {
	port := lb.ExternalIDs[owner.KeyPort]
	if !owner.Owned(lb.ExternalIDs, owner.KindPublished) || port == "" {
		return false, nil
	}
	n, err := dbops.Count[nbdb.LogicalSwitchPort](ctx, nb, []ovsdb.Condition{dbops.NameIs(port)})
	return n == 0, err
}

// conflict names who holds a published address:port.
func conflict(m Mapping, addr netip.Addr, lb *nbdb.LoadBalancer) error {
	ids := lb.ExternalIDs
	who := "a load balancer not made by ovlmgr"
	if owner.Owned(ids, owner.KindPublished) {
		who = fmt.Sprintf("container %.12s (port %s, network %s)", ids[owner.KeyContainer], ids[owner.KeyPort], ids[owner.KeyNetwork])
	}
	return names.Bad("portMappings", names.Shown(m.String()), "%w: %s/%s is published already, by %s", ErrConflict, hostPort(addr, m.HostPort), proto(m.Protocol), who)
}

// families returns where mapping m is published: false for the IPv4
// external address, true for the IPv6 one. hostIP "" or "::" means every
// family both the gateway and the container have; "0.0.0.0" or the IPv4
// external address IPv4, the IPv6 external address IPv6. Anything else,
// or a family one side lacks, is refused (ErrRefused).
func families(m Mapping, gw *gateway.Gateway, s Spec, network string) ([]bool, error) {
	has4 := gw.ExternalIP.IsValid() && s.IP.IsValid()
	has6 := gw.ExternalIP6.IsValid() && s.IP6.IsValid()
	bad := func(f string, a ...any) error {
		return names.Bad("portMappings", names.Shown(m.String()), "%w: "+f, append([]any{ErrRefused}, a...)...)
	}
	lacks := func(six bool) error {
		fam, gwHas := "IPv4", gw.ExternalIP.IsValid()
		if six {
			fam, gwHas = "IPv6", gw.ExternalIP6.IsValid()
		}
		if !gwHas {
			return bad("router %q's gateway has no %s external address (ovlmgr router gateway show %s)", gw.Router, fam, gw.Router)
		}
		return bad("the container has no %s address on network %q", fam, network)
	}
	want := func(six bool) ([]bool, error) {
		if (six && !has6) || (!six && !has4) {
			return nil, lacks(six)
		}
		return []bool{six}, nil
	}
	h, _ := netip.ParseAddr(m.HostIP)
	switch {
	case m.HostIP == "" || h == netip.IPv6Unspecified():
		var on []bool
		if has4 {
			on = append(on, false)
		}
		if has6 {
			on = append(on, true)
		}
		if len(on) == 0 {
			if s.IP.IsValid() {
				return nil, lacks(false)
			}
			return nil, lacks(true)
		}
		return on, nil
	case h == netip.IPv4Unspecified() || (gw.ExternalIP.IsValid() && h == gw.ExternalIP):
		return want(false)
	case gw.ExternalIP6.IsValid() && h == gw.ExternalIP6:
		return want(true)
	}
	var addrs []string
	for _, a := range []netip.Addr{gw.ExternalIP, gw.ExternalIP6} {
		if a.IsValid() {
			addrs = append(addrs, a.String())
		}
	}
	allowed := strings.Join(addrs, " or ")
	return nil, bad("hostIP %s: published ports answer on router %q's external address %s only; leave hostIP empty or give %s", h, gw.Router, allowed, allowed)
}

// fromRow reads a published port from its load balancer.
func fromRow(lb *nbdb.LoadBalancer) Published {
	ids := lb.ExternalIDs
	p := Published{Protocol: ids[KeyProtocol], Router: ids[owner.KeyRouter], Network: ids[owner.KeyNetwork],
		Container: ids[owner.KeyContainer], IfName: ids[owner.KeyIfName], Port: ids[owner.KeyPort], UUID: lb.UUID}
	p.Address, _ = netip.ParseAddr(ids[KeyAddress])
	p.Backend, _ = netip.ParseAddr(ids[KeyBackend])
	p.HostPort, _ = strconv.Atoi(ids[KeyHostPort])
	p.ContainerPort, _ = strconv.Atoi(ids[KeyContainerPort])
	return p
}

// Filter selects published ports in List; empty fields match all.
type Filter struct {
	Port    string
	Network string
}

// List returns our published ports matching f, sorted by address, port
// and protocol.
func List(ctx context.Context, nb client.Client, f Filter) ([]Published, error) {
	sel := map[string]string{}
	if f.Port != "" {
		sel[owner.KeyPort] = f.Port
	}
	if f.Network != "" {
		sel[owner.KeyNetwork] = f.Network
	}
	rows, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindPublished, sel)},
		func(m *nbdb.LoadBalancer) []any { return []any{&m.UUID, &m.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("list published ports: %w", err)
	}
	out := make([]Published, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Address != b.Address {
			return a.Address.Less(b.Address)
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.Protocol < b.Protocol
	})
	return out, nil
}

// ReleasePort removes the published ports of the container port lsp (CNI
// DEL, GC, a failed ADD's undo) and returns what was removed. Nothing to
// remove is not an error.
func ReleasePort(ctx context.Context, nb client.Client, lsp string) ([]Published, error) {
	rows, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindPublished, map[string]string{owner.KeyPort: lsp})},
		func(m *nbdb.LoadBalancer) []any { return []any{&m.UUID, &m.ExternalIDs} })
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	tx := dbops.NewTx(nb)
	var out []Published
	for _, r := range rows {
		removeOps(tx, r.UUID)
		out = append(out, fromRow(r))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("remove published ports of port %s: %w", lsp, err)
	}
	return out, nil
}

// Release removes everything that makes the container port lsp reachable
// from outside: its published ports and its floating IPs (ovn/fip). CNI
// DEL, GC and node GC call it before they delete the port. Nothing to
// remove is not an error.
func Release(ctx context.Context, nb client.Client, lsp string) error {
	if _, err := ReleasePort(ctx, nb, lsp); err != nil {
		return err
	}
	if _, err := fip.ReleasePort(ctx, nb, lsp); err != nil {
		return err
	}
	return nil
}
