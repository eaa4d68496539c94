// Package gateway gives a router (a tenant) a way out: an OVN distributed
// gateway port on an external network.
//
// For router R, Set writes, in one transaction:
//   - Logical_Switch "R:ext" (the external network) with a localnet
//     Logical_Switch_Port "R:ext:localnet" (options:network_name = the
//     physical network, which gateway nodes map to a bridge through
//     ovn-bridge-mappings) and a router-type port "R:gw:peer"
//     (options:nat-addresses=router: gratuitous ARPs from the active node);
//   - Logical_Router_Port "R:gw" on R with the external IP, and one
//     Gateway_Chassis row per gateway node ("R:gw:NODE"), priorities in
//     node order (the first node is active, the others standby; ovn-northd
//     makes the chassisredirect port "cr-R:gw" and ovn-controller binds it
//     on the highest-priority node alive);
//   - a default Logical_Router_Static_Route 0.0.0.0/0 via the next hop;
//   - one snat NAT row per attached network (subnet to the external IP),
//     except networks listed as no-SNAT (routed only).
//
// A dual-stack gateway (Spec.ExternalNet6 and friends) also has an IPv6
// address on the gateway port (second entry of its networks), a default
// route ::/0 via the IPv6 next hop, and a second snat row for every network
// with an IPv6 /64 (NAT66 to the external IPv6 address: overlays use ULA
// /64s, which are not routed outside).
//
// Every row carries owner external_ids (kind router.KindGateway, snat rows
// router.KindSNAT, with ovlmgr.io/router). Attaching or detaching a network
// later adds or removes its snat row (package ovn/router).
package gateway

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

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// DefaultPhysnet is the physical network name a gateway's localnet port
// uses unless Spec.Physnet says otherwise; `node join --external-bridge`
// maps the same name by default.
const DefaultPhysnet = "external"

// Keys on the gateway router port.
const (
	// KeyNextHop is the gateway's next hop (also in the default route).
	KeyNextHop = "ovlmgr.io/next-hop"
	// KeyNodes lists the gateway nodes in priority order, comma separated.
	KeyNodes = "ovlmgr.io/gateway-nodes"
	// KeyNextHop6 is the IPv6 next hop of a dual-stack gateway.
	KeyNextHop6 = "ovlmgr.io/next-hop6"
)

// Errors callers test with errors.Is.
var (
	// ErrNoGateway: the router has no gateway.
	ErrNoGateway = errors.New("no gateway")
	// ErrUnknownNode: a gateway node is no chassis in SB.
	ErrUnknownNode = errors.New("no such chassis")
	// ErrInUse: floating IPs or other NAT rows still use the gateway.
	ErrInUse = errors.New("in use")
)

// Gateway is a router's gateway as read from NB.
type Gateway struct {
	Router string `json:"router" yaml:"router"`
	// ExternalNet is the external network's prefix; ExternalIP the router's
	// address on it (the SNAT source of its networks).
	ExternalNet netip.Prefix `json:"externalNet" yaml:"externalNet"`
	ExternalIP  netip.Addr   `json:"externalIP" yaml:"externalIP"`
	NextHop     netip.Addr   `json:"nextHop" yaml:"nextHop"`
	// ExternalNet6, ExternalIP6 and NextHop6 are the IPv6 side of a
	// dual-stack gateway (invalid on an IPv4-only one).
	ExternalNet6 netip.Prefix `json:"externalNet6,omitzero" yaml:"externalNet6,omitempty"`
	ExternalIP6  netip.Addr   `json:"externalIP6,omitzero" yaml:"externalIP6,omitempty"`
	NextHop6     netip.Addr   `json:"nextHop6,omitzero" yaml:"nextHop6,omitempty"`
	// Nodes are the gateway chassis, highest priority (active when alive) first.
	Nodes []string `json:"nodes" yaml:"nodes"`
	// Priorities of Nodes (Gateway_Chassis.priority), same order.
	Priorities []int `json:"priorities" yaml:"priorities"`
	// Port is the gateway Logical_Router_Port, RedirectPort the
	// chassisredirect port northd derives from it ("cr-" + Port).
	Port         string `json:"port" yaml:"port"`
	RedirectPort string `json:"redirectPort" yaml:"redirectPort"`
	MAC          string `json:"mac" yaml:"mac"`
	// Switch is the external Logical_Switch, LocalnetPort its localnet
	// port, Physnet that port's network_name (ovn-bridge-mappings key).
	Switch       string `json:"switch" yaml:"switch"`
	LocalnetPort string `json:"localnetPort" yaml:"localnetPort"`
	Physnet      string `json:"physnet" yaml:"physnet"`
	// NoSNAT lists the networks routed without SNAT.
	NoSNAT []string `json:"noSNAT,omitempty" yaml:"noSNAT,omitempty"`
	// SNAT lists the router's snat rules.
	SNAT []SNAT `json:"snat" yaml:"snat"`
}

