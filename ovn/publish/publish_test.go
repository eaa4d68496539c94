package publish_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// setup: router r1 with gateway 198.18.100.10/24 and network web
// (ports a 198.19.0.5, b 198.19.0.6), network lone on no router (port c).
func setup(t *testing.T) (client.Client, map[string]*ovnport.Port) {
	t.Helper()
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	sb, err := dbconn.ConnectSB(ctx, sbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	if _, err := router.Create(ctx, nb, "r1", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []network.Spec{{Name: "web", Subnet: "198.19.0.0/24", Router: "r1"}, {Name: "lone", Subnet: "198.19.1.0/24"}} {
		if _, err := network.Create(ctx, nb, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	ports := map[string]*ovnport.Port{}
	for _, p := range []struct{ net, ctr, ip string }{{"web", "a", "198.19.0.5"}, {"web", "b", "198.19.0.6"}, {"lone", "c", "198.19.1.5"}} {
		got, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: p.net, Node: "n1", Container: p.ctr, IfName: "eth0",
			IP: netip.MustParseAddr(p.ip), Subnet: netip.MustParsePrefix(p.ip + "/24").Masked()})
		if err != nil {
			t.Fatal(err)
		}
		ports[p.ctr] = got
	}
	return nb, ports
}

func spec(p *ovnport.Port, m ...publish.Mapping) publish.Spec {
	return publish.Spec{Network: p.Network, Port: p.Name, Container: p.Container, IfName: p.IfName, Node: p.Node, IP: p.IP, IP6: p.IPv6, Mappings: m}
}

func lbs(t *testing.T, nb client.Client) []*nbdb.LoadBalancer {
	t.Helper()
	rows, err := dbops.SelectRows[nbdb.LoadBalancer](context.Background(), nb, []ovsdb.Condition{dbops.Owned(owner.KindPublished, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func routerLBs(t *testing.T, nb client.Client) int {
	t.Helper()
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](context.Background(), nb, []ovsdb.Condition{dbops.NameIs("r1")})
	if err != nil || len(lrs) != 1 {
		t.Fatalf("router r1: %v", err)
	}
	return len(lrs[0].LoadBalancer)
}

func TestPublishListRelease(t *testing.T) {
	nb, ports := setup(t)
	ctx := context.Background()
	got, err := publish.Publish(ctx, nb, spec(ports["a"], publish.Mapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		publish.Mapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "0.0.0.0"}, // a duplicate: once
		publish.Mapping{HostPort: 5353, ContainerPort: 53, Protocol: "UDP", HostIP: "198.18.100.10"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("published %v", got)
	}
	rows := lbs(t, nb)
	if len(rows) != 2 || routerLBs(t, nb) != 2 {
		t.Fatalf("%d load balancers, %d on the router", len(rows), routerLBs(t, nb))
	}
	vips := map[string]string{}
	for _, r := range rows {
		for k, v := range r.Vips {
			vips[k+"/"+*r.Protocol] = v
		}
	}
	if vips["198.18.100.10:8080/tcp"] != "198.19.0.5:80" || vips["198.18.100.10:5353/udp"] != "198.19.0.5:53" {
		t.Fatalf("vips %v", vips)
	}
	l, err := publish.List(ctx, nb, publish.Filter{Port: ports["a"].Name})
	if err != nil || len(l) != 2 || l[0].String() != "198.18.100.10:5353/udp -> 198.19.0.5:53" || l[1].Container != "a" {
		t.Fatalf("list %v %v", l, err)
	}
	// Same port, other protocol: fine for another container.
	if _, err := publish.Publish(ctx, nb, spec(ports["b"], publish.Mapping{HostPort: 8080, ContainerPort: 80, Protocol: "udp"})); err != nil {
		t.Fatal(err)
	}
	gone, err := publish.ReleasePort(ctx, nb, ports["a"].Name)
	if err != nil || len(gone) != 2 {
		t.Fatalf("release %v %v", gone, err)
	}
	if n := len(lbs(t, nb)); n != 1 || routerLBs(t, nb) != 1 {
		t.Fatalf("after release: %d load balancers, %d on the router", n, routerLBs(t, nb))
	}
	if gone, err := publish.ReleasePort(ctx, nb, ports["a"].Name); err != nil || len(gone) != 0 {
		t.Fatalf("second release %v %v", gone, err)
	}
	// Released: b may have 8080/tcp now.
	if _, err := publish.Publish(ctx, nb, spec(ports["b"], publish.Mapping{HostPort: 8080, ContainerPort: 80})); err != nil {
		t.Fatal(err)
	}
}

func TestPublishRefused(t *testing.T) {
	nb, ports := setup(t)
	ctx := context.Background()
	if _, err := publish.Publish(ctx, nb, spec(ports["a"], publish.Mapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		port string
		m    []publish.Mapping
		is   error
		says string
	}{
		{"taken", "b", []publish.Mapping{{HostPort: 9000, ContainerPort: 90}, {HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}, publish.ErrConflict,
			"198.18.100.10:8080/tcp is published already, by container a "},
		{"other hostIP", "b", []publish.Mapping{{HostPort: 9000, ContainerPort: 90, HostIP: "127.0.0.1"}}, publish.ErrRefused,
			"external address 198.18.100.10 only"},
		{"no router", "c", []publish.Mapping{{HostPort: 9000, ContainerPort: 90}}, publish.ErrRefused, `network "lone" is on no router`},
		{"bad port", "b", []publish.Mapping{{HostPort: 0, ContainerPort: 90}}, publish.ErrRefused, "hostPort 0: allowed 1..65535"},
		{"bad protocol", "b", []publish.Mapping{{HostPort: 9000, ContainerPort: 90, Protocol: "icmp"}}, publish.ErrRefused, `protocol "icmp"`},
		{"one host port twice", "b", []publish.Mapping{{HostPort: 9000, ContainerPort: 90}, {HostPort: 9000, ContainerPort: 91}}, publish.ErrRefused,
			"also mapped to container port 90"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := publish.Publish(ctx, nb, spec(ports[c.port], c.m...))
			var fe *names.FieldError
			if !errors.Is(err, c.is) || !errors.As(err, &fe) || fe.Field != "portMappings" || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v; want %v saying %q", err, c.is, c.says)
			}
			if n := len(lbs(t, nb)); n != 1 || routerLBs(t, nb) != 1 {
				t.Fatalf("after a refused publish: %d load balancers, %d on the router", n, routerLBs(t, nb))
			}
		})
	}
}

// TestPublishReclaimsStale: a published port whose container port is gone
// without DEL (net delete --force, a port removed by hand) does not block
// its host port: the next Publish of it replaces the stale row.
func TestPublishReclaimsStale(t *testing.T) {
	nb, ports := setup(t)
	ctx := context.Background()
	if _, err := publish.Publish(ctx, nb, spec(ports["a"], publish.Mapping{HostPort: 8080, ContainerPort: 80})); err != nil {
		t.Fatal(err)
	}
	if err := ovnport.Delete(ctx, nb, ports["a"].Name); err != nil {
		t.Fatal(err)
	}
	got, err := publish.Publish(ctx, nb, spec(ports["b"], publish.Mapping{HostPort: 8080, ContainerPort: 80}))
	if err != nil || len(got) != 1 {
		t.Fatalf("publish over a stale holder: %v %v", got, err)
	}
	rows := lbs(t, nb)
	if len(rows) != 1 || rows[0].ExternalIDs[owner.KeyPort] != ports["b"].Name || routerLBs(t, nb) != 1 {
		t.Fatalf("after reclaim: %d load balancers (%v), %d on the router", len(rows), rows, routerLBs(t, nb))
	}
}

// TestPublishConcurrent: many containers publishing one host port at once:
// exactly one wins, the others get ErrConflict, one row stays.
func TestPublishConcurrent(t *testing.T) {
	nb, ports := setup(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	for _, c := range []string{"a", "b"} {
		go func(p *ovnport.Port) {
			_, err := publish.Publish(ctx, nb, spec(p, publish.Mapping{HostPort: 7000, ContainerPort: 70}))
			errs <- err
		}(ports[c])
	}
	var ok, conflicts int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, publish.ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != 1 || conflicts != 1 || len(lbs(t, nb)) != 1 || routerLBs(t, nb) != 1 {
		t.Fatalf("%d won, %d conflicts, %d rows", ok, conflicts, len(lbs(t, nb)))
	}
}

// TestIPv6: on a dual-stack gateway an empty hostIP (podman's -p) or "::"
// publishes on every family both the gateway and the container have, the
// IPv6 one as "[IP]:PORT" -> "[container IPv6]:PORT"; "0.0.0.0" or an
// external address picks one family; a family the container lacks is
// refused, naming it; conflicts are per family.
func TestIPv6(t *testing.T) {
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	sb, err := dbconn.ConnectSB(ctx, sbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	if _, err := router.Create(ctx, nb, "r6", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []network.Spec{{Name: "dual", Subnet: "198.19.3.0/24", IPv6Subnet: "fd00:198:19:3::/64", Router: "r6"},
		{Name: "six", IPv6Subnet: "fd00:198:19:4::/64", Router: "r6"}} {
		if _, err := network.Create(ctx, nb, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: "r6", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"},
		ExternalNet6: netip.MustParsePrefix("fd00:198:18:100::/64"), ExternalIP6: netip.MustParseAddr("fd00:198:18:100::10"),
		NextHop6: netip.MustParseAddr("fd00:198:18:100::1")}); err != nil {
		t.Fatal(err)
	}
	d, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "dual", Node: "n1", Container: "d", IfName: "eth0", IP: netip.MustParseAddr("198.19.3.5"),
		Subnet: netip.MustParsePrefix("198.19.3.0/24"), Subnet6: netip.MustParsePrefix("fd00:198:19:3::/64"), IP6: netip.MustParseAddr("fd00:198:19:3::5")})
	if err != nil {
		t.Fatal(err)
	}
	s6, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "six", Node: "n1", Container: "s", IfName: "eth0",
		Subnet6: netip.MustParsePrefix("fd00:198:19:4::/64"), IP6: netip.MustParseAddr("fd00:198:19:4::5")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := publish.Publish(ctx, nb, spec(d, publish.Mapping{HostPort: 8080, ContainerPort: 80}))
	if err != nil {
		t.Fatal(err)
	}
	var strs []string
	for _, p := range got {
		strs = append(strs, p.String())
	}
	if want := "198.18.100.10:8080/tcp -> 198.19.3.5:80, [fd00:198:18:100::10]:8080/tcp -> [fd00:198:19:3::5]:80"; strings.Join(strs, ", ") != want {
		t.Errorf("published %q, want %q", strings.Join(strs, ", "), want)
	}
	lbs, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, []ovsdb.Condition{dbops.NameIs("published:[fd00:198:18:100::10]:8080/tcp")})
	if err != nil || len(lbs) != 1 || lbs[0].Vips["[fd00:198:18:100::10]:8080"] != "[fd00:198:19:3::5]:80" {
		t.Fatalf("IPv6 load balancer: %v %+v", err, lbs)
	}
	before := len(publishedAll(t, nb))
	for _, c := range []struct {
		p    *ovnport.Port
		m    publish.Mapping
		want error
		text string
	}{
		{s6, publish.Mapping{HostPort: 9090, ContainerPort: 90, HostIP: "0.0.0.0"}, publish.ErrRefused, `the container has no IPv4 address on network "six"`},
		{d, publish.Mapping{HostPort: 9090, ContainerPort: 90, HostIP: "fd00:198:18:100::99"}, publish.ErrRefused, "external address 198.18.100.10 or fd00:198:18:100::10 only"},
		{s6, publish.Mapping{HostPort: 8080, ContainerPort: 80}, publish.ErrConflict, "[fd00:198:18:100::10]:8080/tcp is published already, by container d"},
	} {
		_, err := publish.Publish(ctx, nb, spec(c.p, c.m))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("publish %s for %s: %v; want %v saying %q", c.m, c.p.Container, err, c.want, c.text)
		}
	}
	if n := len(publishedAll(t, nb)); n != before {
		t.Errorf("refused publishes changed the published ports: %d -> %d", before, n)
	}
	// "::" on the IPv6-only network: IPv6 only; the IPv6 address picks IPv6.
	if got, err := publish.Publish(ctx, nb, spec(s6, publish.Mapping{HostPort: 8081, ContainerPort: 81, HostIP: "::"})); err != nil || len(got) != 1 || !got[0].Address.Is6() {
		t.Errorf("publish :: on six: %+v %v", got, err)
	}
	if got, err := publish.Publish(ctx, nb, spec(d, publish.Mapping{HostPort: 8082, ContainerPort: 82, HostIP: "fd00:198:18:100::10"})); err != nil || len(got) != 1 || got[0].Backend.String() != "fd00:198:19:3::5" {
		t.Errorf("publish on the IPv6 address for dual: %+v %v", got, err)
	}
	if out, err := publish.ReleasePort(ctx, nb, d.Name); err != nil || len(out) != 3 {
		t.Errorf("release d: %d %v, want 3 (8080 twice, 8082)", len(out), err)
	}
}

func publishedAll(t *testing.T, nb client.Client) []publish.Published {
	t.Helper()
	ps, err := publish.List(context.Background(), nb, publish.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
