// Package dbconn opens libovsdb clients to OVSDB servers (OVN Northbound,
// Southbound, a node's Open_vSwitch database) with the settings ovlmgr uses
// everywhere: several endpoints, leader-only for clustered databases, quiet
// logging, a bounded connect time and clear errors.
package dbconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/mapper"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Defaults used when no endpoint is configured.
const (
	DefaultNB = "unix:/var/run/ovn/ovnnb_db.sock"
	DefaultSB = "unix:/var/run/ovn/ovnsb_db.sock"
	// EnvNB and EnvSB name the environment variables that override the defaults.
	EnvNB = "OVLMGR_NB"
	EnvSB = "OVLMGR_SB"
	// DefaultTimeout bounds every call when the caller sets no deadline.
	DefaultTimeout = 10 * time.Second
)

// DefaultOVS returns the local Open_vSwitch db endpoint the way OVS's own
// tools find it: $OVS_RUNDIR/db.sock, OVS_RUNDIR defaulting to /var/run/openvswitch.
func DefaultOVS() string {
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	return "unix:" + dir + "/db.sock"
}

// ResolveNB returns flag if set, else $OVLMGR_NB, else DefaultNB.
func ResolveNB(flag string) string { return resolve(flag, EnvNB, DefaultNB) }

// ResolveSB returns flag if set, else $OVLMGR_SB, else DefaultSB.
func ResolveSB(flag string) string { return resolve(flag, EnvSB, DefaultSB) }

func resolve(flag, env, def string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// ParseEndpoints splits a comma list of OVSDB endpoints ("unix:/path",
// "tcp:IP:PORT", "ssl:IP:PORT") and validates each.
func ParseEndpoints(s string) ([]string, error) {
	var out []string
	for _, ep := range strings.Split(s, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %v", ep, err)
		}
		switch u.Scheme {
		case "unix":
			if u.Opaque == "" && u.Path == "" {
				return nil, fmt.Errorf("endpoint %q: unix endpoint needs a socket path (unix:/path/to/db.sock)", ep)
			}
		case "tcp", "ssl":
			if u.Opaque == "" || !strings.Contains(u.Opaque, ":") {
				return nil, fmt.Errorf("endpoint %q: %s endpoint needs IP:PORT (%s:198.18.0.1:6641)", ep, u.Scheme, u.Scheme)
			}
		default:
			return nil, fmt.Errorf("endpoint %q: scheme must be unix, tcp or ssl (unix:PATH, tcp:IP:PORT, ssl:IP:PORT)", ep)
		}
		out = append(out, ep)
	}
	if len(out) == 0 {
		return nil, errors.New("no OVSDB endpoint given")
	}
	return out, nil
}

// Options tune Connect.
type Options struct {
	// What names the database in errors ("NB", "SB", "Open_vSwitch").
	What string
	// Monitor, when true, monitors every table of the model (a full cache).
	// Leave false on per-container paths and use conditional monitors or Select.
	Monitor bool
	// Logger receives libovsdb's logs; nil discards them.
	Logger *logr.Logger
	// TLS is the client identity for ssl: endpoints; nil: the process's
	// (SetTLSFiles, then OVLMGR_CA_CERT / OVLMGR_CERT / OVLMGR_PRIVATE_KEY).
	TLS *tls.Config
}

// Connect opens a client for dbModel on the comma list endpoints. It returns
// only once connected; ctx bounds the attempt (DefaultTimeout if it has no deadline).
// The client serializes its Monitor and MonitorCancel calls (see
// serialMonitors), so concurrent watches on it (ovn/ovsdb/watch) cannot deadlock.
func Connect(ctx context.Context, dbModel model.ClientDBModel, endpoints string, o Options) (client.Client, error) {
	return connectModel(ctx, func() (model.ClientDBModel, error) { return dbModel, nil }, endpoints, o)
}

