package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// pct returns the p-th percentile (0-100) of ds in milliseconds.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p / 100 * float64(len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}

func reportPct(b *testing.B, prefix string, ds []time.Duration) {
	b.ReportMetric(pct(ds, 50), prefix+"-p50-ms")
	b.ReportMetric(pct(ds, 95), prefix+"-p95-ms")
	b.ReportMetric(pct(ds, 99), prefix+"-p99-ms")
}

// benchSamples is how many ADD/DEL pairs each measurement takes (the
// issue's 200; CNI_BENCH_SAMPLES overrides it for quick runs).
func benchSamples() int {
	n := 200
	if v := os.Getenv("CNI_BENCH_SAMPLES"); v != "" {
		_, _ = fmt.Sscan(v, &n)
	}
	return n
}

// benchConfExtra adds logFile/logLevel debug to benchmark configs when
// CNI_BENCH_LOG names a file (for finding where ADD time goes).
func benchConfExtra() map[string]interface{} {
	if f := os.Getenv("CNI_BENCH_LOG"); f != "" {
		return map[string]interface{}{"logFile": f, "logLevel": "debug"}
	}
	return nil
}

// addDelLoop runs n ADD+DEL pairs with conc workers on node and returns the latencies.
func addDelLoop(b *testing.B, ctx context.Context, node *lab.Node, net string, n, conc int) (adds, dels []time.Duration) {
	return addDelLoopConf(b, ctx, node, net, n, conc, benchConfExtra())
}

func addDelLoopConf(b *testing.B, ctx context.Context, node *lab.Node, net string, n, conc int, extra map[string]interface{}) (adds, dels []time.Duration) {
	rt := newRuntime(b, node)
	list := confList(b, net, "1.1.0", extra)
	ctrs := make([]*container, n)
	for i := range ctrs {
		ctrs[i] = newContainer(b, rt, list)
	}
	var mu sync.Mutex
	work := make(chan *container)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				t0 := time.Now()
				if err := c.add(ctx); err != nil {
					b.Errorf("ADD: %v", err)
					continue
				}
				t1 := time.Now()
				if err := c.del(ctx); err != nil {
					b.Errorf("DEL: %v", err)
				}
				t2 := time.Now()
				mu.Lock()
				adds, dels = append(adds, t1.Sub(t0)), append(dels, t2.Sub(t1))
				mu.Unlock()
			}
		}()
	}
	for _, c := range ctrs {
		work <- c
	}
	close(work)
	wg.Wait()
	return adds, dels
}

// floorBuild is the floor program (testdata/floorbind), built once.
var floorBuild struct {
	once sync.Once
	path string
	err  error
}

func floorBin(b *testing.B) string {
	dir := cniPluginDir(b)
	floorBuild.once.Do(func() {
		floorBuild.path = filepath.Join(dir, "floorbind")
		if out, err := exec.Command("go", "build", "-o", floorBuild.path, "./testdata/floorbind").CombinedOutput(); err != nil {
			floorBuild.err = fmt.Errorf("go build ./testdata/floorbind: %v: %s", err, out)
		}
	})
	if floorBuild.err != nil {
		b.Fatal(floorBuild.err)
	}
	return floorBuild.path
}

