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

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
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

// BenchmarkCNIAddDel: ADD and DEL latency (invocation to return, ovn-installed
// included) over sequential and 8-concurrent runs on the shared lab, next
// to the floor (a ready port bound by hand, testdata/floorbind) and the
// bridge + host-local reference, both through the same runtime; plus the
// peak RSS of one plugin invocation; then the same runs served by the
// node's CNI server.
func BenchmarkCNIAddDel(b *testing.B) {
	l := sharedLab(b)
	nb := cniNB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	name := fmt.Sprintf("cbench%d", os.Getpid()%10000)
	cniNetwork(b, nb, name, "198.19.220.0/22")
	node := l.Nodes[0]
	n := benchSamples()
	floor := newFloorArm(b, l, node, nb, name, "ready", 22, "198.19.223")
	bridge := newBridgeArm(b, node, "refbr0", "198.19.236.0/24")
	for i := 0; i < b.N; i++ {
		seqAdds, dels := addDelLoop(b, ctx, node, name, n, 1)
		reportPct(b, "add-seq", seqAdds)
		reportPct(b, "del-seq", dels)
		adds, dels := addDelLoop(b, ctx, node, name, n, 8)
		reportPct(b, "add-8conc", adds)
		reportPct(b, "del-8conc", dels)
		var fl, br []time.Duration
		for k := 0; k < min(n, 50); k++ {
			fl = append(fl, floor.sample(b, ctx))
			br = append(br, bridge.sample(b, ctx))
		}
		reportPct(b, "floor-ready", fl)
		reportPct(b, "bridge", br)
		b.ReportMetric(pct(seqAdds, 50)/pct(fl, 50), "add-seq/floor-p50-x")
		b.ReportMetric(pct(seqAdds, 50)/pct(br, 50), "add-seq/bridge-p50-x")
	}
	b.ReportMetric(peakRSS(b, ctx, node, name), "add-peak-RSS-MiB")
	// The same loops with the node's CNI server (ovlmgr-cni serve).
	srv := startCNIServer(b, node)
	for i := 0; i < b.N; i++ {
		adds, dels := addDelLoop(b, ctx, node, name, n, 1)
		reportPct(b, "served-add-seq", adds)
		reportPct(b, "served-del-seq", dels)
		adds, dels = addDelLoop(b, ctx, node, name, n, 8)
		reportPct(b, "served-add-8conc", adds)
		reportPct(b, "served-del-8conc", dels)
	}
	srv.stop(b, syscall.SIGTERM)
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

// BenchmarkCNIAddScale: ADD latency with 100 and with 3,000 ports already
// in NB, and against the floor and the bridge + host-local reference in
// the same run. The two sides are two 1-node labs, filled and settled
// (ovn-northd and the chassis caught up: nb_cfg = sb_cfg = hv_cfg) before
// any sample. Samples alternate between the sides and the arms (ovlmgr,
// floor ready, floor dynamic, bridge), and the lab settles again before
// every sample, so each ADD starts from a quiet northd (the no-settle
// case is BenchmarkCNIChurn); before an ovlmgr sample that includes the
// pool of ready ports being back to its size (the refill its previous ADD
// started has finished). It prints how many ovlmgr ADDs claimed a pool port.
func BenchmarkCNIAddScale(b *testing.B) {
	needLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	type side struct {
		ports                 int
		l                     *lab.Lab
		nb                    client.Client
		log                   string
		ovl, served           *ovlArm
		ready, dynamic        *floorArm
		bridge                *bridgeArm
		adds, fr, fd, br, cpu []time.Duration
		srv                   []time.Duration
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
		net := fmt.Sprintf("cscale%d", os.Getpid()%10000)
		filler := fmt.Sprintf("cfill%d", os.Getpid()%10000)
		s.nb = cniNB(b, l)
		cniNetwork(b, s.nb, net, "198.19.224.0/22")
		cniNetwork(b, s.nb, filler, "198.18.16.0/20")
		fillPorts(b, ctx, l, filler, 0, s.ports)
		if err := settleHV(ctx, s.nb); err != nil {
			b.Fatalf("after filling %d ports: %v", s.ports, err)
		}
		node := l.Nodes[0]
		// The plain arm reaches the node's Open_vSwitch db through a
		// directory of its own (a symlink to the db socket), where no CNI
		// server socket is: it runs every ADD in the plugin. The served arm
		// finds the node's server (ovlmgr-cni serve) beside the db.
		s.ovl = newOvlArm(b, node, net, map[string]interface{}{"logFile": s.log, "logLevel": "debug", "ovs": unservedOVS(b, node)})
		srv := startCNIServer(b, node)
		s.served = newOvlArm(b, node, net, map[string]interface{}{"logFile": s.log + ".served", "logLevel": "debug"})
		s.ready = newFloorArm(b, l, node, s.nb, net, "ready", 22, "198.19.227")
		s.dynamic = newFloorArm(b, l, node, s.nb, net, "dynamic", 22, "")
		s.bridge = newBridgeArm(b, node, "refbr0", "198.19.236.0/24")
		// Where a served ADD's CPU goes, against the bridge plugin's.
		s.served.cpu = newCPUMeter(b, l, srv.cmd.Process.Pid)
		s.bridge.cpu = newCPUMeter(b, l, srv.cmd.Process.Pid)
	}
	samples := min(benchSamples(), 40)
	settle := func(s *side) {
		if err := settleHV(ctx, s.nb); err != nil {
			b.Fatal(err)
		}
	}
	settlePool := func(s *side) {
		if ovnport.DefaultPoolSize > 0 {
			waitPool(b, ctx, s.nb, s.ovl.net, s.l.Nodes[0].SystemID, ovnport.DefaultPoolSize)
		}
		settle(s)
	}
	for _, s := range sides {
		// The first ADD on a node starts its pool, the first served one
		// connects the server (not counted).
		s.ovl.sample(b, ctx)
		settlePool(s)
		cpu := s.served.cpu
		s.served.cpu = nil
		s.served.sample(b, ctx)
		s.served.cpu = cpu
	}
	for n := 0; n < b.N; n++ {
		for k := 0; k < samples; k++ {
			for _, s := range sides {
				settlePool(s)
				c0 := northdCPU(b, s.l)
				s.adds = append(s.adds, s.ovl.sample(b, ctx))
				s.cpu = append(s.cpu, northdCPU(b, s.l)-c0)
				settlePool(s)
				s.srv = append(s.srv, s.served.sample(b, ctx))
				settle(s)
				s.fr = append(s.fr, s.ready.sample(b, ctx))
				settle(s)
				s.fd = append(s.fd, s.dynamic.sample(b, ctx))
				settle(s)
				s.br = append(s.br, s.bridge.sample(b, ctx))
				settle(s)
			}
		}
	}
	small, large := sides[0], sides[1]
	for _, s := range sides {
		p := fmt.Sprintf("-%dports", s.ports)
		reportPct(b, "add"+p, s.adds)
		reportPct(b, "floor-ready"+p, s.fr)
		reportPct(b, "floor-dynamic"+p, s.fd)
		reportPct(b, "bridge"+p, s.br)
		b.ReportMetric(pct(s.adds, 50)/pct(s.br, 50), "add/bridge"+p+"-x")
		b.ReportMetric(pct(s.adds, 50)/pct(s.fr, 50), "add/floor-ready"+p+"-x")
		b.ReportMetric(pct(s.adds, 50)/pct(s.fd, 50), "add/floor-dynamic"+p+"-x")
		// What a ready OVN port costs against a Linux bridge, with no
		// plugin logic at all: where a goal relative to the bridge
		// plugin meets what OVN itself takes on this machine.
		b.ReportMetric(pct(s.fr, 50)/pct(s.br, 50), "floor-ready/bridge"+p+"-x")
		reportPct(b, "served"+p, s.srv)
		// CPU per ADD of every process (the runtime's re-exec and the
		// plugin process together): the lab's 2 cores run them all.
		s.served.cpu.report(b, "served-cpu"+p+"-")
		s.bridge.cpu.report(b, "bridge-cpu"+p+"-")
		b.ReportMetric(pct(s.srv, 50)/pct(s.br, 50), "served/bridge"+p+"-x")
		b.ReportMetric(pct(s.srv, 50)/pct(s.fr, 50), "served/floor-ready"+p+"-x")
		b.ReportMetric(float64(countIn(b, s.log+".served", "claimed pool port")), "served-pool-claims"+p)
		var cpu time.Duration
		for _, c := range s.cpu {
			cpu += c
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(len(s.cpu)), "northd-cpu-per-ADD+DEL"+p+"-ms")
		b.ReportMetric(float64(countIn(b, s.log, "claimed pool port")), "pool-claims"+p)
		b.ReportMetric(float64(len(s.adds)), "adds"+p)
	}
	b.ReportMetric(pct(large.adds, 50)/pct(small.adds, 50), "add-3000/100-x")
	b.ReportMetric(pct(large.srv, 50)/pct(small.srv, 50), "served-3000/100-x")
	b.ReportMetric(pct(large.fr, 50)/pct(small.fr, 50), "floor-ready-3000/100-x")
	b.ReportMetric(pct(large.fd, 50)/pct(small.fd, 50), "floor-dynamic-3000/100-x")
	// The plugin's own work: everything but the wait for ovn-northd's
	// address (from its debug timings; absent when ADD does not wait).
	if own := ownTimes(b, large.log); len(own) > 0 {
		if ownS := ownTimes(b, small.log); len(ownS) > 0 {
			b.ReportMetric(pct(ownS, 50), "own-p50-100ports-ms")
			b.ReportMetric(pct(own, 50), "own-p50-3000ports-ms")
		}
	}
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
