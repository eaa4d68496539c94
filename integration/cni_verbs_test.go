package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

func atLeast(ver, min string) bool {
	ok, _ := version.GreaterThanOrEqualTo(ver, min)
	return ok
}

// TestCNIVerbs: ADD result, the gateway (on a router) answers, a second ADD
// refused without harm, CHECK
// (passes, then catches a removed route), DEL, repeated DEL and DEL without
// netns leave nothing, over every spec version.
func TestCNIVerbs(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cv%d", os.Getpid()%10000)
	// On a router, so the gateway answers: the ping below must succeed.
	segRouter(t, nb, name+"r")
	segNet(t, nb, name, "198.19.210.0/24", name+"r", "")
	n, err := network.Get(ctx, nb, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			node := l.Nodes[1]
			rt := newRuntime(t, node)
			c := newContainer(t, rt, confList(t, name, ver, nil))
			if err := c.add(ctx); err != nil {
				t.Fatalf("ADD: %v\n%s", err, rt.exec.stderr.String())
			}
			r := c.result
			host := ovsport.HostIfName(c.id, c.ifName)
			if len(r.Interfaces) != 2 || r.Interfaces[0].Name != host || r.Interfaces[0].Sandbox != "" ||
				r.Interfaces[1].Name != "eth0" || r.Interfaces[1].Sandbox != c.ns.Path() {
				t.Fatalf("interfaces %+v; want host %s and eth0 in %s", r.Interfaces, host, c.ns.Path())
			}
			if len(r.IPs) != 1 || r.IPs[0].Interface == nil || *r.IPs[0].Interface != 1 ||
				!strings.HasPrefix(r.IPs[0].Address.String(), "198.19.210.") || !strings.HasSuffix(r.IPs[0].Address.String(), "/24") ||
				r.IPs[0].Gateway.String() != n.Gateway {
				t.Fatalf("ips %+v; want one 198.19.210.x/24 on interface 1 with gateway %s", r.IPs, n.Gateway)
			}
			if len(r.Routes) != 1 || r.Routes[0].Dst.String() != "0.0.0.0/0" || r.Routes[0].GW.String() != n.Gateway {
				t.Errorf("routes %+v; want default via %s", r.Routes, n.Gateway)
			}
			if atLeast(ver, "1.1.0") && r.Interfaces[1].Mtu != c.mtu(t) {
				t.Errorf("result mtu %d; link has %d", r.Interfaces[1].Mtu, c.mtu(t))
			}
			p, err := containerPort(ctx, nb, c.rt.node.SystemID, "", c.id, c.ifName)
			if err != nil || p.IP.String() != c.ip().String() || !strings.EqualFold(p.MAC, r.Interfaces[1].Mac) || p.Node != node.SystemID {
				t.Fatalf("NB port %+v (%v); want IP %s MAC %s node %s", p, err, c.ip(), r.Interfaces[1].Mac, node.SystemID)
			}
			// A second ADD of the same container interface fails and leaves the first intact.
			second := &container{id: c.id, ifName: c.ifName, ns: c.ns, rt: newRuntime(t, node), list: c.list, conf: c.conf}
			if err := second.add(ctx); err == nil || cniCode(err) < 100 {
				t.Errorf("second ADD = %v; want an ovlmgr error code", err)
			}
			if err := c.ping(ctx, net.ParseIP(n.Gateway).To4()); err != nil {
				t.Errorf("gateway %s (router %sr) does not answer: %v", n.Gateway, name, err)
			}
			if atLeast(ver, "0.4.0") {
				if err := rt.cni.CheckNetworkList(ctx, c.list, c.conf); err != nil {
					t.Fatalf("CHECK after ADD: %v\n%s", err, rt.exec.stderr.String())
				}
				// Break the container: CHECK must notice.
				if err := c.ns.Do(func(ns.NetNS) error {
					lk, err := netlink.LinkByName("eth0")
					if err != nil {
						return err
					}
					routes, _ := netlink.RouteList(lk, netlink.FAMILY_V4)
					for _, rt := range routes {
						if rt.Dst == nil || rt.Dst.String() == "0.0.0.0/0" {
							return netlink.RouteDel(&rt)
						}
					}
					return fmt.Errorf("no default route to remove")
				}); err != nil {
					t.Fatal(err)
				}
				if err := rt.cni.CheckNetworkList(ctx, c.list, c.conf); err == nil || !strings.Contains(err.Error(), "default route") {
					t.Errorf("CHECK with the default route removed = %v; want it to name the route", err)
				}
			}
			if err := c.del(ctx); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			assertGone(t, nb, node, c.id, c.ifName)
			if err := c.del(ctx); err != nil {
				t.Errorf("repeated DEL: %v", err)
			}
			noNS := *c.conf
			noNS.NetNS = ""
			if err := rt.cni.DelNetworkList(ctx, c.list, &noNS); err != nil {
				t.Errorf("DEL without netns: %v", err)
			}
			gone := *c.conf
			gone.NetNS = fmt.Sprintf("/run/netns/ovlmgr-vanished-%d", os.Getpid())
			if err := rt.cni.DelNetworkList(ctx, c.list, &gone); err != nil {
				t.Errorf("DEL with a vanished netns: %v", err)
			}
			// DEL from a runtime without the cached result (no prevResult).
			if err := newRuntime(t, node).cni.DelNetworkList(ctx, c.list, c.conf); err != nil {
				t.Errorf("DEL without prevResult: %v", err)
			}
			assertGone(t, nb, node, c.id, c.ifName)
		})
	}
}

