package network_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// TestIPv6Networks: an IPv6-only network is stored with ipv6_prefix only
// (no IPv4 subnet, no exclude_ips) and its gateway ::1; a /64 already held
// by another network of the scope (dual-stack or IPv6-only) is refused
// naming it, with nothing written; routers give their port both gateways
// of a dual-stack network and the ::1 of an IPv6-only one.
func TestIPv6Networks(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	n6, err := network.Create(ctx, c, network.Spec{Name: "six", IPv6Subnet: "fd00:198:19:6::/64"})
	if err != nil {
		t.Fatal(err)
	}
	if n6.Subnet != "" || n6.IPv6Prefix != "fd00:198:19:6::/64" || n6.Gateway6 != "fd00:198:19:6::1" {
		t.Errorf("created %+v; want no subnet, ipv6Prefix fd00:198:19:6::/64, gateway6 fd00:198:19:6::1", n6)
	}
	ls := switchNamed(t, c, "six")
	if _, ok := ls.OtherConfig["subnet"]; ok || ls.OtherConfig["ipv6_prefix"] != "fd00:198:19:6::" || ls.OtherConfig["exclude_ips"] != "" {
		t.Errorf("other_config %v; want only ipv6_prefix=fd00:198:19:6::", ls.OtherConfig)
	}
	if g, err := network.Get(ctx, c, "six"); err != nil || g.Gateway6 != "fd00:198:19:6::1" || g.Subnet != "" {
		t.Errorf("Get = %+v, %v", g, err)
	}
	dual, err := network.Create(ctx, c, network.Spec{Name: "dual", Subnet: "198.19.7.0/24", IPv6Subnet: "fd00:198:19:7::/64"})
	if err != nil || dual.Gateway6 != "fd00:198:19:7::1" {
		t.Fatalf("dual: %+v, %v", dual, err)
	}
	before := len(switches(t, c))
	for _, s := range []network.Spec{
		{Name: "again", IPv6Subnet: "fd00:198:19:6::/64"},
		{Name: "again", Subnet: "198.19.8.0/24", IPv6Subnet: "fd00:198:19:7::/64"},
	} {
		_, err := network.Create(ctx, c, s)
		var fe *names.FieldError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), "ipv6 subnet") || !strings.Contains(err.Error(), s.IPv6Subnet) {
			t.Errorf("Create(%+v) = %v; want an ipv6 subnet FieldError", s, err)
			continue
		}
		holder := map[string]string{"fd00:198:19:6::/64": `network "six"`, "fd00:198:19:7::/64": `network "dual"`}[s.IPv6Subnet]
		if !strings.Contains(err.Error(), holder) {
			t.Errorf("Create(%+v) = %v; want it to name %s", s, err, holder)
		}
	}
	if n := len(switches(t, c)); n != before {
		t.Errorf("%d switches after refused creates; want %d (nothing written)", n, before)
	}
	// Routers: the port has every family of the network.
	if _, err := router.Create(ctx, c, "r6", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net  string
		want []string
	}{
		{"dual", []string{"198.19.7.1/24", "fd00:198:19:7::1/64"}},
		{"six", []string{"fd00:198:19:6::1/64"}},
	} {
		if err := network.Attach(ctx, c, tc.net, "r6"); err != nil {
			t.Fatalf("attach %s: %v", tc.net, err)
		}
		lrp, _ := router.PortNames("r6", tc.net)
		rows, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, c, []ovsdb.Condition{dbops.NameIs(lrp)})
		if err != nil || len(rows) != 1 {
			t.Fatalf("router port %s: %d rows, %v", lrp, len(rows), err)
		}
		got := slices.Clone(rows[0].Networks)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("router port %s networks %v; want %v", lrp, got, tc.want)
		}
	}
	// The IPv6-only network kept its name, /64 and gateway across the move.
	if g, err := network.Get(ctx, c, "six"); err != nil || g.Router != "r6" || g.IPv6Prefix != "fd00:198:19:6::/64" {
		t.Errorf("after attach: %+v, %v", g, err)
	}
	if err := network.Delete(ctx, c, "six", false); err != nil {
		t.Errorf("delete the IPv6-only network: %v", err)
	}
}
