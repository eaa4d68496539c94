package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
)

func percentile(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := len(s) * p / 100
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if len(b) > 14 {
		b = b[:14]
	}
	return string(b)
}

// BenchmarkHALeaderKill: on a clustered lab (3-member NB and SB), the NB
// leader is killed -9 10 times (restarted after each); per kill the time
// until the next NB write succeeds (a router create through a client given
// all three members). Prints p50/p95/max.
func BenchmarkHALeaderKill(b *testing.B) {
	l := haLab(b, "hbk")
	nb := cniNB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var took []time.Duration
	for i := 0; i < 10; i++ {
		k, err := killLeader(ctx, l, nb, "nb", 0, fmt.Sprintf("hbprobe%d", i))
		if err != nil {
			b.Fatalf("kill %d: %v", i, err)
		}
		took = append(took, k.toWrite)
		b.Logf("kill %d: %s, next write after %d ms", i+1, k.victim, k.toWrite.Milliseconds())
	}
	b.Logf("NB leader kill -> next successful write over %d kills: p50 %d ms, p95 %d ms, max %d ms (load %s)", len(took),
		percentile(took, 50).Milliseconds(), percentile(took, 95).Milliseconds(), percentile(took, 100).Milliseconds(), loadavg())
	b.ReportMetric(percentile(took, 50).Seconds()*1000, "p50-ms")
	b.ReportMetric(percentile(took, 95).Seconds()*1000, "p95-ms")
	b.ReportMetric(0, "ns/op")
}

// addLatencies runs n CNI ADDs (each followed by its DEL) one after the
// other on node n1 of l and returns the ADD times.
func addLatencies(b *testing.B, l *lab.Lab, netName, subnet string, n int) []time.Duration {
	nb := cniNB(b, l)
	cniNetwork(b, nb, netName, subnet)
	n1, _ := l.Node("n1")
	rt := newRuntime(b, n1)
	list := confList(b, netName, "1.0.0", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var took []time.Duration
	for i := 0; i < n+2; i++ {
		c := newContainer(b, rt, list)
		t0 := time.Now()
		if err := c.add(ctx); err != nil {
			b.Fatalf("ADD: %v", err)
		}
		if i >= 2 { // the first two warm caches up
			took = append(took, time.Since(t0))
		}
		if err := c.del(ctx); err != nil {
			b.Fatalf("DEL: %v", err)
		}
	}
	return took
}

// BenchmarkHACNIAdd: CNI ADD p50 on a lab with 3-member NB/SB clusters
// against a lab with single servers, in the same run (ratio).
func BenchmarkHACNIAdd(b *testing.B) {
	const n = 30
	single := sharedLab(b)
	s := addLatencies(b, single, "hbsingle", "198.19.252.0/24", n)
	cl := haLab(b, "hba")
	c := addLatencies(b, cl, "hbclust", "198.19.253.0/24", n)
	ps, pc := percentile(s, 50), percentile(c, 50)
	b.Logf("CNI ADD p50 over %d: single NB/SB %d ms, 3-member clusters %d ms: ratio %.2f (p95 %d vs %d ms; load %s)", n,
		ps.Milliseconds(), pc.Milliseconds(), float64(pc)/float64(ps), percentile(s, 95).Milliseconds(), percentile(c, 95).Milliseconds(), loadavg())
	b.ReportMetric(ps.Seconds()*1000, "single-p50-ms")
	b.ReportMetric(pc.Seconds()*1000, "cluster-p50-ms")
	b.ReportMetric(float64(pc)/float64(ps), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHAChaos is the long chaos run: 1,000 mixed actions by 4
// clients, the NB leader killed -9 5 times, the SB leader and the active
// ovn-northd once (see TestHAChaos for what is checked).
func BenchmarkHAChaos(b *testing.B) {
	r := runChaos(b, 1000, 5)
	r.print(b)
	for _, p := range r.problems {
		b.Error(p)
	}
	b.ReportMetric(float64(r.ok), "ok")
	b.ReportMetric(float64(r.failed), "failed")
	b.ReportMetric(r.longestGap.Seconds()*1000, "ping-gap-ms")
	b.ReportMetric(0, "ns/op")
}
