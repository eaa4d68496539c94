package fip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// Gateway is what floating IPs and published ports need of a router's
// gateway: its external network and address, and the external switch
// whose localnet port names the physical network.
type Gateway struct {
	Router         string
	LRP            string
	ExternalSwitch string
	ExternalNet    netip.Prefix
	ExternalIP     netip.Addr
	NextHop        netip.Addr
	Nodes          []string
}

// ErrNoGateway: the router has no gateway (router gateway set makes one).
var ErrNoGateway = errors.New("no gateway")

// GatewayOf reads router's gateway.
func GatewayOf(ctx context.Context, nb client.Client, router string) (*Gateway, error) {
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs(router)})
	if err != nil {
		return nil, fmt.Errorf("read router %q: %w", router, err)
	}
	if len(lrs) == 0 {
		return nil, fmt.Errorf("router %q: not found", router)
	}
	if len(lrs[0].Ports) == 0 {
		return nil, fmt.Errorf("router %q: %w", router, ErrNoGateway)
	}
	var where []ovsdb.Condition
	lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, nb, where)
	if err != nil {
		return nil, fmt.Errorf("read router %q ports: %w", router, err)
	}
	mine := map[string]bool{}
	for _, u := range lrs[0].Ports {
		mine[u] = true
	}
	for _, p := range lrps {
		if !mine[p.UUID] || len(p.GatewayChassis) == 0 || len(p.Networks) == 0 {
			continue
		}
		pre, err := netip.ParsePrefix(p.Networks[0])
		if err != nil {
			continue
		}
		g := &Gateway{Router: router, LRP: p.Name, ExternalNet: pre.Masked(), ExternalIP: pre.Addr()}
		gcs, err := dbops.SelectRows[nbdb.GatewayChassis](ctx, nb, nil)
		if err != nil {
			return nil, err
		}
		prio := map[string]int{}
		for _, gc := range gcs {
			for _, u := range p.GatewayChassis {
				if u == gc.UUID {
					g.Nodes = append(g.Nodes, gc.ChassisName)
					prio[gc.ChassisName] = gc.Priority
				}
			}
		}
		sort.Slice(g.Nodes, func(i, j int) bool { return prio[g.Nodes[i]] > prio[g.Nodes[j]] })
		lsps, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, nb, []ovsdb.Condition{dbops.Equal("type", "router")})
		if err != nil {
			return nil, err
		}
		for _, l := range lsps {
			if l.Options["router-port"] != p.Name {
				continue
			}
			lss, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, nb, []ovsdb.Condition{dbops.Contains("ports", dbops.UUIDSet(l.UUID))})
			if err != nil {
				return nil, err
			}
			if len(lss) > 0 {
				g.ExternalSwitch = lss[0].Name
			}
		}
		return g, nil
	}
	return nil, fmt.Errorf("router %q: %w", router, ErrNoGateway)
}
