package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// portOnNode reports whether node has the OVS interface and the host veth host.
func portOnNode(t testing.TB, node *lab.Node, host string) (iface, veth bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ovs, err := vsdb.Connect(ctx, node.OVS)
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	i, err := ovsport.Get(ctx, ovs, host)
	if err != nil {
		t.Fatal(err)
	}
	_ = node.Do(func() error {
		_, err := netlink.LinkByName(host)
		veth = err == nil
		return nil
	})
	return i != nil, veth
}

// nodeGC runs `ovlmgr node gc -o json` on node and returns what it removed.
func nodeGC(t testing.TB, ctx context.Context, node *lab.Node, args ...string) []nodegc.Removed {
	t.Helper()
	out, err := node.Command(ctx, ovlmgrBin(t), append([]string{"node", "gc", "-o", "json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ovlmgr node gc on %s: %v: %s", node.Name, err, out)
	}
	var rs []nodegc.Removed
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("node gc output %q: %v", out, err)
	}
	return rs
}

func removedHas(rs []nodegc.Removed, what, name string) bool {
	for _, r := range rs {
		if r.What == what && r.Name == name {
			return true
		}
	}
	return false
}

// TestCNIContainerIDOnTwoNodes: a port belongs to (node, container ID,
// ifname). ADD of the same container ID on another node (failing, then
// succeeding), DEL and GC there never touch the first node's container.
func TestCNIContainerIDOnTwoNodes(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("dup%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.221.0/24")
	list := confList(t, name, "1.0.0", nil)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	peer := newContainer(t, newRuntime(t, n3), list)
	peer.mustAdd(t, ctx)
	a1 := newContainer(t, newRuntime(t, n1), list)
	a1.mustAdd(t, ctx)
	id := a1.id
	intact := func(step string) {
		t.Helper()
		p, err := containerPort(ctx, nb, n1.SystemID, name, id, "eth0")
		if err != nil || p.Node != n1.SystemID || !p.IP.IsValid() || p.IP.String() != a1.ip().String() || !strings.EqualFold(p.MAC, a1.result.Interfaces[1].Mac) {
			t.Fatalf("%s: n1's port is %+v (%v); want node %s, %s %s", step, p, err, n1.SystemID, a1.ip(), a1.result.Interfaces[1].Mac)
		}
		if iface, veth := portOnNode(t, n1, ovsport.HostIfName(id, "eth0")); !iface || !veth {
			t.Fatalf("%s: n1's OVS port %v, veth %v; want both", step, iface, veth)
		}
		if err := peer.ping(ctx, a1.ip()); err != nil {
			t.Fatalf("%s: n1's container unreachable: %v", step, err)
		}
	}
	intact("after ADD on n1")

	// A failing ADD of the same container ID on n2 (its netns is missing).
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + id, "CNI_NETNS=/run/netns/ovl-missing-" + strconv.Itoa(os.Getpid()),
		"CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, name, name)
	if _, code, msg := rawPlugin(t, ctx, n2, env, conf); code == 0 {
		t.Fatalf("ADD with a missing netns on n2 succeeded")
	} else {
		t.Logf("failed ADD on n2: code %d: %s", code, msg)
	}
	intact("after a failed ADD of the same container ID on n2")

	// ADD of the same container ID on n2 in the same network: it may
	// succeed (a second port) or fail (its default DNS name, from the
	// container ID, is taken); either way n1's container stays.
	same := newContainer(t, newRuntime(t, n2), list)
	same.id, same.conf.ContainerID = id, id
	if err := same.add(ctx); err != nil {
		t.Logf("ADD of the same container ID on n2 in the same network: %v", err)
		assertGone(t, nb, n2, id, "eth0")
	} else if same.ip().Equal(a1.ip()) {
		t.Fatalf("n2's container got n1's address %s", a1.ip())
	}
	intact("after ADD of the same container ID on n2 in the same network")

	// ADD of the same container ID and ifname on n2 in another network: a
	// port of its own.
	other := fmt.Sprintf("dupo%d", os.Getpid()%10000)
	cniNetwork(t, nb, other, "198.19.227.0/24")
	olist := confList(t, other, "1.0.0", nil)
	a2 := newContainer(t, newRuntime(t, n2), olist)
	a2.id, a2.conf.ContainerID = id, id
	a2.mustAdd(t, ctx)
	if p, err := containerPort(ctx, nb, n2.SystemID, other, id, "eth0"); err != nil || p.Node != n2.SystemID || p.Network != other {
		t.Fatalf("n2's port: %+v, %v", p, err)
	}
	intact("after ADD of the same container ID on n2 in another network")
	peer2 := newContainer(t, newRuntime(t, n3), olist)
	peer2.mustAdd(t, ctx)
	if err := peer2.ping(ctx, a2.ip()); err != nil {
		t.Errorf("n2's container: %v", err)
	}

	// DEL and GC on n2 remove only n2's.
	if err := same.del(ctx); err != nil {
		t.Fatalf("DEL on n2: %v", err)
	}
	if err := a2.del(ctx); err != nil {
		t.Fatalf("DEL on n2: %v", err)
	}
	assertGone(t, nb, n2, id, "eth0")
	intact("after DEL of the same container ID on n2")
	for _, lst := range []*libcni.NetworkConfigList{list, olist} {
		if err := newRuntime(t, n2).cni.GCNetworkList(ctx, lst, &libcni.GCArgs{}); err != nil {
			t.Fatalf("GC on n2: %v", err)
		}
	}
	intact("after GC on n2")
}