// TestCNIRequestedAddress: runtimeConfig ips/mac and CNI_ARGS IP=/MAC= are
// honoured; an address in use or outside the subnet is refused naming it,
// leaving nothing behind.
func TestCNIRequestedAddress(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cr%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.211.0/24")
	for i, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			node := l.Nodes[i%3]
			rt := newRuntime(t, node)
			list := confList(t, name, ver, nil)
			ip := fmt.Sprintf("198.19.211.%d", 100+i)
			mac := fmt.Sprintf("0a:58:c6:13:d3:%02x", 100+i)
			a := newContainer(t, rt, list)
			a.conf.CapabilityArgs = map[string]interface{}{"ips": []string{ip + "/24"}, "mac": mac}
			a.mustAdd(t, ctx)
			if a.ip().String() != ip || !strings.EqualFold(a.result.Interfaces[1].Mac, mac) {
				t.Fatalf("runtimeConfig: got %s %s; want %s %s", a.ip(), a.result.Interfaces[1].Mac, ip, mac)
			}
			b := newContainer(t, rt, list)
			ip2 := fmt.Sprintf("198.19.211.%d", 150+i)
			b.conf.Args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "web-0"}, {"IP", ip2}}
			b.mustAdd(t, ctx)
			if b.ip().String() != ip2 {
				t.Fatalf("CNI_ARGS IP: got %s; want %s", b.ip(), ip2)
			}
			for bad, want := range map[string]string{ip: "used by port", "198.19.99.5": "outside", "198.19.211.1": "gateway"} {
				c := newContainer(t, rt, list)
				c.conf.CapabilityArgs = map[string]interface{}{"ips": []string{bad}}
				err := c.add(ctx)
				if err == nil || cniCode(err) != 103 || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), want) {
					t.Errorf("ADD with ip %s = %v (code %d); want code 103 naming it and %q", bad, err, cniCode(err), want)
				}
				if err == nil {
					_ = c.del(ctx)
				}
				assertGone(t, nb, node, c.id, c.ifName)
			}
		})
	}
}