// SNAT is one network's snat rule.
type SNAT struct {
	Network    string `json:"network" yaml:"network"`
	LogicalIP  string `json:"logicalIP" yaml:"logicalIP"`
	ExternalIP string `json:"externalIP" yaml:"externalIP"`
}

// Names of a router's gateway rows.
func PortName(r string) string     { return r + ":gw" }
func SwitchName(r string) string   { return r + ":ext" }
func peerName(r string) string     { return r + ":gw:peer" }
func localnetName(r string) string { return r + ":ext:localnet" }
func chassisRowName(r, node string) string {
	return r + ":gw:" + node
}

// Spec is what Set needs.
type Spec struct {
	Router string
	// ExternalNet: IPv4 prefix of the external network (host bits clear).
	// ExternalNet, ExternalIP and NextHop may all be left out when the IPv6
	// side is given: an IPv6-only gateway.
	ExternalNet netip.Prefix
	// ExternalIP: the router's address on it, a host address not inside any
	// overlay subnet.
	ExternalIP netip.Addr
	// NextHop: the external router, inside ExternalNet.
	NextHop netip.Addr
	// ExternalNet6, ExternalIP6, NextHop6: optional, all three or none: the
	// IPv6 external network (/48 to /126), the router's IPv6 address on it
	// (the NAT66 source of networks with IPv6) and the IPv6 next hop.
	ExternalNet6 netip.Prefix
	ExternalIP6  netip.Addr
	NextHop6     netip.Addr
	// Nodes: gateway chassis (SB Chassis name or hostname), first = highest priority.
	Nodes []string
	// Physnet: the physical network name (default DefaultPhysnet).
	Physnet string
	// NoSNAT: networks routed without SNAT.
	NoSNAT []string
}