// TestCNIMissingNetNS: a netns path that does not exist is refused with
// code 4 before anything is written to NB.
func TestCNIMissingNetNS(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("mn%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.223.0/24")
	node := l.Nodes[0]
	id := fmt.Sprintf("missing-ns-%d", os.Getpid())
	lsp := ovnport.Name(node.SystemID, id, "eth0")
	// Watch for the port from before the ADD: a port created and removed
	// again by the ADD's undo still shows up here.
	m := &nbdb.LogicalSwitchPort{Name: lsp}
	w, err := watch.Start(ctx, nb, []watch.Table{{Model: m, Cond: []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: lsp}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seen := make(chan struct{}, 1)
	nb.Cache().AddEventHandler(&portSeen{name: lsp, seen: seen})
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + id, "CNI_NETNS=/run/netns/ovl-missing-" + strconv.Itoa(os.Getpid()),
		"CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, name, name)
	_, code, msg := rawPlugin(t, ctx, node, env, conf)
	if code != 4 || !strings.Contains(msg, "CNI_NETNS") || !strings.Contains(msg, "ovl-missing-") {
		t.Errorf("ADD with a missing netns: code %d %q; want code 4 naming CNI_NETNS and the path", code, msg)
	}
	// A round trip on the watching connection after the ADD: monitor
	// updates sent before its reply (an insert by the ADD) are in by then.
	if _, err := ovnport.Get(ctx, nb, lsp); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("NB port %s after the refused ADD: %v", lsp, err)
	}
	select {
	case <-seen:
		t.Errorf("ADD with a missing netns created NB port %s (and removed it again)", lsp)
	default:
	}
}

// portSeen signals when a Logical_Switch_Port named name enters the cache.
type portSeen struct {
	name string
	seen chan struct{}
}

func (h *portSeen) OnAdd(table string, m model.Model) {
	if l, ok := m.(*nbdb.LogicalSwitchPort); ok && l.Name == h.name {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
}
func (h *portSeen) OnUpdate(string, model.Model, model.Model) {}
func (h *portSeen) OnDelete(string, model.Model)              {}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestCNIAddressReuse: a container deleted and another added at the same
// address (new container ID): a peer that talked to the old one loses at
// most 1 of its pings once the new ADD has returned. The MAC derives from
// the address, and the new container announces itself.
func TestCNIAddressReuse(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("ru%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.222.0/24")
	// The freed address must be the next one handed out: no pool ports
	// holding others.
	setPoolSize(t, nb, name, 0)
	list := confList(t, name, "1.0.0", nil)
	n1, n3 := l.Nodes[0], l.Nodes[2]
	peer := newContainer(t, newRuntime(t, n3), list)
	peer.mustAdd(t, ctx)
	rt := newRuntime(t, n1)
	old := newContainer(t, rt, list)
	if err := old.add(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.del(context.Background()) })
	addr, oldMAC := old.ip(), old.result.Interfaces[1].Mac
	// The peer talks to the old container: its neighbour entry holds the old MAC.
	if err := peer.ping(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if err := old.del(ctx); err != nil {
		t.Fatal(err)
	}
	repl := newContainer(t, rt, list)
	repl.mustAdd(t, ctx)
	if !repl.ip().Equal(addr) {
		t.Fatalf("the new container got %s, not the freed %s: the test needs the address reused", repl.ip(), addr)
	}
	out, _ := nsexec.Command(ctx, peer.ns.Path(), nil, "ping", "-n", "-q", "-c", "20", "-i", "0.2", "-W", "1", addr.String()).CombinedOutput()
	m := pingStats.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ping output: %s", out)
	}
	sent, got := atoi(m[1]), atoi(m[2])
	if sent-got > 1 {
		neigh, _ := nsexec.Command(ctx, peer.ns.Path(), nil, "ip", "neigh", "show", addr.String()).CombinedOutput()
		t.Errorf("peer lost %d of %d pings to %s after the new ADD returned; want at most 1 (peer's neighbour entry: %s; old MAC %s, new %s)",
			sent-got, sent, addr, strings.TrimSpace(string(neigh)), oldMAC, repl.result.Interfaces[1].Mac)
	}
	if want := ovnport.MACFromIP(netipFrom(addr)).String(); !strings.EqualFold(repl.result.Interfaces[1].Mac, want) || !strings.EqualFold(oldMAC, want) {
		t.Errorf("MACs at %s: old %s, new %s; want both %s (derived from the address)", addr, oldMAC, repl.result.Interfaces[1].Mac, want)
	}
}

// TestCNIDelUnreachableNB: DEL with an NB that cannot be reached removes
// everything on the node and succeeds; the NB port it leaves is removed by
// `ovlmgr node gc` once older than the grace period, and a port in the
// middle of an ADD (NB port, nothing on the node yet) is left alone.
func TestCNIDelUnreachableNB(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("du%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.224.0/24")
	node := l.Nodes[0]
	rt := newRuntime(t, node)
	c := newContainer(t, rt, confList(t, name, "1.0.0", nil))
	if err := c.add(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := containerPort(ctx, nb, node.SystemID, name, c.id, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	lsp, host := cp.Name, ovsport.HostIfName(c.id, "eth0")
	t.Cleanup(func() { _ = ovnport.Delete(context.Background(), nb, lsp) })
	// Nothing listens on port 9 of the node's loopback: refused at once.
	bad := confList(t, name, "1.0.0", map[string]interface{}{"nb": "tcp:127.0.0.1:9"})
	if err := rt.cni.DelNetworkList(ctx, bad, c.conf); err != nil {
		t.Fatalf("DEL with an unreachable NB: %v\nplugin log:\n%s", err, rt.exec.stderr.String())
	}
	if iface, veth := portOnNode(t, node, host); iface || veth || c.hasLink() {
		t.Errorf("after DEL: OVS port %v, host veth %v, container link %v; want none", iface, veth, c.hasLink())
	}
	if _, err := ovnport.Get(ctx, nb, lsp); err != nil {
		t.Fatalf("the NB port should be what DEL left (the NB was unreachable): %v", err)
	}

	// A port in the middle of an ADD: NB port only, just created.
	mid, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: name, Node: node.SystemID, Container: "mid-add-" + c.id, IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovnport.Delete(context.Background(), nb, mid.Name) })
	// Both young: the default grace leaves them.
	if rs := nodeGC(t, ctx, node); removedHas(rs, "nb-port", lsp) || removedHas(rs, "nb-port", mid.Name) {
		t.Errorf("node gc removed a port younger than its grace period: %+v", rs)
	}
	// Later: DEL's port is old now (its creation time moved back).
	ageNBPort(t, ctx, nb, lsp)
	if rs := nodeGC(t, ctx, node); !removedHas(rs, "nb-port", lsp) || removedHas(rs, "nb-port", mid.Name) {
		t.Errorf("node gc removed %+v; want %s and not the port under way %s", rs, lsp, mid.Name)
	}
	if _, err := ovnport.Get(ctx, nb, lsp); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("NB port %s after node gc: %v", lsp, err)
	}
	if _, err := ovnport.Get(ctx, nb, mid.Name); err != nil {
		t.Errorf("port under way %s after node gc: %v", mid.Name, err)
	}
	if rs := nodeGC(t, ctx, node); removedHas(rs, "nb-port", lsp) {
		t.Errorf("second node gc: %+v", rs)
	}
}

