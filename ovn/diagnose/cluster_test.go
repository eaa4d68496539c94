package diagnose

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// raftNB starts a 3-member clustered NB database; it returns the members'
// client endpoints and their processes (stopped by PID at test end).
func raftNB(t *testing.T) ([]string, []*exec.Cmd) {
	t.Helper()
	prereq.Bins(t, "ovsdb-server", "ovsdb-tool")
	dir := t.TempDir()
	p := func(f string) string { return filepath.Join(dir, f) }
	tool := func(args ...string) {
		t.Helper()
		if out, err := ovsdbtest.Cmd(t, "ovsdb-tool", args...).CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-tool %v: %v: %s", args, err, out)
		}
	}
	tool("create-cluster", p("nb1.db"), ovsdbtest.NBSchema, "unix:"+p("raft1.sock"))
	tool("join-cluster", p("nb2.db"), "OVN_Northbound", "unix:"+p("raft2.sock"), "unix:"+p("raft1.sock"))
	tool("join-cluster", p("nb3.db"), "OVN_Northbound", "unix:"+p("raft3.sock"), "unix:"+p("raft1.sock"))
	var eps []string
	var cmds []*exec.Cmd
	for _, i := range []string{"1", "2", "3"} {
		cmd := ovsdbtest.Cmd(t, "ovsdb-server", p("nb"+i+".db"), "--remote=punix:"+p("nb"+i+".sock"),
			"--unixctl="+p("ctl"+i), "--log-file="+p("log"+i), "--no-chdir", "-vconsole:off")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		eps = append(eps, "unix:"+p("nb"+i+".sock"))
		cmds = append(cmds, cmd)
	}
	return eps, cmds
}

// TestClusterLeader: with a clustered NB, diagnose names the leader and
// each member's role, warns about a member that is down, and fails when
// the cluster has lost its quorum.
func TestClusterLeader(t *testing.T) {
	eps, cmds := raftNB(t)
	sb := ovsdbtest.StartSB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nbList := strings.Join(eps, ",")
	var c *Check
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, _ := Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
		c = r.Find("nb")
		if c.Status == OK && strings.Count(c.Detail, " leader") == 1 && strings.Count(c.Detail, " follower") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never healthy: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("healthy: %s", c.Detail)
	// Stop one follower: still a leader, the member is reported.
	stop := -1
	for i, ep := range eps {
		if strings.Contains(c.Detail, ep+" follower") {
			stop = i
			break
		}
	}
	_ = cmds[stop].Process.Kill()
	_ = cmds[stop].Wait()
	r, _ := Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
	c = r.Find("nb")
	if c.Status != Warn || !strings.Contains(c.Detail, eps[stop]+" unreachable") || !strings.Contains(c.Fix, eps[stop]) {
		t.Errorf("one member down: %+v", c)
	}
	// Stop another: no quorum.
	for i := range cmds {
		if i != stop {
			_ = cmds[i].Process.Kill()
			_ = cmds[i].Wait()
			break
		}
	}
	r, _ = Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
	if c = r.Find("nb"); c.Status != Fail || !strings.Contains(c.Detail, "NB has no reachable leader") || !strings.Contains(c.Fix, "quorum") {
		t.Errorf("no quorum: %+v", c)
	}
	t.Logf("no quorum: %s", c.Detail)
}
