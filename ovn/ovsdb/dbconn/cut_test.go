package dbconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
)

// A server that closes the connection right after the handshake (a cluster
// member leaving while a client connects to it) must not race with the
// client's start: libovsdb v0.8.0 started the disconnect handler before it
// counted the handlers that handler waits for, so its Wait raced with
// connect's Add (a data race the race detector reported in
// TestHALeaderTransferADDs) and could return before the handlers it should
// have waited for had been counted. Under -race (make test) this fails
// without the order of the libovsdb copy's connect.
func TestServerCutAfterHandshake(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	proxy := ovsdbtest.StartProxy(t, srv)
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	quiet := logr.Discard()
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(proxy.Endpoint), client.WithLogger(&quiet))
		if err != nil {
			t.Fatal(err)
		}
		proxy.Arm("get_schema", ovsdbtest.Cut)
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		select {
		case <-c.DisconnectNotify():
		case <-ctx.Done():
			t.Fatalf("connect %d: the client did not notice the server closing within 10s", i)
		}
		c.Close()
		cancel()
	}
	if n := proxy.Fired(); n != 10 {
		t.Errorf("the proxy cut %d connections, want 10", n)
	}
}
