package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/vishvananda/netlink"
)

// gwWorld is a 3-node lab (gateways n1, n2; n3 is not on the external
// network) with router r1, network web on it, a gateway on n1 then n2, a
// TCP server on the outside host that answers with the client address it
// sees, and a container on n3.
type gwWorld struct {
	l      *lab.Lab
	nb, sb client.Client
	ctr    *container
	srv    string // outside host's server address
}

func gwSetup(t testing.TB, name string) *gwWorld {
	t.Helper()
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 3, Name: uniqueName(name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if l.External == nil || strings.Join(l.Gateways, ",") != "n1,n2" {
		t.Fatalf("lab external %+v gateways %v, want the default n1,n2", l.External, l.Gateways)
	}
	w := &gwWorld{l: l, nb: cniNB(t, l)}
	w.sb, err = dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.sb.Close)
	if _, err := router.Create(ctx, w.nb, "r1", nil); err != nil {
		t.Fatal(err)
	}
	specNetwork(t, w.nb, network.Spec{Name: "web", Subnet: "198.19.0.0/24", Router: "r1"})
	if _, err := gateway.Set(ctx, w.nb, w.sb, gwSpec()); err != nil {
		t.Fatal(err)
	}
	w.srv = net.JoinHostPort(l.External.HostIP, "8080")
	gwEchoServer(t, l.External, w.srv)
	w.ctr = newContainer(t, newRuntime(t, l.Nodes[2]), confList(t, "web", "1.0.0", nil))
	w.ctr.mustAdd(t, ctx)
	return w
}

func gwSpec() gateway.Spec {
	return gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix(lab.ExternalCIDR), ExternalIP: netip.MustParseAddr("198.18.100.10"),
		NextHop: netip.MustParseAddr(lab.ExternalHostIP), Nodes: []string{"n1", "n2"}}
}

// gwEchoServer listens on addr in the outside namespace and writes each
// client's address back.
func gwEchoServer(t testing.TB, x *lab.External, addr string) {
	t.Helper()
	var ln net.Listener
	err := x.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s outside: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, c.RemoteAddr().String())
			}()
		}
	}()
}

// gwDial connects once from the container to addr and returns the source
// address the server saw.
func gwDial(c *container, addr string, timeout time.Duration) (string, error) {
	var seen string
	err := c.ns.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(conn)
		seen = string(b)
		return err
	})
	if err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(seen)
	return host, err
}