// connectModel is Connect with the model built by build, once the
// connection to the first endpoint is under way when that one is remote
// (earlyDial): a fresh process spends milliseconds on the model and client
// that the round trips of TCP and TLS need not wait for.
func connectModel(ctx context.Context, build func() (model.ClientDBModel, error), endpoints string, o Options) (client.Client, error) {
	ctx, cancel := WithDefaultTimeout(ctx)
	defer cancel()
	what := o.What
	eps, err := ParseEndpoints(endpoints)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", whatOr(what, build), err)
	}
	var cfg *tls.Config
	if anySSL(eps) {
		if cfg = o.TLS; cfg == nil {
			if cfg, err = defaultTLS(); err != nil {
				return nil, fmt.Errorf("connect to %s %s: %w", whatOr(what, build), endpoints, err)
			}
		}
	}
	early := startDial(ctx, eps[0], cfg)
	defer early.release()
	dbModel, err := build()
	if err != nil {
		return nil, fmt.Errorf("%s model: %w", whatOr(what, build), err)
	}
	if what == "" {
		what = dbModel.Name()
	}
	logger := o.Logger
	if logger == nil {
		l := logr.Discard()
		logger = &l
	}
	// Reconnect: libovsdb drops the connection to rebuild its cache when an
	// update does not fit it (a modify that reaches the client between a
	// later monitor's reply and that reply's rows entering the cache); the
	// reconnect re-sends every monitor, so watches (ovn/ovsdb/watch) see the
	// current rows again instead of hanging on a dead client.
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval, retry.MaxInterval, retry.MaxElapsedTime = 10*time.Millisecond, time.Second, 0
	opts := []client.Option{client.WithLogger(logger), client.WithReconnect(DefaultTimeout, retry)}
	if len(eps) > 1 {
		// Several endpoints mean a clustered database: talk to its leader only.
		opts = append(opts, client.WithLeaderOnly(true))
	}
	for _, ep := range eps {
		opts = append(opts, client.WithEndpoint(ep))
	}
	if cfg != nil {
		opts = append(opts, client.WithTLSConfig(cfg))
	}
	if early != nil {
		opts = append(opts, client.WithDialer(early.dialer(cfg)))
	}
	lc, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s %s: %w", what, endpoints, err)
	}
	c := &serialMonitors{Client: lc, cluster: len(eps) > 1}
	if err := connectRetry(ctx, c, len(eps)); err != nil {
		return nil, fmt.Errorf("connect to %s %s: %v (is its ovsdb-server running and reachable?)", what, endpoints, unwrapDial(err))
	}
	if o.Monitor {
		if _, err := c.MonitorAll(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("monitor %s %s: %w", what, endpoints, err)
		}
	}
	return c, nil
}

// whatOr is what, else the name of the model build makes.
func whatOr(what string, build func() (model.ClientDBModel, error)) string {
	if what != "" {
		return what
	}
	if m, err := build(); err == nil {
		return m.Name()
	}
	return "database"
}

// connectRetry connects once to a single server; to a cluster (several
// endpoints) it tries again until ctx is done while no member is leader
// (an election under way, a member restarting).
func connectRetry(ctx context.Context, c client.Client, endpoints int) error {
	wait := 20 * time.Millisecond
	for {
		err := c.Connect(ctx)
		if err == nil || endpoints < 2 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if wait *= 2; wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
	}
}

// WithDefaultTimeout returns ctx bounded by DefaultTimeout when it has no deadline.
func WithDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

func unwrapDial(err error) error {
	var last error = err
	for e := err; e != nil; e = errors.Unwrap(e) {
		last = e
	}
	if last != err && last != nil && !strings.Contains(err.Error(), last.Error()) {
		return fmt.Errorf("%v: %v", err, last)
	}
	return err
}

// Transact runs ops in one transaction and turns OVSDB operation errors into
// one Go error (the first failing operation's error and details).
func Transact(ctx context.Context, c client.Client, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	ctx, cancel := WithDefaultTimeout(ctx)
	defer cancel()
	res, err := transact(ctx, c, ops)
	if lostConnection(err) {
		return res, &LostError{Err: err}
	}
	if err != nil {
		return res, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return res, opError(res, ops, err)
	}
	return res, nil
}

// Wrapper is a client that wraps one from Connect (e.g. to keep it open
// past a caller's Close); Transact unwraps it to find what Connect made.
type Wrapper interface {
	Unwrap() client.Client
}

