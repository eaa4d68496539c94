package integration

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
)

// TestIPv6Overlay: a dual-stack network and an IPv6-only network, both on
// a router. Containers on different nodes get (CNI 1.0.0 and 0.4.0
// results) their addresses and a default route per family; CHECK passes;
// 1 MiB of TCP crosses nodes over IPv6 on the dual-stack network (and over
// IPv4), on the IPv6-only network (across nodes), and between the two networks through
// the router's IPv6 gateways.
func TestIPv6Overlay(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	if _, err := router.Create(ctx, nb, "v6r", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Delete(context.Background(), nb, "v6r", false, nil) })
	specNetwork(t, nb, network.Spec{Name: "v6dual", Subnet: "198.19.60.0/24", IPv6Subnet: "fd00:198:19:60::/64", Router: "v6r"})
	specNetwork(t, nb, network.Spec{Name: "v6only", IPv6Subnet: "fd00:198:19:61::/64", Router: "v6r"})
	n1, n2 := l.Nodes[0], l.Nodes[1]

	dual1 := newContainer(t, newRuntime(t, n1), confList(t, "v6dual", "1.0.0", nil))
	dual1.mustAdd(t, ctx)
	dual2 := newContainer(t, newRuntime(t, n2), confList(t, "v6dual", "0.4.0", nil))
	dual2.mustAdd(t, ctx)
	only2 := newContainer(t, newRuntime(t, n2), confList(t, "v6only", "1.0.0", nil))
	only2.mustAdd(t, ctx)
	only1 := newContainer(t, newRuntime(t, n1), confList(t, "v6only", "0.4.0", nil))
	only1.mustAdd(t, ctx)

	checkResult := func(c *container, v4 bool, gw4, gw6 string) {
		t.Helper()
		if (c.ip() != nil) != v4 || c.ip6() == nil {
			t.Fatalf("%s result IPs %v; want IPv4 %v and IPv6", c.id, c.result.IPs, v4)
		}
		routes := map[string]string{}
		for _, r := range c.result.Routes {
			routes[r.Dst.String()] = r.GW.String()
		}
		want := map[string]string{"::/0": gw6}
		if v4 {
			want["0.0.0.0/0"] = gw4
		}
		if fmt.Sprint(routes) != fmt.Sprint(want) {
			t.Errorf("%s routes %v; want %v", c.id, routes, want)
		}
		if err := c.rt.cni.CheckNetworkList(ctx, c.list, c.conf); err != nil {
			t.Errorf("CHECK %s: %v", c.id, err)
		}
	}
	checkResult(dual1, true, "198.19.60.1", "fd00:198:19:60::1")
	checkResult(dual2, true, "198.19.60.1", "fd00:198:19:60::1")
	checkResult(only2, false, "", "fd00:198:19:61::1")
	checkResult(only1, false, "", "fd00:198:19:61::1")

	// Requested addresses of either family (the ips capability).
	for _, tc := range []struct {
		net  string
		ips  []string
		v4   bool
		gw4  string
		gw6  string
		want []string
	}{
		{"v6only", []string{"fd00:198:19:61::99/64"}, false, "", "fd00:198:19:61::1", []string{"fd00:198:19:61::99/64"}},
		{"v6dual", []string{"198.19.60.99/24", "fd00:198:19:60::99/64"}, true, "198.19.60.1", "fd00:198:19:60::1", []string{"198.19.60.99/24", "fd00:198:19:60::99/64"}},
	} {
		c := newContainer(t, newRuntime(t, n1), confList(t, tc.net, "1.0.0", nil))
		c.conf.CapabilityArgs = map[string]interface{}{"ips": tc.ips}
		c.mustAdd(t, ctx)
		var got []string
		for _, ipc := range c.result.IPs {
			got = append(got, ipc.Address.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: requested %v, result addresses %v", tc.net, tc.ips, got)
		}
		checkResult(c, tc.v4, tc.gw4, tc.gw6)
		if err := tcpOver(ctx, c, dual1, c.ip6(), 1<<16); err != nil {
			t.Errorf("%s: TCP to the requested IPv6 address: %v", tc.net, err)
		}
	}

	for _, tc := range []struct {
		name    string
		srv, cl *container
		dst     net.IP
	}{
		{"dual-stack IPv6 across nodes", dual2, dual1, dual2.ip6()},
		{"dual-stack IPv4 across nodes", dual2, dual1, dual2.ip()},
		{"IPv6-only network across nodes", only2, only1, only2.ip6()},
		{"IPv6-only across nodes, routed from the dual-stack network", only2, dual1, only2.ip6()},
		{"IPv6-only to dual-stack, same node, routed", dual2, only2, dual2.ip6()},
	} {
		if err := tcpOver(ctx, tc.srv, tc.cl, tc.dst, 1<<20); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// trace on the IPv6-only network needs no --ipv6: FROM has only IPv6.
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, to := range []*container{only2, dual2} {
		tr, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: only1.id, To: to.id, Proto: "tcp", Port: 8080})
		if err != nil {
			t.Fatalf("trace %s -> %s: %v", only1.id, to.id, err)
		}
		if tr.Verdict != trace.Delivered || !strings.Contains(tr.Microflow, "ip6.dst == "+to.ip6().String()) {
			t.Errorf("trace from the IPv6-only network to %s: %s (%s), microflow %s", to.id, tr.Verdict, tr.Reason, tr.Microflow)
		}
	}
	// The kernel sees the static IPv6 default route via ::1; CHECK fails
	// once it is gone, naming it.
	out, err := nsexec.Command(ctx, only2.ns.Path(), nil, "ip", "-6", "route", "show", "default").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "via fd00:198:19:61::1") {
		t.Errorf("IPv6-only container default route: %s %v", out, err)
	}
	if out, err := nsexec.Command(ctx, dual2.ns.Path(), nil, "ip", "-6", "route", "del", "default").CombinedOutput(); err != nil {
		t.Fatalf("remove dual2's IPv6 default route: %v: %s", err, out)
	}
	if err := dual2.rt.cni.CheckNetworkList(ctx, dual2.list, dual2.conf); err == nil || !strings.Contains(err.Error(), "IPv6 default route via fd00:198:19:60::1 missing") {
		t.Errorf("CHECK without the IPv6 default route: %v; want it to name the missing route", err)
	}
}
