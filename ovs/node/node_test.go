package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

const encapIP = "198.18.5.1"

// env is a real Open_vSwitch db, a real SB db and a network namespace whose
// veth holds encapIP.
type env struct {
	ovs, sb *ovsdbtest.Server
	netns   ns.NetNS
}

func setup(t *testing.T) *env {
	t.Helper()
	prereq.Root(t)
	e := &env{ovs: ovsdbtest.StartVswitch(t), sb: ovsdbtest.StartSB(t)}
	var err error
	e.netns, err = testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.netns.Close(); _ = testutils.UnmountNS(e.netns) })
	err = e.netns.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "d0"}, PeerName: "d1"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("d0")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(encapIP + "/24")
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) opts() JoinOptions {
	return JoinOptions{OVS: e.ovs.Endpoint, SB: e.sb.Endpoint, NB: "unix:/run/nb.sock", EncapIP: encapIP,
		SystemID: "n1", Hostname: "host1", Datapath: "netdev"}
}

// join runs Join inside the namespace that holds encapIP.
func (e *env) join(t *testing.T, o JoinOptions) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res *Result
	err := e.netns.Do(func(ns.NetNS) error {
		var err error
		res, err = Join(ctx, o)
		return err
	})
	return res, err
}

func (e *env) ids(t *testing.T) map[string]string {
	t.Helper()
	c, err := vsdb.Connect(context.Background(), e.ovs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	root, err := vsdb.Root(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return root.ExternalIDs
}

func (e *env) bridge(t *testing.T, name string) *vswitchd.Bridge {
	t.Helper()
	c, err := vsdb.Connect(context.Background(), e.ovs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br, err := vsdb.Bridge(context.Background(), c, name)
	if err != nil {
		t.Fatal(err)
	}
	return br
}

func TestJoinLeave(t *testing.T) {
	e := setup(t)
	// Keys that are not ours survive join and leave; a system-id that was
	// already set to the same value is not removed by leave.
	e.ovs.Run(t, "ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", "external_ids:foo=bar", "external_ids:system-id=n1")
	res, err := e.join(t, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.CreatedBridge || res.SystemID != "n1" {
		t.Errorf("first join result %+v, want changed, created bridge, system-id n1", res)
	}
	ids := e.ids(t)
	want := map[string]string{
		"system-id": "n1", "hostname": "host1", "ovn-remote": e.sb.Endpoint, "ovn-encap-type": "geneve",
		"ovn-encap-ip": encapIP, "ovn-bridge": "br-int", "ovn-bridge-datapath-type": "netdev",
		KeyNB: "unix:/run/nb.sock", "foo": "bar",
	}
	for k, v := range want {
		if ids[k] != v {
			t.Errorf("external_ids:%s = %q, want %q", k, ids[k], v)
		}
	}
	if strings.Contains(ids[KeyJoined], "system-id") {
		t.Errorf("%s = %q lists system-id, which was already set", KeyJoined, ids[KeyJoined])
	}
	br := e.bridge(t, "br-int")
	if br == nil {
		t.Fatal("br-int not created")
	}
	if br.DatapathType != "netdev" || br.FailMode == nil || *br.FailMode != "secure" ||
		br.OtherConfig["disable-in-band"] != "true" || !owner.Owned(br.ExternalIDs, KindBridge) || len(br.Ports) != 1 {
		t.Errorf("br-int = %+v", br)
	}

	res, err = e.join(t, e.opts())
	if err != nil || res.Changed || res.CreatedBridge {
		t.Errorf("second join: %+v, %v; want no change", res, err)
	}
	info, err := Local(context.Background(), e.ovs.Endpoint)
	if err != nil || info.NB != "unix:/run/nb.sock" || info.SystemID != "n1" || !info.Joined {
		t.Errorf("Local = %+v, %v", info, err)
	}

	// Leave refuses while other ports are on br-int, unless forced.
	e.ovs.Run(t, "ovs-vsctl", "--no-wait", "add-port", "br-int", "c1")
	ctx := context.Background()
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint}); err == nil || !strings.Contains(err.Error(), "other port") {
		t.Errorf("leave with a container port: %v, want refusal", err)
	}
	e.ovs.Run(t, "ovs-vsctl", "--no-wait", "del-port", "br-int", "c1")
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint}); err != nil {
		t.Fatal(err)
	}
	ids = e.ids(t)
	for k := range want {
		_, has := ids[k]
		if keep := k == "foo" || k == "system-id"; keep != has {
			t.Errorf("after leave external_ids:%s present=%v, want %v (%v)", k, has, keep, ids)
		}
	}
	if _, has := ids[KeyJoined]; has {
		t.Errorf("after leave %s still set", KeyJoined)
	}
	if e.bridge(t, "br-int") != nil {
		t.Error("br-int still there after leave")
	}
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint}); err != nil {
		t.Errorf("second leave: %v", err)
	}
}

