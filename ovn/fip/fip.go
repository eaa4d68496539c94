// Package fip manages floating IPs: an address of a router's external
// network given to one container interface, in both directions, as one
// dnat_and_snat NAT row on the router of the container's network.
//
// A floating IP is distributed (the NAT row carries external_mac and
// logical_port, so the container's own node answers for it and sends its
// traffic out directly) when the container's node has the external network
// (its chassis' ovn-bridge-mappings name the external switch's physical
// network); otherwise it is centralized: the router's active gateway node
// does the NAT. Which one is decided when the floating IP is created.
//
// A floating IP is IPv4 or IPv6: an IPv6 one is an address of the router
// gateway's IPv6 external network (Gateway.ExternalNet6) and goes to the
// container's IPv6 address on its network (NAT66, one to one). A container
// interface may hold one floating IP per family.
//
// Floating IP rows are owned (kind "fip", ovlmgr.io/port = the container's
// Logical_Switch_Port): they go with the container's port (ReleasePort, on
// CNI DEL and GC).
package fip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Errors callers test with errors.Is.
var (
	// ErrNotFound: no floating IP of that address.
	ErrNotFound = errors.New("floating IP not found")
	// ErrInUse: the address is taken (another floating IP, a router's
	// external address, a published port, the next hop).
	ErrInUse = errors.New("address in use")
	// ErrUnknownContainer: no container port matches.
	ErrUnknownContainer = errors.New("unknown container")
	// ErrOutside: the address is not a host of the router's external network.
	ErrOutside = errors.New("outside the external network")
	// ErrFamily: the floating IP's family is not one the container (on
	// that network) or the router's gateway has.
	ErrFamily = errors.New("address family mismatch")
	// ErrNoGateway is gateway.ErrNoGateway: the container's network is on
	// no router, or on one without gateway.
	ErrNoGateway = gateway.ErrNoGateway
)

// Modes of a floating IP.
const (
	Distributed = "distributed"
	Centralized = "centralized"
)

// FIP is a floating IP as stored in NB.
type FIP struct {
	IP        netip.Addr `json:"ip"`
	Router    string     `json:"router"`
	Network   string     `json:"network"`
	Container string     `json:"container"`
	IfName    string     `json:"ifname"`
	Port      string     `json:"port"`
	Node      string     `json:"node"`
	LogicalIP netip.Addr `json:"logicalIP"`
	// Mode is Distributed (on Node) or Centralized (on the gateway).
	Mode        string `json:"mode"`
	ExternalMAC string `json:"externalMAC,omitempty"`
	UUID        string `json:"uuid"`
}

// Spec is a floating IP to create.
type Spec struct {
	IP netip.Addr
	// Container is a container ID or a prefix of one (4+ characters), as
	// `ovlmgr port list` shows it.
	Container string
	// Network picks the container's interface when it has several.
	Network string
}

// MAC is the external MAC of a distributed floating IP: 0a:5a followed by
// the IPv4 address, or 0a:5b followed by the last four bytes of an IPv6
// one (container MACs derived from addresses use 0a:58).
func MAC(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		b := ip.As16()
		return net.HardwareAddr{0x0a, 0x5b, b[12], b[13], b[14], b[15]}.String()
	}
	b := ip.Unmap().As4()
	return net.HardwareAddr{0x0a, 0x5a, b[0], b[1], b[2], b[3]}.String()
}

