package chassis

import (
	"context"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

func TestList(t *testing.T) {
	sb := ovsdbtest.StartSB(t)
	sb.Run(t, "ovn-sbctl", "chassis-add", "n2", "geneve", "198.18.0.12")
	sb.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")

	ctx := context.Background()
	c, err := dbconn.ConnectSB(ctx, sb.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	found, err := dbops.SelectRows[sbdb.Chassis](ctx, c, []ovsdb.Condition{dbops.NameIs("n1")})
	if err != nil || len(found) != 1 {
		t.Fatalf("chassis n1: %v, %v", found, err)
	}
	ch1 := found[0]
	ch1.Hostname = "host1"
	tx := dbops.NewTx(c)
	tx.AddAPI(c.Where(ch1).Update(ch1, &ch1.Hostname))
	// n1 has a live ovn-controller (Chassis_Private caught up), n2 does not.
	tx.AddAPI(c.Create(&sbdb.ChassisPrivate{Name: "n1", Chassis: &ch1.UUID}))
	tx.AddAPI(c.Create(&sbdb.DatapathBinding{UUID: "dp", TunnelKey: 1}))
	for i, p := range []string{"p1", "p2"} {
		tx.AddAPI(c.Create(&sbdb.PortBinding{LogicalPort: p, Datapath: "dp", TunnelKey: i + 1, Chassis: &ch1.UUID}))
	}
	tx.AddAPI(c.Create(&sbdb.PortBinding{LogicalPort: "p3", Datapath: "dp", TunnelKey: 3}))
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}

	chs, err := List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 {
		t.Fatalf("got %d chassis, want 2: %+v", len(chs), chs)
	}
	n1, n2 := chs[0], chs[1]
	if n1.Name != "n1" || n1.Hostname != "host1" || !n1.Connected || n1.Ports != 2 ||
		len(n1.Encaps) != 1 || n1.Encaps[0] != (Encap{Type: "geneve", IP: "198.18.0.11"}) {
		t.Errorf("n1 = %+v", n1)
	}
	if n2.Name != "n2" || n2.Connected || n2.Ports != 0 || len(n2.Encaps) != 1 || n2.Encaps[0].IP != "198.18.0.12" {
		t.Errorf("n2 = %+v", n2)
	}

	// Once the configuration moves on and n1 does not follow, it shows as
	// disconnected.
	globals, err := dbops.SelectRows[sbdb.SBGlobal](ctx, c, nil)
	if err != nil || len(globals) != 1 {
		t.Fatalf("SB_Global: %v, %v", globals, err)
	}
	g := globals[0]
	g.NbCfg = 5
	if err := dbops.NewTx(c).AddAPI(c.Where(g).Update(g, &g.NbCfg)).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	chs, err = List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if chs[0].Connected {
		t.Errorf("n1 connected with a stale nb_cfg: %+v", chs[0])
	}
}
