package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestCNICrossNode: containers on all three nodes of one network reach each
// other (ping, 1 MiB TCP, DF ping at full MTU), over every spec version.
func TestCNICrossNode(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			name := fmt.Sprintf("cx%d-%d", os.Getpid()%10000, i)
			cniNetwork(t, nb, name, fmt.Sprintf("198.19.%d.0/24", 200+i))
			var ctrs []*container
			for _, node := range l.Nodes[:3] {
				c := newContainer(t, newRuntime(t, node), confList(t, name, ver, nil))
				c.mustAdd(t, ctx)
				ctrs = append(ctrs, c)
			}
			for i, a := range ctrs {
				b := ctrs[(i+1)%len(ctrs)]
				if err := a.crossPing(t, ctx, l, b); err != nil {
					t.Fatal(err)
				}
			}
			a, b := ctrs[0], ctrs[2]
			if err := tcpTransfer(ctx, b, a, 1<<20+12345); err != nil {
				t.Fatalf("TCP %s -> %s: %v", a.id, b.id, err)
			}
			mtu := a.mtu(t)
			if want := l.UnderlayMTU - 58; mtu != want {
				t.Errorf("container MTU %d; want underlay %d - 58 = %d", mtu, l.UnderlayMTU, want)
			}
			if err := a.ping(ctx, b.ip(), "-M", "do", "-s", fmt.Sprint(mtu-28)); err != nil {
				t.Fatalf("DF ping at full MTU %d: %v", mtu, err)
			}
		})
	}
}

// TestCNIDualStack: on a dual-stack network each container also gets OVN's
// IPv6 address (in the result and on its interface) and two containers on
// different nodes reach each other over IPv6; CHECK passes; over every version.
func TestCNIDualStack(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("c6%d", os.Getpid()%10000)
	ctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	_, err := network.Create(ctx2, nb, network.Spec{Name: name, Subnet: "198.19.225.0/24", IPv6Subnet: "fd00:198:19:225::/64"})
	cancel2()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := network.Delete(ctx, nb, name, true); err != nil {
			t.Errorf("cleanup network %s: %v", name, err)
		}
	})
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			var ctrs []*container
			for _, node := range []*lab.Node{l.Nodes[0], l.Nodes[2]} {
				rt := newRuntime(t, node)
				c := newContainer(t, rt, confList(t, name, ver, nil))
				c.mustAdd(t, ctx)
				ctrs = append(ctrs, c)
				var v6 net.IP
				for _, ipc := range c.result.IPs {
					if ipc.Address.IP.To4() == nil && strings.HasPrefix(ipc.Address.String(), "fd00:198:19:225:") && strings.HasSuffix(ipc.Address.String(), "/64") {
						v6 = ipc.Address.IP
					}
				}
				if v6 == nil {
					t.Fatalf("result IPs %v: want an fd00:198:19:225::/64 address", c.result.IPs)
				}
				if atLeast(ver, "0.4.0") {
					if err := rt.cni.CheckNetworkList(ctx, c.list, c.conf); err != nil {
						t.Errorf("CHECK: %v", err)
					}
				}
			}
			var dst net.IP
			for _, ipc := range ctrs[1].result.IPs {
				if ipc.Address.IP.To4() == nil {
					dst = ipc.Address.IP
				}
			}
			if err := ctrs[0].ping(ctx, dst); err != nil {
				t.Fatalf("IPv6 across nodes: %v", err)
			}
			if err := ctrs[0].ping(ctx, ctrs[1].ip()); err != nil {
				t.Fatalf("IPv4 across nodes: %v", err)
			}
		})
	}
}
