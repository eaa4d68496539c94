package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/events"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

func connect(t *testing.T, ep string, f func(context.Context, string) (client.Client, error)) client.Client {
	t.Helper()
	c, err := f(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func transact(t *testing.T, c client.Client, ops []ovsdb.Operation, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(context.Background(), c, ops...); err != nil {
		t.Fatal(err)
	}
}

// TestFollow: on real NB and SB servers, Follow turns row changes into
// events: rows present at start are no events; a port that comes up is
// attached (with its address), goes down and up, is detached; a port
// removed before it came up says so; a chassis joins and leaves; --net
// filters.
func TestFollow(t *testing.T) {
	nbSrv, sbSrv := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	nb, sb := connect(t, nbSrv.Endpoint, dbconn.ConnectNB), connect(t, sbSrv.Endpoint, dbconn.ConnectSB)
	w := connect(t, nbSrv.Endpoint, dbconn.ConnectNB)
	ws := connect(t, sbSrv.Endpoint, dbconn.ConnectSB)
	port := func(uuid, name, net, ip string, up bool) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: uuid, Name: name, Addresses: []string{"0a:58:c6:12:00:02 " + ip}, Up: &up,
			ExternalIDs: owner.IDs(owner.KindPort, name, map[string]string{owner.KeyNetwork: net, owner.KeyNode: "n1", owner.KeyContainer: name + "-container-id"})}
	}
	old := port("old", "p-old", "web", "198.18.0.9", true)
	ls := &nbdb.LogicalSwitch{UUID: "ls", Name: "web", Ports: []string{"old"}}
	ops, err := w.Create(old, ls)
	transact(t, w, ops, err)

	got := make(chan events.Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() {
		done <- events.Follow(ctx, events.Options{NB: nb, SB: sb, Filter: events.Filter{Network: "web"}}, func(e events.Event) { got <- e }, ready)
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	<-ready
	next := func(kind events.Kind, text string) {
		t.Helper()
		select {
		case e := <-got:
			if e.Kind != kind || !strings.Contains(e.Text, text) {
				t.Errorf("event = %s %q; want %s with %q", e.Kind, e.Text, kind, text)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event (%q) within 5s", kind, text)
		}
	}

	// A port is inserted with the mutation that puts it on its switch
	// (it is not a root row).
	addPort := func(lsp *nbdb.LogicalSwitchPort, swName string) {
		t.Helper()
		ops, err := w.Create(lsp)
		if err != nil {
			t.Fatal(err)
		}
		sw := &nbdb.LogicalSwitch{Name: swName}
		mut, err := w.WhereAll(sw, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: swName}).
			Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{lsp.UUID}})
		transact(t, w, append(ops, mut...), err)
	}
	// A new port, not up yet: nothing; up: attached.
	addPort(port("newp", "p-new", "web", "198.18.0.10", false), "web")
	setUp := func(name string, up bool) {
		lsp := &nbdb.LogicalSwitchPort{Name: name, Up: &up}
		ops, err := w.Where(lsp).Update(lsp, &lsp.Up)
		transact(t, w, ops, err)
	}
	setUp("p-new", true)
	next(events.Attached, "container p-new-contai attached to network web on node n1: 198.18.0.10")
	setUp("p-new", false)
	next(events.PortDown, "is down on node n1")
	setUp("p-new", true)
	next(events.PortUp, "is up on node n1")
	del := func(name string) {
		t.Helper()
		var rows []*nbdb.LogicalSwitchPort
		m := &nbdb.LogicalSwitchPort{Name: name}
		if err := dbconn.Select(context.Background(), w, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil || len(rows) != 1 {
			t.Fatalf("port %s: %v (%d rows)", name, err, len(rows))
		}
		// Off its switch: the row goes with its last reference.
		sw := &nbdb.LogicalSwitch{Name: "web"}
		ops, err := w.WhereAll(sw, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: "web"}).
			Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{rows[0].UUID}})
		transact(t, w, ops, err)
	}
	del("p-new")
	next(events.Detached, "detached from network web on node n1 (198.18.0.10)")
	// The existing port, removed: detached (it was there and up at start).
	del("p-old")
	next(events.Detached, "container p-old-contai detached")
	// Another network's port: filtered out; a port never up: said so.
	addPort(port("other", "p-other", "db", "198.18.1.2", true), "web")
	addPort(port("never", "p-never", "web", "198.18.0.11", false), "web")
	del("p-never")
	next(events.Detached, "before its port came up")

	// Chassis: joined and left (unfiltered by network: no network).
	cancel()
	<-done
	stopped = true
	got = make(chan events.Event, 100)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2, ready2 := make(chan error, 1), make(chan struct{})
	defer func() { cancel2(); <-done2 }()
	nb2, sb2 := connect(t, nbSrv.Endpoint, dbconn.ConnectNB), connect(t, sbSrv.Endpoint, dbconn.ConnectSB)
	go func() {
		done2 <- events.Follow(ctx2, events.Options{NB: nb2, SB: sb2}, func(e events.Event) { got <- e }, ready2)
	}()
	<-ready2
	enc := &sbdb.Encap{UUID: "enc", ChassisName: "n7", IP: "198.18.0.17", Type: sbdb.EncapTypeGeneve}
	ch := &sbdb.Chassis{UUID: "ch", Name: "n7", Hostname: "host7", Encaps: []string{"enc"}}
	ops, err = ws.Create(enc, ch)
	transact(t, ws, ops, err)
	next(events.ChassisJoined, "node n7 joined (chassis n7, hostname host7, encap 198.18.0.17)")
	ops, err = ws.Where(&sbdb.Chassis{Name: "n7"}).Delete()
	transact(t, ws, ops, err)
	next(events.ChassisLeft, "node n7 left")
}