// TestCNIBadInput: bad environments and configs give the right code and
// message and leave nothing behind, over every spec version.
func TestCNIBadInput(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cb%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.212.0/24")
	node := l.Nodes[0]
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			netns := newContainer(t, newRuntime(t, node), nil)
			env := func(cmd string) []string {
				e := []string{"CNI_CONTAINERID=" + netns.id, "CNI_NETNS=" + netns.ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
				if cmd != "" {
					e = append(e, "CNI_COMMAND="+cmd)
				}
				return e
			}
			good := fmt.Sprintf(`{"cniVersion":%q,"name":%q,"type":"ovlmgr-cni"`, ver, name)
			cases := []struct {
				what, cmd, conf string
				code            uint
				msg             string
			}{
				{"missing CNI_COMMAND", "", good + "}", 4, "CNI_COMMAND"},
				{"bad JSON", "ADD", good + ",", 6, ""},
				{"unknown network", "ADD", good + `,"network":"nosuchnet"}`, 7, "nosuchnet"},
				{"wrong type mtu", "ADD", good + `,"mtu":"big"}`, 7, `"mtu"`},
				{"bad readyTimeout", "ADD", good + `,"readyTimeout":"soon"}`, 7, "readyTimeout"},
				{"bad nb endpoint", "ADD", good + `,"nb":"http://x"}`, 7, `"nb"`},
				{"unreachable NB", "ADD", good + `,"nb":"unix:/nonexistent/nb.sock"}`, 11, "Northbound"},
				{"unsupported version", "ADD", `{"cniVersion":"9.9.9","name":"x","type":"ovlmgr-cni"}`, 1, "9.9.9"},
			}
			for _, tc := range cases {
				out, code, msg := rawPlugin(t, ctx, node, env(tc.cmd), tc.conf)
				if code != tc.code || !(strings.Contains(msg, tc.msg) || strings.Contains(out, tc.msg)) || msg == "" {
					t.Errorf("%s: code %d msg %q (stdout %q); want code %d mentioning %q", tc.what, code, msg, out, tc.code, tc.msg)
				}
				assertGone(t, nb, node, netns.id, "eth0")
			}
		})
	}
}

// TestCNIVersionStatus: VERSION answers without any database (the node's
// env pointing nowhere); STATUS (1.1.0) is 0 when ADD would work and 50
// when NB or the local Open_vSwitch db is unreachable, ovn-controller is
// not running, or the subnet is full.
func TestCNIVersionStatus(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := l.Nodes[2]
	broken := *node
	broken.Env = append(append([]string{}, node.Env...), "OVS_RUNDIR=/nonexistent", "OVN_RUNDIR=/nonexistent")
	vrt := newRuntime(t, &broken)
	info, err := vrt.cni.GetVersionInfo(ctx, "ovlmgr-cni")
	if err != nil {
		t.Fatalf("VERSION: %v", err)
	}
	if got := strings.Join(info.SupportedVersions(), ","); got != strings.Join(cniVersions, ",") {
		t.Errorf("VERSION supports %s; want %s", got, strings.Join(cniVersions, ","))
	}
	name := fmt.Sprintf("cs%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.213.0/30") // one address besides the gateway
	rt := newRuntime(t, node)
	list := confList(t, name, "1.1.0", nil)
	if err := rt.cni.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatalf("STATUS on a healthy node: %v", err)
	}
	if err := rt.cni.GetStatusNetworkList(ctx, confList(t, name, "1.1.0", map[string]interface{}{"nb": "unix:/nonexistent/nb.sock"})); cniCode(err) != 50 {
		t.Errorf("STATUS with NB unreachable = %v; want code 50", err)
	}
	if err := newRuntime(t, &broken).cni.GetStatusNetworkList(ctx, list); cniCode(err) != 50 || !strings.Contains(err.Error(), "Open_vSwitch") {
		t.Errorf("STATUS with the local OVS db unreachable = %v; want code 50 naming it", err)
	}
	noCtl := *node
	noCtl.Env = append(append([]string{}, node.Env...), "OVN_RUNDIR="+t.TempDir())
	if err := newRuntime(t, &noCtl).cni.GetStatusNetworkList(ctx, list); cniCode(err) != 50 || !strings.Contains(err.Error(), "ovn-controller") {
		t.Errorf("STATUS without ovn-controller = %v; want code 50 naming ovn-controller", err)
	}
	c := newContainer(t, rt, list)
	c.mustAdd(t, ctx)
	if err := rt.cni.GetStatusNetworkList(ctx, list); cniCode(err) != 50 || !strings.Contains(err.Error(), "no free address") {
		t.Errorf("STATUS with the subnet full = %v; want code 50 saying no free address", err)
	}
	d := newContainer(t, rt, list)
	if err := d.add(ctx); cniCode(err) != 102 || !strings.Contains(err.Error(), "no free address in "+name+" (198.19.213.0/30)") {
		t.Errorf("ADD with the subnet full = %v; want code 102 no free address in %s (198.19.213.0/30)", err, name)
	}
	assertGone(t, nb, node, d.id, d.ifName)
}

