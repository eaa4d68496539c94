package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// AreaExternal is the area of the router gateway checks.
const AreaExternal = "external"

// externalChecks checks every router gateway: each gateway node maps the
// external network's physical network to a bridge, the chassisredirect
// port is bound to a gateway node that is up, and the next hop has
// answered ARP (a MAC_Binding on the gateway port). It also finds floating
// IPs and published ports whose container port is gone.
func externalChecks(ctx context.Context, nb, sb client.Client) []Check {
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindRouter, nil)},
		func(m *nbdb.LogicalRouter) []any { return []any{&m.UUID, &m.Name} })
	if err != nil {
		return []Check{Failf(AreaExternal, "gateways", "check NB reachability", "read routers: %v", err)}
	}
	var out []Check
	for _, lr := range lrs {
		gw, err := gateway.Get(ctx, nb, lr.Name)
		if errors.Is(err, gateway.ErrNoGateway) {
			continue
		}
		if err != nil {
			out = append(out, Failf(AreaExternal, "router "+lr.Name, "check NB reachability", "read gateway: %v", err))
			continue
		}
		out = append(out, gatewayChecks(ctx, nb, sb, gw)...)
	}
	out = append(out, orphanChecks(ctx, nb)...)
	return out
}

func gatewayChecks(ctx context.Context, nb, sb client.Client, gw *gateway.Gateway) []Check {
	area, r := AreaExternal, gw.Router
	var out []Check
	physnet := gw.Physnet
	switch {
	case physnet == "":
		out = append(out, Failf(area, "router "+r+" bridge mappings", fmt.Sprintf("set the gateway again: ovlmgr router gateway set %s ...", r),
			"external switch %q has no localnet port: the gateway reaches no physical network", gw.Switch))
	default:
		var missing []string
		for _, n := range gw.Nodes {
			m, err := fip.BridgeMappings(ctx, sb, n)
			if err != nil {
				out = append(out, Failf(area, "router "+r+" bridge mappings", "check SB reachability", "read chassis %s: %v", n, err))
				continue
			}
			if _, ok := m[physnet]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			out = append(out, Failf(area, "router "+r+" bridge mappings",
				fmt.Sprintf("give node(s) %s the external network (ovlmgr node join with the external bridge, on each), or drop them from --nodes", strings.Join(missing, ", ")),
				"gateway node(s) %s have no ovn-bridge-mappings entry for %q: they cannot reach external network %s", strings.Join(missing, ", "), physnet, extNets(gw)))
		} else {
			out = append(out, Okf(area, "router "+r+" bridge mappings", "every gateway node (%s) maps %q", strings.Join(gw.Nodes, ", "), physnet))
		}
	}
	// The chassisredirect port: bound to the active gateway node.
	cr := gw.RedirectPort
	pbs, err := dbops.SelectRows[sbdb.PortBinding](ctx, sb, []ovsdb.Condition{dbops.Equal("logical_port", cr)},
		func(m *sbdb.PortBinding) []any { return []any{&m.UUID, &m.Chassis} })
	if err != nil {
		return append(out, Failf(area, "router "+r+" active gateway", "check SB reachability", "read binding of %s: %v", cr, err))
	}
	bound := ""
	if len(pbs) > 0 && pbs[0].Chassis != nil {
		chs, err := dbops.SelectRows[sbdb.Chassis](ctx, sb, []ovsdb.Condition{dbops.UUIDIs(*pbs[0].Chassis)}, func(m *sbdb.Chassis) []any { return []any{&m.UUID, &m.Name} })
		if err == nil && len(chs) > 0 {
			bound = chs[0].Name
		}
	}
	switch {
	case len(pbs) == 0:
		out = append(out, Failf(area, "router "+r+" active gateway", "check ovn-northd (ovlmgr diagnose --sync)",
			"no chassisredirect port %s in SB: ovn-northd has not processed the gateway", cr))
	case bound == "":
		out = append(out, Failf(area, "router "+r+" active gateway",
			fmt.Sprintf("start ovn-controller on a gateway node (%s) or add a node that is up to --nodes", strings.Join(gw.Nodes, ", ")),
			"%s is bound on no node: no gateway node is up; egress, floating IPs on the gateway and published ports are down", cr))
	case len(gw.Nodes) > 0 && bound != gw.Nodes[0]:
		out = append(out, Warnf(area, "router "+r+" active gateway", fmt.Sprintf("bring node %s back (ovlmgr diagnose --node %s); traffic returns to it by itself", gw.Nodes[0], gw.Nodes[0]),
			"active on standby node %s: the preferred node %s is down or unreachable", bound, gw.Nodes[0]))
	default:
		out = append(out, Okf(area, "router "+r+" active gateway", "%s active on node %s (gateway nodes %s)", gw.Port, bound, strings.Join(gw.Nodes, ", ")))
	}
	// The next hops: a MAC_Binding on the gateway port once one answered
	// ARP (IPv4) or neighbour discovery (IPv6, a dual-stack gateway).
	for _, h := range []struct {
		name, asked string
		ip          netip.Addr
	}{{"next hop", "ARP", gw.NextHop}, {"next hop6", "neighbour discovery", gw.NextHop6}} {
		if !h.ip.IsValid() {
			continue
		}
		mbs, err := dbops.SelectRows[sbdb.MACBinding](ctx, sb, []ovsdb.Condition{dbops.Equal("logical_port", gw.Port), dbops.Equal("ip", h.ip.String())})
		switch {
		case err != nil:
			out = append(out, Warnf(area, "router "+r+" "+h.name, "check SB reachability", "read MAC bindings: %v", err))
		case len(mbs) == 0:
			out = append(out, Warnf(area, "router "+r+" "+h.name,
				fmt.Sprintf("check that %s is up on the external network; send a packet out (ovlmgr trace CONTAINER %s) and look again", h.ip, h.ip),
				"%s %s has not answered %s on %s yet (no MAC binding in SB; OVN asks on the first packet out)", h.name, h.ip, h.asked, gw.Port))
		default:
			out = append(out, Okf(area, "router "+r+" "+h.name, "%s %s answered %s (%s)", h.name, h.ip, h.asked, mbs[0].MAC))
		}
	}
	return out
}