// FindContainer returns the container port named by container (an ID or
// a 4+ character prefix) on network ("" for any): exactly one, else a
// *names.FieldError naming "container".
func FindContainer(ctx context.Context, nb client.Client, container, network string) (*ovnport.Port, error) {
	if container == "" {
		return nil, names.Bad("container", "", "is empty: want a container ID or a prefix of 4+ characters (see ovlmgr port list)")
	}
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Container: container, Network: network})
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 && len(container) >= 4 {
		all, err := ovnport.List(ctx, nb, ovnport.Filter{Network: network})
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if strings.HasPrefix(p.Container, container) {
				ps = append(ps, p)
			}
		}
	}
	switch {
	case len(ps) == 0 && network != "":
		return nil, names.Bad("container", container, "%w: no container of that ID or ID prefix on network %q (see ovlmgr port list --net %s)", ErrUnknownContainer, network, network)
	case len(ps) == 0:
		return nil, names.Bad("container", container, "%w: no container of that ID or ID prefix (4+ characters; see ovlmgr port list)", ErrUnknownContainer)
	case len(ps) > 1:
		var what []string
		for _, p := range ps {
			what = append(what, fmt.Sprintf("%.12s/%s on %s", p.Container, p.IfName, p.Network))
		}
		return nil, names.Bad("container", container, "matches %d interfaces (%s); give a longer ID or {network}", len(ps), strings.Join(what, ", "))
	}
	if !ps[0].IP.IsValid() && !ps[0].IPv6.IsValid() {
		return nil, names.Bad("container", container, "its port %s has no address yet", ps[0].Name)
	}
	return ps[0], nil
}

