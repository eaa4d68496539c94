package network_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// benchSubnet returns the i-th /26 of 198.18.0.0/15 (2048 of them).
func benchSubnet(i int) string {
	base := netip.MustParseAddr("198.18.0.0").As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i)*64
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 26).String()
}

// BenchmarkNetCreate reports how many networks per second one client
// creates, and the median cost of one create with 10 and with 1,000
// networks already in the database. The two sizes live in two
// ovsdb-servers and their samples alternate (each sample creates a network
// and then deletes it, so the counts stay put; only the create is timed),
// so both medians see the same machine noise.
func BenchmarkNetCreate(b *testing.B) {
	const samples = 400
	ctx := context.Background()
	small, large := connect(b, ovsdbtest.StartNB(b)), connect(b, ovsdbtest.StartNB(b))
	fill := func(c client.Client, n int) {
		for i := 0; i < n; i++ {
			if _, err := network.Create(ctx, c, network.Spec{Name: fmt.Sprintf("n%d", i), Subnet: benchSubnet(i)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	sample := func(c client.Client, i int) time.Duration {
		name := fmt.Sprintf("s%d", i)
		st := time.Now()
		_, err := network.Create(ctx, c, network.Spec{Name: name, Subnet: benchSubnet(1500 + i%500)})
		d := time.Since(st)
		if err != nil {
			b.Fatal(err)
		}
		if err := network.Delete(ctx, c, name, false); err != nil {
			b.Fatal(err)
		}
		return d
	}
	median := func(d []time.Duration, what string) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		b.Logf("create with %s networks present: median %v, p90 %v", what, d[len(d)/2], d[len(d)*9/10])
		return d[len(d)/2]
	}
	b.ResetTimer()
	var at10, at1000 time.Duration
	var rate float64
	for i := 0; i < b.N; i++ {
		fill(small, 10)
		st := time.Now()
		fill(large, 1000)
		rate = 1000 / time.Since(st).Seconds()
		d10, d1000 := make([]time.Duration, samples), make([]time.Duration, samples)
		for k := 0; k < samples; k++ {
			d10[k], d1000[k] = sample(small, k), sample(large, k)
		}
		at10, at1000 = median(d10, "10"), median(d1000, "1000")
		b.StopTimer()
		cleanup(b, small, 10)
		cleanup(b, large, 1000)
		b.StartTimer()
	}
	b.ReportMetric(rate, "networks/s")
	b.ReportMetric(float64(at10.Microseconds()), "create-us-at-10")
	b.ReportMetric(float64(at1000.Microseconds()), "create-us-at-1000")
	b.ReportMetric(float64(at1000)/float64(at10), "ratio-1000/10")
}

func cleanup(b *testing.B, c client.Client, n int) {
	for i := 0; i < n; i++ {
		if err := network.Delete(context.Background(), c, fmt.Sprintf("n%d", i), false); err != nil {
			b.Fatal(err)
		}
	}
}
