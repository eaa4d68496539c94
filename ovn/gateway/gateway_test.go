package gateway_test

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

type world struct {
	nb, sb   client.Client
	nbs, sbs *ovsdbtest.Server
}

// setup: router r1 with networks web (198.19.0.0/24) and db
// (198.19.1.0/24), router r2 with none, chassis n1, n2, n3 in SB.
func setup(t *testing.T) *world {
	t.Helper()
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	sb, err := dbconn.ConnectSB(ctx, sbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	for _, r := range []string{"r1", "r2"} {
		if _, err := router.Create(ctx, nb, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []network.Spec{{Name: "web", Subnet: "198.19.0.0/24", Router: "r1"}, {Name: "db", Subnet: "198.19.1.0/24", Router: "r1"}} {
		if _, err := network.Create(ctx, nb, n); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []string{"n1", "n2", "n3"} {
		sbs.Run(t, "ovn-sbctl", "chassis-add", n, "geneve", "198.18.0.1"+string(rune('1'+i)))
	}
	return &world{nb: nb, sb: sb, nbs: nbs, sbs: sbs}
}

func spec() gateway.Spec {
	return gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"), ExternalIP: netip.MustParseAddr("198.18.100.10"),
		NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n2", "n1"}, NoSNAT: []string{"db"}}
}

// rows counts NB rows of the kinds a gateway writes.
func rows(t *testing.T, nb client.Client) (lrp, gc, route, nat, ls, lsp int) {
	t.Helper()
	ctx := context.Background()
	count := func(n int, err error) int {
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return count(dbops.Count[nbdb.LogicalRouterPort](ctx, nb, nil)), count(dbops.Count[nbdb.GatewayChassis](ctx, nb, nil)),
		count(dbops.Count[nbdb.LogicalRouterStaticRoute](ctx, nb, nil)), count(dbops.Count[nbdb.NAT](ctx, nb, nil)),
		count(dbops.Count[nbdb.LogicalSwitch](ctx, nb, nil)), count(dbops.Count[nbdb.LogicalSwitchPort](ctx, nb, nil))
}

func TestSetGetUnset(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := gateway.Get(ctx, w.nb, "r1"); !errors.Is(err, gateway.ErrNoGateway) {
		t.Fatalf("Get before Set: %v, want ErrNoGateway", err)
	}
	before := [6]int{}
	before[0], before[1], before[2], before[3], before[4], before[5] = rows(t, w.nb)
	g, err := gateway.Set(ctx, w.nb, w.sb, spec())
	if err != nil {
		t.Fatal(err)
	}
	if g.ExternalIP.String() != "198.18.100.10" || g.ExternalNet.String() != "198.18.100.0/24" || g.NextHop.String() != "198.18.100.1" {
		t.Errorf("addresses: %+v", g)
	}
	if strings.Join(g.Nodes, ",") != "n2,n1" || g.Priorities[0] <= g.Priorities[1] {
		t.Errorf("nodes %v priorities %v, want n2 first with the higher priority", g.Nodes, g.Priorities)
	}
	if g.Port != "r1:gw" || g.RedirectPort != "cr-r1:gw" || g.Switch != "r1:ext" || g.Physnet != gateway.DefaultPhysnet || g.LocalnetPort == "" {
		t.Errorf("names: %+v", g)
	}
	if len(g.SNAT) != 1 || g.SNAT[0].Network != "web" || g.SNAT[0].LogicalIP != "198.19.0.0/24" || g.SNAT[0].ExternalIP != "198.18.100.10" {
		t.Errorf("snat %+v, want web only (db is no-snat)", g.SNAT)
	}
	// ovn-nbctl sees what it would have made itself.
	out := w.nbs.Run(t, "ovn-nbctl", "lrp-get-gateway-chassis", "r1:gw")
	if !strings.Contains(out, "n2") || strings.Index(out, "n2") > strings.Index(out, "n1") {
		t.Errorf("lrp-get-gateway-chassis: %s", out)
	}
	if out := w.nbs.Run(t, "ovn-nbctl", "lr-route-list", "r1"); !strings.Contains(out, "0.0.0.0/0") || !strings.Contains(out, "198.18.100.1") {
		t.Errorf("routes: %s", out)
	}

	// Attach and detach keep SNAT in step.
	if _, err := network.Create(ctx, w.nb, network.Spec{Name: "app", Subnet: "198.19.2.0/24", Router: "r1"}); err != nil {
		t.Fatal(err)
	}
	if err := network.Detach(ctx, w.nb, "web", "r1"); err != nil {
		t.Fatal(err)
	}
	g, err = gateway.Get(ctx, w.nb, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.SNAT) != 1 || g.SNAT[0].Network != "app" {
		t.Errorf("after create app --router r1 and detach web: snat %+v, want app only", g.SNAT)
	}
	if err := network.Attach(ctx, w.nb, "web", "r1"); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); len(g.SNAT) != 2 {
		t.Errorf("after re-attach web: snat %+v, want app and web", g.SNAT)
	}

	// Set again replaces (one gateway, no leftovers).
	s := spec()
	s.Nodes = []string{"n3"}
	s.NoSNAT = nil
	if g, err = gateway.Set(ctx, w.nb, w.sb, s); err != nil {
		t.Fatal(err)
	}
	if strings.Join(g.Nodes, ",") != "n3" || len(g.SNAT) != 3 {
		t.Errorf("replaced: nodes %v snat %+v", g.Nodes, g.SNAT)
	}
	if _, gc, _, _, _, _ := rows(t, w.nb); gc != 1 {
		t.Errorf("Gateway_Chassis rows after replace: %d, want 1", gc)
	}
	// Deleting an attached network takes its SNAT rule with it.
	if err := network.Delete(ctx, w.nb, "app", false); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); len(g.SNAT) != 2 {
		t.Errorf("after net delete app: snat %+v, want db and web", g.SNAT)
	}
	// A floating IP (any other NAT row) on the router keeps the gateway.
	w.nbs.Run(t, "ovn-nbctl", "lr-nat-add", "r1", "dnat_and_snat", "198.18.100.20", "198.19.0.5")
	if err := gateway.Unset(ctx, w.nb, "r1"); !errors.Is(err, gateway.ErrInUse) {
		t.Errorf("unset with a floating IP: %v, want ErrInUse", err)
	}
	// Nor may the external address change under it; other changes may.
	moved := s
	moved.ExternalIP = netip.MustParseAddr("198.18.100.11")
	if _, err := gateway.Set(ctx, w.nb, w.sb, moved); !errors.Is(err, gateway.ErrInUse) {
		t.Errorf("set another external ip with a floating IP: %v, want ErrInUse", err)
	}
	renodes := s
	renodes.Nodes = []string{"n1", "n3"}
	if g, err := gateway.Set(ctx, w.nb, w.sb, renodes); err != nil || strings.Join(g.Nodes, ",") != "n1,n3" {
		t.Errorf("set other nodes with a floating IP: %v", err)
	}
	w.nbs.Run(t, "ovn-nbctl", "lr-nat-del", "r1", "dnat_and_snat", "198.18.100.20")
	// So does a published port (a Load_Balancer of ours on the router's address).
	w.nbs.Run(t, "ovn-nbctl", "lb-add", "pub", "198.18.100.10:8080", "198.19.0.5:80", "--", "set", "Load_Balancer", "pub",
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=published-port`, `external_ids:"ovlmgr.io/router"=r1`,
		"--", "lr-lb-add", "r1", "pub")
	if err := gateway.Unset(ctx, w.nb, "r1"); !errors.Is(err, gateway.ErrInUse) || !strings.Contains(err.Error(), "published") {
		t.Errorf("unset with a published port: %v, want ErrInUse", err)
	}
	w.nbs.Run(t, "ovn-nbctl", "lr-lb-del", "r1", "pub", "--", "lb-del", "pub")

	if err := gateway.Unset(ctx, w.nb, "r1"); err != nil {
		t.Fatal(err)
	}
	after := [6]int{}
	after[0], after[1], after[2], after[3], after[4], after[5] = rows(t, w.nb)
	// app came and went: the rows are those of before.
	want := before
	if after != want {
		t.Errorf("rows after unset (lrp, gc, route, nat, ls, lsp) = %v, want %v", after, want)
	}
	if _, err := gateway.Get(ctx, w.nb, "r1"); !errors.Is(err, gateway.ErrNoGateway) {
		t.Errorf("Get after Unset: %v", err)
	}
	if err := gateway.Unset(ctx, w.nb, "r1"); !errors.Is(err, gateway.ErrNoGateway) {
		t.Errorf("second Unset: %v, want ErrNoGateway", err)
	}
}

func TestRouterDeleteTakesGateway(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := gateway.Set(ctx, w.nb, w.sb, spec()); err != nil {
		t.Fatal(err)
	}
	if err := network.DeleteRouter(ctx, w.nb, "r1", true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []func() (int, error){
		func() (int, error) { return dbops.Count[nbdb.GatewayChassis](ctx, w.nb, nil) },
		func() (int, error) { return dbops.Count[nbdb.NAT](ctx, w.nb, nil) },
		func() (int, error) { return dbops.Count[nbdb.LogicalRouterStaticRoute](ctx, w.nb, nil) },
		func() (int, error) {
			return dbops.Count[nbdb.LogicalSwitch](ctx, w.nb, []ovsdb.Condition{dbops.NameIs("r1:ext")})
		},
	} {
		if n, err := c(); err != nil || n != 0 {
			t.Errorf("after router delete: %d rows left (%v)", n, err)
		}
	}
}

func TestSetBadInput(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		edit  func(*gateway.Spec)
		field string
		is    error
		msg   string
	}{
		{"unknown node", func(s *gateway.Spec) { s.Nodes = []string{"n1", "n9"} }, "nodes", gateway.ErrUnknownNode, `"n9": no such chassis in SB (known: n1, n2, n3)`},
		{"ip outside", func(s *gateway.Spec) { s.ExternalIP = netip.MustParseAddr("198.18.101.10") }, "external ip", nil, "outside the external net 198.18.100.0/24"},
		{"ip broadcast", func(s *gateway.Spec) { s.ExternalIP = netip.MustParseAddr("198.18.100.255") }, "external ip", nil, "broadcast"},
		{"ip in overlay", func(s *gateway.Spec) {
			s.ExternalNet = netip.MustParsePrefix("198.19.1.0/24")
			s.ExternalIP = netip.MustParseAddr("198.19.1.77")
			s.NextHop = netip.MustParseAddr("198.19.1.1")
		}, "external ip", nil, `inside the subnet 198.19.1.0/24 of network "db"`},
		{"next hop outside", func(s *gateway.Spec) { s.NextHop = netip.MustParseAddr("198.18.0.1") }, "next hop", nil, "outside the external net"},
		{"next hop is ip", func(s *gateway.Spec) { s.NextHop = s.ExternalIP }, "next hop", nil, "external ip itself"},
		{"no nodes", func(s *gateway.Spec) { s.Nodes = nil }, "nodes", nil, "is required"},
		{"host bits", func(s *gateway.Spec) { s.ExternalNet = netip.MustParsePrefix("198.18.100.5/24") }, "external net", nil, "did you mean 198.18.100.0/24"},
	}
	_, _, _, _, ls0, lsp0 := rows(t, w.nb)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := spec()
			c.edit(&s)
			_, err := gateway.Set(ctx, w.nb, w.sb, s)
			var fe *names.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err %v, want a FieldError on %q", err, c.field)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err %v is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err %q, want it to say %q", err, c.msg)
			}
			lrp, gc, route, nat, ls, lsp := rows(t, w.nb)
			if gc != 0 || route != 0 || nat != 0 || ls != ls0 || lsp != lsp0 || lrp != 2 {
				t.Errorf("rows written on bad input: lrp %d gc %d route %d nat %d ls %d lsp %d", lrp, gc, route, nat, ls, lsp)
			}
		})
	}
	if _, err := gateway.Get(ctx, w.nb, "nope"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Get unknown router: %v, want ErrNotFound", err)
	}
}

// TestDetachRacesSet: a detach read before a gateway set and committed
// after it fails (its guard sees the snat row the set wrote) instead of
// leaving that row behind for a network no longer on the router.
func TestDetachRacesSet(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := gateway.Set(ctx, w.nb, w.sb, spec()); err != nil {
		t.Fatal(err)
	}
	ops, err := network.DetachOps(ctx, w.nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	s := spec()
	s.Nodes = []string{"n3"}
	if _, err := gateway.Set(ctx, w.nb, w.sb, s); err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, w.nb, ops...); err == nil {
		t.Error("stale detach committed")
	}
	g, err := gateway.Get(ctx, w.nb, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.SNAT) != 1 || g.SNAT[0].Network != "web" {
		t.Errorf("snat %+v, want web's (still attached)", g.SNAT)
	}
	// A fresh detach works and takes the row.
	if err := network.Detach(ctx, w.nb, "web", "r1"); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); len(g.SNAT) != 0 {
		t.Errorf("after detach: snat %+v", g.SNAT)
	}
}

func spec6() gateway.Spec {
	s := spec()
	s.NoSNAT = nil
	s.ExternalNet6 = netip.MustParsePrefix("fd00:198:18:100::/64")
	s.ExternalIP6 = netip.MustParseAddr("fd00:198:18:100::10")
	s.NextHop6 = netip.MustParseAddr("fd00:198:18:100::1")
	return s
}

// TestDualStack: a gateway with an IPv6 side gets both addresses on its
// port, a default route per family and NAT66 rows for the networks with
// an IPv6 /64 (IPv6-only ones too), kept in step by attach and detach;
// bad IPv6 input names the field and writes nothing.
func TestDualStack(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	for _, n := range []network.Spec{{Name: "six", IPv6Subnet: "fd00:198:19:6::/64", Router: "r1"},
		{Name: "dual", Subnet: "198.19.7.0/24", IPv6Subnet: "fd00:198:19:7::/64", Router: "r1"}} {
		if _, err := network.Create(ctx, w.nb, n); err != nil {
			t.Fatal(err)
		}
	}
	before := [6]int{}
	before[0], before[1], before[2], before[3], before[4], before[5] = rows(t, w.nb)
	bad := []struct {
		mut   func(*gateway.Spec)
		field string
		want  string
	}{
		{func(s *gateway.Spec) { s.ExternalIP6 = netip.MustParseAddr("fd00:198:18:101::10") }, "external ip6", "outside the external net6 fd00:198:18:100::/64"},
		{func(s *gateway.Spec) { s.NextHop6 = netip.MustParseAddr("198.18.100.1") }, "next hop6", "not an IPv6 address"},
		{func(s *gateway.Spec) { s.ExternalIP6 = netip.MustParseAddr("198.18.100.11") }, "external ip6", "not an IPv6 address"},
		{func(s *gateway.Spec) { s.ExternalNet6 = netip.MustParsePrefix("198.18.0.0/16") }, "external net6", "not an IPv6 CIDR"},
		{func(s *gateway.Spec) { s.ExternalNet6 = netip.Prefix{} }, "external net6", ""},
		{func(s *gateway.Spec) { s.NextHop6 = s.ExternalIP6 }, "next hop6", "is the external ip6 itself"},
		{func(s *gateway.Spec) {
			s.ExternalNet6 = netip.MustParsePrefix("fd00:198:19:7::/64")
			s.ExternalIP6 = netip.MustParseAddr("fd00:198:19:7::10")
			s.NextHop6 = netip.MustParseAddr("fd00:198:19:7::1")
		}, "external ip6", `IPv6 subnet fd00:198:19:7::/64 of network "dual"`},
	}
	for _, b := range bad {
		s := spec6()
		b.mut(&s)
		_, err := gateway.Set(ctx, w.nb, w.sb, s)
		var fe *names.FieldError
		if !errors.As(err, &fe) || fe.Field != b.field || !strings.Contains(err.Error(), b.want) {
			t.Errorf("set %+v: %v; want a %q field error saying %q", s, err, b.field, b.want)
		}
	}
	after := [6]int{}
	after[0], after[1], after[2], after[3], after[4], after[5] = rows(t, w.nb)
	if after != before {
		t.Fatalf("bad input wrote rows: %v -> %v", before, after)
	}

	g, err := gateway.Set(ctx, w.nb, w.sb, spec6())
	if err != nil {
		t.Fatal(err)
	}
	if g.ExternalIP6.String() != "fd00:198:18:100::10" || g.ExternalNet6.String() != "fd00:198:18:100::/64" || g.NextHop6.String() != "fd00:198:18:100::1" || g.ExternalIP.String() != "198.18.100.10" {
		t.Errorf("addresses: %+v", g)
	}
	snat := func(g *gateway.Gateway) string {
		var s []string
		for _, x := range g.SNAT {
			s = append(s, x.Network+":"+x.LogicalIP+">"+x.ExternalIP)
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	want := "db:198.19.1.0/24>198.18.100.10 dual:198.19.7.0/24>198.18.100.10 dual:fd00:198:19:7::/64>fd00:198:18:100::10 six:fd00:198:19:6::/64>fd00:198:18:100::10 web:198.19.0.0/24>198.18.100.10"
	if got := snat(g); got != want {
		t.Errorf("snat\n got %s\nwant %s", got, want)
	}
	out := w.nbs.Run(t, "ovn-nbctl", "lr-route-list", "r1")
	if !strings.Contains(out, "::/0") || !strings.Contains(out, "fd00:198:18:100::1") || !strings.Contains(out, "0.0.0.0/0") {
		t.Errorf("routes: %s", out)
	}
	if out := w.nbs.Run(t, "ovn-nbctl", "get", "Logical_Router_Port", "r1:gw", "networks"); !strings.Contains(out, "fd00:198:18:100::10/64") || !strings.Contains(out, "198.18.100.10/24") {
		t.Errorf("gateway port networks: %s", out)
	}
	// Detach and attach keep the NAT66 rows in step.
	if err := network.Detach(ctx, w.nb, "dual", "r1"); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); strings.Contains(snat(g), "dual") {
		t.Errorf("after detach dual: %s", snat(g))
	}
	if err := network.Attach(ctx, w.nb, "dual", "r1"); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); snat(g) != want {
		t.Errorf("after re-attach dual:\n got %s\nwant %s", snat(g), want)
	}
	// Back to IPv4 only: the IPv6 route and NAT66 rows go.
	s := spec6()
	s.ExternalNet6, s.ExternalIP6, s.NextHop6 = netip.Prefix{}, netip.Addr{}, netip.Addr{}
	if g, err = gateway.Set(ctx, w.nb, w.sb, s); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(snat(g), "fd00") || g.ExternalIP6.IsValid() {
		t.Errorf("IPv4-only again: %+v snat %s", g, snat(g))
	}
	if out := w.nbs.Run(t, "ovn-nbctl", "lr-route-list", "r1"); strings.Contains(out, "::/0") {
		t.Errorf("routes after IPv4-only set: %s", out)
	}
	if err := gateway.Unset(ctx, w.nb, "r1"); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6Only: a gateway with the IPv6 side alone: the port has only the
// IPv6 address (MAC from it), one default route ::/0, NAT66 rows for the
// networks with IPv6 and none for IPv4-only ones; half an IPv4 side is
// refused.
func TestIPv6Only(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := network.Create(ctx, w.nb, network.Spec{Name: "six", IPv6Subnet: "fd00:198:19:6::/64", Router: "r1"}); err != nil {
		t.Fatal(err)
	}
	s := spec6()
	s.ExternalNet, s.ExternalIP, s.NextHop = netip.Prefix{}, netip.Addr{}, netip.Addr{}
	half := s
	half.ExternalIP = netip.MustParseAddr("198.18.100.10")
	var fe *names.FieldError
	if _, err := gateway.Set(ctx, w.nb, w.sb, half); !errors.As(err, &fe) || fe.Field != "external net" {
		t.Errorf("an IPv4 address without the IPv4 external net: %v, want a field error on external net", err)
	}
	none := s
	none.ExternalNet6, none.ExternalIP6, none.NextHop6 = netip.Prefix{}, netip.Addr{}, netip.Addr{}
	if _, err := gateway.Set(ctx, w.nb, w.sb, none); !errors.As(err, &fe) || fe.Field != "external net" {
		t.Errorf("no side at all: %v, want a field error on external net", err)
	}
	g, err := gateway.Set(ctx, w.nb, w.sb, s)
	if err != nil {
		t.Fatal(err)
	}
	if g.ExternalIP.IsValid() || g.ExternalIP6.String() != "fd00:198:18:100::10" || g.NextHop6.String() != "fd00:198:18:100::1" || !strings.HasPrefix(g.MAC, "0a:59:") {
		t.Errorf("IPv6-only gateway: %+v", g)
	}
	if len(g.SNAT) != 1 || g.SNAT[0].Network != "six" || g.SNAT[0].ExternalIP != "fd00:198:18:100::10" {
		t.Errorf("snat %+v; want six's /64 only", g.SNAT)
	}
	out := w.nbs.Run(t, "ovn-nbctl", "lr-route-list", "r1")
	if !strings.Contains(out, "::/0") || strings.Contains(out, "0.0.0.0/0") {
		t.Errorf("routes of an IPv6-only gateway: %s", out)
	}
	// An IPv4-only network attached later gets no snat row.
	if _, err := network.Create(ctx, w.nb, network.Spec{Name: "app", Subnet: "198.19.2.0/24", Router: "r1"}); err != nil {
		t.Fatal(err)
	}
	if g, _ = gateway.Get(ctx, w.nb, "r1"); len(g.SNAT) != 1 {
		t.Errorf("after attaching an IPv4-only network: snat %+v", g.SNAT)
	}
	if err := gateway.Unset(ctx, w.nb, "r1"); err != nil {
		t.Fatal(err)
	}
}
