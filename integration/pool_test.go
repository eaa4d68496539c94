package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	stdnet "net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// TestPoolCNI: ADDs claim ready pool ports (one NB transaction, no wait for
// ovn-northd) and stay correct under contention and SIGKILL: 8 parallel
// ADDs against a pool of 4 each get a port of their own (pool or slow
// path), plugins killed at random points of their ADD never take a port
// another container holds, and after DEL nothing of theirs is left (no
// NB port, OVS interface or DNS record); the pool refills in the background
// to its size and never beyond; net list FREE counts pooled addresses as
// free and agrees with the addresses the switch's ports hold; net delete
// takes the pool along.
func TestPoolCNI(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	net := uniqueName("pool")
	specNetwork(t, nb, network.Spec{Name: net, Subnet: "198.19.176.0/26"})
	node := l.Nodes[0]
	size := 4
	setPoolSize(t, nb, net, size)

	if _, err := attach.Refill(ctx, attach.RefillRequest{Network: net, NB: l.NB, OVS: node.OVS}); err != nil {
		t.Fatalf("refill: %v", err)
	}
	pool := settlePool(t, ctx, nb, net, node.SystemID, size)
	n0 := checkFree(t, ctx, nb, net, 0)
	if n0.Pooled != size {
		t.Fatalf("net list pooled %d; want %d", n0.Pooled, size)
	}

	rt := newRuntime(t, node)
	list := confList(t, net, "1.0.0", map[string]interface{}{"readyTimeout": "20s"})
	ctrs := make([]*container, 8)
	for i := range ctrs {
		ctrs[i] = newContainer(t, rt, list)
	}
	for i, err := range addParallel(ctx, ctrs) {
		if err != nil {
			t.Fatalf("parallel ADD %d: %v\nplugin log:\n%s", i, err, rt.exec.stderr.String())
		}
	}
	t.Cleanup(func() {
		for _, c := range ctrs {
			_ = c.del(context.Background())
		}
	})
	claimed := checkOwners(t, ctx, nb, node, ctrs)
	fromPool := 0
	for _, name := range claimed {
		if pool[name] {
			fromPool++
		}
	}
	if fromPool < size {
		t.Errorf("%d of 8 parallel ADDs got a pool port; the pool held %d", fromPool, size)
	}
	settlePool(t, ctx, nb, net, node.SystemID, size)
	checkFree(t, ctx, nb, net, len(ctrs))

	var wg sync.WaitGroup
	// Plugins killed at random points of their ADD, then DEL as a runtime does.
	// Delays spread over an ADD's duration under load (start, connect,
	// claim, veth, plug, wait), each jittered.
	killed := make([]*container, 10)
	for i := range killed {
		killed[i] = newContainer(t, rt, list)
		wg.Add(1)
		go func(c *container, d time.Duration) {
			defer wg.Done()
			killAdd(t, ctx, node, net, c, d)
		}(killed[i], time.Duration(20+50*i+rand.IntN(30))*time.Millisecond)
	}
	wg.Wait()
	withPort := 0
	for _, c := range killed {
		if ps, err := ovnport.List(ctx, nb, ovnport.Filter{Container: c.id}); err == nil && len(ps) > 0 {
			withPort++
		}
	}
	t.Logf("%d of %d killed ADDs had claimed or made their port", withPort, len(killed))
	checkOwners(t, ctx, nb, node, ctrs)
	for _, c := range killed {
		if err := c.del(ctx); err != nil {
			t.Errorf("DEL after a killed ADD of %s: %v", c.id, err)
		}
		assertNothingOf(t, ctx, nb, node, net, c.id)
	}
	checkOwners(t, ctx, nb, node, ctrs) // the live containers keep their ports
	// A killed ADD's claim is made good by the refill of the node's next
	// successful ADD (docs/cni.md, Refill); when every ADD above was killed
	// before it finished, only that one brings the pool back to its size.
	next := newContainer(t, rt, list)
	if err := next.add(ctx); err != nil {
		t.Fatalf("ADD after the killed ones: %v\nplugin log:\n%s", err, rt.exec.stderr.String())
	}
	ctrs = append(ctrs, next)

	for _, c := range ctrs {
		wg.Add(1)
		go func(c *container) {
			defer wg.Done()
			if err := c.del(ctx); err != nil {
				t.Errorf("DEL %s: %v", c.id, err)
			}
		}(c)
	}
	wg.Wait()
	for _, c := range ctrs {
		assertNothingOf(t, ctx, nb, node, net, c.id)
	}
	if recs, err := dns.Records(ctx, nb, net); err != nil || len(recs) != 0 {
		t.Errorf("DNS records left after every DEL: %v (%v)", recs, err)
	}
	settlePool(t, ctx, nb, net, node.SystemID, size)
	checkFree(t, ctx, nb, net, 0)

	if err := network.Delete(ctx, nb, net, false); err != nil {
		t.Fatalf("net delete with only pool ports left: %v", err)
	}
	if left, err := ovnport.ListPool(ctx, nb, net, ""); err != nil || len(left) != 0 {
		t.Fatalf("pool ports after net delete: %d (%v)", len(left), err)
	}
}

