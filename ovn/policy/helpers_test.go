package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// nb starts a Northbound ovsdb-server and connects to it.
func nb(t testing.TB) (*ovsdbtest.Server, client.Client) {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

// addNetwork writes a Logical_Switch the way ovlmgr's network package does
// (owner keys, subnet) together with its port group, like net create.
func addNetwork(t testing.TB, c client.Client, name, subnet, mode string) {
	t.Helper()
	ls := &nbdb.LogicalSwitch{UUID: "newls", Name: name, ExternalIDs: owner.IDs(owner.KindNetwork, name, nil),
		OtherConfig: map[string]string{"subnet": subnet}}
	ops, err := c.Create(ls)
	if err != nil {
		t.Fatal(err)
	}
	if mode == policy.DefaultDeny {
		if err := policy.EnsureLogMeter(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	more, err := policy.CreateNetworkOps(c, name, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(context.Background(), c, append(ops, more...)...); err != nil {
		t.Fatalf("add network %s: %v", name, err)
	}
}

// addPort adds a container port (MAC IP, port security) to network and its
// port group in one transaction, like the CNI plugin. It returns the UUID.
func addPort(t testing.TB, c client.Client, network, name, mac, ip string) string {
	t.Helper()
	lsp := &nbdb.LogicalSwitchPort{UUID: "newlsp", Name: name, Addresses: []string{mac + " " + ip}, PortSecurity: []string{mac + " " + ip},
		ExternalIDs: owner.IDs(owner.KindPort, name, map[string]string{owner.KeyNetwork: network})}
	tx := dbops.NewTx(c)
	ins := tx.Create(lsp)
	tx.Add(dbops.AddRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(network)}, "ports", lsp.UUID))
	tx.Add(policy.JoinOps(network, lsp.UUID)...)
	if err := tx.Transact(context.Background()); err != nil {
		t.Fatalf("add port %s: %v", name, err)
	}
	return ins.UUID()
}

// count returns the number of rows of model type T's table matching where.
func count[T any, PT interface {
	*T
	model.Model
}](t testing.TB, c client.Client, where ...ovsdb.Condition) int {
	t.Helper()
	n, err := dbops.Count[T, PT](context.Background(), c, where)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rowCounts counts rows of the tables policies write.
func rowCounts(t testing.TB, c client.Client) string {
	return fmt.Sprintf("ACL=%d Address_Set=%d Port_Group=%d Logical_Switch=%d", count[nbdb.ACL](t, c), count[nbdb.AddressSet](t, c),
		count[nbdb.PortGroup](t, c), count[nbdb.LogicalSwitch](t, c))
}

// northd runs ovn-northd between nb and a fresh SB server; stopped by PID.
type northd struct {
	sb  *ovsdbtest.Server
	nb  *ovsdbtest.Server
	log string
}

func startNorthd(t testing.TB, nbSrv *ovsdbtest.Server) *northd {
	t.Helper()
	prereq.Bins(t, "ovn-northd")
	sb := ovsdbtest.StartSB(t)
	nbSrv.Run(t, "ovn-nbctl", "--no-wait", "init")
	dir := t.TempDir()
	n := &northd{sb: sb, nb: nbSrv, log: filepath.Join(dir, "northd.log")}
	cmd := ovsdbtest.Cmd(t, "ovn-northd", "--ovnnb-db="+nbSrv.Endpoint, "--ovnsb-db="+sb.Endpoint,
		"--log-file="+n.log, "--unixctl="+filepath.Join(dir, "northd.ctl"), "--pidfile="+filepath.Join(dir, "northd.pid"), "-vconsole:off")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ovn-northd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return n
}

// sync waits until northd has processed every NB change so far.
func (n *northd) sync(t testing.TB) {
	t.Helper()
	n.nb.Run(t, "ovn-nbctl", "--timeout=20", "--wait=sb", "sync")
}

// trace runs ovn-trace on datapath with microflow and returns its output;
// it fails the test when ovn-trace reports a logical flow it cannot parse.
func (n *northd) trace(t testing.TB, ct, datapath, microflow string) string {
	t.Helper()
	cmd := ovsdbtest.Cmd(t, "ovn-trace", "--db="+n.sb.Endpoint, "--minimal", "--ct="+ct, datapath, microflow)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ovn-trace %s %q: %v\n%s", datapath, microflow, err, out)
	}
	s := string(out)
	for _, bad := range []string{"parsing", "error", "Syntax"} {
		if strings.Contains(s, bad) {
			t.Fatalf("ovn-trace reports a flow problem (%q):\n%s", bad, s)
		}
	}
	return s
}
