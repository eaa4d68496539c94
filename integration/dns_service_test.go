package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	ovsmtu "github.com/ovlmgr/ovlmgr/ovs/mtu"
)

// dsNet is a network made for these tests, on router r ("" for none).
type dsNet struct {
	name   string
	subnet netip.Prefix
	gw     netip.Addr
	next   int // next host number to hand out
}

// dsNetwork creates network name with subnet on router r (created when
// missing), and registers their removal.
func dsNetwork(ctx context.Context, t testing.TB, nb client.Client, name, subnet, r string) *dsNet {
	t.Helper()
	n, err := network.Create(ctx, nb, network.Spec{Name: name, Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// Also removes its services, DNS row and nameserver port.
		if err := network.Delete(ctx, nb, name, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	d := &dsNet{name: name, subnet: netip.MustParsePrefix(n.Subnet), gw: netip.MustParseAddr(n.Gateway), next: 10}
	if r != "" {
		if _, err := router.Get(ctx, nb, r); err != nil {
			if _, err := router.Create(ctx, nb, r, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_ = network.DeleteRouter(ctx, nb, r, true)
			})
		}
		if err := network.Attach(ctx, nb, name, r); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// dsCtr is a container: a network namespace wired into a lab node's br-int
// by a veth, with a Logical_Switch_Port, DNS records and service membership
// made the way the CNI plugin makes them.
type dsCtr struct {
	name, id string
	node     *lab.Node
	net      *dsNet
	netns    ns.NetNS
	lsp      string
	host     string
	ip       netip.Addr
	labels   map[string]string
	fqdn     string
	gone     bool
}

var dsSeq struct {
	sync.Mutex
	n int
}

// dsAdd creates container name on node in network n.
func dsAdd(ctx context.Context, t testing.TB, l *lab.Lab, nb client.Client, node *lab.Node, n *dsNet, name string, labels map[string]string) *dsCtr {
	t.Helper()
	dsSeq.Lock()
	dsSeq.n++
	seq := dsSeq.n
	ip := n.subnet.Addr()
	for i := 0; i < n.next; i++ {
		ip = ip.Next()
	}
	n.next++
	dsSeq.Unlock()
	c := &dsCtr{name: name, id: fmt.Sprintf("%08x%04x%020d", os.Getpid(), seq, seq), node: node, net: n, ip: ip, labels: labels}
	c.lsp = fmt.Sprintf("ds-%d-%d-%s", os.Getpid(), seq, name)
	c.host = fmt.Sprintf("ds%x%x", os.Getpid()&0xffff, seq)
	mac := fmt.Sprintf("0a:5a:%02x:%02x:%02x:%02x", ip.As4()[0], ip.As4()[1], ip.As4()[2], ip.As4()[3])
	t.Cleanup(func() { c.del(t, nb) })

	// NB port, as ovn/port makes it (static address).
	ids := owner.IDs(owner.KindPort, c.lsp, map[string]string{owner.KeyContainer: c.id, owner.KeyIfName: "eth0",
		owner.KeyNode: node.SystemID, owner.KeyNetwork: n.name})
	for k, v := range labels {
		ids[owner.LabelPrefix+k] = v
	}
	lsp := &nbdb.LogicalSwitchPort{UUID: "newlsp", Name: c.lsp, Addresses: []string{mac + " " + ip.String()},
		PortSecurity: []string{mac + " " + ip.String()}, ExternalIDs: ids, Options: map[string]string{"requested-chassis": node.SystemID}}
	ins, err := nb.Create(lsp)
	if err != nil {
		t.Fatal(err)
	}
	ops := append(ins, ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
		Where:     []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, n.name)},
		Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("ports", ovsdb.MutateOperationInsert, ovsdb.OvsSet{GoSet: []interface{}{ovsdb.UUID{GoUUID: "newlsp"}}})}})
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		t.Fatalf("create port %s: %v", c.lsp, err)
	}

	// Namespace and veth.
	c.netns, err = testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	mtu := l.UnderlayMTU - ovsmtu.GeneveV4 // the lab's underlay is IPv4
	err = node.Do(func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: c.host, MTU: mtu}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(c.netns.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth %s: %w", c.host, err)
		}
		lk, err := netlink.LinkByName(c.host)
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lk)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.netns.Do(func(ns.NetNS) error {
		lk, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		hw, _ := net.ParseMAC(mac)
		if err := netlink.LinkSetHardwareAddr(lk, hw); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("%s/%d", ip, n.subnet.Bits()))
		if err := netlink.AddrAdd(lk, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetMTU(lk, mtu); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lk); err != nil {
			return err
		}
		if lo, err := netlink.LinkByName("lo"); err == nil {
			_ = netlink.LinkSetUp(lo)
		}
		if err := netlink.RouteAdd(&netlink.Route{Gw: net.IP(n.gw.AsSlice()), LinkIndex: lk.Attrs().Index}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
		return dsTxOff("eth0")
	})
	if err != nil {
		t.Fatal(err)
	}
	// Plug into br-int and wait for ovn-controller.
	out, err := node.Command(ctx, "ovs-vsctl", "add-port", "br-int", c.host, "--", "set", "Interface", c.host,
		"external_ids:iface-id="+c.lsp).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-vsctl add-port: %v: %s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := node.Command(ctx, "ovs-vsctl", "--if-exists", "get", "Interface", c.host, "external_ids:ovn-installed").Output()
		if strings.Contains(string(out), "true") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not ovn-installed on %s after 20s", c.lsp, node.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What the CNI plugin does after the port is up.
	reg, err := dns.Register(ctx, nb, dns.Host{Network: n.name, Name: name, ContainerID: c.id, IPs: []net.IP{net.IP(ip.AsSlice())}})
	if err != nil {
		t.Fatal(err)
	}
	c.fqdn = reg.FQDN
	if err := service.SyncPort(ctx, nb, service.Port{Network: n.name, Name: c.lsp, IP: net.IP(ip.AsSlice()), Labels: labels}, true); err != nil {
		t.Fatal(err)
	}
	return c
}

