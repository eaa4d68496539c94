package dbconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
)

// A call whose context ends before the server answers leaves its reply to
// the client's read loop, which decodes the late answer into it. libovsdb
// v0.8.0 read the reply anyway: Echo compared it (and answered "incorrect
// server response" instead of the deadline), Monitor took its updates, and
// the copy's handshake (get_schema and the leader check sent together) its
// schema: a data race the race detector reported in TestClusterLeader.
// Here the proxy holds the answers of an echo and of a monitor past their
// deadlines, and the test touches the client again only once each late
// answer has been decoded (a call meanwhile would order the two accesses
// for the race detector). Under -race (make test) this fails without the
// copy's rule that a reply is read only after a call that succeeded; the
// echo's error fails it without -race too.
func TestLateReplyAfterDeadline(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	proxy := ovsdbtest.StartProxy(t, srv)
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	quiet := logr.Discard()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(proxy.Endpoint), client.WithLogger(&quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	proxy.Arm("echo", ovsdbtest.Stall)
	ectx, ecancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = c.Echo(ectx)
	ecancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("echo answered past its deadline: %v; want the deadline", err)
	}
	time.Sleep(ovsdbtest.StallFor + 500*time.Millisecond) // the late answer decoded
	if err := c.Echo(ctx); err != nil {
		t.Fatalf("echo after the held one: %v", err)
	}

	proxy.Arm("monitor_cond", ovsdbtest.Stall)
	g := &nbdb.NBGlobal{}
	mon := c.NewMonitor(client.WithTable(g, &g.ExternalIDs))
	mon.Method = ovsdb.ConditionalMonitorRPC
	mctx, mcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Monitor(mctx, mon)
	mcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("monitor answered past its deadline: %v; want the deadline", err)
	}
	time.Sleep(ovsdbtest.StallFor + 500*time.Millisecond)
	if err := c.Echo(ctx); err != nil {
		t.Fatalf("echo after the held monitor: %v", err)
	}
	if n := proxy.Fired(); n != 2 {
		t.Errorf("the proxy held %d answers, want 2", n)
	}
}
