package encrypt_test

import (
	"context"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// TestUnencrypted on real NB and SB ovsdb-servers: off, nothing is
// reported; on (NB_Global ipsec), a chassis with the userspace datapath is
// reported, a kernel-datapath one and another site's remote chassis are not.
func TestUnencrypted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, ovsdbtest.StartNB(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	sb, err := dbconn.ConnectSB(ctx, ovsdbtest.StartSB(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	tx := dbops.NewTx(nb)
	tx.Create(&nbdb.NBGlobal{})
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	tx = dbops.NewTx(sb)
	for i, c := range []struct{ name, dp, remote string }{{"n1", "netdev", ""}, {"n2", "system", ""}, {"other-n1", "", "true"}} {
		enc := &sbdb.Encap{UUID: "enc" + c.name[:1] + string(rune('a'+i)), Type: "geneve", IP: "198.18.0.1" + string(rune('1'+i)), ChassisName: c.name, Options: map[string]string{"csum": "true"}}
		tx.Create(enc)
		oc := map[string]string{}
		if c.dp != "" {
			oc["datapath-type"] = c.dp
		}
		if c.remote != "" {
			oc["is-remote"] = c.remote
		}
		tx.Create(&sbdb.Chassis{Name: c.name, Hostname: c.name, Encaps: []string{enc.UUID}, OtherConfig: oc})
	}
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	if fs, err := encrypt.Unencrypted(ctx, nb, sb); err != nil || len(fs) != 0 {
		t.Fatalf("encryption off: %v, %v; want nothing", fs, err)
	}
	if err := encrypt.Set(ctx, nb, true); err != nil {
		t.Fatal(err)
	}
	if on, err := encrypt.Enabled(ctx, nb); err != nil || !on {
		t.Fatalf("Enabled after Set(true) = %v, %v", on, err)
	}
	fs, err := encrypt.Unencrypted(ctx, nb, sb)
	if err != nil || len(fs) != 1 || fs[0].Chassis != "n1" {
		t.Fatalf("encryption on: %+v, %v; want n1 (userspace datapath) only", fs, err)
	}
	if err := encrypt.Set(ctx, nb, false); err != nil {
		t.Fatal(err)
	}
	if fs, err := encrypt.Unencrypted(ctx, nb, sb); err != nil || len(fs) != 0 {
		t.Fatalf("encryption off again: %v, %v", fs, err)
	}
}
