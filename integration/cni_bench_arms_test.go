package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// The arms of the CNI benchmarks. Every arm is a CNI plugin invoked through
// the same runtime (libcni, the node-namespace re-exec, the plugin process)
// and timed with the same clock around AddNetworkList; what the arm's ADD
// makes is removed after the sample, untimed.
//
//   - ovlmgr: ovlmgr-cni as a user runs it;
//   - floor: testdata/floorbind, the steps ovlmgr-cni cannot avoid and
//     nothing else, in mode "ready" (a port made in NB before the sample is
//     claimed: the ADD of a pool of ready ports) or "dynamic" (the ADD
//     inserts the port and waits for ovn-northd's address);
//   - bridge: the reference plugins `bridge` + `host-local` of
//     containernetworking-plugins (a Linux bridge in the node's namespace,
//     no overlay): the practical lower bound of a CNI ADD.

// refPluginDir is where Debian's containernetworking-plugins puts bridge
// and host-local.
const refPluginDir = "/usr/lib/cni"

// benchRuntime is a runtime on node that finds ovlmgr-cni, floorbind and
// the reference plugins.
func benchRuntime(b *testing.B, node *lab.Node) *runtime {
	b.Helper()
	floorBin(b) // built into the plugin directory
	if _, err := os.Stat(refPluginDir + "/bridge"); err != nil {
		needLab(b)
		b.Fatalf("reference plugin: %v (containernetworking-plugins)", err)
	}
	e := &nodeExec{node: node}
	return &runtime{node: node, exec: e, cni: libcni.NewCNIConfigWithCacheDir([]string{cniPluginDir(b), refPluginDir}, b.TempDir(), e)}
}

// listFrom builds a one-plugin conflist named name (CNI 1.0.0: the newest
// version Debian's bridge plugin supports).
func listFrom(b *testing.B, name string, plugin map[string]interface{}) *libcni.NetworkConfigList {
	b.Helper()
	raw, err := json.Marshal(map[string]interface{}{"cniVersion": "1.0.0", "name": name, "plugins": []interface{}{plugin}})
	if err != nil {
		b.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		b.Fatalf("conflist %s: %v", raw, err)
	}
	return l
}

// bridgeArm is the reference: bridge + host-local on subnet, its bridge
// named br in the node's namespace.
type bridgeArm struct {
	rt   *runtime
	list *libcni.NetworkConfigList
}

func newBridgeArm(b *testing.B, node *lab.Node, br, subnet string) *bridgeArm {
	rt := benchRuntime(b, node)
	list := listFrom(b, "ref"+br, map[string]interface{}{"type": "bridge", "bridge": br, "isGateway": true,
		"ipam": map[string]interface{}{"type": "host-local", "subnet": subnet, "dataDir": b.TempDir()}})
	b.Cleanup(func() {
		_ = node.Do(func() error {
			if l, err := netlink.LinkByName(br); err == nil {
				return netlink.LinkDel(l)
			}
			return nil
		})
	})
	return &bridgeArm{rt: rt, list: list}
}

// sample times one ADD, then DELs it untimed.
func (a *bridgeArm) sample(b *testing.B, ctx context.Context) time.Duration {
	c := newContainer(b, a.rt, a.list)
	t0 := time.Now()
	err := c.add(ctx)
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("bridge ADD: %v", err)
	}
	if err := c.del(ctx); err != nil {
		b.Errorf("bridge DEL: %v", err)
	}
	return d
}

// ovlArm is ovlmgr-cni on a network.
type ovlArm struct {
	rt   *runtime
	net  string
	list *libcni.NetworkConfigList
}

func newOvlArm(b *testing.B, node *lab.Node, net string, extra map[string]interface{}) *ovlArm {
	rt := benchRuntime(b, node)
	return &ovlArm{rt: rt, net: net, list: confList(b, net, "1.1.0", extra)}
}

func (a *ovlArm) sample(b *testing.B, ctx context.Context) time.Duration {
	c := newContainer(b, a.rt, a.list)
	t0 := time.Now()
	err := c.add(ctx)
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("ovlmgr-cni ADD: %v", err)
	}
	if err := c.del(ctx); err != nil {
		b.Errorf("ovlmgr-cni DEL: %v", err)
	}
	return d
}

