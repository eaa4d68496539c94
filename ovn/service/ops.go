package service

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Raw OVSDB operation builders. Cacheless clients build conditions on
// columns libovsdb's model API cannot express (map "includes", column
// projection), so these stay close to RFC 7047.

func uuidVal(u string) ovsdb.UUID { return ovsdb.UUID{GoUUID: u} }

func strMap(m map[string]string) ovsdb.OvsMap {
	gm := make(map[interface{}]interface{}, len(m))
	for k, v := range m {
		gm[k] = v
	}
	return ovsdb.OvsMap{GoMap: gm}
}

func strSet(s []string) ovsdb.OvsSet {
	gs := make([]interface{}, 0, len(s))
	for _, v := range s {
		gs = append(gs, v)
	}
	return ovsdb.OvsSet{GoSet: gs}
}

func uuidSet(s []string) ovsdb.OvsSet {
	gs := make([]interface{}, 0, len(s))
	for _, v := range s {
		gs = append(gs, uuidVal(v))
	}
	return ovsdb.OvsSet{GoSet: gs}
}

func selectOp(table string, where []ovsdb.Condition, columns ...string) ovsdb.Operation {
	if where == nil {
		where = []ovsdb.Condition{}
	}
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table, Where: where, Columns: columns}
}

func eq(col string, v interface{}) ovsdb.Condition {
	return ovsdb.NewCondition(col, ovsdb.ConditionEqual, v)
}

func includes(col string, v interface{}) ovsdb.Condition {
	return ovsdb.NewCondition(col, ovsdb.ConditionIncludes, v)
}

func byUUID(u string) []ovsdb.Condition { return []ovsdb.Condition{eq("_uuid", uuidVal(u))} }

func mutateOp(table string, where []ovsdb.Condition, ms ...ovsdb.Mutation) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where, Mutations: ms}
}

func mutation(col string, m ovsdb.Mutator, v interface{}) ovsdb.Mutation {
	return *ovsdb.NewMutation(col, m, v)
}

// waitRowOp fails the transaction unless the row u of table matches all of
// conds at this point of the transaction.
func waitRowOp(table, u string, conds ...ovsdb.Condition) ovsdb.Operation {
	timeout := 0
	where := append(byUUID(u), conds...)
	return ovsdb.Operation{
		Op: ovsdb.OperationWait, Table: table, Where: where, Timeout: &timeout,
		Columns: []string{"_uuid"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"_uuid": uuidVal(u)}},
	}
}
