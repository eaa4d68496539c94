package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
)

// External is the FROM of a trace that starts outside, on the external
// network of a router gateway: `trace external 198.18.100.10 --proto tcp
// --port 8080` explains how a floating IP or a published port is reached.
const External = "external"

// fipOf reads the floating IP matching where (nil when none); with family
// valid, the one of family's address family (a container interface may
// have an IPv4 and an IPv6 floating IP).
func fipOf(ctx context.Context, nb client.Client, where []ovsdb.Condition, family netip.Addr) (*nbdb.NAT, error) {
	rows, err := dbops.SelectRows[nbdb.NAT](ctx, nb, where)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		a, err := netip.ParseAddr(r.ExternalIP)
		if !family.IsValid() || err == nil && a.Is6() == family.Is6() {
			return r, nil
		}
	}
	return nil, nil
}

// externalOut explains, after the logical trace, a packet from a container
// to an address outside every overlay network: it leaves through the
// router's gateway, from the container's floating IP or SNATed to the
// router's external address.
func externalOut(ctx context.Context, nb, sb client.Client, res *Result) {
	from, to := res.From, res.To
	if to.Port != "" || from.Router == "" || res.Service != nil {
		return
	}
	gw, err := gateway.Get(ctx, nb, from.Router)
	if err != nil || to.IP == gw.ExternalIP || (gw.ExternalIP6.IsValid() && to.IP == gw.ExternalIP6) {
		return
	}
	// The gateway's side of the destination's family (an IPv6 destination
	// and a gateway without IPv6: nothing leaves, the logical trace says so).
	extIP, extNet := gw.ExternalIP, gw.ExternalNet
	if to.IP.Is6() {
		if !gw.ExternalIP6.IsValid() {
			return
		}
		extIP, extNet = gw.ExternalIP6, gw.ExternalNet6
	}
	if !extIP.IsValid() {
		return // an IPv6-only gateway and an IPv4 destination
	}
	if overlay, _ := inOverlay(ctx, nb, to.IP); overlay {
		return
	}
	node, _ := gateway.Active(ctx, sb, gw)
	// The external switch is the gateway's, not a network of ours: the
	// hops below name it.
	kept := res.Hops[:0]
	for _, h := range res.Hops {
		if h != "network "+gw.Switch {
			kept = append(kept, h)
		}
	}
	res.Hops = kept
	nat, _ := fipOf(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, map[string]string{owner.KeyPort: from.Port})}, to.IP)
	var how string
	switch {
	case nat != nil && nat.LogicalPort != nil:
		how = fmt.Sprintf("floating IP %s (distributed on node %s)", nat.ExternalIP, from.BoundOn)
		res.Hops = append(res.Hops, fmt.Sprintf("floating IP %s on node %s", nat.ExternalIP, from.BoundOn), "external network "+extNet.String())
	case nat != nil:
		how = fmt.Sprintf("floating IP %s on gateway %s", nat.ExternalIP, dashNode(node))
		res.Hops = append(res.Hops, fmt.Sprintf("gateway %s of router %s", dashNode(node), from.Router), "external network "+extNet.String())
	default:
		how = fmt.Sprintf("SNAT to %s on gateway %s", extIP, dashNode(node))
		res.Hops = append(res.Hops, fmt.Sprintf("gateway %s of router %s", dashNode(node), from.Router), "external network "+extNet.String())
	}
	res.External = how
	if node == "" && (nat == nil || nat.LogicalPort == nil) {
		res.Verdict, res.Reason = Dropped, fmt.Sprintf("router %s's gateway port %s is bound on no node: no gateway node is up (ovlmgr diagnose)", from.Router, gw.Port)
		return
	}
	if res.Verdict == Delivered || res.Logical == nil || res.Logical.Drop == nil {
		res.Verdict = Delivered
		res.Reason = fmt.Sprintf("leaves router %s to the external network: %s", from.Router, how)
	}
}

func dashNode(n string) string {
	if n == "" {
		return "(none bound)"
	}
	return n
}

