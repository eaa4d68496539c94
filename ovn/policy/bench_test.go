package policy_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// BenchmarkPolicyCreate reports the median and p90 cost of one policy
// create (validation, reads, one transaction) with 10 and with 500
// policies already in NB. Each sample creates a policy and deletes it again,
// so the count stays put; only the create is timed.
func BenchmarkPolicyCreate(b *testing.B) {
	const samples = 60
	_, c := nb(b)
	ctx := context.Background()
	addNetwork(b, c, "web", "198.18.1.0/24", "")
	addNetwork(b, c, "app", "198.18.2.0/24", policy.DefaultDeny)
	for i := 0; i < 20; i++ {
		addPort(b, c, "app", fmt.Sprintf("app%d", i), fmt.Sprintf("0a:00:00:00:02:%02x", i+10), fmt.Sprintf("198.18.2.%d", i+10))
	}
	next := 0
	fill := func(upto int) {
		for ; next < upto; next++ {
			s := policy.Spec{Name: fmt.Sprintf("fill%d", next), Network: "app", Action: policy.Allow,
				From: []string{"web", fmt.Sprintf("198.18.%d.0/24", 100+next%100)}, Proto: "tcp", Port: fmt.Sprint(1000 + next), Priority: next % 1000}
			if _, err := policy.Create(ctx, c, s); err != nil {
				b.Fatal(err)
			}
		}
	}
	measure := func(at int) (p50, p90 float64) {
		fill(at)
		d := make([]float64, samples)
		for i := range d {
			s := policy.Spec{Name: "sample", Network: "app", Action: policy.Allow, From: []string{"web", "198.18.9.0/24"}, Proto: "tcp", Port: "8080"}
			st := time.Now()
			_, err := policy.Create(ctx, c, s)
			d[i] = float64(time.Since(st).Microseconds()) / 1000
			if err != nil {
				b.Fatal(err)
			}
			if err := policy.Delete(ctx, c, "sample"); err != nil {
				b.Fatal(err)
			}
		}
		sort.Float64s(d)
		return d[len(d)/2], d[len(d)*9/10]
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		p50a, p90a := measure(10)
		p50b, p90b := measure(500)
		b.ReportMetric(p50a, "p50-ms-at-10")
		b.ReportMetric(p90a, "p90-ms-at-10")
		b.ReportMetric(p50b, "p50-ms-at-500")
		b.ReportMetric(p90b, "p90-ms-at-500")
	}
}
