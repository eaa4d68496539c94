package service_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

type env struct {
	srv *ovsdbtest.Server
	nb  client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	nb, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	return &env{srv: srv, nb: nb}
}

// network creates an ovlmgr-owned switch as ovn/network does, subnet 198.18.N.0/24.
func (e *env) network(t *testing.T, name string, n int) {
	t.Helper()
	e.srv.Run(t, "ovn-nbctl", "ls-add", name, "--", "set", "logical_switch", name,
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=network`,
		fmt.Sprintf(`external_ids:"ovlmgr.io/name"=%s`, name),
		fmt.Sprintf(`external_ids:"ovlmgr.io/gateway"="198.18.%d.1"`, n), fmt.Sprintf("other_config:subnet=198.18.%d.0/24", n), fmt.Sprintf(`other_config:exclude_ips="198.18.%d.1"`, n))
}

// port creates a container port as ovn/port does (static address, labels).
func (e *env) port(t *testing.T, network, lsp, container, ip string, labels map[string]string) {
	t.Helper()
	args := []string{"lsp-add", network, lsp, "--", "lsp-set-addresses", lsp, "0a:58:00:00:00:01 " + ip,
		"--", "set", "logical_switch_port", lsp,
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=port`,
		fmt.Sprintf(`external_ids:"ovlmgr.io/network"=%s`, network),
		fmt.Sprintf(`external_ids:"ovlmgr.io/container"=%s`, container)}
	for k, v := range labels {
		args = append(args, fmt.Sprintf(`external_ids:"ovlmgr.io/label.%s"=%s`, k, v))
	}
	e.srv.Run(t, "ovn-nbctl", args...)
}

func (e *env) attach(t *testing.T, r, network string, n int) {
	t.Helper()
	e.srv.Run(t, "ovn-nbctl", "--may-exist", "lr-add", r)
	lrp := r + "-" + network
	e.srv.Run(t, "ovn-nbctl", "lrp-add", r, lrp, fmt.Sprintf("02:00:00:00:00:%02x", n), fmt.Sprintf("198.18.%d.1/24", n))
	lsp := network + "-" + r
	e.srv.Run(t, "ovn-nbctl", "lsp-add", network, lsp, "--", "lsp-set-type", lsp, "router",
		"--", "lsp-set-addresses", lsp, "router", "--", "lsp-set-options", lsp, "router-port="+lrp)
}

