package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	ovsmtu "github.com/ovlmgr/ovlmgr/ovs/mtu"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
	"github.com/ovlmgr/ovlmgr/ovs/nodetrace"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// diagnoseLab runs the central checks (with sync) and every node's checks.
func diagnoseLab(ctx context.Context, t *testing.T, l *lab.Lab) *diagnose.Report {
	t.Helper()
	r, st := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB, Sync: true, SyncTimeout: 2 * time.Second})
	for _, n := range l.Nodes {
		r.Add(nodediag.Check(ctx, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath, NB: l.NB}, st)...)
	}
	return r
}

func reportText(r *diagnose.Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// wantFault asserts that a check called name failed with a fix and a
// detail containing want.
func wantFault(t *testing.T, r *diagnose.Report, name, want string) {
	t.Helper()
	for _, c := range r.Failed(diagnose.Fail) {
		if c.Name == name && strings.Contains(c.Detail, want) && c.Fix != "" {
			t.Logf("found: %s: %s: %s (fix: %s)", c.Area, c.Name, c.Detail, c.Fix)
			return
		}
	}
	t.Fatalf("no failed check %q with %q and a fix:\n%s", name, want, reportText(r))
}

// wantHealthy asserts no check failed or warned.
func wantHealthy(t *testing.T, r *diagnose.Report) {
	t.Helper()
	if bad := r.Failed(diagnose.Warn); len(bad) > 0 {
		t.Fatalf("%d check(s) not ok:\n%s", len(bad), reportText(r))
	}
}

// waitFor polls cond every 20 ms for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeRun runs an OVS tool on a lab node.
func nodeRun(ctx context.Context, t *testing.T, n *lab.Node, name string, args ...string) {
	t.Helper()
	if out, err := n.Command(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v on %s: %v: %s", name, args, n.Name, err, out)
	}
}

func tunnelTo(ctx context.Context, n *lab.Node, ip string) bool {
	oc, err := vsdb.Connect(ctx, n.OVS)
	if err != nil {
		return false
	}
	defer oc.Close()
	ifs, err := vsdb.Interfaces(ctx, oc, "geneve")
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Options["remote_ip"] == ip {
			return true
		}
	}
	return false
}