// TestPoolCNIIPv6: on an IPv6-only network ADDs are served from the node's
// pool too: the container gets the pool port's IPv6 address (northd's MAC
// and its EUI-64, no IPv4) and reaches a container on another node over
// IPv6; after DEL nothing of either container is left, the pools refill
// to their size, net show counts them as pooled and not as ports, and net
// delete takes them along.
func TestPoolCNIIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net := uniqueName("p6pl")
	prefix := netip.MustParsePrefix("fd00:198:19:178::/64")
	specNetwork(t, nb, network.Spec{Name: net, IPv6Subnet: prefix.String()})
	const size = 2
	setPoolSize(t, nb, net, size)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	pools := map[string]bool{}
	for _, nd := range []*lab.Node{n1, n2} {
		if _, err := attach.Refill(ctx, attach.RefillRequest{Network: net, NB: l.NB, OVS: nd.OVS}); err != nil {
			t.Fatalf("refill the pool of an IPv6-only network on %s: %v", nd.Name, err)
		}
		for name := range settlePool(t, ctx, nb, net, nd.SystemID, size) {
			pools[name] = true
		}
	}
	if n, err := network.Get(ctx, nb, net); err != nil || n.Pooled != 2*size || n.Ports != 0 {
		t.Fatalf("net show %s: %+v (%v); want %d pooled, no ports", net, n, err, 2*size)
	}

	c1 := newContainer(t, newRuntime(t, n1), confList(t, net, "1.0.0", nil))
	c1.mustAdd(t, ctx)
	c2 := newContainer(t, newRuntime(t, n2), confList(t, net, "1.0.0", nil))
	c2.mustAdd(t, ctx)
	for _, x := range []struct {
		c  *container
		nd *lab.Node
	}{{c1, n1}, {c2, n2}} {
		c := x.c
		if c.ip() != nil || c.ip6() == nil || !prefix.Contains(netip.MustParseAddr(c.ip6().String())) {
			t.Fatalf("%s result IPs %v; want one IPv6 address in %s and no IPv4", c.id, c.result.IPs, prefix)
		}
		// The network's IPv6 gateway answers DNS; a pool-served ADD gave
		// no nameserver on an IPv6-only network before.
		ns := c.result.DNS.Nameservers
		var gw netip.Addr
		if len(ns) == 1 {
			gw, _ = netip.ParseAddr(ns[0])
		}
		if len(ns) != 1 || !gw.IsValid() || !prefix.Contains(gw) {
			t.Errorf("%s result DNS nameservers %v; want the network's IPv6 gateway in %s", c.id, ns, prefix)
		}
		ps, err := ovnport.List(ctx, nb, ovnport.Filter{Container: c.id})
		if err != nil || len(ps) != 1 {
			t.Fatalf("container %s: %d NB ports (%v)", c.id, len(ps), err)
		}
		p := ps[0]
		if !pools[p.Name] || p.Node != x.nd.SystemID {
			t.Errorf("container %s on %s got port %s (node %s), not one of the pools' ready ports", c.id, x.nd.Name, p.Name, p.Node)
		}
		if p.IP.IsValid() || p.IPv6.String() != c.ip6().String() {
			t.Errorf("container %s: port %s has %s %s; ADD said %s", c.id, p.Name, p.IP, p.IPv6, c.ip6())
		}
		if err := c.rt.cni.CheckNetworkList(ctx, c.list, c.conf); err != nil {
			t.Errorf("CHECK %s: %v", c.id, err)
		}
	}
	if err := tcpOver(ctx, c2, c1, c2.ip6(), 1<<16); err != nil {
		t.Errorf("TCP over IPv6 across nodes between pool-served containers: %v", err)
	}

	for _, c := range []*container{c1, c2} {
		if err := c.del(ctx); err != nil {
			t.Errorf("DEL %s: %v", c.id, err)
		}
	}
	assertNothingOf(t, ctx, nb, n1, net, c1.id)
	assertNothingOf(t, ctx, nb, n2, net, c2.id)
	if recs, err := dns.Records(ctx, nb, net); err != nil || len(recs) != 0 {
		t.Errorf("DNS records left after every DEL: %v (%v)", recs, err)
	}
	settlePool(t, ctx, nb, net, n1.SystemID, size)
	settlePool(t, ctx, nb, net, n2.SystemID, size)
	if n, err := network.Get(ctx, nb, net); err != nil || n.Pooled != 2*size || n.Ports != 0 {
		t.Fatalf("net show %s after DEL: %+v (%v); want %d pooled, no ports", net, n, err, 2*size)
	}

	// An ADD killed after its claim (port and DNS name, nothing on the
	// node) and never DELeted: node gc removes the port and its name.
	dn, err := dns.Ensure(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	hs := ovnport.PoolHints(dn.Switch.ExternalIDs, net, n1.SystemID)
	if len(hs) == 0 {
		t.Fatal("no pool hint on n1")
	}
	gone := fmt.Sprintf("p6gc%012x", rand.Uint64()&0xffffffffffff)
	dnsOps, _ := dns.AddOps(dn, dns.FQDN(dns.IDName(gone), net, dn.Domain), []stdnet.IP{hs[0].IPv6.AsSlice()})
	if err := ovnport.Claim(ctx, nb, ovnport.Spec{Network: net, Node: n1.SystemID, Container: gone, IfName: "eth0"}, hs[0], dnsOps...); err != nil {
		t.Fatal(err)
	}
	ageNBPort(t, ctx, nb, hs[0].Name)
	if rs := nodeGC(t, ctx, n1); !removedHas(rs, "nb-port", hs[0].Name) {
		t.Errorf("node gc removed %+v; want the claimed port %s of a dead ADD", rs, hs[0].Name)
	}
	assertNothingOf(t, ctx, nb, n1, net, gone)
	if err := network.Delete(ctx, nb, net, false); err != nil {
		t.Fatalf("net delete with only pool ports left: %v", err)
	}
	if left, err := ovnport.ListPool(ctx, nb, net, ""); err != nil || len(left) != 0 {
		t.Fatalf("pool ports after net delete: %d (%v)", len(left), err)
	}
}