// del undoes dsAdd the way CNI DEL does; safe to call twice.
func (c *dsCtr) del(t testing.TB, nb client.Client) {
	if c.gone {
		return
	}
	c.gone = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ips := []net.IP{net.IP(c.ip.AsSlice())}
	if err := dns.Unregister(ctx, nb, c.net.name, ips); err != nil {
		t.Errorf("unregister %s: %v", c.name, err)
	}
	if err := service.SyncPort(ctx, nb, service.Port{Network: c.net.name, Name: c.lsp, IP: ips[0]}, false); err != nil {
		t.Errorf("sync services for %s: %v", c.name, err)
	}
	_, _ = c.node.Command(ctx, "ovs-vsctl", "--if-exists", "del-port", "br-int", c.host).CombinedOutput()
	_ = c.node.Do(func() error {
		if lk, err := netlink.LinkByName(c.host); err == nil {
			return netlink.LinkDel(lk)
		}
		return nil
	})
	if c.netns != nil {
		_ = c.netns.Close()
		_ = testutils.UnmountNS(c.netns)
	}
	m := &nbdb.LogicalSwitchPort{Name: c.lsp}
	var rows []*nbdb.LogicalSwitchPort
	if err := dbconn.Select(ctx, nb, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: c.lsp}); err != nil {
		t.Errorf("read port %s: %v", c.lsp, err)
	}
	for _, r := range rows {
		if _, err := dbconn.Transact(ctx, nb, ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
			Where: []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, c.net.name)},
			Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("ports", ovsdb.MutateOperationDelete,
				ovsdb.OvsSet{GoSet: []interface{}{ovsdb.UUID{GoUUID: r.UUID}}})}}); err != nil {
			t.Errorf("delete port %s: %v", c.lsp, err)
		}
	}
}

func dsTxOff(name string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return err
	}
	defer e.Close()
	feats, err := e.Features(name)
	if err != nil {
		return err
	}
	off := map[string]bool{}
	for k, v := range feats {
		if v && strings.HasPrefix(k, "tx-checksum") {
			off[k] = false
		}
	}
	if len(off) == 0 {
		return nil
	}
	return e.Change(name, off)
}

