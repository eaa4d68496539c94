package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/site"
)

// siteEnv is a two-site lab with router r1 in each site: site A (s1) has
// networks web 198.19.1.0/24 and admin 198.19.3.0/24, site B (s2) has db
// 198.19.2.0/24; both routers are linked on transit switch ts1
// (198.18.254.0/24, gateway n1 of each site).
type siteEnv struct {
	ss         *lab.Sites
	a, b       *lab.Lab
	nbA, nbB   client.Client
	icnb       client.Client
	web, admin *container // site A: web-1 on n2, admin-1 on n1
	db         *container // site B: db-1 on n2
	linkedAt   time.Time
}

func siteNB(t testing.TB, l *lab.Lab) client.Client {
	t.Helper()
	return cniNB(t, l)
}

// upSites brings the two-site lab up, with networks, routers and
// containers, and links the routers.
func upSites(t testing.TB, ctx context.Context) *siteEnv {
	t.Helper()
	needLab(t)
	prereq.Bins(t, "ovn-ic")
	prereq.Files(t, "/usr/share/ovn/ovn-ic-nb.ovsschema", "/usr/share/ovn/ovn-ic-sb.ovsschema")
	ss, err := lab.UpSites(ctx, lab.SitesOptions{Name: uniqueName("st"), Sites: 2, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ss.Down(context.Background()); err != nil {
			t.Errorf("sites down: %v", err)
		}
	})
	// TLS sites (the suite's default) talk to the IC databases over ssl: only.
	if tlsWanted := os.Getenv(lab.EnvInsecure) != "1"; tlsWanted != (ss.TLS != nil) || tlsWanted != strings.HasPrefix(ss.ICNBTCP, "ssl:") {
		t.Fatalf("sites lab TLS %v (IC-NB %s), want TLS %v", ss.TLS != nil, ss.ICNBTCP, tlsWanted)
	}
	t.Logf("sites lab: IC databases over the WAN at %s, %s", ss.ICNBTCP, ss.ICSBTCP)
	e := &siteEnv{ss: ss, a: ss.Site(1), b: ss.Site(2)}
	e.nbA, e.nbB = siteNB(t, e.a), siteNB(t, e.b)
	if e.icnb, err = dbconn.ConnectICNB(ctx, ss.ICNB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.icnb.Close)
	mk := func(nb client.Client, name, subnet string) {
		if _, err := network.Create(ctx, nb, network.Spec{Name: name, Subnet: subnet, Domain: "ovl"}); err != nil {
			t.Fatal(err)
		}
		if err := network.Attach(ctx, nb, name, "r1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, nb := range []client.Client{e.nbA, e.nbB} {
		if _, err := router.Create(ctx, nb, "r1", nil); err != nil {
			t.Fatal(err)
		}
	}
	mk(e.nbA, "web", "198.19.1.0/24")
	mk(e.nbA, "admin", "198.19.3.0/24")
	mk(e.nbB, "db", "198.19.2.0/24")
	e.web = siteContainer(t, ctx, e.a.Nodes[1], "web", "web-1")
	e.admin = siteContainer(t, ctx, e.a.Nodes[0], "admin", "admin-1")
	e.db = siteContainer(t, ctx, e.b.Nodes[1], "db", "db-1")
	if _, err := site.LinkRouter(ctx, e.nbA, e.icnb, site.LinkSpec{Router: "r1", Transit: "ts1", IP: netip.MustParsePrefix("198.18.254.1/24"), Nodes: []string{e.a.Nodes[0].SystemID}}); err != nil {
		t.Fatal(err)
	}
	e.linkedAt = time.Now()
	if _, err := site.LinkRouter(ctx, e.nbB, e.icnb, site.LinkSpec{Router: "r1", Transit: "ts1", IP: netip.MustParsePrefix("198.18.254.2/24"), Nodes: []string{e.b.Nodes[0].SystemID}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// siteContainer adds a container named name (its DNS name: K8S_POD_NAME)
// on node to network net.
func siteContainer(t testing.TB, ctx context.Context, node *lab.Node, net, name string) *container {
	t.Helper()
	c := newContainer(t, newRuntime(t, node), confList(t, net, "1.0.0", nil))
	c.conf.Args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", name}}
	c.mustAdd(t, ctx)
	return c
}

// waitPing pings dst from c until it answers (ovn-ic's routes, the tunnel
// to the remote gateway and its neighbour entries take a moment).
func waitPing(ctx context.Context, c *container, dst net.IP, budget time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		err := nsexec.Command(ctx, c.ns.Path(), nil, "ping", "-n", "-q", "-c", "1", "-W", "0.3", dst.String()).Run()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > budget {
			return 0, fmt.Errorf("ping %s from %s: no answer within %s", dst, c.id, budget)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpConnect opens (and closes) a TCP connection from c to addr.
func siteConnect(c *container, addr string, timeout time.Duration) error {
	return c.ns.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp4", addr, timeout)
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// listen serves TCP on port in c (accepting and closing) until test end.
func listen(t testing.TB, c *container, port int) {
	t.Helper()
	serveTCP(t, c, c.ip(), port, func(conn net.Conn) { conn.Close() })
}

// queryA asks OVN's resolver (any address on udp/53; the network's
// gateway) for name's A record from inside c, without EDNS (trap 7).
func queryA(c *container, server net.IP, name string) (string, error) {
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: uint16(time.Now().UnixNano()), RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	pkt, err := q.Pack()
	if err != nil {
		return "", err
	}
	var ans string
	err = c.ns.Do(func(ns.NetNS) error {
		conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: server, Port: 53})
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(pkt); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil {
			return err
		}
		for _, a := range m.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				ans = net.IP(r.A[:]).String()
			}
		}
		if ans == "" {
			return fmt.Errorf("no A record for %s (rcode %s)", name, m.RCode)
		}
		return nil
	})
	return ans, err
}

// TestSites: two sites linked by OVN-IC. A container in site A reaches
// one in site B by IP (ping, TCP 1 MiB) over routes ovn-ic learned, and
// by DNS name once `site sync` carried the names; a default-deny policy
// in B allowing only A's web network (by CIDR) lets web-1 in and keeps
// admin-1 out; overlapping subnets are refused at create time (learned
// route) and at link time (published subnets); with B's interconnection
// gateway down A's local traffic is untouched and cross-site traffic comes
// back after it returns (the gap is logged).
func TestSites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := upSites(t, ctx)
	took, err := waitPing(ctx, e.web, e.db.ip(), 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, e.dump(ctx))
	}
	t.Logf("site link -> first cross-site ping answered: %s (after the second link: %s)", time.Since(e.linkedAt).Round(time.Millisecond), took.Round(time.Millisecond))
	routes, err := site.LearnedRoutes(ctx, e.nbA, "r1")
	if err != nil || routes["198.19.2.0/24"] != "198.18.254.2" {
		t.Fatalf("site A r1 learned routes %v, %v; want 198.19.2.0/24 via 198.18.254.2", routes, err)
	}
	if err := tcpTransfer(ctx, e.db, e.web, 1<<20); err != nil {
		t.Fatalf("TCP 1 MiB web-1 (A) -> db-1 (B): %v", err)
	}
	// DNS across sites: not before sync, yes after.
	if ip, err := queryA(e.web, e.web.result.IPs[0].Gateway, "db-1.db.ovl"); err == nil {
		t.Fatalf("db-1.db.ovl resolved in site A before any site sync: %s", ip)
	}
	for _, nb := range []client.Client{e.nbA, e.nbB, e.nbA} {
		if _, err := site.SyncDNS(ctx, nb, e.icnb); err != nil {
			t.Fatal(err)
		}
	}
	var ip string
	deadline := time.Now().Add(5 * time.Second)
	for ip, err = queryA(e.web, e.web.result.IPs[0].Gateway, "db-1.db.ovl"); err != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		ip, err = queryA(e.web, e.web.result.IPs[0].Gateway, "db-1.db.ovl")
	}
	if err != nil || ip != e.db.ip().String() {
		t.Fatalf("db-1.db.ovl from site A = %q, %v; want %s", ip, err, e.db.ip())
	}
	if ip, err := queryA(e.db, e.db.result.IPs[0].Gateway, "web-1.web.ovl"); err != nil || ip != e.web.ip().String() {
		t.Fatalf("web-1.web.ovl from site B = %q, %v; want %s", ip, err, e.web.ip())
	}
	listen(t, e.db, 5432)
	dbAddr := "db-1.db.ovl"
	if err := siteConnect(e.web, net.JoinHostPort(ip, "5432"), 2*time.Second); err != nil {
		t.Fatalf("TCP to %s (%s) from site A: %v", dbAddr, ip, err)
	}
	// A policy in B: default-deny on db, allow only site A's web network.
	if err := policy.SetIsolation(ctx, e.nbB, "db", policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	// By its name in site A (what policy create --from SITE/NETWORK does).
	from, err := site.ResolveFrom(ctx, e.icnb, []string{e.a.Name + "/web"})
	if err != nil || len(from) != 1 || from[0] != "198.19.1.0/24" {
		t.Fatalf("resolve %s/web: %v, %v; want 198.19.1.0/24", e.a.Name, from, err)
	}
	if _, err := policy.Create(ctx, e.nbB, policy.Spec{Name: "from-site-a-web", Network: "db", Action: "allow", From: from,
		Proto: "tcp", Port: "5432", Priority: policy.DefaultPriority}); err != nil {
		t.Fatal(err)
	}
	dbPort := net.JoinHostPort(e.db.ip().String(), "5432")
	if err := siteConnect(e.web, dbPort, 2*time.Second); err != nil {
		t.Fatalf("web-1 (site A web, allowed by B's policy) -> db-1:5432: %v", err)
	}
	// ICMP is not allowed by the policy: not even a ping, once B's
	// ovn-controllers have the ACLs (they follow the NB within moments).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if nsexec.Command(ctx, e.admin.ns.Path(), nil, "ping", "-n", "-q", "-c", "1", "-W", "1", e.db.ip().String()).Run() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin-1 still pings db-1 10 s after B's default-deny")
		}
	}
	if err := siteConnect(e.admin, dbPort, 1500*time.Millisecond); err == nil {
		t.Fatalf("admin-1 (site A admin, not allowed) connected to db-1:5432")
	}
	// Overlap: a network on site A's linked router with B's db subnet is
	// refused (learned route), and so is linking a router of site B whose
	// subnet overlaps A's web.
	_, err = network.Create(ctx, e.nbA, network.Spec{Name: "clash", Subnet: "198.19.2.0/25", Router: "r1"})
	var nerr error = err
	if err == nil || !errors.Is(err, site.ErrOverlap) || !strings.Contains(err.Error(), "198.19.2.0/24") {
		t.Fatalf("network 198.19.2.0/25 on site A's linked r1: %v; want refused naming B's 198.19.2.0/24 (ErrOverlap)", nerr)
	}
	t.Logf("create refused: %v", err)
	if _, err := router.Create(ctx, e.nbB, "r2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, e.nbB, network.Spec{Name: "web2", Subnet: "198.19.1.128/25", Router: "r2"}); err != nil {
		t.Fatal(err)
	}
	_, err = site.LinkRouter(ctx, e.nbB, e.icnb, site.LinkSpec{Router: "r2", Transit: "ts2", IP: netip.MustParsePrefix("198.18.253.2/24"), Nodes: []string{e.b.Nodes[0].SystemID}})
	if !errors.Is(err, site.ErrOverlap) || !strings.Contains(err.Error(), "198.19.1.0/24 of router r1 in site "+e.a.Name) {
		t.Fatalf("link of B's r2 (198.19.1.128/25) while A's r1 has 198.19.1.0/24: %v; want ErrOverlap naming it", err)
	}
	t.Logf("link refused: %v", err)

	gap, localFail := gatewayDown(t, ctx, e, dbPort, 3*time.Second)
	if localFail > 0 {
		t.Fatalf("site A local traffic (web-1 -> admin-1) failed %d time(s) while B's gateway was down", localFail)
	}
	t.Logf("site B's interconnection gateway down for 3s: cross-site gap %s, A's local traffic untouched", gap.Round(time.Millisecond))
}

