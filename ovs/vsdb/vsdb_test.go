package vsdb

import (
	"context"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

func TestInitAndBridge(t *testing.T) {
	srv := ovsdbtest.Start(t, ovsdbtest.VswitchSchema) // no root row yet
	ctx := context.Background()
	c, err := Connect(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Root(ctx, c); err != ErrNoRoot {
		t.Fatalf("Root on an empty db: %v, want ErrNoRoot", err)
	}
	root, err := Init(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Init(ctx, c)
	if err != nil || again.UUID != root.UUID {
		t.Fatalf("second Init: %v, %v; want the same row %s", again, err, root.UUID)
	}

	spec := BridgeSpec{Name: "br-phy", Datapath: "netdev", MTU: 9000, Ports: []string{"ul0"},
		OtherConfig: map[string]string{"hwaddr": "02:00:c6:12:00:0b"}}
	ops, err := BridgeOps(c, root.UUID, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Fatal(err)
	}
	br, err := Bridge(ctx, c, "br-phy")
	if err != nil || br == nil || br.DatapathType != "netdev" || len(br.Ports) != 2 || br.OtherConfig["hwaddr"] != "02:00:c6:12:00:0b" {
		t.Fatalf("bridge = %+v, %v", br, err)
	}
	ifs, err := Interfaces(ctx, c, "internal")
	if err != nil || len(ifs) != 1 || ifs[0].Name != "br-phy" || ifs[0].MTURequest == nil || *ifs[0].MTURequest != 9000 {
		t.Fatalf("internal interfaces = %+v, %v", ifs, err)
	}
	if all, _ := Interfaces(ctx, c, ""); len(all) != 2 {
		t.Fatalf("all interfaces: %d, want 2", len(all))
	}
	// A second create of the same bridge fails on the guard, changing nothing.
	ops, _ = BridgeOps(c, root.UUID, spec)
	if _, err := dbconn.Transact(ctx, c, ops...); !dbconn.FailedWait(err, 0) {
		t.Fatalf("duplicate bridge: %v, want the wait guard to fail", err)
	}
	if missing, err := Bridge(ctx, c, "nope"); err != nil || missing != nil {
		t.Fatalf("Bridge(nope) = %v, %v", missing, err)
	}
}
