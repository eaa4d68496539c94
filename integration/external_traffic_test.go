package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
)

// whoServer listens on addr inside netns and answers every connection
// with the client address it sees, then closes it. It stops at test end.
func whoServer(t testing.TB, netns ns.NetNS, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
}

// whoAmI dials addr from netns (retrying for up to within: a first packet
// may be lost while a tunnel peer or the next hop is learnt) and returns
// the client address the server (whoServer) saw.
func whoAmI(netns ns.NetNS, addr string, within time.Duration) (string, error) {
	seen, err := dialRead(netns, addr, within)
	if err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(seen)
	return host, err
}

// whoAmIBecomes is whoAmI repeated until the server sees want, for up to
// within: after a NAT change (a floating IP made) a new connection may
// still leave the old way until every chassis has the new flows. It
// returns the last address seen.
func whoAmIBecomes(netns ns.NetNS, addr, want string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		seen, err := whoAmI(netns, addr, time.Until(deadline))
		if (err == nil && seen == want) || time.Now().After(deadline) {
			return seen, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dialRead dials addr from netns until it reads a non-empty answer, for
// up to within, and returns it.
func dialRead(netns ns.NetNS, addr string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		var seen string
		err := netns.Do(func(ns.NetNS) error {
			c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b, err := io.ReadAll(c)
			seen = string(b)
			return err
		})
		if err == nil && seen != "" {
			return seen, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("dial %s: %v (read %q)", addr, err, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cniSB connects to the lab's SB.
func cniSB(t testing.TB, l *lab.Lab) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb
}

// outsideNS opens the lab's outside namespace (closed at test end).
func outsideNS(t testing.TB, l *lab.Lab) ns.NetNS {
	t.Helper()
	if l.External == nil {
		t.Fatalf("lab %s has no external network", l.Name)
	}
	x, err := ns.GetNS(l.External.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return x
}

// TestExternalFIPAndPublished: on the lab's external network, a published
// port (CNI portMappings) and floating IPs (centralized for a container on
// a node without the external network, distributed for one on a gateway
// node) are reached from the outside host over TCP, and the container sees
// the outside host's own address; a container with a floating IP leaves
// from it. trace names the published port; DEL stops the published port.
func TestExternalFIPAndPublished(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if len(l.Nodes) < 3 || !l.IsGateway(l.Nodes[1].Name) || l.IsGateway(l.Nodes[2].Name) {
		t.Fatalf("want gateways n1,n2 and n3 without: %v", l.Gateways)
	}
	n2, n3 := l.Nodes[1], l.Nodes[2]
	extRouter(t, l, nb, sb, "rfip", "fipnet", "198.19.41.0/24", "198.18.100.41")
	out := outsideNS(t, l)
	outSrv := net.JoinHostPort(lab.ExternalHostIP, "9411")
	whoServer(t, out, outSrv)
	list := publishConfList(t, "fipnet")

	// Published: n3 has no external network; the gateway DNATs.
	a := withMappings(newContainer(t, newRuntime(t, n3), list), mapping(8080, 80, "tcp", ""))
	a.mustAdd(t, ctx)
	whoServer(t, a.ns, a.ip().String()+":80")
	seen, err := whoAmI(out, "198.18.100.41:8080", 15*time.Second)
	if err != nil || seen != lab.ExternalHostIP {
		t.Fatalf("published 198.18.100.41:8080 -> %s:80 from outside: container saw %q, %v", a.ip(), seen, err)
	}
	// Egress of a container without floating IP: SNAT to the router's address.
	if seen, err := whoAmI(a.ns, outSrv, 15*time.Second); err != nil || seen != "198.18.100.41" {
		t.Fatalf("egress of %s: outside saw %q, %v; want 198.18.100.41", a.ip(), seen, err)
	}
	res, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: trace.External, To: "198.18.100.41", Proto: "tcp", Port: 8080})
	if err != nil || res.Verdict != trace.Delivered || !strings.HasPrefix(res.External, "published 198.18.100.41:8080 -> ") ||
		!strings.HasSuffix(res.External, ":80 on gateway "+l.Gateways[0]) {
		t.Fatalf("trace external: %+v %v", res, err)
	}

	res, err = trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: a.id, To: lab.ExternalHostIP, Proto: "tcp", Port: 9411})
	if err != nil || res.External != "SNAT to 198.18.100.41 on gateway "+l.Gateways[0] {
		t.Errorf("trace %s -> outside: %+v %v", a.id, res, err)
	} else {
		t.Logf("trace %s -> outside: %s %v: %s", a.id, res.Verdict, res.Hops, res.Reason)
	}
	// diagnose: the gateway is sound.
	rep, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	for _, name := range []string{"router rfip bridge mappings", "router rfip active gateway", "router rfip next hop"} {
		if c := rep.Find(name); c == nil || c.Status != diagnose.OK {
			t.Errorf("diagnose %q: %+v", name, c)
		}
	}
	// Floating IPs: b on n3 (centralized), c on gateway node n2 (distributed).
	b := newContainer(t, newRuntime(t, n3), list)
	b.mustAdd(t, ctx)
	c := newContainer(t, newRuntime(t, n2), list)
	c.mustAdd(t, ctx)
	for _, f := range []struct {
		ip   string
		ctr  *container
		mode string
	}{{"198.18.100.42", b, fip.Centralized}, {"198.18.100.43", c, fip.Distributed}} {
		got, err := fip.Create(ctx, nb, sb, fip.Spec{IP: netip.MustParseAddr(f.ip), Container: f.ctr.id})
		if err != nil || got.Mode != f.mode {
			t.Fatalf("fip %s for %s on %s: %+v %v; want %s", f.ip, f.ctr.id, f.ctr.rt.node.Name, got, err, f.mode)
		}
		whoServer(t, f.ctr.ns, f.ctr.ip().String()+":81")
		if seen, err := whoAmI(out, f.ip+":81", 15*time.Second); err != nil || seen != lab.ExternalHostIP {
			t.Errorf("%s floating IP %s from outside: container saw %q, %v", f.mode, f.ip, seen, err)
		}
		if seen, err := whoAmIBecomes(f.ctr.ns, outSrv, f.ip, 15*time.Second); err != nil || seen != f.ip {
			t.Errorf("egress of %s with %s floating IP %s: outside saw %q, %v", f.ctr.ip(), f.mode, f.ip, seen, err)
		}
		want := "floating IP " + f.ip + " on gateway " + l.Gateways[0]
		if f.mode == fip.Distributed {
			want = "floating IP " + f.ip + " (distributed on node " + f.ctr.rt.node.SystemID + ")"
		}
		if res, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: f.ctr.id, To: lab.ExternalHostIP, Proto: "tcp", Port: 9411}); err != nil || res.External != want {
			t.Errorf("trace %s -> outside: %+v %v; want external %q", f.ctr.id, res, err, want)
		}
	}

	// DEL: the published port and its load balancer go; nothing answers there.
	lspA := portOf(t, nb, a.id)
	if err := a.del(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(publishedLBs(t, nb, lspA)); n != 0 {
		t.Fatalf("%d published ports left after DEL", n)
	}
	if seen, err := whoAmI(out, "198.18.100.41:8080", 2*time.Second); err == nil {
		t.Fatalf("198.18.100.41:8080 still answers after DEL (client seen as %s)", seen)
	}
	// DEL of b removes its floating IP too.
	if err := b.del(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fip.Get(ctx, nb, netip.MustParseAddr("198.18.100.42")); !errors.Is(err, fip.ErrNotFound) {
		t.Fatalf("floating IP of a deleted container: %v", err)
	}
}

// TestPodmanPublish: podman 4.x (CNI backend, the conflist `ovlmgr cni
// config` writes) with `-p 8088:80` on a dual-stack network whose router
// has a dual-stack gateway: the outside host reaches the container at both
// external addresses of the router, port 8088 (podman sends one mapping
// with an empty hostIP); `podman rm` removes the published ports.
func TestPodmanPublish(t *testing.T) {
	l := sharedLab(t)
	env, rootfs := podmanSetup(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw := fmt.Sprintf("pub%d", os.Getpid()%10000)
	// A dual-stack network and gateway: podman's -p is one mapping with an
	// empty hostIP, published on both external addresses.
	extRouterSpec(t, l, nb, sb, "rpod", network.Spec{Name: nw, Subnet: "198.19.242.0/24", IPv6Subnet: "fd00:198:19:242::/64"}, "198.18.100.44")
	dualGateway(t, l, nb, sb, "rpod", "198.18.100.44", "fd00:198:18:100::44")
	n := l.Nodes[2] // no external network here: the gateway DNATs
	writeConfList(t, ctx, n, nw)
	rtRun(t, ctx, n, env, "podman", "import", "--quiet", rootfs, podmanImage)
	ctr := nw + "-web"
	t.Cleanup(func() { _, _ = rtTryRun(context.Background(), n, env, "podman", "rm", "-f", "-t", "0", ctr) })
	rtRun(t, ctx, n, env, "podman", "run", "-d", "--name", ctr, "--network", nw, "-p", "8088:80", podmanImage,
		"sh", "-c", "while true; do echo hello-from-podman | nc -l -p 80; done")
	ps, err := publish.List(ctx, nb, publish.Filter{Network: nw})
	if err != nil || len(ps) != 2 || ps[0].HostPort != 8088 || ps[0].ContainerPort != 80 || ps[0].Address.String() != "198.18.100.44" ||
		ps[1].HostPort != 8088 || ps[1].Address.String() != "fd00:198:18:100::44" || !ps[1].Backend.Is6() {
		t.Fatalf("published ports of %s: %+v %v; want 8088->80 on 198.18.100.44 and [fd00:198:18:100::44]", nw, ps, err)
	}
	out := outsideNS(t, l)
	for _, addr := range []string{"198.18.100.44:8088", "[fd00:198:18:100::44]:8088"} {
		got, err := dialRead(out, addr, 20*time.Second)
		if err != nil || strings.TrimSpace(got) != "hello-from-podman" {
			t.Fatalf("outside -> %s: %q, %v", addr, got, err)
		}
	}
	rtRun(t, ctx, n, env, "podman", "rm", "-f", "-t", "0", ctr)
	if ps, err := publish.List(ctx, nb, publish.Filter{Network: nw}); err != nil || len(ps) != 0 {
		t.Fatalf("after podman rm: %+v %v", ps, err)
	}
	assertNetworkEmpty(t, l, nb, nw)
}

// TestPublishedPolicy: a published port into a default-deny network is
// dropped until a policy allows its clients; the container sees the
// client's own address, so a policy --from the external CIDR matches it.
func TestPublishedPolicy(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	extRouterSpec(t, l, nb, sb, "rpol", network.Spec{Name: "polnet", Subnet: "198.19.44.0/24", Isolation: "default-deny"}, "198.18.100.47")
	out := outsideNS(t, l)
	a := withMappings(newContainer(t, newRuntime(t, l.Nodes[2]), publishConfList(t, "polnet")), mapping(8090, 80, "tcp", ""))
	a.mustAdd(t, ctx)
	whoServer(t, a.ns, a.ip().String()+":80")
	if seen, err := whoAmI(out, "198.18.100.47:8090", 2*time.Second); err == nil {
		t.Fatalf("default-deny network: the published port answered (client seen as %s)", seen)
	}
	if _, err := policy.Create(ctx, nb, policy.Spec{Name: "pol-in", Network: "polnet", Action: "allow", From: []string{lab.ExternalCIDR},
		Proto: "tcp", Port: "80"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = policy.Delete(context.Background(), nb, "pol-in") })
	if seen, err := whoAmI(out, "198.18.100.47:8090", 15*time.Second); err != nil || seen != lab.ExternalHostIP {
		t.Fatalf("allowed from %s: container saw %q, %v", lab.ExternalCIDR, seen, err)
	}
}
