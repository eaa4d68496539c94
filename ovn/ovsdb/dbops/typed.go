package dbops

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// ErrNotRun is returned by a query's Rows when its transaction has not run
// (or failed): there are no rows to read.
var ErrNotRun = errors.New("transaction has not run")

// Tx is one OVSDB transaction under construction. Typed selects (Query)
// and guards (Still) added to it return handles that read their own result
// after Transact, so callers never index the result list by position and
// never name a table: the table comes from the generated model's type.
// Raw operations (the builders of this package, or libovsdb's
// c.Create/c.Where(m).Update/Mutate/Delete) go in with Add/AddAPI.
//
// A Tx is not safe for concurrent use. Errors building an operation are
// kept and returned by Transact, so a chain of Adds needs no checks.
type Tx struct {
	c   client.Client
	ops []ovsdb.Operation
	res []ovsdb.OperationResult
	err error
	ran bool
}

// NewTx starts an empty transaction on c.
func NewTx(c client.Client) *Tx { return &Tx{c: c} }

// Client is the client the transaction runs on.
func (t *Tx) Client() client.Client { return t.c }

// Add appends raw operations.
func (t *Tx) Add(ops ...ovsdb.Operation) *Tx {
	t.ops = append(t.ops, ops...)
	return t
}

// AddAPI appends what a libovsdb model API call returned, e.g.
// tx.AddAPI(c.Where(ls).Update(ls, &ls.Ports)); its error is kept for Transact.
func (t *Tx) AddAPI(ops []ovsdb.Operation, err error) *Tx {
	if err != nil {
		t.fail(err)
		return t
	}
	return t.Add(ops...)
}

// Op appends one raw operation and returns its handle (to ask whether that
// wait guard failed, or how many rows it counted).
func (t *Tx) Op(op ovsdb.Operation) *Op {
	t.ops = append(t.ops, op)
	return &Op{tx: t, i: len(t.ops) - 1}
}

// Len is the number of operations so far.
func (t *Tx) Len() int { return len(t.ops) }

// Ops returns the operations built so far, or the first build error.
func (t *Tx) Ops() ([]ovsdb.Operation, error) { return t.ops, t.err }

// Err is the first error met while building, if any.
func (t *Tx) Err() error { return t.err }

func (t *Tx) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// Transact runs the transaction in one round trip (dbconn.Transact: the
// first failing operation becomes a *dbconn.TxError). A transaction with
// no operations does nothing.
func (t *Tx) Transact(ctx context.Context) error {
	if t.err != nil {
		return t.err
	}
	if len(t.ops) == 0 {
		t.ran = true
		return nil
	}
	res, err := dbconn.Transact(ctx, t.c, t.ops...)
	t.res = res
	t.ran = err == nil
	return err
}

// result is the result of operation i, or ErrNotRun.
func (t *Tx) result(i int) (*ovsdb.OperationResult, error) {
	if !t.ran || i >= len(t.res) {
		return nil, ErrNotRun
	}
	return &t.res[i], nil
}

// Op is the handle of one operation in a Tx.
type Op struct {
	tx *Tx
	i  int
}

// Failed reports whether err (from Transact) is this wait operation failing.
func (o *Op) Failed(err error) bool { return dbconn.FailedWait(err, o.i) }

// Count is the number of rows this update, mutate or delete touched (0
// before the transaction ran).
func (o *Op) Count() int {
	r, err := o.tx.result(o.i)
	if err != nil {
		return 0
	}
	return r.Count
}

// UUID is the UUID of the row this insert created ("" before the
// transaction ran, or when the operation is not an insert).
func (o *Op) UUID() string {
	r, err := o.tx.result(o.i)
	if err != nil {
		return ""
	}
	return r.UUID.GoUUID
}

// Create appends libovsdb's insert of m (c.Create(m): a UUID field that is
// not a real UUID names the row for references in the same transaction)
// and returns its handle, whose UUID is the new row's after Transact.
func (t *Tx) Create(m model.Model) *Op {
	ops, err := t.c.Create(m)
	if err == nil && len(ops) != 1 {
		err = fmt.Errorf("got %d operations, want 1", len(ops))
	}
	if err != nil {
		t.fail(fmt.Errorf("insert %T: %w", m, err))
		return &Op{tx: t, i: len(t.ops)}
	}
	return t.Op(ops[0])
}

// modelPtr is a generated model type's pointer (*nbdb.LogicalSwitch...).
type modelPtr[T any] interface {
	*T
	model.Model
}

// dbModel is the client's database model (schema, types, mapper info).
func dbModel(c client.Client) (model.DatabaseModel, error) {
	tc := c.Cache()
	if tc == nil {
		return model.DatabaseModel{}, errNoModel
	}
	return tc.DatabaseModel(), nil
}

// errNoModel: the client has no cache, so no model (never connected, or
// closed).
var errNoModel = errors.New("client has no database model (not connected)")

