package router

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Gateway hooks. A router's gateway (package ovn/gateway) is a
// Logical_Router_Port of owner kind KindGateway; while it exists every
// attached network not listed in its KeyNoSNAT has a snat NAT row (kind
// KindSNAT) to the gateway's external IP. Attach and detach keep those rows
// in step, in their own transaction.
const (
	// KindGateway marks the rows of a router's gateway: the external
	// Logical_Switch and its two ports, the gateway Logical_Router_Port, its
	// Gateway_Chassis rows and the default route.
	KindGateway = "gateway"
	// KindSNAT marks the snat NAT row of one network on a router with a gateway.
	KindSNAT = "snat"
	// KeyNoSNAT on the gateway router port lists (comma separated) the
	// networks that are routed without SNAT.
	KeyNoSNAT = "ovlmgr.io/no-snat"
)

// GatewayPort reads router's gateway port (nil when it has none).
func GatewayPort(ctx context.Context, c client.Client, router string) (*nbdb.LogicalRouterPort, error) {
	lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, c, []ovsdb.Condition{dbops.Owned(KindGateway, map[string]string{owner.KeyRouter: router})})
	if err != nil {
		return nil, fmt.Errorf("read gateway port of router %q: %w", router, err)
	}
	if len(lrps) == 0 {
		return nil, nil
	}
	return lrps[0], nil
}

// NoSNAT reports whether the gateway port p excludes network from SNAT.
func NoSNAT(p *nbdb.LogicalRouterPort, network string) bool {
	for _, n := range strings.Split(p.ExternalIDs[KeyNoSNAT], ",") {
		if n == network {
			return true
		}
	}
	return false
}

// SNATOps returns the insert of network's snat NAT row (subnet to extIP) on
// router (by UUID) and its reference from the router. uuidName is the
// named UUID of the insert, unique in its transaction.
func SNATOps(c client.Client, router, lrUUID string, extIP netip.Addr, network string, subnet netip.Prefix, uuidName string) ([]ovsdb.Operation, error) {
	nat := &nbdb.NAT{UUID: uuidName, Type: nbdb.NATTypeSNAT, ExternalIP: extIP.String(), LogicalIP: subnet.Masked().String(),
		ExternalIDs: owner.IDs(KindSNAT, router+"/"+network, map[string]string{owner.KeyRouter: router, owner.KeyNetwork: network})}
	ins, err := c.Create(nat)
	if err != nil {
		return nil, fmt.Errorf("snat of network %q: %w", network, err)
	}
	return append(ins, dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(lrUUID), "nat", nat.UUID)), nil
}

// attachSNATOps returns SNATOps for network n when router lr has a gateway
// that does not exclude it, else nothing.
func attachSNATOps(ctx context.Context, c client.Client, lr *nbdb.LogicalRouter, n Net) ([]ovsdb.Operation, error) {
	gw, err := GatewayPort(ctx, c, lr.Name)
	if err != nil || gw == nil || NoSNAT(gw, n.Name) {
		return nil, err
	}
	// The gateway's external address of each family: the network's IPv4
	// subnet is SNATed to the IPv4 one, its IPv6 /64 to the IPv6 one
	// (NAT66), when both sides have that family.
	var ops []ovsdb.Operation
	var ext4, ext6 bool
	for _, s := range gw.Networks {
		ext, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("gateway port %s of router %q: address %q: %v", gw.Name, lr.Name, s, err)
		}
		var sub netip.Prefix
		name := "newsnat"
		switch {
		case ext.Addr().Is4() && !ext4:
			ext4, sub = true, n.Subnet
		case ext.Addr().Is6() && !ext6:
			ext6, sub, name = true, n.Subnet6, "newsnat6"
		}
		if !sub.IsValid() {
			continue
		}
		o, err := SNATOps(c, lr.Name, lr.UUID, ext.Addr(), n.Name, sub, name)
		if err != nil {
			return nil, err
		}
		ops = append(ops, o...)
	}
	return ops, nil
}

// detachSNATOps removes network's snat row from router. It is guarded: no
// snat row of the network exists but those read, so a gateway set
// meanwhile (which rewrites the snat rows) makes the detach fail rather
// than leave a row behind. The guard looks at this network's rows only, so
// several detaches compose in one transaction (router delete --force).
func detachSNATOps(ctx context.Context, c client.Client, router, network string) ([]ovsdb.Operation, error) {
	sel := map[string]string{owner.KeyRouter: router, owner.KeyNetwork: network}
	nats, err := dbops.SelectRows(ctx, c, []ovsdb.Condition{dbops.Owned(KindSNAT, sel)}, func(m *nbdb.NAT) []any { return []any{&m.UUID} })
	if err != nil {
		return nil, fmt.Errorf("read snat of network %q on router %q: %w", network, router, err)
	}
	where := []ovsdb.Condition{dbops.Owned(KindSNAT, sel)}
	var uuids []string
	for _, n := range nats {
		uuids = append(uuids, n.UUID)
		where = append(where, ovsdb.NewCondition("_uuid", ovsdb.ConditionNotEqual, ovsdb.UUID{GoUUID: n.UUID}))
	}
	ids := owner.IDs(KindSNAT, router+"/"+network, sel)
	ops := []ovsdb.Operation{dbops.None(nbdb.NATTable, where, "external_ids", dbops.StrMap(ids))}
	if len(uuids) > 0 {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.NameIs(router), dbops.Owned(owner.KindRouter, nil)}, "nat", uuids...))
	}
	return ops, nil
}

// deleteGatewayOps removes the root rows of router's gateway (its external
// switch); the router's own delete takes the port, Gateway_Chassis, route
// and NAT rows with it.
func deleteGatewayOps(router string) []ovsdb.Operation {
	return []ovsdb.Operation{dbops.Delete(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.Owned(KindGateway, map[string]string{owner.KeyRouter: router})})}
}