// Unwrap returns the client c wraps (Wrapper), through every layer: the one
// Connect made, whose connection and cache c uses.
func Unwrap(c client.Client) client.Client {
	for {
		w, ok := c.(Wrapper)
		if !ok {
			return c
		}
		c = w.Unwrap()
	}
}

// ReadTimeout bounds one read-only transaction on a cluster client before
// the client drops its connection and reads again (see transact).
var ReadTimeout = 5 * time.Second

// transact runs ops on c. A read-only transaction (selects only) on a
// cluster client that gets no reply within ReadTimeout is read again on a
// new connection: a member leaving or rejoining its cluster can keep a
// connection up and a read unanswered, and reads are safe to repeat (as
// after a lost connection).
// Writes are never resent here (see Retry).
func transact(ctx context.Context, c client.Client, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	c = Unwrap(c)
	sm, ok := c.(*serialMonitors)
	if !ok || !sm.cluster || !readOnly(ops) {
		return c.Transact(ctx, ops...)
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, ReadTimeout)
		res, err := c.Transact(rctx, ops...)
		timedOut := rctx.Err() != nil
		rcancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return res, err
		case timedOut:
			sm.dropConnection()
		case lostConnection(err):
			// Reconnecting (after a drop or a leader change): read again.
			select {
			case <-ctx.Done():
				return res, err
			case <-time.After(20 * time.Millisecond):
			}
		default:
			return res, err
		}
	}
}

func readOnly(ops []ovsdb.Operation) bool {
	for _, op := range ops {
		if op.Op != ovsdb.OperationSelect {
			return false
		}
	}
	return len(ops) > 0
}

// OpError is a failed operation inside a transaction.
type OpError struct {
	Index   int    // index of the failing operation
	Op      string // "insert", "wait", ...
	Table   string
	Error   string // OVSDB error name, e.g. "timed out" for a failed wait
	Details string
}

func (e *OpError) String() string {
	s := fmt.Sprintf("%s on %s: %s", e.Op, e.Table, e.Error)
	if e.Details != "" {
		s += ": " + e.Details
	}
	return s
}

// TxError wraps a failed transaction with the failing operation.
type TxError struct {
	Op  *OpError
	Err error
}

func (e *TxError) Error() string {
	if e.Op != nil {
		return "transaction failed: " + e.Op.String()
	}
	return "transaction failed: " + e.Err.Error()
}

func (e *TxError) Unwrap() error { return e.Err }

func opError(res []ovsdb.OperationResult, ops []ovsdb.Operation, err error) error {
	for i, r := range res {
		if r.Error == "" {
			continue
		}
		oe := &OpError{Index: i, Error: r.Error, Details: r.Details}
		if i < len(ops) {
			oe.Op, oe.Table = ops[i].Op, ops[i].Table
		}
		return &TxError{Op: oe, Err: err}
	}
	return &TxError{Err: err}
}

// FailedWait reports whether err is a transaction that failed on the wait
// operation at index i (a guard such as "no row with this name yet").
func FailedWait(err error, i int) bool {
	var te *TxError
	if !errors.As(err, &te) || te.Op == nil {
		return false
	}
	return te.Op.Index == i && te.Op.Op == ovsdb.OperationWait
}

// Select reads the rows of m's table that match all conds in one round trip,
// without a cache: the way short-lived processes read on per-container paths
// (put an indexed column such as a port name in conds). result must point to
// a slice of the model type, e.g. *[]*nbdb.LogicalSwitch. With no conds every
// row of the table is returned.
func Select(ctx context.Context, c client.Client, m model.Model, result interface{}, conds ...model.Condition) error {
	op, err := SelectOp(c, m, conds...)
	if err != nil {
		return err
	}
	res, err := Transact(ctx, c, op)
	if err != nil {
		return fmt.Errorf("select from %s: %w", op.Table, err)
	}
	return DecodeRows(c, op.Table, res[0].Rows, result)
}

