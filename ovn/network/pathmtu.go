package network

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// KeyPathMTU, in NB_Global external_ids, is the deployment's smallest
// underlay path MTU: the largest outer packet that crosses between any two
// nodes (a routed underlay, a WAN or VPN link between racks). Nodes record
// it when they join (`node join --path-mtu`), only ever lowering it. A
// container MTU derived from the node (no network or request MTU) is the
// smaller of the node's encap link MTU and this value, minus the Geneve
// overhead, so one network has one MTU on every node. See docs/sites.md.
const KeyPathMTU = "ovlmgr.io/underlay-path-mtu"

// MinPathMTU and MaxPathMTU bound a recorded path MTU (IPv4's 576 would
// leave no room for Geneve's overhead: the least useful path is 1280).
const (
	MinPathMTU = 1280
	MaxPathMTU = 9000
)

// ErrNoGlobal: the NB database has no NB_Global row (ovn-northd never ran on it).
var ErrNoGlobal = errors.New("NB_Global has no row: has ovn-northd ever connected to this Northbound database?")

var globalRows = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}

func readGlobal(ctx context.Context, nb client.Client) (*nbdb.NBGlobal, error) {
	gs, err := dbops.SelectRows[nbdb.NBGlobal](ctx, nb, globalRows, func(g *nbdb.NBGlobal) []any { return []any{&g.UUID, &g.ExternalIDs, &g.Ipsec} })
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, ErrNoGlobal
	}
	return gs[0], nil
}

// Underlay is what the NB says about the deployment's underlay that sets
// container MTUs: the recorded path MTU and whether tunnels are encrypted.
type Underlay struct {
	// PathMTU is the recorded underlay path MTU, 0 when none is recorded
	// (every path carries the nodes' link MTU).
	PathMTU int
	// Encrypted is NB_Global ipsec (ovlmgr encrypt on): every tunnel packet
	// also carries ESP (ovs/mtu.IPsecESP).
	Encrypted bool
}

// ReadUnderlay reads the deployment's Underlay in one NB_Global read.
func ReadUnderlay(ctx context.Context, nb client.Client) (Underlay, error) {
	g, err := readGlobal(ctx, nb)
	if errors.Is(err, ErrNoGlobal) {
		return Underlay{}, nil
	}
	if err != nil {
		return Underlay{}, fmt.Errorf("read underlay path MTU: %w", err)
	}
	u := Underlay{Encrypted: g.Ipsec}
	v, ok := g.ExternalIDs[KeyPathMTU]
	if !ok {
		return u, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return Underlay{}, fmt.Errorf("read underlay path MTU: NB_Global external_ids:%s=%q is not a number", KeyPathMTU, v)
	}
	u.PathMTU = n
	return u, nil
}

// PathMTU returns the deployment's recorded underlay path MTU, 0 when none
// is recorded (every path carries the nodes' link MTU).
func PathMTU(ctx context.Context, nb client.Client) (int, error) {
	u, err := ReadUnderlay(ctx, nb)
	return u.PathMTU, err
}

// SetPathMTU records mtu as the deployment's underlay path MTU whatever is
// recorded, raising it too (after a WAN upgrade: an admin's deliberate
// step; containers keep the MTU they were attached with until re-attached).
func SetPathMTU(ctx context.Context, nb client.Client, mtu int) error {
	_, err := recordPathMTU(ctx, nb, mtu, false)
	return err
}

// LowerPathMTU records mtu as the deployment's underlay path MTU unless a
// smaller one is recorded already, and returns the value now in force. It
// never raises it: a node joining with a smaller path lowers the MTU of
// containers attached from then on; containers attached before keep theirs
// (diagnose mtu shows them) until they are re-attached.
func LowerPathMTU(ctx context.Context, nb client.Client, mtu int) (int, error) {
	return recordPathMTU(ctx, nb, mtu, true)
}

// recordPathMTU writes mtu into NB_Global; onlyLower keeps a smaller value
// already recorded.
func recordPathMTU(ctx context.Context, nb client.Client, mtu int, onlyLower bool) (int, error) {
	if mtu < MinPathMTU || mtu > MaxPathMTU {
		return 0, fmt.Errorf("record underlay path MTU: %w", names.Bad("path mtu", mtu, "out of range (want %d to %d)", MinPathMTU, MaxPathMTU))
	}
	for attempt := 0; ; attempt++ {
		g, err := readGlobal(ctx, nb)
		if err != nil && !errors.Is(err, ErrNoGlobal) {
			return 0, fmt.Errorf("record underlay path MTU %d: %w", mtu, err)
		}
		val := map[string]string{KeyPathMTU: strconv.Itoa(mtu)}
		tx := dbops.NewTx(nb)
		var guard *dbops.Op
		if g == nil {
			// Before ovn-northd's first start: create the one row (the
			// schema allows one, so of two creators one fails and reads again).
			tx.Create(&nbdb.NBGlobal{ExternalIDs: val})
		} else {
			if cur, err := strconv.Atoi(g.ExternalIDs[KeyPathMTU]); err == nil && (cur == mtu || (onlyLower && cur < mtu)) {
				return cur, nil
			}
			guard = dbops.Still(tx, g, &g.ExternalIDs)
			dbops.Typed[nbdb.NBGlobal](tx).SetKeys(dbops.ByUUID(g.UUID), "external_ids", val)
		}
		err = tx.Transact(ctx)
		if err == nil {
			return mtu, nil
		}
		if (guard != nil && !guard.Failed(err)) || attempt >= 5 {
			return 0, fmt.Errorf("record underlay path MTU %d: %w", mtu, err)
		}
		// Another writer changed NB_Global in between: read again.
	}
}
