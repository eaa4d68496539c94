package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/nodetrace"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// tsSB connects to the lab's SB, closed at test end.
func tsSB(t testing.TB, l *lab.Lab) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb
}

// tsRouter creates router name with nets attached; deleted at test end.
func tsRouter(t testing.TB, nb client.Client, name string, nets ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
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
	for _, n := range nets {
		if err := network.Attach(ctx, nb, n, name); err != nil {
			t.Fatal(err)
		}
	}
}

// pingOnce pings dst from c once (two probes, 1 s each); for expected failures.
func pingOnce(ctx context.Context, c *container, dst net.IP, extra ...string) error {
	args := append([]string{"-n", "-q", "-c", "2", "-W", "1"}, extra...)
	out, err := nsexec.Command(ctx, c.ns.Path(), nil, "ping", append(args, dst.String())...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", dst, c.id, err, out)
	}
	return nil
}

// tcpConnect listens on srv's address:port and connects from cl (two
// attempts of 1.5 s): nil when the connection is accepted.
func tcpConnect(ctx context.Context, srv, cl *container, port int) error {
	return tcpConnectTo(ctx, srv, port, cl, "")
}

// tcpConnectTo listens on srv's address:port and connects from cl to addr
// (default that address): nil when the connection is accepted.
func tcpConnectTo(ctx context.Context, srv *container, port int, cl *container, addr string) error {
	var ln net.Listener
	if err := srv.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(srv.ip().String(), fmt.Sprint(port)))
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	if addr == "" {
		addr = ln.Addr().String()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return cl.ns.Do(func(ns.NetNS) error {
		d := net.Dialer{Timeout: 1500 * time.Millisecond}
		var err error
		for i := 0; i < 2; i++ {
			var conn net.Conn
			if conn, err = d.DialContext(ctx, "tcp4", addr); err == nil {
				conn.Close()
				return nil
			}
		}
		return err
	})
}

