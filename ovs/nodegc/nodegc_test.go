package nodegc_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// TestSweepSparesReplugged: an orphan (an OVS port whose NB port is gone)
// that an ADD of the same container interface plugs again between the
// sweep's read and its removal is not removed: a CNI server's sweep runs
// beside its ADDs, and removing by name took the new ADD's port.
func TestSweepSparesReplugged(t *testing.T) {
	nbSrv := ovsdbtest.StartNB(t)
	vs := ovsdbtest.StartVswitch(t)
	vs.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, nbSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	ovs, err := vsdb.Connect(ctx, vs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	spec := ovsport.PlugSpec{Name: "ovlorphan", IfaceID: "ovl-deleted", IfaceIDVer: "c1", Container: "c1", IfName: "eth0", Network: "web"}
	if _, err := ovsport.Plug(ctx, ovs, spec); err != nil {
		t.Fatal(err)
	}
	orphans, err := nodegc.Orphans(ctx, ovs, nb)
	if err != nil || len(orphans) != 1 || orphans[0].Name != "ovlorphan" {
		t.Fatalf("Orphans = %+v, %v; want ovlorphan", orphans, err)
	}
	// The container's new ADD plugs its port under the same name.
	spec.IfaceID = "ovl-new"
	cur, err := ovsport.Plug(ctx, ovs, spec)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := nodegc.RemoveOrphans(ctx, ovs, orphans, false)
	if err != nil || len(removed) != 0 {
		t.Fatalf("RemoveOrphans after the re-plug = %+v, %v; want nothing removed", removed, err)
	}
	if i, err := ovsport.Get(ctx, ovs, "ovlorphan"); err != nil || i == nil || i.UUID != cur {
		t.Fatalf("the new ADD's port: %+v, %v; want interface %s kept", i, err, cur)
	}
	// Still an orphan (ovl-new has no NB port either): the next sweep takes it.
	removed, err = nodegc.Sweep(ctx, ovs, nb, false)
	if err != nil || len(removed) != 1 || removed[0].Port != "ovl-new" {
		t.Fatalf("Sweep = %+v, %v; want ovlorphan (ovl-new) removed", removed, err)
	}
	if i, err := ovsport.Get(ctx, ovs, "ovlorphan"); err != nil || i != nil {
		t.Fatalf("after Sweep: %+v, %v; want no interface", i, err)
	}
}
