package dbconn_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
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

// A leader-only client follows the leadership when it moves while the old
// leader stays in the cluster (a follower now, its connections up): the
// leader watch, on its four _Server columns, sees the old leader's row
// change and the client reconnects to the new leader, where a write goes
// through. Fails without a working watch: the client stays on the
// follower.
func TestLeaderOnlyFollowsLeader(t *testing.T) {
	cl := ovsdbtest.StartNBCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := dbconn.ConnectNB(ctx, strings.Join(cl.Endpoints, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	was := c.CurrentEndpoint()
	leader := slices.Index(cl.Endpoints, was)
	if leader < 0 {
		t.Fatalf("connected to %q, not a member", was)
	}
	// Leadership moves when the leader compacts its log with this failure
	// test engaged; the member stays in the cluster. Raft may hand it back
	// (the old leader wins the next term): then it is moved again.
	appctl := func(member int, args ...string) string {
		out, err := ovsdbtest.Cmd(t, "ovs-appctl", append([]string{"-t", cl.Ctls[member]}, args...)...).CombinedOutput()
		if err != nil {
			b, _ := os.ReadFile(cl.Logs[member])
			t.Fatalf("ovs-appctl %v: %v: %s\nlog of %s:\n%s", args, err, out, cl.Endpoints[member], b)
		}
		return string(out)
	}
	leads := func() int {
		for i := range cl.Ctls {
			if strings.Contains(appctl(i, "cluster/status", "OVN_Northbound"), "Role: leader") {
				return i
			}
		}
		return -1
	}
	// The other two members must have joined first.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := appctl(leader, "cluster/status", "OVN_Northbound")
		if strings.Count(st[strings.Index(st, "Servers:")+1:], " at unix:") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster has not formed after 20 s: %s", st)
		}
	}
	var other time.Time // since when another member leads without a break
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		now := leads()
		if now >= 0 && now != leader && c.CurrentEndpoint() == cl.Endpoints[now] {
			break
		}
		switch {
		case now == leader:
			other = time.Time{}
			appctl(leader, "cluster/failure-test", "transfer-leadership")
			appctl(leader, "ovsdb-server/compact")
		case now >= 0 && other.IsZero():
			other = time.Now()
		case now >= 0 && time.Since(other) > 5*time.Second:
			t.Fatalf("%s has led for 5 s; the client stays on %s", cl.Endpoints[now], c.CurrentEndpoint())
		}
		if time.Now().After(deadline) {
			t.Fatalf("leadership did not stay off %s for 30 s; the client is on %q", was, c.CurrentEndpoint())
		}
	}
	ls := &nbdb.LogicalSwitch{Name: "follows"}
	ops, err := c.Create(ls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Errorf("write on the new leader %s: %v", c.CurrentEndpoint(), err)
	}
}
