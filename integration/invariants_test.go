package integration

// Tests of invariants that once had no test failing when they broke (each
// is listed with the break it catches in testdata/mutations.txt).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// settleHV bumps NB_Global nb_cfg and waits until ovn-northd has written it
// to SB (sb_cfg) and every chassis has applied it (hv_cfg): everything
// written to NB before the call is then in every node's flows.
func settleHV(ctx context.Context, nb client.Client) error {
	read := func() (*nbdb.NBGlobal, error) {
		var gs []nbdb.NBGlobal
		if err := dbconn.Select(ctx, nb, &nbdb.NBGlobal{}, &gs); err != nil {
			return nil, fmt.Errorf("read NB_Global: %w", err)
		}
		if len(gs) != 1 {
			return nil, fmt.Errorf("read NB_Global: %d rows, want 1", len(gs))
		}
		return &gs[0], nil
	}
	g, err := read()
	if err != nil {
		return err
	}
	want := g.NbCfg + 1
	op := ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable, Where: dbops.ByUUID(g.UUID),
		Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}}
	if _, err := dbconn.Transact(ctx, nb, op); err != nil {
		return fmt.Errorf("bump NB_Global nb_cfg: %w", err)
	}
	for {
		if g, err = read(); err != nil {
			return err
		}
		if g.SbCfg >= want && g.HvCfg >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nb_cfg %d not applied (sb_cfg %d, hv_cfg %d): %w", want, g.SbCfg, g.HvCfg, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ip6 returns the container's IPv6 address from its ADD result.
func (c *container) ip6() net.IP {
	for _, ipc := range c.result.IPs {
		if ipc.Address.IP.To4() == nil && ipc.Address.IP != nil {
			return ipc.Address.IP
		}
	}
	return nil
}

// dualServer is a TCP echo server and a UDP sink on one port of a
// container, on all its addresses (IPv4 and IPv6).
type dualServer struct {
	tcp  []net.Listener
	udp  []net.PacketConn
	mu   sync.Mutex
	got  map[string]bool // UDP payloads received
	port int
}

func startDualServer(t testing.TB, c *container, port int) *dualServer {
	t.Helper()
	s := &dualServer{got: map[string]bool{}, port: port}
	if err := c.ns.Do(func(ns.NetNS) error {
		for _, ip := range []net.IP{c.ip(), c.ip6()} {
			addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			s.tcp = append(s.tcp, ln)
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return err
			}
			s.udp = append(s.udp, pc)
		}
		return nil
	}); err != nil {
		t.Fatalf("listen in %s: %v", c.id, err)
	}
	t.Cleanup(func() {
		for i := range s.tcp {
			s.tcp[i].Close()
		}
		for i := range s.udp {
			s.udp[i].Close()
		}
	})
	for _, ln := range s.tcp {
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
					_, _ = io.Copy(conn, io.LimitReader(conn, 64))
				}()
			}
		}()
	}
	for _, pc := range s.udp {
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				s.mu.Lock()
				s.got[string(buf[:n])] = true
				s.mu.Unlock()
			}
		}()
	}
	return s
}

func (s *dualServer) received(payload string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[payload]
}

// udpSend sends payload once from c to dst:port (a new socket, so a new
// source port and no conntrack entry of an earlier probe).
func udpSend(c *container, dst net.IP, port int, payload string) error {
	return c.ns.Do(func(ns.NetNS) error {
		conn, err := net.Dial("udp", net.JoinHostPort(dst.String(), fmt.Sprint(port)))
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Write([]byte(payload)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	})
}

// reachTCP retries tcpEcho until it succeeds (a minute at most: the bound
// only keeps a broken path from hanging the test).
func reachTCP(t testing.TB, c *container, dst net.IP, port int, what string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if err = echo(c, dst, port, time.Second); err == nil {
			return
		}
	}
	t.Fatalf("%s: TCP %s:%d never answered (the allowed path must work): %v", what, dst, port, err)
}

