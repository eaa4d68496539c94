package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// serveName6 answers every TCP connection to [c's IPv6]:port with name.
func serveName6(t testing.TB, c *container, port int, name string) {
	t.Helper()
	serveTCP(t, c, c.ip6(), port, func(conn net.Conn) {
		_, _ = conn.Write([]byte(name + "\n"))
		conn.Close()
	})
}

// TestIPv6ServiceVIP: on a dual-stack network on a router, a service with
// an IPv6 VIP and two backends named by their aliases: its name resolves
// by AAAA (asked of the network's IPv6 gateway) to the VIP, a backend's
// name to its IPv6 address (AAAA) and that address back (ip6.arpa PTR), and 20
// connections to [VIP]:80 from a container on a third node reach both
// backends.
func TestIPv6ServiceVIP(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	r := segName("s6r")
	segRouter(t, nb, r)
	netName := segName("s6n")
	specNetwork(t, nb, network.Spec{Name: netName, Subnet: "198.19.63.0/24", IPv6Subnet: "fd00:198:19:63::/64", Router: r})
	list := confList(t, netName, "1.0.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	var ctrs []*container
	for i, node := range l.Nodes[:3] {
		c := newContainer(t, newRuntime(t, node), list)
		c.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{fmt.Sprintf("be%d", i)}}
		c.mustAdd(t, ctx)
		ctrs = append(ctrs, c)
	}
	client := ctrs[0]
	serveName6(t, ctrs[1], 8080, "be1")
	serveName6(t, ctrs[2], 8080, "be2")
	vip := netip.MustParseAddrPort("[fd00:198:19:fe::80]:80")
	if _, err := service.Create(ctx, nb, service.Spec{Name: "api", Network: netName, VIP: vip.String(), Backends: []string{"be1:8080", "be2:8080"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = service.Delete(context.Background(), nb, netName, "api") })

	// AAAA through the IPv6 nameserver of the CNI result.
	var ns6 netip.Addr
	for _, s := range client.result.DNS.Nameservers {
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			ns6 = a
		}
	}
	if ns6 != netip.MustParseAddr("fd00:198:19:63::1") {
		t.Fatalf("CNI result nameservers %v; want the IPv6 gateway fd00:198:19:63::1 among them", client.result.DNS.Nameservers)
	}
	c := &dsCtr{name: "client", netns: client.ns}
	fqdn := "api." + netName + ".ovl"
	var last string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, ans, ok, err := c.dsQuery(ns6, fqdn, dnsmessage.TypeAAAA, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprintf("ok=%v %v", ok, ans)
		if ok && strings.Join(ans, ",") == "AAAA "+vip.Addr().String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("AAAA %s from %s: %s; want AAAA %s", fqdn, ns6, last, vip.Addr())
		}
	}

	// The backends' own names: AAAA and the IPv6 PTR.
	be1 := ctrs[1].ip6()
	for _, q := range []struct {
		name string
		typ  dnsmessage.Type
		want string
	}{
		{"be1." + netName + ".ovl", dnsmessage.TypeAAAA, "AAAA " + be1.String()},
		{dns.ReverseName(be1), dnsmessage.TypePTR, "PTR be1." + netName + ".ovl."},
	} {
		var got string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_, ans, ok, err := c.dsQuery(ns6, q.name, q.typ, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got = fmt.Sprintf("ok=%v %v", ok, ans)
			if ok && strings.Join(ans, ",") == q.want || time.Now().After(deadline) {
				break
			}
		}
		if !strings.Contains(got, q.want) {
			t.Errorf("%s %s: %s; want %s", q.typ, q.name, got, q.want)
		}
	}

	// Balancing over both backends.
	seen := map[string]int{}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && (seen["be1"] == 0 || seen["be2"] == 0); {
		_ = client.ns.Do(func(ns.NetNS) error {
			conn, err := net.DialTimeout("tcp6", vip.String(), 500*time.Millisecond)
			if err != nil {
				seen["error"]++
				return nil
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 16)
			n, _ := conn.Read(buf)
			seen[strings.TrimSpace(string(buf[:n]))]++
			return nil
		})
	}
	t.Logf("connections to %s: %v", vip, seen)
	if seen["be1"] == 0 || seen["be2"] == 0 {
		t.Errorf("connections to %s reached %v; want both be1 and be2", vip, seen)
	}
}

// TestIPv6OnlyNameserver: an IPv6-only network on no router: its
// nameserver placeholder owns ::1 (OVN answers neighbour solicitations for
// it), so a container asks ::1 for another container's AAAA and gets it,
// and the two (on two nodes) talk TCP over IPv6.
func TestIPv6OnlyNameserver(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	netName := segName("s6f")
	specNetwork(t, nb, network.Spec{Name: netName, IPv6Subnet: "fd00:198:19:66::/64"})
	list := confList(t, netName, "1.0.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	a := newContainer(t, newRuntime(t, l.Nodes[0]), list)
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, l.Nodes[1]), list)
	b.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{"peer"}}
	b.mustAdd(t, ctx)
	if got := fmt.Sprint(a.result.DNS.Nameservers); got != "[fd00:198:19:66::1]" {
		t.Fatalf("nameservers %s; want [fd00:198:19:66::1]", got)
	}
	c := &dsCtr{name: "a", netns: a.ns}
	want := "AAAA " + b.ip6().String()
	var got string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, ans, ok, err := c.dsQuery(netip.MustParseAddr("fd00:198:19:66::1"), "peer."+netName+".ovl", dnsmessage.TypeAAAA, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got = fmt.Sprintf("ok=%v %v", ok, ans)
		if ok && strings.Join(ans, ",") == want || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(got, want) {
		t.Errorf("AAAA peer.%s.ovl from ::1: %s; want %s", netName, got, want)
	}
	if err := tcpOver(ctx, b, a, b.ip6(), 1<<20); err != nil {
		t.Errorf("TCP over IPv6 on an IPv6-only network without a router: %v", err)
	}
	// CNI GC on b's node with no valid attachments removes b with its
	// names: on an IPv6-only network the port has only an IPv6 address,
	// and GC used to clean names and backends only of ports with IPv4.
	// (GC is CNI 1.1: the same configuration at 1.1.0.)
	gcList := confList(t, netName, "1.1.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	if err := newRuntime(t, l.Nodes[1]).cni.GCNetworkList(ctx, gcList, &libcni.GCArgs{}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	assertGone(t, nb, l.Nodes[1], b.id, b.ifName)
	recs, err := dns.Records(ctx, nb, netName)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range recs {
		if strings.Contains(v, b.ip6().String()) {
			t.Errorf("DNS record %s=%s of the container GC removed", k, v)
		}
	}
	// A DEL without prevResult (the runtime kept none) takes the
	// addresses from the port: a's IPv6 name goes too.
	env := []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=" + a.id, "CNI_NETNS=" + a.ns.Path(), "CNI_IFNAME=" + a.ifName, "CNI_PATH=" + cniPluginDir(t)}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, netName, netName)
	if _, code, msg := rawPlugin(t, ctx, l.Nodes[0], env, conf); code != 0 {
		t.Fatalf("DEL without prevResult: code %d: %s", code, msg)
	}
	assertGone(t, nb, l.Nodes[0], a.id, a.ifName)
	if recs, err = dns.Records(ctx, nb, netName); err != nil {
		t.Fatal(err)
	}
	for k, v := range recs {
		if strings.Contains(v, a.ip6().String()) {
			t.Errorf("DNS record %s=%s of the container DEL removed", k, v)
		}
	}
}