// TestCNIGC: GC removes this node's ports of the network that are not in
// the valid list (keeping valid ones and other nodes'), and with an empty
// list removes every port of the network on the node.
func TestCNIGC(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cg%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.214.0/24")
	n1, n2 := l.Nodes[0], l.Nodes[1]
	list := confList(t, name, "1.1.0", map[string]interface{}{"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	rt1, rt2 := newRuntime(t, n1), newRuntime(t, n2)
	var on1 []*container
	for i := 0; i < 3; i++ {
		c := newContainer(t, rt1, list)
		if i == 2 {
			// Named by an alias, which GC cannot know: its records are
			// found through its address.
			c.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{fmt.Sprintf("gc-alias-%d", os.Getpid())}}
		}
		c.mustAdd(t, ctx)
		on1 = append(on1, c)
	}
	other := newContainer(t, rt2, list)
	other.mustAdd(t, ctx)
	// Another runtime's configuration (another name) for the same ovlmgr
	// network on the same node: its containers are not this GC's.
	foreignList, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(
		`{"cniVersion":"1.1.0","name":"%s-other","plugins":[{"type":"ovlmgr-cni","network":%q}]}`, name, name)))
	if err != nil {
		t.Fatal(err)
	}
	foreign := newContainer(t, rt1, foreignList)
	foreign.mustAdd(t, ctx)
	// A fresh runtime (empty cache) so libcni itself DELs nothing: only the plugin's GC acts.
	gcOf := func(list *libcni.NetworkConfigList, node *lab.Node, valid ...*container) error {
		args := &libcni.GCArgs{}
		for _, c := range valid {
			args.ValidAttachments = append(args.ValidAttachments, typesAttachment(c))
		}
		return newRuntime(t, node).cni.GCNetworkList(ctx, list, args)
	}
	gc := func(node *lab.Node, valid ...*container) error { return gcOf(list, node, valid...) }
	if ips, err := dns.Resolve(ctx, nb, name, fmt.Sprintf("gc-alias-%d", os.Getpid())); err != nil || len(ips) != 1 || !ips[0].Equal(on1[2].ip()) {
		t.Fatalf("alias of %s before GC resolves to %v (%v); want %s", on1[2].id, ips, err, on1[2].ip())
	}
	if err := gc(n1, on1[0]); err != nil {
		t.Fatalf("GC: %v", err)
	}
	for _, c := range on1[1:] {
		assertGone(t, nb, n1, c.id, c.ifName)
		assertNoRecords(t, nb, name, c.id, c.ip())
	}
	for _, c := range []*container{on1[0], other, foreign} {
		if _, err := containerPort(ctx, nb, c.rt.node.SystemID, "", c.id, c.ifName); err != nil {
			t.Errorf("GC removed valid or other-node port of %s: %v", c.id, err)
		}
	}
	if err := on1[0].ping(ctx, other.ip()); err != nil {
		t.Errorf("valid container broken by GC: %v", err)
	}
	// NB ports on n1 without an OVS interface there, so of no known
	// configuration: one just claimed (another runtime's ADD between claim
	// and plug) and one an hour old (what a DEL with an unreachable NB
	// leaves).
	mid, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: name, Node: n1.SystemID, Container: "mid-add-" + other.id, IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovnport.Delete(context.Background(), nb, mid.Name) })
	left, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: name, Node: n1.SystemID, Container: "left-" + other.id, IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovnport.Delete(context.Background(), nb, left.Name) })
	ageNBPort(t, ctx, nb, left.Name)
	if err := gc(n1); err != nil {
		t.Fatalf("GC with empty list: %v", err)
	}
	assertGone(t, nb, n1, on1[0].id, on1[0].ifName)
	if _, err := ovnport.Get(ctx, nb, mid.Name); err != nil {
		t.Errorf("GC removed %s, an ADD under way (claimed, not plugged yet): %v", mid.Name, err)
	}
	if _, err := ovnport.Get(ctx, nb, left.Name); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("NB port %s without OVS interface, an hour old, after GC: %v; want removed", left.Name, err)
	}
	if _, err := containerPort(ctx, nb, other.rt.node.SystemID, "", other.id, other.ifName); err != nil {
		t.Errorf("GC on %s removed %s's port: %v", n1.Name, n2.Name, err)
	}
	if err := foreign.ping(ctx, other.ip()); err != nil {
		t.Errorf("container of another CNI configuration after GC of %s with no valid attachments: %v", list.Name, err)
	}
	// Its own configuration's GC removes it.
	if err := gcOf(foreignList, n1); err != nil {
		t.Fatalf("GC of %s: %v", foreignList.Name, err)
	}
	assertGone(t, nb, n1, foreign.id, foreign.ifName)
}

