package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestRoutedUnderlay: a lab of 4 nodes on two underlay subnets joined by a
// router namespace whose link to the second underlay has MTU 1400. Geneve
// crosses the router; the lab records 1400 as the deployment's path MTU
// and the CNI gives containers 1400 - 58 = 1342 (not the 1442 their node's
// own link would allow); containers on n1 and n4 exchange 2 MiB of TCP
// both ways and DF pings at 1342; with the link-derived 1442 a DF packet
// over 1342 is lost in the router; diagnose mtu measures the underlay
// path through the router (1400) and reports the limit 1342.
func TestRoutedUnderlay(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 4, Name: uniqueName("ru"), Underlays: 2, WANMTU: 1400, Gateways: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	for i, want := range []string{"198.18.1.11", "198.18.1.12", "198.18.2.13", "198.18.2.14"} {
		if got := l.Nodes[i].EncapIP; got != want {
			t.Errorf("node %s encap IP %s, want %s", l.Nodes[i].Name, got, want)
		}
	}
	nb := cniNB(t, l)
	if got, err := network.PathMTU(ctx, nb); err != nil || got != 1400 {
		t.Fatalf("recorded underlay path MTU = %d, %v; want 1400", got, err)
	}
	cniNetwork(t, nb, "ruweb", "198.19.30.0/24")
	n1, n4 := l.Nodes[0], l.Nodes[3]
	list := confList(t, "ruweb", "1.0.0", nil)
	a := newContainer(t, newRuntime(t, n1), list)
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, n4), list)
	b.mustAdd(t, ctx)
	const want = 1400 - 58
	if got := a.mtu(t); got != want {
		t.Fatalf("container MTU on n1 = %d, want %d (the router path 1400 - 58, not n1's link 1500 - 58)", got, want)
	}
	if got := b.mtu(t); got != want {
		t.Fatalf("container MTU on n4 = %d, want %d", got, want)
	}
	// DF pings at the computed MTU, both ways (ICMP payload = MTU - 28).
	size := fmt.Sprint(want - 28)
	// The first packets may wait for n1's flows of the new peer port under
	// load: up to 15 one-second tries for the first, then at once.
	err = a.ping(ctx, b.ip(), "-M", "do", "-s", size)
	for i := 0; err != nil && i < 2; i++ {
		err = a.ping(ctx, b.ip(), "-M", "do", "-s", size)
	}
	if err != nil {
		t.Fatalf("DF ping at MTU %d from n1 to n4: %v", want, err)
	}
	if err := b.ping(ctx, a.ip(), "-M", "do", "-s", size); err != nil {
		t.Fatalf("DF ping at MTU %d from n4 to n1: %v", want, err)
	}
	for _, dir := range []struct{ srv, cl *container }{{b, a}, {a, b}} {
		if err := tcpTransfer(ctx, dir.srv, dir.cl, 2<<20); err != nil {
			t.Fatalf("TCP 2 MiB %s -> %s: %v", dir.cl.rt.node.Name, dir.srv.rt.node.Name, err)
		}
	}
	// diagnose mtu: the underlay path through the router is measured.
	rep := pathMTU(ctx, t, l, n1, a, b)
	if rep.Underlay == nil || rep.Underlay.Largest != 1400 || rep.Underlay.To != n4.EncapIP {
		t.Fatalf("diagnose mtu underlay path = %+v, want 1400 bytes to %s", rep.Underlay, n4.EncapIP)
	}
	if rep.Limit != want || rep.Check.Status != diagnose.OK || rep.Result.Largest != want {
		t.Fatalf("diagnose mtu: limit %d, largest %d, check %s %q; want limit and largest %d, ok", rep.Limit, rep.Result.Largest, rep.Check.Status, rep.Check.Detail, want)
	}
	t.Logf("diagnose mtu: %s", rep.Check.Detail)
	// What the link alone would give (1442) does not cross the router:
	// a DF packet of 1400 bytes is lost, and diagnose mtu fails.
	setMTU(t, a, 1442)
	if err := nsexec.Command(ctx, a.ns.Path(), nil, "ping", "-n", "-q", "-c", "2", "-W", "1", "-M", "do", "-s", "1372", b.ip().String()).Run(); err == nil {
		t.Fatalf("a 1400-byte DF packet crossed the 1400-MTU router link inside Geneve")
	}
	rep = pathMTU(ctx, t, l, n1, a, b)
	if rep.Check.Status != diagnose.Fail || rep.Result.Largest != want {
		t.Fatalf("diagnose mtu with MTU 1442: %s %q (largest %d); want fail, largest %d", rep.Check.Status, rep.Check.Detail, rep.Result.Largest, want)
	}
	t.Logf("diagnose mtu at 1442: %s", rep.Check.Detail)
	// A node with a smaller path joins later (node join --path-mtu 1380
	// records it): containers attached from then on, on every node, get the
	// smaller MTU; those attached before keep theirs.
	if got, err := network.LowerPathMTU(ctx, nb, 1380); err != nil || got != 1380 {
		t.Fatalf("lower the path MTU to 1380: %d, %v", got, err)
	}
	c := newContainer(t, newRuntime(t, n1), list)
	c.mustAdd(t, ctx)
	if got := c.mtu(t); got != 1380-58 {
		t.Fatalf("container attached after a smaller path joined: MTU %d, want %d", got, 1380-58)
	}
	if got := b.mtu(t); got != want {
		t.Fatalf("container attached before: MTU %d, want it unchanged at %d", got, want)
	}
}

// setMTU changes the container interface's MTU.
func setMTU(t *testing.T, c *container, mtu int) {
	t.Helper()
	err := c.ns.Do(func(ns.NetNS) error {
		lk, err := netlink.LinkByName(c.ifName)
		if err != nil {
			return err
		}
		return netlink.LinkSetMTU(lk, mtu)
	})
	if err != nil {
		t.Fatal(err)
	}
}
