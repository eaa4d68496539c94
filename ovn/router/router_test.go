package router_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/owner"
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

func addNetwork(t *testing.T, c client.Client, name, subnet string) router.Net {
	t.Helper()
	ls := &nbdb.LogicalSwitch{Name: name, ExternalIDs: owner.IDs(owner.KindNetwork, name, nil), OtherConfig: map[string]string{"subnet": subnet}}
	ops, err := c.Create(ls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(context.Background(), c, ops...); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(subnet)
	return router.Net{Name: name, Subnet: p, Gateway: p.Addr().Next()}
}

func rows(t *testing.T, c client.Client, table string, where ...ovsdb.Condition) int {
	t.Helper()
	res, err := dbconn.Transact(context.Background(), c, dbops.Select(table, where, "_uuid"))
	if err != nil {
		t.Fatal(err)
	}
	return len(res[0].Rows)
}

func TestRouterLifecycle(t *testing.T) {
	srv, c := setup(t)
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
	web := addNetwork(t, c, "web", "198.18.1.0/24")
	db := addNetwork(t, c, "db", "198.18.2.0/24")
	web2 := addNetwork(t, c, "web2", "198.18.1.0/24")   // same subnet as web: fine on another router
	part := addNetwork(t, c, "part", "198.18.1.128/25") // overlaps web
	for _, n := range []router.Net{web, db} {
		if err := router.Attach(ctx, c, "r1", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := router.Attach(ctx, c, "r1", part); err == nil || !strings.Contains(err.Error(), `overlaps network "web"`) {
		t.Errorf("overlapping attach error = %v", err)
	}
	if err := router.Attach(ctx, c, "r2", web2); err != nil {
		t.Errorf("same subnet on another router: %v", err)
	}
	if err := router.Attach(ctx, c, "r2", web); err == nil || !strings.Contains(err.Error(), `attached to router "r1"`) {
		t.Errorf("attach to a second router: %v", err)
	}
	if err := router.Attach(ctx, c, "nosuch", part); !errors.Is(err, router.ErrNotFound) {
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
	out := srv.Run(t, "ovn-nbctl", "--bare", "--columns=type,options", "find", "Logical_Switch_Port", "name=web-r1")
	if !strings.Contains(out, "router") || !strings.Contains(out, "router-port=r1-web") {
		t.Errorf("switch port web-r1: %q", out)
	}
	if out := srv.Run(t, "ovn-nbctl", "get", "Logical_Switch", "web", "external_ids:\"ovlmgr.io/router\""); strings.TrimSpace(out) != `r1` && strings.TrimSpace(out) != `"r1"` {
		t.Errorf("web's router key = %q", out)
	}
	rs, err := router.List(ctx, c)
	if err != nil || len(rs) != 2 || len(rs[0].Networks) != 2 || len(rs[1].Networks) != 1 {
		t.Fatalf("List = %+v, %v", rs, err)
	}

	// Delete refuses while attached, naming the networks.
	if err := router.Delete(ctx, c, "r1", false, nil); !errors.Is(err, router.ErrAttached) || !strings.Contains(err.Error(), "db, web") {
		t.Errorf("delete attached router: %v", err)
	}
	if err := router.Detach(ctx, c, "r1", "db"); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, c, "Logical_Router_Port", dbops.NameIs("r1-db")) + rows(t, c, "Logical_Switch_Port", dbops.NameIs("db-r1")); n != 0 {
		t.Errorf("ports left after detach: %d", n)
	}
	if err := router.Detach(ctx, c, "r1", "db"); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Errorf("second detach: %v", err)
	}
	// DetachOps in a network delete transaction leaves nothing behind.
	ops, err := router.DetachOps(ctx, c, "web2")
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, dbops.Delete("Logical_Switch", []ovsdb.Condition{dbops.NameIs("web2")}))
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, c, "Logical_Router_Port", dbops.NameIs("r2-web2")); n != 0 {
		t.Errorf("router port left after network delete: %d", n)
	}
	if err := router.Delete(ctx, c, "r1", true, nil); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, c, "Logical_Router_Port") + rows(t, c, "Logical_Switch_Port") + rows(t, c, "Logical_Router", dbops.NameIs("r1")); n != 0 {
		t.Errorf("rows left after forced delete: %d", n)
	}
	if out := srv.Run(t, "ovn-nbctl", "--bare", "--columns=external_ids", "find", "Logical_Switch", "name=web"); strings.Contains(out, "ovlmgr.io/router") {
		t.Errorf("web still names a router: %q", out)
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
	if err := router.Delete(ctx, c, "theirs", true, nil); !errors.Is(err, router.ErrNotOwned) {
		t.Errorf("Delete foreign: %v", err)
	}
	if _, err := router.Create(ctx, c, "theirs", nil); !errors.Is(err, router.ErrExists) {
		t.Errorf("Create over foreign: %v", err)
	}
	n := addNetwork(t, c, "web", "198.18.1.0/24")
	if err := router.Attach(ctx, c, "theirs", n); !errors.Is(err, router.ErrNotOwned) {
		t.Errorf("Attach to foreign: %v", err)
	}
	if rows(t, c, "Logical_Router", dbops.NameIs("theirs")) != 1 || rows(t, c, "Logical_Router_Port") != 0 {
		t.Error("foreign router modified")
	}
}