func (e *env) lbs(t *testing.T) []*nbdb.LoadBalancer {
	t.Helper()
	var rows []*nbdb.LoadBalancer
	if err := dbconn.Select(context.Background(), e.nb, &nbdb.LoadBalancer{}, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func (e *env) get(t *testing.T, table, record, column string) string {
	t.Helper()
	return strings.TrimSpace(e.srv.Run(t, "ovn-nbctl", "--if-exists", "get", table, record, column))
}

func TestCreateShowDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0)
	e.port(t, "web", "p1", "c1111111111111111", "198.18.0.11", map[string]string{"app": "api"})
	e.port(t, "web", "p2", "c2222222222222222", "198.18.0.12", map[string]string{"app": "api"})
	e.port(t, "web", "p3", "c3333333333333333", "198.18.0.13", map[string]string{"app": "db"})
	if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "db1", IPs: []net.IP{net.ParseIP("198.18.0.13")}}); err != nil {
		t.Fatal(err)
	}
	exclBefore := e.get(t, "logical_switch", "web", "other_config:exclude_ips")
	svc, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "198.18.0.100:80",
		Backends: []string{"db1:5432", "198.18.5.5:80"}, Selector: map[string]string{"app": "api"}, TargetPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"198.18.0.11:8080", "198.18.0.12:8080", "198.18.0.13:5432", "198.18.5.5:80"}
	if fmt.Sprint(svc.Backends) != fmt.Sprint(want) || svc.VIP != "198.18.0.100:80/tcp" || svc.FQDN != "api.web.ovl" ||
		fmt.Sprint(svc.Switches) != "[web]" || fmt.Sprint(svc.Routers) != "[r1]" {
		t.Fatalf("service = %+v", svc)
	}
	if got := e.get(t, "load_balancer", "web/api", "protocol"); got != "tcp" {
		t.Fatalf("protocol = %q", got)
	}
	if ips, _ := dns.Resolve(ctx, e.nb, "web", "api"); len(ips) != 1 || ips[0].String() != "198.18.0.100" {
		t.Fatalf("api resolves to %v", ips)
	}
	if got := e.get(t, "logical_switch", "web", "other_config:exclude_ips"); got != `"198.18.0.1 198.18.0.100"` {
		t.Fatalf("exclude_ips = %s; want the VIP reserved from IPAM", got)
	}
	list, err := service.List(ctx, e.nb, "")
	if err != nil || len(list) != 1 || list[0].Name != "api" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "198.18.0.101:80", Backends: []string{"198.18.0.11:1"}}); !errors.Is(err, service.ErrExists) {
		t.Fatalf("second create: %v; want ErrExists", err)
	}
	// UDP on the same VIP and port is another service.
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "dnsish", Network: "web", VIP: "198.18.0.100:80/udp", Backends: []string{"198.18.0.11:53"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "dnsish"} {
		if err := service.Delete(ctx, e.nb, "web", n); err != nil {
			t.Fatal(err)
		}
	}
	if rows := e.lbs(t); len(rows) != 0 {
		t.Fatalf("load balancers after delete: %v", rows)
	}
	if got := e.get(t, "logical_router", "r1", "load_balancer"); got != "[]" {
		t.Fatalf("router load_balancer after delete = %s", got)
	}
	if got := e.get(t, "logical_switch", "web", "load_balancer"); got != "[]" {
		t.Fatalf("switch load_balancer after delete = %s", got)
	}
	if got := e.get(t, "logical_switch", "web", "other_config:exclude_ips"); got != exclBefore {
		t.Fatalf("exclude_ips after delete = %s; want %s", got, exclBefore)
	}
	if ips, _ := dns.Resolve(ctx, e.nb, "web", "api"); len(ips) != 0 {
		t.Fatalf("api still resolves to %v", ips)
	}
	if err := service.Delete(ctx, e.nb, "web", "api"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("delete twice: %v; want ErrNotFound", err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0) // router port 198.18.0.1
	e.port(t, "web", "p1", "c1111111111111111", "198.18.0.11", nil)
	e.network(t, "flat", 1)
	if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "taken", IPs: []net.IP{net.ParseIP("198.18.0.11")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "used", Network: "web", VIP: "198.18.0.50:80", Backends: []string{"198.18.0.11:80"}}); err != nil {
		t.Fatal(err)
	}
	lbsBefore := len(e.lbs(t))
	recsBefore, _ := dns.Records(ctx, e.nb, "web")
	swBefore := e.srv.Run(t, "ovn-nbctl", "list", "logical_switch", "web")
	cases := []struct {
		spec service.Spec
		want string
	}{
		{service.Spec{Name: "s", Network: "nope", VIP: "198.18.0.60:80", Backends: []string{"198.18.0.11:80"}}, `network "nope": network not found`},
		{service.Spec{Name: "s", Network: "flat", VIP: "198.18.1.60:80", Backends: []string{"198.18.1.11:80"}}, "network is on no router"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.11:80", Backends: []string{"198.18.0.11:80"}}, "VIP in use: address of container port p1"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.1:80", Backends: []string{"198.18.0.11:80"}}, `VIP in use: the gateway of network "web"`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.50:80", Backends: []string{"198.18.0.11:80"}}, `VIP in use by service "used"`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"ghost:80"}}, `backend not found: no container named "ghost" in network "web"`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:0", Backends: []string{"198.18.0.11:80"}}, `vip "198.18.0.60:0": port "0": allowed are 1-65535`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"198.18.0.11:99999"}}, `backend "198.18.0.11:99999": port "99999": allowed are 1-65535`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80/sctp", Backends: []string{"198.18.0.11:80"}}, `protocol "sctp": allowed are tcp, udp`},
		{service.Spec{Name: "s", Network: "web", VIP: "web:80", Backends: []string{"198.18.0.11:80"}}, `"web" is not an IP address`},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80"}, "no backends"},
		{service.Spec{Name: "Bad_Name", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"198.18.0.11:80"}}, "one DNS label"},
		{service.Spec{Name: "taken", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"198.18.0.11:80"}}, "DNS name taken.web.ovl: name already in use"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"198.18.0.11:80"}, HealthCheck: "5"}, "health check \"5\": want INTERVAL,TIMEOUT"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"198.18.9.9:80"}, HealthCheck: "5,2"}, "not a container port"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.255:80", Backends: []string{"198.18.0.11:80"}}, "broadcast"},
		{service.Spec{Name: "s", Network: "web", VIP: "198.18.0.60:80", Backends: []string{"[2001:db8::1]:80"}}, "not of the VIP's family"},
	}
	for _, c := range cases {
		_, err := service.Create(ctx, e.nb, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%+v) error = %v; want it to contain %q", c.spec, err, c.want)
		}
	}
	if n := len(e.lbs(t)); n != lbsBefore {
		t.Errorf("bad input wrote load balancers: %d, had %d", n, lbsBefore)
	}
	if recs, _ := dns.Records(ctx, e.nb, "web"); fmt.Sprint(recs) != fmt.Sprint(recsBefore) {
		t.Errorf("bad input changed DNS records: %v, had %v", recs, recsBefore)
	}
	if sw := e.srv.Run(t, "ovn-nbctl", "list", "logical_switch", "web"); sw != swBefore {
		t.Errorf("bad input changed the switch:\n%s\nhad\n%s", sw, swBefore)
	}
}

