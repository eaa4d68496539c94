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

// A leader-only client (every ovlmgr client of a clustered NB or SB, the CNI
// plugin's on each ADD) watches _Server's Database rows for leader changes.
// Those rows also carry each database's whole schema, which the handshake
// has just fetched: libovsdb v0.8.0 monitored every column, so such a
// connect moved the primary database's schema twice. The watch now asks for
// the columns it reads: what a leader-only connect receives beyond a plain
// one (the _Server schema, the leader check, the watch's rows) stays well
// under the primary schema's size. Fails with the watch on every column.
func TestLeaderWatchLeavesSchemasOut(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	quiet := logr.Discard()
	received := func(leaderOnly bool) int64 {
		proxy := ovsdbtest.StartProxy(t, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(proxy.Endpoint), client.WithLogger(&quiet),
			client.WithLeaderOnly(leaderOnly))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect (leader only %v): %v", leaderOnly, err)
		}
		return proxy.Sent()
	}
	plain := received(false) // list_dbs and the NB schema
	leader := received(true)
	t.Logf("a connect received %d bytes, %d leader-only", plain, leader)
	if plain < 10000 {
		t.Fatalf("a plain connect received %d bytes: less than the NB schema", plain)
	}
	if extra := leader - plain; extra > plain/2 {
		t.Errorf("a leader-only connect received %d bytes more than a plain one (%d): the leader watch fetched the schemas again", extra, plain)
	}
}
