package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// churnCount is how many containers BenchmarkCNIChurn ADDs and DELs: 1,000
// unless CNI_CHURN_COUNT says otherwise.
func churnCount() int {
	n := 1000
	if v := os.Getenv("CNI_CHURN_COUNT"); v != "" {
		_, _ = fmt.Sscan(v, &n)
	}
	return n
}

// BenchmarkCNIChurn: churnCount() containers ADDed over the 3 nodes of a
// fresh lab, 8 ADDs in flight at any time and nothing waiting for
// ovn-northd to settle in between; then all DELed the same way. It prints
// each phase's wall time and p50/p95/p99, the failures, ovn-northd's CPU
// time per ADD and per DEL, and the nodes' ovn-controllers' (summed) with
// how many times they recomputed all their logical flows (OVN 23.03 does
// so on every change of the SB DNS table: each ADD and DEL changes a
// name). With
// CNI_CHURN_SERVED set, every node runs its CNI server (ovlmgr-cni serve)
// and the plugins hand their ADDs and DELs to it (metric served = 1); with
// CNI_CHURN_NAMES=off the network has container names off (metric
// container-names = 0).
func BenchmarkCNIChurn(b *testing.B) {
	needLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 3, Name: uniqueName("ch")})
	if err != nil {
		b.Fatalf("lab up: %v", err)
	}
	b.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			b.Errorf("lab down: %v", err)
		}
	})
	nb := cniNB(b, l)
	net := fmt.Sprintf("churn%d", os.Getpid()%10000)
	// CNI_CHURN_NAMES=off: a network with container names off (no DNS
	// change per ADD or DEL, so no full logical-flow recompute for it).
	names := os.Getenv("CNI_CHURN_NAMES")
	specNetwork(b, nb, network.Spec{Name: net, Subnet: "198.19.128.0/20", ContainerNames: names})
	n, conc := churnCount(), 8
	var rts []*runtime
	served := os.Getenv("CNI_CHURN_SERVED") != ""
	var servers []*cniServer
	for _, node := range l.Nodes {
		if served {
			servers = append(servers, startCNIServer(b, node))
		}
		rts = append(rts, newRuntime(b, node))
	}
	list := confList(b, net, "1.1.0", nil)
	for i := 0; i < b.N; i++ {
		ctrs := make([]*container, n)
		for j := range ctrs {
			ctrs[j] = newContainer(b, rts[j%len(rts)], list)
		}
		if err := settleHV(ctx, nb); err != nil {
			b.Fatal(err)
		}
		phase := func(name string, op func(*container) error) {
			var (
				mu    sync.Mutex
				ds    []time.Duration
				fails int
				first error
				wg    sync.WaitGroup
			)
			work := make(chan *container)
			cpu0, t0 := northdCPU(b, l), time.Now()
			ctl0, rc0 := controllersCPU(b, l), lflowRecomputes(b, l)
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := range work {
						s := time.Now()
						err := op(c)
						d := time.Since(s)
						mu.Lock()
						if err != nil {
							fails++
							if first == nil {
								first = fmt.Errorf("%s %s: %w", name, c.id, err)
							}
						} else {
							ds = append(ds, d)
						}
						mu.Unlock()
					}
				}()
			}
			for _, c := range ctrs {
				work <- c
			}
			close(work)
			wg.Wait()
			total, cpu := time.Since(t0), northdCPU(b, l)-cpu0
			ctl, rc := controllersCPU(b, l)-ctl0, lflowRecomputes(b, l)-rc0
			b.ReportMetric(total.Seconds(), name+"-total-s")
			reportPct(b, name, ds)
			b.ReportMetric(float64(fails), name+"-failures")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "northd-cpu-per-"+name+"-ms")
			b.ReportMetric(float64(ctl.Microseconds())/1000/float64(n), "controllers-cpu-per-"+name+"-ms")
			b.ReportMetric(float64(rc)/float64(n), "lflow-recomputes-per-"+name)
			if first != nil {
				b.Errorf("%d of %d %ss failed; first: %v", fails, n, name, first)
				for i, s := range servers {
					b.Logf("CNI server of %s, last lines:\n%s", l.Nodes[i].Name, lastLines(s.logText(), 40))
				}
			}
		}
		phase("add", func(c *container) error { return c.add(ctx) })
		phase("del", func(c *container) error { return c.del(ctx) })
	}
	b.ReportMetric(float64(n), "containers")
	if served {
		b.ReportMetric(1, "served")
	} else {
		b.ReportMetric(0, "served")
	}
	if names == "off" {
		b.ReportMetric(0, "container-names")
	} else {
		b.ReportMetric(1, "container-names")
	}
	b.ReportMetric(0, "ns/op")
}

// controllersCPU is the CPU time the lab's nodes' ovn-controllers have
// used so far, summed (procCPU).
func controllersCPU(b *testing.B, l *lab.Lab) time.Duration {
	b.Helper()
	var sum time.Duration
	for _, n := range l.Nodes {
		sum += pidfileCPU(b, filepath.Join(n.Dir, "ovn-controller.pid"))
	}
	return sum
}

// lflowRecomputes is how many times the lab's nodes' ovn-controllers have
// recomputed all their logical flows so far, summed: the recompute count
// of the logical_flow_output node in `inc-engine/show-stats`.
func lflowRecomputes(b *testing.B, l *lab.Lab) int {
	b.Helper()
	sum := 0
	for _, n := range l.Nodes {
		ctl := filepath.Join(n.Dir, fmt.Sprintf("ovn-controller.%d.ctl", readPID(b, filepath.Join(n.Dir, "ovn-controller.pid"))))
		out, err := exec.Command("ovn-appctl", "-t", ctl, "inc-engine/show-stats").CombinedOutput()
		if err != nil {
			b.Fatalf("ovn-controller of %s: inc-engine/show-stats: %v: %s", n.Name, err, out)
		}
		c, ok := engineRecomputes(string(out), "logical_flow_output")
		if !ok {
			b.Fatalf("ovn-controller of %s: no logical_flow_output in inc-engine/show-stats:\n%s", n.Name, out)
		}
		sum += c
	}
	return sum
}

// engineRecomputes reads node's recompute count from the output of
// `inc-engine/show-stats` ("Node: NAME" followed by "- recompute: N").
func engineRecomputes(stats, node string) (int, bool) {
	lines := strings.Split(stats, "\n")
	for i, line := range lines {
		if strings.TrimSpace(line) != "Node: "+node {
			continue
		}
		for _, next := range lines[i+1:] {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(next), "-"))
			if len(f) == 2 && f[0] == "recompute:" {
				n, err := strconv.Atoi(f[1])
				return n, err == nil
			}
			if strings.HasPrefix(strings.TrimSpace(next), "Node:") {
				break
			}
		}
	}
	return 0, false
}
