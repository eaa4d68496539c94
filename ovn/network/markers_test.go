package network_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// markers returns the subnet markers in NB as "router:cidr" ("" router for
// the global scope), sorted.
func markers(t *testing.T, c client.Client) []string {
	t.Helper()
	var rows []*nbdb.DHCPOptions
	if err := dbconn.Select(context.Background(), c, &nbdb.DHCPOptions{}, &rows); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if owner.Owned(r.ExternalIDs, network.KindSubnetMarker) {
			out = append(out, r.ExternalIDs[owner.KeyRouter]+":"+r.Cidr)
		}
	}
	sort.Strings(out)
	return out
}

// mustCreate creates network name with subnet sub in the global scope.
func mustCreate(t *testing.T, c client.Client, name, sub string) {
	t.Helper()
	if _, err := network.Create(context.Background(), c, network.Spec{Name: name, Subnet: sub}); err != nil {
		t.Fatal(err)
	}
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSubnetMarkers: a network keeps a marker for each of its supernets
// (/8 up to its own length) in its scope; siblings share them; delete
// removes only those no other network needs; attach and detach move them
// between scopes; nothing of them is left once the networks are gone.
func TestSubnetMarkers(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	create := func(name, sub string) { mustCreate(t, c, name, sub) }
	create("a", "198.18.4.0/24")
	m := markers(t, c)
	if len(m) != 24-8 || !has(m, ":198.0.0.0/8") || !has(m, ":198.18.4.0/23") || has(m, ":198.18.4.0/24") {
		t.Fatalf("markers of one /24: %v; want its 16 supernets /8../23", m)
	}
	create("b", "198.18.5.0/24") // sibling: shares /8../23
	if got := len(markers(t, c)); got != 16 {
		t.Fatalf("%d markers with a sibling; want 16 (shared)", got)
	}
	if err := network.Delete(ctx, c, "a", false); err != nil {
		t.Fatal(err)
	}
	if got := len(markers(t, c)); got != 16 {
		t.Fatalf("%d markers after deleting one sibling; want 16 (b still needs them)", got)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "sup", Subnet: "198.18.0.0/16"}); err == nil ||
		!strings.Contains(err.Error(), `overlaps network "b"`) {
		t.Fatalf("create a supernet of b: %v; want an overlap naming b", err)
	}
	// Attach moves b's markers into the router's scope.
	if _, err := router.Create(ctx, c, "blue", nil); err != nil {
		t.Fatal(err)
	}
	if err := network.Attach(ctx, c, "b", "blue"); err != nil {
		t.Fatal(err)
	}
	m = markers(t, c)
	if len(m) != 16 || !has(m, "blue:198.18.4.0/23") {
		t.Fatalf("markers after attach: %v; want b's 16 in router blue's scope only", m)
	}
	create("sup", "198.18.0.0/16") // global scope: b is no longer there
	if err := network.Detach(ctx, c, "b", "blue"); err == nil {
		t.Fatalf("detach b into a global scope holding its supernet: no error")
	}
	if err := network.Delete(ctx, c, "sup", false); err != nil {
		t.Fatal(err)
	}
	if err := network.Detach(ctx, c, "b", "blue"); err != nil {
		t.Fatal(err)
	}
	if m = markers(t, c); len(m) != 16 || !has(m, ":198.18.4.0/23") {
		t.Fatalf("markers after detach: %v; want b's 16 in the global scope", m)
	}
	if err := network.Delete(ctx, c, "b", false); err != nil {
		t.Fatal(err)
	}
	if m = markers(t, c); len(m) != 0 {
		t.Fatalf("markers left with no networks: %v", m)
	}
	// router delete --force moves two sibling networks back in one
	// transaction: their shared markers are inserted once, none stay behind
	// in the router's scope.
	for _, n := range []string{"s1", "s2"} {
		sub := map[string]string{"s1": "198.18.6.0/24", "s2": "198.18.7.0/24"}[n]
		if _, err := network.Create(ctx, c, network.Spec{Name: n, Subnet: sub, Router: "blue"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := network.DeleteRouter(ctx, c, "blue", true); err != nil {
		t.Fatal(err)
	}
	if m = markers(t, c); len(m) != 16 || !has(m, ":198.18.6.0/23") || has(m, "blue:198.18.6.0/23") {
		t.Fatalf("markers after router delete --force: %v; want the two networks' 16 in the global scope", m)
	}
}

// TestStaleMarker: a marker with no network inside (left by a crash, or
// written by hand) does not block creating its subnet, and goes away.
func TestStaleMarker(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	create := func(name, sub string) { mustCreate(t, c, name, sub) }
	create("x", "198.18.8.0/24")
	// Remove x's switch behind ovlmgr's back: its markers stay, stale.
	tx := dbops.NewTx(c)
	dbops.Typed[nbdb.LogicalSwitch](tx).Delete([]ovsdb.Condition{dbops.NameIs("x")})
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	create("big", "198.18.8.0/22")
	m := markers(t, c)
	if has(m, ":198.18.8.0/22") {
		t.Fatalf("stale marker for 198.18.8.0/22 still there: %v", m)
	}
	if err := network.Delete(ctx, c, "big", false); err != nil {
		t.Fatal(err)
	}
	// big's supernets go; x's stale /23 (inside big, not one of big's
	// supernets) stays until that subnet is created.
	if m = markers(t, c); len(m) != 1 || m[0] != ":198.18.8.0/23" {
		t.Fatalf("markers after deleting big: %v; want only the stale :198.18.8.0/23", m)
	}
	create("y", "198.18.8.0/23")
	if err := network.Delete(ctx, c, "y", false); err != nil {
		t.Fatal(err)
	}
	if m = markers(t, c); len(m) != 0 {
		t.Fatalf("markers left: %v", m)
	}
}