// TableOf is the table of model type T in c's database, e.g.
// TableOf[nbdb.LogicalSwitch](c) is "Logical_Switch".
func TableOf[T any, PT modelPtr[T]](c client.Client) (string, error) {
	dbm, err := dbModel(c)
	if err != nil {
		return "", err
	}
	key := tableKey{db: dbm.Client().Name(), t: reflect.TypeOf(PT(nil))}
	if t, ok := tables.Load(key); ok {
		return t.(string), nil
	}
	table := dbm.FindTable(key.t)
	if table == "" {
		return "", fmt.Errorf("model %T is not a table of database %s", PT(nil), key.db)
	}
	tables.Store(key, table)
	return table, nil
}

// tables caches TableOf: a model type's table in a database.
var tables sync.Map

type tableKey struct {
	db string
	t  reflect.Type
}

// Columns are the column names of fields (pointers into m, e.g. &ls.Ports).
func Columns[T any, PT modelPtr[T]](c client.Client, m PT, fields ...any) ([]string, error) {
	dbm, err := dbModel(c)
	if err != nil {
		return nil, err
	}
	info, err := dbm.NewModelInfo(m)
	if err != nil {
		return nil, fmt.Errorf("model %T: %w", m, err)
	}
	cols := make([]string, 0, len(fields))
	for _, f := range fields {
		col, err := info.ColumnByPtr(f)
		if err != nil {
			return nil, fmt.Errorf("model %T: %w", m, err)
		}
		cols = append(cols, col)
	}
	return cols, nil
}

// fieldColumns are the columns fields name (nil for none: every column).
func fieldColumns[T any, PT modelPtr[T]](c client.Client, fields []func(PT) []any) ([]string, error) {
	var ptrs []any
	m := PT(new(T))
	for _, f := range fields {
		ptrs = append(ptrs, f(m)...)
	}
	if len(ptrs) == 0 {
		return nil, nil
	}
	return Columns[T, PT](c, m, ptrs...)
}

// Result is the handle of one typed select in a Tx: after Transact, Rows
// decodes its rows into models of type T.
type Result[T any] struct {
	tx     *Tx
	i      int
	table  string
	decode func(row *ovsdb.Row) (*T, error)
}

// Query adds to tx a cache-less select of the rows of T's table matching
// where (every row when where is empty). fields, when given, trims the
// columns read to the fields it returns (pointers into its argument, e.g.
// func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.UUID, &ls.Ports} });
// the other fields of the decoded models stay zero.
func Query[T any, PT modelPtr[T]](tx *Tx, where []ovsdb.Condition, fields ...func(PT) []any) *Result[T] {
	r := &Result[T]{tx: tx, i: len(tx.ops)}
	op := Select("", where)
	table, err := TableOf[T, PT](tx.c)
	if err != nil {
		tx.fail(fmt.Errorf("select: %w", err))
	} else {
		op.Table, r.table = table, table
		if op.Columns, err = fieldColumns(tx.c, fields); err != nil {
			tx.fail(fmt.Errorf("select from %s: %w", table, err))
		}
	}
	r.decode = func(row *ovsdb.Row) (*T, error) {
		// The cache is taken once: a client closed meanwhile (a guard's
		// round trip outliving its verb) drops it, but not the one held.
		tc := tx.c.Cache()
		if tc == nil {
			return nil, errNoModel
		}
		obj := PT(new(T))
		info, err := tc.DatabaseModel().NewModelInfo(obj)
		if err != nil {
			return nil, err
		}
		if err := tc.Mapper().GetRowData(row, info); err != nil {
			return nil, err
		}
		if u, ok := (*row)["_uuid"].(ovsdb.UUID); ok {
			if err := info.SetField("_uuid", u.GoUUID); err != nil {
				return nil, err
			}
		}
		return (*T)(obj), nil
	}
	tx.ops = append(tx.ops, op)
	return r
}

// Table is the name of the table the query reads.
func (r *Result[T]) Table() string { return r.table }