// orphanChecks finds floating IPs and published ports whose container port
// no longer exists (made before their removal on DEL existed, or left by
// `net delete --force`).
func orphanChecks(ctx context.Context, nb client.Client) []Check {
	fs, err := fip.List(ctx, nb)
	if err != nil {
		return []Check{Warnf(AreaExternal, "floating IPs", "check NB reachability", "%v", err)}
	}
	ps, err := publish.List(ctx, nb, publish.Filter{})
	if err != nil {
		return []Check{Warnf(AreaExternal, "published ports", "check NB reachability", "%v", err)}
	}
	if len(fs) == 0 && len(ps) == 0 {
		return nil
	}
	tx := dbops.NewTx(nb)
	exists := map[string]*dbops.Result[nbdb.LogicalSwitchPort]{}
	for _, f := range fs {
		exists[f.Port] = dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(f.Port)}, func(m *nbdb.LogicalSwitchPort) []any { return []any{&m.UUID} })
	}
	for _, p := range ps {
		exists[p.Port] = dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(p.Port)}, func(m *nbdb.LogicalSwitchPort) []any { return []any{&m.UUID} })
	}
	if err := tx.Transact(ctx); err != nil {
		return []Check{Warnf(AreaExternal, "floating IPs", "check NB reachability", "%v", err)}
	}
	var out []Check
	for _, f := range fs {
		if exists[f.Port].Len() == 0 {
			out = append(out, Warnf(AreaExternal, "floating IP "+f.IP.String(), "ovlmgr fip delete "+f.IP.String(),
				"its container %.12s (port %s) is gone", f.Container, f.Port))
		}
	}
	for _, p := range ps {
		if exists[p.Port].Len() == 0 {
			out = append(out, Warnf(AreaExternal, fmt.Sprintf("published %s:%d/%s", p.Address, p.HostPort, p.Protocol),
				"ovn-nbctl lb-del "+publish.LBName(p.Address, p.HostPort, p.Protocol),
				"its container %.12s (port %s) is gone", p.Container, p.Port))
		}
	}
	if len(out) == 0 {
		out = append(out, Okf(AreaExternal, "floating IPs and published ports", "%d floating IP(s), %d published port(s), all of existing containers", len(fs), len(ps)))
	}
	return out
}

// extNets names a gateway's external networks ("198.18.100.0/24",
// "198.18.100.0/24 and fd00:198:18:100::/64", or the IPv6 one alone).
func extNets(gw *gateway.Gateway) string {
	var n []string
	for _, p := range []netip.Prefix{gw.ExternalNet, gw.ExternalNet6} {
		if p.IsValid() {
			n = append(n, p.String())
		}
	}
	return strings.Join(n, " and ")
}