// TestCNINetworksIsolated: containers on two networks cannot reach each other.
func TestCNINetworksIsolated(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := fmt.Sprintf("ci%da", os.Getpid()%10000), fmt.Sprintf("ci%db", os.Getpid()%10000)
	cniNetwork(t, nb, a, "198.19.215.0/24")
	cniNetwork(t, nb, b, "198.19.216.0/24")
	ca := newContainer(t, newRuntime(t, l.Nodes[0]), confList(t, a, "1.1.0", nil))
	ca.mustAdd(t, ctx)
	ca2 := newContainer(t, newRuntime(t, l.Nodes[2]), confList(t, a, "1.1.0", nil))
	ca2.mustAdd(t, ctx)
	cb := newContainer(t, newRuntime(t, l.Nodes[1]), confList(t, b, "1.1.0", nil))
	cb.mustAdd(t, ctx)
	if err := ca.ping(ctx, ca2.ip()); err != nil {
		t.Fatalf("same network: %v", err)
	}
	if err := ca.ping(ctx, cb.ip()); err == nil {
		t.Errorf("container on %s reached %s on %s", a, cb.ip(), b)
	}
	if err := cb.ping(ctx, ca.ip()); err == nil {
		t.Errorf("container on %s reached %s on %s", b, ca.ip(), a)
	}
}

// TestCNIDelOtherNetworkSameIfName: a container has eth0 on network a; an
// ADD of network b with eth0 too fails (the name is taken), and the
// runtime's DEL of b for eth0 then leaves a's interface alone: veth, OVS
// port and NB port stay, CHECK passes and it still reaches its peer. Before,
// that DEL removed a's attachment.
func TestCNIDelOtherNetworkSameIfName(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := fmt.Sprintf("do%da", os.Getpid()%10000), fmt.Sprintf("do%db", os.Getpid()%10000)
	cniNetwork(t, nb, a, "198.19.217.0/24")
	cniNetwork(t, nb, b, "198.19.218.0/24")
	ca := newContainer(t, newRuntime(t, l.Nodes[0]), confList(t, a, "1.1.0", nil))
	ca.mustAdd(t, ctx)
	peer := newContainer(t, newRuntime(t, l.Nodes[1]), confList(t, a, "1.1.0", nil))
	peer.mustAdd(t, ctx)
	env := []string{"CNI_CONTAINERID=" + ca.id, "CNI_NETNS=" + ca.ns.Path(), "CNI_IFNAME=" + ca.ifName, "CNI_PATH=" + cniPluginDir(t)}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, b, b)
	if _, code, _ := rawPlugin(t, ctx, ca.rt.node, append([]string{"CNI_COMMAND=ADD"}, env...), conf); code == 0 {
		t.Fatalf("ADD of %s on %s, which %s has: succeeded, want refused", b, ca.ifName, a)
	}
	if out, code, msg := rawPlugin(t, ctx, ca.rt.node, append([]string{"CNI_COMMAND=DEL"}, env...), conf); code != 0 {
		t.Fatalf("DEL of %s: code %d %s (%s)", b, code, msg, out)
	}
	if _, err := containerPort(ctx, nb, ca.rt.node.SystemID, a, ca.id, ca.ifName); err != nil {
		t.Errorf("%s's NB port after the DEL of %s: %v", a, b, err)
	}
	if err := ca.rt.cni.CheckNetworkList(ctx, ca.list, ca.conf); err != nil {
		t.Errorf("CHECK of %s after the DEL of %s: %v", a, b, err)
	}
	if err := ca.ping(ctx, peer.ip()); err != nil {
		t.Errorf("ping on %s after the DEL of %s: %v", a, b, err)
	}
	if ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: b}); err != nil || len(ps) != 0 {
		t.Errorf("ports of %s: %v (%v); want none", b, ps, err)
	}
}