// dsQuery sends one DNS query from inside c, as a stub resolver does (no
// EDNS), to server:53 and returns the reply's rcode and answers ("A 1.2.3.4",
// "PTR name."); ok is false when no reply came within timeout.
func (c *dsCtr) dsQuery(server netip.Addr, name string, qtype dnsmessage.Type, timeout time.Duration) (rcode dnsmessage.RCode, answers []string, ok bool, err error) {
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: uint16(time.Now().UnixNano()), RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: qtype, Class: dnsmessage.ClassINET}},
	}
	pkt, err := q.Pack()
	if err != nil {
		return 0, nil, false, err
	}
	var reply []byte
	err = c.netns.Do(func(ns.NetNS) error {
		conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IP(server.AsSlice()), Port: 53})
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err := conn.Write(pkt); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			return nil // no answer (timeout or ICMP unreachable)
		}
		reply = buf[:n]
		return nil
	})
	if err != nil || reply == nil {
		return 0, nil, false, err
	}
	var m dnsmessage.Message
	if err := m.Unpack(reply); err != nil {
		return 0, nil, true, fmt.Errorf("unpack reply: %w", err)
	}
	for _, a := range m.Answers {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			answers = append(answers, "A "+netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			answers = append(answers, "AAAA "+netip.AddrFrom16(b.AAAA).String())
		case *dnsmessage.PTRResource:
			answers = append(answers, "PTR "+b.PTR.String())
		}
	}
	return m.Header.RCode, answers, true, nil
}

// dsUnresolved concludes that name does not resolve from c through server
// as denied does: the same A query for control (a name that resolves there)
// is answered, denyProbes queries in a row for name (1 s each) get no
// answer records, and control is still answered.
func (c *dsCtr) dsUnresolved(server netip.Addr, name, control string) error {
	query := func(n string) func() error {
		return func() error {
			_, ans, ok, err := c.dsQuery(server, n, dnsmessage.TypeA, time.Second)
			if err != nil {
				return err
			}
			if !ok || len(ans) == 0 {
				return fmt.Errorf("query %s: no answer", n)
			}
			return nil
		}
	}
	if err := denied(retried(5, query(control)), query(name)); err != nil {
		return fmt.Errorf("%s resolving %s via %s (control %s): %w", c.name, name, server, control, err)
	}
	return nil
}

// dsResolve polls until name resolves in c to want (an answer string), or,
// with want "", until denyProbes queries in a row give no answer; fails
// after 20s.
func (c *dsCtr) dsResolve(t testing.TB, name string, qtype dnsmessage.Type, want string) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	empty := 0 // queries in a row without an answer, when want is ""
	for time.Since(start) < 20*time.Second {
		rcode, ans, ok, err := c.dsQuery(c.net.gw, name, qtype, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("query %s from %s: %v", name, c.name, err)
		}
		got := strings.Join(ans, ",")
		last = fmt.Sprintf("ok=%v rcode=%v answers=%q", ok, rcode, got)
		if want != "" && ok && got == want {
			return time.Since(start)
		}
		if want == "" && (!ok || len(ans) == 0) {
			// Gone only when several queries in a row get nothing:
			// one lost reply proves nothing.
			if empty++; empty >= denyProbes {
				return time.Since(start)
			}
			continue
		}
		empty = 0
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("query %s %v from %s on %s: want %q, last reply %s", name, qtype, c.name, c.node.Name, want, last)
	return 0
}

// dsServe runs a TCP server inside c answering every connection with c's
// name; it stops at test end.
func (c *dsCtr) dsServe(t testing.TB, port int) {
	t.Helper()
	var ln net.Listener
	err := c.netns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte(c.name + "\n"))
			conn.Close()
		}
	}()
}

// dsHit makes one TCP connection from c to addr and returns the line served.
func (c *dsCtr) dsHit(addr netip.AddrPort) (string, error) {
	return c.dsHitWithin(addr, time.Second)
}

func (c *dsCtr) dsHitWithin(addr netip.AddrPort, timeout time.Duration) (string, error) {
	var line string
	err := c.netns.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp4", addr.String(), timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(conn).ReadString('\n')
		return err
	})
	return strings.TrimSpace(line), err
}

// dsSpread makes n connections from c to addr and counts answers per backend
// (failed connections count under "error").
func (c *dsCtr) dsSpread(addr netip.AddrPort, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		who, err := c.dsHit(addr)
		if err != nil {
			who = "error"
		}
		out[who]++
	}
	return out
}