// Create gives the container's interface the floating IP s.IP, in one
// transaction: a dnat_and_snat NAT row on the router of the container's
// network. sb (may be nil: then centralized) tells whether the container's
// node has the external network. Bad input is a *names.FieldError naming
// "ip" or "container"; nothing is written then.
func Create(ctx context.Context, nb, sb client.Client, s Spec) (*FIP, error) {
	if !s.IP.IsValid() || s.IP.Is4In6() {
		return nil, names.Bad("ip", s.IP, "want an IPv4 or IPv6 address of the router's external network")
	}
	p, err := FindContainer(ctx, nb, s.Container, s.Network)
	if err != nil {
		return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
	}
	// The container's address of the floating IP's family.
	logical, family := p.IP, "IPv4"
	if s.IP.Is6() {
		logical, family = p.IPv6, "IPv6"
	}
	if !logical.IsValid() {
		return nil, names.Bad("ip", s.IP, "%w: an %s floating IP needs the container's %s address, and interface %s on network %q has none (%s); give a floating IP of the container's family", ErrFamily, family, family, p.Name, p.Network, addrsOf(p))
	}
	n, err := network.Lookup(ctx, nb, p.Network)
	if err != nil {
		return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
	}
	if n.Router == "" {
		return nil, names.Bad("container", s.Container, "%w: its network %q is on no router; attach it to a router with a gateway (ovlmgr router attach, ovlmgr router gateway set)", ErrNoGateway, n.Name)
	}
	gw, err := gateway.Get(ctx, nb, n.Router)
	if errors.Is(err, ErrNoGateway) {
		return nil, names.Bad("container", s.Container, "%w: its network %q is on router %q, which has no gateway (ovlmgr router gateway set %s ...)", ErrNoGateway, n.Name, n.Router, n.Router)
	}
	if err != nil {
		return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
	}
	if err := checkAddress(s.IP, gw); err != nil {
		return nil, err
	}
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs(n.Router)}, func(m *nbdb.LogicalRouter) []any { return []any{&m.UUID, &m.Nat} })
	if err != nil || len(lrs) != 1 {
		return nil, fmt.Errorf("create floating IP %s: read router %q: %d rows, %v", s.IP, n.Router, len(lrs), err)
	}
	lr := lrs[0]
	// Taken anywhere (any router's NAT: floating IPs and SNAT addresses)?
	// Published ports answer on the router's own address, refused above.
	used, err := dbops.SelectRows[nbdb.NAT](ctx, nb, []ovsdb.Condition{dbops.Equal("external_ip", s.IP.String())})
	if err != nil {
		return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
	}
	// A floating IP of a container port that is gone (removed without CNI
	// DEL) is stale: it goes in the same transaction.
	var stale *nbdb.NAT
	if len(used) > 0 {
		gone := false
		if port := used[0].ExternalIDs[owner.KeyPort]; owner.Owned(used[0].ExternalIDs, owner.KindFIP) && port != "" {
			n, err := dbops.Count[nbdb.LogicalSwitchPort](ctx, nb, []ovsdb.Condition{dbops.NameIs(port)})
			if err != nil {
				return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
			}
			gone = n == 0
		}
		if !gone {
			return nil, names.Bad("ip", s.IP, "%w: %s", ErrInUse, describeNAT(used[0]))
		}
		stale = used[0]
	}
	// One floating IP per container interface (OVN: one dnat_and_snat per
	// logical IP on a router).
	if len(lr.Nat) > 0 {
		mine, err := dbops.SelectRows[nbdb.NAT](ctx, nb, []ovsdb.Condition{dbops.Equal("logical_ip", logical.String()), dbops.Equal("type", string(nbdb.NATTypeDNATAndSNAT))})
		if err != nil {
			return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
		}
		for _, m := range mine {
			for _, u := range lr.Nat {
				if u == m.UUID {
					return nil, names.Bad("container", s.Container, "%w: interface %s already has floating IP %s (ovlmgr fip delete %s first)", ErrInUse, p.Name, m.ExternalIP, m.ExternalIP)
				}
			}
		}
	}
	f := &FIP{IP: s.IP, Router: n.Router, Network: p.Network, Container: p.Container, IfName: p.IfName, Port: p.Name,
		Node: p.Node, LogicalIP: logical, Mode: Centralized}
	if sb != nil && p.Node != "" {
		ok, err := nodeHasExternal(ctx, sb, p.Node, gw)
		if err != nil {
			return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
		}
		if ok {
			f.Mode, f.ExternalMAC = Distributed, MAC(s.IP)
		}
	}
	nat := &nbdb.NAT{UUID: "newfip", Type: nbdb.NATTypeDNATAndSNAT, ExternalIP: s.IP.String(), LogicalIP: logical.String(),
		ExternalIDs: owner.IDs(owner.KindFIP, s.IP.String(), map[string]string{owner.KeyPort: p.Name, owner.KeyContainer: p.Container,
			owner.KeyIfName: p.IfName, owner.KeyNetwork: p.Network, owner.KeyRouter: n.Router, owner.KeyNode: p.Node})}
	if f.Mode == Distributed {
		mac, port := f.ExternalMAC, p.Name
		nat.ExternalMAC, nat.LogicalPort = &mac, &port
	}
	tx := dbops.NewTx(nb)
	still := dbops.Still(tx, lr, &lr.Nat)
	var staleGuard *dbops.Op
	if stale != nil {
		port := stale.ExternalIDs[owner.KeyPort]
		staleGuard = dbops.Typed[nbdb.LogicalSwitchPort](tx).None([]ovsdb.Condition{dbops.NameIs(port)}, "name", port)
		tx.Op(unref(stale.UUID))
		// Gone now, not at commit: the guard below must not see it.
		dbops.Typed[nbdb.NAT](tx).Delete(dbops.ByUUID(stale.UUID))
	}
	free := dbops.Typed[nbdb.NAT](tx).None([]ovsdb.Condition{dbops.Equal("external_ip", s.IP.String())}, "external_ip", s.IP.String())
	alive := dbops.Typed[nbdb.LogicalSwitchPort](tx).Exists([]ovsdb.Condition{dbops.NameIs(p.Name)}, "name", p.Name)
	ins := tx.Create(nat)
	dbops.Typed[nbdb.LogicalRouter](tx).AddRefs(dbops.ByUUID(lr.UUID), "nat", nat.UUID)
	err = tx.Transact(ctx)
	switch {
	case free.Failed(err), staleGuard != nil && staleGuard.Failed(err):
		return nil, names.Bad("ip", s.IP, "%w: taken meanwhile (ovlmgr fip list)", ErrInUse)
	case alive.Failed(err):
		return nil, names.Bad("container", s.Container, "%w: its port %s went away meanwhile", ErrUnknownContainer, p.Name)
	case still.Failed(err):
		return nil, fmt.Errorf("create floating IP %s: router %q changed meanwhile; retry", s.IP, n.Router)
	case err != nil:
		return nil, fmt.Errorf("create floating IP %s: %w", s.IP, err)
	}
	f.UUID = ins.UUID()
	return f, nil
}