// settlePool waits until the background refills are done: the node's pool
// of net has exactly size ready ports (never more, checked on every look).
// It returns their names.
func settlePool(t *testing.T, ctx context.Context, nb client.Client, net, node string, size int) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		pps, err := ovnport.ListPool(ctx, nb, net, node)
		if err != nil {
			t.Fatal(err)
		}
		if len(pps) > size {
			t.Fatalf("pool of %s on %s has %d ports; size %d", net, node, len(pps), size)
		}
		ready := map[string]bool{}
		for _, pp := range pps {
			if pp.State == ovnport.PoolReady {
				ready[pp.Name] = true
			}
		}
		if len(ready) == size {
			return ready
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool of %s on %s: %d of %d ready after 45s", net, node, len(ready), size)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkFree checks net list's numbers for net with ports containers: Ports,
// and FREE minus POOLED equal to the addresses no port of the switch holds.
func checkFree(t *testing.T, ctx context.Context, nb client.Client, net string, ports int) *network.Network {
	t.Helper()
	n, err := network.Get(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(net)},
		func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.Ports} })
	if err != nil || len(sw) != 1 {
		t.Fatalf("switch %s: %v", net, err)
	}
	held := 0
	for _, u := range sw[0].Ports {
		lsps, err := dbops.SelectRows(ctx, nb, dbops.ByUUID(u), func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.Addresses, &p.ExternalIDs} })
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range lsps {
			if k := p.ExternalIDs[owner.KeyKind]; k != owner.KindPort && k != ovnport.KindPool {
				continue // router and DNS responder ports: their addresses are excluded
			}
			for _, a := range p.Addresses {
				for _, f := range strings.Fields(a) {
					if ip, err := netip.ParseAddr(f); err == nil && ip.Is4() {
						held++
					}
				}
			}
		}
	}
	// The subnet without network, broadcast and gateway addresses.
	usable := 1<<(32-netip.MustParsePrefix(n.Subnet).Bits()) - 2 - 1
	if n.Ports != ports || n.Free-n.Pooled != usable-held || n.Free != usable-ports {
		t.Fatalf("net list %s: ports %d free %d pooled %d; want ports %d, free %d (pooled count as free), free-pooled %d (addresses no port holds)",
			net, n.Ports, n.Free, n.Pooled, ports, usable-ports, usable-held)
	}
	return n
}

