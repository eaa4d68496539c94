package policy_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// tnet is a network of the enforcement test with one container port.
type tnet struct {
	name, subnet, gw, mode string
	port, mac, ip          string
}

// tracer answers "does this packet reach its destination port?" with
// ovn-trace on the logical flows northd computed from our NB rows.
type tracer struct {
	t    *testing.T
	nd   *northd
	nets map[string]tnet
}

// reaches reports whether a TCP/UDP/ICMP packet from the port of network
// from reaches the port of network to. proto is "tcp:PORT", "udp:PORT" or
// "icmp"; ct is the conntrack state ovn-trace assumes ("new" or "est,rpl").
func (tr *tracer) reaches(from, to, proto, ct string, mutate ...func(src *tnet)) bool {
	tr.t.Helper()
	s, d := tr.nets[from], tr.nets[to]
	for _, m := range mutate {
		m(&s)
	}
	rmac := router.MAC("r", router.Net{Name: from, Gateway: netip.MustParseAddr(tr.nets[from].gw)})
	l4 := "icmp4 && icmp4.type == 8"
	if p, port, ok := strings.Cut(proto, ":"); ok {
		l4 = fmt.Sprintf("%s && %s.src == 40000 && %s.dst == %s", p, p, p, port)
	}
	flow := fmt.Sprintf(`inport == %q && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s && ip.ttl == 64 && %s`,
		tr.nets[from].port, s.mac, rmac, s.ip, d.ip, l4)
	out := tr.nd.trace(tr.t, ct, from, flow)
	return strings.Contains(out, fmt.Sprintf("output(%q)", d.port))
}

// TestEnforcement checks what OVN makes of our rows: northd turns them into
// logical flows, ovn-trace evaluates packets against them (no ovn-controller
// needed). It covers isolation, allow/deny, precedence, replies, removal
// and anti-spoofing by port security.
func TestEnforcement(t *testing.T) {
	srv, c := nb(t)
	nd := startNorthd(t, srv)
	ctx := context.Background()
	if _, err := router.Create(ctx, c, "r", nil); err != nil {
		t.Fatal(err)
	}
	nets := map[string]tnet{
		"a": {"a", "198.18.1.0/24", "198.18.1.1", "", "a1", "0a:00:00:00:01:0a", "198.18.1.10"},
		"b": {"b", "198.18.3.0/24", "198.18.3.1", "", "b1", "0a:00:00:00:03:0a", "198.18.3.10"},
		"t": {"t", "198.18.2.0/24", "198.18.2.1", policy.DefaultDeny, "t1", "0a:00:00:00:02:0a", "198.18.2.10"},
	}
	for _, n := range []string{"a", "b", "t"} {
		tn := nets[n]
		if _, err := network.Create(ctx, c, network.Spec{Name: tn.name, Subnet: tn.subnet, Gateway: tn.gw, Isolation: tn.mode}); err != nil {
			t.Fatal(err)
		}
		if err := network.Attach(ctx, c, n, "r"); err != nil {
			t.Fatal(err)
		}
		addPort(t, c, n, tn.port, tn.mac, tn.ip)
	}
	tr := &tracer{t: t, nd: nd, nets: nets}
	expect := func(step, from, to, proto, ct string, want bool, mutate ...func(*tnet)) {
		t.Helper()
		if got := tr.reaches(from, to, proto, ct, mutate...); got != want {
			t.Errorf("%s: %s -> %s %s (ct %s): reaches = %v, want %v", step, from, to, proto, ct, got, want)
		}
	}
	create := func(s policy.Spec) {
		t.Helper()
		if _, err := policy.Create(ctx, c, s); err != nil {
			t.Fatal(err)
		}
		nd.sync(t)
	}

	nd.sync(t)
	expect("router, no policy", "a", "b", "tcp:80", "new", true)
	expect("router, no policy", "b", "a", "icmp", "new", true)
	expect("default-deny, no policy", "a", "t", "tcp:8080", "new", false)
	expect("default-deny, no policy", "a", "t", "icmp", "new", false)
	expect("default-deny: own connections out", "t", "a", "tcp:80", "new", true)
	expect("default-deny: replies in", "a", "t", "tcp:80", "est,rpl", true)

	create(policy.Spec{Name: "web", Network: "t", Action: policy.Allow, From: []string{"a"}, Proto: "tcp", Port: "8080", Priority: 100})
	expect("allow a tcp/8080", "a", "t", "tcp:8080", "new", true)
	expect("allow a tcp/8080", "a", "t", "tcp:8081", "new", false)
	expect("allow a tcp/8080", "a", "t", "udp:8080", "new", false)
	expect("allow a tcp/8080", "b", "t", "tcp:8080", "new", false)
	expect("allow a tcp/8080: replies out", "t", "a", "tcp:8080", "est,rpl", true)

	// Precedence: at equal priority deny wins; a higher priority allow wins.
	create(policy.Spec{Name: "range-allow", Network: "t", Action: policy.Allow, From: []string{"198.18.3.0/24"}, Proto: "tcp", Port: "9000-9010", Priority: 100})
	expect("allow CIDR tcp/9000-9010", "b", "t", "tcp:9005", "new", true)
	expect("allow CIDR tcp/9000-9010", "b", "t", "tcp:9011", "new", false)
	create(policy.Spec{Name: "range-deny", Network: "t", Action: policy.Deny, From: []string{"any"}, Proto: "tcp", Port: "9005", Priority: 100})
	expect("deny beats allow at equal priority", "b", "t", "tcp:9005", "new", false)
	expect("deny beats allow at equal priority", "b", "t", "tcp:9004", "new", true)
	create(policy.Spec{Name: "range-override", Network: "t", Action: policy.Allow, From: []string{"b"}, Proto: "tcp", Port: "9005", Priority: 101})
	expect("higher priority allow beats deny", "b", "t", "tcp:9005", "new", true)

	// A deny in a default-allow network blocks just what it names.
	create(policy.Spec{Name: "no-ssh", Network: "a", Action: policy.Deny, From: []string{"b"}, Proto: "tcp", Port: "22"})
	expect("deny in default-allow", "b", "a", "tcp:22", "new", false)
	expect("deny in default-allow", "b", "a", "tcp:23", "new", true)
	expect("deny in default-allow", "t", "a", "tcp:22", "new", true)

	// Deleting the allow closes it again.
	if err := policy.Delete(ctx, c, "web"); err != nil {
		t.Fatal(err)
	}
	nd.sync(t)
	expect("allow deleted", "a", "t", "tcp:8080", "new", false)

	// Isolation off and on again.
	if err := policy.SetIsolation(ctx, c, "t", policy.DefaultAllow); err != nil {
		t.Fatal(err)
	}
	nd.sync(t)
	expect("default-allow", "a", "t", "tcp:8080", "new", true)
	if err := policy.SetIsolation(ctx, c, "t", policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	nd.sync(t)
	expect("default-deny again", "a", "t", "tcp:8080", "new", false)

	// Anti-spoofing: port security drops a forged source IP or MAC.
	expect("honest", "a", "b", "tcp:80", "new", true)
	expect("forged source IP", "a", "b", "tcp:80", "new", false, func(s *tnet) { s.ip = "198.18.1.99" })
	expect("forged source MAC", "a", "b", "tcp:80", "new", false, func(s *tnet) { s.mac = "0a:00:00:00:01:99" })
	expect("forged IP of a neighbour", "a", "b", "tcp:80", "new", false, func(s *tnet) { s.ip = "198.18.3.20" })
}
