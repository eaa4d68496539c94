package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// Routers and the overlap scope. A network's overlap scope is part of its
// switch's row UUID (see switchUUID), so moving a network onto or off a
// router re-inserts its Logical_Switch row under the UUID of the new scope,
// with every column (ports, DNS records, load balancers...) carried over,
// in the same transaction as the router ports. ovn-northd then rebuilds the
// network's datapath: its containers keep their ports and addresses and see
// a short pause while the nodes reinstall flows.

// ours reads our switch name (ErrNotFound otherwise).
func ours(ctx context.Context, nb client.Client, name string) (*nbdb.LogicalSwitch, error) {
	rows, err := byName(ctx, nb, name)
	if err != nil {
		return nil, fmt.Errorf("read network %q: %w", name, err)
	}
	for _, r := range rows {
		if owner.Owned(r.ExternalIDs, owner.KindNetwork) {
			return r, nil
		}
	}
	if len(rows) > 0 {
		return nil, fmt.Errorf("network %q: %w (a Logical_Switch of that name exists but ovlmgr does not manage it)", name, ErrNotFound)
	}
	return nil, fmt.Errorf("network %q: %w (see ovlmgr net list)", name, ErrNotFound)
}

// rescopeOps returns the operations that move ls into scope to: overlap
// guards of the new scope, its subnet markers in the new scope and the
// removal of those the old scope no longer needs, a guard that ls did not change since read, the
// delete of ls and the insert of its copy under the new scope's UUID with
// the overlap index and router key rewritten.
func rescopeOps(ctx context.Context, nb client.Client, ls *nbdb.LogicalSwitch, to Scope) ([]ovsdb.Operation, error) {
	key, v4, ok := switchKey(ls)
	if !ok {
		return nil, fmt.Errorf("network %q: stored subnet %q (and no ipv6_prefix): not a CIDR", ls.Name, ls.OtherConfig[ConfigSubnet])
	}
	sub := key
	if v4 {
		if other, err := findOverlap(ctx, nb, to, sub); err != nil {
			return nil, err
		} else if other != nil && other.UUID != ls.UUID {
			return nil, fmt.Errorf("network %q: subnet %s overlaps network %q (%s) in the %s; subnets must not overlap there",
				ls.Name, sub, other.Name, other.OtherConfig[ConfigSubnet], to)
		}
	}
	var p6 netip.Prefix
	if a, err := netip.ParseAddr(ls.OtherConfig[ConfigIPv6Prefix]); err == nil {
		p6 = netip.PrefixFrom(a, IPv6Bits)
		if other, err := findIPv6(ctx, nb, to, p6); err != nil {
			return nil, err
		} else if other != nil && other.UUID != ls.UUID {
			return nil, fmt.Errorf("network %q: IPv6 subnet %s is also network %q's in the %s; IPv6 subnets must be distinct there",
				ls.Name, p6, other.Name, to)
		}
	}
	cp := *ls
	cp.UUID = switchUUID(to, key)
	cp.ExternalIDs = maps.Clone(ls.ExternalIDs)
	for k := range cp.ExternalIDs {
		if strings.HasPrefix(k, coverKeyPrefix) {
			delete(cp.ExternalIDs, k)
		}
	}
	if v4 {
		maps.Copy(cp.ExternalIDs, coverIDs(to, sub))
	}
	if p6.IsValid() {
		cp.ExternalIDs[KeyIPv6] = to.token(p6)
	}
	delete(cp.ExternalIDs, owner.KeyRouter)
	if to.Router != "" {
		cp.ExternalIDs[owner.KeyRouter] = to.Router
	}
	ins, err := nb.Create(&cp)
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	if p6.IsValid() {
		v6, other, err := ipv6Guards(ctx, nb, to, p6, ls.UUID)
		if err != nil {
			return nil, err
		}
		if other != nil {
			return nil, fmt.Errorf("network %q: IPv6 subnet %s is also network %q's in the %s; IPv6 subnets must be distinct there",
				ls.Name, p6, other.Name, to)
		}
		ops = append(ops, v6...)
	}
	if v4 {
		// Moves are rare: the networks-inside check scans (and removes a stale
		// marker) rather than trusting the new scope's marker.
		ops = append(ops, overlapGuards(to, sub, true)...)
		marks, err := markOps(ctx, nb, to, sub)
		if err != nil {
			return nil, err
		}
		unmarks, err := unmarkOps(ctx, nb, Scope{Router: ls.ExternalIDs[owner.KeyRouter]}, sub, ls.UUID)
		if err != nil {
			return nil, err
		}
		ops = append(append(ops, marks...), unmarks...)
	}
	// The switch's ports and external_ids are still as read.
	guard, err := dbops.StillOp(nb, ls, &ls.Ports, &ls.ExternalIDs)
	if err != nil {
		return nil, err
	}
	ops = append(ops, guard, dbops.Delete(nbdb.LogicalSwitchTable, dbops.ByUUID(ls.UUID)))
	return append(ops, ins...), nil
}

