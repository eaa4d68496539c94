package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	// cpu, when set, meters the CPU of each sample's ADD.
	cpu *cpuMeter
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
	return sampleAdd(b, ctx, newContainer(b, a.rt, a.list), a.cpu, "bridge")
}

// sampleAdd times c's ADD (metering its CPU with m, if set), then DELs it
// untimed; what names the plugin in failures.
func sampleAdd(b *testing.B, ctx context.Context, c *container, m *cpuMeter, what string) time.Duration {
	var d time.Duration
	var err error
	m.run(b, func() {
		t0 := time.Now()
		err = c.add(ctx)
		d = time.Since(t0)
	})
	if err != nil {
		b.Fatalf("%s ADD: %v", what, err)
	}
	if err := c.del(ctx); err != nil {
		b.Errorf("%s DEL: %v", what, err)
	}
	return d
}

// ovlArm is ovlmgr-cni on a network.
type ovlArm struct {
	rt   *runtime
	net  string
	list *libcni.NetworkConfigList
	// cpu, when set, meters the CPU of each sample's ADD.
	cpu *cpuMeter
}

func newOvlArm(b *testing.B, node *lab.Node, net string, extra map[string]interface{}) *ovlArm {
	rt := benchRuntime(b, node)
	return &ovlArm{rt: rt, net: net, list: confList(b, net, "1.1.0", extra)}
}

func (a *ovlArm) sample(b *testing.B, ctx context.Context) time.Duration {
	return sampleAdd(b, ctx, newContainer(b, a.rt, a.list), a.cpu, "ovlmgr-cni")
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

// northdCPU returns ovn-northd's CPU time so far (pidfileCPU) for lab l's
// standalone central.
func northdCPU(b *testing.B, l *lab.Lab) time.Duration {
	b.Helper()
	return pidfileCPU(b, l.CentralDir+"/ovn-northd.pid")
}

// pidfileCPU is the CPU time the process whose PID is in pidfile has
// used so far (procCPU).
func pidfileCPU(b *testing.B, pidfile string) time.Duration {
	b.Helper()
	return procCPU(b, readPID(b, pidfile))
}

// procCPU is the time the threads of process pid have run on a CPU, in
// nanoseconds (the first field of /proc/PID/task/TID/schedstat, summed;
// /proc/PID/stat counts 10 ms ticks, too coarse for one ADD).
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of process %d: none (%v)", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		if f := strings.Fields(string(raw)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// childrenCPU is the CPU time (user + system) of this process's children
// that have exited and been waited for (the plugin processes a sample
// runs, with the runtime's re-exec into the node's namespace).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter splits the CPU an ADD costs among the daemons of a 1-node lab,
// its node's CNI server and the processes the runtime starts.
type cpuMeter struct {
	names []string
	pids  map[string]int
	sum   map[string]time.Duration
	n     int
}

// newCPUMeter meters l's central and first node's daemons and the CNI
// server with PID server.
func newCPUMeter(b *testing.B, l *lab.Lab, server int) *cpuMeter {
	b.Helper()
	m := &cpuMeter{pids: map[string]int{"cni-server": server}, sum: map[string]time.Duration{}}
	for name, pidfile := range map[string]string{
		"northd": "ovn-northd.pid", "nb": "ovsdb-server-nb.pid", "sb": "ovsdb-server-sb.pid", "control": "ovlmgr-control1.pid",
	} {
		m.pids[name] = readPID(b, filepath.Join(l.CentralDir, pidfile))
	}
	for name, pidfile := range map[string]string{
		"controller": "ovn-controller.pid", "vswitchd": "ovs-vswitchd.pid", "node-ovsdb": "ovsdb-server.pid",
	} {
		m.pids[name] = readPID(b, filepath.Join(l.Nodes[0].Dir, pidfile))
	}
	for name := range m.pids {
		m.names = append(m.names, name)
	}
	m.names = append(m.names, "runtime+plugin")
	sort.Strings(m.names)
	return m
}

// readPID is the PID in pidfile.
func readPID(b *testing.B, pidfile string) int {
	b.Helper()
	raw, err := os.ReadFile(pidfile)
	if err != nil {
		b.Fatalf("pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatalf("pid in %s: %v", pidfile, err)
	}
	return pid
}

// run runs f and adds the CPU each process used meanwhile; a nil meter
// only runs f.
func (m *cpuMeter) run(b *testing.B, f func()) {
	b.Helper()
	if m == nil {
		f()
		return
	}
	before := map[string]time.Duration{}
	for name, pid := range m.pids {
		before[name] = procCPU(b, pid)
	}
	c0 := childrenCPU()
	f()
	m.sum["runtime+plugin"] += childrenCPU() - c0
	for name, pid := range m.pids {
		m.sum[name] += procCPU(b, pid) - before[name]
	}
	m.n++
}

// report prints the mean CPU per call of each process and their total.
func (m *cpuMeter) report(b *testing.B, prefix string) {
	if m.n == 0 {
		return
	}
	var total time.Duration
	for _, name := range m.names {
		total += m.sum[name]
		b.ReportMetric(float64(m.sum[name].Microseconds())/1000/float64(m.n), prefix+name+"-ms")
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(m.n), prefix+"total-ms")
}
