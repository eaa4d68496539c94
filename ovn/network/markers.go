package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Subnet markers answer "is some network of this scope inside subnet P?" with
// a lookup on _uuid, the one column ovsdb-server looks up without scanning
// the table (a condition on external_ids, even on an indexed column, visits
// every row). A marker is a DHCP_Options row with a UUID derived from the
// scope and P (see markerUUID), cidr P and our external_ids: it exists while
// at least one network of the scope has a subnet strictly inside P. Every
// network keeps the markers of its supernets (/MinPrefix up to its own
// length) alive: creating or moving one into a scope inserts the missing
// ones in the same transaction; deleting or moving one out removes those no
// other network of the scope still needs, guarded by a scan of that scope's
// overlap index (deletes are rare; creates stay O(1) in the network count).
// ovn-northd reads DHCP_Options only through a port's dhcpv4_options or
// dhcpv6_options, which markers never are.

// KindSubnetMarker is the owner kind of subnet marker rows.
const KindSubnetMarker = "subnet-marker"

// markerUUID is the _uuid of scope s's marker for subnet p.
func markerUUID(s Scope, p netip.Prefix) string { return derivedUUID("ovlmgr.io/inside", s, p) }

// supernets returns p's supernets from /MinPrefix up to (not including) its
// own length.
func supernets(p netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for l := MinPrefix; l < p.Bits(); l++ {
		out = append(out, netip.PrefixFrom(p.Addr(), l).Masked())
	}
	return out
}

// uuidWait is a wait on the row of table with UUID u: until "==" fails the
// transaction unless the row exists, until "!=" unless it does not.
func uuidWait(table, u string, until ovsdb.WaitCondition) ovsdb.Operation {
	id := ovsdb.UUID{GoUUID: u}
	if until == ovsdb.WaitConditionEqual {
		return dbops.Exists(table, dbops.ByUUID(u), "_uuid", id)
	}
	return dbops.None(table, dbops.ByUUID(u), "_uuid", id)
}

// insideConds matches the networks of scope s other than the switch except
// (a UUID, or "") whose subnet is strictly inside p (the overlap index keys).
func insideConds(s Scope, p netip.Prefix, except string) []ovsdb.Condition {
	conds := []ovsdb.Condition{dbops.Includes(map[string]string{coverKeyPrefix + itoa(p.Bits()): s.token(p)})}
	if except != "" {
		conds = append(conds, ovsdb.Condition{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: except}})
	}
	return conds
}

// noneInside returns a wait that fails while insideConds matches a switch:
// a scan of Logical_Switch, for the rare paths (stale markers, deletes, moves).
func noneInside(s Scope, p netip.Prefix, except string) ovsdb.Operation {
	return noneWhere(nbdb.LogicalSwitchTable, insideConds(s, p, except)...)
}

// queryMarker adds to tx a read of scope s's marker for p (no row when it
// is absent).
func queryMarker(tx *dbops.Tx, s Scope, p netip.Prefix) *dbops.Result[nbdb.DHCPOptions] {
	return dbops.Query(tx, dbops.ByUUID(markerUUID(s, p)), func(m *nbdb.DHCPOptions) []any { return []any{&m.UUID} })
}

// markOps returns the operations that make scope s's markers for every
// supernet of p exist: an insert for each missing one, a wait for each
// present one (a concurrent delete that removes it fails the transaction,
// which is then retried; so does a concurrent insert of the same marker).
func markOps(ctx context.Context, nb client.Client, s Scope, p netip.Prefix) ([]ovsdb.Operation, error) {
	sups := supernets(p)
	if len(sups) == 0 {
		return nil, nil
	}
	tx := dbops.NewTx(nb)
	var sel []*dbops.Result[nbdb.DHCPOptions]
	for _, q := range sups {
		sel = append(sel, queryMarker(tx, s, q))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read subnet markers: %w", err)
	}
	var ops []ovsdb.Operation
	for i, q := range sups {
		u := markerUUID(s, q)
		if sel[i].Len() > 0 {
			ops = append(ops, uuidWait(nbdb.DHCPOptionsTable, u, ovsdb.WaitConditionEqual))
			continue
		}
		ins, err := nb.Create(&nbdb.DHCPOptions{UUID: u, Cidr: q.String(),
			ExternalIDs: owner.IDs(KindSubnetMarker, s.token(q), map[string]string{owner.KeyRouter: s.Router})})
		if err != nil {
			return nil, fmt.Errorf("subnet marker %s: %w", q, err)
		}
		ops = append(ops, ins...)
	}
	return ops, nil
}

// unmarkOps returns the operations that remove scope s's markers for the
// supernets of p that no network of s other than the switch self still
// needs, each guarded by a scan (a network created inside meanwhile fails
// the transaction, which is then retried).
func unmarkOps(ctx context.Context, nb client.Client, s Scope, p netip.Prefix, self string) ([]ovsdb.Operation, error) {
	sups := supernets(p)
	if len(sups) == 0 {
		return nil, nil
	}
	type read struct {
		marker *dbops.Result[nbdb.DHCPOptions]
		inside *dbops.Result[nbdb.LogicalSwitch]
	}
	tx := dbops.NewTx(nb)
	var sel []read
	for _, q := range sups {
		sel = append(sel, read{queryMarker(tx, s, q),
			dbops.Query(tx, insideConds(s, q, self), func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.UUID} })})
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read subnet markers: %w", err)
	}
	var ops []ovsdb.Operation
	for i, q := range sups {
		if sel[i].marker.Len() == 0 || sel[i].inside.Len() > 0 {
			continue
		}
		ops = append(ops, noneInside(s, q, self), dbops.Delete(nbdb.DHCPOptionsTable, dbops.ByUUID(markerUUID(s, q))))
	}
	return ops, nil
}

// failedIn reports whether err is a transaction error on an operation with
// index in [from, from+n).
func failedIn(err error, from, n int) bool {
	var te *dbconn.TxError
	if !errors.As(err, &te) || te.Op == nil {
		return false
	}
	return te.Op.Index >= from && te.Op.Index < from+n
}
