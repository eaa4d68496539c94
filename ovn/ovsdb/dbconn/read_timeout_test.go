package dbconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// wrapped is a client wrapping another, as dbconn.Wrapper describes.
type wrapped struct{ client.Client }

func (w wrapped) Unwrap() client.Client { return w.Client }

// A cluster client's read that a server leaves unanswered (the connection
// stays up, as with a member leaving its cluster) is read again on a new
// connection after ReadTimeout instead of waiting for the caller's
// deadline; a write is never resent this way.
func TestReadUnansweredIsReadAgain(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	px := ovsdbtest.StartProxy(t, srv)
	old := dbconn.ReadTimeout
	dbconn.ReadTimeout = 500 * time.Millisecond
	t.Cleanup(func() { dbconn.ReadTimeout = old })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Two endpoints make a cluster client (leader-only); both reach the proxy.
	c, err := dbconn.ConnectNB(ctx, px.Endpoint+","+px.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops, err := c.Create(&nbdb.LogicalSwitch{Name: "rt1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Fatal(err)
	}

	px.Arm("rt1", ovsdbtest.Silence)
	rctx, rcancel := context.WithTimeout(ctx, 8*time.Second)
	defer rcancel()
	start := time.Now()
	rows, err := dbops.SelectRows[nbdb.LogicalSwitch](rctx, c, []ovsdb.Condition{dbops.NameIs("rt1")})
	took := time.Since(start)
	if px.Fired() != 1 {
		t.Fatalf("the fault fired %d times; want 1", px.Fired())
	}
	if err != nil || len(rows) != 1 {
		t.Fatalf("read with its reply withheld: %d rows, %v after %s; want the switch, read again", len(rows), err, took.Round(time.Millisecond))
	}
	t.Logf("read again after %s", took.Round(time.Millisecond))

	// The same through a client wrapping it (dbconn.Wrapper, as a kept
	// session client of ovs/attach is).
	px.Arm("rt1", ovsdbtest.Silence)
	wrctx, wrcancel := context.WithTimeout(ctx, 4*time.Second)
	defer wrcancel()
	rows, err = dbops.SelectRows[nbdb.LogicalSwitch](wrctx, wrapped{c}, []ovsdb.Condition{dbops.NameIs("rt1")})
	if px.Fired() != 2 || err != nil || len(rows) != 1 {
		t.Fatalf("read through a wrapper with its reply withheld: fired %d, %d rows, %v; want the switch, read again", px.Fired(), len(rows), err)
	}

	// A write meeting the same silence is not resent: it fails at its deadline.
	ops, err = c.Create(&nbdb.LogicalSwitch{Name: "rt2"})
	if err != nil {
		t.Fatal(err)
	}
	px.Arm("rt2", ovsdbtest.Silence)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if _, err := dbconn.Transact(wctx, c, ops...); err == nil {
		t.Fatal("write with its reply withheld succeeded; want its deadline")
	}
}