// floorArm is floorbind on a network of lab l's node.
type floorArm struct {
	rt     *runtime
	l      *lab.Lab
	node   *lab.Node
	nb     client.Client
	net    string
	mode   string
	prefix int
	// base is the first three octets of the ready ports' addresses: a /24
	// inside the network's subnet that its other ports do not use.
	base string
	seq  int
}

func newFloorArm(b *testing.B, l *lab.Lab, node *lab.Node, nb client.Client, net, mode string, prefix int, base string) *floorArm {
	return &floorArm{rt: benchRuntime(b, node), l: l, node: node, nb: nb, net: net, mode: mode, prefix: prefix, base: base}
}

func (a *floorArm) sample(b *testing.B, ctx context.Context) time.Duration {
	a.seq++
	i := a.seq
	tag := fmt.Sprintf("%d-%s-%d", os.Getpid(), a.mode, i)
	lsp, host := "floor-"+tag, fmt.Sprintf("flr%c%d", a.mode[0], i)
	mac := fmt.Sprintf("0a:58:c6:13:%02x:%02x", 200+(i/250)%50, i%250)
	if a.mode == "ready" {
		// The ready port: in NB, static address, port security, and
		// ovn-northd and the chassis caught up, before the clock starts.
		addr := fmt.Sprintf("%s %s.%d", mac, a.base, 1+i%250)
		a.run(b, ctx, "ovn-nbctl", "--db="+a.l.NB, "lsp-add", a.net, lsp, "--", "lsp-set-addresses", lsp, addr,
			"--", "lsp-set-port-security", lsp, addr, "--", "lsp-set-options", lsp, "requested-chassis="+a.node.SystemID)
		if err := settleHV(ctx, a.nb); err != nil {
			b.Fatal(err)
		}
	}
	list := listFrom(b, "floor"+a.net, map[string]interface{}{"type": "floorbind", "nb": a.l.NB, "ovs": a.node.OVS,
		"network": a.net, "mode": a.mode, "port": lsp, "mac": mac, "host": host, "prefix": a.prefix})
	c := newContainer(b, a.rt, list)
	t0 := time.Now()
	err := c.add(ctx)
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("floor (%s) ADD: %v", a.mode, err)
	}
	a.run(b, ctx, "ovs-vsctl", "del-port", "br-int", host)
	a.run(b, ctx, "ovn-nbctl", "--db="+a.l.NB, "lsp-del", lsp)
	_ = a.node.Do(func() error {
		if lk, err := netlink.LinkByName(host); err == nil {
			return netlink.LinkDel(lk)
		}
		return nil
	})
	return d
}

func (a *floorArm) run(b *testing.B, ctx context.Context, name string, args ...string) {
	out, err := a.node.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// waitPool waits until node's pool of network net holds size ready ports
// and none being made (the refills that ADD and DEL start have finished), so
// that an ovlmgr sample starts from a full pool and no refill competes with
// it for ovn-northd.
func waitPool(b *testing.B, ctx context.Context, nb client.Client, net, node string, size int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pps, err := ovnport.ListPool(ctx, nb, net, node)
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, pp := range pps {
			if pp.State == ovnport.PoolReady {
				ready++
			}
		}
		if ready == size && len(pps) == size {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pool of %s on %s: %d ready of %d ports after 30 s; want %d", net, node, ready, len(pps), size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countIn counts the lines of file path that contain s.
func countIn(b *testing.B, path, s string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return strings.Count(string(data), s)
}

// northdCPU returns ovn-northd's CPU time so far (user + system, from
// /proc/<pid>/stat) for lab l's standalone central.
func northdCPU(b *testing.B, l *lab.Lab) time.Duration {
	b.Helper()
	return pidfileCPU(b, l.CentralDir+"/ovn-northd.pid")
}

// pidfileCPU is the CPU time (user + system) of the process whose PID is in
// pidfile, from /proc/PID/stat.
func pidfileCPU(b *testing.B, pidfile string) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(pidfile)
	if err != nil {
		b.Fatalf("pid: %v", err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(raw)) + "/stat")
	if err != nil {
		b.Fatalf("stat of the process in %s: %v", pidfile, err)
	}
	// Fields after the command name "(...)": state is field 3; utime and
	// stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