// Get reads router's gateway; errors.Is(err, ErrNoGateway) when it has none.
func Get(ctx context.Context, nb client.Client, r string) (*Gateway, error) {
	if _, err := router.Get(ctx, nb, r); err != nil {
		return nil, fmt.Errorf("gateway of router: %w", err)
	}
	sel := []ovsdb.Condition{dbops.Owned(router.KindGateway, map[string]string{owner.KeyRouter: r})}
	tx := dbops.NewTx(nb)
	lrpQ := dbops.Query[nbdb.LogicalRouterPort](tx, sel)
	gcQ := dbops.Query[nbdb.GatewayChassis](tx, sel)
	lspQ := dbops.Query[nbdb.LogicalSwitchPort](tx, sel)
	natQ := dbops.Query[nbdb.NAT](tx, []ovsdb.Condition{dbops.Owned(router.KindSNAT, map[string]string{owner.KeyRouter: r})})
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read gateway of router %q: %w", r, err)
	}
	lrps, err := lrpQ.Rows()
	if err != nil {
		return nil, err
	}
	if len(lrps) == 0 {
		return nil, fmt.Errorf("router %q: %w (ovlmgr router gateway set %s ...)", r, ErrNoGateway, r)
	}
	p := lrps[0]
	g := &Gateway{Router: r, Port: p.Name, RedirectPort: "cr-" + p.Name, MAC: p.MAC, Switch: SwitchName(r), SNAT: []SNAT{}}
	for _, s := range p.Networks {
		pre, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
		case pre.Addr().Is4() && !g.ExternalIP.IsValid():
			g.ExternalIP, g.ExternalNet = pre.Addr(), pre.Masked()
		case pre.Addr().Is6() && !g.ExternalIP6.IsValid():
			g.ExternalIP6, g.ExternalNet6 = pre.Addr(), pre.Masked()
		}
	}
	g.NextHop, _ = netip.ParseAddr(p.ExternalIDs[KeyNextHop])
	g.NextHop6, _ = netip.ParseAddr(p.ExternalIDs[KeyNextHop6])
	if s := p.ExternalIDs[router.KeyNoSNAT]; s != "" {
		g.NoSNAT = strings.Split(s, ",")
	}
	gcs, err := gcQ.Rows()
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, u := range p.GatewayChassis {
		mine[u] = true
	}
	sort.SliceStable(gcs, func(i, j int) bool { return gcs[i].Priority > gcs[j].Priority })
	for _, gc := range gcs {
		if mine[gc.UUID] {
			g.Nodes = append(g.Nodes, gc.ChassisName)
			g.Priorities = append(g.Priorities, gc.Priority)
		}
	}
	lsps, err := lspQ.Rows()
	if err != nil {
		return nil, err
	}
	for _, l := range lsps {
		if l.Type == "localnet" {
			g.LocalnetPort, g.Physnet = l.Name, l.Options["network_name"]
		}
	}
	nats, err := natQ.Rows()
	if err != nil {
		return nil, err
	}
	for _, n := range nats {
		g.SNAT = append(g.SNAT, SNAT{Network: n.ExternalIDs[owner.KeyNetwork], LogicalIP: n.LogicalIP, ExternalIP: n.ExternalIP})
	}
	sort.Slice(g.SNAT, func(i, j int) bool { return g.SNAT[i].Network < g.SNAT[j].Network })
	return g, nil
}

// Active returns the node (chassis name) where the gateway's
// chassisredirect port is bound now, "" when it is bound nowhere.
func Active(ctx context.Context, sb client.Client, g *Gateway) (string, error) {
	pbs, err := dbops.SelectRows(ctx, sb, []ovsdb.Condition{dbops.Equal("logical_port", g.RedirectPort)},
		func(m *sbdb.PortBinding) []any { return []any{&m.UUID, &m.Chassis} })
	if err != nil {
		return "", fmt.Errorf("read binding of %s: %w", g.RedirectPort, err)
	}
	if len(pbs) == 0 || pbs[0].Chassis == nil {
		return "", nil
	}
	chs, err := dbops.SelectRows(ctx, sb, dbops.ByUUID(*pbs[0].Chassis), func(m *sbdb.Chassis) []any { return []any{&m.UUID, &m.Name} })
	if err != nil {
		return "", fmt.Errorf("read chassis of %s: %w", g.RedirectPort, err)
	}
	if len(chs) == 0 {
		return "", nil
	}
	return chs[0].Name, nil
}

