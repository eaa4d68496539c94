package ovsdbtest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// Cluster is a 3-member clustered NB database for tests.
type Cluster struct {
	// Endpoints are the members' client sockets ("unix:PATH"), in order.
	Endpoints []string
	// Ctls are the members' unixctl sockets, for ovs-appctl -t.
	Ctls []string
	// Cmds are the members' processes (stopped by PID at test end).
	Cmds []*exec.Cmd
	// Logs are the members' log files.
	Logs []string
}

// StartNBCluster starts a 3-member clustered NB database (member 1 created
// the cluster, 2 and 3 joined it) in a temporary directory.
func StartNBCluster(t *testing.T) *Cluster {
	t.Helper()
	prereq.Bins(t, "ovsdb-server", "ovsdb-tool")
	dir := t.TempDir()
	p := func(f string) string { return filepath.Join(dir, f) }
	tool := func(args ...string) {
		t.Helper()
		if out, err := Cmd(t, "ovsdb-tool", args...).CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-tool %v: %v: %s", args, err, out)
		}
	}
	tool("create-cluster", p("nb1.db"), NBSchema, "unix:"+p("raft1.sock"))
	tool("join-cluster", p("nb2.db"), "OVN_Northbound", "unix:"+p("raft2.sock"), "unix:"+p("raft1.sock"))
	tool("join-cluster", p("nb3.db"), "OVN_Northbound", "unix:"+p("raft3.sock"), "unix:"+p("raft1.sock"))
	c := &Cluster{}
	for _, i := range []string{"1", "2", "3"} {
		cmd := Cmd(t, "ovsdb-server", p("nb"+i+".db"), "--remote=punix:"+p("nb"+i+".sock"),
			"--unixctl="+p("ctl"+i), "--log-file="+p("log"+i), "--no-chdir", "-vconsole:off")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		c.Endpoints = append(c.Endpoints, "unix:"+p("nb"+i+".sock"))
		c.Ctls = append(c.Ctls, p("ctl"+i))
		c.Cmds = append(c.Cmds, cmd)
		c.Logs = append(c.Logs, p("log"+i))
	}
	return c
}
