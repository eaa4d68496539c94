package fip_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// world is NB and SB with router r1 (gateway 198.18.100.10 on
// 198.18.100.0/24, gateway node n1), network web on it with a container
// on n1 (ctr-a, 198.19.0.5) and one on n2 (ctr-b, 198.19.0.6); network
// lone on no router (ctr-c); router r2 without gateway with network dark
// (ctr-d). Chassis n1 maps the external physical network, n2 does not.
type world struct {
	nb, sb client.Client
}

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
	for _, n := range []network.Spec{{Name: "web", Subnet: "198.19.0.0/24", Router: "r1"}, {Name: "lone", Subnet: "198.19.1.0/24"},
		{Name: "dark", Subnet: "198.19.2.0/24", Router: "r2"}} {
		if _, err := network.Create(ctx, nb, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct{ net, node, ctr, ip string }{{"web", "n1", "ctr-a", "198.19.0.5"}, {"web", "n2", "ctr-b", "198.19.0.6"},
		{"lone", "n1", "ctr-c", "198.19.1.5"}, {"dark", "n1", "ctr-d", "198.19.2.5"}} {
		if _, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: p.net, Node: p.node, Container: p.ctr, IfName: "eth0",
			IP: netip.MustParseAddr(p.ip), Subnet: netip.MustParsePrefix(p.ip + "/24").Masked()}); err != nil {
			t.Fatal(err)
		}
	}
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n2", "geneve", "198.18.0.12")
	sbs.Run(t, "ovn-sbctl", "set", "chassis", "n1", "other_config:ovn-bridge-mappings=external:br-ex")
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	return &world{nb: nb, sb: sb}
}

func fips(t *testing.T, nb client.Client) int {
	t.Helper()
	n, err := dbops.Count[nbdb.NAT](context.Background(), nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateListDelete(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	a, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.20"), Container: "ctr-a"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != fip.Distributed || a.ExternalMAC != "0a:5a:c6:12:64:14" || a.Router != "r1" || a.LogicalIP.String() != "198.19.0.5" {
		t.Fatalf("ctr-a on n1 (which has the external network): %+v", a)
	}
	b, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.21"), Container: "ctr-b"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Mode != fip.Centralized || b.ExternalMAC != "" {
		t.Fatalf("ctr-b on n2 (no external network): %+v", b)
	}
	nats, err := dbops.SelectRows[nbdb.NAT](ctx, w.nb, []ovsdb.Condition{dbops.Owned(owner.KindFIP, nil)})
	if err != nil || len(nats) != 2 {
		t.Fatalf("NAT rows: %d, %v", len(nats), err)
	}
	for _, n := range nats {
		if n.Type != nbdb.NATTypeDNATAndSNAT {
			t.Errorf("NAT %s type %s", n.ExternalIP, n.Type)
		}
		dist := n.ExternalIP == "198.18.100.20"
		if dist != (n.LogicalPort != nil && n.ExternalMAC != nil) {
			t.Errorf("NAT %s: logical_port %v external_mac %v", n.ExternalIP, n.LogicalPort, n.ExternalMAC)
		}
	}
	lrs, _ := dbops.SelectRows[nbdb.LogicalRouter](ctx, w.nb, []ovsdb.Condition{dbops.NameIs("r1")})
	if len(lrs) != 1 || len(lrs[0].Nat) != 3 { // two floating IPs and the gateway's snat of web
		t.Fatalf("router r1 NAT refs: %+v", lrs)
	}
	l, err := fip.List(ctx, w.nb)
	if err != nil || len(l) != 2 || l[0].IP != a.IP || l[1].Container != "ctr-b" || l[0].Port == "" {
		t.Fatalf("list: %+v %v", l, err)
	}
	if err := fip.Delete(ctx, w.nb, a.IP); err != nil {
		t.Fatal(err)
	}
	if n := fips(t, w.nb); n != 1 {
		t.Fatalf("after delete: %d floating IPs", n)
	}
	if err := fip.Delete(ctx, w.nb, a.IP); !errors.Is(err, fip.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The container's port goes: its floating IP goes with it.
	ips, err := fip.ReleasePort(ctx, w.nb, b.Port)
	if err != nil || len(ips) != 1 || ips[0] != b.IP {
		t.Fatalf("release: %v %v", ips, err)
	}
	if n := fips(t, w.nb); n != 0 {
		t.Fatalf("after release: %d floating IPs", n)
	}
	if ips, err := fip.ReleasePort(ctx, w.nb, b.Port); err != nil || len(ips) != 0 {
		t.Fatalf("second release: %v %v", ips, err)
	}
}

func TestCreateRefused(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.20"), Container: "ctr-a"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ip, ctr, net string
		field              string
		is                 error
		says               string
	}{
		{"outside", "198.18.101.5", "ctr-b", "", "ip", fip.ErrOutside, "external network is 198.18.100.0/24"},
		{"broadcast", "198.18.100.255", "ctr-b", "", "ip", fip.ErrOutside, "broadcast"},
		{"router's own", "198.18.100.10", "ctr-b", "", "ip", fip.ErrInUse, `router "r1"'s own external address`},
		{"next hop", "198.18.100.1", "ctr-b", "", "ip", fip.ErrInUse, `the next hop of router "r1"`},
		{"taken", "198.18.100.20", "ctr-b", "", "ip", fip.ErrInUse, "floating IP of container ctr-a"},
		{"second for one container", "198.18.100.30", "ctr-a", "", "container", fip.ErrInUse, "already has floating IP 198.18.100.20"},
		{"unknown container", "198.18.100.30", "nosuch", "", "container", fip.ErrUnknownContainer, "no container"},
		{"wrong network", "198.18.100.30", "ctr-a", "lone", "container", fip.ErrUnknownContainer, `network "lone"`},
		{"no router", "198.18.100.30", "ctr-c", "", "container", fip.ErrNoGateway, "on no router"},
		{"router without gateway", "198.18.100.30", "ctr-d", "", "container", fip.ErrNoGateway, `router "r2", which has no gateway`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr(c.ip), Container: c.ctr, Network: c.net})
			var fe *names.FieldError
			if !errors.Is(err, c.is) || !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v; want %v on field %s saying %q", err, c.is, c.field, c.says)
			}
			if n := fips(t, w.nb); n != 1 {
				t.Fatalf("%d floating IPs after a refused create", n)
			}
		})
	}
}

