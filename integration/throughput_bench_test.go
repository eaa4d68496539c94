package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
)

// iperfResult is what BenchmarkThroughput reads of `iperf3 -J`.
type iperfResult struct {
	End struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperfServer starts `iperf3 -s` in c's namespace until the benchmark
// ends and returns its process.
func iperfServer(b *testing.B, ctx context.Context, c *container) *os.Process {
	cmd := nsexec.Command(ctx, c.ns.Path(), nil, "iperf3", "-s", "-B", c.ip().String())
	if err := cmd.Start(); err != nil {
		b.Fatalf("iperf3 -s: %v", err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process
}

// iperfRun runs a TCP client in from's namespace against to for secs seconds.
func iperfRun(b *testing.B, ctx context.Context, from, to *container, secs int) iperfResult {
	return iperfRunOn(b, ctx, from, to, secs, nil)
}

// iperfRunOn is iperfRun with the client on the CPUs cpus (nil: any).
func iperfRunOn(b *testing.B, ctx context.Context, from, to *container, secs int, cpus *unix.CPUSet) iperfResult {
	var r iperfResult
	for try := 0; ; try++ {
		cmd := nsexec.Command(ctx, from.ns.Path(), nil, "iperf3", "-c", to.ip().String(), "-t", fmt.Sprint(secs), "-J")
		var out bytes.Buffer
		cmd.Stdout = &out
		err := startOn(cmd, cpus)
		if err == nil {
			err = cmd.Wait()
		}
		r = iperfResult{}
		jerr := json.Unmarshal(out.Bytes(), &r)
		if err == nil && jerr == nil && r.Error == "" {
			return r
		}
		// The server may not listen yet on the first try.
		if try == 20 {
			b.Fatalf("iperf3 %s -> %s: %v %v %s", from.id, to.id, err, jerr, r.Error)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startOn starts cmd on the CPUs cpus (nil: any): the child inherits the
// affinity of the thread that forks it, so every thread it ever makes
// stays there.
func startOn(cmd *exec.Cmd, cpus *unix.CPUSet) error {
	if cpus == nil {
		return cmd.Start()
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("CPU affinity: %w", err)
	}
	if err := unix.SchedSetaffinity(0, cpus); err != nil {
		return fmt.Errorf("CPU affinity: %w", err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &old) }()
	return cmd.Start()
}

// pinProcess puts every thread of pid on the CPUs cpus.
func pinProcess(b *testing.B, pid int, cpus *unix.CPUSet) {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of process %d: none (%v)", pid, err)
	}
	for _, t := range tasks {
		tid, _ := strconv.Atoi(filepath.Base(t))
		if err := unix.SchedSetaffinity(tid, cpus); err != nil && !errors.Is(err, unix.ESRCH) {
			b.Fatalf("CPU affinity of thread %d of process %d: %v", tid, pid, err)
		}
	}
}

// hostCPUs splits this machine's CPUs between n lab nodes, as if each
// were a host of its own: node i gets the i-th equal share. It fails
// with fewer CPUs than nodes.
func hostCPUs(b *testing.B, n int) []unix.CPUSet {
	b.Helper()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatalf("CPU affinity: %v", err)
	}
	var ids []int
	for i := 0; i < 1024; i++ { // unix.CPUSet's size; IsSet is false past it
		if all.IsSet(i) {
			ids = append(ids, i)
		}
	}
	if len(ids) < n {
		b.Fatalf("a CPU a node: %d CPUs for %d nodes", len(ids), n)
	}
	sets := make([]unix.CPUSet, n)
	share := len(ids) / n
	for i := range sets {
		for _, id := range ids[i*share : (i+1)*share] {
			sets[i].Set(id)
		}
	}
	return sets
}

// pinNodes puts every daemon of each node (its pidfiles) on cpus[i], or
// back on every CPU when cpus is nil.
func pinNodes(b *testing.B, nodes []*lab.Node, cpus []unix.CPUSet) {
	b.Helper()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatalf("CPU affinity: %v", err)
	}
	for i, n := range nodes {
		set := &all
		if cpus != nil {
			set = &cpus[i]
		}
		pidfiles, _ := filepath.Glob(filepath.Join(n.Dir, "*.pid"))
		if len(pidfiles) == 0 {
			b.Fatalf("node %s: no pidfile in %s", n.Name, n.Dir)
		}
		for _, f := range pidfiles {
			pinProcess(b, readPID(b, f), set)
		}
	}
}

// skmemDrops matches the drop counter of a socket's memory line in
// `ss -m` (skmem:(...,d<drops>)).
var skmemDrops = regexp.MustCompile(`skmem:\([^)]*\bd(\d+)\)`)

// packetDrops sums the drops of every packet socket (ovs-vswitchd's, one
// per userspace datapath port of a kernel device) in the nodes' network
// namespaces, from `ss -0 -m`.
func packetDrops(b *testing.B, ctx context.Context, nodes []*lab.Node) uint64 {
	var sum uint64
	for _, n := range nodes {
		out, err := nsexec.Command(ctx, n.NetNSPath, nil, "ss", "-0", "-m", "-n").Output()
		if err != nil {
			b.Fatalf("ss -0 -m on %s: %v", n.Name, err)
		}
		for _, m := range skmemDrops.FindAllSubmatch(out, -1) {
			v, _ := strconv.ParseUint(string(m[1]), 10, 64)
			sum += v
		}
	}
	return sum
}

// datapathCPU is the CPU time the ovs-vswitchd of nodes have used so far:
// the userspace datapath and the kernel work its sends into veths do (the
// receiving container's TCP input included).
func datapathCPU(b *testing.B, nodes []*lab.Node) time.Duration {
	var sum time.Duration
	for _, n := range nodes {
		sum += pidfileCPU(b, filepath.Join(n.Dir, "ovs-vswitchd.pid"))
	}
	return sum
}

// throughputArm is what one arm of BenchmarkThroughput measured, per path.
type throughputArm struct {
	same, cross throughputPath
}

// throughputPath sums a path's iperf3 runs.
type throughputPath struct {
	bps                    []float64
	retransmits, drops, gb float64
	cpu                    time.Duration
}

// run makes one iperf3 run from a to same, then one from a to cross, the
// client on clientCPUs (nil: any).
func (arm *throughputArm) run(b *testing.B, ctx context.Context, nodes []*lab.Node, a, same, cross *container, secs int, clientCPUs *unix.CPUSet) {
	for _, p := range []struct {
		to   *container
		path *throughputPath
	}{{same, &arm.same}, {cross, &arm.cross}} {
		d0, c0 := packetDrops(b, ctx, nodes), datapathCPU(b, nodes)
		r := iperfRunOn(b, ctx, a, p.to, secs, clientCPUs)
		p.path.cpu += datapathCPU(b, nodes) - c0
		p.path.drops += float64(packetDrops(b, ctx, nodes) - d0)
		p.path.bps = append(p.path.bps, r.End.SumReceived.BitsPerSecond/1e9)
		p.path.retransmits += float64(r.End.SumSent.Retransmits)
		p.path.gb += r.End.SumReceived.BitsPerSecond * float64(secs) / 8e9
	}
}

// report prints the arm's metrics, their names prefixed with prefix.
func (arm *throughputArm) report(b *testing.B, prefix string) {
	runs := float64(len(arm.same.bps))
	b.ReportMetric(median(arm.same.bps), prefix+"same-node-Gbit/s")
	b.ReportMetric(median(arm.cross.bps), prefix+"cross-node-Gbit/s")
	b.ReportMetric(median(arm.cross.bps)/median(arm.same.bps), prefix+"cross/same-x")
	b.ReportMetric(arm.same.retransmits/runs, prefix+"same-node-retransmits/run")
	b.ReportMetric(arm.cross.retransmits/runs, prefix+"cross-node-retransmits/run")
	// Where the retransmits come from on the userspace datapath: frames
	// dropped by ovs-vswitchd's AF_PACKET sockets (their size is the
	// host's net.core.rmem_default; docs/cni.md, Throughput).
	b.ReportMetric(arm.same.drops/runs, prefix+"same-node-afpacket-drops/run")
	b.ReportMetric(arm.cross.drops/runs, prefix+"cross-node-afpacket-drops/run")
	// Where the cross-node path loses on the userspace datapath: the CPU
	// the nodes' ovs-vswitchd spend a GB (two datapaths, encap and decap,
	// against one).
	b.ReportMetric(arm.same.cpu.Seconds()/arm.same.gb, prefix+"same-node-datapath-cpu-s/GB")
	b.ReportMetric(arm.cross.cpu.Seconds()/arm.cross.gb, prefix+"cross-node-datapath-cpu-s/GB")
}

// throughputSeconds is each iperf3 run's length (5 s; THROUGHPUT_SECONDS
// overrides it).
func throughputSeconds() int {
	n := 5
	if v := os.Getenv("THROUGHPUT_SECONDS"); v != "" {
		_, _ = fmt.Sscan(v, &n)
	}
	return n
}

// throughputRounds is how many runs a path BenchmarkThroughput makes.
const throughputRounds = 5

// BenchmarkThroughput: iperf3 TCP from a container to a container on the
// same node (through br-int only) and to one on another node (Geneve over
// the underlay), alternating, throughputRounds runs each in one lab. It
// prints the receiver's Gbit/s (median run), the ratio cross-node /
// same-node, the sender's retransmits, the frames ovs-vswitchd's AF_PACKET
// sockets dropped and its CPU time per GB moved.
//
// It does so in two arms, alternated round by round: the nodes sharing
// every CPU of the machine (the lab as it runs), and each node on CPUs of
// its own, half of them (metrics prefixed host-cpus-): the two nodes of
// the cross-node path then have the CPUs two hosts would, instead of
// splitting the one node's CPUs of the same-node path between two
// datapaths.
//
// THROUGHPUT_UNDERLAY_MTU=N runs it on a 2-node lab of its own whose
// underlay MTU is N (the overlay's is 58 less), e.g. 9000 for a jumbo-frame
// underlay.
func BenchmarkThroughput(b *testing.B) {
	l := throughputLab(b)
	if _, err := exec.LookPath("iperf3"); err != nil {
		needLab(b)
		b.Fatalf("iperf3: %v", err)
	}
	nb := cniNB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := fmt.Sprintf("tput%d", os.Getpid()%10000)
	cniNetwork(b, nb, name, "198.19.171.0/24")
	list := confList(b, name, "1.1.0", nil)
	a := newContainer(b, newRuntime(b, l.Nodes[0]), list)
	same := newContainer(b, newRuntime(b, l.Nodes[0]), list)
	cross := newContainer(b, newRuntime(b, l.Nodes[1]), list)
	for _, c := range []*container{a, same, cross} {
		c.mustAdd(b, ctx)
	}
	servers := map[*container]*os.Process{}
	for _, c := range []*container{same, cross} {
		servers[c] = iperfServer(b, ctx, c)
		if err := a.ping(ctx, c.ip()); err != nil {
			b.Fatalf("ping %s: %v", c.ip(), err)
		}
	}
	secs := throughputSeconds()
	nodes := []*lab.Node{l.Nodes[0], l.Nodes[1]}
	// The shared arm lets every process run on any CPU, so the two nodes'
	// datapaths share the machine's cores; the host arm gives each node
	// (its daemons and its containers' iperf3) its own share of them, as
	// two hosts have (hostCPUs).
	shared, host := &throughputArm{}, &throughputArm{}
	cpus := hostCPUs(b, len(nodes))
	hostAll := map[*container]*unix.CPUSet{a: &cpus[0], same: &cpus[0], cross: &cpus[1]}
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatalf("CPU affinity: %v", err)
	}
	pinServers := func(on map[*container]*unix.CPUSet) {
		for c, p := range servers {
			set := &all
			if on != nil {
				set = on[c]
			}
			pinProcess(b, p.Pid, set)
		}
	}
	defer func() { pinNodes(b, nodes, nil); pinServers(nil) }()
	for n := 0; n < b.N; n++ {
		for i := 0; i < throughputRounds; i++ {
			pinNodes(b, nodes, nil)
			pinServers(nil)
			shared.run(b, ctx, nodes, a, same, cross, secs, nil)
			pinNodes(b, nodes, cpus)
			pinServers(hostAll)
			host.run(b, ctx, nodes, a, same, cross, secs, hostAll[a])
			k := len(host.same.bps) - 1
			b.Logf("round %d: Gbit/s same node / across nodes: shared CPUs %.2f / %.2f, host CPUs %.2f / %.2f",
				k, shared.same.bps[k], shared.cross.bps[k], host.same.bps[k], host.cross.bps[k])
		}
	}
	shared.report(b, "")
	host.report(b, "host-cpus-")
	if v, err := os.ReadFile("/proc/sys/net/core/rmem_default"); err == nil {
		var n float64
		_, _ = fmt.Sscan(string(v), &n)
		b.ReportMetric(n, "rmem_default-bytes")
	}
	b.ReportMetric(0, "ns/op")
}

// throughputLab is the shared lab, or with THROUGHPUT_UNDERLAY_MTU a 2-node
// lab with that underlay MTU, brought down at the end.
func throughputLab(b *testing.B) *lab.Lab {
	v := os.Getenv("THROUGHPUT_UNDERLAY_MTU")
	if v == "" {
		return sharedLab(b)
	}
	needLab(b)
	mtu, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("THROUGHPUT_UNDERLAY_MTU %q: want a number, 1280 to 9000", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("tp"), UnderlayMTU: mtu, Gateways: []string{"none"}})
	if err != nil {
		b.Fatalf("lab up with underlay MTU %d: %v", mtu, err)
	}
	b.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			b.Errorf("lab down: %v", err)
		}
	})
	return l
}
