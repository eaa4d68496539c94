package integration

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
)

// dualServer6 accepts on c's IPv4 and IPv6 addresses, port, and echoes
// (one listener per family: Go decides once per process whether "[::]"
// takes IPv4 too, possibly in another namespace).
func dualServer6(t testing.TB, c *container, port int) {
	t.Helper()
	for _, ip := range []net.IP{c.ip(), c.ip6()} {
		serveTCP(t, c, ip, port, func(conn net.Conn) {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(conn, io.LimitReader(conn, 64))
		})
	}
}

// TestIPv6Policies: dual-stack networks web, other and a default-deny
// app on one router. Nothing reaches app over either family; an allow of
// tcp/8080 from web admits web over IPv4 and IPv6 (neighbour discovery
// keeps working under default-deny) and nothing else over either family
// (8081, other's containers, ping6); an allow of tcp/8081 from other's
// IPv6 address (a /128 CIDR) admits other over IPv6 only.
func TestIPv6Policies(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("p6r")
	segRouter(t, nb, r)
	web, other, app := segName("p6w"), segName("p6o"), segName("p6a")
	specNetwork(t, nb, network.Spec{Name: web, Subnet: "198.18.70.0/24", IPv6Subnet: "fd00:198:18:70::/64", Router: r})
	specNetwork(t, nb, network.Spec{Name: other, Subnet: "198.18.71.0/24", IPv6Subnet: "fd00:198:18:71::/64", Router: r})
	specNetwork(t, nb, network.Spec{Name: app, Subnet: "198.18.72.0/24", IPv6Subnet: "fd00:198:18:72::/64", Router: r, Isolation: policy.DefaultDeny})
	w, o, a := segCtr(t, ctx, n1, web), segCtr(t, ctx, n2, other), segCtr(t, ctx, n3, app)
	for _, c := range []*container{w, o, a} {
		dualServer6(t, c, 8080)
		dualServer6(t, c, 8081)
	}
	// Control paths (open throughout): w -> o over both families.
	for _, dst := range []net.IP{o.ip(), o.ip6()} {
		if err := eventually(w, dst, 8080, 10*time.Second); err != nil {
			t.Fatalf("control w -> o %s:8080: %v", dst, err)
		}
	}
	for _, dst := range []net.IP{a.ip(), a.ip6()} {
		if err := closedNow(w, dst, 8080, o.ip6(), 8080); err != nil {
			t.Errorf("default-deny, no policy: %v", err)
		}
	}
	segPolicy(t, nb, policy.Spec{Name: segName("p6web"), Network: app, Action: policy.Allow, From: []string{web}, Proto: "tcp", Port: "8080", Priority: 100})
	for _, dst := range []net.IP{a.ip(), a.ip6()} {
		if err := eventually(w, dst, 8080, 10*time.Second); err != nil {
			t.Errorf("allow tcp/8080 from web: w -> app %s:8080: %v", dst, err)
		}
		if err := closedNow(w, dst, 8081, o.ip6(), 8080); err != nil {
			t.Errorf("allow tcp/8080 from web: 8081 open too: %v", err)
		}
		if err := closedNow(o, dst, 8080, w.ip6(), 8080); err != nil {
			t.Errorf("allow from web: other's container let in: %v", err)
		}
	}
	// trace explains both over IPv6: tcp/8080 delivered, tcp/8081 dropped
	// by app's default-deny.
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for port, want := range map[int]string{8080: trace.Delivered, 8081: trace.Dropped} {
		res, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: w.id, To: a.ip6().String(), Proto: "tcp", Port: port})
		if err != nil {
			t.Fatalf("trace w -> app [%s]:%d: %v", a.ip6(), port, err)
		}
		if res.Verdict != want || !strings.Contains(res.Microflow, "ip6.dst == "+a.ip6().String()) || !res.SrcIP.Is6() {
			t.Errorf("trace w -> app [%s]:%d: %s (%s), microflow %s; want %s over IPv6", a.ip6(), port, res.Verdict, res.Reason, res.Microflow, want)
		}
		if want == trace.Dropped && (res.Policy == nil || res.Policy.Kind != "isolation") {
			t.Errorf("trace w -> app [%s]:8081: policy %+v; want app's default-deny", a.ip6(), res.Policy)
		}
	}
	if err := w.ping(ctx, o.ip6()); err != nil {
		t.Fatalf("control ping6 w -> o: %v", err)
	}
	if err := w.ping(ctx, a.ip6()); err == nil {
		t.Errorf("allow tcp/8080: w's ping6 to app got through")
	}
	// An IPv6 CIDR source admits that address over IPv6 only.
	o6 := o.ip6().String() + "/128"
	segPolicy(t, nb, policy.Spec{Name: segName("p6cidr"), Network: app, Action: policy.Allow, From: []string{o6}, Proto: "tcp", Port: "8081", Priority: 100})
	if err := eventually(o, a.ip6(), 8081, 10*time.Second); err != nil {
		t.Errorf("allow tcp/8081 from %s: o -> app over IPv6: %v", o6, err)
	}
	if err := closedNow(o, a.ip(), 8081, w.ip(), 8080); err != nil {
		t.Errorf("allow from %s: o -> app over IPv4 let in: %v", o6, err)
	}
}
