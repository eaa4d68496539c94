package network

import (
	"context"
	"crypto/sha1"
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Scope is a set of networks whose IPv4 subnets must not overlap. Today all
// ovlmgr networks share the global scope; routers give each router its own
// scope so that tenants may reuse subnets. A network's scope is fixed when it
// is created: it is part of the switch's row UUID (see switchUUID).
type Scope struct {
	// Router names the router whose networks form the scope; "" is the
	// global scope.
	Router string
}

func (s Scope) String() string {
	if s.Router == "" {
		return "global scope"
	}
	return "router " + s.Router
}

// token names subnet p inside the scope.
func (s Scope) token(p netip.Prefix) string {
	if s.Router == "" {
		return p.String()
	}
	return s.Router + ":" + p.String()
}

// coverKeyPrefix prefixes the external_ids that index a network's subnet for
// the overlap check: "ovlmgr.io/in.L" = the subnet's /L supernet, for every L
// from MinPrefix up to (not including) the subnet's own length.
const coverKeyPrefix = "ovlmgr.io/in."

// switchUUID derives the Logical_Switch row UUID from the scope and subnet
// (a name-based, version 5 style UUID). Two subnets overlap exactly when one
// contains the other, so "does a network with subnet X exist in this scope"
// becomes a lookup on _uuid, the one column ovsdb-server indexes in every
// table: the overlap check costs the same with 10 or 10,000 networks.
func switchUUID(s Scope, p netip.Prefix) string { return derivedUUID("ovlmgr.io/network", s, p) }

// derivedUUID is a name-based (version 5 style) UUID of kind, scope s and
// subnet p.
func derivedUUID(kind string, s Scope, p netip.Prefix) string {
	h := sha1.Sum([]byte(kind + "\x00" + s.Router + "\x00" + p.String()))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// coverIDs returns the overlap-index external_ids of subnet p in scope s.
func coverIDs(s Scope, p netip.Prefix) map[string]string {
	ids := map[string]string{}
	for l := MinPrefix; l < p.Bits(); l++ {
		ids[coverKeyPrefix+itoa(l)] = s.token(netip.PrefixFrom(p.Addr(), l).Masked())
	}
	return ids
}

// overlapGuards returns wait operations that make a transaction fail while a
// network of scope s overlaps p. Subnets overlap iff one contains the other:
//   - a network equal to or containing p has one of p's supernets (/MinPrefix
//     to /len(p)) as subnet: one wait per supernet on the derived _uuid
//     (an index lookup);
//   - a network inside p keeps scope s's marker for p alive (see markers.go):
//     the last wait, on the marker's _uuid. When a marker outlived its
//     networks (stale), stale is true: the last wait is then a scan of the
//     overlap index ("ovlmgr.io/in.<len(p)>" = p) and the marker is deleted.
//
// Put them in the create transaction: concurrent creates of overlapping
// subnets then have at most one winner.
func overlapGuards(s Scope, p netip.Prefix, stale bool) []ovsdb.Operation {
	var ops []ovsdb.Operation
	for l := MinPrefix; l <= p.Bits(); l++ {
		ops = append(ops, uuidWait(nbdb.LogicalSwitchTable, switchUUID(s, netip.PrefixFrom(p.Addr(), l).Masked()), ovsdb.WaitConditionNotEqual))
	}
	if !stale {
		return append(ops, uuidWait(nbdb.DHCPOptionsTable, markerUUID(s, p), ovsdb.WaitConditionNotEqual))
	}
	return append(ops, noneInside(s, p, ""), dbops.Delete(nbdb.DHCPOptionsTable, dbops.ByUUID(markerUUID(s, p))))
}

// noneWhere returns a wait operation that fails unless no row of table
// matches conds. OVSDB's wait compares the set of matching rows, projected on
// some columns, with given rows; libovsdb cannot send an empty row list, so
// the check is phrased as "!= [{copp: []}]" with "copp == []" added to the
// conditions: every matching row projects to that one value. (ovlmgr never
// sets copp on its switches; a row given a copp by hand escapes the check.)
func noneWhere(table string, conds ...ovsdb.Condition) ovsdb.Operation {
	empty := dbops.UUIDSet()
	return dbops.None(table, append([]ovsdb.Condition{dbops.Equal("copp", empty)}, conds...), "copp", empty)
}

// findOverlap names an ovlmgr network of scope s that overlaps p (the first
// by name when several do), reading only the rows the guards point at. It
// returns nil when there is none.
func findOverlap(ctx context.Context, nb client.Client, s Scope, p netip.Prefix) (*nbdb.LogicalSwitch, error) {
	tx := dbops.NewTx(nb)
	var sel []*dbops.Result[nbdb.LogicalSwitch]
	for l := MinPrefix; l <= p.Bits(); l++ {
		sel = append(sel, dbops.Query[nbdb.LogicalSwitch](tx, dbops.ByUUID(switchUUID(s, netip.PrefixFrom(p.Addr(), l).Masked()))))
	}
	sel = append(sel, dbops.Query[nbdb.LogicalSwitch](tx,
		[]ovsdb.Condition{dbops.Includes(map[string]string{coverKeyPrefix + itoa(p.Bits()): s.token(p)})}))
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("find overlapping network: %w", err)
	}
	var first *nbdb.LogicalSwitch
	for _, q := range sel {
		rows, err := q.Rows()
		if err != nil {
			return nil, err
		}
		for _, ls := range rows {
			if owner.Owned(ls.ExternalIDs, owner.KindNetwork) && (first == nil || ls.Name < first.Name) {
				first = ls
			}
		}
	}
	return first, nil
}

// key is the prefix the switch's row UUID derives from: the IPv4 subnet,
// or the IPv6 /64 of an IPv6-only network.
func (p *plan) key() netip.Prefix {
	if p.v4() {
		return p.subnet
	}
	return p.ipv6
}

// switchKey is key for a stored switch: its IPv4 subnet, else its IPv6
// /64; ok is false when it has neither.
func switchKey(ls *nbdb.LogicalSwitch) (pfx netip.Prefix, v4 bool, ok bool) {
	if sub, err := netip.ParsePrefix(ls.OtherConfig["subnet"]); err == nil {
		return sub, true, true
	}
	if v6, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil {
		return netip.PrefixFrom(v6, IPv6Bits), false, true
	}
	return netip.Prefix{}, false, false
}

// ipv6Guard is a wait that fails while a network of scope s holds /64 p
// (every network with IPv6 carries KeyIPv6 = s.token(p)). IPv6 subnets
// are all /64s: two overlap only when equal.
func ipv6Guard(s Scope, p netip.Prefix) ovsdb.Operation {
	return noneWhere(nbdb.LogicalSwitchTable, dbops.Includes(map[string]string{KeyIPv6: s.token(p)}))
}

// findIPv6 returns the ovlmgr network of scope s holding /64 p, or nil.
func findIPv6(ctx context.Context, nb client.Client, s Scope, p netip.Prefix) (*nbdb.LogicalSwitch, error) {
	rows, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, nb, []ovsdb.Condition{dbops.Includes(map[string]string{KeyIPv6: s.token(p)})})
	if err != nil {
		return nil, err
	}
	for _, ls := range rows {
		if owner.Owned(ls.ExternalIDs, owner.KindNetwork) {
			return ls, nil
		}
	}
	return nil, nil
}