// Attach attaches network name to router routerName in one transaction:
// the router gets a port with the network's gateway, the switch a
// router-type port, and the network moves into the router's overlap scope
// (it must not overlap the router's other networks; it may overlap
// networks elsewhere).
//
// An attach whose reply was lost in a leader change runs again
// (dbconn.Retry); finding the network attached to routerName then is its
// own result: success.
func Attach(ctx context.Context, nb client.Client, name, routerName string) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := attach(ctx, nb, name, routerName)
		if again && errors.Is(err, router.ErrExists) {
			return service.Sync(ctx, nb)
		}
		return err
	})
}

func attach(ctx context.Context, nb client.Client, name, routerName string) error {
	ls, err := ours(ctx, nb, name)
	if err != nil {
		return fmt.Errorf("attach network to router %q: %w", routerName, err)
	}
	if r := ls.ExternalIDs[owner.KeyRouter]; r != "" {
		if r == routerName {
			return fmt.Errorf("attach network %q to router %q: %w (already attached)", name, routerName, router.ErrExists)
		}
		return fmt.Errorf("attach network %q to router %q: it is attached to router %q; detach it first", name, routerName, r)
	}
	n, err := routerNet(ls)
	if err != nil {
		return fmt.Errorf("attach network %q to router %q: %w", name, routerName, err)
	}
	ops, err := router.AttachOps(ctx, nb, routerName, n)
	if err != nil {
		return err
	}
	move, err := rescopeOps(ctx, nb, ls, Scope{Router: routerName})
	if err != nil {
		return fmt.Errorf("attach network %q to router %q: %w", name, routerName, err)
	}
	if _, err := dbconn.Transact(ctx, nb, append(move, ops...)...); err != nil {
		return txError(fmt.Sprintf("attach network %q to router %q", name, routerName), err)
	}
	// Names and services now reach across the router's networks.
	if err := service.Sync(ctx, nb); err != nil {
		return fmt.Errorf("attach network %q to router %q: %w", name, routerName, err)
	}
	return nil
}

// txError explains a failed attach/detach transaction.
func txError(what string, err error) error {
	var te *dbconn.TxError
	if errors.As(err, &te) && te.Op != nil && te.Op.Op == ovsdb.OperationWait {
		return fmt.Errorf("%s: the network, the router or an overlapping network changed meanwhile; retry", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func routerNet(ls *nbdb.LogicalSwitch) (router.Net, error) {
	n := router.Net{Name: ls.Name}
	if a, err := netip.ParseAddr(ls.OtherConfig[ConfigIPv6Prefix]); err == nil {
		n.Subnet6 = netip.PrefixFrom(a, IPv6Bits)
		n.Gateway6 = Gateway6(n.Subnet6)
	}
	if ls.OtherConfig[ConfigSubnet] == "" && n.Subnet6.IsValid() {
		return n, nil // IPv6-only
	}
	sub, err := netip.ParsePrefix(ls.OtherConfig[ConfigSubnet])
	if err != nil {
		return router.Net{}, fmt.Errorf("stored subnet %q: %v", ls.OtherConfig[ConfigSubnet], err)
	}
	gw, err := netip.ParseAddr(ls.ExternalIDs[owner.KeyGateway])
	if err != nil {
		gw = sub.Masked().Addr().Next()
	}
	n.Subnet, n.Gateway = sub, gw
	return n, nil
}

// DetachOps returns the operations that detach network name from its
// router and move it back to the global overlap scope, or nil when it is on
// no router. It fails when the subnet overlaps an unattached network.
func DetachOps(ctx context.Context, nb client.Client, name string) ([]ovsdb.Operation, error) {
	ls, err := ours(ctx, nb, name)
	if err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	r := ls.ExternalIDs[owner.KeyRouter]
	if r == "" {
		return nil, nil
	}
	move, err := rescopeOps(ctx, nb, ls, Scope{})
	if err != nil {
		return nil, fmt.Errorf("detach network %q from router %q: %w (outside routers subnets must not overlap)", name, r, err)
	}
	ops, err := router.DetachOps(ctx, nb, name)
	if err != nil {
		return nil, err
	}
	return append(move, ops...), nil
}

// Detach detaches network name from router routerName in one transaction.
// Rerun after a reply lost in a leader change (dbconn.Retry), finding the
// network attached to no router is its own result: success.
func Detach(ctx context.Context, nb client.Client, name, routerName string) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := detach(ctx, nb, name, routerName)
		if again && errors.Is(err, errNotAttached) {
			return service.Sync(ctx, nb)
		}
		return err
	})
}

var errNotAttached = errors.New("the network is not attached to any router")

