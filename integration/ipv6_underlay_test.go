package integration

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
	"github.com/ovlmgr/ovlmgr/ovs/nodetrace"
)

// TestIPv6Underlay: a 2-node lab whose Geneve tunnels run over IPv6
// (lab up --underlay-ipv6): chassis register their IPv6 encap address;
// containers on the two nodes get the MTU of Geneve over IPv6 (1500 - 78
// = 1422, 20 less than over IPv4) and exchange 1 MiB of TCP over IPv6 on
// a dual-stack network and on an IPv6-only network, and over IPv4;
// diagnose mtu over IPv6 finds 1422 crossing, the limit 1500 - 78 and the
// 1500-byte IPv6 underlay path.
func TestIPv6Underlay(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("u6"), UnderlayIPv6: true, Gateways: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	chs, err := chassis.List(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if len(ch.Encaps) != 1 || !netip.MustParseAddr(ch.Encaps[0].IP).Is6() {
			t.Errorf("chassis %s encaps %v; want one IPv6 Geneve endpoint", ch.Name, ch.Encaps)
		}
	}
	// diagnose on the IPv6 underlay: no failing check (encap address on
	// br-phy, tunnels, MTUs against 78 bytes of overhead).
	if r := diagnoseLab(ctx, t, l); len(r.Failed(diagnose.Fail)) > 0 {
		t.Errorf("diagnose on an IPv6 underlay lab:\n%s", reportText(r))
	}
	nb := cniNB(t, l)
	specNetwork(t, nb, network.Spec{Name: "u6dual", Subnet: "198.19.64.0/24", IPv6Subnet: "fd00:198:19:64::/64"})
	specNetwork(t, nb, network.Spec{Name: "u6only", IPv6Subnet: "fd00:198:19:65::/64"})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for _, net := range []string{"u6dual", "u6only"} {
		list := confList(t, net, "1.0.0", nil)
		a := newContainer(t, newRuntime(t, n1), list)
		a.mustAdd(t, ctx)
		b := newContainer(t, newRuntime(t, n2), list)
		b.mustAdd(t, ctx)
		if got := b.mtu(t); got != 1500-78 {
			t.Errorf("%s: container MTU %d; want 1422 (1500 - 78, Geneve over IPv6)", net, got)
		}
		if err := tcpOver(ctx, b, a, b.ip6(), 1<<20); err != nil {
			t.Errorf("%s: TCP over IPv6 across nodes on an IPv6 underlay: %v", net, err)
		}
		if b.ip() != nil {
			if err := tcpOver(ctx, b, a, b.ip(), 1<<20); err != nil {
				t.Errorf("%s: TCP over IPv4 across nodes on an IPv6 underlay: %v", net, err)
			}
		}
		// trace --on-node over IPv6: delivered logically, and n1's OVS sends
		// it into the Geneve tunnel to n2's IPv6 encap address.
		tr, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: a.id, To: b.ip6().String(), Proto: "tcp", Port: 8080})
		if err != nil {
			t.Fatalf("%s: trace: %v", net, err)
		}
		if tr.Verdict != trace.Delivered || !strings.Contains(tr.Microflow, "ip6.dst == "+b.ip6().String()) {
			t.Errorf("%s: trace over IPv6: %s (%s), microflow %s", net, tr.Verdict, tr.Reason, tr.Microflow)
		}
		ph, err := nodetrace.OnNode(ctx, sb, tr, nodetrace.NodeAccess{OVS: n1.OVS, RunDir: n1.Dir})
		if err != nil {
			t.Fatalf("%s: trace --on-node: %v", net, err)
		}
		if ph.Datapath.TunnelRemote != n2.EncapIP6 || ph.RemoteNode != n2.SystemID || ph.Lost || ph.Datapath.Dropped {
			t.Errorf("%s: trace --on-node over IPv6: %s (tunnel to %q, node %q); want the tunnel to %s (%s)", net, ph.Summary, ph.Datapath.TunnelRemote, ph.RemoteNode, n2.EncapIP6, n2.SystemID)
		}
		// diagnose mtu over IPv6: container packets up to 1422 cross, the
		// limit is 1500 - 78, and the underlay path is measured over IPv6.
		rep, err := nodediag.PathMTU(ctx, nodediag.Target{OVS: n1.OVS, RunDir: n1.Dir, OVNRunDir: n1.Dir, NetNS: n1.NetNSPath}, nb, sb, a.id, b.ip6().String())
		if err != nil {
			t.Fatalf("%s: diagnose mtu: %v", net, err)
		}
		if rep.Check.Status != diagnose.OK || rep.Result.Largest != 1422 || rep.Limit != 1422 ||
			rep.Underlay == nil || rep.Underlay.Largest != 1500 || rep.Underlay.Overhead != 78 || rep.Underlay.To != n2.EncapIP6 {
			t.Errorf("%s: diagnose mtu over IPv6: check %s %q, largest %+v, limit %d, underlay %+v; want ok, 1422, 1422, 1500 bytes to %s with overhead 78",
				net, rep.Check.Status, rep.Check.Detail, rep.Result, rep.Limit, rep.Underlay, n2.EncapIP6)
		}
	}
}
