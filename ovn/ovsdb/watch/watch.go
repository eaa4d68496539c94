// Package watch waits for conditions on OVSDB rows as events: it opens a
// conditional monitor on the rows of interest and re-checks the client's
// cache after every update, instead of sleeping or polling.
package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Table names the rows of one table to monitor: the rows of Model's table
// matching Cond (one condition, ideally on an indexed column). An empty
// Cond monitors the whole table; avoid that on per-container paths.
type Table struct {
	Model model.Model
	Cond  []model.Condition
	// Fields limits the monitored columns (pointers into Model); empty = all.
	Fields []interface{}
}

// Watch is a running conditional monitor (see Start).
type Watch struct {
	c       client.Client
	tables  []Table
	cookie  client.MonitorCookie
	kick    chan struct{}
	closed  bool
	tc      *cache.TableCache
	handler cache.EventHandler
}

// Start monitors tables on c and returns once the monitor's initial rows
// are in c's cache. Start a watch before the transaction that creates the
// rows it waits for: their changes then all arrive after the monitor's reply
// (see Wait). Close the watch when done.
//
// c must come from dbconn.Connect: libovsdb v0.8.0 takes its monitor and
// RPC locks in opposite orders in Monitor and MonitorCancel, so concurrent
// watches on one raw libovsdb client can deadlock; Connect's clients
// serialize those two calls with a lock of their own.
//
// On a client that is closed (or not connected yet) Start returns an error
// wrapping client.ErrNotConnected.
func Start(ctx context.Context, c client.Client, tables []Table) (*Watch, error) {
	tc := c.Cache()
	if tc == nil {
		return nil, fmt.Errorf("watch: %w", client.ErrNotConnected)
	}
	w := &Watch{c: c, tables: tables, kick: make(chan struct{}, 1)}
	names := map[string]bool{}
	var opts []client.MonitorOption
	for _, t := range tables {
		info, err := c.Create(t.Model)
		if err != nil || len(info) != 1 {
			return nil, fmt.Errorf("watch: model %T: %v", t.Model, err)
		}
		names[info[0].Table] = true
		if len(t.Cond) > 0 {
			opts = append(opts, client.WithConditionalTable(t.Model, t.Cond, t.Fields...))
		} else {
			opts = append(opts, client.WithTable(t.Model, t.Fields...))
		}
	}
	notify := func(table string) {
		if !names[table] {
			return
		}
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	w.tc = tc
	w.handler = &cache.EventHandlerFuncs{
		AddFunc:    func(table string, _ model.Model) { notify(table) },
		UpdateFunc: func(table string, _, _ model.Model) { notify(table) },
		DeleteFunc: func(table string, _ model.Model) { notify(table) },
	}
	tc.AddEventHandler(w.handler)
	// Rows an earlier, finished watch left in the cache would make the new
	// monitor's initial rows "already exist": drop them first.
	forget(c, tables)
	mon := c.NewMonitor(opts...)
	// monitor_cond, not monitor_cond_since: an update can reach the client
	// between the monitor's reply and the reply's rows entering the cache
	// (a row that existed and changed just then), and then does not fit the
	// cache. libovsdb v0.8.0 drops such an update3 without a word (a watch
	// would wait forever for a change it missed); for an update2 it
	// reconnects and re-reads every monitored row (dbconn.Connect enables
	// reconnecting), so the change is seen, late.
	mon.Method = ovsdb.ConditionalMonitorRPC
	cookie, err := c.Monitor(ctx, mon)
	if err != nil {
		tc.RemoveEventHandler(w.handler)
		if ctx.Err() != nil {
			// The request went out and the server may have made the
			// monitor after all: its rows would reach this client's cache
			// and stay there, and a later watch of one of them (its monitor
			// reply adding a row already cached) makes libovsdb reconnect,
			// failing every request in flight on the client.
			cctx, cancel := context.WithTimeout(context.Background(), defaultCancelTimeout)
			_ = c.MonitorCancel(cctx, cookie)
			cancel()
			forget(c, tables)
		}
		return nil, fmt.Errorf("watch: monitor: %w", err)
	}
	w.cookie = cookie
	return w, nil
}

// Wait calls check with the client's cache now and again after every
// change to the watched rows, until check returns true or an error, or ctx
// ends (then ctx.Err() is returned).
func (w *Watch) Wait(ctx context.Context, check func(*cache.TableCache) (bool, error)) error {
	for {
		tc := w.c.Cache()
		if tc == nil {
			return fmt.Errorf("watch: %w", client.ErrNotConnected)
		}
		ok, err := check(tc)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.kick:
		}
	}
}

// Close cancels the monitor and drops its rows from the client's cache.
// It may be called more than once.
func (w *Watch) Close() {
	if w == nil || w.closed {
		return
	}
	w.closed = true
	w.tc.RemoveEventHandler(w.handler)
	ctx, cancel := context.WithTimeout(context.Background(), defaultCancelTimeout)
	defer cancel()
	_ = w.c.MonitorCancel(ctx, w.cookie)
	forget(w.c, w.tables)
}

// Until starts a watch of tables on c, waits for check (see Wait) and
// closes the watch. For rows a transaction is about to create or change,
// use Start before that transaction, then Wait.
func Until(ctx context.Context, c client.Client, tables []Table, check func(*cache.TableCache) (bool, error)) error {
	w, err := Start(ctx, c, tables)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Wait(ctx, check)
}

// defaultCancelTimeout bounds cancelling the monitor.
const defaultCancelTimeout = 2 * time.Second

// forget removes from c's cache the rows matching the tables' conditions,
// so a later watch of the same rows on this client starts clean. Two
// watches of one row at the same time on one client are not supported.
// Rows go as delete updates through the cache's own update path (which
// holds the cache lock that monitor updates take): deleting from a table's
// RowCache directly would race with other monitors' updates on the client.
func forget(c client.Client, tables []Table) {
	tc := c.Cache()
	if tc == nil {
		return
	}
	for _, t := range tables {
		if len(t.Cond) == 0 {
			continue
		}
		ops, err := c.WhereAll(t.Model, t.Cond...).Delete()
		if err != nil || len(ops) != 1 {
			continue
		}
		rc := tc.Table(ops[0].Table)
		if rc == nil {
			continue
		}
		rows, err := rc.RowsByCondition(ops[0].Where)
		if err != nil {
			continue
		}
		for uuid := range rows {
			// One row per update: a row already gone fails alone.
			_ = tc.Update2(nil, ovsdb.TableUpdates2{ops[0].Table: {uuid: &ovsdb.RowUpdate2{Delete: &ovsdb.Row{}}}})
		}
	}
}
