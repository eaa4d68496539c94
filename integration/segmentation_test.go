package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// Segmentation tests: routers (tenants), isolation, policies and
// anti-spoofing on the shared 3-node lab, with containers wired by the real
// ovlmgr-cni on different nodes. Every network here is on a router of its
// own test, so subnets never collide with other tests' networks.

// segName is a name unique to this test process.
func segName(s string) string { return fmt.Sprintf("%s%d", s, os.Getpid()%10000) }

// segRouter creates router name, deleted (with its networks detached) at
// test end.
func segRouter(t testing.TB, nb client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := router.Create(ctx, nb, name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := network.DeleteRouter(ctx, nb, name, true); err != nil {
			t.Errorf("cleanup router %s: %v", name, err)
		}
	})
}

// segNet creates network name on router r with isolation mode, deleted
// (with its containers' ports, port group and policies) at test end.
func segNet(t testing.TB, nb client.Client, name, subnet, r, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := network.Create(ctx, nb, network.Spec{Name: name, Subnet: subnet, Router: r, Isolation: mode}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := network.Delete(ctx, nb, name, true); err != nil {
			t.Errorf("cleanup network %s: %v", name, err)
		}
	})
}

// segCtr adds a container to network net on node with the real plugin.
func segCtr(t testing.TB, ctx context.Context, node *lab.Node, net string) *container {
	t.Helper()
	c := newContainer(t, newRuntime(t, node), confList(t, net, "1.0.0", nil))
	c.mustAdd(t, ctx)
	return c
}

// segPolicy creates a policy (deleted at test end if still there).
func segPolicy(t testing.TB, nb client.Client, s policy.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := policy.Create(ctx, nb, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := policy.Delete(ctx, nb, s.Name); err != nil && !errors.Is(err, policy.ErrNotFound) {
			t.Errorf("cleanup policy %s: %v", s.Name, err)
		}
	})
}

// udpSink records the UDP payloads a container receives on a port.
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
	kick chan struct{}
}

