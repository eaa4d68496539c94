package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestIPv6ServiceHealthCheck, on a TLS lab of its own (nodes write the NB
// through the control service): an IPv6 service with a selector and a
// health check, created before its two backends (on n2 and n3) exist; their
// CNI ADDs map them in ip_port_mappings ("[IP]"="port:[source]"). Both
// answer on the VIP; the server of one stops: its SB Service_Monitor goes
// offline and all connections go to the other; it serves again: online and
// it answers again. Its CNI DEL drops its mapping. Times are logged.
func TestIPv6ServiceHealthCheck(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 3, Name: uniqueName("hc6")})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	nb := cniNB(t, l)
	sb := cniSB(t, l)
	segRouter(t, nb, "hc6r")
	specNetwork(t, nb, network.Spec{Name: "hc6n", Subnet: "198.19.67.0/24", IPv6Subnet: "fd00:198:19:67::/64", Router: "hc6r"})
	vip := netip.MustParseAddrPort("[fd00:198:19:fe::67]:80")
	svc, err := service.Create(ctx, nb, service.Spec{Name: "hc6", Network: "hc6n", VIP: vip.String(),
		Selector: map[string]string{"app": "hc6"}, TargetPort: 8080, HealthCheck: "1,1"})
	if err != nil {
		t.Fatalf("IPv6 service with a health check: %v", err)
	}
	t.Cleanup(func() { _ = service.Delete(context.Background(), nb, "hc6n", "hc6") })
	if svc.HCSource != "fd00:198:19:67:ffff:ffff:ffff:fffe" {
		t.Errorf("health-check source %s; want fd00:198:19:67:ffff:ffff:ffff:fffe", svc.HCSource)
	}

	list := confList(t, "hc6n", "1.0.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "labels": true}})
	var ctrs []*container
	for i, node := range l.Nodes[:3] {
		c := newContainer(t, newRuntime(t, node), list)
		if i > 0 {
			c.conf.CapabilityArgs = map[string]interface{}{"labels": map[string]string{"app": "hc6"}}
		}
		c.mustAdd(t, ctx)
		ctrs = append(ctrs, c)
	}
	client, b1, b2 := ctrs[0], ctrs[1], ctrs[2]
	ip1, _ := netip.AddrFromSlice(b1.ip6())
	ip2, _ := netip.AddrFromSlice(b2.ip6())
	mappings := func() map[string]string {
		lbs, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, []ovsdb.Condition{dbops.NameIs("hc6n/hc6")})
		if err != nil || len(lbs) != 1 {
			t.Fatalf("load balancer hc6n/hc6: %v %d", err, len(lbs))
		}
		return lbs[0].IPPortMappings
	}
	m := mappings()
	for _, a := range []netip.Addr{ip1, ip2} {
		if v := m["["+a.String()+"]"]; !strings.HasSuffix(v, ":["+svc.HCSource+"]") {
			t.Fatalf("ip_port_mappings after the backends' ADD: %v; want [%s]=PORT:[%s]", m, a, svc.HCSource)
		}
	}

	stop1 := serveStoppable6(t, b1, 8080, "b1")
	serveStoppable6(t, b2, 8080, "b2")
	spread := func() map[string]int {
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			_ = client.ns.Do(func(ns.NetNS) error {
				conn, err := net.DialTimeout("tcp6", vip.String(), 300*time.Millisecond)
				if err != nil {
					seen["error"]++
					return nil
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 16)
				n, _ := conn.Read(buf)
				seen[strings.TrimSpace(string(buf[:n]))]++
				return nil
			})
		}
		return seen
	}
	waitFor := func(what string, limit time.Duration, ok func() (bool, string)) time.Duration {
		start := time.Now()
		var last string
		for time.Since(start) < limit {
			var done bool
			if done, last = ok(); done {
				d := time.Since(start)
				t.Logf("%s after %v (%s)", what, d.Round(time.Millisecond), last)
				return d
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: not within %v: %s", what, limit, last)
		return 0
	}
	monitor := func(a netip.Addr) string {
		rows, err := dbops.SelectRows[sbdb.ServiceMonitor](ctx, sb, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if ip, err := netip.ParseAddr(strings.Trim(r.IP, "[]")); err == nil && ip == a && r.Status != nil {
				return *r.Status
			}
		}
		return "none"
	}
	both := func() (bool, string) {
		m := spread()
		return m["b1"] > 0 && m["b2"] > 0 && m["error"] == 0, fmt.Sprint(m)
	}
	waitFor("both backends answer on "+vip.String(), 30*time.Second, both)
	waitFor("both Service_Monitors online", 20*time.Second, func() (bool, string) {
		s1, s2 := monitor(ip1), monitor(ip2)
		return s1 == "online" && s2 == "online", s1 + " " + s2
	})

	stop1()
	t0 := time.Now()
	waitFor("b1 stopped: its Service_Monitor offline", 20*time.Second, func() (bool, string) {
		s := monitor(ip1)
		return s == "offline", s
	})
	waitFor("b1 stopped: 20 connections all to b2", 20*time.Second, func() (bool, string) {
		m := spread()
		return m["b2"] == 20, fmt.Sprint(m)
	})
	t.Logf("offline detection: %v from stop to all connections on b2", time.Since(t0).Round(time.Millisecond))

	serveStoppable6(t, b1, 8080, "b1")
	t0 = time.Now()
	waitFor("b1 serving again: its Service_Monitor online", 20*time.Second, func() (bool, string) {
		s := monitor(ip1)
		return s == "online", s
	})
	waitFor("b1 serving again: both answer", 20*time.Second, both)
	t.Logf("online detection: %v from restart to both answering", time.Since(t0).Round(time.Millisecond))

	// DEL of b1 (through the control service) drops its mapping and backend.
	if err := b1.del(ctx); err != nil {
		t.Fatalf("DEL b1: %v", err)
	}
	m = mappings()
	if _, ok := m["["+ip1.String()+"]"]; ok || len(m) != 1 {
		t.Errorf("ip_port_mappings after b1's DEL: %v; want only [%s]", m, ip2)
	}
}

// serveStoppable6 answers name on [c's IPv6]:port until the returned
// function is called (then the port refuses connections).
func serveStoppable6(t testing.TB, c *container, port int, name string) func() {
	t.Helper()
	var ln net.Listener
	if err := c.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp6", net.JoinHostPort(c.ip6().String(), fmt.Sprint(port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { ln.Close() }) }
	t.Cleanup(stop)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte(name + "\n"))
			conn.Close()
		}
	}()
	return stop
}
