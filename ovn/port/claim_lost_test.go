package port_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// A claim whose reply is lost (the connection drops after the server
// committed it) is a success of this container, not a failed ADD: Claim
// reads the port on the reconnected client and finds it its own. A raw
// transaction through the same fault returns ErrConnectionLost, which is
// what ADD reported before.
func TestClaimLostReply(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NB, SB and ovn-northd")
	}
	nb, nbs := startOVN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const net1, node = "lost1", "n1"
	if _, err := network.Create(ctx, nb, network.Spec{Name: net1, Subnet: "198.18.6.0/27"}); err != nil {
		t.Fatal(err)
	}
	if _, err := port.FillPool(ctx, nb, port.PoolSpec{Network: net1, Node: node}, 2); err != nil {
		t.Fatal(err)
	}
	ls, err := lsIDs(ctx, nb, net1)
	if err != nil {
		t.Fatal(err)
	}
	hs := port.PoolHints(ls, net1, node)
	if len(hs) != 2 {
		t.Fatalf("%d pool hints; want 2", len(hs))
	}
	px := ovsdbtest.StartProxy(t, nbs)
	c, err := dbconn.ConnectNB(ctx, px.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The fault, shown on a plain transaction: committed, reply lost.
	raw := port.Spec{Network: net1, Node: node, Container: "ctr-raw", IfName: "eth0"}
	px.Arm(hs[0].Name, ovsdbtest.LoseReply)
	_, err = dbconn.Transact(ctx, c, port.ClaimOps(raw, hs[0])...)
	if px.Fired() != 1 || !errors.Is(err, dbconn.ErrConnectionLost) {
		t.Fatalf("raw claim through the fault: fired %d, %v; want the reply lost (ErrConnectionLost)", px.Fired(), err)
	}
	if got := ports(t, ctx, nb, net1, "ctr-raw"); got != 1 {
		t.Fatalf("raw claim: %d ports of ctr-raw; want 1 (it committed)", got)
	}

	s := port.Spec{Network: net1, Node: node, Container: "ctr-lost", IfName: "eth0"}
	px.Arm(hs[1].Name, ovsdbtest.LoseReply)
	if err := port.Claim(ctx, c, s, hs[1]); err != nil {
		t.Fatalf("claim with its reply lost: %v; want success", err)
	}
	if px.Fired() != 2 {
		t.Fatalf("the fault fired %d times; want 2", px.Fired())
	}
	if got := ports(t, ctx, nb, net1, "ctr-lost"); got != 1 {
		t.Fatalf("%d ports of ctr-lost; want 1", got)
	}
	// A port claimed by another container is not mistaken for ours.
	other := port.Spec{Network: net1, Node: node, Container: "ctr-other", IfName: "eth0"}
	if err := port.Claim(ctx, c, other, hs[1]); !dbconn.FailedWait(err, port.ClaimGuard) {
		t.Fatalf("claim of a taken port: %v; want the claim guard to fail", err)
	}
}

// ports counts the container ports of network owned by container.
func ports(t *testing.T, ctx context.Context, nb client.Client, network, container string) int {
	t.Helper()
	ps, err := port.List(ctx, nb, port.Filter{Network: network})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range ps {
		if p.Container == container {
			n++
		}
	}
	return n
}