// addrsOf lists a port's addresses for an error.
func addrsOf(p *ovnport.Port) string {
	var a []string
	for _, ip := range []netip.Addr{p.IP, p.IPv6} {
		if ip.IsValid() {
			a = append(a, ip.String())
		}
	}
	if len(a) == 0 {
		return "no address"
	}
	return "its address: " + strings.Join(a, ", ")
}

// checkAddress refuses an address that cannot be a floating IP of gw.
func checkAddress(ip netip.Addr, gw *gateway.Gateway) error {
	if ip.Is6() {
		return checkAddress6(ip, gw)
	}
	net := gw.ExternalNet
	switch {
	case !net.IsValid():
		return names.Bad("ip", ip, "%w: router %q's gateway has no IPv4 side (IPv6 external network %s only)", ErrFamily, gw.Router, gw.ExternalNet6)
	case !net.Contains(ip):
		return names.Bad("ip", ip, "%w: router %q's external network is %s", ErrOutside, gw.Router, net)
	case ip == net.Addr() || (net.Bits() < 31 && ip == last(net)):
		return names.Bad("ip", ip, "%w: the network or broadcast address of %s; want a host address", ErrOutside, net)
	case ip == gw.ExternalIP:
		return names.Bad("ip", ip, "%w: router %q's own external address (its SNAT and published ports use it)", ErrInUse, gw.Router)
	case gw.NextHop.IsValid() && ip == gw.NextHop:
		return names.Bad("ip", ip, "%w: the next hop of router %q", ErrInUse, gw.Router)
	}
	return nil
}

// checkAddress6 is checkAddress for an IPv6 floating IP: a host address of
// the gateway's IPv6 external network.
func checkAddress6(ip netip.Addr, gw *gateway.Gateway) error {
	net := gw.ExternalNet6
	switch {
	case !net.IsValid():
		return names.Bad("ip", ip, "%w: router %q's gateway has no IPv6 side (external network %s only; ovlmgr router gateway set %s ... --external-net6 CIDR --ip6 IP --next-hop6 IP)", ErrFamily, gw.Router, gw.ExternalNet, gw.Router)
	case !net.Contains(ip):
		return names.Bad("ip", ip, "%w: router %q's IPv6 external network is %s", ErrOutside, gw.Router, net)
	case ip == net.Addr():
		return names.Bad("ip", ip, "%w: the subnet-router anycast address of %s; want a host address", ErrOutside, net)
	case ip == gw.ExternalIP6:
		return names.Bad("ip", ip, "%w: router %q's own external IPv6 address (its SNAT and published ports use it)", ErrInUse, gw.Router)
	case ip == gw.NextHop6:
		return names.Bad("ip", ip, "%w: the IPv6 next hop of router %q", ErrInUse, gw.Router)
	}
	return nil
}

func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// describeNAT says in ovlmgr terms what holds a NAT row's external address.
func describeNAT(n *nbdb.NAT) string {
	ids := n.ExternalIDs
	switch {
	case owner.Owned(ids, owner.KindFIP):
		return fmt.Sprintf("the floating IP of container %.12s (%s, router %q)", ids[owner.KeyContainer], ids[owner.KeyNetwork], ids[owner.KeyRouter])
	case n.Type == nbdb.NATTypeSNAT && ids[owner.KeyRouter] != "":
		return fmt.Sprintf("the external address of router %q", ids[owner.KeyRouter])
	case n.Type == nbdb.NATTypeSNAT:
		return fmt.Sprintf("a router's external (SNAT) address (for %s)", n.LogicalIP)
	}
	return fmt.Sprintf("a %s NAT rule (to %s)", n.Type, n.LogicalIP)
}

// nodeHasExternal reports whether node's chassis maps the physical network
// of gw's external switch (its localnet port's network_name) to a bridge.
func nodeHasExternal(ctx context.Context, sb client.Client, node string, gw *gateway.Gateway) (bool, error) {
	if gw.Physnet == "" {
		return false, nil
	}
	m, err := BridgeMappings(ctx, sb, node)
	if err != nil {
		return false, err
	}
	_, ok := m[gw.Physnet]
	return ok, nil
}

