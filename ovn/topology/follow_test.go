package topology_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// TestFollow: Follow delivers the whole graph at once (every container:
// its reads must not go through the monitored connections, where a select
// with model conditions returned one port of nine) and again when a
// network is created.
func TestFollow(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	fill(t, nb, 3) // 3 networks with 3 container ports each
	graphs := make(chan *topology.Graph, 16)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- topology.Follow(fctx, srv.Endpoint, "", 50*time.Millisecond, func(g *topology.Graph, err error) {
			if err != nil {
				t.Errorf("follow: %v", err)
				return
			}
			graphs <- g
		})
	}()
	wait := func(n int) {
		t.Helper()
		for {
			select {
			case g := <-graphs:
				if len(g.Networks) == n {
					if len(g.Containers) != 9 {
						t.Fatalf("graph with %d containers; want 9", len(g.Containers))
					}
					return
				}
				if len(g.Networks) > n || n == 3 {
					t.Fatalf("graph with %d networks; want %d: %+v", len(g.Networks), n, g.Networks)
				}
			case <-ctx.Done():
				t.Fatalf("no graph with %d networks", n)
			}
		}
	}
	wait(3)
	if _, err := network.Create(ctx, nb, network.Spec{Name: "f3", Subnet: "198.19.13.0/24"}); err != nil {
		t.Fatal(err)
	}
	wait(4)
	stop()
	if err := <-done; err != context.Canceled {
		t.Errorf("Follow returned %v; want context.Canceled", err)
	}
}