// floorLoop binds n ports by hand, numbered from first, and returns how
// long each took. A sample is what an ADD is: one process started in the
// node's namespace the way the runtime starts the plugin (the same
// namespace re-exec), here testdata/floorbind, which does the same steps
// with the same address mode (a dynamic address from ovn-northd, then
// pinned) and nothing else: NB port, wait for the address, veth into the
// container's namespace with the address, OVS port, wait for ovn-installed.
// The container namespace is made before and everything is removed after
// each sample, untimed.
func floorLoop(b *testing.B, ctx context.Context, l *lab.Lab, node *lab.Node, net string, first, n int) []time.Duration {
	bin := floorBin(b)
	run := func(name string, args ...string) {
		out, err := node.Command(ctx, name, args...).CombinedOutput()
		if err != nil {
			b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
	}
	var ds []time.Duration
	for i := first; i < first+n; i++ {
		cns, err := testutils.NewNS()
		if err != nil {
			b.Fatal(err)
		}
		host := fmt.Sprintf("flr%d", i)
		lsp := fmt.Sprintf("floor-%d-%d", os.Getpid(), i)
		mac := fmt.Sprintf("0a:58:c6:13:%02x:%02x", (i/250)%250, i%250)
		cmd := nsexec.Command(ctx, node.NetNSPath, node.Env, bin, l.NB, node.OVS, net, lsp, mac, host, cns.Path())
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(t0)
		if err != nil {
			b.Fatalf("floor sample %d: %v: %s", i, err, out)
		}
		ds = append(ds, d)
		run("ovs-vsctl", "del-port", "br-int", host)
		run("ovn-nbctl", "--db="+l.NB, "lsp-del", lsp)
		_ = node.Do(func() error {
			if lk, err := netlink.LinkByName(host); err == nil {
				return netlink.LinkDel(lk)
			}
			return nil
		})
		_ = cns.Close()
		_ = testutils.UnmountNS(cns)
	}
	return ds
}

// BenchmarkCNIAddDel: ADD and DEL latency (invocation to return, ovn-installed
// included) over sequential and 8-concurrent runs, next to the floor of
// binding the same port by hand with ovn-nbctl/ovs-vsctl; plus the peak RSS
// of one plugin invocation.
func BenchmarkCNIAddDel(b *testing.B) {
	l := sharedLab(b)
	nb := cniNB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cbench%d", os.Getpid()%10000)
	cniNetwork(b, nb, name, "198.19.220.0/22")
	node := l.Nodes[0]
	n := benchSamples()
	for i := 0; i < b.N; i++ {
		seqAdds, dels := addDelLoop(b, ctx, node, name, n, 1)
		reportPct(b, "add-seq", seqAdds)
		reportPct(b, "del-seq", dels)
		adds, dels := addDelLoop(b, ctx, node, name, n, 8)
		reportPct(b, "add-8conc", adds)
		reportPct(b, "del-8conc", dels)
		floor := floorLoop(b, ctx, l, node, name, i*100, min(n, 100))
		reportPct(b, "floor", floor)
		b.ReportMetric(pct(seqAdds, 50)/pct(floor, 50), "add-seq/floor-p50-x")
	}
	b.ReportMetric(peakRSS(b, ctx, node, name), "add-peak-RSS-MiB")
}

// peakRSS runs one ADD (then DEL) of the plugin binary directly and returns
// its peak resident set size.
func peakRSS(b *testing.B, ctx context.Context, node *lab.Node, net string) float64 {
	c := newContainer(b, newRuntime(b, node), confList(b, net, "1.1.0", nil))
	cmd := nsexec.Command(ctx, node.NetNSPath, append(append([]string{}, node.Env...),
		"CNI_COMMAND=ADD", "CNI_CONTAINERID="+c.id, "CNI_NETNS="+c.ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH="+cniPluginDir(b)),
		filepath.Join(cniPluginDir(b), "ovlmgr-cni"))
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"type":"ovlmgr-cni"}`, net))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ADD: %v: %s", err, out)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := c.del(ctx); err != nil {
		b.Errorf("DEL: %v", err)
	}
	if ru == nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// fillPorts inserts owned container-like ports number from..to-1 (static
// addresses) into network net, 500 per transaction; the network's removal
// at test end takes them.
func fillPorts(b *testing.B, ctx context.Context, l *lab.Lab, net string, from, n int) {
	nb := cniNB(b, l)
	ls, err := network.Get(ctx, nb, net)
	if err != nil {
		b.Fatal(err)
	}
	for start := from; start < n; start += 500 {
		var ops []ovsdb.Operation
		var uuids []string
		for i := start; i < min(n, start+500); i++ {
			name := fmt.Sprintf("fill-%d-%d", os.Getpid(), i)
			a := fmt.Sprintf("0a:58:c6:12:%02x:%02x 198.18.%d.%d", i/250, i%250, 16+i/250, 1+i%250)
			p := &nbdb.LogicalSwitchPort{UUID: fmt.Sprintf("fill%d", i), Name: name, Addresses: []string{a}, PortSecurity: []string{a},
				ExternalIDs: owner.IDs(owner.KindPort, name, map[string]string{owner.KeyNetwork: net, owner.KeyNode: "nowhere",
					owner.KeyContainer: name, owner.KeyIfName: "eth0"})}
			ins, err := nb.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, ins...)
			uuids = append(uuids, p.UUID)
		}
		sw := &nbdb.LogicalSwitch{UUID: ls.UUID}
		mut, err := nb.Where(sw).Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationInsert, Value: uuids})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dbconn.Transact(ctx, nb, append(ops, mut...)...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCNIAddScale: ADD p50 with 100 and with 3,000 ports already in NB
// (the per-container path reads no whole table, so it should barely move).
// The two sides are two 1-node labs, filled and settled (ovn-northd and
// the chassis caught up: nb_cfg = sb_cfg = hv_cfg) before any sample; the
// samples alternate between them, ADD and floor alike, so load changes hit
// both sides.
func BenchmarkCNIAddScale(b *testing.B) {
	needLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	type side struct {
		ports       int
		l           *lab.Lab
		net, log    string
		adds, floor []time.Duration
	}
	logs := b.TempDir()
	if d := os.Getenv("CNI_BENCH_LOGDIR"); d != "" {
		logs = d
	}
	sides := []*side{{ports: 100}, {ports: 3000}}
	for i, s := range sides {
		l, err := lab.Up(ctx, lab.Options{Nodes: 1, Name: uniqueName(fmt.Sprintf("sc%d", i))})
		if err != nil {
			b.Fatalf("lab up: %v", err)
		}
		b.Cleanup(func() {
			if err := l.Down(context.Background()); err != nil {
				b.Errorf("lab down: %v", err)
			}
		})
		s.l, s.log = l, filepath.Join(logs, fmt.Sprintf("%d.log", s.ports))
		s.net = fmt.Sprintf("cscale%d", os.Getpid()%10000)
		filler := fmt.Sprintf("cfill%d", os.Getpid()%10000)
		nb := cniNB(b, l)
		cniNetwork(b, nb, s.net, "198.19.224.0/24")
		cniNetwork(b, nb, filler, "198.18.16.0/20")
		fillPorts(b, ctx, l, filler, 0, s.ports)
		if err := settleHV(ctx, nb); err != nil {
			b.Fatalf("after filling %d ports: %v", s.ports, err)
		}
	}
	samples, floorSamples := min(benchSamples(), 40), 30
	for n := 0; n < b.N; n++ {
		for k := 0; k < max(samples, floorSamples); k++ {
			for _, s := range sides {
				if k < samples {
					adds, _ := addDelLoopConf(b, ctx, s.l.Nodes[0], s.net, 1, 1, map[string]interface{}{"logFile": s.log, "logLevel": "debug"})
					s.adds = append(s.adds, adds...)
				}
				if k < floorSamples {
					s.floor = append(s.floor, floorLoop(b, ctx, s.l, s.l.Nodes[0], s.net, n*floorSamples+k, 1)...)
				}
			}
		}
	}
	small, large := sides[0], sides[1]
	// The plugin's own work: everything but the wait for ovn-northd's
	// address (from its debug timings).
	ownSmall, ownLarge := ownTimes(b, small.log), ownTimes(b, large.log)
	b.ReportMetric(pct(ownSmall, 50), "own-p50-100ports-ms")
	b.ReportMetric(pct(ownLarge, 50), "own-p50-3000ports-ms")
	b.ReportMetric(pct(ownLarge, 50)/pct(ownSmall, 50), "own-3000/100-x")
	b.ReportMetric(pct(small.adds, 50), "add-p50-100ports-ms")
	b.ReportMetric(pct(large.adds, 50), "add-p50-3000ports-ms")
	b.ReportMetric(pct(large.adds, 50)/pct(small.adds, 50), "3000/100-x")
	// The floor pays the same ovn-northd recompute per new port.
	b.ReportMetric(pct(small.floor, 50), "floor-p50-100ports-ms")
	b.ReportMetric(pct(large.floor, 50), "floor-p50-3000ports-ms")
	b.ReportMetric(pct(small.adds, 50)/pct(small.floor, 50), "add/floor-100ports-x")
	b.ReportMetric(pct(large.adds, 50)/pct(large.floor, 50), "add/floor-3000ports-x")
	b.ReportMetric(0, "ns/op")
}

// ownTimes parses ADD debug logs: per ADD, the time before the NB port
// request plus the time after northd's address arrived.
func ownTimes(b *testing.B, path string) []time.Duration {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	type steps struct{ read, port, done time.Duration }
	per := map[string]*steps{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, " ADD ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		id := f[2]
		st := per[id]
		if st == nil {
			st = &steps{read: -1, port: -1, done: -1}
			per[id] = st
		}
		d := time.Duration(-1)
		if i := strings.LastIndex(line, " "); i > 0 {
			if v, err := time.ParseDuration(strings.TrimSpace(line[i+1:])); err == nil {
				d = v
			}
		}
		switch {
		case strings.Contains(line, "network read after"):
			st.read = d
		case strings.Contains(line, "NB port "):
			st.port = d
		case strings.Contains(line, "ovn-installed after"):
			st.done = d
		}
	}
	var out []time.Duration
	for _, st := range per {
		if st.read >= 0 && st.port >= 0 && st.done >= 0 {
			out = append(out, st.read+st.done-st.port)
		}
	}
	return out
}