// Networks created before KeyIPv6 existed (or given an ipv6_prefix by
// hand) hold a /64 without the index key, so ipv6Guard alone cannot see
// them. ipv6Guards also looks at the switches' own other_config:ipv6_prefix
// (a scan of Logical_Switch inside ovsdb-server, only for creates and moves
// of networks with IPv6; nothing is written to the old networks).

// ipv6Forms are the ipv6_prefix values that mean /64 p: the address
// ovlmgr writes, and the CIDR form ovn-northd also accepts.
func ipv6Forms(p netip.Prefix) []string {
	return []string{p.Masked().Addr().String(), p.Masked().String()}
}

// unindexedConds matches our networks whose ipv6_prefix is form but which
// do not carry KeyIPv6 = s.token(p) (unindexed ones, and indexed ones of
// other scopes), other than the switch except (a UUID, or "").
func unindexedConds(s Scope, p netip.Prefix, form, except string) []ovsdb.Condition {
	conds := []ovsdb.Condition{
		dbops.Contains("other_config", dbops.StrMap(map[string]string{ConfigIPv6Prefix: form})),
		dbops.Includes(owner.Selector(owner.KindNetwork)),
		dbops.Excludes(map[string]string{KeyIPv6: s.token(p)}),
	}
	if except != "" {
		conds = append(conds, ovsdb.Condition{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: except}})
	}
	return conds
}

// ipv6Guards returns the wait operations that make a transaction fail
// while a network of scope s other than except holds /64 p: ipv6Guard
// (the index) first, then one wait per ipv6Forms that the unindexed
// switches with that ipv6_prefix are still those read now (an unindexed
// network written meanwhile, e.g. by an older ovlmgr, fails the
// transaction: read again). When a network of scope s without the index
// key holds p already, it is returned as other (and no operations).
func ipv6Guards(ctx context.Context, nb client.Client, s Scope, p netip.Prefix, except string) (ops []ovsdb.Operation, other *nbdb.LogicalSwitch, err error) {
	forms := ipv6Forms(p)
	tx := dbops.NewTx(nb)
	var sel []*dbops.Result[nbdb.LogicalSwitch]
	for _, f := range forms {
		sel = append(sel, dbops.Query(tx, unindexedConds(s, p, f, except),
			func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.UUID, &ls.Name, &ls.ExternalIDs} }))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, nil, fmt.Errorf("find networks holding IPv6 subnet %s: %w", p, err)
	}
	ops = []ovsdb.Operation{ipv6Guard(s, p)}
	for i, q := range sel {
		rows, err := q.Rows()
		if err != nil {
			return nil, nil, err
		}
		var uuids []ovsdb.Row
		for _, ls := range rows {
			if _, indexed := ls.ExternalIDs[KeyIPv6]; !indexed && ls.ExternalIDs[owner.KeyRouter] == s.Router &&
				(other == nil || ls.Name < other.Name) {
				other = ls
			}
			uuids = append(uuids, ovsdb.Row{"_uuid": ovsdb.UUID{GoUUID: ls.UUID}})
		}
		conds := unindexedConds(s, p, forms[i], except)
		if len(uuids) == 0 {
			ops = append(ops, noneWhere(nbdb.LogicalSwitchTable, conds...))
			continue
		}
		timeout := 0
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationWait, Table: nbdb.LogicalSwitchTable, Timeout: &timeout,
			Where: conds, Columns: []string{"_uuid"}, Until: string(ovsdb.WaitConditionEqual), Rows: uuids})
	}
	if other != nil {
		return nil, other, nil
	}
	return ops, nil, nil
}
