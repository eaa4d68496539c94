package topology

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// readTimeout bounds each re-read of a followed graph.
const readTimeout = 10 * time.Second

// nbTables are the NB rows a Graph is made of.
func nbTables() []watch.Table {
	return []watch.Table{
		{Model: &nbdb.LogicalSwitch{}}, {Model: &nbdb.LogicalSwitchPort{}}, {Model: &nbdb.LogicalRouter{}},
		{Model: &nbdb.LogicalRouterPort{}}, {Model: &nbdb.LoadBalancer{}}, {Model: &nbdb.ACL{}},
		{Model: &nbdb.PortGroup{}}, {Model: &nbdb.DNS{}}, {Model: &nbdb.GatewayChassis{}},
	}
}

// sbTables are the SB rows a Graph is made of: chassis, their encaps and
// liveness, and the bindings of gateway ports (where a gateway is active).
func sbTables() []watch.Table {
	pb := &sbdb.PortBinding{}
	return []watch.Table{{Model: &sbdb.Chassis{}}, {Model: &sbdb.ChassisPrivate{}}, {Model: &sbdb.Encap{}},
		{Model: pb, Cond: []model.Condition{{Field: &pb.Type, Function: ovsdb.ConditionEqual, Value: "chassisredirect"}}}}
}

// Follow calls f with the graph now and again after every change to the
// NB and SB rows it is made of (monitors on those tables, not polling),
// at most once per settle interval, until ctx ends; it then returns
// ctx.Err(). A failed read is passed to f and retried on the next change.
// sbEP may be "" (NB only).
//
// Follow opens its own connections: two per database, one for the
// monitors and one for the reads, since a select with model conditions
// (dbconn.Select) on a client whose cache holds the table is answered from
// the cached rows' UUIDs, not by the server.
func Follow(ctx context.Context, nbEP, sbEP string, settle time.Duration, f func(*Graph, error)) error {
	var nb, sb, monNB, monSB client.Client
	var err error
	for _, c := range []struct {
		dst  *client.Client
		ep   string
		conn func(context.Context, string) (client.Client, error)
	}{{&nb, nbEP, dbconn.ConnectNB}, {&monNB, nbEP, dbconn.ConnectNB}, {&sb, sbEP, dbconn.ConnectSB}, {&monSB, sbEP, dbconn.ConnectSB}} {
		if c.ep == "" {
			continue
		}
		if *c.dst, err = c.conn(ctx, c.ep); err != nil {
			return fmt.Errorf("topology: %w", err)
		}
		defer (*c.dst).Close()
	}
	changed := make(chan struct{}, 1)
	kick := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	start := func(c client.Client, tables []watch.Table, what string) error {
		w, err := watch.Start(ctx, c, tables)
		if err != nil {
			return fmt.Errorf("topology: monitor %s: %w", what, err)
		}
		go func() {
			defer w.Close()
			_ = w.Wait(ctx, func(*cache.TableCache) (bool, error) { kick(); return false, nil })
		}()
		return nil
	}
	if err := start(monNB, nbTables(), "NB"); err != nil {
		return err
	}
	if monSB != nil {
		if err := start(monSB, sbTables(), "SB"); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
		// let a burst of updates (one transaction touches several
		// tables) settle into one read
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settle):
		}
		select {
		case <-changed:
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		g, err := Read(rctx, nb, sb)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f(g, err)
	}
}