// validate checks s against NB and SB and returns the chassis names of
// its nodes.
func validate(ctx context.Context, nb, sb client.Client, s *Spec) ([]string, error) {
	if err := router.ValidateName(s.Router); err != nil {
		return nil, err
	}
	// The IPv4 side may be left out when the IPv6 side is given (an
	// IPv6-only gateway); one of them is needed.
	n := s.ExternalNet
	ip := s.ExternalIP
	if n.IsValid() || ip.IsValid() || s.NextHop.IsValid() || !s.ExternalNet6.IsValid() {
		if err := validate4(s); err != nil {
			return nil, err
		}
	}
	if err := validate6(s); err != nil {
		return nil, err
	}
	if s.Physnet == "" {
		s.Physnet = DefaultPhysnet
	}
	if err := names.Validate("physnet", s.Physnet); err != nil {
		return nil, err
	}
	if len(s.Nodes) == 0 {
		return nil, names.Missing("nodes", "one or more gateway nodes, first = active")
	}
	// An external IP inside an overlay subnet would be routed into the overlay.
	lss, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindNetwork, nil)},
		func(m *nbdb.LogicalSwitch) []any { return []any{&m.UUID, &m.Name, &m.OtherConfig} })
	if err != nil {
		return nil, fmt.Errorf("read networks: %w", err)
	}
	for _, ls := range lss {
		if a, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil && s.ExternalNet6.IsValid() {
			sub6 := netip.PrefixFrom(a, 64)
			if sub6.Contains(s.ExternalIP6) {
				return nil, names.Says("external ip6", names.Shown(s.ExternalIP6.String()), "is inside the IPv6 subnet %s of network %q; the external address must be outside every overlay subnet", sub6, ls.Name)
			}
			if sub6.Overlaps(s.ExternalNet6) {
				return nil, names.Says("external net6", names.Shown(s.ExternalNet6.String()), "overlaps the IPv6 subnet %s of network %q", sub6, ls.Name)
			}
		}
		sub, err := netip.ParsePrefix(ls.OtherConfig["subnet"])
		if err != nil || !n.IsValid() {
			continue
		}
		if sub.Contains(ip) {
			return nil, names.Says("external ip", names.Shown(ip.String()), "is inside the subnet %s of network %q; the external address must be outside every overlay subnet", sub, ls.Name)
		}
		if sub.Overlaps(n) {
			return nil, names.Says("external net", names.Shown(n.String()), "overlaps the subnet %s of network %q", sub, ls.Name)
		}
	}
	for _, x := range s.NoSNAT {
		if err := names.Validate("no snat", x); err != nil {
			return nil, err
		}
	}
	chs, err := dbops.SelectRows(ctx, sb, nil, func(m *sbdb.Chassis) []any { return []any{&m.UUID, &m.Name, &m.Hostname} })
	if err != nil {
		return nil, fmt.Errorf("read chassis: %w", err)
	}
	var known []string
	byName := map[string]string{}
	for _, c := range chs {
		byName[c.Name] = c.Name
		if _, ok := byName[c.Hostname]; !ok && c.Hostname != "" {
			byName[c.Hostname] = c.Name
		}
		known = append(known, c.Name)
	}
	sort.Strings(known)
	seen := map[string]bool{}
	var out []string
	for _, nd := range s.Nodes {
		ch, ok := byName[nd]
		if !ok {
			return nil, names.Bad("nodes", nd, "%w in SB (known: %s)", ErrUnknownNode, strings.Join(known, ", "))
		}
		if seen[ch] {
			return nil, names.Bad("nodes", nd, "listed twice")
		}
		seen[ch] = true
		out = append(out, ch)
	}
	return out, nil
}

// validate4 checks the IPv4 side of s: ExternalNet, ExternalIP and NextHop.
func validate4(s *Spec) error {
	n := s.ExternalNet
	if !n.IsValid() && !s.ExternalIP.IsValid() && !s.NextHop.IsValid() {
		return names.Missing("external net", "the external network (IPv4, or IPv6 with the external net6)")
	}
	if !n.IsValid() || !n.Addr().Is4() || n.Bits() < 8 || n.Bits() > 30 {
		return names.Bad("external net", names.Shown(fmt.Sprint(n)), "not an IPv4 CIDR /8 to /30")
	}
	if n.Masked() != n {
		return names.Bad("external net", names.Shown(n.String()), "host bits set (did you mean %s?)", n.Masked())
	}
	last := lastAddr(n)
	ip := s.ExternalIP
	switch {
	case !ip.IsValid():
		return names.Missing("external ip", "the router's address on %s", n)
	case !n.Contains(ip):
		return names.Bad("external ip", names.Shown(ip.String()), "outside the external net %s", n)
	case ip == n.Addr() || ip == last:
		return names.Bad("external ip", names.Shown(ip.String()), "the network or broadcast address of %s; want a host address", n)
	}
	h := s.NextHop
	switch {
	case !h.IsValid():
		return names.Missing("next hop", "the external router's address on %s", n)
	case !n.Contains(h) || h == n.Addr() || h == last:
		return names.Bad("next hop", names.Shown(h.String()), "outside the external net %s (want a host address in it)", n)
	case h == ip:
		return names.Bad("next hop", names.Shown(h.String()), "is the external ip itself")
	}
	return nil
}

