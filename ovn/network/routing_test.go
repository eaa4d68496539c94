package network_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// TestAttachMovesOverlapScope: subnets may repeat across routers and must
// not overlap on one router or outside routers; attach/detach move a
// network between scopes and keep its ports.
func TestAttachMovesOverlapScope(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	for _, r := range []string{"blue", "red"} {
		if _, err := router.Create(ctx, c, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name, sub string) {
		t.Helper()
		if _, err := network.Create(ctx, c, network.Spec{Name: name, Subnet: sub}); err != nil {
			t.Fatal(err)
		}
	}
	mk("web", "198.19.0.0/24")
	addPort(t, c, "web", "c1", portIDs("web"))
	if err := network.Attach(ctx, c, "web", "blue"); err != nil {
		t.Fatal(err)
	}
	n, err := network.Get(ctx, c, "web")
	if err != nil || n.Router != "blue" || n.Ports != 1 {
		t.Fatalf("web after attach = %+v, %v; want router blue and its port kept", n, err)
	}
	// On one router, overlap is refused.
	mk("part", "198.19.0.0/16")
	if err := network.Attach(ctx, c, "part", "blue"); err == nil || !strings.Contains(err.Error(), `overlaps network "web"`) {
		t.Errorf("overlapping attach: %v", err)
	}
	if err := network.Delete(ctx, c, "part", false); err != nil {
		t.Fatal(err)
	}
	// The same subnet outside routers and on another router is fine now.
	mk("web-red", "198.19.0.0/24")
	if err := network.Attach(ctx, c, "web-red", "red"); err != nil {
		t.Fatalf("same subnet on another router: %v", err)
	}
	mk("web-free", "198.19.0.0/24")
	// Detaching web would overlap web-free outside routers.
	if err := network.Detach(ctx, c, "web", "blue"); err == nil || !strings.Contains(err.Error(), "overlaps network") {
		t.Errorf("detach into an overlap: %v", err)
	}
	if err := network.Delete(ctx, c, "web-free", false); err != nil {
		t.Fatal(err)
	}
	if err := network.Detach(ctx, c, "web", "blue"); err != nil {
		t.Fatal(err)
	}
	if n, err := network.Get(ctx, c, "web"); err != nil || n.Router != "" || n.Ports != 1 {
		t.Fatalf("web after detach = %+v, %v", n, err)
	}
	if r, err := router.Get(ctx, c, "blue"); err != nil || len(r.Networks) != 0 {
		t.Fatalf("blue after detach = %+v, %v", r, err)
	}
	// Back outside routers, web blocks its subnet again.
	if _, err := network.Create(ctx, c, network.Spec{Name: "again", Subnet: "198.19.0.0/25"}); err == nil {
		t.Error("overlapping create outside routers accepted after detach")
	}
	// Forced router delete detaches (web-red goes back outside routers:
	// overlaps web, so the delete is refused as a whole).
	if err := network.DeleteRouter(ctx, c, "red", true); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("forced delete of red: %v", err)
	}
	if err := network.Delete(ctx, c, "web", true); err != nil {
		t.Fatal(err)
	}
	if err := network.DeleteRouter(ctx, c, "red", false); err == nil {
		t.Error("delete of a router with networks accepted without --force")
	}
	if err := network.DeleteRouter(ctx, c, "red", true); err != nil {
		t.Fatal(err)
	}
	if n, err := network.Get(ctx, c, "web-red"); err != nil || n.Router != "" {
		t.Fatalf("web-red after forced router delete = %+v, %v", n, err)
	}
}
