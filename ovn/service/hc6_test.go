package service_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestIPv6HealthCheck (real ovsdb-server): an IPv6 service with a health
// check writes ip_port_mappings in ovn-nb(5)'s IPv6 form
// ("[backend]"="port:[source]"), a Load_Balancer_Health_Check whose vip is
// "[VIP]:PORT", and probes from the /64's PREFIX:ffff:ffff:ffff:fffe (not put
// in exclude_ips, which is IPv4 only). An IPv4 health-check service on the
// same dual-stack network keeps its own IPv4 source. A container ADD maps the
// new IPv6 backend, DEL unmaps it. Refused: an IPv6 VIP on a network without
// an IPv6 /64, a backend that is no container port.
func TestIPv6HealthCheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.srv.Run(t, "ovn-nbctl", "set", "logical_switch", "web", `other_config:ipv6_prefix="fd00:198:18::"`)
	e.attach(t, "r1", "web", 0)
	e.port(t, "web", "p1", "c1111111111111111", "198.18.0.11 fd00:198:18::11", map[string]string{"app": "api"})
	exBefore := e.get(t, "logical_switch", "web", "other_config:exclude_ips")
	svc, err := service.Create(ctx, e.nb, service.Spec{Name: "api6", Network: "web", VIP: "[fd00:198:18:ff::80]:80",
		Selector: map[string]string{"app": "api"}, TargetPort: 8080, HealthCheck: "1,1"})
	if err != nil {
		t.Fatal(err)
	}
	const src6 = "fd00:198:18:0:ffff:ffff:ffff:fffe"
	if svc.HCSource != src6 {
		t.Errorf("IPv6 health-check source %q; want %s (the /64's highest address but one)", svc.HCSource, src6)
	}
	if got := e.get(t, "load_balancer", "web/api6", "ip_port_mappings"); got != `{"[fd00:198:18::11]"="p1:[`+src6+`]"}` {
		t.Fatalf("ip_port_mappings = %s; want {\"[fd00:198:18::11]\"=\"p1:[%s]\"}", got, src6)
	}
	if out := e.srv.Run(t, "ovn-nbctl", "--columns=vip", "list", "load_balancer_health_check"); !strings.Contains(out, `"[fd00:198:18:ff::80]:80"`) {
		t.Fatalf("health check row vip: %s; want \"[fd00:198:18:ff::80]:80\"", out)
	}
	if got := e.get(t, "logical_switch", "web", "other_config:exclude_ips"); got != exBefore {
		t.Errorf("exclude_ips %s after an IPv6 health check; want it unchanged (%s): exclude_ips is IPv4 only", got, exBefore)
	}
	// An IPv4 health check on the same network gets an IPv4 source.
	v4, err := service.Create(ctx, e.nb, service.Spec{Name: "api4", Network: "web", VIP: "198.18.0.80:80",
		Selector: map[string]string{"app": "api"}, TargetPort: 8080, HealthCheck: "1,1"})
	if err != nil {
		t.Fatal(err)
	}
	if v4.HCSource != "198.18.0.254" {
		t.Errorf("IPv4 health-check source %q next to an IPv6 one; want 198.18.0.254", v4.HCSource)
	}
	// ADD of a second container: its IPv6 address is mapped in the IPv6
	// service, its IPv4 one in the IPv4 service.
	c := service.Container{Network: "web", Port: "p2", ContainerID: "c2222222222222222",
		IPs: []net.IP{net.ParseIP("198.18.0.12"), net.ParseIP("fd00:198:18::12")}, Labels: map[string]string{"app": "api"}}
	if _, err := service.ContainerAdded(ctx, e.nb, c); err != nil {
		t.Fatal(err)
	}
	want6 := `{"[fd00:198:18::11]"="p1:[` + src6 + `]", "[fd00:198:18::12]"="p2:[` + src6 + `]"}`
	if got := e.get(t, "load_balancer", "web/api6", "ip_port_mappings"); got != want6 {
		t.Errorf("IPv6 ip_port_mappings after ADD = %s; want %s", got, want6)
	}
	if got := e.get(t, "load_balancer", "web/api4", "ip_port_mappings"); got != `{"198.18.0.11"="p1:198.18.0.254", "198.18.0.12"="p2:198.18.0.254"}` {
		t.Errorf("IPv4 ip_port_mappings after ADD = %s", got)
	}
	if err := service.ContainerDeletedHost(ctx, e.nb, c); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "load_balancer", "web/api6", "ip_port_mappings"); got != `{"[fd00:198:18::11]"="p1:[`+src6+`]"}` {
		t.Errorf("IPv6 ip_port_mappings after DEL = %s", got)
	}
	if s, _ := service.Get(ctx, e.nb, "web", "api6"); s == nil || strings.Join(s.Backends, ",") != "[fd00:198:18::11]:8080" {
		t.Errorf("IPv6 backends after DEL: %+v", s)
	}

	// Refusals write nothing.
	e.network(t, "v4only", 1)
	e.attach(t, "r1", "v4only", 1)
	e.port(t, "v4only", "q1", "c3333333333333333", "198.18.1.11", map[string]string{"app": "x"})
	before := len(e.lbs(t))
	for _, c := range []struct {
		spec service.Spec
		want []string
	}{
		{service.Spec{Name: "bad", Network: "v4only", VIP: "[fd00:198:18:ff::90]:80", Backends: []string{"[fd00:198:18::11]:80"}, HealthCheck: "1,1"},
			[]string{"health check", "IPv6", `network "v4only" has no IPv6 subnet`}},
		{service.Spec{Name: "bad", Network: "web", VIP: "[fd00:198:18:ff::90]:80", Backends: []string{"[fd00:198:18::99]:80"}, HealthCheck: "1,1"},
			[]string{"not a container port"}},
		{service.Spec{Name: "bad", Network: "web", VIP: "[fd00:198:18:ff::90]:80", Backends: []string{"198.18.0.11:80"}, HealthCheck: "1,1"},
			[]string{"not of the VIP's family"}},
		{service.Spec{Name: "bad", Network: "web", VIP: "[" + src6 + "]:80", Backends: []string{"[fd00:198:18::11]:80"}, HealthCheck: "1,1"},
			[]string{"health-check source"}},
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
	if err := service.Delete(ctx, e.nb, "web", "api6"); err != nil {
		t.Fatal(err)
	}
	if out := e.srv.Run(t, "ovn-nbctl", "--columns=vip", "list", "load_balancer_health_check"); strings.Contains(out, "fd00") {
		t.Errorf("IPv6 health check row left after delete: %s", out)
	}
}