// checkOwners checks that each container's NB port (named by its OVS
// interface) belongs to it, with the address ADD reported, and that no two
// containers share a port or an address. It returns the port names.
func checkOwners(t *testing.T, ctx context.Context, nb client.Client, node *lab.Node, ctrs []*container) []string {
	t.Helper()
	ovs, err := vsdb.Connect(ctx, node.OVS)
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	seenPort, seenIP := map[string]string{}, map[string]string{}
	var names []string
	for _, c := range ctrs {
		ifc, err := ovsport.Get(ctx, ovs, ovsport.HostIfName(c.id, c.ifName))
		if err != nil || ifc == nil {
			t.Fatalf("container %s: no OVS interface (%v)", c.id, err)
		}
		p, err := ovnport.Get(ctx, nb, ifc.IfaceID)
		if err != nil {
			t.Fatalf("container %s: NB port %s: %v", c.id, ifc.IfaceID, err)
		}
		if p.Container != c.id || p.IP.String() != c.ip().String() || ifc.IfaceIDVer != p.IfaceIDVer || !ifc.Installed {
			t.Fatalf("container %s (ip %s): its port %s says container %s ip %s ver %s (interface ver %s, installed %v)",
				c.id, c.ip(), p.Name, p.Container, p.IP, p.IfaceIDVer, ifc.IfaceIDVer, ifc.Installed)
		}
		if o := seenPort[p.Name]; o != "" {
			t.Fatalf("port %s claimed by %s and %s", p.Name, o, c.id)
		}
		if o := seenIP[p.IP.String()]; o != "" {
			t.Fatalf("address %s given to %s and %s", p.IP, o, c.id)
		}
		seenPort[p.Name], seenIP[p.IP.String()] = c.id, c.id
		names = append(names, p.Name)
	}
	return names
}

// killAdd runs the plugin's ADD for c on node and SIGKILLs it after d.
func killAdd(t *testing.T, ctx context.Context, node *lab.Node, net string, c *container, d time.Duration) {
	stdin := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, net, net)
	env := append(append([]string{}, node.Env...), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+c.id, "CNI_NETNS="+c.ns.Path(),
		"CNI_IFNAME="+c.ifName, "CNI_PATH="+cniPluginDir(t))
	cmd := nsexec.Command(ctx, node.NetNSPath, env, filepath.Join(cniPluginDir(t), "ovlmgr-cni"))
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &out
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return
	}
	time.Sleep(d)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// assertNothingOf checks that container id has no NB port (by any name: a