// TestTroubleshootTrace checks every trace verdict against a real packet
// test in the same lab: same network across nodes, across a router, a deny
// policy, a forged source, different tenants, a stopped destination.
func TestTroubleshootTrace(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	sb := tsSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := fmt.Sprintf("ts%d", os.Getpid()%10000)
	web, db, oth := p+"w", p+"d", p+"o"
	subnets := map[string]string{web: "198.19.231.0/24", db: "198.19.232.0/24", oth: "198.19.233.0/24"}
	for _, n := range []string{web, db, oth} {
		cniNetwork(t, nb, n, subnets[n])
	}
	r1, r2 := p+"r1", p+"r2"
	tsRouter(t, nb, r1, web, db)
	tsRouter(t, nb, r2, oth)
	pol := p + "-deny-ssh"
	if _, err := policy.Create(ctx, nb, policy.Spec{Name: pol, Network: db, Action: policy.Deny, Proto: "tcp", Port: "22", Priority: 100}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := policy.Delete(context.Background(), nb, pol); err != nil {
			t.Errorf("cleanup policy: %v", err)
		}
	})
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	add := func(node *lab.Node, net string) *container {
		c := newContainer(t, newRuntime(t, node), confList(t, net, "1.0.0", nil))
		c.mustAdd(t, ctx)
		return c
	}
	web1, web2, db1, oth1 := add(n1, web), add(n2, web), add(n3, db), add(n2, oth)

	run := func(t *testing.T, req trace.Request) *trace.Result {
		t.Helper()
		r, err := trace.Trace(ctx, nb, sb, l.SB, req)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s -> %s: %s %s; hops %v", req.From, req.To, r.Verdict, r.Reason, r.Hops)
		return r
	}
	want := func(t *testing.T, r *trace.Result, verdict, reason string, hops ...string) {
		t.Helper()
		if r.Verdict != verdict || !strings.Contains(r.Reason, reason) {
			t.Fatalf("verdict %s (%s); want %s with reason containing %q\n%s", r.Verdict, r.Reason, verdict, reason, r.Raw())
		}
		for _, h := range hops {
			found := false
			for _, x := range r.Hops {
				found = found || strings.Contains(x, h)
			}
			if !found {
				t.Errorf("hops %v lack %q", r.Hops, h)
			}
		}
	}
	onNode := func(t *testing.T, r *trace.Result, node *lab.Node) *nodetrace.Physical {
		t.Helper()
		ph, err := nodetrace.OnNode(ctx, sb, r, nodetrace.NodeAccess{OVS: node.OVS, RunDir: node.Dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("on node %s: %s", node.Name, ph.Summary)
		return ph
	}

	t.Run("same network cross-node", func(t *testing.T) {
		if err := web1.ping(ctx, web2.ip()); err != nil {
			t.Fatalf("reality: %v", err)
		}
		r := run(t, trace.Request{From: web1.id, To: web2.ip().String()})
		want(t, r, trace.Delivered, "", "network "+web, "on node "+n2.Name)
		ph := onNode(t, r, n1)
		if ph.RemoteNode != n2.Name || ph.Datapath.TunnelEgress != lab.PhysBridge || ph.Datapath.Dropped {
			t.Errorf("on node: %+v; want a tunnel to %s via %s", ph, n2.Name, lab.PhysBridge)
		}
		// TO by the container's DNS name (what ovlmgr-cni registered).
		recs, err := dns.Records(ctx, nb, web)
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		for fqdn, v := range recs {
			if v == web2.ip().String() && !strings.HasSuffix(fqdn, ".arpa") {
				name = strings.SplitN(fqdn, ".", 2)[0]
			}
		}
		if name == "" {
			t.Fatalf("no DNS name for %s in %v", web2.ip(), recs)
		}
		byName := run(t, trace.Request{From: web1.id, To: name})
		if byName.To.Port != r.To.Port || byName.Verdict != trace.Delivered || byName.To.Label() != "container "+name {
			t.Errorf("TO by DNS name %q: port %s (%s), %s; want port %s", name, byName.To.Port, byName.To.Label(), byName.Verdict, r.To.Port)
		}
		// The CLI on the source node: ovlmgr trace --on-node -o json.
		out, err := n1.Command(ctx, ovlmgrBin(t), "trace", web1.id, web2.ip().String(), "--on-node", "-o", "json").Output()
		if err != nil {
			t.Fatalf("ovlmgr trace --on-node on %s: %v", n1.Name, err)
		}
		var got struct {
			Verdict  string `json:"verdict"`
			Physical struct {
				RemoteNode string `json:"remoteNode"`
				Summary    string `json:"summary"`
			} `json:"physical"`
		}
		if err := json.Unmarshal(out, &got); err != nil || got.Verdict != trace.Delivered || got.Physical.RemoteNode != n2.Name {
			t.Errorf("ovlmgr trace --on-node -o json: %+v (%v): %s", got, err, out)
		}
		// From the host with --lab: the source's lab node is picked.
		out, err = exec.CommandContext(ctx, ovlmgrBin(t), "trace", "--lab", l.Name, web1.id, web2.ip().String(), "--on-node").Output()
		if err != nil || !strings.Contains(string(out), "DELIVERED") || !strings.Contains(string(out), "on node "+n1.Name+": Geneve tunnel to node "+n2.Name) {
			t.Errorf("ovlmgr trace --lab --on-node: %v\n%s", err, out)
		}
		// From the wrong node, --on-node says where to run it.
		if _, err := nodetrace.OnNode(ctx, sb, r, nodetrace.NodeAccess{OVS: n2.OVS, RunDir: n2.Dir}); err == nil || !strings.Contains(err.Error(), "is on node "+n1.Name) {
			t.Errorf("on the wrong node: %v", err)
		}
	})
	t.Run("across a router", func(t *testing.T) {
		if err := web1.ping(ctx, db1.ip()); err != nil {
			t.Fatalf("reality: %v", err)
		}
		r := run(t, trace.Request{From: web1.id, To: db1.id})
		want(t, r, trace.Delivered, "", "network "+web, "router "+r1, "network "+db, "on node "+n3.Name)
		if ph := onNode(t, r, n1); ph.RemoteNode != n3.Name {
			t.Errorf("on node: %+v; want a tunnel to %s", ph, n3.Name)
		}
		// The gateway itself: the router answers ping.
		gw := net.ParseIP("198.19.231.1")
		if err := web1.ping(ctx, gw); err != nil {
			t.Fatalf("reality: ping the gateway: %v", err)
		}
		r = run(t, trace.Request{From: web1.id, To: gw.String()})
		want(t, r, trace.Delivered, "router "+r1+" answers", "router "+r1)
	})
	t.Run("deny policy", func(t *testing.T) {
		if err := denied(func() error { return tcpConnect(ctx, db1, web1, 8080) }, func() error { return tcpConnect(ctx, db1, web1, 22) }); err != nil {
			t.Fatalf("reality: TCP to port 22 under the deny policy (control: port 8080, not denied): %v", err)
		}
		r := run(t, trace.Request{From: web1.id, To: db1.ip().String(), Proto: "tcp", Port: 22})
		want(t, r, trace.Dropped, fmt.Sprintf("denied by policy %s on network %s (priority 100)", pol, db), "router "+r1)
		if r.Policy == nil || r.Policy.Name != pol {
			t.Errorf("policy %+v; want %s", r.Policy, pol)
		}
		r = run(t, trace.Request{From: web1.id, To: db1.ip().String(), Proto: "tcp", Port: 8080})
		want(t, r, trace.Delivered, "")
		// The CLI's exit status: 3 on DROPPED, 0 on DELIVERED.
		for port, code := range map[string]int{"22": 3, "8080": 0} {
			out, err := exec.CommandContext(ctx, ovlmgrBin(t), "trace", "--lab", l.Name, web1.id, db1.ip().String(), "--proto", "tcp", "--port", port).Output()
			got := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				got = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("ovlmgr trace tcp/%s: %v", port, err)
			}
			verdict := map[int]string{3: "DROPPED: denied by policy " + pol, 0: "DELIVERED"}[code]
			if got != code || !strings.Contains(string(out), verdict) {
				t.Errorf("ovlmgr trace tcp/%s: exit %d; want %d with %q:\n%s", port, got, code, verdict, out)
			}
		}
	})
	t.Run("service VIP", func(t *testing.T) {
		vip := "198.19.239.10"
		if _, err := service.Create(ctx, nb, service.Spec{Name: p + "-api", Network: db, VIP: vip + ":80", Backends: []string{db1.ip().String() + ":8080"}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := service.Delete(context.Background(), nb, db, p+"-api"); err != nil {
				t.Errorf("cleanup service: %v", err)
			}
		}()
		var err error
		for i := 0; i < 20; i++ { // flows reach the nodes a few ms after NB
			if err = tcpConnectTo(ctx, db1, 8080, web1, vip+":80"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("reality: TCP to the VIP: %v", err)
		}
		r := run(t, trace.Request{From: web1.id, To: vip, Proto: "tcp", Port: 80})
		want(t, r, trace.Delivered, "service "+p+"-api balances VIP "+vip+":80 to "+db1.ip().String()+":8080", "service "+p+"-api", "on node "+n3.Name)
		if r.Service == nil || r.To.Port == "" || r.To.IP.String() != db1.ip().String() {
			t.Errorf("service %+v, to %+v", r.Service, r.To)
		}
	})
	t.Run("forged source", func(t *testing.T) {
		forged := netip.MustParseAddr("198.19.231.250")
		err := web1.ns.Do(func(ns.NetNS) error {
			link, err := netlink.LinkByName(web1.ifName)
			if err != nil {
				return err
			}
			return netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: forged.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pingOnce(ctx, web1, web2.ip(), "-I", forged.String()); err == nil {
			t.Fatal("reality: a ping from a forged source got through")
		}
		if err := web1.ping(ctx, web2.ip()); err != nil {
			t.Fatalf("reality: the real source: %v", err)
		}
		r := run(t, trace.Request{From: web1.id, To: web2.ip().String(), SrcIP: forged})
		want(t, r, trace.Dropped, fmt.Sprintf("port security: source %s is not container", forged))
	})
	t.Run("different tenants", func(t *testing.T) {
		if err := pingOnce(ctx, web1, oth1.ip()); err == nil {
			t.Fatal("reality: a ping crossed tenants")
		}
		r := run(t, trace.Request{From: web1.id, To: oth1.id})
		want(t, r, trace.Dropped, fmt.Sprintf("no route: networks %s and %s are on different routers (%s and %s)", web, oth, r1, r2))
	})
	t.Run("stopped destination", func(t *testing.T) {
		// The container stops without a CNI DEL: its OVS port is gone, the
		// NB port is left.
		oc, err := vsdb.Connect(ctx, n2.OVS)
		if err != nil {
			t.Fatal(err)
		}
		defer oc.Close()
		if err := ovsport.Unplug(ctx, oc, ovsport.HostIfName(web2.id, web2.ifName)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		var r *trace.Result
		for {
			r = run(t, trace.Request{From: web1.id, To: web2.id})
			if r.Verdict == trace.Dropped || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		want(t, r, trace.Dropped, "has no port bound on any node")
		if err := pingOnce(ctx, web1, web2.ip()); err == nil {
			t.Fatal("reality: the stopped container answered")
		}
	})
}

// ovlmgrBuild is the ovlmgr binary built once per test process.
var ovlmgrBuild struct {
	once sync.Once
	path string
	err  error
}

// ovlmgrBin builds ./cli once and returns the binary's path; it lives in
// the CNI plugin's build directory and is removed with it after all tests.
func ovlmgrBin(t testing.TB) string {
	t.Helper()
	dir := cniPluginDir(t)
	ovlmgrBuild.once.Do(func() {
		ovlmgrBuild.path = filepath.Join(dir, "ovlmgr")
		out, err := exec.Command("go", "build", "-o", ovlmgrBuild.path, "../cli").CombinedOutput()
		if err != nil {
			ovlmgrBuild.err = fmt.Errorf("go build ../cli: %v: %s", err, out)
		}
	})
	if ovlmgrBuild.err != nil {
		t.Fatal(ovlmgrBuild.err)
	}
	return ovlmgrBuild.path
}

// cliJSON runs ovlmgr args (on the host) and decodes its JSON output into v.
func cliJSON(ctx context.Context, t testing.TB, v interface{}, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ovlmgrBin(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovlmgr %v: %v: %s", args, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("ovlmgr %v: output is not JSON: %v: %s", args, err, stdout.String())
	}
}
