package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
)

// BenchmarkLabUp measures `lab up` until every chassis is registered and
// every tunnel egresses br-phy (lab.Up returns exactly then), for 3 and 5
// nodes, and `lab down`. It takes a few samples itself (b.N may be 1) and
// reports the median.
func BenchmarkLabUp(b *testing.B) {
	needLab(b)
	const samples = 3
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var ups, downs []float64
			for i := 0; i < samples*b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				start := time.Now()
				l, err := lab.Up(ctx, lab.Options{Nodes: n, Name: uniqueName("b")})
				if err != nil {
					cancel()
					b.Fatalf("lab up: %v", err)
				}
				ups = append(ups, time.Since(start).Seconds())
				start = time.Now()
				err = l.Down(ctx)
				cancel()
				if err != nil {
					b.Fatalf("lab down: %v", err)
				}
				downs = append(downs, time.Since(start).Seconds())
			}
			b.ReportMetric(median(ups), "up-to-ready-s")
			b.ReportMetric(maxOf(ups), "up-to-ready-max-s")
			b.ReportMetric(median(downs), "down-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m
}