// validate6 checks the IPv6 side of s: none of it, or all three of
// ExternalNet6, ExternalIP6 and NextHop6, each of the IPv6 family.
func validate6(s *Spec) error {
	n, ip, h := s.ExternalNet6, s.ExternalIP6, s.NextHop6
	if !n.IsValid() && !ip.IsValid() && !h.IsValid() {
		return nil
	}
	switch {
	case !n.IsValid():
		return names.Missing("external net6", "the IPv6 external network (an IPv6 address or next hop was given)")
	case !n.Addr().Is6() || n.Addr().Is4In6():
		return names.Bad("external net6", names.Shown(n.String()), "not an IPv6 CIDR (the IPv4 external network is the external net)")
	case n.Bits() < 48 || n.Bits() > 126:
		return names.Bad("external net6", names.Shown(n.String()), "want an IPv6 CIDR /48 to /126")
	case n.Masked() != n:
		return names.Bad("external net6", names.Shown(n.String()), "host bits set (did you mean %s?)", n.Masked())
	}
	switch {
	case !ip.IsValid():
		return names.Missing("external ip6", "the router's IPv6 address on %s", n)
	case !ip.Is6() || ip.Is4In6():
		return names.Bad("external ip6", names.Shown(ip.String()), "not an IPv6 address (want a host address in %s; the IPv4 one is the external ip)", n)
	case !n.Contains(ip):
		return names.Bad("external ip6", names.Shown(ip.String()), "outside the external net6 %s", n)
	case ip == n.Addr():
		return names.Bad("external ip6", names.Shown(ip.String()), "the subnet-router anycast address of %s; want a host address", n)
	}
	switch {
	case !h.IsValid():
		return names.Missing("next hop6", "the external router's IPv6 address on %s", n)
	case !h.Is6() || h.Is4In6():
		return names.Bad("next hop6", names.Shown(h.String()), "not an IPv6 address (want a host address in %s; the IPv4 next hop is the next hop)", n)
	case !n.Contains(h) || h == n.Addr():
		return names.Bad("next hop6", names.Shown(h.String()), "outside the external net6 %s (want a host address in it)", n)
	case h == ip:
		return names.Bad("next hop6", names.Shown(h.String()), "is the external ip6 itself")
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Set gives router s.Router a gateway, or replaces the one it has, in one
// transaction (see the package comment for the rows). Bad input is a
// *names.FieldError naming the field; nothing is written then.
func Set(ctx context.Context, nb, sb client.Client, s Spec) (*Gateway, error) {
	err := dbconn.Retry(ctx, func(bool) error { return set(ctx, nb, sb, s) })
	if err != nil {
		return nil, err
	}
	return Get(ctx, nb, s.Router)
}

func set(ctx context.Context, nb, sb client.Client, s Spec) error {
	chassis, err := validate(ctx, nb, sb, &s)
	if err != nil {
		return fmt.Errorf("set gateway of router %q: %w", s.Router, err)
	}
	r, err := router.Get(ctx, nb, s.Router)
	if err != nil {
		return fmt.Errorf("set gateway: %w", err)
	}
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.UUIDIs(r.UUID)})
	if err != nil || len(lrs) == 0 {
		return fmt.Errorf("set gateway of router %q: read router: %v", s.Router, err)
	}
	lr := lrs[0]
	tx := dbops.NewTx(nb)
	// The router's ports and NAT rows are as read (no attach, detach or other set meanwhile).
	dbops.Still(tx, lr, &lr.Ports, &lr.Nat)
	// A gateway in place is replaced: its rows go first. Its external
	// address may only change while no floating IP or published port
	// depends on it.
	same := true
	if cur, err := Get(ctx, nb, s.Router); err == nil {
		same = cur.ExternalIP == s.ExternalIP && cur.ExternalNet == s.ExternalNet &&
			cur.ExternalIP6 == s.ExternalIP6 && cur.ExternalNet6 == s.ExternalNet6
	}
	old, err := removeOps(ctx, nb, s.Router, same)
	if err != nil {
		return fmt.Errorf("set gateway of router %q: %w", s.Router, err)
	}
	tx.Add(old...)

	r0 := s.Router
	ids := func(name string, extra map[string]string) map[string]string {
		m := owner.IDs(router.KindGateway, name, map[string]string{owner.KeyRouter: r0})
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	var gcs []*nbdb.GatewayChassis
	var gcUUIDs []string
	for i, ch := range chassis {
		gc := &nbdb.GatewayChassis{UUID: "newgc" + strconv.Itoa(i), Name: chassisRowName(r0, ch), ChassisName: ch,
			Priority: (len(chassis) - i) * 10, ExternalIDs: ids(chassisRowName(r0, ch), map[string]string{owner.KeyNode: ch})}
		gcs = append(gcs, gc)
		gcUUIDs = append(gcUUIDs, gc.UUID)
	}
	lrpIDs := ids(PortName(r0), map[string]string{KeyNodes: strings.Join(chassis, ",")})
	var lrpNets []string
	mac := ""
	if s.ExternalIP.IsValid() {
		lrpIDs[KeyNextHop] = s.NextHop.String()
		lrpNets = append(lrpNets, fmt.Sprintf("%s/%d", s.ExternalIP, s.ExternalNet.Bits()))
		mac = port.MACFromIP(s.ExternalIP).String()
	} else {
		// An IPv6-only gateway: the MAC from its IPv6 address.
		mac = port.MACFromIP6(s.ExternalIP6).String()
	}
	if s.ExternalIP6.IsValid() {
		lrpIDs[KeyNextHop6] = s.NextHop6.String()
		lrpNets = append(lrpNets, fmt.Sprintf("%s/%d", s.ExternalIP6, s.ExternalNet6.Bits()))
	}
	if len(s.NoSNAT) > 0 {
		lrpIDs[router.KeyNoSNAT] = strings.Join(s.NoSNAT, ",")
	}
	lrp := &nbdb.LogicalRouterPort{UUID: "newgwlrp", Name: PortName(r0), MAC: mac,
		Networks: lrpNets, GatewayChassis: gcUUIDs, ExternalIDs: lrpIDs}
	outPort := lrp.Name
	route := &nbdb.LogicalRouterStaticRoute{UUID: "newgwroute", IPPrefix: "0.0.0.0/0", Nexthop: s.NextHop.String(), OutputPort: &outPort,
		ExternalIDs: ids(r0+":default", nil)}
	peer := &nbdb.LogicalSwitchPort{UUID: "newgwpeer", Name: peerName(r0), Type: "router", Addresses: []string{"router"},
		// nat-addresses=router: the active node sends gratuitous ARPs for
		// the router's external addresses (its own, floating IPs, published
		// addresses), so the external network learns where they are after a
		// failover.
		Options: map[string]string{"router-port": lrp.Name, "nat-addresses": "router"}, ExternalIDs: ids(peerName(r0), nil)}
	ln := &nbdb.LogicalSwitchPort{UUID: "newgwlocalnet", Name: localnetName(r0), Type: "localnet", Addresses: []string{"unknown"},
		Options: map[string]string{"network_name": s.Physnet}, ExternalIDs: ids(localnetName(r0), nil)}
	ls := &nbdb.LogicalSwitch{UUID: "newgwls", Name: SwitchName(r0), Ports: []string{peer.UUID, ln.UUID}, ExternalIDs: ids(SwitchName(r0), nil)}
	// No switch or port of these names may exist but ours (which the
	// replace above deletes; deleted non-root rows stay visible until commit).
	for _, g := range []struct{ table, name string }{{nbdb.LogicalSwitchTable, ls.Name}, {nbdb.LogicalRouterPortTable, lrp.Name},
		{nbdb.LogicalSwitchPortTable, peer.Name}, {nbdb.LogicalSwitchPortTable, ln.Name}} {
		tx.Add(dbops.None(g.table, []ovsdb.Condition{dbops.NameIs(g.name), dbops.Excludes(map[string]string{owner.KeyName: g.name})}, "name", g.name))
	}
	for _, gc := range gcs {
		tx.Create(gc)
	}
	tx.Create(lrp)
	tx.Create(peer)
	tx.Create(ln)
	tx.Create(ls)
	tx.Add(dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(lr.UUID), "ports", lrp.UUID))
	if s.ExternalIP.IsValid() {
		tx.Create(route)
		tx.Add(dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(lr.UUID), "static_routes", route.UUID))
	}
	if s.ExternalIP6.IsValid() {
		route6 := &nbdb.LogicalRouterStaticRoute{UUID: "newgwroute6", IPPrefix: "::/0", Nexthop: s.NextHop6.String(), OutputPort: &outPort,
			ExternalIDs: ids(r0+":default6", nil)}
		tx.Create(route6)
		tx.Add(dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(lr.UUID), "static_routes", route6.UUID))
	}
	noSNAT := map[string]bool{}
	for _, n := range s.NoSNAT {
		noSNAT[n] = true
	}
	nets, err := attachedSubnets(ctx, nb, r0)
	if err != nil {
		return fmt.Errorf("set gateway of router %q: %w", r0, err)
	}
	for i, n := range nets {
		if noSNAT[n.name] {
			continue
		}
		if n.subnet.IsValid() && s.ExternalIP.IsValid() {
			ops, err := router.SNATOps(nb, r0, lr.UUID, s.ExternalIP, n.name, n.subnet, "newsnat"+strconv.Itoa(i))
			if err != nil {
				return err
			}
			tx.Add(ops...)
		}
		// NAT66: the network's /64 to the external IPv6 address.
		if n.subnet6.IsValid() && s.ExternalIP6.IsValid() {
			ops, err := router.SNATOps(nb, r0, lr.UUID, s.ExternalIP6, n.name, n.subnet6, "newsnat6x"+strconv.Itoa(i))
			if err != nil {
				return err
			}
			tx.Add(ops...)
		}
	}
	if err := tx.Transact(ctx); err != nil {
		if dbconn.FailedWait(err, 0) {
			return fmt.Errorf("set gateway of router %q: the router changed meanwhile; retry", r0)
		}
		var te *dbconn.TxError
		if errors.As(err, &te) && te.Op != nil && te.Op.Op == ovsdb.OperationWait {
			return fmt.Errorf("set gateway of router %q: a switch or port named %s, %s, %s or %s exists and is not this gateway's: %w",
				r0, ls.Name, lrp.Name, peer.Name, ln.Name, err)
		}
		return fmt.Errorf("set gateway of router %q: %w", r0, err)
	}
	return nil
}

