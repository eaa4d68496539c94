package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

func holdLock(t *testing.T, socket, lock string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	release, err := HoldLock(ctx, "unix:"+socket, lock)
	if err != nil {
		t.Fatal(err)
	}
	return release
}

func TestNorthdRunningFollowsTheLock(t *testing.T) {
	sb := ovsdbtest.StartSB(t)
	ctx := context.Background()
	err := NorthdRunning(ctx, sb.Endpoint)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Component != CompNorthd || !strings.Contains(err.Error(), `nobody holds its lock "ovn_northd"`) {
		t.Fatalf("no lock holder: got %v, want ovn-northd not running", err)
	}
	release := holdLock(t, sb.Socket, NorthdLock)
	if err := NorthdRunning(ctx, sb.Endpoint); err != nil {
		t.Fatalf("lock held: got %v, want nil", err)
	}
	// The probe must not have taken the lock from its holder, nor kept a
	// place in its queue: once the holder goes, the lock is free again.
	release()
	deadline := time.Now().Add(5 * time.Second)
	for NorthdRunning(ctx, sb.Endpoint) == nil {
		if time.Now().After(deadline) {
			t.Fatal("lock still held after its holder closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err = NorthdRunning(ctx, "unix:"+t.TempDir()+"/none.sock")
	if !errors.As(err, &ue) || ue.Component != CompSB || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "OVN Southbound unreachable at unix:") {
		t.Fatalf("no server: got %v, want SB unreachable", err)
	}
}

func TestRoundTrip(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if err := dbops.NewTx(nb).AddAPI(nb.Create(&nbdb.NBGlobal{NbCfg: 0})).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	// No northd: nb_cfg is never carried to sb_cfg.
	err = RoundTrip(ctx, nb, srv.Endpoint, 300*time.Millisecond)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Component != CompNorthd || !strings.Contains(err.Error(), "did not carry NB change nb_cfg 1") {
		t.Fatalf("without northd: got %v", err)
	}
	northdStandIn(t, ctx, nb)
	if err := RoundTrip(ctx, nb, srv.Endpoint, 5*time.Second); err != nil {
		t.Fatalf("with a northd stand-in: %v", err)
	}
}

// TestProbeUnsupported: an ssl: SB cannot be asked for the lock without a
// client certificate; that is no finding about OVN (Check then relies on
// the nb_cfg round trip).
func TestProbeUnsupported(t *testing.T) {
	for _, k := range []string{dbconn.EnvCACert, dbconn.EnvCert, dbconn.EnvPrivateKey} {
		t.Setenv(k, "")
	}
	dbconn.SetTLSFiles(dbconn.TLSFiles{})
	err := NorthdRunning(context.Background(), "ssl:198.18.0.1:6642")
	if !errors.Is(err, ErrProbeUnsupported) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("ssl endpoint: got %v; want ErrProbeUnsupported, not ErrUnavailable", err)
	}
}

// TestConcurrentRoundTrips: round trips running at once on one client (a
// long-lived client shared by concurrent CNI verbs, each with its Guard)
// all succeed. Each watched the one NB_Global row; the first to finish
// dropped it from the client's cache while the others still watched it,
// and the next nb_cfg update did not fit the cache: libovsdb reconnected,
// failing every request in flight on that client.
func TestConcurrentRoundTrips(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	northd, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer northd.Close()
	if err := dbops.NewTx(nb).AddAPI(nb.Create(&nbdb.NBGlobal{NbCfg: 0})).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	northdStandIn(t, ctx, northd)
	const workers, each = 8, 25
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := RoundTrip(ctx, nb, srv.Endpoint, 10*time.Second); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n == 0 {
			t.Errorf("round trip: %v", err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d concurrent round trips on one client failed", n, workers*each)
	}
}

// northdStandIn copies nb_cfg to sb_cfg on c, as ovn-northd would, until
// the test ends.
func northdStandIn(t *testing.T, ctx context.Context, c client.Client) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			var gs []*nbdb.NBGlobal
			if err := dbconn.Select(ctx, c, &nbdb.NBGlobal{}, &gs); err != nil || len(gs) == 0 {
				continue
			}
			if g := gs[0]; g.SbCfg < g.NbCfg {
				g.SbCfg = g.NbCfg
				_ = dbops.NewTx(c).AddAPI(c.Where(g).Update(g, &g.SbCfg)).Transact(ctx)
			}
		}
	}()
}

// TestGuardTwoFindings: one check that finds the NB unreachable (its
// nb_cfg bump answered only after the budget, as while an NB leader hands
// over) does not end the wait, and the next check passing clears it; two
// in a row (the NB stopped) end it, with the NB named as the cause.
func TestGuardTwoFindings(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	proxy := ovsdbtest.StartProxy(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, proxy.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if err := dbops.NewTx(nb).AddAPI(nb.Create(&nbdb.NBGlobal{})).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	northd, err := dbconn.ConnectNB(ctx, srv.Endpoint) // beside the proxy
	if err != nil {
		t.Fatal(err)
	}
	defer northd.Close()
	northdStandIn(t, ctx, northd)

	// The held reply (ovsdbtest.StallFor, 1 s) outlasts the budget; the
	// next check comes after it.
	const grace, interval, budget = 10 * time.Millisecond, 1500 * time.Millisecond, 600 * time.Millisecond
	proxy.Arm("nb_cfg", ovsdbtest.Stall) // the first check's bump: its reply comes after the budget
	gctx, gcancel := context.WithCancelCause(ctx)
	defer gcancel(nil)
	g := &Guard{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(gctx, gcancel, nb, proxy.Endpoint, "", grace, interval, budget)
	}()
	// Checks at about 0 s (the finding), 2.1 s and 3.6 s or later (passing,
	// or slow: the stand-in may lag under load, which is no finding).
	time.Sleep(grace + 2*interval + 2*budget + 300*time.Millisecond)
	if cause := context.Cause(gctx); cause != nil {
		t.Fatalf("one finding ended the wait: %v", cause)
	}
	if proxy.Fired() != 1 {
		t.Fatalf("the bump was not held (fired %d)", proxy.Fired())
	}
	var ue *UnavailableError
	if last := g.Last(); last != nil && (!errors.As(last, &ue) || !ue.NoProgress) {
		t.Errorf("Last after the held bump's check = %v; want nil or a slow northd, not a certain finding", last)
	}

	srv.Stop()
	select {
	case <-done:
	case <-time.After(4*interval + 4*budget):
		t.Fatal("the NB stopped: the guard did not end the wait")
	}
	if cause := context.Cause(gctx); !errors.As(cause, &ue) || ue.Component != CompNB || ue.NoProgress {
		t.Fatalf("cause = %v; want the NB unreachable", cause)
	}
}
