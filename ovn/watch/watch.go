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

// Until monitors tables on c and calls check with the client's cache once
// the monitor's initial rows are in and again after every change to them,
// until check returns true or an error, or ctx ends (then ctx.Err() is
// returned). The monitor is cancelled before returning.
//
// c must come from dbconn.Connect: libovsdb v0.8.0 takes its monitor and
// RPC locks in opposite orders in Monitor and MonitorCancel, so concurrent
// watches on one raw libovsdb client can deadlock; Connect's clients
// serialize those two calls with a lock of their own.
func Until(ctx context.Context, c client.Client, tables []Table, check func(*cache.TableCache) (bool, error)) error {
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	names := map[string]bool{}
	var opts []client.MonitorOption
	for _, t := range tables {
		info, err := c.Create(t.Model)
		if err != nil || len(info) != 1 {
			return fmt.Errorf("watch: model %T: %v", t.Model, err)
		}
		names[info[0].Table] = true
		if len(t.Cond) > 0 {
			opts = append(opts, client.WithConditionalTable(t.Model, t.Cond, t.Fields...))
		} else {
			opts = append(opts, client.WithTable(t.Model, t.Fields...))
		}
	}
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, _ model.Model) {
			if names[table] {
				notify()
			}
		},
		UpdateFunc: func(table string, _, _ model.Model) {
			if names[table] {
				notify()
			}
		},
		DeleteFunc: func(table string, _ model.Model) {
			if names[table] {
				notify()
			}
		},
	})
	// Rows an earlier, finished watch left in the cache would make the new
	// monitor's initial rows "already exist": drop them first.
	forget(c, tables)
	cookie, err := c.Monitor(ctx, c.NewMonitor(opts...))
	if err != nil {
		return fmt.Errorf("watch: monitor: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultCancelTimeout)
		defer cancel()
		_ = c.MonitorCancel(cctx, cookie)
		forget(c, tables)
	}()
	for {
		ok, err := check(c.Cache())
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		}
	}
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
	for _, t := range tables {
		if len(t.Cond) == 0 {
			continue
		}
		ops, err := c.WhereAll(t.Model, t.Cond...).Delete()
		if err != nil || len(ops) != 1 {
			continue
		}
		rc := c.Cache().Table(ops[0].Table)
		if rc == nil {
			continue
		}
		rows, err := rc.RowsByCondition(ops[0].Where)
		if err != nil {
			continue
		}
		for uuid := range rows {
			// One row per update: a row already gone fails alone.
			_ = c.Cache().Update2(nil, ovsdb.TableUpdates2{ops[0].Table: {uuid: &ovsdb.RowUpdate2{Delete: &ovsdb.Row{}}}})
		}
	}
}
