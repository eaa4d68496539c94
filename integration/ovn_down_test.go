package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
)

// ownLab brings up a lab of n nodes for a test that stops central daemons
// (the shared lab must stay whole) and takes it down at the end.
func ownLab(t *testing.T, prefix string, n int) *lab.Lab {
	t.Helper()
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: n, Name: uniqueName(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// centralPID is the PID of a central daemon (ovsdb-server-nb, ovn-northd, ...).
func centralPID(t *testing.T, l *lab.Lab, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.CentralDir, name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestAddFailsFastWithoutNorthd: with ovn-northd killed, ADD fails with code
// 11 naming northd (the fail-fast error, not the ready timeout's), leaves
// nothing behind, and works again once northd is back; the same with the SB
// ovsdb-server killed.
func TestAddFailsFastWithoutNorthd(t *testing.T) {
	l := ownLab(t, "ff", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	cniNetwork(t, nb, "ffnet", "198.19.221.0/24")
	rt := newRuntime(t, l.Nodes[0])
	list := confList(t, "ffnet", "1.0.0", map[string]interface{}{"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	newContainer(t, rt, list).mustAdd(t, ctx)

	if err := l.Kill(ctx, lab.Central, "northd"); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"", "198.19.221.77"} { // IPAM, and a requested address (waits for ovn-installed)
		c := newContainer(t, rt, list)
		if req != "" {
			// Named by an alias: the undo removes the names ADD gave.
			c.conf.CapabilityArgs = map[string]interface{}{"ips": []string{req + "/24"}, "aliases": []string{"ff-alias"}}
		}
		start := time.Now()
		err := c.add(ctx)
		took := time.Since(start)
		if err == nil {
			_ = c.del(ctx)
			t.Fatalf("ADD (requested %q) with ovn-northd dead succeeded", req)
		}
		t.Logf("ADD (requested %q) with northd dead failed after %s: %v", req, took.Round(time.Millisecond), err)
		if cniCode(err) != 11 || !strings.Contains(err.Error(), `ovn-northd is not running: nobody holds its lock "ovn_northd"`) {
			t.Errorf("ADD with northd dead: code %d %q; want 11 naming ovn-northd's lock", cniCode(err), err)
		}
		if strings.Contains(err.Error(), "within 30s") {
			t.Errorf("ADD waited for the ready timeout: %v", err)
		}
		assertGone(t, nb, l.Nodes[0], c.id, c.ifName)
		if req != "" {
			assertNoRecords(t, nb, "ffnet", c.id, net.ParseIP(req))
		}
	}
	// `ovlmgr port attach` is the same ADD.
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Close(); _ = testutils.UnmountNS(netns) })
	id := "ffhand" + strconv.Itoa(os.Getpid())
	out, err := l.Nodes[0].Command(ctx, filepath.Join(cniPluginDir(t), "ovlmgr"), "port", "attach", "ffnet",
		"--netns", netns.Path(), "--name", id).CombinedOutput()
	t.Logf("port attach with northd dead: %v: %s", err, out)
	if err == nil || !strings.Contains(string(out), `ovn-northd is not running: nobody holds its lock "ovn_northd"`) {
		t.Errorf("port attach with northd dead: %v: %s; want a failure naming ovn-northd's lock", err, out)
	}
	assertGone(t, nb, l.Nodes[0], id, "eth0")

	if err := l.Restart(ctx, lab.Central, "northd", lab.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	newContainer(t, rt, list).mustAdd(t, ctx)

	// The SB down (northd up): code 11 naming the SB.
	if err := l.Kill(ctx, lab.Central, "sb"); err != nil {
		t.Fatal(err)
	}
	c := newContainer(t, rt, list)
	start := time.Now()
	err = c.add(ctx)
	t.Logf("ADD with the SB dead failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		_ = c.del(ctx)
		t.Fatal("ADD with the SB dead succeeded")
	}
	if cniCode(err) != 11 || !strings.Contains(err.Error(), "OVN Southbound unreachable at "+l.SBTCP) {
		t.Errorf("ADD with the SB dead: code %d %q; want 11 naming the SB at %s", cniCode(err), err, l.SBTCP)
	}
	assertGone(t, nb, l.Nodes[0], c.id, c.ifName)
	if err := l.Restart(ctx, lab.Central, "sb", lab.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	newContainer(t, rt, list).mustAdd(t, ctx)
}

// TestAttachUndoNamesLeftoverNBPort: an ADD fails (northd dead) while the NB
// ovsdb-server is stopped, so its undo cannot delete the NB port: the error
// says so, naming the port and the fix; once the NB runs again the port is
// there under that name and CNI DEL removes it.
func TestAttachUndoNamesLeftoverNBPort(t *testing.T) {
	l := ownLab(t, "lo", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	cniNetwork(t, nb, "lonet", "198.19.222.0/24")
	rt := newRuntime(t, l.Nodes[0])
	if err := l.Kill(ctx, lab.Central, "northd"); err != nil {
		t.Fatal(err)
	}
	c := newContainer(t, rt, confList(t, "lonet", "1.0.0", nil))
	lsp := ovnport.Name(c.rt.node.SystemID, c.id, c.ifName)
	done := make(chan error, 1)
	go func() { done <- c.add(ctx) }()
	// Stop the NB once the port is in it (before the plugin gives up).
	nbPID := centralPID(t, l, "ovsdb-server-nb")
	waitFor(t, "the NB port of the ADD", func() bool {
		_, err := ovnport.Get(ctx, nb, lsp)
		return err == nil
	})
	if err := syscall.Kill(nbPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(nbPID, syscall.SIGCONT)
		}
	}
	defer resume()
	err := <-done
	resume()
	if err == nil {
		t.Fatal("ADD with northd dead succeeded")
	}
	t.Logf("ADD error: %v", err)
	want := "and the NB port " + lsp + " could not be removed: "
	if cniCode(err) != 11 || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "`ovlmgr port detach` or CNI GC removes it") {
		t.Fatalf("ADD error: code %d %q; want 11 with %q and the fix", cniCode(err), err, want)
	}
	if _, gerr := ovnport.Get(ctx, nb, lsp); gerr != nil {
		t.Fatalf("the error names leftover NB port %s, but it is not there: %v", lsp, gerr)
	}
	if err := c.del(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, nb, l.Nodes[0], c.id, c.ifName)
}

// TestDiagnoseTellsTheTruth: with only the NB ovsdb-server down, diagnose and
// lab status still list the chassis and tunnels from the SB and the nodes,
// and name the NB as unreachable; with ovn-northd killed, diagnose without
// --sync names northd dead.
func TestDiagnoseTellsTheTruth(t *testing.T) {
	l := ownLab(t, "dt", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func() (*diagnose.Report, string) {
		r, st := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
		for _, n := range l.Nodes {
			r.Add(nodediag.Check(ctx, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath, NB: l.NB}, st)...)
		}
		return r, reportText(r)
	}

	// ovn-northd dead, databases up: diagnose without --sync notices.
	if err := l.Kill(ctx, lab.Central, "northd"); err != nil {
		t.Fatal(err)
	}
	r, _ := run()
	wantFault(t, r, "northd", `ovn-northd is not running: nobody holds its lock "ovn_northd"`)
	if err := l.Restart(ctx, lab.Central, "northd", lab.RestartOptions{}); err != nil {
		t.Fatal(err)
	}

	// Only the NB down.
	if err := l.Kill(ctx, lab.Central, "nb"); err != nil {
		t.Fatal(err)
	}
	r, text := run()
	wantFault(t, r, "nb", "NB unreachable at "+l.NB)
	for _, lie := range []string{"this node is not registered", "no other chassis", "no chassis registered"} {
		if strings.Contains(text, lie) {
			t.Errorf("with only the NB down, diagnose claims %q:\n%s", lie, text)
		}
	}
	for _, ok := range []string{"registered in SB as " + l.Nodes[0].SystemID, "registered in SB as " + l.Nodes[1].SystemID,
		"tunnel " + l.Nodes[0].Name + "->" + l.Nodes[1].SystemID, "tunnel " + l.Nodes[1].Name + "->" + l.Nodes[0].SystemID} {
		if !strings.Contains(text, ok) {
			t.Errorf("with only the NB down, diagnose should still report %q from SB and the nodes:\n%s", ok, text)
		}
	}
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chassis) != 2 || len(st.Tunnels) != 2 {
		t.Errorf("lab status with only the NB down: %d chassis, %d tunnels; want 2 and 2 (read from SB and the nodes)", len(st.Chassis), len(st.Tunnels))
	}
	if !strings.Contains(strings.Join(st.Problems, "\n"), "ovsdb-server-nb") {
		t.Errorf("lab status problems %q do not name the dead NB ovsdb-server", st.Problems)
	}
	t.Logf("diagnose with the NB down:\n%s", text)
}