// Rows decodes the selected rows (ErrNotRun before a successful Transact).
func (r *Result[T]) Rows() ([]*T, error) {
	res, err := r.tx.result(r.i)
	if err != nil {
		return nil, fmt.Errorf("select from %s: %w", r.table, err)
	}
	out := make([]*T, 0, len(res.Rows))
	for i := range res.Rows {
		m, err := r.decode(&res.Rows[i])
		if err != nil {
			return nil, fmt.Errorf("decode %s row: %w", r.table, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Len is the number of rows selected (0 before a successful Transact).
func (r *Result[T]) Len() int {
	res, err := r.tx.result(r.i)
	if err != nil {
		return 0
	}
	return len(res.Rows)
}

// UUIDs are the _uuid values of the selected rows (include &m.UUID in
// the query's fields when it trims columns).
func (r *Result[T]) UUIDs() []string {
	res, err := r.tx.result(r.i)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(res.Rows))
	for _, row := range res.Rows {
		if u, ok := row["_uuid"].(ovsdb.UUID); ok {
			out = append(out, u.GoUUID)
		}
	}
	return out
}

// SelectRows runs one typed, cache-less select of T's rows matching where
// (see Query for fields) in its own transaction. On a Monitored client
// whose monitor keeps the columns asked for, matching rows come from its
// cache instead (no round trip).
func SelectRows[T any, PT modelPtr[T]](ctx context.Context, c client.Client, where []ovsdb.Condition, fields ...func(PT) []any) ([]*T, error) {
	if m, ok := c.(Monitored); ok {
		if rows, ok := cachedRows[T, PT](m, where, fields...); ok {
			return rows, nil
		}
	}
	tx := NewTx(c)
	q := Query[T, PT](tx, where, fields...)
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("select from %s: %w", q.table, err)
	}
	return q.Rows()
}

// Count runs a select of the _uuid of T's rows matching where and returns
// how many there are.
func Count[T any, PT modelPtr[T]](ctx context.Context, c client.Client, where []ovsdb.Condition) (int, error) {
	tx := NewTx(c)
	q := Query[T, PT](tx, where)
	if q.table != "" {
		tx.ops[q.i].Columns = []string{"_uuid"}
	}
	if err := tx.Transact(ctx); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", q.table, err)
	}
	return q.Len(), nil
}

// Still adds to tx a wait guard: the transaction fails unless the row with
// m's UUID still holds, in each of fields (pointers into m, e.g.
// &ls.Ports), the value m has (as read before). It makes a
// read-check-write sequence safe against concurrent writers.
func Still[T any, PT modelPtr[T]](tx *Tx, m PT, fields ...any) *Op {
	op, err := StillOp[T, PT](tx.c, m, fields...)
	if err != nil {
		tx.fail(err)
		return &Op{tx: tx, i: len(tx.ops)}
	}
	return tx.Op(op)
}

// StillOp is the guard Still as a bare operation, for callers that compose
// operation lists: the transaction fails unless the row with m's UUID still
// holds m's values in fields (pointers into m).
func StillOp[T any, PT modelPtr[T]](c client.Client, m PT, fields ...any) (ovsdb.Operation, error) {
	timeout := 0
	ops, err := c.Where(m).Wait(ovsdb.WaitConditionEqual, &timeout, m, fields...)
	if err == nil && len(ops) != 1 {
		err = fmt.Errorf("got %d operations, want 1", len(ops))
	}
	if err != nil {
		return ovsdb.Operation{}, fmt.Errorf("guard on %T: %w", m, err)
	}
	return ops[0], nil
}

// Typed returns the table of T with the raw builders of this package,
// for operations the model API cannot express (conditions on map keys,
// set mutations by condition): Typed[nbdb.LogicalSwitch](tx).Delete(where).
func Typed[T any, PT modelPtr[T]](tx *Tx) On {
	table, err := TableOf[T, PT](tx.c)
	if err != nil {
		tx.fail(err)
	}
	return On{tx: tx, table: table}
}

// On appends raw operations on one table (from Typed) to its Tx.
type On struct {
	tx    *Tx
	table string
}

// Table is the table name.
func (o On) Table() string { return o.table }

// Delete adds a delete of the rows matching where.
func (o On) Delete(where []ovsdb.Condition) *Op { return o.tx.Op(Delete(o.table, where)) }

// AddRefs adds a mutate: column (a set of UUIDs) of the rows matching where gains uuids.
func (o On) AddRefs(where []ovsdb.Condition, column string, uuids ...string) *Op {
	return o.tx.Op(AddRefs(o.table, where, column, uuids...))
}

// DelRefs adds a mutate: column of the rows matching where loses uuids.
func (o On) DelRefs(where []ovsdb.Condition, column string, uuids ...string) *Op {
	return o.tx.Op(DelRefs(o.table, where, column, uuids...))
}

// SetKeys adds a mutate setting the pairs kv in the map column (see SetKeys).
func (o On) SetKeys(where []ovsdb.Condition, column string, kv map[string]string) *Op {
	return o.tx.Op(SetKeys(o.table, where, column, kv))
}

// DelKeys adds a mutate: the map column loses keys.
func (o On) DelKeys(where []ovsdb.Condition, column string, keys ...string) *Op {
	return o.tx.Op(DelKeys(o.table, where, column, keys...))
}

// Unchanged adds the guard Unchanged on this table.
func (o On) Unchanged(uuid, column string, value interface{}) *Op {
	return o.tx.Op(Unchanged(o.table, uuid, column, value))
}

// Exists adds the guard Exists on this table.
func (o On) Exists(where []ovsdb.Condition, column string, value interface{}) *Op {
	return o.tx.Op(Exists(o.table, where, column, value))
}

// None adds the guard None on this table.
func (o On) None(where []ovsdb.Condition, column string, value interface{}) *Op {
	return o.tx.Op(None(o.table, where, column, value))
}