// reachUDP sends datagrams until one arrives (a minute at most).
func reachUDP(t testing.TB, c *container, s *dualServer, dst net.IP, tag string) {
	t.Helper()
	for i := 0; i < 240; i++ {
		p := fmt.Sprintf("%s-%d", tag, i)
		if err := udpSend(c, dst, s.port, p); err != nil {
			t.Fatal(err)
		}
		for w := 0; w < 25; w++ {
			if s.received(p) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("%s: UDP to %s:%d never arrived (the allowed path must work)", tag, dst, s.port)
}

// TestDefaultDenyIPv6: a default-deny network's policies cover both
// families: an allow of one port admits IPv4 and IPv6 TCP and UDP to it,
// and another port stays closed over both (several probes must fail,
// datagrams sent before an allowed one must not arrive). The same IPv6
// probes succeed between the same containers (on two nodes) while the
// network is default-allow, before and after.
func TestDefaultDenyIPv6(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("i6%d", os.Getpid()%10000)
	specNetwork(t, nb, network.Spec{Name: name, Subnet: "198.19.81.0/24", IPv6Subnet: "fd00:198:19:81::/64"})
	list := confList(t, name, "1.0.0", nil)
	a := newContainer(t, newRuntime(t, l.Nodes[0]), list)
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, l.Nodes[1]), list)
	b.mustAdd(t, ctx)
	if a.ip6() == nil || b.ip6() == nil {
		t.Fatalf("dual-stack ADD results without IPv6: %v / %v", a.result.IPs, b.result.IPs)
	}
	const port, closed = 7081, 7082
	srv := startDualServer(t, b, port)
	other := startDualServer(t, b, closed)

	// Allowed path: default-allow lets IPv6 TCP and UDP through.
	reachTCP(t, a, b.ip6(), port, "default-allow, IPv6")
	reachUDP(t, a, srv, b.ip6(), "allow6")
	reachTCP(t, a, b.ip6(), closed, "default-allow, IPv6, the other port")

	if err := policy.SetIsolation(ctx, nb, name, policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"tcp", "udp"} {
		segPolicy(t, nb, policy.Spec{Name: name + "-" + proto, Network: name, Action: policy.Allow,
			From: []string{"any"}, Proto: proto, Port: fmt.Sprint(port)})
	}
	if err := settleHV(ctx, nb); err != nil {
		t.Fatal(err)
	}
	// Both families through the policy.
	reachTCP(t, a, b.ip(), port, "default-deny + allow policy, IPv4")
	reachUDP(t, a, srv, b.ip(), "policy4")
	reachTCP(t, a, b.ip6(), port, "default-deny + allow policy, IPv6")
	reachUDP(t, a, srv, b.ip6(), "policy6")
	// The other port stays closed over both.
	for i := 0; i < 5; i++ {
		for _, dst := range []net.IP{b.ip(), b.ip6()} {
			if err := echo(a, dst, closed, time.Second); err == nil {
				t.Fatalf("default-deny: TCP to %s:%d connected (probe %d); only port %d is allowed", dst, closed, i+1, port)
			}
			if err := udpSend(a, dst, closed, fmt.Sprintf("deny-%s-%d", dst, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Datagrams sent before these allowed ones have had their chance to arrive.
	reachUDP(t, a, srv, b.ip(), "after4")
	reachUDP(t, a, srv, b.ip6(), "after6")
	for i := 0; i < 5; i++ {
		for _, dst := range []net.IP{b.ip(), b.ip6()} {
			if p := fmt.Sprintf("deny-%s-%d", dst, i); other.received(p) {
				t.Fatalf("default-deny: UDP datagram %q to the closed port arrived", p)
			}
		}
	}

	// And back: default-allow opens the other port again.
	if err := policy.SetIsolation(ctx, nb, name, policy.DefaultAllow); err != nil {
		t.Fatal(err)
	}
	reachTCP(t, a, b.ip6(), closed, "default-allow again, IPv6")
	reachUDP(t, a, other, b.ip6(), "reopen6")
}

// TestNetListFreeOverlappingExcludes: `ovlmgr net list` counts addresses
// in overlapping --exclude ranges once, and its FREE is what ovn-northd's
// IPAM really hands out: exactly FREE containers get an address, the next
// one does not.
func TestNetListFreeOverlappingExcludes(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("fx%d", os.Getpid()%10000)
	// /28: hosts .1-.14; gateway .1; .2-.6, .5-.9 and .9 overlap: .1-.9
	// excluded, .10-.14 free (5).
	const want = 5
	specNetwork(t, nb, network.Spec{Name: name, Subnet: "198.19.82.0/28",
		Exclude: []string{"198.19.82.2..198.19.82.6", "198.19.82.5..198.19.82.9", "198.19.82.9"}})
	listFree := func() int {
		t.Helper()
		var nets []network.Network
		cliJSON(ctx, t, &nets, "--nb", l.NB, "net", "list", "-o", "json")
		for _, n := range nets {
			if n.Name == name {
				return n.Free
			}
		}
		t.Fatalf("net list: no network %s", name)
		return 0
	}
	if got := listFree(); got != want {
		t.Fatalf("net list FREE %d; want %d (gateway .1 and the overlapping excludes .2-.6, .5-.9, .9 leave .10-.14)", got, want)
	}
	node := l.Nodes[0]
	seen := map[string]bool{}
	for i := 0; i < want; i++ {
		p, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: name, Node: node.SystemID,
			Container: fmt.Sprintf("free%d-%d", os.Getpid(), i), IfName: "eth0"})
		if err != nil {
			t.Fatalf("port %d of %d: %v", i+1, want, err)
		}
		ip := p.IP.String()
		if seen[ip] || !netip.MustParsePrefix("198.19.82.8/29").Contains(p.IP) || p.IP.As4()[3] < 10 {
			t.Fatalf("port %d got %s; want a new address in .10-.14", i+1, ip)
		}
		seen[ip] = true
		if got := listFree(); got != want-i-1 {
			t.Fatalf("net list FREE %d after %d ports; want %d", got, i+1, want-i-1)
		}
	}
	// FREE says 0: IPAM has nothing left either.
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if p, err := ovnport.Create(short, nb, ovnport.Spec{Network: name, Node: node.SystemID,
		Container: fmt.Sprintf("free%d-last", os.Getpid()), IfName: "eth0"}); err == nil {
		t.Fatalf("port beyond FREE got %s; FREE said none was left", p.IP)
	}
}

// cniDelPeer adds, on network n with a selecting service, a container with
// DNS alias and service label, and returns it with its IP; the service is
// "web" with selector app=del.
func cniDelPeer(t *testing.T, ctx context.Context, n, alias string) (*container, netip.Addr) {
	t.Helper()
	l := sharedLab(t)
	list := confList(t, n, "1.1.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true, "labels": true}})
	c := newContainer(t, newRuntime(t, l.Nodes[1]), list)
	c.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{alias}, "labels": map[string]string{"app": "del"}}
	if err := c.add(ctx); err != nil {
		t.Fatalf("ADD: %v\n%s", err, c.rt.exec.stderr.String())
	}
	ip, _ := netip.AddrFromSlice(c.ip().To4())
	return c, ip
}

// delNetwork makes network name (subnet) on its own router, with service
// "web" selecting app=del on port 8080.
func delNetwork(t *testing.T, ctx context.Context, nb client.Client, name, subnet, vip string) {
	t.Helper()
	// A service VIP is reached through a router.
	dsNetwork(ctx, t, nb, name, subnet, name+"-r")
	if _, err := service.Create(ctx, nb, service.Spec{Name: "web", Network: name, VIP: vip,
		Selector: map[string]string{"app": "del"}, TargetPort: 8080}); err != nil {
		t.Fatal(err)
	}
}

// assertNamed checks whether the network's DNS records and service "web"
// still hold the container (alias, IP): want true or false.
func assertNamed(t *testing.T, ctx context.Context, nb client.Client, net, alias string, ip netip.Addr, want bool, when string) {
	t.Helper()
	recs, err := dns.Records(ctx, nb, net)
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for k, v := range recs {
		if strings.HasPrefix(k, strings.ToLower(alias)+".") || strings.Contains(" "+v+" ", " "+ip.String()+" ") {
			named = true
		}
	}
	s, err := service.Get(ctx, nb, net, "web")
	if err != nil {
		t.Fatal(err)
	}
	backend := strings.Contains(fmt.Sprint(s.Backends), ip.String()+":")
	if named != want || backend != want {
		t.Fatalf("%s: DNS names it %v (records %v), service backend %v (backends %v); want %v for both", when, named, recs, backend, s.Backends, want)
	}
}

// TestCNIDelRemovesNameAndBackend: DEL of a container (run by hand with no
// prevResult, as after a runtime lost its cache) removes its DNS name and
// its service backend, read from its NB port.
func TestCNIDelRemovesNameAndBackend(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("dd%d", os.Getpid()%10000)
	delNetwork(t, ctx, nb, name, "198.19.83.0/24", "198.19.83.200:80")
	c, ip := cniDelPeer(t, ctx, name, "gone1")
	assertNamed(t, ctx, nb, name, "gone1", ip, true, "after ADD")

	conf, err := json.Marshal(map[string]interface{}{"cniVersion": "1.1.0", "name": name, "type": "ovlmgr-cni", "network": name})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + c.ns.Path(), "CNI_IFNAME=" + c.ifName, "CNI_PATH=" + cniPluginDir(t)}
	if out, code, msg := rawPlugin(t, ctx, c.rt.node, env, string(conf)); code != 0 {
		t.Fatalf("DEL without prevResult: code %d %s (%s)", code, msg, out)
	}
	assertGone(t, nb, c.rt.node, c.id, c.ifName)
	assertNamed(t, ctx, nb, name, "gone1", ip, false, "after DEL")
}

// TestCNIDelPrevResultWhenPortGone: when the container's NB port is already
// gone (deleted out of band), DEL still removes its DNS name and service
// backend, from the addresses in prevResult.
func TestCNIDelPrevResultWhenPortGone(t *testing.T) {
	nb := cniNB(t, sharedLab(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("dp%d", os.Getpid()%10000)
	delNetwork(t, ctx, nb, name, "198.19.84.0/24", "198.19.84.200:80")
	c, ip := cniDelPeer(t, ctx, name, "gone2")
	assertNamed(t, ctx, nb, name, "gone2", ip, true, "after ADD")
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: name})
	if err != nil || len(ps) != 1 || ps[0].Container != c.id {
		t.Fatalf("ports of %s: %v (%v); want the one of container %s", name, ps, err, c.id)
	}
	if err := ovnport.Delete(ctx, nb, ps[0].Name); err != nil {
		t.Fatal(err)
	}
	// The port is gone; its name and backend are not.
	assertNamed(t, ctx, nb, name, "gone2", ip, true, "after deleting the NB port out of band")
	// libcni passes the cached ADD result as prevResult.
	if err := c.del(ctx); err != nil {
		t.Fatalf("DEL: %v\n%s", err, c.rt.exec.stderr.String())
	}
	assertGone(t, nb, c.rt.node, c.id, c.ifName)
	assertNamed(t, ctx, nb, name, "gone2", ip, false, "after DEL with prevResult")
}

// TestCNIDelPrevResultAddressReused: when the container's NB port is gone
// and its address has gone to another container, DEL from prevResult leaves
// that container's DNS name and service backend alone (they are the
// address's now). Before, DEL removed every record of the address and took
// it out of every service.
func TestCNIDelPrevResultAddressReused(t *testing.T) {
	nb := cniNB(t, sharedLab(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("dr%d", os.Getpid()%10000)
	delNetwork(t, ctx, nb, name, "198.19.85.0/24", "198.19.85.200:80")
	// No pool: its ports would take the freed address first.
	if _, err := dbconn.Transact(ctx, nb, dbops.AddPairs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(name)}, "external_ids",
		map[string]string{ovnport.KeyPoolSize: "0"})); err != nil {
		t.Fatal(err)
	}
	old, ip := cniDelPeer(t, ctx, name, "old3")
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: name})
	if err != nil || len(ps) != 1 || ps[0].Container != old.id {
		t.Fatalf("ports of %s: %v (%v); want the one of container %s", name, ps, err, old.id)
	}
	// The port goes out of band (with its names: as node gc removes a port).
	if err := service.ContainerDeleted(ctx, nb, name, []net.IP{ip.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if err := ovnport.Delete(ctx, nb, ps[0].Name); err != nil {
		t.Fatal(err)
	}
	// Another container takes the address.
	l := sharedLab(t)
	list := confList(t, name, "1.1.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true, "labels": true}})
	// On the same node: the control service refuses a node to remove
	// what names another node's address, so across nodes it hid this.
	now := newContainer(t, newRuntime(t, l.Nodes[1]), list)
	now.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{"new3"}, "labels": map[string]string{"app": "del"},
		"ips": []string{netip.PrefixFrom(ip, 24).String()}}
	if err := now.add(ctx); err != nil {
		t.Fatalf("ADD with the freed address %s: %v\n%s", ip, err, now.rt.exec.stderr.String())
	}
	assertNamed(t, ctx, nb, name, "new3", ip, true, "after the new container's ADD")
	// The old container's DEL, with its cached result.
	if err := old.del(ctx); err != nil {
		t.Fatalf("DEL: %v\n%s", err, old.rt.exec.stderr.String())
	}
	recs, err := dns.Records(ctx, nb, name)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for k, v := range recs {
		if strings.HasPrefix(k, "new3.") && v == ip.String() {
			found = true
		}
	}
	s, err := service.Get(ctx, nb, name, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !found || !strings.Contains(fmt.Sprint(s.Backends), ip.String()+":") {
		t.Fatalf("after the old container's DEL: new3 -> %s in DNS %v (records %v), backend %v (backends %v); want both kept",
			ip, found, recs, strings.Contains(fmt.Sprint(s.Backends), ip.String()+":"), s.Backends)
	}
	if err := now.del(ctx); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	assertNamed(t, ctx, nb, name, "new3", ip, false, "after the new container's DEL")
}

// TestRequestedIPHeldDynamically: a requested IP is refused when another
// port holds it as a dynamic address (assigned by ovn-northd, not pinned
// as static), as it is when held statically; a free address is accepted.
func TestRequestedIPHeldDynamically(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("dy%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.85.0/24")
	// A port with a dynamic address only (as ovn-nbctl makes it, or an
	// attach still waiting to pin its address).
	holder := fmt.Sprintf("dynholder%d", os.Getpid())
	nbctl := func(args ...string) string {
		t.Helper()
		out, err := l.Nodes[0].Command(ctx, "ovn-nbctl", append([]string{"--db=" + l.NB, "--wait=sb"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovn-nbctl %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	nbctl("lsp-add", name, holder, "--", "lsp-set-addresses", holder, "0a:58:c6:13:55:01 dynamic")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := l.Nodes[0].Command(ctx, "ovn-nbctl", "--db="+l.NB, "--if-exists", "lsp-del", holder).CombinedOutput(); err != nil {
			t.Errorf("cleanup port %s: %v: %s", holder, err, out)
		}
	})
	var held netip.Addr
	for deadline := time.Now().Add(30 * time.Second); !held.IsValid(); time.Sleep(20 * time.Millisecond) {
		if f := strings.Fields(strings.Trim(nbctl("get", "Logical_Switch_Port", holder, "dynamic_addresses"), `"`)); len(f) >= 2 {
			held, _ = netip.ParseAddr(f[1])
		}
		if time.Now().After(deadline) {
			t.Fatal("ovn-northd gave the dynamic port no address")
		}
	}
	gw := netip.MustParseAddr("198.19.85.1")
	spec := func(id string, ip netip.Addr) ovnport.Spec {
		return ovnport.Spec{Network: name, Subnet: netip.MustParsePrefix("198.19.85.0/24"), Gateway: gw,
			Node: l.Nodes[0].SystemID, Container: id, IfName: "eth0", IP: ip}
	}
	_, err := ovnport.Create(ctx, nb, spec(fmt.Sprintf("dyn%d-a", os.Getpid()), held))
	if !errors.Is(err, ovnport.ErrAddressInUse) || !strings.Contains(fmt.Sprint(err), holder) {
		t.Fatalf("requesting %s, held dynamically by %s: %v; want ErrAddressInUse naming %s", held, holder, err, holder)
	}
	free := netip.MustParseAddr("198.19.85.250")
	if _, err := ovnport.Create(ctx, nb, spec(fmt.Sprintf("dyn%d-b", os.Getpid()), free)); err != nil {
		t.Fatalf("requesting the free %s: %v", free, err)
	}
}