// TestDiagnose runs diagnose on a healthy lab of its own and injects one
// fault at a time (a container MTU above the underlay limit, an OVS port
// left behind and a leaked veth, a stale chassis, a missing tunnel, the
// encap IP on the underlay port instead of its bridge, a stopped
// ovn-controller): each is named with a fix.
func TestDiagnose(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("dg")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	nb := cniNB(t, l)
	sb := tsSB(t, l)
	net := fmt.Sprintf("dg%d", os.Getpid()%10000)
	cniNetwork(t, nb, net, "198.19.240.0/24")
	c1 := newContainer(t, newRuntime(t, n1), confList(t, net, "1.0.0", nil))
	c1.mustAdd(t, ctx)
	c2 := newContainer(t, newRuntime(t, n2), confList(t, net, "1.0.0", nil))
	c2.mustAdd(t, ctx)
	if err := c1.ping(ctx, c2.ip()); err != nil {
		t.Fatal(err)
	}

	t.Run("healthy", func(t *testing.T) {
		r := diagnoseLab(ctx, t, l)
		wantHealthy(t, r)
		mtu := pathMTU(ctx, t, l, n1, c1, c2)
		if mtu.Check.Status != diagnose.OK || mtu.Result.Largest != l.UnderlayMTU-ovsmtu.GeneveV4 || mtu.Limit != l.UnderlayMTU-ovsmtu.GeneveV4 {
			t.Errorf("diagnose mtu on a healthy lab: %+v %+v", mtu.Check, mtu.Result)
		}
		// A node whose system-id SB knows with another encap IP: two nodes
		// share one system-id.
		_, st := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
		st.ByName(n1.SystemID).EncapIPs = []string{n2.EncapIP}
		cs := nodediag.Check(ctx, nodediag.Target{OVS: n1.OVS, RunDir: n1.Dir, OVNRunDir: n1.Dir, NetNS: n1.NetNSPath}, st)
		dup := &diagnose.Report{}
		dup.Add(cs...)
		wantFault(t, dup, "chassis", "another node uses system-id "+n1.SystemID)
		var out diagnose.Report
		cliJSON(ctx, t, &out, "diagnose", "--lab", l.Name, "--sync", "-o", "json")
		if out.Status != diagnose.OK || len(out.Checks) < 10 {
			t.Errorf("ovlmgr diagnose --lab %s -o json: status %s, %d checks", l.Name, out.Status, len(out.Checks))
		}
		for _, name := range []string{"nb", "sb", "northd", "chassis n1", "chassis n2", "tunnel n1->n2", "tunnel n2->n1", "ovn-controller", "datapath", "ports", "underlay arp"} {
			if r.Find(name) == nil {
				t.Errorf("no check %q:\n%s", name, reportText(r))
			}
		}
	})

	t.Run("underlay veth answers ARP", func(t *testing.T) {
		setIgnore := func(v string) {
			if err := n1.Do(func() error {
				return os.WriteFile("/proc/sys/net/ipv4/conf/ul0/arp_ignore", []byte(v), 0o644)
			}); err != nil {
				t.Fatal(err)
			}
		}
		setIgnore("0")
		defer setIgnore("1")
		r := diagnoseLab(ctx, t, l)
		for _, c := range r.Failed(diagnose.Warn) {
			if c.Name == "underlay arp" && strings.Contains(c.Detail, "ul0 (a kernel port of userspace bridge "+lab.PhysBridge+") answers ARP for encap IP "+n1.EncapIP) &&
				strings.Contains(c.Fix, "net.ipv4.conf.ul0.arp_ignore=1") {
				t.Logf("found: %s: %s: %s (fix: %s)", c.Area, c.Name, c.Detail, c.Fix)
				return
			}
		}
		t.Fatalf("no warning \"underlay arp\" naming ul0 of n1 with arp_ignore 0:\n%s", reportText(r))
	})

	t.Run("container MTU above the underlay limit", func(t *testing.T) {
		set := func(mtu int) {
			err := c1.ns.Do(func(ns.NetNS) error {
				link, err := netlink.LinkByName(c1.ifName)
				if err != nil {
					return err
				}
				return netlink.LinkSetMTU(link, mtu)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		orig := c1.mtu(t)
		set(l.UnderlayMTU)
		defer set(orig)
		r := diagnoseLab(ctx, t, l)
		host := filepath.Base(hostIf(t, n1, c1))
		wantFault(t, r, "port "+host, fmt.Sprintf("MTU %d (container side %s) exceeds underlay", l.UnderlayMTU, c1.ifName))
		if !strings.Contains(r.Find("port "+host).Detail, "container "+c1.id[:12]) {
			t.Errorf("the check does not name container %s: %s", c1.id, r.Find("port "+host).Detail)
		}
		// The DF probe finds what really crosses: the underlay limit.
		mtu := pathMTU(ctx, t, l, n1, c1, c2)
		if mtu.Check.Status != diagnose.Fail || mtu.Result.Largest != l.UnderlayMTU-58 || mtu.Result.Configured != l.UnderlayMTU {
			t.Errorf("diagnose mtu with MTU raised: %+v %+v", mtu.Check, mtu.Result)
		}
		t.Logf("diagnose mtu: %s (fix: %s)", mtu.Check.Detail, mtu.Check.Fix)
		// Reality: the largest payload that fits crosses, one byte more does
		// not (several tries, the fitting size proven before and after).
		limit := l.UnderlayMTU - 58 - 28
		fits := func() error { return pingOnce(ctx, c1, c2.ip(), "-M", "do", "-s", fmt.Sprint(limit)) }
		above := func() error { return pingOnce(ctx, c1, c2.ip(), "-M", "do", "-s", fmt.Sprint(limit+1)) }
		if err := denied(retried(3, fits), above); err != nil {
			t.Errorf("reality: DF ping with %d bytes (control %d bytes): %v", limit+1, limit, err)
		}
	})

	t.Run("TX checksum offload on in a container", func(t *testing.T) {
		setTx := func(on bool) {
			t.Helper()
			err := c1.ns.Do(func(ns.NetNS) error {
				e, err := ethtool.NewEthtool()
				if err != nil {
					return err
				}
				defer e.Close()
				return e.Change(c1.ifName, map[string]bool{"tx-checksum-ip-generic": on})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		setTx(true)
		defer setTx(false)
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "port "+hostIf(t, n1, c1), "eth0 has TX checksum offload on (tx-checksum-ip-generic) with the userspace datapath")
		if err := tcpConnect(ctx, c2, c1, 9000); err == nil {
			t.Error("reality: TCP from a container with TX checksum offload on got through")
		}
	})

	t.Run("OVS port left behind and leaked veth", func(t *testing.T) {
		const leftover, leaked = "ovl0000000000aa", "ovl0000000000ab"
		h := nodeHandle(t, n1)
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: leftover}, PeerName: leaked}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			nodeRun(ctx, t, n1, "ovs-vsctl", "--if-exists", "del-port", "br-int", leftover)
			if link, err := h.LinkByName(leftover); err == nil {
				_ = h.LinkDel(link)
			}
		}()
		nodeRun(ctx, t, n1, "ovs-vsctl", "add-port", "br-int", leftover, "--", "set", "interface", leftover, "external_ids:iface-id=ovl-0000000000000000")
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "port "+leftover, "left behind: its iface-id ovl-0000000000000000 has no NB port")
		if c := r.Find("veth " + leaked); c == nil || c.Status != diagnose.Warn {
			t.Errorf("leaked veth %s not reported:\n%s", leaked, reportText(r))
		}
	})

	t.Run("stale chassis", func(t *testing.T) {
		enc := &sbdb.Encap{UUID: "enc", ChassisName: "ghost", IP: "198.18.0.99", Type: "geneve", Options: map[string]string{"csum": "true"}}
		ch := &sbdb.Chassis{UUID: "ch", Name: "ghost", Hostname: "ghost", Encaps: []string{"enc"}}
		ops, err := sb.Create(enc, ch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dbconn.Transact(ctx, sb, ops...); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := dbconn.Transact(ctx, sb,
				dbops.Delete(sbdb.ChassisTable, []ovsdb.Condition{dbops.NameIs("ghost")}),
				dbops.Delete(sbdb.EncapTable, []ovsdb.Condition{{Column: "chassis_name", Function: ovsdb.ConditionEqual, Value: "ghost"}})); err != nil {
				t.Errorf("remove ghost chassis: %v", err)
			}
			waitFor(t, "tunnels to the ghost chassis to go", func() bool { return !tunnelTo(ctx, n1, "198.18.0.99") })
		}()
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "chassis ghost", "stale: no ovn-controller has claimed chassis ghost")
		if fails := r.Failed(diagnose.Fail); len(fails) != 1 {
			t.Errorf("%d failures, want only the stale chassis:\n%s", len(fails), reportText(r))
		}
	})

	t.Run("missing tunnel", func(t *testing.T) {
		nodeRun(ctx, t, n2, "ovs-vsctl", "set", "open", ".", "external_ids:ovn-transport-zones=tz-other")
		defer func() {
			nodeRun(ctx, t, n2, "ovs-vsctl", "remove", "open", ".", "external_ids", "ovn-transport-zones")
			waitFor(t, "the tunnel n1->n2 to come back", func() bool { return tunnelTo(ctx, n1, n2.EncapIP) && tunnelTo(ctx, n2, n1.EncapIP) })
		}()
		waitFor(t, "the tunnel n1->n2 to go", func() bool { return !tunnelTo(ctx, n1, n2.EncapIP) })
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "tunnel n1->n2", "no Geneve tunnel to n2 ("+n2.EncapIP+"): transport zones differ")
		if err := pingOnce(ctx, c1, c2.ip()); err == nil {
			t.Error("reality: ping crossed without a tunnel")
		}
	})

	t.Run("encap IP on the underlay port instead of its bridge", func(t *testing.T) {
		h := nodeHandle(t, n1)
		move := func(from, to string) {
			t.Helper()
			addr, err := netlink.ParseAddr(n1.EncapIP + "/24")
			if err != nil {
				t.Fatal(err)
			}
			src, err := h.LinkByName(from)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := h.LinkByName(to)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.AddrDel(src, addr); err != nil {
				t.Fatal(err)
			}
			if err := h.AddrAdd(dst, addr); err != nil {
				t.Fatal(err)
			}
		}
		move(lab.PhysBridge, "ul0")
		defer func() {
			move("ul0", lab.PhysBridge)
			if err := c1.ping(ctx, c2.ip()); err != nil {
				t.Errorf("after restoring the underlay IP: %v", err)
			}
		}()
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "encap ip", "is on ul0, a port of OVS bridge "+lab.PhysBridge)
		if err := pingOnce(ctx, c1, c2.ip()); err == nil {
			t.Error("reality: ping crossed with the underlay IP on ul0")
		}
		tr, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: c1.id, To: c2.ip().String()})
		if err != nil {
			t.Fatal(err)
		}
		ph, err := nodetrace.OnNode(ctx, sb, tr, nodetrace.NodeAccess{OVS: n1.OVS, RunDir: n1.Dir})
		if err != nil {
			t.Fatal(err)
		}
		if !ph.Lost || !strings.Contains(ph.Summary, "via ul0") {
			t.Errorf("trace --on-node with the IP on ul0: %s\n%s", ph.Summary, ph.Raw)
		}
		t.Logf("trace --on-node: %s", ph.Summary)
	})

	t.Run("ovn-controller stopped", func(t *testing.T) {
		// Last: the lab is taken down afterwards.
		data, err := os.ReadFile(filepath.Join(n2.Dir, "ovn-controller.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "ovn-controller to exit", func() bool {
			st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return err != nil || strings.Contains(string(st), ") Z ")
		})
		r := diagnoseLab(ctx, t, l)
		wantFault(t, r, "ovn-controller", "ovn-controller is not running")
		wantFault(t, r, "chassis n2", "ovn-controller on n2 is not responding")
		if c := r.Find("chassis n1"); c == nil || c.Status != diagnose.OK {
			t.Errorf("chassis n1 should be fine:\n%s", reportText(r))
		}
	})
}

// hostIf returns the host-side interface of c on node n (its OVS port).
func hostIf(t *testing.T, n *lab.Node, c *container) string {
	t.Helper()
	oc, err := vsdb.Connect(context.Background(), n.OVS)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	ifs, err := vsdb.Interfaces(context.Background(), oc, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.ExternalIDs["iface-id-ver"] == c.id || i.ExternalIDs["ovlmgr.io/container"] == c.id {
			return i.Name
		}
	}
	t.Fatalf("no OVS port of container %s on %s", c.id, n.Name)
	return ""
}

// nodeHandle is a netlink handle in the node's namespace, closed at test end.
func nodeHandle(t *testing.T, n *lab.Node) *netlink.Handle {
	t.Helper()
	h0, err := netns.GetFromPath(n.NetNSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h0.Close()
	h, err := netlink.NewHandleAt(h0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// pathMTU runs diagnose mtu from a to b (a is on node n).
func pathMTU(ctx context.Context, t *testing.T, l *lab.Lab, n *lab.Node, a, b *container) *nodediag.MTUReport {
	t.Helper()
	nb := cniNB(t, l)
	sb := tsSB(t, l)
	rep, err := nodediag.PathMTU(ctx, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath}, nb, sb, a.id, b.ip().String())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