// SelectOp builds the select operation Select sends, for callers that put it
// in a larger transaction and decode its rows with DecodeRows. The where
// clause is conds as given, never derived from the client's cache (libovsdb's
// WhereAll turns conditions that match cached rows into one _uuid condition
// per cached row, which would miss rows the cache lacks and, taken as one
// operation, all cached matches but the first).
func SelectOp(c client.Client, m model.Model, conds ...model.Condition) (ovsdb.Operation, error) {
	ins, err := c.Create(m)
	if err != nil || len(ins) != 1 {
		return ovsdb.Operation{}, fmt.Errorf("select: model %T: %v", m, err)
	}
	op := ovsdb.Operation{Op: ovsdb.OperationSelect, Table: ins[0].Table, Where: []ovsdb.Condition{}}
	if len(conds) == 0 {
		return op, nil
	}
	schema := c.Schema()
	ts := schema.Table(op.Table)
	if ts == nil {
		return ovsdb.Operation{}, fmt.Errorf("select from %s: table not in schema %s", op.Table, schema.Name)
	}
	info, err := mapper.NewInfo(op.Table, ts, m)
	if err != nil {
		return ovsdb.Operation{}, fmt.Errorf("select from %s: %w", op.Table, err)
	}
	mp := mapper.NewMapper(schema)
	for _, cond := range conds {
		oc, err := mp.NewCondition(info, cond.Field, cond.Function, cond.Value)
		if err != nil {
			return ovsdb.Operation{}, fmt.Errorf("select from %s: %w", op.Table, err)
		}
		op.Where = append(op.Where, *oc)
	}
	return op, nil
}

// DecodeRows converts rows of table into models appended to result (a pointer
// to a slice of models or of model pointers).
func DecodeRows(c client.Client, table string, rows []ovsdb.Row, result interface{}) error {
	rv := reflect.ValueOf(result)
	if rv.Kind() != reflect.Ptr || rv.Elem().Kind() != reflect.Slice {
		return fmt.Errorf("decode %s rows: result must be a pointer to a slice, got %T", table, result)
	}
	slice := rv.Elem()
	elem := slice.Type().Elem()
	isPtr := elem.Kind() == reflect.Ptr
	if isPtr {
		elem = elem.Elem()
	}
	schema := c.Schema()
	ts := schema.Table(table)
	if ts == nil {
		return fmt.Errorf("decode rows: table %s not in schema %s", table, schema.Name)
	}
	mp := mapper.NewMapper(schema)
	for i := range rows {
		obj := reflect.New(elem)
		info, err := mapper.NewInfo(table, ts, obj.Interface())
		if err != nil {
			return fmt.Errorf("decode %s rows: %w", table, err)
		}
		if err := mp.GetRowData(&rows[i], info); err != nil {
			return fmt.Errorf("decode %s row: %w", table, err)
		}
		if u, ok := rows[i]["_uuid"].(ovsdb.UUID); ok {
			if err := info.SetField("_uuid", u.GoUUID); err != nil {
				return fmt.Errorf("decode %s row: %w", table, err)
			}
		}
		if isPtr {
			slice = reflect.Append(slice, obj)
		} else {
			slice = reflect.Append(slice, obj.Elem())
		}
	}
	rv.Elem().Set(slice)
	return nil
}

// Absent returns a wait operation that makes a transaction fail unless no row
// of m's table has field equal to its value in m (field points into m, e.g.
// &ls.Name). Put it first in a create transaction: concurrent creates of one
// name then have exactly one winner; the loser fails with FailedWait(err, 0).
func Absent(c client.Client, m model.Model, field interface{}) (ovsdb.Operation, error) {
	v := reflect.ValueOf(field)
	if v.Kind() != reflect.Ptr {
		return ovsdb.Operation{}, fmt.Errorf("absent guard: field must be a pointer into the model, got %T", field)
	}
	timeout := 0
	ops, err := c.WhereAll(m, model.Condition{Field: field, Function: ovsdb.ConditionEqual, Value: v.Elem().Interface()}).
		Wait(ovsdb.WaitConditionNotEqual, &timeout, m, field)
	if err != nil {
		return ovsdb.Operation{}, fmt.Errorf("absent guard: %w", err)
	}
	return ops[0], nil
}
