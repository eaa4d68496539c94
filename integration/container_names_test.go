package integration

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestCNIContainerNamesOff: on a network made with container names off,
// CNI ADD (the first on the node without a pool port, the next from the
// pool) and DEL never change the network's DNS records, the result still
// names the network's nameserver and search list, the containers still
// become backends of a selecting service and leave it at DEL, and the
// service's own name stays.
func TestCNIContainerNamesOff(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("nn%d", os.Getpid()%10000)
	// A service VIP is reached through a router.
	r := name + "-r"
	if _, err := router.Create(ctx, nb, r, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := network.DeleteRouter(ctx, nb, r, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	specNetwork(t, nb, network.Spec{Name: name, Subnet: "198.19.86.0/24", Router: r, ContainerNames: "off"})
	if n, err := network.Get(ctx, nb, name); err != nil || n.ContainerNames != "off" {
		t.Fatalf("network %s: %+v (%v); want container names off", name, n, err)
	}
	if _, err := service.Create(ctx, nb, service.Spec{Name: "web", Network: name, VIP: "198.19.86.200:80",
		Selector: map[string]string{"app": "del"}, TargetPort: 8080}); err != nil {
		t.Fatal(err)
	}
	before, err := dns.Records(ctx, nb, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatalf("network %s has no DNS records; want the service's name", name)
	}
	node := l.Nodes[1]
	var ctrs []*container
	for i, alias := range []string{"quiet1", "quiet2"} {
		c, ip := cniDelPeer(t, ctx, name, alias)
		ctrs = append(ctrs, c)
		if i == 0 {
			// The next ADD on the node claims a pool port.
			settlePool(t, ctx, nb, name, node.SystemID, 4)
		}
		recs, err := dns.Records(ctx, nb, name)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(recs, before) {
			t.Errorf("after ADD of %s (%s): DNS records %v; want them unchanged, %v", alias, ip, recs, before)
		}
		gw := netip.MustParseAddr("198.19.86.1")
		if len(c.result.DNS.Nameservers) != 1 || c.result.DNS.Nameservers[0] != gw.String() || len(c.result.DNS.Search) == 0 {
			t.Errorf("ADD of %s: result DNS %+v; want nameserver %s and the network's search list", alias, c.result.DNS, gw)
		}
		s, err := service.Get(ctx, nb, name, "web")
		if err != nil {
			t.Fatal(err)
		}
		if !hasBackend(s, ip) {
			t.Errorf("after ADD of %s: service backends %v; want %s among them", alias, s.Backends, ip)
		}
	}
	for _, c := range ctrs {
		if err := c.del(ctx); err != nil {
			t.Fatalf("DEL: %v\n%s", err, c.rt.exec.stderr.String())
		}
		assertGone(t, nb, c.rt.node, c.id, c.ifName)
		ip, _ := netip.AddrFromSlice(c.ip().To4())
		if s, err := service.Get(ctx, nb, name, "web"); err != nil || hasBackend(s, ip) {
			t.Errorf("after DEL: service %+v (%v); want %s no longer a backend", s, err, ip)
		}
	}
	if recs, err := dns.Records(ctx, nb, name); err != nil || !maps.Equal(recs, before) {
		t.Errorf("after DEL: DNS records %v (%v); want them unchanged, %v", recs, err, before)
	}
}

// hasBackend reports whether ip is one of the service's backends.
func hasBackend(s *service.Service, ip netip.Addr) bool {
	for _, b := range s.Backends {
		if ap, err := netip.ParseAddrPort(b); err == nil && ap.Addr() == ip {
			return true
		}
	}
	return false
}
