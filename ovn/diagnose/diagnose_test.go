package diagnose

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/health"
)

func find(t *testing.T, r *Report, name string) *Check {
	t.Helper()
	c := r.Find(name)
	if c == nil {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Fatalf("no check %q:\n%s", name, b.String())
	}
	return c
}

// TestCluster runs the central checks on real (standalone) NB and SB
// ovsdb-servers with no ovn-northd and no ovn-controller.
func TestCluster(t *testing.T) {
	nb, sb := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	nb.Run(t, "ovn-nbctl", "init")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r, _ := Cluster(ctx, Options{NB: nb.Endpoint, SB: sb.Endpoint})
	if c := find(t, r, "nb"); c.Status != OK || !strings.Contains(c.Detail, "standalone") {
		t.Errorf("nb: %+v", c)
	}
	// Without --sync, a dead ovn-northd shows in the SB: nobody holds its lock.
	if c := find(t, r, "northd"); c.Status != Fail || !strings.Contains(c.Detail, `ovn-northd is not running: nobody holds its lock "ovn_northd"`) || c.Fix == "" {
		t.Errorf("northd without a lock holder: %+v", c)
	}
	// From here on a stand-in holds northd's lock (but does not translate).
	release, err := health.HoldLock(ctx, sb.Endpoint, health.NorthdLock)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r, st := Cluster(ctx, Options{NB: nb.Endpoint, SB: sb.Endpoint})
	if c := find(t, r, "northd"); c.Status != OK {
		t.Errorf("northd on empty databases (nothing to translate): %+v", c)
	}
	if c := find(t, r, "chassis"); c.Status != Warn || len(st.Chassis) != 0 {
		t.Errorf("no chassis: %+v", c)
	}

	// Only --sync proves ovn-northd is alive: here none runs.
	r, _ = Cluster(ctx, Options{NB: nb.Endpoint, SB: sb.Endpoint, Sync: true, SyncTimeout: 300 * time.Millisecond})
	if c := find(t, r, "northd"); c.Status != Fail || !strings.Contains(c.Detail, "ovn-northd did not answer") || c.Fix == "" {
		t.Errorf("northd with --sync and no northd: %+v", c)
	}
	if r.Status != Fail {
		t.Errorf("report status %s; want fail", r.Status)
	}

	// A network without northd: NB has a switch, SB no datapath.
	nb.Run(t, "ovn-nbctl", "ls-add", "web", "--", "set", "logical_switch", "web",
		"external_ids:ovlmgr.io/owner=ovlmgr", "external_ids:ovlmgr.io/kind=network", "external_ids:ovlmgr.io/name=web")
	for _, p := range []string{"ovl-a", "ovl-b"} {
		// (set, not lsp-set-addresses: ovn-nbctl refuses the duplicate ovlmgr must detect)
		nb.Run(t, "ovn-nbctl", "lsp-add", "web", p, "--",
			"set", "logical_switch_port", p, `addresses="0a:00:00:00:00:0`+p[4:]+` 198.19.1.10"`, "external_ids:ovlmgr.io/owner=ovlmgr", "external_ids:ovlmgr.io/kind=port",
			"external_ids:ovlmgr.io/network=web", "external_ids:ovlmgr.io/container=c-"+p, "external_ids:ovlmgr.io/node=n1")
	}
	// A chassis row that no ovn-controller claims.
	sb.Run(t, "ovn-sbctl", "chassis-add", "ghost", "geneve", "198.18.0.99")

	// The --sync above left nb_cfg 1 unanswered.
	r, _ = Cluster(ctx, Options{NB: nb.Endpoint, SB: sb.Endpoint})
	if c := find(t, r, "northd"); c.Status != Fail || !strings.Contains(c.Detail, "ovn-northd is behind: NB nb_cfg 1, sb_cfg 0") {
		t.Errorf("northd behind: %+v", c)
	}
	nb.Run(t, "ovn-nbctl", "set", "nb_global", ".", "sb_cfg=1")
	r, st = Cluster(ctx, Options{NB: nb.Endpoint, SB: sb.Endpoint})
	if c := find(t, r, "northd"); c.Status != Fail || !strings.Contains(c.Detail, "NB has 1 switches and routers, SB 0 datapaths") {
		t.Errorf("northd not caught up: %+v", c)
	}
	if c := find(t, r, "chassis ghost"); c.Status != Fail || !strings.Contains(c.Detail, "stale") || !strings.Contains(c.Fix, "ovn-sbctl chassis-del ghost") {
		t.Errorf("stale chassis: %+v", c)
	}
	if ch := st.ByName("ghost"); ch == nil || ch.Claimed || len(ch.EncapIPs) != 1 || ch.EncapIPs[0] != "198.18.0.99" {
		t.Errorf("state: %+v", st)
	}
	if c := find(t, r, "port ovl-a"); c.Status != Fail || !strings.Contains(c.Detail, "container c-ovl-a on network web has no Port_Binding") {
		t.Errorf("unbound port: %+v", c)
	}
	if c := find(t, r, "address 198.19.1.10"); c.Status != Fail || !strings.Contains(c.Detail, "used by 2 ports on network web: ovl-a, ovl-b") {
		t.Errorf("address used twice: %+v", c)
	}

	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{"cluster:\n", "  fail  chassis ghost", "        fix: if node ghost is gone", "checks need attention (worst: fail)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestClusterUnreachable: a database that does not answer fails with a fix
// and the dependent checks say why they did not run.
func TestClusterUnreachable(t *testing.T) {
	sb := ovsdbtest.StartSB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, _ := Cluster(ctx, Options{NB: "unix:" + t.TempDir() + "/none.sock", SB: sb.Endpoint})
	if c := find(t, r, "nb"); c.Status != Fail || !strings.Contains(c.Detail, "NB unreachable") || c.Fix == "" {
		t.Errorf("nb: %+v", c)
	}
	// The SB still answers for what it holds: northd's lock, the chassis.
	if c := find(t, r, "northd"); c.Status != Fail || !strings.Contains(c.Detail, "ovn-northd is not running") {
		t.Errorf("northd (no lock holder): %+v", c)
	}
	if c := find(t, r, "ports"); c.Status != Fail || !strings.Contains(c.Detail, "not checked: NB unreachable at unix:") {
		t.Errorf("ports: %+v", c)
	}
	if c := find(t, r, "chassis"); c.Status != Warn || !strings.Contains(c.Detail, "no chassis registered in SB") {
		t.Errorf("chassis (read from SB): %+v", c)
	}
	release, err := health.HoldLock(ctx, sb.Endpoint, health.NorthdLock)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r, _ = Cluster(ctx, Options{NB: "unix:" + t.TempDir() + "/none.sock", SB: sb.Endpoint})
	if c := find(t, r, "northd"); c.Status != Warn || !strings.Contains(c.Detail, "holds its SB lock; whether it is caught up is not checked: NB unreachable at unix:") {
		t.Errorf("northd (lock held, NB down): %+v", c)
	}
	// The SB down: nothing about chassis is claimed.
	r, st := Cluster(ctx, Options{NB: "unix:" + t.TempDir() + "/none.sock", SB: "unix:" + t.TempDir() + "/none.sock"})
	if c := find(t, r, "chassis"); c.Status != Fail || !strings.Contains(c.Detail, "not checked: SB unreachable at unix:") || st.SBUnreachable == "" {
		t.Errorf("chassis with the SB down: %+v (state %+v)", c, st)
	}
	r, _ = Cluster(ctx, Options{NB: "bogus", SB: sb.Endpoint})
	if c := find(t, r, "nb"); c.Status != Fail || !strings.Contains(c.Detail, "NB endpoint") {
		t.Errorf("bad endpoint: %+v", c)
	}
}

func TestReport(t *testing.T) {
	var r Report
	r.Add()
	if r.Status != OK {
		t.Errorf("empty report: %s", r.Status)
	}
	r.Add(Okf("a", "x", "fine"), Warnf("a", "y", "do y", "meh"))
	if r.Status != Warn || len(r.Failed(Warn)) != 1 || len(r.Failed(Fail)) != 0 {
		t.Errorf("after warn: %+v", r)
	}
	r.Add(Failf("b", "z", "do z", "bad %d", 1), Okf("b", "w", "fine"))
	if r.Status != Fail || len(r.Failed(Warn)) != 2 || r.Find("z").Detail != "bad 1" {
		t.Errorf("after fail: %+v", r)
	}
}