type subnetOf struct {
	name    string
	subnet  netip.Prefix // invalid on an IPv6-only network
	subnet6 netip.Prefix // the /64, invalid without IPv6
}

// attachedSubnets lists the networks attached to r with their subnets.
func attachedSubnets(ctx context.Context, nb client.Client, r string) ([]subnetOf, error) {
	lss, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindNetwork, map[string]string{owner.KeyRouter: r})},
		func(m *nbdb.LogicalSwitch) []any { return []any{&m.UUID, &m.Name, &m.OtherConfig} })
	if err != nil {
		return nil, fmt.Errorf("read networks of router %q: %w", r, err)
	}
	var out []subnetOf
	for _, ls := range lss {
		n := subnetOf{name: ls.Name}
		n.subnet, _ = netip.ParsePrefix(ls.OtherConfig["subnet"])
		if a, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil {
			n.subnet6 = netip.PrefixFrom(a, 64)
		}
		if n.subnet.IsValid() || n.subnet6.IsValid() {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// removeOps returns the operations that remove router r's gateway rows
// (nothing when it has none). Unless keep (a replace with the same external
// address), NAT rows other than our snat rows (floating IPs) and published
// ports make it refuse with ErrInUse.
func removeOps(ctx context.Context, nb client.Client, r string, keep bool) ([]ovsdb.Operation, error) {
	sel := []ovsdb.Condition{dbops.Owned(router.KindGateway, map[string]string{owner.KeyRouter: r})}
	tx := dbops.NewTx(nb)
	lrpQ := dbops.Query(tx, sel, func(m *nbdb.LogicalRouterPort) []any { return []any{&m.UUID} })
	routeQ := dbops.Query(tx, sel, func(m *nbdb.LogicalRouterStaticRoute) []any { return []any{&m.UUID} })
	lsQ := dbops.Query(tx, sel, func(m *nbdb.LogicalSwitch) []any { return []any{&m.UUID} })
	lrQ := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(r), dbops.Owned(owner.KindRouter, nil)}, func(m *nbdb.LogicalRouter) []any { return []any{&m.UUID, &m.Nat} })
	snatQ := dbops.Query(tx, []ovsdb.Condition{dbops.Owned(router.KindSNAT, map[string]string{owner.KeyRouter: r})}, func(m *nbdb.NAT) []any { return []any{&m.UUID} })
	pubQ := dbops.Query(tx, []ovsdb.Condition{dbops.Owned(owner.KindPublished, map[string]string{owner.KeyRouter: r})}, func(m *nbdb.LoadBalancer) []any { return []any{&m.UUID} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read gateway rows: %w", err)
	}
	lrs, err := lrQ.Rows()
	if err != nil {
		return nil, err
	}
	if len(lrs) == 0 {
		return nil, fmt.Errorf("router %q: %w", r, router.ErrNotFound)
	}
	lr := lrs[0]
	snats := snatQ.UUIDs()
	if !keep {
		mine := map[string]bool{}
		for _, u := range snats {
			mine[u] = true
		}
		others := 0
		for _, u := range lr.Nat {
			if !mine[u] {
				others++
			}
		}
		if others > 0 {
			return nil, fmt.Errorf("router %q: %w: %d other NAT rule(s) (floating IPs?) use the gateway; delete them first (ovlmgr fip list)", r, ErrInUse, others)
		}
		if n := pubQ.Len(); n > 0 {
			return nil, fmt.Errorf("router %q: %w: %d published container port(s) answer on the gateway's address; remove those containers first (ovlmgr port list)", r, ErrInUse, n)
		}
	}
	var ops []ovsdb.Operation
	where := []ovsdb.Condition{dbops.UUIDIs(lr.UUID)}
	if u := lrpQ.UUIDs(); len(u) > 0 {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalRouterTable, where, "ports", u...))
	}
	if u := routeQ.UUIDs(); len(u) > 0 {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalRouterTable, where, "static_routes", u...))
	}
	if len(snats) > 0 {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalRouterTable, where, "nat", snats...))
	}
	if u := lsQ.UUIDs(); len(u) > 0 {
		ops = append(ops, dbops.Delete(nbdb.LogicalSwitchTable, dbops.ByUUID(u[0])))
	}
	return ops, nil
}

// Unset removes router r's gateway in one transaction: its external switch,
// gateway port (with its Gateway_Chassis rows), default route and snat
// rows. It refuses (ErrInUse) while floating IPs or published ports use
// the gateway, and
// returns ErrNoGateway when there is none.
func Unset(ctx context.Context, nb client.Client, r string) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := unset(ctx, nb, r)
		if again && errors.Is(err, ErrNoGateway) {
			return nil
		}
		return err
	})
}

func unset(ctx context.Context, nb client.Client, r string) error {
	g, err := Get(ctx, nb, r)
	if err != nil {
		return fmt.Errorf("unset gateway: %w", err)
	}
	ops, err := removeOps(ctx, nb, g.Router, false)
	if err != nil {
		return fmt.Errorf("unset gateway of router %q: %w", r, err)
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return fmt.Errorf("unset gateway of router %q: %w", r, err)
	}
	return nil
}
