package port_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// lsIDs reads a switch's external_ids.
func lsIDs(ctx context.Context, nb client.Client, name string) (map[string]string, error) {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(name)},
		func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.ExternalIDs} })
	if err != nil || len(rows) == 0 {
		return nil, errors.Join(err, errors.New("no switch "+name))
	}
	return rows[0].ExternalIDs, nil
}

// TestPoolClaimOnce: pools fill to their size and no further, also with
// concurrent refills; a pool port is claimed exactly once, however many
// claimers race for it; claimed ports are container ports (port list) and
// pooled ones count as free; trimming and network delete remove pool ports.
func TestPoolClaimOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NB, SB and ovn-northd")
	}
	nb, _ := startOVN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const net, node = "pool1", "n1"
	if _, err := network.Create(ctx, nb, network.Spec{Name: net, Subnet: "198.18.5.0/27"}); err != nil {
		t.Fatal(err)
	}
	before, err := network.Get(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	ps := port.PoolSpec{Network: net, Node: node}
	fill := func(size, parallel int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for i := 0; i < parallel; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _, err := port.FillPool(ctx, nb, ps, size); errs <- err }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		have, err := port.ListPool(ctx, nb, net, node)
		if err != nil {
			t.Fatal(err)
		}
		if len(have) != size {
			t.Fatalf("pool after %d concurrent fills to %d: %d ports", parallel, size, len(have))
		}
		seen := map[string]bool{}
		for _, pp := range have {
			if pp.State != port.PoolReady || !pp.IP.IsValid() || seen[pp.IP.String()] {
				t.Fatalf("pool port %+v: want ready with an address of its own", pp)
			}
			seen[pp.IP.String()] = true
		}
	}
	fill(3, 1)
	fill(3, 4)
	fill(5, 3)

	hints := func() []*port.PoolPort {
		t.Helper()
		ls, err := lsIDs(ctx, nb, net)
		if err != nil {
			t.Fatal(err)
		}
		return port.PoolHints(ls, net, node)
	}
	hs := hints()
	if len(hs) != 5 {
		t.Fatalf("%d pool hints on the switch; want 5", len(hs))
	}

	// Many claimers, one pool port: exactly one wins, the rest see the guard.
	pp := hs[0]
	const claimers = 8
	var wg sync.WaitGroup
	won := make(chan string, claimers)
	for i := 0; i < claimers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := port.Spec{Network: net, Node: node, Container: "ctr" + string(rune('a'+i)), IfName: "eth0"}
			_, err := dbconn.Transact(ctx, nb, port.ClaimOps(s, pp)...)
			switch {
			case err == nil:
				won <- s.Container
			case dbconn.FailedWait(err, port.ClaimGuard):
			default:
				t.Errorf("claim %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(won)
	var winners []string
	for w := range won {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("pool port %s claimed by %v; want exactly one claimer", pp.Name, winners)
	}
	got, err := port.Get(ctx, nb, pp.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Container != winners[0] || got.IP != pp.IP || got.IfaceIDVer != pp.Token || got.Node != node {
		t.Fatalf("claimed port %+v; want container %s, ip %s, its pool token", got, winners[0], pp.IP)
	}
	// A claim of a claimed port fails on its guard, also later.
	s := port.Spec{Network: net, Node: node, Container: "late", IfName: "eth0"}
	if _, err := dbconn.Transact(ctx, nb, port.ClaimOps(s, pp)...); !dbconn.FailedWait(err, port.ClaimGuard) {
		t.Fatalf("second claim of %s: %v; want its guard to fail", pp.Name, err)
	}
	if len(hints()) != 4 {
		t.Fatalf("claimed port's hint still on the switch")
	}
	if ls := port.MustList(t, ctx, nb); len(ls) != 1 || ls[0].Name != pp.Name {
		t.Fatalf("container ports %+v; want the claimed one only", ls)
	}
	after, err := network.Get(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	if after.Ports != 1 || after.Pooled != 4 || after.Free != before.Free-1 {
		t.Fatalf("network after a claim: ports %d pooled %d free %d; want 1, 4, %d (pooled addresses count as free)",
			after.Ports, after.Pooled, after.Free, before.Free-1)
	}

	// Trimming to a smaller size removes ready pool ports (never claimed ones).
	trimmed, err := port.TrimPool(ctx, nb, node, map[string]string{port.KeyPoolSize: "2"}, false)
	if err != nil || len(trimmed) != 2 {
		t.Fatalf("trim to 2: removed %d (%v); want 2", len(trimmed), err)
	}
	if len(hints()) != 2 {
		t.Fatalf("hints after trim: %d; want 2", len(hints()))
	}
	// net delete refuses the container port, not the pool; then takes the pool along.
	var inUse *network.PortsInUseError
	if err := network.Delete(ctx, nb, net, false); !errors.As(err, &inUse) || len(inUse.Ports) != 1 {
		t.Fatalf("net delete with a claimed port: %v; want it refused for that one port", err)
	}
	if err := port.Delete(ctx, nb, pp.Name); err != nil {
		t.Fatal(err)
	}
	if err := network.Delete(ctx, nb, net, false); err != nil {
		t.Fatalf("net delete with only pool ports: %v", err)
	}
	if left, err := port.ListPool(ctx, nb, "", ""); err != nil || len(left) != 0 {
		t.Fatalf("pool ports after net delete: %d (%v)", len(left), err)
	}
}
