package integration

import (
	"context"
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