// gatewayDown stops site B's gateway node's ovs-vswitchd for downFor while
// probing web-1 -> db-1 (TCP, cross-site) and web-1 -> admin-1 (ping,
// local to A) every 100 ms; it returns the cross-site gap (last success
// before to first success after) and the count of failed local probes.
func gatewayDown(t testing.TB, ctx context.Context, e *siteEnv, dbPort string, downFor time.Duration) (time.Duration, int) {
	t.Helper()
	var mu sync.Mutex
	var lastOK, firstBad, back time.Time
	localFail := 0
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			err := siteConnect(e.web, dbPort, 300*time.Millisecond)
			now := time.Now()
			mu.Lock()
			switch {
			case err == nil && firstBad.IsZero():
				lastOK = now
			case err != nil && firstBad.IsZero():
				firstBad = now
			case err == nil && !firstBad.IsZero() && back.IsZero():
				back = now
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := nsexec.Command(ctx, e.web.ns.Path(), nil, "ping", "-n", "-q", "-c", "1", "-W", "1", e.admin.ip().String()).Run(); err != nil {
				mu.Lock()
				localFail++
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := e.b.Restart(ctx, "n1", "ovs-vswitchd", lab.RestartOptions{DownFor: downFor}); err != nil {
		close(done)
		wg.Wait()
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		ok := !back.IsZero()
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if firstBad.IsZero() {
		t.Fatalf("cross-site traffic never failed while B's gateway was down: is it really through n1?")
	}
	if back.IsZero() {
		t.Fatalf("cross-site traffic did not come back within 30 s of B's gateway returning")
	}
	return back.Sub(lastOK), localFail
}

// dump is what both sites' databases say about the link, for a failure.
func (e *siteEnv) dump(ctx context.Context) string {
	var b strings.Builder
	for _, l := range []*lab.Lab{e.a, e.b} {
		for _, args := range [][]string{{"ovn-nbctl", "--db=" + l.NB, "show"}, {"ovn-nbctl", "--db=" + l.NB, "lr-route-list", "r1"},
			{"ovn-sbctl", "--db=" + l.SB, "show"}} {
			out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
			fmt.Fprintf(&b, "== %s %v: %v\n%s\n", l.Name, args[2:], err, out)
		}
	}
	for _, l := range []*lab.Lab{e.a, e.b} {
		n := l.Nodes[0]
		for _, args := range [][]string{{"ovs-vsctl", "--columns=name,options,status", "find", "interface", "type=geneve"},
			{"ovs-appctl", "tnl/neigh/show"}, {"ovs-appctl", "ovs/route/show"}, {"ovs-ofctl", "dump-ports", "br-int"},
			{"ping", "-c2", "-W1", "198.18.11.11"}, {"ping", "-c2", "-W1", "198.18.21.11"}} {
			out, err := n.Command(ctx, args[0], args[1:]...).CombinedOutput()
			fmt.Fprintf(&b, "== %s %s %v: %v\n%s\n", l.Name, n.Name, args, err, out)
		}
	}
	out, err := exec.CommandContext(ctx, "ovn-ic-sbctl", "--db="+e.ss.ICSB, "show").CombinedOutput()
	fmt.Fprintf(&b, "== IC-SB: %v\n%s\n", err, out)
	return b.String()
}