// TestCNINotReady: on a node whose ovs-vswitchd never attaches the port
// (a bare Open_vSwitch db here), ADD fails after readyTimeout with code 11
// saying which step did not happen, and leaves nothing behind (NB port, OVS
// port, both veth ends), over every spec version.
func TestCNINotReady(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cn%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.221.0/24")
	fake, srv := fakeNode(t, l, "fake-"+name)
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			c := newContainer(t, newRuntime(t, fake), nil)
			env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + c.ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
			conf := fmt.Sprintf(`{"cniVersion":%q,"name":%q,"type":"ovlmgr-cni","mtu":1400,"readyTimeout":"500ms"}`, ver, name)
			_, code, msg := rawPlugin(t, ctx, fake, env, conf)
			if code != 11 || !strings.Contains(msg, "ovs-vswitchd did not attach") {
				t.Fatalf("ADD on a node without vswitchd: code %d %q; want 11 naming the missing step", code, msg)
			}
			if _, err := containerPort(ctx, nb, "fake-"+name, "", c.id, "eth0"); err == nil {
				t.Errorf("NB port left after a failed ADD")
			}
			if out := srv.Run(t, "ovs-vsctl", "--no-wait", "list-ports", "br-int"); strings.TrimSpace(out) != "" {
				t.Errorf("OVS ports left after a failed ADD: %q", out)
			}
			for _, chk := range []struct {
				path, link string
			}{{fake.NetNSPath, ovsport.HostIfName(c.id, "eth0")}, {c.ns.Path(), "eth0"}} {
				_ = ns.WithNetNSPath(chk.path, func(ns.NetNS) error {
					if _, err := netlink.LinkByName(chk.link); err == nil {
						t.Errorf("%s left in %s after a failed ADD", chk.link, chk.path)
					}
					return nil
				})
			}
		})
	}
}

// TestCNIDelVanishedNetns: the container's namespace is gone before DEL
// (it died): DEL still removes the NB port and the OVS port and succeeds.
func TestCNIDelVanishedNetns(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cd%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.222.0/24")
	node := l.Nodes[2]
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			rt := newRuntime(t, node)
			c := newContainer(t, rt, confList(t, name, ver, nil))
			if err := c.add(ctx); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			_ = c.ns.Close()
			if err := testutils.UnmountNS(c.ns); err != nil {
				t.Fatal(err)
			}
			if err := c.del(ctx); err != nil {
				t.Fatalf("DEL with the netns gone: %v", err)
			}
			assertGone(t, nb, node, c.id, c.ifName)
		})
	}
}

// TestCNIChainKeepsPrevResult: behind another plugin in a chain, ADD keeps
// its prevResult and appends its own interfaces and address (indexes
// right); CHECK and DEL work on the chained result; over every version.
func TestCNIChainKeepsPrevResult(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cc%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.223.0/24")
	node := l.Nodes[0]
	for _, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			list, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(
				`{"cniVersion":%q,"name":%q,"plugins":[{"type":"prevplugin"},{"type":"ovlmgr-cni","network":%q}]}`, ver, name, name)))
			if err != nil {
				t.Fatal(err)
			}
			rt := newRuntime(t, node)
			c := newContainer(t, rt, list)
			c.mustAdd(t, ctx)
			r := c.result
			if len(r.Interfaces) != 3 || r.Interfaces[0].Name != "fake0" || r.Interfaces[2].Name != "eth0" || r.Interfaces[2].Sandbox != c.ns.Path() {
				t.Fatalf("interfaces %+v; want fake0 kept, then host veth and eth0", r.Interfaces)
			}
			if len(r.IPs) != 2 || r.IPs[0].Address.String() != "198.18.99.1/32" || *r.IPs[0].Interface != 0 ||
				*r.IPs[1].Interface != 2 || !strings.HasPrefix(r.IPs[1].Address.String(), "198.19.223.") {
				t.Fatalf("ips %+v; want the previous one kept and ours on interface 2", r.IPs)
			}
			if atLeast(ver, "0.4.0") {
				if err := rt.cni.CheckNetworkList(ctx, c.list, c.conf); err != nil {
					t.Errorf("CHECK of the chain: %v", err)
				}
			}
		})
	}
}
