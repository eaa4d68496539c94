package watch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
)

func connect(t *testing.T, srv *ovsdbtest.Server) client.Client {
	t.Helper()
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func addSwitch(t *testing.T, c client.Client, name string) {
	t.Helper()
	ops, err := c.Create(&nbdb.LogicalSwitch{Name: name})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := dbconn.Transact(context.Background(), c, ops...); err != nil {
		t.Error(err)
	}
}

// present watches the switch name on c until it is in the cache.
func present(ctx context.Context, c client.Client, name string) error {
	m := &nbdb.LogicalSwitch{Name: name}
	return watch.Until(ctx, c, []watch.Table{{
		Model:  m,
		Cond:   []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}},
		Fields: []interface{}{&m.Name},
	}}, func(tc *cache.TableCache) (bool, error) {
		for _, r := range tc.Table(nbdb.LogicalSwitchTable).Rows() {
			if r.(*nbdb.LogicalSwitch).Name == name {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestUntilWakesOnEvent: a watch started before the row exists returns
// once another client creates it, and a watch of an existing row returns
// at once (again after the first watch was cancelled: the cache starts clean).
func TestUntilWakesOnEvent(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c, writer := connect(t, srv), connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- present(ctx, c, "late") }()
	addSwitch(t, writer, "late")
	if err := <-done; err != nil {
		t.Fatalf("watch of a row created later: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := present(ctx, c, "late"); err != nil {
			t.Fatalf("watch %d of an existing row: %v", i, err)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := present(short, c, "never"); err != context.DeadlineExceeded {
		t.Fatalf("watch of a row nobody creates = %v; want context.DeadlineExceeded", err)
	}
}

// TestConcurrentWatchesOneClient: many goroutines open and cancel monitors
// on one client at once (Monitor and MonitorCancel interleaved). Every
// watch must return; with libovsdb's opposite lock orders in the two calls
// unserialized, this deadlocks and the watches hit the deadline.
func TestConcurrentWatchesOneClient(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	writer := connect(t, srv)
	// Closed only once every watch returned: Close would hang on a deadlock.
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 25
	for w := 0; w < workers; w++ {
		addSwitch(t, writer, fmt.Sprintf("sw%d", w))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := watchRounds(t, ctx, c, "sw", workers, rounds, "Monitor/MonitorCancel deadlock")
	c.Close()
	for _, err := range errs {
		t.Error(err)
	}
}

// watchRounds runs workers goroutines on c, worker w watching switch
// prefix+w until present, rounds times, and returns their errors. A client
// that stops answering ignores ctx: after 90 s the test fails (hang names
// the suspect) instead of hanging the package; c must then stay open.
func watchRounds(t *testing.T, ctx context.Context, c client.Client, prefix string, workers, rounds int, hang string) []error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if err := present(ctx, c, name); err != nil {
					errs <- fmt.Errorf("%s round %d: %w", name, i, err)
					return
				}
			}
		}(fmt.Sprintf("%s%d", prefix, w))
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("watches on one client did not return: %s", hang)
	}
	close(errs)
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// TestClosedWatchesLeaveNoHandler: a client serving many calls (the node's
// CNI server) runs a watch per call; a finished watch must leave no event
// handler in the client's cache, or every update would call them all.
func TestClosedWatchesLeaveNoHandler(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	addSwitch(t, c, "sw0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := c.Cache().EventHandlers()
	for i := 0; i < 20; i++ {
		if err := present(ctx, c, "sw0"); err != nil {
			t.Fatal(err)
		}
	}
	m := &nbdb.LogicalSwitch{}
	w, err := watch.Start(ctx, c, []watch.Table{{Model: m, Cond: []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: "x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := c.Cache().EventHandlers(); got != before+1 {
		t.Errorf("one open watch after 20 closed: %d event handlers, want %d", got, before+1)
	}
}

// TestUntilSeesChangeRightAfterMonitor: a row is created, then changed by
// another client once, at about the moment a watch of it starts (as
// ovn-northd fills a new port's dynamic_addresses). The change may reach
// the client between the monitor's reply and that reply's rows entering the
// cache; the watch must still see it, every time.
func TestUntilSeesChangeRightAfterMonitor(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c, creator, changer := connect(t, srv), connect(t, srv), connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 400; i++ {
		name := fmt.Sprintf("row%d", i)
		addSwitch(t, creator, name)
		changed := make(chan error, 1)
		go func() {
			sw := &nbdb.LogicalSwitch{Name: name, OtherConfig: map[string]string{"done": "yes"}}
			ops, err := changer.WhereAll(sw, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: name}).Update(sw, &sw.OtherConfig)
			if err == nil {
				_, err = dbconn.Transact(ctx, changer, ops...)
			}
			changed <- err
		}()
		m := &nbdb.LogicalSwitch{Name: name}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := watch.Until(wctx, c, []watch.Table{{
			Model:  m,
			Cond:   []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}},
			Fields: []interface{}{&m.Name, &m.OtherConfig},
		}}, func(tc *cache.TableCache) (bool, error) {
			for _, r := range tc.Table(nbdb.LogicalSwitchTable).Rows() {
				if sw := r.(*nbdb.LogicalSwitch); sw.Name == name && sw.OtherConfig["done"] == "yes" {
					return true, nil
				}
			}
			return false, nil
		})
		wcancel()
		if cerr := <-changed; cerr != nil {
			t.Fatalf("change %s: %v", name, cerr)
		}
		if err != nil {
			t.Fatalf("watch %d: the change of %s was never seen: %v", i, name, err)
		}
	}
}

// A watch on a client closed meanwhile (the CNI plugin's health guard can
// still be running when the plugin closes its NB client) is an error
// wrapping client.ErrNotConnected, not a nil dereference of the client's
// dropped cache.
func TestStartOnClosedClient(t *testing.T) {
	c, err := dbconn.ConnectNB(context.Background(), ovsdbtest.StartNB(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// libovsdb drops the cache when its disconnect handler runs, just after Close.
	for end := time.Now().Add(5 * time.Second); c.Cache() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the closed client kept its cache")
		}
	}
	g := &nbdb.NBGlobal{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = watch.Until(ctx, c, []watch.Table{{Model: g, Cond: []model.Condition{{Field: &g.NbCfg, Function: ovsdb.ConditionGreaterThanOrEqual, Value: 0}}}},
		func(*cache.TableCache) (bool, error) { return true, nil })
	if !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("watch on a closed client: %v; want client.ErrNotConnected", err)
	}
}

// proxied starts an NB server, a client of it through an ovsdbtest.Proxy
// (closed at test end) and a direct writer.
func proxied(t *testing.T, ctx context.Context) (*ovsdbtest.Proxy, client.Client, client.Client) {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	px := ovsdbtest.StartProxy(t, srv)
	c, err := dbconn.ConnectNB(ctx, px.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return px, c, connect(t, srv)
}

// addedOutsideCache creates switch name through writer and checks that
// no leftover monitor brings it into c's cache (why names the fault), and
// that a new watch of it on c then works.
func addedOutsideCache(t *testing.T, ctx context.Context, c, writer client.Client, name, why string) {
	t.Helper()
	addSwitch(t, writer, name)
	time.Sleep(300 * time.Millisecond) // a leftover monitor's update would be here by now
	for _, r := range c.Cache().Table(nbdb.LogicalSwitchTable).Rows() {
		if r.(*nbdb.LogicalSwitch).Name == name {
			t.Fatalf("switch %s is in the client's cache: %s", name, why)
		}
	}
	if err := present(ctx, c, name); err != nil {
		t.Fatalf("watch of %s afterwards: %v", name, err)
	}
}

// A watch whose monitor request outlives its context (the server answers
// late) leaves no monitor behind: the switch it named, created afterwards,
// never reaches the client's cache, and a later watch of it works on the
// same connection. An orphaned monitor's rows stayed in the cache, and the
// next watch of one of them made libovsdb reconnect (its reply adding a row
// already there), failing every request in flight on that client.
func TestTimedOutWatchLeavesNoMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	px, c, writer := proxied(t, ctx)
	const name = "late-monitor"
	px.Arm(name, ovsdbtest.Stall)
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := present(sctx, c, name)
	scancel()
	if px.Fired() != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("watch with its monitor's reply held %s: fired %d, %v; want its deadline", ovsdbtest.StallFor, px.Fired(), err)
	}
	time.Sleep(ovsdbtest.StallFor) // the held replies arrive
	addedOutsideCache(t, ctx, c, writer, name, "the timed-out watch left its monitor on the server")
}

// A watch whose monitor_cancel never reaches the server (the cancel times
// out on a connection that stays up) leaves a monitor there: its updates
// must not reach the client's cache, or the next watch of the row collides
// with them (libovsdb reconnects, failing every request in flight).
func TestLostCancelLeavesNoRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	px, c, writer := proxied(t, ctx)
	const name = "lost-cancel"
	m := &nbdb.LogicalSwitch{Name: name}
	w, err := watch.Start(ctx, c, []watch.Table{{Model: m, Cond: []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}}}})
	if err != nil {
		t.Fatal(err)
	}
	px.Arm("monitor_cancel", ovsdbtest.DropRequest)
	w.Close() // its cancel times out: the server keeps the monitor
	if px.Fired() != 1 {
		t.Fatalf("monitor_cancel dropped %d times; want 1", px.Fired())
	}
	addedOutsideCache(t, ctx, c, writer, name, "a cancelled monitor's update was applied")
	if !c.Connected() {
		t.Fatal("client disconnected")
	}
}

