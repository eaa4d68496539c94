package integration

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
)

// dualGateway gives router r a dual-stack gateway on the lab's external
// network (extIP, extIP6; next hops the outside host's two addresses) on
// the lab's gateway nodes, and waits until the first of them is active.
func dualGateway(t testing.TB, l *lab.Lab, nb, sb client.Client, r, extIP, extIP6 string) *gateway.Gateway {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if l.External == nil || l.External.HostIP6 == "" {
		t.Fatalf("lab %s has no dual-stack external network: %+v", l.Name, l.External)
	}
	g, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: r, Nodes: l.Gateways,
		ExternalNet: netip.MustParsePrefix(l.External.CIDR), ExternalIP: netip.MustParseAddr(extIP), NextHop: netip.MustParseAddr(l.External.HostIP),
		ExternalNet6: netip.MustParsePrefix(l.External.CIDR6), ExternalIP6: netip.MustParseAddr(extIP6), NextHop6: netip.MustParseAddr(l.External.HostIP6)})
	if err != nil {
		t.Fatal(err)
	}
	waitFirstGateway(t, ctx, l, sb, g)
	return g
}

// TestGatewayIPv6: a router with a dual-stack gateway. Containers on an
// IPv6-only and on a dual-stack network, both on n3 (no external network),
// reach the outside host over IPv6 TCP, which sees the router's external
// IPv6 address (NAT66). A dual-stack container's published port (CNI
// portMappings with an empty hostIP, as podman -p sends) answers on both
// external addresses and the container sees the outside host's own
// address of each family. The outside host reaches containers through
// IPv6 floating IPs, centralized (n3) and distributed (gateway node n2),
// and those containers then leave from their floating IP. DEL removes the
// IPv6 floating IP.
func TestGatewayIPv6(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if len(l.Nodes) < 3 || !l.IsGateway(l.Nodes[1].Name) || l.IsGateway(l.Nodes[2].Name) {
		t.Fatalf("want gateways n1,n2 and n3 without: %v", l.Gateways)
	}
	n2, n3 := l.Nodes[1], l.Nodes[2]
	r := segName("g6r")
	six, dual := segName("g6s"), segName("g6d")
	if _, err := router.Create(ctx, nb, r, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = network.DeleteRouter(ctx, nb, r, true)
	})
	specNetwork(t, nb, network.Spec{Name: six, IPv6Subnet: "fd00:198:19:81::/64", Router: r})
	specNetwork(t, nb, network.Spec{Name: dual, Subnet: "198.19.82.0/24", IPv6Subnet: "fd00:198:19:82::/64", Router: r})
	const ext4, ext6 = "198.18.100.81", "fd00:198:18:100::81"
	g := dualGateway(t, l, nb, sb, r, ext4, ext6)
	if len(g.SNAT) != 3 {
		t.Errorf("snat rows %+v; want 3 (%s IPv6, %s IPv4 and IPv6)", g.SNAT, six, dual)
	}
	out := outsideNS(t, l)
	outSrv6 := net.JoinHostPort(l.External.HostIP6, "9481")
	whoServer(t, out, outSrv6)

	// Egress over IPv6 from both networks, through the active gateway: NAT66.
	a := newContainer(t, newRuntime(t, n3), publishConfList(t, six))
	a.mustAdd(t, ctx)
	b := withMappings(newContainer(t, newRuntime(t, n3), publishConfList(t, dual)), mapping(8481, 80, "tcp", ""))
	b.mustAdd(t, ctx)
	for _, c := range []*container{a, b} {
		if seen, err := whoAmI(c.ns, outSrv6, 20*time.Second); err != nil || seen != ext6 {
			t.Errorf("IPv6 egress of %s (n3): outside saw %q, %v; want the router's external IPv6 %s", c.ip6(), seen, err, ext6)
		}
	}

	// diagnose: the IPv6 next hop answered neighbour discovery.
	rep, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	if ck := rep.Find("router " + r + " next hop6"); ck == nil || ck.Status != diagnose.OK {
		t.Errorf("diagnose next hop6: %+v", ck)
	}
	// trace names the IPv6 way out and the IPv6 published port.
	if res, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: b.id, To: l.External.HostIP6, Proto: "tcp", Port: 9481}); err != nil ||
		res.Verdict != trace.Delivered || res.External != "SNAT to "+ext6+" on gateway "+l.Gateways[0] {
		t.Errorf("trace %s -> %s: %+v %v; want delivered, SNAT to %s", b.id, l.External.HostIP6, res, err, ext6)
	}
	if res, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: trace.External, To: ext6, Proto: "tcp", Port: 8481}); err != nil ||
		res.Verdict != trace.Delivered || !strings.HasPrefix(res.External, "published [fd00:198:18:100::81]:8481 -> ") {
		t.Errorf("trace external -> [%s]:8481: %+v %v", ext6, res, err)
	}

	// CHECK verifies the mapping on both families.
	if err := b.rt.cni.CheckNetworkList(ctx, b.list, b.conf); err != nil {
		t.Errorf("CHECK of a container published on both families: %v", err)
	}
	// The published port answers on both external addresses.
	whoServer(t, b.ns, net.JoinHostPort(b.ip6().String(), "80"))
	whoServer(t, b.ns, net.JoinHostPort(b.ip().String(), "80"))
	for _, x := range []struct{ addr, client string }{{net.JoinHostPort(ext6, "8481"), l.External.HostIP6}, {net.JoinHostPort(ext4, "8481"), l.External.HostIP}} {
		if seen, err := whoAmI(out, x.addr, 15*time.Second); err != nil || seen != x.client {
			t.Errorf("published %s from outside: container saw %q, %v; want %s", x.addr, seen, err, x.client)
		}
	}

	// IPv6 floating IPs: a on n3 (centralized), c on gateway node n2 (distributed).
	c := newContainer(t, newRuntime(t, n2), confList(t, six, "1.0.0", nil))
	c.mustAdd(t, ctx)
	for _, f := range []struct {
		ip   string
		ctr  *container
		mode string
	}{{"fd00:198:18:100::91", a, fip.Centralized}, {"fd00:198:18:100::93", c, fip.Distributed}} {
		got, err := fip.Create(ctx, nb, sb, fip.Spec{IP: netip.MustParseAddr(f.ip), Container: f.ctr.id})
		if err != nil || got.Mode != f.mode || got.LogicalIP.String() != f.ctr.ip6().String() {
			t.Fatalf("fip %s for %s on %s: %+v %v; want %s to %s", f.ip, f.ctr.id, f.ctr.rt.node.Name, got, err, f.mode, f.ctr.ip6())
		}
		whoServer(t, f.ctr.ns, net.JoinHostPort(f.ctr.ip6().String(), "81"))
		if seen, err := whoAmI(out, net.JoinHostPort(f.ip, "81"), 15*time.Second); err != nil || seen != l.External.HostIP6 {
			t.Errorf("%s IPv6 floating IP %s from outside: container saw %q, %v", f.mode, f.ip, seen, err)
		}
		if seen, err := whoAmIBecomes(f.ctr.ns, outSrv6, f.ip, 15*time.Second); err != nil || seen != f.ip {
			t.Errorf("egress of %s with %s floating IP %s: outside saw %q, %v", f.ctr.ip6(), f.mode, f.ip, seen, err)
		}
	}
	// DEL (the node's own writes) removes the IPv6 floating IP.
	if err := a.del(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fip.Get(ctx, nb, netip.MustParseAddr("fd00:198:18:100::91")); !errors.Is(err, fip.ErrNotFound) {
		t.Errorf("IPv6 floating IP of a deleted container: %v", err)
	}
}

