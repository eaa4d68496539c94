package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

func setup(t *testing.T) (*ovsdbtest.Server, client.Client) {
	srv := ovsdbtest.StartNB(t)
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

// addNetwork creates network name the way ovlmgr's commands do
// (network.Create), so attaching goes through the production path.
func addNetwork(t *testing.T, c client.Client, name, subnet string) {
	t.Helper()
	if _, err := network.Create(context.Background(), c, network.Spec{Name: name, Subnet: subnet}); err != nil {
		t.Fatal(err)
	}
}

// switchNamed reads the one Logical_Switch called name.
func switchNamed(t *testing.T, c client.Client, name string) *nbdb.LogicalSwitch {
	t.Helper()
	lss, err := dbops.SelectRows[nbdb.LogicalSwitch](context.Background(), c, []ovsdb.Condition{dbops.NameIs(name)})
	if err != nil || len(lss) != 1 {
		t.Fatalf("switch %s: %d rows, %v", name, len(lss), err)
	}
	return lss[0]
}

// rows counts the rows of model T's table matching where.
func rows[T any, PT interface {
	*T
	model.Model
}](t *testing.T, c client.Client, where ...ovsdb.Condition) int {
	t.Helper()
	n, err := dbops.Count[T, PT](context.Background(), c, where)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRouterLifecycle(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	for _, bad := range []string{"", "-r", "a b", strings.Repeat("r", 64)} {
		if _, err := router.Create(ctx, c, bad, nil); err == nil || !strings.Contains(err.Error(), "router name") {
			t.Errorf("Create(%q) error = %v", bad, err)
		}
	}
	if _, err := router.Create(ctx, c, "r1", map[string]string{"tenant": "blue"}); err != nil {
		t.Fatal(err)
	}
	if _, err := router.Create(ctx, c, "r1", nil); !errors.Is(err, router.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := router.Create(ctx, c, "r2", nil); err != nil {
		t.Fatal(err)
	}
	// Outside routers subnets must not overlap: each network joins its
	// router before the next one that overlaps it is created.
	addNetwork(t, c, "web", "198.18.1.0/24")
	addNetwork(t, c, "db", "198.18.2.0/24")
	for _, n := range []string{"web", "db"} {
		if err := network.Attach(ctx, c, n, "r1"); err != nil {
			t.Fatal(err)
		}
	}
	addNetwork(t, c, "web2", "198.18.1.0/24") // same subnet as web: fine on another router
	if err := network.Attach(ctx, c, "web2", "r2"); err != nil {
		t.Errorf("same subnet on another router: %v", err)
	}
	addNetwork(t, c, "part", "198.18.1.128/25") // overlaps web
	if err := network.Attach(ctx, c, "part", "r1"); err == nil || !strings.Contains(err.Error(), `overlaps network "web"`) {
		t.Errorf("overlapping attach error = %v", err)
	}
	if err := network.Attach(ctx, c, "web", "r2"); err == nil || !strings.Contains(err.Error(), `attached to router "r1"`) {
		t.Errorf("attach to a second router: %v", err)
	}
	if err := network.Attach(ctx, c, "part", "nosuch"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("attach to unknown router: %v", err)
	}

	r, err := router.Get(ctx, c, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Networks) != 2 || r.Networks[0].Network != "db" || r.Networks[1].Gateway != "198.18.1.1/24" ||
		r.Networks[1].RouterPort != "r1-web" || r.Networks[1].SwitchPort != "web-r1" || r.Networks[1].MAC != "0a:58:c6:12:01:01" || r.Labels["tenant"] != "blue" {
		t.Errorf("router r1 = %+v", r)
	}
	// The rows OVN needs.
	lsps, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, c, []ovsdb.Condition{dbops.NameIs("web-r1")})
	if err != nil || len(lsps) != 1 || lsps[0].Type != "router" || lsps[0].Options["router-port"] != "r1-web" {
		t.Errorf("switch port web-r1: %+v, %v", lsps, err)
	}
	if web := switchNamed(t, c, "web"); web.ExternalIDs["ovlmgr.io/router"] != "r1" {
		t.Errorf("web's router key = %q", web.ExternalIDs["ovlmgr.io/router"])
	}
	rs, err := router.List(ctx, c)
	if err != nil || len(rs) != 2 || len(rs[0].Networks) != 2 || len(rs[1].Networks) != 1 {
		t.Fatalf("List = %+v, %v", rs, err)
	}

	// Delete refuses while attached, naming the networks.
	if err := network.DeleteRouter(ctx, c, "r1", false); !errors.Is(err, router.ErrAttached) || !strings.Contains(err.Error(), "db, web") {
		t.Errorf("delete attached router: %v", err)
	}
	if err := network.Detach(ctx, c, "db", "r1"); err != nil {
		t.Fatal(err)
	}
	if n := rows[nbdb.LogicalRouterPort](t, c, dbops.NameIs("r1-db")) + rows[nbdb.LogicalSwitchPort](t, c, dbops.NameIs("db-r1")); n != 0 {
		t.Errorf("ports left after detach: %d", n)
	}
	if err := network.Detach(ctx, c, "db", "r1"); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Errorf("second detach: %v", err)
	}
	// Deleting an attached network leaves no router port behind.
	if err := network.Delete(ctx, c, "web2", true); err != nil {
		t.Fatal(err)
	}
	if n := rows[nbdb.LogicalRouterPort](t, c, dbops.NameIs("r2-web2")); n != 0 {
		t.Errorf("router port left after network delete: %d", n)
	}
	// part overlaps web outside routers, where the forced delete moves web.
	if err := network.Delete(ctx, c, "part", false); err != nil {
		t.Fatal(err)
	}
	if err := network.DeleteRouter(ctx, c, "r1", true); err != nil {
		t.Fatal(err)
	}
	if n := rows[nbdb.LogicalRouterPort](t, c) + rows[nbdb.LogicalSwitchPort](t, c, dbops.Owned(router.KindRouterPort, nil)) + rows[nbdb.LogicalRouter](t, c, dbops.NameIs("r1")); n != 0 {
		t.Errorf("rows left after forced delete: %d", n)
	}
	if web := switchNamed(t, c, "web"); web.ExternalIDs["ovlmgr.io/router"] != "" {
		t.Errorf("web still names a router: %v", web.ExternalIDs)
	}
	if _, err := router.Get(ctx, c, "r1"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Get deleted router: %v", err)
	}
}

func TestForeignRouterUntouched(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	srv.Run(t, "ovn-nbctl", "lr-add", "theirs")
	if _, err := router.Get(ctx, c, "theirs"); !errors.Is(err, router.ErrNotOwned) {
		t.Errorf("Get foreign: %v", err)
	}
	if err := network.DeleteRouter(ctx, c, "theirs", true); !errors.Is(err, router.ErrNotOwned) {
		t.Errorf("Delete foreign: %v", err)
	}
	if _, err := router.Create(ctx, c, "theirs", nil); !errors.Is(err, router.ErrExists) {
		t.Errorf("Create over foreign: %v", err)
	}
	addNetwork(t, c, "web", "198.18.1.0/24")
	if err := network.Attach(ctx, c, "web", "theirs"); !errors.Is(err, router.ErrNotOwned) {
		t.Errorf("Attach to foreign: %v", err)
	}
	if rows[nbdb.LogicalRouter](t, c, dbops.NameIs("theirs")) != 1 || rows[nbdb.LogicalRouterPort](t, c) != 0 {
		t.Error("foreign router modified")
	}
}

// OVN names switch and router ports in one namespace (Port_Binding): an
// attachment whose port names are taken, or equal, is refused with
// ErrPortNameClash and writes nothing (before, ovn-northd dropped the
// duplicate and the network had no way out).
func TestAttachPortNameClash(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	for _, r := range []string{"web", "a-b", "a"} {
		if _, err := router.Create(ctx, c, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	addNetwork(t, c, "web", "198.18.1.0/24")
	err := network.Attach(ctx, c, "web", "web")
	if !errors.Is(err, router.ErrPortNameClash) || !strings.Contains(err.Error(), `"web-web"`) {
		t.Errorf("router and network of one name: %v; want ErrPortNameClash naming web-web", err)
	}
	// Router a-b with network c gives router port a-b-c; router a with
	// network b-c would give it too.
	addNetwork(t, c, "c", "198.18.2.0/24")
	if err := network.Attach(ctx, c, "c", "a-b"); err != nil {
		t.Fatal(err)
	}
	addNetwork(t, c, "b-c", "198.18.3.0/24")
	err = network.Attach(ctx, c, "b-c", "a")
	if !errors.Is(err, router.ErrPortNameClash) || !strings.Contains(err.Error(), `"a-b-c"`) {
		t.Errorf("router a, network b-c after router a-b, network c: %v; want ErrPortNameClash naming a-b-c", err)
	}
	for _, n := range []string{"web", "b-c"} {
		if r := switchNamed(t, c, n).ExternalIDs["ovlmgr.io/router"]; r != "" {
			t.Errorf("network %s refused but on router %q", n, r)
		}
	}
	if n := rows[nbdb.LogicalRouterPort](t, c); n != 1 {
		t.Errorf("%d router ports; want only a-b-c", n)
	}
	if n := rows[nbdb.LogicalSwitchPort](t, c, ovsdb.Condition{Column: "type", Function: ovsdb.ConditionEqual, Value: "router"}); n != 1 {
		t.Errorf("%d router-type switch ports; want only c-a-b", n)
	}
	// Attaching again to the same router is not a clash with itself.
	if err := network.Attach(ctx, c, "c", "a-b"); errors.Is(err, router.ErrPortNameClash) {
		t.Errorf("re-attach to its own router: %v", err)
	}
}