func TestJoinRefusals(t *testing.T) {
	e := setup(t)
	e.sb.Run(t, "ovn-sbctl", "chassis-add", "taken", "geneve", "198.18.5.99")
	e.sb.Run(t, "ovn-sbctl", "chassis-add", "sameip", "geneve", encapIP+"0") // 198.18.5.10: different IP
	before := e.ids(t)

	cases := []struct {
		name string
		mod  func(*JoinOptions)
		want string
	}{
		{"encap IP not local", func(o *JoinOptions) { o.EncapIP = "198.18.9.9" }, "not assigned to any local interface"},
		{"encap IP invalid", func(o *JoinOptions) { o.EncapIP = "198.18.999.1" }, "not an IP address"},
		{"system-id used by another chassis", func(o *JoinOptions) { o.SystemID = "taken" }, `system id "taken" is already used by another chassis`},
		{"bad datapath", func(o *JoinOptions) { o.Datapath = "dpdk" }, `datapath "dpdk": allowed are system, netdev`},
		{"bad system-id", func(o *JoinOptions) { o.SystemID = "a b" }, `system id "a b"`},
		{"no SB", func(o *JoinOptions) { o.SB = "" }, "southbound endpoint is required"},
		{"bad SB", func(o *JoinOptions) { o.SB = "http://x" }, "scheme must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := e.opts()
			c.mod(&o)
			_, err := e.join(t, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("join: %v, want error containing %q", err, c.want)
			}
		})
	}

	t.Run("encap IP used by another chassis", func(t *testing.T) {
		e.sb.Run(t, "ovn-sbctl", "chassis-add", "other", "geneve", encapIP)
		defer e.sb.Run(t, "ovn-sbctl", "chassis-del", "other")
		if _, err := e.join(t, e.opts()); err == nil || !strings.Contains(err.Error(), `already used by chassis "other"`) {
			t.Fatalf("join: %v, want encap IP refusal", err)
		}
	})
	t.Run("br-int of another type not ours", func(t *testing.T) {
		e.ovs.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=system")
		defer e.ovs.Run(t, "ovs-vsctl", "--no-wait", "del-br", "br-int")
		if _, err := e.join(t, e.opts()); err == nil || !strings.Contains(err.Error(), "not created by ovlmgr") {
			t.Fatalf("join: %v, want br-int refusal", err)
		}
	})
	if after := e.ids(t); len(after) != len(before) {
		t.Fatalf("refused joins changed external_ids: %v -> %v", before, after)
	}

	t.Run("another ovn-remote unless forced", func(t *testing.T) {
		e.ovs.Run(t, "ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", "external_ids:ovn-remote=tcp:198.18.0.200:6642")
		if _, err := e.join(t, e.opts()); err == nil || !strings.Contains(err.Error(), "already has ovn-remote=tcp:198.18.0.200:6642") || !errors.Is(err, ErrOtherRemote) {
			t.Fatalf("join: %v, want ovn-remote refusal (ErrOtherRemote, which Force overrides)", err)
		}
		o := e.opts()
		o.Force = true
		if _, err := e.join(t, o); err != nil {
			t.Fatalf("forced join: %v", err)
		}
		if got := e.ids(t)["ovn-remote"]; got != e.sb.Endpoint {
			t.Fatalf("ovn-remote after forced join = %q", got)
		}
	})
}

// TestLeaveRemovesPool: leave with an NB endpoint removes this node's
// unclaimed pool ports (and their hints) from every network, and nothing of
// another node or any container port; an unreachable NB stops the leave
// before anything changes, unless forced.
func TestLeaveRemovesPool(t *testing.T) {
	e := setup(t)
	nbSrv := ovsdbtest.StartNB(t)
	o := e.opts()
	o.NB = nbSrv.Endpoint
	if _, err := e.join(t, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, nbSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	hints := map[string]string{}
	var ops []ovsdb.Operation
	var refs []ovsdb.UUID
	for i, p := range []struct{ name, node, kind string }{
		{"ovl-pool1", "n1", ovnport.KindPool}, {"ovl-pool2", "n1", ovnport.KindPool},
		{"ovl-pool3", "n2", ovnport.KindPool}, {"ovl-ctr1", "n1", owner.KindPort},
	} {
		ids := owner.IDs(p.kind, p.name, map[string]string{owner.KeyNode: p.node, owner.KeyNetwork: "web", ovnport.KeyPool: ovnport.PoolReady})
		u := fmt.Sprintf("p%d", i)
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.LogicalSwitchPortTable, UUIDName: u,
			Row: ovsdb.Row{"name": p.name, "external_ids": dbops.StrMap(ids)}})
		refs = append(refs, ovsdb.UUID{GoUUID: u})
		if p.kind == ovnport.KindPool {
			hints[ovnport.HintPrefix+p.node+"/"+p.name] = "tok 0a:58:c6:13:00:02 198.19.0.2"
		}
	}
	ports, _ := ovsdb.NewOvsSet(refs)
	ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.LogicalSwitchTable,
		Row: ovsdb.Row{"name": "web", "ports": ports, "external_ids": dbops.StrMap(hints)}})
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		t.Fatal(err)
	}
	left := func() (names []string, hintKeys []string) {
		t.Helper()
		var lsps []*nbdb.LogicalSwitchPort
		if err := dbconn.Select(ctx, nb, &nbdb.LogicalSwitchPort{}, &lsps); err != nil {
			t.Fatal(err)
		}
		for _, l := range lsps {
			names = append(names, l.Name)
		}
		sort.Strings(names)
		var sws []*nbdb.LogicalSwitch
		if err := dbconn.Select(ctx, nb, &nbdb.LogicalSwitch{}, &sws); err != nil || len(sws) != 1 {
			t.Fatalf("switches %v, %v", sws, err)
		}
		for k := range sws[0].ExternalIDs {
			hintKeys = append(hintKeys, k)
		}
		sort.Strings(hintKeys)
		return names, hintKeys
	}

	// Unreachable NB: refused, nothing changed.
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint, NB: "unix:/nonexistent/nb.sock"}); err == nil || !strings.Contains(err.Error(), "pool ports of node n1") {
		t.Fatalf("leave with an unreachable NB = %v; want a refusal naming the pool ports", err)
	}
	if ids := e.ids(t); ids[KeyJoined] == "" {
		t.Fatalf("a refused leave changed the node: %v", ids)
	}
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint, NB: nbSrv.Endpoint}); err != nil {
		t.Fatal(err)
	}
	names, keys := left()
	if strings.Join(names, ",") != "ovl-ctr1,ovl-pool3" || strings.Join(keys, ",") != ovnport.HintPrefix+"n2/ovl-pool3" {
		t.Errorf("after leave: ports %v, switch keys %v; want n1's pool ports and hints gone, n2's and the container port kept", names, keys)
	}
	if ids := e.ids(t); ids[KeyJoined] != "" {
		t.Errorf("still joined after leave: %v", ids)
	}
}

