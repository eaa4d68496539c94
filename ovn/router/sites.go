package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// ErrSiteOverlap: a subnet overlaps one that another site brings to a
// linked router (ovn/site.ErrOverlap is this error).
var ErrSiteOverlap = errors.New("subnets of linked routers must not overlap across sites")

// KeyLearnedRoute marks a Logical_Router_Static_Route that ovn-ic learned
// from another site.
const KeyLearnedRoute = "ic-learned-route"

// learnedOverlap refuses n when its IPv4 subnet overlaps a route ovn-ic
// learned on router lr from another site.
func learnedOverlap(ctx context.Context, c client.Client, lr *nbdb.LogicalRouter, n Net) error {
	if !n.Subnet.IsValid() || len(lr.StaticRoutes) == 0 {
		return nil
	}
	// One select by _uuid per route, in one round trip (a scalar column
	// compared with a set of two or more is a syntax error to ovsdb-server).
	tx := dbops.NewTx(c)
	qs := make([]*dbops.Result[nbdb.LogicalRouterStaticRoute], 0, len(lr.StaticRoutes))
	for _, u := range lr.StaticRoutes {
		qs = append(qs, dbops.Query[nbdb.LogicalRouterStaticRoute](tx, []ovsdb.Condition{dbops.UUIDIs(u)}))
	}
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("read the router's routes: %w", err)
	}
	var rs []*nbdb.LogicalRouterStaticRoute
	for _, q := range qs {
		rows, err := q.Rows()
		if err != nil {
			return fmt.Errorf("read the router's routes: %w", err)
		}
		rs = append(rs, rows...)
	}
	for _, r := range rs {
		if _, ok := r.ExternalIDs[KeyLearnedRoute]; !ok {
			continue
		}
		p, err := netip.ParsePrefix(r.IPPrefix)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		if p.Masked().Overlaps(n.Subnet) {
			return fmt.Errorf("subnet %v overlaps %v, which another site brings to this router (route learned through OVN-IC via %s): %w", n.Subnet, p.Masked(), r.Nexthop, ErrSiteOverlap)
		}
	}
	return nil
}
