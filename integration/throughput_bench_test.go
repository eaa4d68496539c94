package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

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

// iperfServer starts `iperf3 -s` in c's namespace until the benchmark ends.
func iperfServer(b *testing.B, ctx context.Context, c *container) {
	cmd := nsexec.Command(ctx, c.ns.Path(), nil, "iperf3", "-s", "-B", c.ip().String())
	if err := cmd.Start(); err != nil {
		b.Fatalf("iperf3 -s: %v", err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// iperfRun runs a TCP client in from's namespace against to for secs seconds.
func iperfRun(b *testing.B, ctx context.Context, from, to *container, secs int) iperfResult {
	var r iperfResult
	for try := 0; ; try++ {
		out, err := nsexec.Command(ctx, from.ns.Path(), nil, "iperf3", "-c", to.ip().String(), "-t", fmt.Sprint(secs), "-J").Output()
		r = iperfResult{}
		jerr := json.Unmarshal(out, &r)
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
	for _, c := range []*container{same, cross} {
		iperfServer(b, ctx, c)
		if err := a.ping(ctx, c.ip()); err != nil {
			b.Fatalf("ping %s: %v", c.ip(), err)
		}
	}
	secs := throughputSeconds()
	var sameBps, crossBps []float64
	var sameRetr, crossRetr, sameDrops, crossDrops float64
	var sameGB, crossGB float64
	var sameCPU, crossCPU time.Duration
	nodes := []*lab.Node{l.Nodes[0], l.Nodes[1]}
	run := func(to *container, bps *[]float64, retr, drops, gb *float64, cpu *time.Duration) {
		d0, c0 := packetDrops(b, ctx, nodes), datapathCPU(b, nodes)
		r := iperfRun(b, ctx, a, to, secs)
		*cpu += datapathCPU(b, nodes) - c0
		*drops += float64(packetDrops(b, ctx, nodes) - d0)
		*bps = append(*bps, r.End.SumReceived.BitsPerSecond/1e9)
		*retr += float64(r.End.SumSent.Retransmits)
		*gb += r.End.SumReceived.BitsPerSecond * float64(secs) / 8e9
	}
	for n := 0; n < b.N; n++ {
		for i := 0; i < throughputRounds; i++ {
			run(same, &sameBps, &sameRetr, &sameDrops, &sameGB, &sameCPU)
			run(cross, &crossBps, &crossRetr, &crossDrops, &crossGB, &crossCPU)
		}
	}
	runs := float64(len(sameBps))
	b.ReportMetric(median(sameBps), "same-node-Gbit/s")
	b.ReportMetric(median(crossBps), "cross-node-Gbit/s")
	b.ReportMetric(median(crossBps)/median(sameBps), "cross/same-x")
	b.ReportMetric(sameRetr/runs, "same-node-retransmits/run")
	b.ReportMetric(crossRetr/runs, "cross-node-retransmits/run")
	// Where the retransmits come from on the userspace datapath: frames
	// dropped by ovs-vswitchd's AF_PACKET sockets (their size is the
	// host's net.core.rmem_default; docs/cni.md, Throughput).
	b.ReportMetric(sameDrops/runs, "same-node-afpacket-drops/run")
	b.ReportMetric(crossDrops/runs, "cross-node-afpacket-drops/run")
	// Where the cross-node path loses on the userspace datapath: the CPU
	// the nodes' ovs-vswitchd spend a GB (two datapaths, encap and decap,
	// against one), on cores that also run both iperf3 ends.
	b.ReportMetric(sameCPU.Seconds()/sameGB, "same-node-datapath-cpu-s/GB")
	b.ReportMetric(crossCPU.Seconds()/crossGB, "cross-node-datapath-cpu-s/GB")
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