// TestRcvbufWarning: join names the receive buffer sysctls on a userspace
// datapath node whose default is below 4 MiB, and nothing otherwise.
func TestRcvbufWarning(t *testing.T) {
	for _, c := range []struct {
		dp       string
		def, max int
		want     []string
	}{
		{"netdev", 212992, 212992, []string{"net.core.rmem_default is 212992 bytes", "net.core.rmem_default=4194304", "net.core.rmem_max=4194304 (now 212992)", "restart ovs-vswitchd"}},
		{"netdev", 212992, 8 << 20, []string{"net.core.rmem_default=4194304 (sysctl -w)"}},
		{"netdev", 4 << 20, 4 << 20, nil},
		{"system", 212992, 212992, nil},
	} {
		w := RcvbufWarning(c.dp, c.def, c.max)
		if (w == "") != (c.want == nil) {
			t.Errorf("%s %d/%d: warning %q; want one: %v", c.dp, c.def, c.max, w, c.want != nil)
		}
		for _, s := range c.want {
			if !strings.Contains(w, s) {
				t.Errorf("%s %d/%d: warning %q lacks %q", c.dp, c.def, c.max, w, s)
			}
		}
		if c.max >= 4<<20 && strings.Contains(w, "rmem_max") {
			t.Errorf("%s %d/%d: warning %q names rmem_max, which is large enough", c.dp, c.def, c.max, w)
		}
	}
}

// TestJoinARPFluxWarning: on a userspace node whose encap IP is on a netdev
// bridge's internal port, join warns about a kernel port of that bridge
// whose arp_ignore is 0 (it answers ARP for the encap IP with its own MAC)
// and names the sysctl; with arp_ignore=1, or on the kernel datapath, it
// does not.
func TestJoinARPFluxWarning(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// d0 (holding the encap IP) stands for the bridge's internal port, d1
	// for the NIC in the bridge.
	c, err := vsdb.Connect(ctx, e.ovs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	root, err := vsdb.Init(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := vsdb.BridgeOps(c, root.UUID, vsdb.BridgeSpec{Name: "d0", Datapath: "netdev", Ports: []string{"d1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Fatal(err)
	}
	setIgnore := func(v string) {
		if err := e.netns.Do(func(ns.NetNS) error {
			return os.WriteFile("/proc/sys/net/ipv4/conf/d1/arp_ignore", []byte(v), 0o644)
		}); err != nil {
			t.Fatal(err)
		}
	}
	fluxWarning := func(o JoinOptions) string {
		res, err := e.join(t, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range res.Warnings {
			if strings.Contains(w, "arp_ignore") {
				return w
			}
		}
		return ""
	}
	setIgnore("0")
	w := fluxWarning(e.opts())
	for _, s := range []string{"d1 (a kernel port of userspace bridge d0) answers ARP for encap IP " + encapIP, "set net.ipv4.conf.d1.arp_ignore=1"} {
		if !strings.Contains(w, s) {
			t.Errorf("join with d1 answering ARP: warning %q; want it to say %q", w, s)
		}
	}
	setIgnore("1")
	if w := fluxWarning(e.opts()); w != "" {
		t.Errorf("join with arp_ignore=1 on d1: %q; want no ARP warning", w)
	}
	setIgnore("0")
	o := e.opts()
	o.Datapath = "system"
	if w := fluxWarning(o); w != "" {
		t.Errorf("join on the kernel datapath: %q; want no ARP warning (the kernel does not see a datapath port's frames)", w)
	}
}