// Watches start and stop on one client while another watch's row keeps
// changing: the updates for that row reach the client while a new watch's
// monitor request waits for its reply. A client whose update handling
// waited for a lock that a monitor request holds until its reply is read
// stopped reading altogether: every later call on it hung.
func TestWatchesWhileRowsChange(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	writer := connect(t, srv)
	// Closed only once every watch returned: Close would hang on a deadlock.
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addSwitch(t, writer, "busy")
	m := &nbdb.LogicalSwitch{Name: "busy"}
	busy, err := watch.Start(ctx, c, []watch.Table{{Model: m, Cond: []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: "busy"}}}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 4, 25
	for w := 0; w < workers; w++ {
		addSwitch(t, writer, fmt.Sprintf("calm%d", w))
	}
	stop := make(chan struct{})
	changed := make(chan int, 1)
	go func() { // the busy row changes as fast as the server commits
		n := 0
		defer func() { changed <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			op := ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.LogicalSwitchTable,
				Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: "busy"}},
				Row:   ovsdb.Row{"external_ids": ovsdb.OvsMap{GoMap: map[interface{}]interface{}{"n": fmt.Sprint(n)}}}}
			if _, err := dbconn.Transact(ctx, writer, op); err != nil {
				t.Errorf("change the busy row: %v", err)
				return
			}
			n++
		}
	}()
	errs := watchRounds(t, ctx, c, "calm", workers, rounds, "its read loop is blocked")
	close(stop)
	if n := <-changed; n < 50 {
		t.Errorf("the busy row changed only %d times during the watches: nothing tested", n)
	}
	busy.Close()
	c.Close()
	for _, err := range errs {
		t.Error(err)
	}
}
