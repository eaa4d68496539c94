// Package dbops builds the raw OVSDB operations ovlmgr's NB writers share:
// conditions on external_ids, set/map mutations by row name or UUID, and
// wait guards that make a transaction fail when a row changed since it was
// read (optimistic concurrency) or when a row appeared.
package dbops

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Includes is the condition "external_ids includes every pair of ids".
func Includes(ids map[string]string) ovsdb.Condition {
	return ovsdb.Condition{Column: "external_ids", Function: ovsdb.ConditionIncludes, Value: strMap(ids)}
}

// Excludes is the condition "external_ids holds none of the pairs of ids".
func Excludes(ids map[string]string) ovsdb.Condition {
	return ovsdb.Condition{Column: "external_ids", Function: ovsdb.ConditionExcludes, Value: strMap(ids)}
}

// Owned is Includes of our owner and kind keys plus extra pairs.
func Owned(kind string, extra map[string]string) ovsdb.Condition {
	ids := owner.Selector(kind)
	for k, v := range extra {
		ids[k] = v
	}
	return Includes(ids)
}

// NameIs is the condition "name == name".
func NameIs(name string) ovsdb.Condition {
	return ovsdb.Condition{Column: "name", Function: ovsdb.ConditionEqual, Value: name}
}

// UUIDIs is the condition "_uuid == uuid" (a real or named UUID).
func UUIDIs(uuid string) ovsdb.Condition {
	return ovsdb.Condition{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}
}

// Equal is the condition "column == value" (value an OVSDB datum).
func Equal(column string, value interface{}) ovsdb.Condition {
	return ovsdb.Condition{Column: column, Function: ovsdb.ConditionEqual, Value: value}
}

// Contains is the condition "column includes value": every element of the
// set, or every pair of the map, value is in the set or map column.
func Contains(column string, value interface{}) ovsdb.Condition {
	return ovsdb.Condition{Column: column, Function: ovsdb.ConditionIncludes, Value: value}
}

// ByUUID is the where clause selecting the row with this UUID (real or named).
func ByUUID(uuid string) []ovsdb.Condition { return []ovsdb.Condition{UUIDIs(uuid)} }

// UUIDSet turns UUIDs (real or named) into an OVSDB set value.
func UUIDSet(uuids ...string) ovsdb.OvsSet {
	s := ovsdb.OvsSet{GoSet: []interface{}{}}
	for _, u := range uuids {
		s.GoSet = append(s.GoSet, ovsdb.UUID{GoUUID: u})
	}
	return s
}

func strMap(m map[string]string) ovsdb.OvsMap {
	om := ovsdb.OvsMap{GoMap: map[interface{}]interface{}{}}
	for k, v := range m {
		om.GoMap[k] = v
	}
	return om
}

func strSet(keys ...string) ovsdb.OvsSet {
	s := ovsdb.OvsSet{GoSet: []interface{}{}}
	for _, k := range keys {
		s.GoSet = append(s.GoSet, k)
	}
	return s
}

// Select reads columns (all when none) of the rows of table matching where.
func Select(table string, where []ovsdb.Condition, columns ...string) ovsdb.Operation {
	if where == nil {
		where = []ovsdb.Condition{}
	}
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table, Where: where, Columns: columns}
}

// AddRefs mutates the rows of table matching where: column (a set of UUIDs)
// gains uuids.
func AddRefs(table string, where []ovsdb.Condition, column string, uuids ...string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: UUIDSet(uuids...)}}}
}

// DelRefs mutates the rows of table matching where: column loses uuids.
func DelRefs(table string, where []ovsdb.Condition, column string, uuids ...string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: UUIDSet(uuids...)}}}
}

// SetKeys mutates the rows of table matching where so that the map column
// holds exactly the pairs of kv for those keys (old values are replaced).
func SetKeys(table string, where []ovsdb.Condition, column string, kv map[string]string) ovsdb.Operation {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where, Mutations: []ovsdb.Mutation{
		{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: strSet(keys...)},
		{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: strMap(kv)},
	}}
}

// DelKeys mutates the rows of table matching where: the map column loses keys.
func DelKeys(table string, where []ovsdb.Condition, column string, keys ...string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: strSet(keys...)}}}
}

// AddPairs mutates the rows of table matching where: the map column gains
// the pairs of kv. A key the map already holds keeps its value (an OVSDB
// map insert never overwrites).
func AddPairs(table string, where []ovsdb.Condition, column string, kv map[string]string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: strMap(kv)}}}
}

// DelPairs mutates the rows of table matching where: the map column loses
// the pairs of kv. A key whose value is not the one in kv is kept.
func DelPairs(table string, where []ovsdb.Condition, column string, kv map[string]string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: strMap(kv)}}}
}

// Update sets the columns of row on the rows of table matching where.
func Update(table string, where []ovsdb.Condition, row ovsdb.Row) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: table, Where: where, Row: row}
}

// Delete deletes the rows of table matching where.
func Delete(table string, where []ovsdb.Condition) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: where}
}

// Unchanged is a wait guard: the transaction fails unless the row of table
// with this UUID still has column equal to value (as read before). Use it
// to make read-check-write sequences safe against concurrent writers.
// value is an OVSDB datum (a string, int, ovsdb.OvsSet, ovsdb.OvsMap...).
func Unchanged(table, uuid, column string, value interface{}) ovsdb.Operation {
	timeout := 0
	return ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Timeout: &timeout,
		Where: []ovsdb.Condition{UUIDIs(uuid)}, Columns: []string{column}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{column: value}}}
}

// Matches is a wait guard: the transaction fails unless the row of table
// with this UUID matches every one of conds at this point of the
// transaction (e.g. Equal of each column as it was read).
func Matches(table, uuid string, conds ...ovsdb.Condition) ovsdb.Operation {
	timeout := 0
	where := append(ByUUID(uuid), conds...)
	return ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Timeout: &timeout,
		Where: where, Columns: []string{"_uuid"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"_uuid": ovsdb.UUID{GoUUID: uuid}}}}
}

// Exists is a wait guard: the transaction fails unless a row of table
// matching where exists. column must be a column whose value is the same
// on every matching row (e.g. the name a condition selects on), and value
// is that value.
func Exists(table string, where []ovsdb.Condition, column string, value interface{}) ovsdb.Operation {
	timeout := 0
	return ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Timeout: &timeout,
		Where: where, Columns: []string{column}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{column: value}}}
}

// None is a wait guard: the transaction fails when a row of table matches
// where. column must have the same value on every row that could match
// (ovsdb-server compares the matching rows, projected on column and with
// duplicates merged, against that one value).
func None(table string, where []ovsdb.Condition, column string, value interface{}) ovsdb.Operation {
	timeout := 0
	return ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Timeout: &timeout,
		Where: where, Columns: []string{column}, Until: string(ovsdb.WaitConditionNotEqual),
		Rows: []ovsdb.Row{{column: value}}}
}

// StrSet converts strings to an OVSDB set value.
func StrSet(vals ...string) ovsdb.OvsSet { return strSet(vals...) }

// StrMap converts a Go map to an OVSDB map value.
func StrMap(m map[string]string) ovsdb.OvsMap { return strMap(m) }