func TestCreateByPrefix(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	// "ctr-" matches four containers: refused, naming them.
	_, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.30"), Container: "ctr-"})
	if err == nil || !strings.Contains(err.Error(), "matches 4 interfaces") {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	f, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.30"), Container: "ctr-", Network: "web"})
	if err == nil {
		t.Fatalf("two containers of web match ctr-: %+v", f)
	}
	f, err = fip.Create(ctx, w.nb, nil, fip.Spec{IP: netip.MustParseAddr("198.18.100.30"), Container: "ctr-a"})
	if err != nil || f.Mode != fip.Centralized {
		t.Fatalf("without SB: %+v %v", f, err)
	}
}

// TestCreateReclaimsStale: the floating IP of a container port removed
// without CNI DEL does not keep its address: the next create takes it.
func TestCreateReclaimsStale(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	a, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.20"), Container: "ctr-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ovnport.Delete(ctx, w.nb, a.Port); err != nil {
		t.Fatal(err)
	}
	b, err := fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.20"), Container: "ctr-b"})
	if err != nil || b.Container != "ctr-b" {
		t.Fatalf("create over a stale floating IP: %+v %v", b, err)
	}
	if n := fips(t, w.nb); n != 1 {
		t.Fatalf("%d floating IPs; want 1", n)
	}
}

// TestIPv6: IPv6 floating IPs on a dual-stack gateway: one per family per
// container interface, to the container's IPv6 address; a family the
// container (on that network) or the gateway lacks is ErrFamily, an
// address outside the IPv6 external network ErrOutside; nothing written.
func TestIPv6(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	for _, n := range []network.Spec{{Name: "dual", Subnet: "198.19.3.0/24", IPv6Subnet: "fd00:198:19:3::/64", Router: "r1"},
		{Name: "six", IPv6Subnet: "fd00:198:19:4::/64", Router: "r1"}} {
		if _, err := network.Create(ctx, w.nb, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []ovnport.Spec{
		{Network: "dual", Node: "n2", Container: "ctr-e", IfName: "eth0", IP: netip.MustParseAddr("198.19.3.5"), Subnet: netip.MustParsePrefix("198.19.3.0/24"),
			Subnet6: netip.MustParsePrefix("fd00:198:19:3::/64"), IP6: netip.MustParseAddr("fd00:198:19:3::5")},
		{Network: "six", Node: "n1", Container: "ctr-f", IfName: "eth0", Subnet6: netip.MustParsePrefix("fd00:198:19:4::/64"), IP6: netip.MustParseAddr("fd00:198:19:4::5")},
	} {
		if _, err := ovnport.Create(ctx, w.nb, p); err != nil {
			t.Fatal(err)
		}
	}
	create := func(ip, ctr string) (*fip.FIP, error) {
		return fip.Create(ctx, w.nb, w.sb, fip.Spec{IP: netip.MustParseAddr(ip), Container: ctr})
	}
	if _, err := create("fd00:198:18:100::20", "ctr-e"); !errors.Is(err, fip.ErrFamily) || !strings.Contains(err.Error(), "no IPv6 side") {
		t.Errorf("IPv6 floating IP on an IPv4-only gateway: %v, want ErrFamily (no IPv6 side)", err)
	}
	if _, err := gateway.Set(ctx, w.nb, w.sb, gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"},
		ExternalNet6: netip.MustParsePrefix("fd00:198:18:100::/64"), ExternalIP6: netip.MustParseAddr("fd00:198:18:100::10"),
		NextHop6: netip.MustParseAddr("fd00:198:18:100::1")}); err != nil {
		t.Fatal(err)
	}
	e6, err := create("fd00:198:18:100::20", "ctr-e")
	if err != nil {
		t.Fatal(err)
	}
	if e6.LogicalIP.String() != "fd00:198:19:3::5" || e6.Mode != fip.Centralized {
		t.Errorf("IPv6 floating IP of ctr-e: %+v, want logical fd00:198:19:3::5, centralized (n2 has no external network)", e6)
	}
	if e4, err := create("198.18.100.21", "ctr-e"); err != nil || e4.LogicalIP.String() != "198.19.3.5" {
		t.Errorf("IPv4 floating IP next to the IPv6 one: %+v %v", e4, err)
	}
	f6, err := create("fd00:198:18:100::23", "ctr-f")
	if err != nil {
		t.Fatal(err)
	}
	if f6.Mode != fip.Distributed || f6.ExternalMAC != "0a:5b:00:00:00:23" {
		t.Errorf("IPv6 floating IP of ctr-f on n1 (external network): %+v, want distributed with MAC 0a:5b:00:00:00:23", f6)
	}
	n := fips(t, w.nb)
	for _, c := range []struct {
		ip, ctr string
		want    error
		text    string
	}{
		{"fd00:198:18:100::21", "ctr-e", fip.ErrInUse, "already has floating IP fd00:198:18:100::20"},
		{"198.18.100.22", "ctr-f", fip.ErrFamily, `has none (its address: fd00:198:19:4::5)`},
		{"fd00:198:18:100::22", "ctr-a", fip.ErrFamily, "needs the container's IPv6 address"},
		{"fd00:198:18:101::1", "ctr-e", fip.ErrOutside, "IPv6 external network is fd00:198:18:100::/64"},
		{"fd00:198:18:100::10", "ctr-f", fip.ErrInUse, "own external IPv6 address"},
		{"fd00:198:18:100::1", "ctr-f", fip.ErrInUse, "IPv6 next hop"},
		{"fd00:198:18:100::20", "ctr-f", fip.ErrInUse, "the floating IP of container ctr-e"},
	} {
		_, err := create(c.ip, c.ctr)
		var fe *names.FieldError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("fip create %s --container %s: %v; want %v saying %q", c.ip, c.ctr, err, c.want, c.text)
		}
	}
	if got := fips(t, w.nb); got != n {
		t.Errorf("refused creates changed the floating IPs: %d -> %d", n, got)
	}
	// The gateway's IPv6 address cannot move (or go) under IPv6 floating IPs.
	moved := gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"},
		ExternalNet6: netip.MustParsePrefix("fd00:198:18:100::/64"), ExternalIP6: netip.MustParseAddr("fd00:198:18:100::11"),
		NextHop6: netip.MustParseAddr("fd00:198:18:100::1")}
	if _, err := gateway.Set(ctx, w.nb, w.sb, moved); !errors.Is(err, gateway.ErrInUse) {
		t.Errorf("gateway set with another IPv6 address under floating IPs: %v, want ErrInUse", err)
	}
	if err := fip.Delete(ctx, w.nb, netip.MustParseAddr("fd00:198:18:100::20")); err != nil {
		t.Fatal(err)
	}
	if got := fips(t, w.nb); got != n-1 {
		t.Errorf("after delete: %d floating IPs, want %d", got, n-1)
	}
}