// claimed pool port keeps the pool's name), no OVS interface on node and no
// DNS name in net.
func assertNothingOf(t *testing.T, ctx context.Context, nb client.Client, node *lab.Node, net, id string) {
	t.Helper()
	if ps, err := ovnport.List(ctx, nb, ovnport.Filter{Container: id}); err != nil || len(ps) != 0 {
		t.Errorf("container %s: NB ports left: %d (%v)", id, len(ps), err)
	}
	assertGone(t, nb, node, id, "eth0")
	recs, err := dns.Records(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	name := dns.FQDN(dns.IDName(id), net, dns.DefaultDomain)
	if v, ok := recs[name]; ok {
		t.Errorf("container %s: DNS record %s -> %s left", id, name, v)
	}
}

// TestPoolNBLeftover: an ADD killed on the slow path after making its NB
// port (and before plugging it) leaves only that port, of the container
// interface's own name. The runtime's next ADD of that interface, with no
// DEL between, claims a pool port: the claim's guard finds the leftover,
// which goes (with its address) before the claim is made again. The
// container ends with one port, the pool's, and nothing of the leftover;
// in the plugin's own process and through the node's CNI server (which
// reads the network from its NB monitor).
func TestPoolNBLeftover(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := uniqueName("poolleft")
	specNetwork(t, nb, network.Spec{Name: net, Subnet: "198.19.177.0/26"})
	node := l.Nodes[0]
	setPoolSize(t, nb, net, 2)
	if _, err := attach.Refill(ctx, attach.RefillRequest{Network: net, NB: l.NB, OVS: node.OVS}); err != nil {
		t.Fatalf("refill: %v", err)
	}
	n, err := network.Get(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"plugin", "served"} {
		pool := settlePool(t, ctx, nb, net, node.SystemID, 2)
		var srv *cniServer
		if mode == "served" {
			srv = startCNIServer(t, node)
		}
		rt := newRuntime(t, node)
		c := newContainer(t, rt, confList(t, net, "1.0.0", nil))
		left, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: net, Subnet: netip.MustParsePrefix(n.Subnet), Gateway: netip.MustParseAddr(n.Gateway),
			Node: node.SystemID, Container: c.id, IfName: c.ifName})
		if err != nil {
			t.Fatal(err)
		}
		if left.Name != ovnport.Name(node.SystemID, c.id, c.ifName) {
			t.Fatalf("leftover port %s, want the interface's own name %s", left.Name, ovnport.Name(node.SystemID, c.id, c.ifName))
		}

		c.mustAdd(t, ctx)
		log := rt.exec.stderr.String()
		if srv != nil {
			if !srv.served("ADD", c) {
				t.Fatalf("%s: the ADD did not go through the node's CNI server; its log:\n%s", mode, srv.logText())
			}
			log = srv.logText()
		}
		if _, err := ovnport.Get(ctx, nb, left.Name); !errors.Is(err, ovnport.ErrNotFound) {
			t.Errorf("%s: the leftover port %s is still there after ADD (%v)", mode, left.Name, err)
		}
		p, err := containerPort(ctx, nb, node.SystemID, net, c.id, c.ifName)
		if err != nil {
			t.Fatalf("%s: the container's port after ADD over a leftover: %v\nlog:\n%s", mode, err, log)
		}
		if !pool[p.Name] {
			t.Errorf("%s: ADD over a leftover took port %s, not one of the pool's %v", mode, p.Name, pool)
		}
		if p.IP == left.IP {
			t.Errorf("%s: the container's port %s has the leftover's address %s", mode, p.Name, p.IP)
		}
		if ifs := nodeIfaces(t, ctx, node, c.id); len(ifs) != 1 || !ifs[0].Installed || ifs[0].IfaceID != p.Name {
			t.Errorf("%s: after ADD over a leftover: OVS interfaces %+v; want one, installed, for %s", mode, ifs, p.Name)
		}
		if !strings.Contains(log, "removing leftovers of an interrupted ADD") {
			t.Errorf("%s: the log does not say the leftover was removed:\n%s", mode, log)
		}
		if srv != nil {
			srv.stop(t, syscall.SIGTERM)
		}
	}
}