// TestNodeGCAfterForceDelete: `net delete --force` with containers attached
// leaves their OVS ports and veths; diagnose names them with the fix,
// `ovlmgr node gc` removes them on one node and the next ADD on another.
func TestNodeGCAfterForceDelete(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("fd%d", os.Getpid()%10000)
	specNetwork(t, nb, network.Spec{Name: name, Subnet: "198.19.225.0/24"})
	list := confList(t, name, "1.0.0", nil)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	a := newContainer(t, newRuntime(t, n1), list)
	b := newContainer(t, newRuntime(t, n2), list)
	for _, c := range []*container{a, b} {
		if err := c.add(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := network.Delete(ctx, nb, name, true); err != nil {
		t.Fatal(err)
	}
	hostA, hostB := ovsport.HostIfName(a.id, "eth0"), ovsport.HostIfName(b.id, "eth0")
	for _, x := range []struct {
		node *lab.Node
		host string
	}{{n1, hostA}, {n2, hostB}} {
		if iface, veth := portOnNode(t, x.node, x.host); !iface || !veth {
			t.Fatalf("net delete --force: %s on %s: OVS port %v, veth %v; the test needs them left", x.host, x.node.Name, iface, veth)
		}
	}
	// diagnose names the leftover and the fix.
	_, st := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	r := &diagnose.Report{}
	r.Add(nodediag.Check(ctx, nodediag.Target{OVS: n1.OVS, RunDir: n1.Dir, OVNRunDir: n1.Dir, NetNS: n1.NetNSPath, NB: l.NB}, st)...)
	if ck := r.Find("port " + hostA); ck == nil || ck.Status != diagnose.Fail || !strings.Contains(ck.Fix, "ovlmgr node gc") {
		t.Errorf("diagnose on n1: check %+v; want a failure for %s with the fix `ovlmgr node gc`", ck, hostA)
	}
	// node gc on n1.
	if rs := nodeGC(t, ctx, n1); !removedHas(rs, "ovs-port", hostA) {
		t.Errorf("node gc on n1 removed %+v; want OVS port %s", rs, hostA)
	}
	if iface, veth := portOnNode(t, n1, hostA); iface || veth {
		t.Errorf("after node gc: OVS port %v, veth %v on n1", iface, veth)
	}
	if rs := nodeGC(t, ctx, n1); removedHas(rs, "ovs-port", hostA) {
		t.Errorf("second node gc: %+v", rs)
	}
	// An ADD on n2 (any network) removes n2's, in the first ADD or DEL
	// that comes 10 s or more after n2's last sweep (the stamp beside its
	// db): one right after a sweep leaves it, the next one due removes it.
	other := fmt.Sprintf("fo%d", os.Getpid()%10000)
	cniNetwork(t, nb, other, "198.19.226.0/24")
	stamp := filepath.Join(filepath.Dir(strings.TrimPrefix(n2.OVS, "unix:")), attach.SweepStampFile)
	setStamp := func(at time.Time) {
		t.Helper()
		if err := os.WriteFile(stamp, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(stamp, at, at); err != nil {
			t.Fatal(err)
		}
	}
	setStamp(time.Now())
	c := newContainer(t, newRuntime(t, n2), confList(t, other, "1.0.0", nil))
	c.mustAdd(t, ctx)
	if iface, veth := portOnNode(t, n2, hostB); !iface || !veth {
		t.Errorf("ADD on n2 right after a sweep: OVS port %v, veth %v of the deleted network's container; want both left until a sweep is due", iface, veth)
	}
	setStamp(time.Now().Add(-11 * time.Second))
	d := newContainer(t, newRuntime(t, n2), confList(t, other, "1.0.0", nil))
	d.mustAdd(t, ctx)
	if iface, veth := portOnNode(t, n2, hostB); iface || veth {
		t.Errorf("after the next ADD on n2 with a sweep due: OVS port %v, veth %v of the deleted network's container", iface, veth)
	}
	// DEL of the containers of the deleted network still succeeds.
	for _, x := range []*container{a, b} {
		if err := x.del(ctx); err != nil {
			t.Errorf("DEL %s after net delete --force: %v", x.id, err)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func netipFrom(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip.To4()); return a }

// TestCNIRequestedMAC: a requested MAC held by another container or by a
// router port, all-zero, multicast, or derived from another address is
// refused with code 103 naming the holder, leaving nothing; diagnose flags a
// container whose MAC is a router port's.
func TestCNIRequestedMAC(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("rm%d", os.Getpid()%10000)
	segRouter(t, nb, name+"r")
	segNet(t, nb, name, "198.19.228.0/24", name+"r", "")
	lrp, _ := router.PortNames(name+"r", name)
	routerMAC := router.MAC(name+"r", router.Net{Name: name, Gateway: netip.MustParseAddr("198.19.228.1")})
	node := l.Nodes[0]
	rt := newRuntime(t, node)
	list := confList(t, name, "1.0.0", nil)
	a := newContainer(t, rt, list)
	a.conf.CapabilityArgs = map[string]interface{}{"mac": "02:00:c6:13:e4:0a"}
	a.mustAdd(t, ctx)
	if !strings.EqualFold(a.result.Interfaces[1].Mac, "02:00:c6:13:e4:0a") {
		t.Fatalf("requested MAC: got %s", a.result.Interfaces[1].Mac)
	}
	for mac, want := range map[string]string{
		"02:00:c6:13:e4:0a": ovnport.Name(node.SystemID, a.id, "eth0"),
		routerMAC:           "router port " + lrp,
		"00:00:00:00:00:00": "all-zero",
		"01:00:5e:00:00:01": "multicast",
		ovnport.MACFromIP(netip.MustParseAddr("198.19.228.77")).String(): "198.19.228.77",
	} {
		for _, how := range []string{"runtimeConfig", "CNI_ARGS"} {
			c := newContainer(t, rt, list)
			if how == "runtimeConfig" {
				c.conf.CapabilityArgs = map[string]interface{}{"mac": mac}
			} else {
				c.conf.Args = [][2]string{{"IgnoreUnknown", "1"}, {"MAC", mac}}
			}
			err := c.add(ctx)
			if cniCode(err) != 103 || !strings.Contains(err.Error(), mac) || !strings.Contains(err.Error(), want) {
				t.Errorf("ADD with %s mac %s = %v (code %d); want code 103 naming the MAC and %q", how, mac, err, cniCode(err), want)
			}
			if err == nil {
				_ = c.del(ctx)
			}
			assertGone(t, nb, node, c.id, c.ifName)
		}
	}
	if err := a.ping(ctx, net.ParseIP("198.19.228.1")); err != nil {
		t.Errorf("container with the requested MAC to its gateway: %v", err)
	}

	// A container port that has the router's MAC (written to NB by hand,
	// as an older ovlmgr could have): diagnose flags it.
	b := newContainer(t, rt, list)
	b.mustAdd(t, ctx)
	bp, err := containerPort(ctx, nb, node.SystemID, name, b.id, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	bl := bp.Name
	addr := routerMAC + " " + b.ip().String()
	if _, err := dbconn.Transact(ctx, nb, dbops.Update(nbdb.LogicalSwitchPortTable, []ovsdb.Condition{dbops.NameIs(bl)},
		ovsdb.Row{"addresses": dbops.StrSet(addr), "port_security": dbops.StrSet(addr)})); err != nil {
		t.Fatal(err)
	}
	r, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	if ck := r.Find("mac " + routerMAC); ck == nil || ck.Status != diagnose.Fail || !strings.Contains(ck.Detail, lrp) || !strings.Contains(ck.Detail, b.id[:12]) {
		t.Errorf("diagnose: check %+v; want a failure naming container %s and router port %s", ck, b.id, lrp)
	}
}

// ageNBPort moves an NB port's creation time an hour back: older than any
// GC's grace period.
func ageNBPort(t *testing.T, ctx context.Context, nb client.Client, name string) {
	t.Helper()
	if _, err := dbconn.Transact(ctx, nb, dbops.SetKeys(nbdb.LogicalSwitchPortTable, []ovsdb.Condition{dbops.NameIs(name)}, "external_ids",
		map[string]string{ovnport.KeyCreated: strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)})); err != nil {
		t.Fatalf("age NB port %s: %v", name, err)
	}
}
