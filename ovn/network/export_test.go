package network

import (
	"context"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// IPv6GuardsOf exposes ipv6Guards (scope of router; "" global) to tests:
// the guards and the name of an unindexed holder.
func IPv6GuardsOf(ctx context.Context, nb client.Client, router string, p netip.Prefix) ([]ovsdb.Operation, string, error) {
	ops, other, err := ipv6Guards(ctx, nb, Scope{Router: router}, p, "")
	if other != nil {
		return ops, other.Name, err
	}
	return ops, "", err
}
