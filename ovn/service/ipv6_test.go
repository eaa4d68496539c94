package service_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestIPv6Service (real ovsdb-server): on a dual-stack network an IPv6 VIP
// balances over its backends' IPv6 addresses, named by container name
// (resolved to the IPv6 address, not the first one) or selected by label,
// and its DNS name holds the IPv6 VIP (AAAA). Mixed families are refused
// with the reason and nothing is written: an IPv4 VIP with IPv6 backends,
// an IPv6 VIP with a container that has no IPv6 address.
func TestIPv6Service(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.srv.Run(t, "ovn-nbctl", "set", "logical_switch", "web", `other_config:ipv6_prefix="fd00:198:18::"`)
	e.attach(t, "r1", "web", 0)
	for _, p := range []struct{ lsp, ctr, name, v4, v6 string }{
		{"p1", "c1111111111111111", "web-1", "198.18.0.11", "fd00:198:18::11"},
		{"p2", "c2222222222222222", "web-2", "198.18.0.12", "fd00:198:18::12"},
		{"p3", "c3333333333333333", "old-3", "198.18.0.13", ""},
	} {
		e.port(t, "web", p.lsp, p.ctr, strings.TrimSpace(p.v4+" "+p.v6), map[string]string{"app": p.name[:3]})
		ips := []net.IP{net.ParseIP(p.v4)}
		if p.v6 != "" {
			ips = append(ips, net.ParseIP(p.v6))
		}
		if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: p.name, IPs: ips}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "[fd00:198:18:ff::80]:80", Backends: []string{"web-1:8080", "web-2:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	lbs := e.lbs(t)
	if len(lbs) != 1 || lbs[0].Vips["[fd00:198:18:ff::80]:80"] != "[fd00:198:18::11]:8080,[fd00:198:18::12]:8080" {
		t.Fatalf("load balancers %+v; want vips [fd00:198:18:ff::80]:80 -> [fd00:198:18::11]:8080,[fd00:198:18::12]:8080 (service %+v)", lbs, svc)
	}
	recs, err := dns.Records(ctx, e.nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := recs["api.web.ovl"]; got != "fd00:198:18:ff::80" {
		t.Errorf("DNS api.web.ovl = %q; want the IPv6 VIP fd00:198:18:ff::80 (AAAA)", got)
	}
	sel, err := service.Create(ctx, e.nb, service.Spec{Name: "sel", Network: "web", VIP: "[fd00:198:18:ff::81]:80", Selector: map[string]string{"app": "web"}, TargetPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sel.Backends, ","); got != "[fd00:198:18::11]:8080,[fd00:198:18::12]:8080" {
		t.Errorf("selector backends %q; want both containers' IPv6 addresses", got)
	}

	before := len(e.lbs(t))
	recsBefore, _ := dns.Records(ctx, e.nb, "web")
	for _, c := range []struct {
		spec service.Spec
		want []string
	}{
		{service.Spec{Name: "mix", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"[fd00:198:18::11]:8080"}},
			[]string{`backend fd00:198:18::11`, "not of the VIP's family", "198.18.0.60", "second service"}},
		{service.Spec{Name: "mix", Network: "web", VIP: "[fd00:198:18:ff::82]:80", Backends: []string{"198.18.0.11:8080"}},
			[]string{"not of the VIP's family"}},
		{service.Spec{Name: "mix", Network: "web", VIP: "[fd00:198:18:ff::82]:80", Backends: []string{"old-3:8080"}},
			[]string{`container "old-3" has no IPv6 address`, "the VIP is IPv6"}},
	} {
		_, err := service.Create(ctx, e.nb, c.spec)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Create(%+v) = %v; want an error containing %q", c.spec, err, w)
			}
		}
	}
	if n := len(e.lbs(t)); n != before {
		t.Errorf("refused creates wrote load balancers: %d, had %d", n, before)
	}
	if recs, _ := dns.Records(ctx, e.nb, "web"); len(recs) != len(recsBefore) {
		t.Errorf("refused creates changed DNS records: %v, had %v", recs, recsBefore)
	}
}
