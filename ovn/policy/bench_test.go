package policy_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// BenchmarkPolicyCreate reports the median and p90 cost of one policy
// create (validation, reads, one transaction) with 10 and with 500
// policies already in NB. The two sizes live in two NB servers and the
// samples alternate between them, so a change in machine load hits both
// sides alike. Each sample creates a policy and deletes it again, so the
// count stays put; only the create is timed.
func BenchmarkPolicyCreate(b *testing.B) {
	const samples = 60
	ctx := context.Background()
	setup := func(policies int) client.Client {
		_, c := nb(b)
		addNetwork(b, c, "web", "198.18.1.0/24", "")
		addNetwork(b, c, "app", "198.18.2.0/24", policy.DefaultDeny)
		for i := 0; i < 20; i++ {
			addPort(b, c, "app", fmt.Sprintf("app%d", i), fmt.Sprintf("0a:00:00:00:02:%02x", i+10), fmt.Sprintf("198.18.2.%d", i+10))
		}
		for i := 0; i < policies; i++ {
			s := policy.Spec{Name: fmt.Sprintf("fill%d", i), Network: "app", Action: policy.Allow,
				From: []string{"web", fmt.Sprintf("198.18.%d.0/24", 100+i%100)}, Proto: "tcp", Port: fmt.Sprint(1000 + i), Priority: i % 1000}
			if _, err := policy.Create(ctx, c, s); err != nil {
				b.Fatal(err)
			}
		}
		return c
	}
	small, large := setup(10), setup(500)
	sample := func(c client.Client) float64 {
		s := policy.Spec{Name: "sample", Network: "app", Action: policy.Allow, From: []string{"web", "198.18.9.0/24"}, Proto: "tcp", Port: "8080"}
		st := time.Now()
		_, err := policy.Create(ctx, c, s)
		d := float64(time.Since(st).Microseconds()) / 1000
		if err != nil {
			b.Fatal(err)
		}
		if err := policy.Delete(ctx, c, "sample"); err != nil {
			b.Fatal(err)
		}
		return d
	}
	q := func(d []float64) (p50, p90 float64) {
		sort.Float64s(d)
		return d[len(d)/2], d[len(d)*9/10]
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var ds, dl []float64
		for i := 0; i < samples; i++ {
			ds = append(ds, sample(small))
			dl = append(dl, sample(large))
		}
		p50a, p90a := q(ds)
		p50b, p90b := q(dl)
		b.ReportMetric(p50a, "p50-ms-at-10")
		b.ReportMetric(p90a, "p90-ms-at-10")
		b.ReportMetric(p50b, "p50-ms-at-500")
		b.ReportMetric(p90b, "p90-ms-at-500")
		b.ReportMetric(p50b/p50a, "p50-500/10-x")
	}
}
