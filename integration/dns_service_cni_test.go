package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestCNIServiceDiscovery runs the real ovlmgr-cni through libcni: the ADD
// result carries the DNS config, the `aliases` capability names the
// container, the `labels` capability makes it a backend of a selecting
// service, and DEL takes name and backend away.
func TestCNIServiceDiscovery(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := dsNB(ctx, t, l)
	n1, _, n3 := dsNodes(t, l)
	n := dsNetwork(ctx, t, nb, "dscni", "198.19.167.0/24", fmt.Sprintf("ds-c%d", os.Getpid()))
	vip := netip.MustParseAddrPort("198.19.202.1:80")
	if _, err := service.Create(ctx, nb, service.Spec{Name: "web", Network: n.name, VIP: vip.String(),
		Selector: map[string]string{"app": "cni"}, TargetPort: 8080}); err != nil {
		t.Fatal(err)
	}
	list := confList(t, n.name, "1.1.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true, "labels": true}})

	client := newContainer(t, newRuntime(t, n1), list)
	client.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{"Front"}}
	client.mustAdd(t, ctx)
	backend := newContainer(t, newRuntime(t, n3), list)
	backend.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{"be1"}, "labels": map[string]string{"app": "cni"}}
	backend.mustAdd(t, ctx)

	if got := fmt.Sprint(client.result.DNS.Nameservers, client.result.DNS.Search); got != fmt.Sprintf("[%s] [dscni.ovl ovl]", n.gw) {
		t.Fatalf("ADD result dns = %s; want nameserver the gateway and search dscni.ovl ovl", got)
	}
	cip, _ := netip.AddrFromSlice(client.ip().To4())
	bip, _ := netip.AddrFromSlice(backend.ip().To4())
	c := &dsCtr{name: "front", netns: client.ns, net: n, node: n1, ip: cip}
	b := &dsCtr{name: "be1", netns: backend.ns, net: n, node: n3, ip: bip}
	c.dsResolve(t, "be1.dscni.ovl", dnsmessage.TypeA, "A "+bip.String())
	b.dsResolve(t, dns.ReverseName(client.ip()), dnsmessage.TypePTR, "PTR front.dscni.ovl.")
	c.dsResolve(t, "web.dscni.ovl", dnsmessage.TypeA, "A "+vip.Addr().String())

	b.dsServe(t, 8080)
	waitSpread(t, c, vip, func(m map[string]int) bool { return m["be1"] == 20 })

	if err := backend.del(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := service.Get(ctx, nb, n.name, "web")
	if err != nil || len(s.Backends) != 0 {
		t.Fatalf("after DEL: service %+v, %v; want no backends", s, err)
	}
	c.dsResolve(t, "be1.dscni.ovl", dnsmessage.TypeA, "")
	if recs, _ := dns.Records(ctx, nb, n.name); strings.Contains(fmt.Sprint(recs), bip.String()) {
		t.Fatalf("records after DEL still name %s: %v", bip, recs)
	}
}