func TestSyncPortSelector(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0)
	e.port(t, "web", "p1", "c1", "198.18.0.11", map[string]string{"app": "api"})
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "198.18.7.1:80",
		Backends: []string{"198.18.0.20:80"}, Selector: map[string]string{"app": "api"}}); err != nil {
		t.Fatal(err)
	}
	backends := func() string {
		s, err := service.Get(ctx, e.nb, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(s.Backends, ",")
	}
	if got := backends(); got != "198.18.0.11:80,198.18.0.20:80" {
		t.Fatalf("backends = %s", got)
	}
	// ADD of a matching container, repeated: added once.
	for i := 0; i < 2; i++ {
		if err := service.SyncPort(ctx, e.nb, service.Port{Network: "web", Name: "p2", IP: net.ParseIP("198.18.0.12"), Labels: map[string]string{"app": "api", "x": "y"}}, true); err != nil {
			t.Fatal(err)
		}
	}
	// ADD of a non-matching one: not added.
	if err := service.SyncPort(ctx, e.nb, service.Port{Network: "web", Name: "p3", IP: net.ParseIP("198.18.0.13"), Labels: map[string]string{"app": "db"}}, true); err != nil {
		t.Fatal(err)
	}
	if got := backends(); got != "198.18.0.11:80,198.18.0.12:80,198.18.0.20:80" {
		t.Fatalf("backends after ADDs = %s", got)
	}
	// DEL removes selected and static backends of that address.
	for _, ip := range []string{"198.18.0.11", "198.18.0.20", "198.18.0.20"} {
		if err := service.SyncPort(ctx, e.nb, service.Port{Network: "web", IP: net.ParseIP(ip)}, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := backends(); got != "198.18.0.12:80" {
		t.Fatalf("backends after DELs = %s", got)
	}
	// Many concurrent ADDs (guarded read-modify-write): none lost.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = service.SyncPort(ctx, e.nb, service.Port{Network: "web", IP: net.ParseIP(fmt.Sprintf("198.18.0.%d", 100+i)), Labels: map[string]string{"app": "api"}}, true)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(backends(), ","); got != 20 {
		t.Fatalf("backends after 20 concurrent ADDs: %s", backends())
	}
	// A network without services: nothing to do, no error.
	e.network(t, "quiet", 1)
	if err := service.SyncPort(ctx, e.nb, service.Port{Network: "quiet", IP: net.ParseIP("198.18.1.5")}, true); err != nil {
		t.Fatal(err)
	}
}

func TestRouterAttachAndHealthCheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 1)
	e.network(t, "db", 2)
	e.network(t, "other", 3)
	e.attach(t, "r1", "web", 1)
	e.attach(t, "r1", "db", 2)
	e.port(t, "db", "pdb1", "cdb1", "198.18.2.11", map[string]string{"app": "pg"})
	svc, err := service.Create(ctx, e.nb, service.Spec{Name: "pg", Network: "db", VIP: "198.18.2.100:5432",
		Selector: map[string]string{"app": "pg"}, HealthCheck: "5,2"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(svc.Switches) != "[db web]" || fmt.Sprint(svc.Routers) != "[r1]" {
		t.Fatalf("attached to switches %v routers %v; want [db web] and [r1]", svc.Switches, svc.Routers)
	}
	if svc.HCSource != "198.18.2.254" || svc.HealthCheck == nil || svc.HealthCheck.Interval != 5 {
		t.Fatalf("health check %+v source %s", svc.HealthCheck, svc.HCSource)
	}
	if got := e.get(t, "load_balancer", "db/pg", "ip_port_mappings"); got != `{"198.18.2.11"="pdb1:198.18.2.254"}` {
		t.Fatalf("ip_port_mappings = %s", got)
	}
	if got := e.get(t, "logical_switch", "db", "other_config:exclude_ips"); got != `"198.18.2.1 198.18.2.100 198.18.2.254"` {
		t.Fatalf("exclude_ips = %s", got)
	}
	if out := e.srv.Run(t, "ovn-nbctl", "--columns=vip,options", "list", "load_balancer_health_check"); !strings.Contains(out, "198.18.2.100:5432") || !strings.Contains(out, `interval="5"`) {
		t.Fatalf("health check row: %s", out)
	}
	if err := service.SyncPort(ctx, e.nb, service.Port{Network: "db", Name: "pdb2", IP: net.ParseIP("198.18.2.12"), Labels: map[string]string{"app": "pg"}}, true); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "load_balancer", "db/pg", "ip_port_mappings"); !strings.Contains(got, `"198.18.2.12"="pdb2:198.18.2.254"`) {
		t.Fatalf("ip_port_mappings after ADD = %s", got)
	}
	// "other" joins r1 later: Sync attaches the service there too.
	e.attach(t, "r1", "other", 3)
	if err := service.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	if s, _ := service.Get(ctx, e.nb, "db", "pg"); fmt.Sprint(s.Switches) != "[db other web]" {
		t.Fatalf("after sync: switches %v", s.Switches)
	}
	e.srv.Run(t, "ovn-nbctl", "lsp-del", "web-r1", "--", "lrp-del", "r1-web")
	if err := service.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	if s, _ := service.Get(ctx, e.nb, "db", "pg"); fmt.Sprint(s.Switches) != "[db other]" {
		t.Fatalf("after detaching web: switches %v", s.Switches)
	}
	if err := service.Delete(ctx, e.nb, "db", "pg"); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "logical_switch", "db", "other_config:exclude_ips"); got != `"198.18.2.1"` {
		t.Fatalf("exclude_ips after delete = %s", got)
	}
	if out := strings.TrimSpace(e.srv.Run(t, "ovn-nbctl", "list", "load_balancer_health_check")); out != "" {
		t.Fatalf("health check rows left: %s", out)
	}
}