// TestGatewayIPv6Failover: the active gateway node n1 dies; IPv6 egress of
// a container on an IPv6-only network on n3 comes back through n2, still
// from the router's external IPv6 address.
func TestGatewayIPv6Failover(t *testing.T) {
	w := gwSetup(t, "g6f")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	specNetwork(t, w.nb, network.Spec{Name: "six", IPv6Subnet: "fd00:198:19:83::/64", Router: "r1"})
	dualGateway(t, w.l, w.nb, w.sb, "r1", "198.18.100.10", "fd00:198:18:100::10")
	srv6 := net.JoinHostPort(w.l.External.HostIP6, "8080")
	whoServer(t, outsideNS(t, w.l), srv6)
	c := newContainer(t, newRuntime(t, w.l.Nodes[2]), confList(t, "six", "1.0.0", nil))
	c.mustAdd(t, ctx)
	gwActive(t, w, "n1", 10*time.Second)
	if seen, err := whoAmI(c.ns, srv6, 20*time.Second); err != nil || seen != "fd00:198:18:100::10" {
		t.Fatalf("IPv6 egress through n1: outside saw %q, %v", seen, err)
	}
	start := time.Now()
	for _, d := range []string{"ovn-controller", "ovs-vswitchd"} {
		if err := w.l.Kill(ctx, "n1", d); err != nil {
			t.Fatal(err)
		}
	}
	seen, err := whoAmI(c.ns, srv6, 30*time.Second)
	if err != nil {
		t.Fatalf("IPv6 egress after n1 died: %v", err)
	}
	t.Logf("IPv6 egress again after %v", time.Since(start).Round(time.Millisecond))
	if seen != "fd00:198:18:100::10" {
		t.Errorf("after failover the outside host saw %s, want fd00:198:18:100::10", seen)
	}
	gwActive(t, w, "n2", 10*time.Second)
}

// TestGatewayIPv6Only: a router whose gateway has only an IPv6 side: a
// container on an IPv6-only network on n3 reaches the outside host over
// IPv6 TCP, seen as the router's external IPv6 address; an IPv4 floating IP
// is refused (the gateway has no IPv4 side).
func TestGatewayIPv6Only(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, six := segName("g6o"), segName("g6n")
	if _, err := router.Create(ctx, nb, r, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = network.DeleteRouter(ctx, nb, r, true)
	})
	specNetwork(t, nb, network.Spec{Name: six, IPv6Subnet: "fd00:198:19:84::/64", Router: r})
	const ext6 = "fd00:198:18:100::84"
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: r, Nodes: l.Gateways, ExternalNet6: netip.MustParsePrefix(l.External.CIDR6),
		ExternalIP6: netip.MustParseAddr(ext6), NextHop6: netip.MustParseAddr(l.External.HostIP6)}); err != nil {
		t.Fatal(err)
	}
	srv := net.JoinHostPort(l.External.HostIP6, "9484")
	whoServer(t, outsideNS(t, l), srv)
	c := newContainer(t, newRuntime(t, l.Nodes[2]), confList(t, six, "1.0.0", nil))
	c.mustAdd(t, ctx)
	if seen, err := whoAmI(c.ns, srv, 20*time.Second); err != nil || seen != ext6 {
		t.Errorf("IPv6 egress through an IPv6-only gateway: outside saw %q, %v; want %s", seen, err, ext6)
	}
	if _, err := fip.Create(ctx, nb, sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.84"), Container: c.id}); !errors.Is(err, fip.ErrFamily) {
		t.Errorf("IPv4 floating IP on an IPv6-only gateway: %v, want ErrFamily", err)
	}
}
