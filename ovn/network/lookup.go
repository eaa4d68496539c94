package network

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Lookup reads network name like Get but without counting its container
// ports: one select of Logical_Switch by name, nothing read from
// Logical_Switch_Port, so its cost does not grow with the number of ports in
// the database (the per-container path, e.g. CNI ADD, should use it). Ports
// is left 0 and Free counts only the gateway and excluded addresses. It
// wraps ErrNotFound like Get.
func Lookup(ctx context.Context, nb client.Client, name string) (*Network, error) {
	// Only the columns fromRow reads: the switch's ports column alone
	// grows with the containers (3,000 UUIDs are ~120 KB on the wire).
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(name)}, switchColumns)
	if err != nil {
		return nil, fmt.Errorf("get network %q: %w", name, err)
	}
	for _, r := range rows {
		if owner.Owned(r.ExternalIDs, owner.KindNetwork) {
			n := fromRow(r, 0)
			return &n, nil
		}
	}
	if len(rows) > 0 {
		return nil, fmt.Errorf("network %q: %w (a Logical_Switch of that name exists but ovlmgr does not manage it)", name, ErrNotFound)
	}
	return nil, fmt.Errorf("network %q: %w (see ovlmgr net list)", name, ErrNotFound)
}