func dsNB(ctx context.Context, t testing.TB, l *lab.Lab) client.Client {
	t.Helper()
	nb, err := dbconn.ConnectNB(ctx, l.NB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	return nb
}

func dsNodes(t testing.TB, l *lab.Lab) (n1, n2, n3 *lab.Node) {
	t.Helper()
	if len(l.Nodes) < 3 {
		t.Fatalf("lab has %d nodes; want 3", len(l.Nodes))
	}
	return l.Nodes[0], l.Nodes[1], l.Nodes[2]
}

// TestDNSNamesAcrossNodes: a container on node 1 resolves a container on
// node 3 by name with a stub-resolver query (no EDNS), gets the PTR back,
// resolves a network on the same router but not one of another router, and
// the name stops resolving after DEL.
func TestDNSNamesAcrossNodes(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := dsNB(ctx, t, l)
	n1, n2, n3 := dsNodes(t, l)
	r := fmt.Sprintf("ds-r%d", os.Getpid())
	other := fmt.Sprintf("ds-x%d", os.Getpid())
	front := dsNetwork(ctx, t, nb, "dsfront", "198.19.161.0/24", r)
	back := dsNetwork(ctx, t, nb, "dsback", "198.19.162.0/24", r)
	tenant := dsNetwork(ctx, t, nb, "dstenant", "198.19.163.0/24", other)

	c1 := dsAdd(ctx, t, l, nb, n1, front, "web", nil)
	c3 := dsAdd(ctx, t, l, nb, n3, front, "peer", nil)
	db := dsAdd(ctx, t, l, nb, n2, back, "db", nil)
	x := dsAdd(ctx, t, l, nb, n3, tenant, "secret", nil)

	c1.dsResolve(t, "peer.dsfront.ovl", dnsmessage.TypeA, "A "+c3.ip.String())
	rev := dns.ReverseName(net.IP(c3.ip.AsSlice()))
	c1.dsResolve(t, rev, dnsmessage.TypePTR, "PTR peer.dsfront.ovl.")
	// Same router: names of the other network resolve; another router's do not.
	c1.dsResolve(t, "db.dsback.ovl", dnsmessage.TypeA, "A "+db.ip.String())
	db.dsResolve(t, "web.dsfront.ovl", dnsmessage.TypeA, "A "+c1.ip.String())
	if err := c1.dsUnresolved(front.gw, "secret.dstenant.ovl", "peer.dsfront.ovl"); err != nil {
		t.Fatalf("a container of another tenant: %v", err)
	}
	x.dsResolve(t, "secret.dstenant.ovl", dnsmessage.TypeA, "A "+x.ip.String())
	if err := x.dsUnresolved(tenant.gw, "web.dsfront.ovl", "secret.dstenant.ovl"); err != nil {
		t.Fatalf("another router's name from the tenant: %v", err)
	}
	// DEL: the name and its PTR stop resolving.
	c3.del(t, nb)
	c1.dsResolve(t, "peer.dsfront.ovl", dnsmessage.TypeA, "")
	c1.dsResolve(t, rev, dnsmessage.TypePTR, "")
}

// TestDNSWithoutRouter: on a network with no router the gateway address
// (the CNI result's nameserver) still answers.
func TestDNSWithoutRouter(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := dsNB(ctx, t, l)
	n1, n2, _ := dsNodes(t, l)
	flat := dsNetwork(ctx, t, nb, "dsflat", "198.19.165.0/24", "")
	a := dsAdd(ctx, t, l, nb, n1, flat, "a", nil)
	b := dsAdd(ctx, t, l, nb, n2, flat, "b", nil)
	a.dsResolve(t, "b.dsflat.ovl", dnsmessage.TypeA, "A "+b.ip.String())
	b.dsResolve(t, dns.ReverseName(net.IP(a.ip.AsSlice())), dnsmessage.TypePTR, "PTR a.dsflat.ovl.")
}

// TestServiceAcrossNodes: a service with two backends on two other nodes
// spreads 20 TCP connections over both; a removed backend stops receiving;
// a backend added by label starts receiving; the name resolves to the VIP.
func TestServiceAcrossNodes(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := dsNB(ctx, t, l)
	n1, n2, n3 := dsNodes(t, l)
	r := fmt.Sprintf("ds-s%d", os.Getpid())
	sn := dsNetwork(ctx, t, nb, "dssvc", "198.19.164.0/24", r)
	client := dsAdd(ctx, t, l, nb, n1, sn, "client", nil)
	b1 := dsAdd(ctx, t, l, nb, n2, sn, "b1", map[string]string{"app": "echo"})
	b2 := dsAdd(ctx, t, l, nb, n3, sn, "b2", map[string]string{"app": "echo"})
	b1.dsServe(t, 8080)
	b2.dsServe(t, 8080)
	// Warm the tunnels (trap 4: first packet to a new peer is dropped).
	for _, b := range []*dsCtr{b1, b2} {
		for i := 0; i < 20; i++ {
			if _, err := client.dsHit(netip.AddrPortFrom(b.ip, 8080)); err == nil {
				break
			}
		}
	}
	vip := netip.MustParseAddrPort("198.19.200.10:80") // outside the subnet: routed
	if _, err := service.Create(ctx, nb, service.Spec{Name: "echo", Network: sn.name, VIP: vip.String(),
		Selector: map[string]string{"app": "echo"}, TargetPort: 8080}); err != nil {
		t.Fatal(err)
	}
	client.dsResolve(t, "echo.dssvc.ovl", dnsmessage.TypeA, "A "+vip.Addr().String())
	waitSpread(t, client, vip, func(m map[string]int) bool { return m["b1"] > 0 && m["b2"] > 0 && m["error"] == 0 })

	b1.del(t, nb)
	waitSpread(t, client, vip, func(m map[string]int) bool { return m["b1"] == 0 && m["b2"] == 20 })

	b3 := dsAdd(ctx, t, l, nb, n2, sn, "b3", map[string]string{"app": "echo"})
	b3.dsServe(t, 8080)
	waitSpread(t, client, vip, func(m map[string]int) bool { return m["b3"] > 0 && m["b2"] > 0 && m["error"] == 0 })
}

// waitSpread repeats 20-connection rounds until ok(counts) holds (flows
// reach nodes a few ms after NB changes), failing after 20s.
func waitSpread(t testing.TB, c *dsCtr, vip netip.AddrPort, ok func(map[string]int) bool) map[string]int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var m map[string]int
	for time.Now().Before(deadline) {
		m = c.dsSpread(vip, 20)
		if ok(m) {
			t.Logf("20 connections to %s: %v", vip, m)
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("20 connections to %s: %v", vip, m)
	return nil
}

// TestServiceHealthCheck: a backend failing its health check stops
// receiving and comes back when it serves again.
func TestServiceHealthCheck(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := dsNB(ctx, t, l)
	n1, n2, n3 := dsNodes(t, l)
	r := fmt.Sprintf("ds-h%d", os.Getpid())
	hn := dsNetwork(ctx, t, nb, "dshc", "198.19.166.0/24", r)
	client := dsAdd(ctx, t, l, nb, n1, hn, "client", nil)
	b1 := dsAdd(ctx, t, l, nb, n2, hn, "h1", map[string]string{"app": "hc"})
	b2 := dsAdd(ctx, t, l, nb, n3, hn, "h2", map[string]string{"app": "hc"})
	stop1 := b1.dsServeStoppable(t, 8080)
	b2.dsServe(t, 8080)
	vip := netip.MustParseAddrPort("198.19.166.200:80") // inside the subnet
	if _, err := service.Create(ctx, nb, service.Spec{Name: "hc", Network: hn.name, VIP: vip.String(),
		Selector: map[string]string{"app": "hc"}, TargetPort: 8080, HealthCheck: "1,1"}); err != nil {
		t.Fatal(err)
	}
	waitSpread(t, client, vip, func(m map[string]int) bool { return m["h1"] > 0 && m["h2"] > 0 && m["error"] == 0 })
	stop1()
	waitSpread(t, client, vip, func(m map[string]int) bool { return m["h1"] == 0 && m["h2"] == 20 })
}

// dsServeStoppable is dsServe with a function that stops serving (the
// port then refuses connections).
func (c *dsCtr) dsServeStoppable(t testing.TB, port int) func() {
	t.Helper()
	var ln net.Listener
	err := c.netns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
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
			_, _ = conn.Write([]byte(c.name + "\n"))
			conn.Close()
		}
	}()
	return stop
}
