package integration

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestIPv6WithGateway: IPv6 networks on a router with a gateway do not
// break it. A dual-stack network's container reaches the outside host over
// IPv4, seen as the router's external address (SNAT); an IPv6-only network
// attached to the same router gets no snat row (IPv6 is routed, never
// NATed); IPv6 between the two networks is still routed.
func TestIPv6WithGateway(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := segName("g6r")
	dual, only := segName("g6d"), segName("g6o")
	extRouterSpec(t, l, nb, sb, r, network.Spec{Name: dual, Subnet: "198.19.71.0/24", IPv6Subnet: "fd00:198:19:71::/64"}, "198.18.100.71")
	specNetwork(t, nb, network.Spec{Name: only, IPv6Subnet: "fd00:198:19:72::/64", Router: r})
	g, err := gateway.Get(ctx, nb, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.SNAT) != 1 || g.SNAT[0].Network != dual || g.SNAT[0].LogicalIP != "198.19.71.0/24" {
		t.Errorf("snat rows %+v; want one, for %s's 198.19.71.0/24 (none for the IPv6-only network)", g.SNAT, dual)
	}
	a := newContainer(t, newRuntime(t, l.Nodes[1]), confList(t, dual, "1.0.0", nil))
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, l.Nodes[2]), confList(t, only, "1.0.0", nil))
	b.mustAdd(t, ctx)
	srv := net.JoinHostPort(l.External.HostIP, "8171")
	gwEchoServer(t, l.External, srv)
	src, err := gwDialRetry(a, srv, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if src != "198.18.100.71" {
		t.Errorf("outside host saw %s; want the router's external address 198.18.100.71 (SNAT)", src)
	}
	if err := tcpOver(ctx, b, a, b.ip6(), 1<<20); err != nil {
		t.Errorf("IPv6 between the networks of a router with a gateway: %v", err)
	}
}
