package node

import (
	"context"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// TestJoinLeaveSSL: join with a node certificate points the Open_vSwitch
// SSL row at it; leave takes the row away, so nothing on the node presents
// the certificate after it left. A row that is not join's stays.
func TestJoinLeaveSSL(t *testing.T) {
	e := setup(t)
	dir := t.TempDir()
	if err := pki.Init(dir, 0, false); err != nil {
		t.Fatal(err)
	}
	f, _, err := pki.IssueTo(dir, t.TempDir(), pki.Request{Name: "n1", Role: pki.RoleNode})
	if err != nil {
		t.Fatal(err)
	}
	files := dbconn.TLSFiles{CA: pki.CAFile(dir, pki.ControlCA), Cert: f.Cert, Key: f.Key}
	ssl := func() (*vswitchd.OpenvSwitch, []vswitchd.SSL) {
		t.Helper()
		ctx := context.Background()
		c, err := vsdb.Connect(ctx, e.ovs.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		root, err := vsdb.Root(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		var rows []vswitchd.SSL
		if err := dbconn.Select(ctx, c, &vswitchd.SSL{}, &rows); err != nil {
			t.Fatal(err)
		}
		return root, rows
	}
	o := e.opts()
	o.TLS = files
	if _, err := e.join(t, o); err != nil {
		t.Fatal(err)
	}
	root, rows := ssl()
	if root.SSL == nil || len(rows) != 1 || rows[0].Certificate != f.Cert || rows[0].PrivateKey != f.Key {
		t.Fatalf("after join with a certificate: root SSL %v, rows %+v", root.SSL, rows)
	}
	if err := Leave(context.Background(), LeaveOptions{OVS: e.ovs.Endpoint}); err != nil {
		t.Fatal(err)
	}
	if root, rows = ssl(); root.SSL != nil || len(rows) != 0 {
		t.Errorf("after leave: root SSL %v, rows %+v; want none (the node's certificate no longer configured)", root.SSL, rows)
	}
	// An SSL row the operator set (not join's) survives leave.
	e.ovs.Run(t, "ovs-vsctl", "--no-wait", "set-ssl", f.Key, f.Cert, files.CA)
	if _, err := e.join(t, e.opts()); err != nil {
		t.Fatal(err)
	}
	if err := Leave(context.Background(), LeaveOptions{OVS: e.ovs.Endpoint}); err != nil {
		t.Fatal(err)
	}
	if root, rows = ssl(); root.SSL == nil || len(rows) != 1 {
		t.Errorf("leave removed an SSL row join did not set: root SSL %v, rows %+v", root.SSL, rows)
	}
}