// segUDPSink listens on c's address, port; closed at test end.
func segUDPSink(t testing.TB, c *container, port int) *udpSink {
	t.Helper()
	s := &udpSink{kick: make(chan struct{}, 1)}
	if err := c.ns.Do(func(ns.NetNS) error {
		var err error
		s.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: c.ip(), Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := s.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// received returns the payloads received so far.
func (s *udpSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// waitFor waits until payload has arrived; false after timeout.
func (s *udpSink) waitFor(payload string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		for _, g := range s.received() {
			if g == payload {
				return true
			}
		}
		select {
		case <-s.kick:
		case <-deadline:
			return false
		}
	}
}

// sendUDP sends payload from c (from source address src when valid) to
// dst:port, count times.
func sendUDP(c *container, src net.IP, dst net.IP, port int, payload string, count int) error {
	return c.ns.Do(func(ns.NetNS) error {
		var laddr *net.UDPAddr
		if src != nil {
			laddr = &net.UDPAddr{IP: src}
		}
		conn, err := net.DialUDP("udp4", laddr, &net.UDPAddr{IP: dst, Port: port})
		if err != nil {
			return err
		}
		defer conn.Close()
		for i := 0; i < count; i++ {
			// ECONNREFUSED reports an ICMP port unreachable for an
			// earlier datagram (a host with no listener answered):
			// not a failure to send; the next write goes out.
			if _, err := conn.Write([]byte(payload)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
		}
		return nil
	})
}

// marker sends honest datagrams from c to sink s until one arrives: packets
// c sent earlier on the same path have had their chance to arrive by then.
func marker(t testing.TB, c *container, s *udpSink, dst net.IP, port int, tag string) {
	t.Helper()
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("%s-%d", tag, i)
		if err := sendUDP(c, nil, dst, port, p, 1); err != nil {
			t.Fatal(err)
		}
		if s.waitFor(p, 250*time.Millisecond) {
			return
		}
	}
	t.Fatalf("honest datagrams from %s to %s:%d never arrived (got %v)", c.id, dst, port, s.received())
}

// tcpServer accepts on c's address:port and echoes one line per connection.
type tcpServer struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
}

func segTCPServer(t testing.TB, c *container, port int) *tcpServer {
	t.Helper()
	s := &tcpServer{}
	if err := c.ns.Do(func(ns.NetNS) error {
		var err error
		s.ln, err = net.Listen("tcp4", net.JoinHostPort(c.ip().String(), fmt.Sprint(port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		for {
			conn, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.mu.Unlock()
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(conn, io.LimitReader(conn, 64))
			}()
		}
	}()
	return s
}

func (s *tcpServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// echo dials dst:port (IPv4 or IPv6) from c within timeout, sends a line
// and reads it back: success means the connection was let in and the
// replies came out.
func echo(c *container, dst net.IP, port int, timeout time.Duration) error {
	return c.ns.Do(func(ns.NetNS) error {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.Dial("tcp", net.JoinHostPort(dst.String(), fmt.Sprint(port)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("ping " + c.id)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if cw, ok := conn.(*net.TCPConn); ok {
			_ = cw.CloseWrite()
		}
		back, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		if string(back) != string(msg) {
			return fmt.Errorf("echo: got %q, want %q", back, msg)
		}
		return nil
	})
}

// eventually retries echo until it succeeds (policy changes take a moment
// to reach the nodes) or the deadline passes.
func eventually(c *container, dst net.IP, port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := echo(c, dst, port, 300*time.Millisecond)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// closedEventually waits, for at most within, until c's connections to
// dst:port are refused entry, concluded as denied does: the same echo from
// c to okDst:okPort (a path that must stay open) succeeds, denyProbes
// echoes in a row to dst:port fail, and okDst:okPort still answers.
func closedEventually(c *container, dst net.IP, port int, within time.Duration, okDst net.IP, okPort int) error {
	err := deniedWithin(within, echoOK(c, okDst, okPort), echoProbe(c, dst, port))
	if err != nil {
		return fmt.Errorf("%s -> %s:%d not closed within %s (control %s:%d): %w", c.id, dst, port, within, okDst, okPort, err)
	}
	return nil
}

// closedNow is closedEventually without the wait: the path must be closed
// already.
func closedNow(c *container, dst net.IP, port int, okDst net.IP, okPort int) error {
	if err := denied(echoOK(c, okDst, okPort), echoProbe(c, dst, port)); err != nil {
		return fmt.Errorf("%s -> %s:%d (control %s:%d): %w", c.id, dst, port, okDst, okPort, err)
	}
	return nil
}

// echoProbe is one echo with a 1 s timeout; echoOK retries it (a lost
// first packet) for control paths.
func echoProbe(c *container, dst net.IP, port int) func() error {
	return func() error { return echo(c, dst, port, time.Second) }
}

func echoOK(c *container, dst net.IP, port int) func() error {
	return retried(5, echoProbe(c, dst, port))
}

func segNodes(t testing.TB, l *lab.Lab) (n1, n2, n3 *lab.Node) {
	t.Helper()
	if len(l.Nodes) < 3 {
		t.Fatalf("lab has %d nodes; want 3", len(l.Nodes))
	}
	return l.Nodes[0], l.Nodes[1], l.Nodes[2]
}

// TestRoutersAndTenants: two networks on one router reach each other
// across nodes (ping and TCP); a second tenant uses the same subnets, works
// inside, and no packet crosses between the tenants.
func TestRoutersAndTenants(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	blue, red := segName("tb"), segName("tr")
	segRouter(t, nb, blue)
	segRouter(t, nb, red)
	ba, bb, ra, rb := segName("ba"), segName("bb"), segName("ra"), segName("rb")
	segNet(t, nb, ba, "198.18.64.0/24", blue, "")
	segNet(t, nb, bb, "198.18.65.0/24", blue, "")
	segNet(t, nb, ra, "198.18.64.0/24", red, "") // same subnets, other tenant
	segNet(t, nb, rb, "198.18.65.0/24", red, "")

	a1 := segCtr(t, ctx, n1, ba)
	b1 := segCtr(t, ctx, n2, bb)
	a2 := segCtr(t, ctx, n3, ra)
	b2 := segCtr(t, ctx, n1, rb)

	// Inside each tenant: across networks and nodes.
	if err := a1.ping(ctx, b1.ip()); err != nil {
		t.Fatalf("blue: %v", err)
	}
	if err := tcpTransfer(ctx, b1, a1, 256<<10); err != nil {
		t.Fatalf("blue TCP %s -> %s: %v", a1.id, b1.id, err)
	}
	if err := b2.ping(ctx, a2.ip()); err != nil {
		t.Fatalf("red: %v", err)
	}
	if err := tcpTransfer(ctx, a2, b2, 256<<10); err != nil {
		t.Fatalf("red TCP %s -> %s: %v", b2.id, a2.id, err)
	}

	// Between tenants: the red containers listen; blue sends to their
	// addresses (which in blue's view are blue addresses or nobody).
	const port = 7001
	sa2, sb2 := segUDPSink(t, a2, port), segUDPSink(t, b2, port)
	for _, from := range []*container{a1, b1} {
		for _, to := range []*container{a2, b2} {
			if err := sendUDP(from, nil, to.ip(), port, "cross-"+from.id, 5); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Honest red traffic to both sinks after the blue datagrams.
	marker(t, b2, sa2, a2.ip(), port, "red-a")
	marker(t, a2, sb2, b2.ip(), port, "red-b")
	for _, s := range []*udpSink{sa2, sb2} {
		for _, g := range s.received() {
			if strings.HasPrefix(g, "cross-") {
				t.Errorf("a datagram crossed tenants: %q", g)
			}
		}
	}
}

// TestIsolationAndPolicies: a default-deny network lets nothing in until a
// policy allows it; an allow for tcp/8080 from network A lets A reach 8080
// and nothing else (8081 closed, B out), with replies; deleting it closes
// it; a deny in a default-allow network blocks just what it names.
func TestIsolationAndPolicies(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("pr")
	segRouter(t, nb, r)
	na, nbn, nt := segName("pa"), segName("pb"), segName("pt")
	segNet(t, nb, na, "198.18.66.0/24", r, "")
	segNet(t, nb, nbn, "198.18.67.0/24", r, "")
	segNet(t, nb, nt, "198.18.68.0/24", r, policy.DefaultDeny)
	a := segCtr(t, ctx, n1, na)
	b := segCtr(t, ctx, n2, nbn)
	tc := segCtr(t, ctx, n3, nt)
	s8080, s8081 := segTCPServer(t, tc, 8080), segTCPServer(t, tc, 8081)
	// Control paths, open throughout: every "closed" below is concluded
	// only after the same probe succeeds on one of these.
	segTCPServer(t, a, 8080)
	segTCPServer(t, b, 8080)
	sb81 := segTCPServer(t, b, 8081)

	// Nothing gets in; the network's own connections and their replies work.
	if err := closedNow(a, tc.ip(), 8080, b.ip(), 8080); err != nil {
		t.Fatalf("default-deny: A -> T:8080 without a policy: %v", err)
	}
	if err := tc.ping(ctx, a.ip()); err != nil {
		t.Fatalf("default-deny: T's own ping to A and its reply: %v", err)
	}
	if err := tcpTransfer(ctx, a, tc, 64<<10); err != nil {
		t.Fatalf("default-deny: T's own TCP to A: %v", err)
	}

	segPolicy(t, nb, policy.Spec{Name: segName("web"), Network: nt, Action: policy.Allow, From: []string{na}, Proto: "tcp", Port: "8080", Priority: 100, Log: true})
	if err := eventually(a, tc.ip(), 8080, 10*time.Second); err != nil {
		t.Fatalf("allow from A tcp/8080: A -> T:8080 (with replies): %v", err)
	}
	if err := closedNow(a, tc.ip(), 8081, tc.ip(), 8080); err != nil {
		t.Errorf("allow tcp/8080: A -> T:8081: %v", err)
	}
	if err := closedNow(b, tc.ip(), 8080, a.ip(), 8080); err != nil {
		t.Errorf("allow from A: B -> T:8080: %v", err)
	}
	if err := denied(retried(5, func() error { return segPingOnce(ctx, a, b.ip()) }), func() error { return segPingOnce(ctx, a, tc.ip()) }); err != nil {
		t.Errorf("allow tcp/8080: A's ping to T (control: A's ping to B): %v", err)
	}
	if n := s8081.count(); n != 0 {
		t.Errorf("T:8081 accepted %d connections", n)
	}
	if s8080.count() == 0 {
		t.Error("T:8080 accepted nothing")
	}
	// --log: ovn-controller on T's node logs the match under the policy name.
	if !segLogged(n3, `name="`+segName("web")+`"`, 5*time.Second) {
		t.Errorf("ovn-controller log of %s has no acl_log line naming %s", n3.Name, segName("web"))
	}

	// Precedence on the datapath: a deny at the same priority wins over the
	// allow; a higher-priority allow wins over the deny.
	segPolicy(t, nb, policy.Spec{Name: segName("deny8080"), Network: nt, Action: policy.Deny, Proto: "tcp", Port: "8080", Priority: 100})
	if err := closedEventually(a, tc.ip(), 8080, 10*time.Second, b.ip(), 8080); err != nil {
		t.Fatalf("deny at equal priority: %v", err)
	}
	segPolicy(t, nb, policy.Spec{Name: segName("vip8080"), Network: nt, Action: policy.Allow, From: []string{na}, Proto: "tcp", Port: "8080", Priority: 200})
	if err := eventually(a, tc.ip(), 8080, 10*time.Second); err != nil {
		t.Fatalf("allow at higher priority: %v", err)
	}
	if err := closedNow(b, tc.ip(), 8080, a.ip(), 8080); err != nil {
		t.Errorf("allow from A at priority 200: B -> T:8080: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	for _, name := range []string{segName("vip8080"), segName("deny8080")} {
		if err := policy.Delete(pctx, nb, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := eventually(a, tc.ip(), 8080, 10*time.Second); err != nil {
		t.Fatalf("only the first allow left: %v", err)
	}
	if err := policy.Delete(pctx, nb, segName("web")); err != nil {
		t.Fatal(err)
	}
	pcancel()
	if err := closedEventually(a, tc.ip(), 8080, 10*time.Second, b.ip(), 8080); err != nil {
		t.Fatalf("policy deleted: %v", err)
	}

	// A deny in default-allow network B blocks just tcp/8080 from A.
	if err := eventually(a, b.ip(), 8080, 5*time.Second); err != nil {
		t.Fatalf("default-allow: A -> B:8080: %v", err)
	}
	segPolicy(t, nb, policy.Spec{Name: segName("no80"), Network: nbn, Action: policy.Deny, From: []string{na}, Proto: "tcp", Port: "8080", Priority: 100})
	if err := closedEventually(a, b.ip(), 8080, 10*time.Second, b.ip(), 8081); err != nil {
		t.Fatalf("deny A tcp/8080 into B: %v", err)
	}
	if err := echo(a, b.ip(), 8081, 2*time.Second); err != nil {
		t.Errorf("deny tcp/8080: A -> B:8081 blocked too: %v", err)
	}
	if err := a.ping(ctx, b.ip()); err != nil {
		t.Errorf("deny tcp/8080: A's ping to B blocked too: %v", err)
	}
	if err := echo(tc, b.ip(), 8080, 2*time.Second); err != nil {
		t.Errorf("deny from A: T -> B:8080 blocked too: %v", err)
	}
	if sb81.count() == 0 {
		t.Error("B:8081 accepted nothing")
	}
}

// TestAntiSpoofing: a container sending with a forged source IP, or with a
// forged MAC, reaches nobody (checked at the receivers, same network and
// across the router), while its honest traffic still arrives.
func TestAntiSpoofing(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("sr")
	segRouter(t, nb, r)
	na, nbn := segName("sa"), segName("sb")
	segNet(t, nb, na, "198.18.69.0/24", r, "")
	segNet(t, nb, nbn, "198.18.70.0/24", r, "")
	spoofer := segCtr(t, ctx, n1, na)
	peer := segCtr(t, ctx, n2, na)
	remote := segCtr(t, ctx, n3, nbn)
	const port = 7002
	sPeer, sRemote := segUDPSink(t, peer, port), segUDPSink(t, remote, port)
	marker(t, spoofer, sPeer, peer.ip(), port, "honest-peer")
	marker(t, spoofer, sRemote, remote.ip(), port, "honest-remote")

	// Forged source IP: a second, unassigned address of the same subnet.
	forged := net.IPv4(198, 18, 69, 250)
	if err := spoofer.ns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(spoofer.ifName)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: forged, Mask: net.CIDRMask(32, 32)}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []*container{peer, remote} {
		if err := sendUDP(spoofer, forged, to.ip(), port, "forged-ip", 5); err != nil {
			t.Fatal(err)
		}
	}
	marker(t, spoofer, sPeer, peer.ip(), port, "after-ip-peer")
	marker(t, spoofer, sRemote, remote.ip(), port, "after-ip-remote")

	// Forged MAC: change the interface's MAC, send, restore it.
	var orig net.HardwareAddr
	setMAC := func(mac net.HardwareAddr) {
		t.Helper()
		if err := spoofer.ns.Do(func(ns.NetNS) error {
			link, err := netlink.LinkByName(spoofer.ifName)
			if err != nil {
				return err
			}
			if orig == nil {
				orig = link.Attrs().HardwareAddr
			}
			return netlink.LinkSetHardwareAddr(link, mac)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setMAC(net.HardwareAddr{0x0a, 0x00, 0x00, 0xde, 0xad, 0x01})
	for _, to := range []*container{peer, remote} {
		if err := sendUDP(spoofer, nil, to.ip(), port, "forged-mac", 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := segPingOnce(ctx, spoofer, peer.ip()); err == nil {
		t.Error("ping with a forged MAC got an answer")
	}
	setMAC(orig)
	marker(t, spoofer, sPeer, peer.ip(), port, "after-mac-peer")
	marker(t, spoofer, sRemote, remote.ip(), port, "after-mac-remote")

	for name, s := range map[string]*udpSink{"peer": sPeer, "remote": sRemote} {
		for _, g := range s.received() {
			if strings.HasPrefix(g, "forged") {
				t.Errorf("%s received a %s datagram", name, g)
			}
		}
	}
}

// TestBadPolicyInputOnLab: bad input gets a clear error and writes nothing
// to the lab's NB.
func TestBadPolicyInputOnLab(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := segName("br")
	segRouter(t, nb, r)
	n := segName("bn")
	segNet(t, nb, n, "198.18.71.0/24", r, "")
	counts := func() string {
		var b strings.Builder
		for _, c := range []struct {
			table string
			count func() (int, error)
		}{
			{nbdb.ACLTable, func() (int, error) { return dbops.Count[nbdb.ACL](ctx, nb, nil) }},
			{nbdb.AddressSetTable, func() (int, error) { return dbops.Count[nbdb.AddressSet](ctx, nb, nil) }},
			{nbdb.PortGroupTable, func() (int, error) { return dbops.Count[nbdb.PortGroup](ctx, nb, nil) }},
			{nbdb.LogicalSwitchTable, func() (int, error) { return dbops.Count[nbdb.LogicalSwitch](ctx, nb, nil) }},
		} {
			n, err := c.count()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=%d ", c.table, n)
		}
		return b.String()
	}
	before := counts()
	for _, tc := range []struct {
		s    policy.Spec
		want string
	}{
		{policy.Spec{Name: "x", Network: segName("nosuch"), Action: policy.Allow}, "not found"},
		{policy.Spec{Name: "x", Network: n, Action: policy.Allow, From: []string{"198.18.0.0/33"}}, "invalid CIDR"},
		{policy.Spec{Name: "x", Network: n, Action: policy.Allow, Proto: "tcp", Port: "0"}, `port "0"`},
		{policy.Spec{Name: "x", Network: n, Action: policy.Allow, Proto: "tcp", Port: "70000"}, `port "70000"`},
		{policy.Spec{Name: "x", Network: n, Action: "allow,deny"}, "exactly one of allow or deny"},
	} {
		if _, err := policy.Create(ctx, nb, tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%+v) = %v; want %q", tc.s, err, tc.want)
		}
	}
	if after := counts(); after != before {
		t.Errorf("bad input wrote rows: %s -> %s", before, after)
	}
}

// segLogged polls node's ovn-controller log for want (the log is written
// by ovn-controller's packet-in thread shortly after the packet).
func segLogged(node *lab.Node, want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if b, err := os.ReadFile(filepath.Join(node.Dir, "ovn-controller.log")); err == nil && strings.Contains(string(b), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// segPingOnce sends one ping from c and waits a second for the reply: for
// checks that expect no answer (ping retries only help positive checks).
func segPingOnce(ctx context.Context, c *container, dst net.IP) error {
	out, err := nsexec.Command(ctx, c.ns.Path(), nil, "ping", "-n", "-q", "-c", "1", "-W", "1", dst.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", dst, c.id, err, out)
	}
	return nil
}

// TestAttachWithRunningContainers: attaching and detaching re-keys the
// network's switch row (its overlap scope changes); containers already on
// it keep working, and reach the router's other networks while attached.
func TestAttachWithRunningContainers(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("ar")
	segRouter(t, nb, r)
	nx, ny := segName("ax"), segName("ay")
	segNet(t, nb, nx, "198.18.74.0/24", "", "")
	segNet(t, nb, ny, "198.18.75.0/24", r, "")
	x1 := segCtr(t, ctx, n1, nx)
	x2 := segCtr(t, ctx, n2, nx)
	y1 := segCtr(t, ctx, n3, ny)
	if err := x1.ping(ctx, x2.ip()); err != nil {
		t.Fatalf("before attach: %v", err)
	}
	if err := denied(retried(5, func() error { return segPingOnce(ctx, x1, x2.ip()) }),
		func() error { return segPingOnce(ctx, x1, y1.ip()) }); err != nil {
		t.Fatalf("before attach: an unattached network to a router's network (control: its own peer): %v", err)
	}
	if err := network.Attach(ctx, nb, nx, r); err != nil {
		t.Fatal(err)
	}
	st := time.Now()
	if err := segEventuallyPing(ctx, x1, x2.ip(), 15*time.Second); err != nil {
		t.Fatalf("after attach, inside the network: %v", err)
	}
	t.Logf("first ping inside the network %v after attach returned", time.Since(st).Round(time.Millisecond))
	if err := segEventuallyPing(ctx, x2, y1.ip(), 15*time.Second); err != nil {
		t.Fatalf("after attach, to the router's other network: %v", err)
	}
	if err := tcpTransfer(ctx, y1, x1, 64<<10); err != nil {
		t.Fatalf("after attach, TCP: %v", err)
	}
	if err := network.Detach(ctx, nb, nx, r); err != nil {
		t.Fatal(err)
	}
	if err := segEventuallyPing(ctx, x2, x1.ip(), 15*time.Second); err != nil {
		t.Fatalf("after detach, inside the network: %v", err)
	}
	// The detach is in NB at once; the hosts drop the route when
	// ovn-controller has applied it, so allow it a moment to take effect.
	if err := segEventuallyUnreachable(ctx, x1, y1.ip(), x2.ip(), 10*time.Second); err != nil {
		t.Errorf("after detach, to the router's other network: %v", err)
	}
}

// segEventuallyUnreachable waits, for at most within, until dst stops
// answering c's pings, concluded as denied does: a ping to ok (a peer that
// must stay reachable) is answered, denyProbes pings in a row to dst get
// no reply, and ok still answers.
func segEventuallyUnreachable(ctx context.Context, c *container, dst, ok net.IP, within time.Duration) error {
	err := deniedWithin(within, retried(5, func() error { return segPingOnce(ctx, c, ok) }),
		func() error { return segPingOnce(ctx, c, dst) })
	if err != nil {
		return fmt.Errorf("%s -> %s still open after %s (control %s): %w", c.id, dst, within, ok, err)
	}
	return nil
}

// segEventuallyPing pings until a reply comes or within passes.
func segEventuallyPing(ctx context.Context, c *container, dst net.IP, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := segPingOnce(ctx, c, dst)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