func detach(ctx context.Context, nb client.Client, name, routerName string) error {
	ls, err := ours(ctx, nb, name)
	if err != nil {
		return fmt.Errorf("detach network from router %q: %w", routerName, err)
	}
	switch r := ls.ExternalIDs[owner.KeyRouter]; {
	case r == "":
		return fmt.Errorf("detach network %q from router %q: %w", name, routerName, errNotAttached)
	case r != routerName:
		return fmt.Errorf("detach network %q from router %q: the network is attached to router %q", name, routerName, r)
	}
	ops, err := DetachOps(ctx, nb, name)
	if err != nil {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return txError(fmt.Sprintf("detach network %q from router %q", name, routerName), err)
	}
	if err := service.Sync(ctx, nb); err != nil {
		return fmt.Errorf("detach network %q from router %q: %w", name, routerName, err)
	}
	return nil
}

// DeleteRouter deletes router name; with force it first detaches every
// network on it (each back to the global overlap scope), all in one
// transaction.
//
// A delete whose reply was lost in a leader change runs again
// (dbconn.Retry); finding no router then is its own result: success.
func DeleteRouter(ctx context.Context, nb client.Client, name string, force bool) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := deleteRouter(ctx, nb, name, force)
		if again && errors.Is(err, router.ErrNotFound) {
			return nil
		}
		return err
	})
}

func deleteRouter(ctx context.Context, nb client.Client, name string, force bool) error {
	// The networks move in one transaction, planned from one read: a subnet
	// marker they share in the global scope is inserted once, and the
	// router's scope loses all of its markers at once.
	inserted := map[string]bool{}
	first := true
	return router.Delete(ctx, nb, name, force, func(network string) ([]ovsdb.Operation, error) {
		ops, err := DetachOps(ctx, nb, network)
		if err != nil {
			return nil, err
		}
		var out []ovsdb.Operation
		if first {
			first = false
			sel := owner.Selector(KindSubnetMarker)
			sel[owner.KeyRouter] = name
			out = append(out, dbops.Delete(nbdb.DHCPOptionsTable, []ovsdb.Condition{dbops.Includes(sel)}))
		}
		for _, op := range ops {
			if op.Op == ovsdb.OperationInsert && op.Table == nbdb.DHCPOptionsTable {
				if inserted[op.UUID] {
					continue
				}
				inserted[op.UUID] = true
			}
			out = append(out, op)
		}
		return out, nil
	})
}

// createExtras returns what Create adds to its transaction for s: the
// router attachment (s.Router) and the port group with the isolation ACLs.
func createExtras(ctx context.Context, nb client.Client, s Spec, p *plan) ([]ovsdb.Operation, error) {
	if s.Isolation == policy.DefaultDeny {
		if err := policy.EnsureLogMeter(ctx, nb); err != nil {
			return nil, err
		}
	}
	ops, err := policy.CreateNetworkOps(nb, p.name, s.Isolation)
	if err != nil {
		return nil, err
	}
	if s.Router == "" {
		return ops, nil
	}
	att, err := router.AttachOps(ctx, nb, s.Router, router.Net{Name: p.name, Subnet: p.subnet, Gateway: p.gateway, Subnet6: p.ipv6, Gateway6: p.gateway6})
	if err != nil {
		return nil, err
	}
	return append(ops, att...), nil
}

// deleteExtras returns what Delete adds to its transaction: the router
// attachment's ports and the network's port group with its ACLs (policies
// on it, isolation) and their address sets.
func deleteExtras(ctx context.Context, nb client.Client, name string) ([]ovsdb.Operation, error) {
	ops, err := router.DetachOps(ctx, nb, name)
	if err != nil {
		return nil, err
	}
	pol, err := policy.DeleteNetworkOps(ctx, nb, name)
	if err != nil {
		return nil, err
	}
	ops = append(ops, pol...)
	// Its services, its DNS row (and references from peers), its nameserver port.
	svc, err := service.DeleteNetworkOps(ctx, nb, name)
	if err != nil {
		return nil, err
	}
	names, err := dns.DeleteOps(ctx, nb, name)
	if err != nil {
		return nil, err
	}
	return append(append(ops, svc...), names...), nil
}

// validateRouting checks s.Router and s.Isolation.
func validateRouting(s Spec) error {
	if s.Router != "" {
		if err := ValidateName("router", s.Router); err != nil {
			return err
		}
	}
	if err := policy.ValidateIsolation(s.Isolation); err != nil {
		return err
	}
	return nil
}

// addRouting records s's router and isolation mode on the switch row.
func addRouting(ls *nbdb.LogicalSwitch, s Spec) {
	if s.Router != "" {
		ls.ExternalIDs[owner.KeyRouter] = s.Router
	}
	mode := s.Isolation
	if mode == "" {
		mode = policy.DefaultAllow
	}
	ls.ExternalIDs[policy.KeyIsolation] = mode
}

// isolation is the isolation mode recorded on a switch.
func isolation(ls *nbdb.LogicalSwitch) string {
	if m := ls.ExternalIDs[policy.KeyIsolation]; m != "" {
		return m
	}
	return policy.DefaultAllow
}
