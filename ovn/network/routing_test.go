package network_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
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

// TestCreateOnRouterAndDelete: net create --router --isolation writes the
// attachment and the port group in the create transaction; net delete
// removes the router port, the port group and its ACLs with the switch.
func TestCreateOnRouterAndDelete(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	for _, r := range []string{"blue", "red"} {
		if _, err := router.Create(ctx, c, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := network.Create(ctx, c, network.Spec{Name: "web", Subnet: "198.19.0.0/24", Router: "blue", Isolation: policy.DefaultDeny})
	if err != nil {
		t.Fatal(err)
	}
	if n.Router != "blue" || n.Isolation != policy.DefaultDeny {
		t.Errorf("created = %+v", n)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "web-red", Subnet: "198.19.0.0/24", Router: "red"}); err != nil {
		t.Errorf("same subnet on another router: %v", err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "web-free", Subnet: "198.19.0.0/24"}); err != nil {
		t.Errorf("same subnet outside routers: %v", err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "web2", Subnet: "198.19.0.128/25", Router: "blue"}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlap on one router: %v", err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "x", Subnet: "198.19.9.0/24", Router: "nosuch"}); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("unknown router: %v", err)
	}
	for _, bad := range []network.Spec{
		{Name: "x", Subnet: "198.19.9.0/24", Isolation: "deny-all"},
		{Name: "x", Subnet: "198.19.9.0/24", Router: "bad name"},
	} {
		if err := network.Validate(bad); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if r, err := router.Get(ctx, c, "blue"); err != nil || len(r.Networks) != 1 || r.Networks[0].Gateway != "198.19.0.1/24" {
		t.Fatalf("blue = %+v, %v", r, err)
	}
	if m, err := policy.Isolation(ctx, c, "web"); err != nil || m != policy.DefaultDeny {
		t.Errorf("isolation = %q, %v", m, err)
	}
	if err := network.Delete(ctx, c, "web", false); err != nil {
		t.Fatal(err)
	}
	if r, err := router.Get(ctx, c, "blue"); err != nil || len(r.Networks) != 0 {
		t.Errorf("blue after net delete = %+v, %v", r, err)
	}
	pgs, err := dbops.Count[nbdb.PortGroup](ctx, c, []ovsdb.Condition{dbops.NameIs("ovl_web")})
	if err != nil {
		t.Fatal(err)
	}
	acls, err := dbops.Count[nbdb.ACL](ctx, c, nil)
	if err != nil || pgs != 0 || acls != 0 {
		t.Errorf("port group (%d) or ACLs (%d) left after net delete (%v)", pgs, acls, err)
	}
	lrps, err := dbops.SelectRows(ctx, c, nil, func(p *nbdb.LogicalRouterPort) []any { return []any{&p.Name} })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lrps {
		if strings.Contains(p.Name, "blue-web") {
			t.Errorf("router port %s left after net delete", p.Name)
		}
	}
}

// TestConcurrentAttachOverlap: an attach and a create of overlapping
// networks on one router race from two clients: exactly one wins each round.
func TestConcurrentAttachOverlap(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c1, c2 := connect(t, srv), connect(t, srv)
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		r, x, y := fmt.Sprintf("r%d", round), fmt.Sprintf("x%d", round), fmt.Sprintf("y%d", round)
		if _, err := router.Create(ctx, c1, r, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := network.Create(ctx, c1, network.Spec{Name: x, Subnet: fmt.Sprintf("198.19.%d.0/25", round)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() { defer wg.Done(); errs[0] = network.Attach(ctx, c1, x, r) }()
		go func() {
			defer wg.Done()
			_, errs[1] = network.Create(ctx, c2, network.Spec{Name: y, Subnet: fmt.Sprintf("198.19.%d.0/24", round), Router: r})
		}()
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: attach = %v, create = %v; want exactly one to succeed", round, errs[0], errs[1])
		}
		got, err := router.Get(ctx, c1, r)
		if err != nil || len(got.Networks) != 1 {
			t.Fatalf("round %d: router %s = %+v, %v; want one network", round, r, got, err)
		}
	}
}
