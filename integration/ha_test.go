package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
)

// haLab brings up a lab with 3-member NB and SB clusters (one ovn-northd
// per member) and 2 nodes, taken down at test end.
func haLab(tb testing.TB, prefix string) *lab.Lab {
	tb.Helper()
	needLab(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Central: 3, Name: uniqueName(prefix)})
	if err != nil {
		tb.Fatalf("clustered lab up: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			tb.Errorf("lab down: %v", err)
		}
	})
	return l
}

// TestHALeaderTransferADDs: CNI ADDs run back to back on both nodes while
// the NB leader, then the SB leader, then the NB leader again leave their
// cluster (cluster/leave: leadership moves without a crash) and join
// again, with the plugin doing the ADDs, then with the nodes' CNI servers.
// Every ADD must succeed.
func TestHALeaderTransferADDs(t *testing.T) {
	if testing.Short() {
		t.Skip("clustered lab")
	}
	l := haLab(t, "hat")
	nb := cniNB(t, l)
	cniNetwork(t, nb, "hatr", "198.19.251.0/24")
	list := confList(t, "hatr", "1.0.0", nil)
	t.Run("plugin", func(t *testing.T) { leaderTransferADDs(t, l, list, false) })
	t.Run("served", func(t *testing.T) { leaderTransferADDs(t, l, list, true) })
}

// leaderTransferADDs runs ADD+DEL loops on n1 and n2 while the NB, SB and
// NB leaderships move, each ADD in the plugin or served by the node's CNI
// server (whose NB connection, kept across ADDs, must follow the leader).
func leaderTransferADDs(t *testing.T, l *lab.Lab, list *libcni.NetworkConfigList, served bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		mu     sync.Mutex
		adds   int
		failed []string
		took   []time.Duration
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, name := range []string{"n1", "n2"} {
		node, _ := l.Node(name)
		if served {
			startCNIServer(t, node)
		}
		rt := newRuntime(t, node)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := newContainer(t, rt, list)
				t0 := time.Now()
				actx, acancel := context.WithTimeout(ctx, 60*time.Second)
				err := c.add(actx)
				acancel()
				mu.Lock()
				adds++
				took = append(took, time.Since(t0))
				if err != nil {
					failed = append(failed, fmt.Sprintf("ADD %s on %s: %v", c.id, node.Name, err))
				}
				mu.Unlock()
				if err == nil {
					dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
					if err := c.del(dctx); err != nil {
						t.Errorf("DEL %s: %v", c.id, err)
					}
					dcancel()
				}
			}
		}()
	}
	var moves []string
	for _, which := range []string{"nb", "sb", "nb"} {
		time.Sleep(1500 * time.Millisecond)
		before := func() int { mu.Lock(); defer mu.Unlock(); return adds }()
		t0 := time.Now()
		was, err := l.LeaveRejoin(ctx, which)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("%s leader leave/rejoin: %v", which, err)
		}
		now, _ := l.Leader(ctx, which)
		moves = append(moves, fmt.Sprintf("%s leader %s -> %s (%.1fs, ADDs %d..)", which, was, now, time.Since(t0).Seconds(), before))
		if now == was {
			t.Errorf("%s leadership did not move: %s leads again", which, now)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("%d ADDs during 3 leadership moves: %d failed; ADD p50 %d ms, p95 %d ms, max %d ms", adds, len(failed),
		took[len(took)/2].Milliseconds(), took[len(took)*95/100].Milliseconds(), took[len(took)-1].Milliseconds())
	for _, m := range moves {
		t.Log("  " + m)
	}
	for _, f := range failed {
		t.Error(f)
	}
	if adds < 10 {
		t.Errorf("only %d ADDs ran", adds)
	}
}

// TestHADiagnose: diagnose's cluster checks on a clustered lab follow real
// faults: all members -> ok; one NB member killed -> warn (quorum kept,
// one more failure loses it); two killed -> fail naming lost quorum and
// the fix; both back -> ok; and the NB leader killed and back -> a warning
// that the leader changed recently.
func TestHADiagnose(t *testing.T) {
	if testing.Short() {
		t.Skip("clustered lab")
	}
	l := haLab(t, "had")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	check := func(step, name string, want diagnose.Status, text string) {
		t.Helper()
		r, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB, NBCtl: l.ControlSockets("nb"), SBCtl: l.ControlSockets("sb")})
		c := findCheck(r, diagnose.AreaCluster, name)
		if c == nil {
			t.Fatalf("%s: no check %q in %+v", step, name, r.Checks)
		}
		if c.Status != want || !strings.Contains(c.Detail+" "+c.Fix, text) {
			t.Errorf("%s: check %s = %s %q (fix %q); want %s mentioning %q", step, name, c.Status, c.Detail, c.Fix, want, text)
		}
	}
	check("healthy", "nb cluster", diagnose.OK, "3 of 3 members connected")
	check("healthy", "sb cluster", diagnose.OK, "3 of 3 members connected")
	if err := l.Kill(ctx, lab.Central, "nb2"); err != nil {
		t.Fatal(err)
	}
	check("one NB member down", "nb cluster", diagnose.Warn, "one more failure")
	if err := l.Kill(ctx, lab.Central, "nb3"); err != nil {
		t.Fatal(err)
	}
	check("two NB members down", "nb cluster", diagnose.Fail, "lost quorum")
	check("two NB members down", "nb cluster", diagnose.Fail, "lab restart central nb")
	for _, d := range []string{"nb2", "nb3"} {
		if err := l.Start(ctx, lab.Central, d); err != nil {
			t.Fatal(err)
		}
	}
	check("members back", "nb cluster", diagnose.OK, "3 of 3 members connected")
	leader, err := l.Leader(ctx, "nb")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, lab.Central, leader, lab.RestartOptions{Kill: true}); err != nil {
		t.Fatal(err)
	}
	check("after a leader kill", "nb cluster leader change", diagnose.Warn, "leader changed recently")
}