// BridgeMappings reads chassis node's ovn-bridge-mappings (physical
// network -> bridge), from other_config or, for older chassis, external_ids.
func BridgeMappings(ctx context.Context, sb client.Client, node string) (map[string]string, error) {
	chs, err := dbops.SelectRows[sbdb.Chassis](ctx, sb, []ovsdb.Condition{dbops.NameIs(node)}, func(m *sbdb.Chassis) []any { return []any{&m.UUID, &m.OtherConfig, &m.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("read chassis %q: %w", node, err)
	}
	out := map[string]string{}
	for _, ch := range chs {
		s := ch.OtherConfig["ovn-bridge-mappings"]
		if s == "" {
			s = ch.ExternalIDs["ovn-bridge-mappings"]
		}
		for _, kv := range strings.Split(s, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), ":"); ok && k != "" {
				out[k] = v
			}
		}
	}
	return out, nil
}

// fromRow reads a floating IP from its NAT row.
func fromRow(n *nbdb.NAT) *FIP {
	ids := n.ExternalIDs
	f := &FIP{Router: ids[owner.KeyRouter], Network: ids[owner.KeyNetwork], Container: ids[owner.KeyContainer],
		IfName: ids[owner.KeyIfName], Port: ids[owner.KeyPort], Node: ids[owner.KeyNode], Mode: Centralized, UUID: n.UUID}
	f.IP, _ = netip.ParseAddr(n.ExternalIP)
	f.LogicalIP, _ = netip.ParseAddr(n.LogicalIP)
	if n.ExternalMAC != nil && n.LogicalPort != nil {
		f.Mode, f.ExternalMAC = Distributed, *n.ExternalMAC
	}
	return f
}

// List returns our floating IPs, sorted by address.
func List(ctx context.Context, nb client.Client) ([]*FIP, error) {
	rows, err := dbops.SelectRows[nbdb.NAT](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, nil)})
	if err != nil {
		return nil, fmt.Errorf("list floating IPs: %w", err)
	}
	out := make([]*FIP, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out, nil
}

// Get returns the floating IP ip.
func Get(ctx context.Context, nb client.Client, ip netip.Addr) (*FIP, error) {
	rows, err := dbops.SelectRows[nbdb.NAT](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, map[string]string{owner.KeyName: ip.String()})})
	if err != nil {
		return nil, fmt.Errorf("read floating IP %s: %w", ip, err)
	}
	if len(rows) == 0 {
		return nil, names.Bad("ip", ip, "%w (see ovlmgr fip list)", ErrNotFound)
	}
	return fromRow(rows[0]), nil
}

// Delete removes the floating IP ip (its NAT row goes with the router's
// reference). A missing floating IP is ErrNotFound.
func Delete(ctx context.Context, nb client.Client, ip netip.Addr) error {
	f, err := Get(ctx, nb, ip)
	if err != nil {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, unref(f.UUID)); err != nil {
		return fmt.Errorf("delete floating IP %s: %w", ip, err)
	}
	return nil
}

// unref removes NAT row uuid from whichever router holds it; the row,
// non-root, goes with its last reference.
func unref(uuid string) ovsdb.Operation {
	return dbops.DelRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.Contains("nat", dbops.UUIDSet(uuid))}, "nat", uuid)
}

// ReleasePort removes the floating IPs of the container port lsp (CNI DEL,
// GC) and returns their addresses. Nothing to remove is not an error.
func ReleasePort(ctx context.Context, nb client.Client, lsp string) ([]netip.Addr, error) {
	rows, err := dbops.SelectRows[nbdb.NAT](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, map[string]string{owner.KeyPort: lsp})},
		func(m *nbdb.NAT) []any { return []any{&m.UUID, &m.ExternalIP} })
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	var ops []ovsdb.Operation
	var ips []netip.Addr
	for _, r := range rows {
		ops = append(ops, unref(r.UUID))
		if ip, err := netip.ParseAddr(r.ExternalIP); err == nil {
			ips = append(ips, ip)
		}
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return nil, fmt.Errorf("remove floating IPs of port %s: %w", lsp, err)
	}
	return ips, nil
}