func TestContainerAddedDeleted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0)
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "198.18.9.1:80",
		Selector: map[string]string{"app": "api"}, TargetPort: 8080}); err != nil {
		t.Fatal(err)
	}
	c := service.Container{Network: "web", Port: "p1", ContainerID: "abcdef0123456789", Aliases: []string{"Front"},
		PodName: "pod-1", IPs: []net.IP{net.ParseIP("198.18.0.21")}, Labels: map[string]string{"app": "api"}}
	reg, err := service.ContainerAdded(ctx, e.nb, c)
	if err != nil {
		t.Fatal(err)
	}
	if reg.FQDN != "front.web.ovl" || fmt.Sprint(reg.Nameservers) != "[198.18.0.1]" || fmt.Sprint(reg.Search) != "[web.ovl ovl]" {
		t.Fatalf("registration = %+v", reg)
	}
	if s, _ := service.Get(ctx, e.nb, "web", "api"); fmt.Sprint(s.Backends) != "[198.18.0.21:8080]" {
		t.Fatalf("backends = %v", s.Backends)
	}
	// Without aliases the pod name is used, then the container ID.
	c2 := c
	c2.Aliases, c2.IPs, c2.Labels = nil, []net.IP{net.ParseIP("198.18.0.22")}, nil
	if reg, err := service.ContainerAdded(ctx, e.nb, c2); err != nil || reg.FQDN != "pod-1.web.ovl" {
		t.Fatalf("pod name: %+v, %v", reg, err)
	}
	for i := 0; i < 2; i++ {
		if err := service.ContainerDeleted(ctx, e.nb, "web", c.IPs); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := service.Get(ctx, e.nb, "web", "api"); len(s.Backends) != 0 {
		t.Fatalf("backends after DEL = %v", s.Backends)
	}
	if ips, _ := dns.Resolve(ctx, e.nb, "web", "front"); len(ips) != 0 {
		t.Fatalf("front still resolves: %v", ips)
	}
	if err := service.ContainerDeleted(ctx, e.nb, "gone", c.IPs); err != nil {
		t.Fatalf("DEL on a deleted network: %v", err)
	}
}