// gwDialRetry retries gwDial until it works or within has passed.
func gwDialRetry(c *container, addr string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		src, err := gwDial(c, addr, 500*time.Millisecond)
		if err == nil {
			return src, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("dial %s from the container for %v: %w", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gwActive waits until the gateway's chassisredirect port is bound to want.
func gwActive(t testing.TB, w *gwWorld, want string, within time.Duration) {
	t.Helper()
	g, err := gateway.Get(context.Background(), w.nb, "r1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for {
		got, err := gateway.Active(context.Background(), w.sb, g)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("active gateway %q (%v), want %s within %v", got, err, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGatewayEgress: a container on n3 (not a gateway node) reaches the
// outside host over TCP through the active gateway n1; the outside host sees
// the router's external IP as the source (SNAT). The gateway's
// chassisredirect port is bound to n1, the first node.
func TestGatewayEgress(t *testing.T) {
	w := gwSetup(t, "gwe")
	gwActive(t, w, "n1", 10*time.Second)
	src, err := gwDialRetry(w.ctr, w.srv, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if src != "198.18.100.10" {
		t.Errorf("outside host saw source %s, want the router's external IP 198.18.100.10", src)
	}
	// Unset removes the way out: the dial fails again.
	if err := gateway.Unset(context.Background(), w.nb, "r1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if src, err := gwDial(w.ctr, w.srv, 700*time.Millisecond); err == nil {
		t.Errorf("after unset the container still reaches the outside host (source %s)", src)
	}
}

// TestGatewayFailover: the active gateway node n1 dies (its ovs-vswitchd and
// ovn-controller are killed); the standby n2 takes the chassisredirect port
// and egress works again, still from the external IP.
func TestGatewayFailover(t *testing.T) {
	w := gwSetup(t, "gwf")
	gwActive(t, w, "n1", 10*time.Second)
	if _, err := gwDialRetry(w.ctr, w.srv, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx := context.Background()
	for _, d := range []string{"ovn-controller", "ovs-vswitchd"} {
		if err := w.l.Kill(ctx, "n1", d); err != nil {
			t.Fatal(err)
		}
	}
	src, err := gwDialRetry(w.ctr, w.srv, 30*time.Second)
	if err != nil {
		t.Fatalf("after n1 died: %v", err)
	}
	t.Logf("egress again after %v", time.Since(start).Round(time.Millisecond))
	if src != "198.18.100.10" {
		t.Errorf("after failover the outside host saw %s, want 198.18.100.10", src)
	}
	gwActive(t, w, "n2", 10*time.Second)
}

// TestGatewayBadInput: an unknown node, an external IP outside the
// external net or inside an overlay subnet, a next hop outside the
// external net: each a FieldError naming the field, and the router keeps
// its gateway exactly as it was.
func TestGatewayBadInput(t *testing.T) {
	l := sharedLab(t)
	ctx := context.Background()
	nb := cniNB(t, l)
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	r := "gwbad"
	if _, err := router.Create(ctx, nb, r, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = network.DeleteRouter(context.Background(), nb, r, true) })
	specNetwork(t, nb, network.Spec{Name: "gwbadnet", Subnet: "198.19.77.0/24", Router: r})
	good := gwSpec()
	good.Router = r
	if _, err := gateway.Set(ctx, nb, sb, good); err != nil {
		t.Fatal(err)
	}
	before, err := gateway.Get(ctx, nb, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		edit  func(*gateway.Spec)
		is    error
	}{
		{"nodes", func(s *gateway.Spec) { s.Nodes = []string{"n1", "n42"} }, gateway.ErrUnknownNode},
		{"external ip", func(s *gateway.Spec) { s.ExternalIP = netip.MustParseAddr("198.18.0.50") }, nil},
		{"external ip", func(s *gateway.Spec) {
			s.ExternalNet = netip.MustParsePrefix("198.19.77.0/24")
			s.ExternalIP = netip.MustParseAddr("198.19.77.9")
			s.NextHop = netip.MustParseAddr("198.19.77.1")
		}, nil},
		{"next hop", func(s *gateway.Spec) { s.NextHop = netip.MustParseAddr("198.18.0.1") }, nil},
	} {
		s := good
		s.Nodes = []string{"n2"} // a valid change that must not land
		c.edit(&s)
		_, err := gateway.Set(ctx, nb, sb, s)
		var fe *names.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("Set %+v: %v, want a FieldError on %q", s, err, c.field)
			continue
		}
		after, err := gateway.Get(ctx, nb, r)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("bad input (%v) changed the gateway:\n%+v\nwas\n%+v", fe, after, before)
		}
	}
}

// TestGatewayRoutedPolicy: a --no-snat network (routed only, default-deny)
// behind the gateway. The outside host routes its subnet via the router's
// external IP. Egress keeps the container's own address; traffic from
// outside is subject to the network's isolation: refused until a policy
// allows the external network (--from 198.18.100.0/24), and the container
// then sees the outside host's real address.
func TestGatewayRoutedPolicy(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("gwp")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	nb := cniNB(t, l)
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if _, err := router.Create(ctx, nb, "r1", nil); err != nil {
		t.Fatal(err)
	}
	specNetwork(t, nb, network.Spec{Name: "app", Subnet: "198.19.5.0/24", Router: "r1", Isolation: policy.DefaultDeny})
	s := gwSpec()
	s.NoSNAT = []string{"app"}
	g, err := gateway.Set(ctx, nb, sb, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.SNAT) != 0 {
		t.Errorf("snat rows %+v for a no-snat network", g.SNAT)
	}
	err = l.External.Do(func() error {
		_, dst, _ := net.ParseCIDR("198.19.5.0/24")
		return netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("198.18.100.10")})
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := net.JoinHostPort(l.External.HostIP, "8080")
	gwEchoServer(t, l.External, srv)
	ctr := newContainer(t, newRuntime(t, l.Nodes[1]), confList(t, "app", "1.0.0", nil))
	ctr.mustAdd(t, ctx)

	src, err := gwDialRetry(ctr, srv, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if src != ctr.ip().String() {
		t.Errorf("outside host saw %s, want the container's own address %s (no SNAT)", src, ctr.ip())
	}

	// From outside: refused by default-deny, allowed by a policy on the external network.
	in := net.JoinHostPort(ctr.ip().String(), "8081")
	var ln net.Listener
	if err := ctr.ns.Do(func(ns.NetNS) error { ln, err = net.Listen("tcp4", in); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
	fromOutside := func(timeout time.Duration) (string, error) {
		var seen string
		err := l.External.Do(func() error {
			c, err := net.DialTimeout("tcp4", in, timeout)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b, err := io.ReadAll(c)
			seen = string(b)
			return err
		})
		host, _, _ := net.SplitHostPort(seen)
		return host, err
	}
	if seen, err := fromOutside(time.Second); err == nil {
		t.Errorf("default-deny network reached from outside without a policy (it saw %s)", seen)
	}
	if _, err := policy.Create(ctx, nb, policy.Spec{Name: "from-external", Network: "app", Action: "allow",
		From: []string{lab.ExternalCIDR}, Proto: "tcp", Port: "8081"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = policy.Delete(context.Background(), nb, "from-external") })
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := fromOutside(500 * time.Millisecond)
		if err == nil {
			if seen != l.External.HostIP {
				t.Errorf("container saw %s, want the outside host %s", seen, l.External.HostIP)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outside host still refused 10s after the policy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