// inOverlay reports whether ip is inside the subnet of one of our networks.
func inOverlay(ctx context.Context, nb client.Client, ip netip.Addr) (bool, error) {
	lss, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindNetwork, nil)},
		func(m *nbdb.LogicalSwitch) []any { return []any{&m.UUID, &m.OtherConfig} })
	if err != nil {
		return false, err
	}
	for _, ls := range lss {
		if p, err := netip.ParsePrefix(ls.OtherConfig["subnet"]); err == nil && p.Contains(ip) {
			return true, nil
		}
		if a, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil && netip.PrefixFrom(a, 64).Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// inbound explains a packet from the external network to req.To: a
// floating IP or a published port (address, --proto and --port), from the
// NB and SB rows (no logical trace: the packet enters through a gateway's
// localnet port, which has no container to start from).
func inbound(ctx context.Context, nb, sb client.Client, req Request) (*Result, error) {
	ip, err := netip.ParseAddr(req.To)
	if err != nil {
		return nil, fmt.Errorf("trace external -> %s: TO must be an external address (a floating IP or a router's external address)", req.To)
	}
	res := &Result{From: &Endpoint{Input: External}, To: &Endpoint{Input: req.To, IP: ip}, Proto: req.Proto, Port: req.Port, DstIP: ip}
	ext := "external network"
	// A floating IP?
	nat, err := fipOf(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, map[string]string{owner.KeyName: ip.String()})}, netip.Addr{})
	if err != nil {
		return nil, err
	}
	var lsp, how, router string
	var gw *gateway.Gateway
	switch {
	case nat != nil:
		lsp, router = nat.ExternalIDs[owner.KeyPort], nat.ExternalIDs[owner.KeyRouter]
		if nat.LogicalPort != nil {
			how = fmt.Sprintf("floating IP %s (distributed on node %s)", ip, nat.ExternalIDs[owner.KeyNode])
		}
	default:
		if req.Proto == "icmp" {
			res.Verdict, res.Hops = Dropped, []string{ext}
			res.Reason = fmt.Sprintf("%s is no floating IP; a published port needs --proto tcp|udp and --port", ip)
			return res, nil
		}
		lbs, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, []ovsdb.Condition{dbops.NameIs(publish.LBName(ip, req.Port, req.Proto))})
		if err != nil {
			return nil, err
		}
		if len(lbs) == 0 || !owner.Owned(lbs[0].ExternalIDs, owner.KindPublished) {
			res.Verdict, res.Hops = Dropped, []string{ext}
			res.Reason = fmt.Sprintf("nothing is published on %s/%s and it is no floating IP (ovlmgr fip list, ovlmgr port list)", netip.AddrPortFrom(ip, uint16(req.Port)), req.Proto)
			return res, nil
		}
		ids := lbs[0].ExternalIDs
		lsp, router = ids[owner.KeyPort], ids[owner.KeyRouter]
		res.Port = req.Port
		how = fmt.Sprintf("published %s -> %%s:%s", netip.AddrPortFrom(ip, uint16(req.Port)), ids[publish.KeyContainerPort])
	}
	if gw, err = gateway.Get(ctx, nb, router); err != nil && !errors.Is(err, gateway.ErrNoGateway) {
		return nil, err
	}
	node := ""
	if gw != nil {
		node, _ = gateway.Active(ctx, sb, gw)
	}
	idx, err := readPorts(ctx, nb)
	if err != nil {
		return nil, err
	}
	names, err := dnsNames(ctx, nb)
	if err != nil {
		return nil, err
	}
	to := &Endpoint{Input: req.To, IP: ip, Port: lsp}
	if es, err := resolve(idx, lsp, names); err == nil && len(es) == 1 {
		to = es[0]
		nameOf(to, names)
		to.Router = router
		if to.BoundOn, err = binding(ctx, sb, to.Port); err != nil {
			return nil, err
		}
	}
	res.To = to
	name := to.Label()
	if to.Name != "" {
		name = to.Name
	}
	switch {
	case how == "":
		how = fmt.Sprintf("floating IP %s on gateway %s", ip, dashNode(node))
	case nat == nil:
		how = fmt.Sprintf(how, name)
		how += " on gateway " + dashNode(node)
	}
	res.External = how
	entry := fmt.Sprintf("gateway %s of router %s", dashNode(node), router)
	if nat != nil && nat.LogicalPort != nil {
		entry = fmt.Sprintf("floating IP %s on node %s", ip, to.BoundOn)
	}
	res.Hops = []string{ext, entry, "router " + router, "network " + to.Network, fmt.Sprintf("%s on node %s", to.Label(), dashNode(to.BoundOn))}
	switch {
	case to.BoundOn == "":
		res.Verdict, res.Reason = Dropped, fmt.Sprintf("%s: but %s is bound on no node", how, to.Label())
	case node == "" && (nat == nil || nat.LogicalPort == nil):
		res.Verdict, res.Reason = Dropped, fmt.Sprintf("%s: but router %s's gateway port is bound on no node (no gateway node up; ovlmgr diagnose)", how, router)
	default:
		res.Verdict, res.Reason = Delivered, how+"; the container sees the client's own address (network policies of "+to.Network+" apply)"
	}
	return res, nil
}