func TestConcurrentCreateSameVIP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = service.Create(ctx, e.nb, service.Spec{Name: fmt.Sprintf("s%d", i), Network: "web",
				VIP: "198.18.0.50:80", Backends: []string{"198.18.0.11:80"}})
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, service.ErrVIPInUse):
			t.Errorf("loser error = %v; want VIP in use", err)
		}
	}
	if ok != 1 || len(e.lbs(t)) != 1 {
		t.Fatalf("%d creates of one VIP succeeded, %d load balancers; want exactly 1", ok, len(e.lbs(t)))
	}
	if got := e.get(t, "logical_switch", "web", "other_config:exclude_ips"); got != `"198.18.0.1 198.18.0.50"` {
		t.Fatalf("exclude_ips = %s", got)
	}
}

// A port still waiting for IPAM is guarded: the create commits only if its
// address is still unassigned, and the VIP is then kept out of IPAM.
func TestCreateWithPendingIPAMPort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", 0)
	e.attach(t, "r1", "web", 0)
	e.srv.Run(t, "ovn-nbctl", "lsp-add", "web", "pending", "--", "lsp-set-addresses", "pending", "0a:58:00:00:00:99 dynamic",
		"--", "set", "logical_switch_port", "pending", `external_ids:"ovlmgr.io/network"=web`)
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "api", Network: "web", VIP: "198.18.0.2:80", Backends: []string{"198.18.0.11:80"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "logical_switch", "web", "other_config:exclude_ips"); got != `"198.18.0.1 198.18.0.2"` {
		t.Fatalf("exclude_ips = %s", got)
	}
	// Once IPAM (here: by hand, as ovn-northd would) hands out an address, a VIP on it is refused.
	e.srv.Run(t, "ovn-nbctl", "set", "logical_switch_port", "pending", `dynamic_addresses="0a:58:00:00:00:99 198.18.0.3"`)
	if _, err := service.Create(ctx, e.nb, service.Spec{Name: "two", Network: "web", VIP: "198.18.0.3:80", Backends: []string{"198.18.0.11:80"}}); !errors.Is(err, service.ErrVIPInUse) {
		t.Fatalf("VIP on an IPAM address: %v; want VIP in use", err)
	}
}
