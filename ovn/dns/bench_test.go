package dns_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// BenchmarkRegisterScaling measures the per-container DNS cost (CNI ADD's
// Register; DEL's UnregisterHost; Unregister, by addresses only, as ADD's
// undo and GC use it) in a network holding 10 and one holding 5,000 names,
// each on its own real ovsdb-server, samples alternating between the two;
// it prints the p50s and the 5,000/10 ratios.
func BenchmarkRegisterScaling(b *testing.B) {
	type side struct {
		names                 int
		nb                    client.Client
		reg, unreg, unregHost []time.Duration
	}
	ctx := context.Background()
	sides := []*side{{names: 10}, {names: 5000}}
	for _, sd := range sides {
		srv := startNB(b)
		nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
		if err != nil {
			b.Fatal(err)
		}
		defer nb.Close()
		sd.nb = nb
		srv.Run(b, "ovn-nbctl", "ls-add", "big", "--", "set", "logical_switch", "big",
			`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=network`, `external_ids:"ovlmgr.io/name"=big`)
		n, err := dns.Ensure(ctx, nb, "big")
		if err != nil {
			b.Fatal(err)
		}
		byRow := map[string]map[string]string{}
		for i := 0; i < sd.names; i++ {
			ip := net.IPv4(198, 19, byte(i/250), byte(i%250+1))
			name := fmt.Sprintf("c%d.big.ovl", i)
			for k, v := range map[string]string{name: ip.String(), dns.ReverseName(ip): name} {
				u := n.ByShard[dns.ShardOf(k)]
				if byRow[u] == nil {
					byRow[u] = map[string]string{}
				}
				byRow[u][k] = v
			}
		}
		tx := dbops.NewTx(nb)
		for u, m := range byRow {
			d := &nbdb.DNS{UUID: u}
			tx.AddAPI(nb.Where(d).Mutate(d, model.Mutation{Field: &d.Records, Mutator: ovsdb.MutateOperationInsert, Value: m}))
		}
		if err := tx.Transact(ctx); err != nil {
			b.Fatal(err)
		}
	}
	const samples = 100
	b.ResetTimer()
	for i := 0; i < samples*b.N; i++ {
		for _, sd := range sides {
			ips := []net.IP{net.IPv4(198, 18, 200+byte(i/250%50), byte(i%250+1))}
			h := dns.Host{Network: "big", Name: fmt.Sprintf("new%d", i), ContainerID: "0123456789abcdef", IPs: ips}
			t0 := time.Now()
			if _, err := dns.Register(ctx, sd.nb, h); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := dns.Unregister(ctx, sd.nb, "big", ips); err != nil {
				b.Fatal(err)
			}
			sd.reg, sd.unreg = append(sd.reg, t1.Sub(t0)), append(sd.unreg, time.Since(t1))
			if _, err := dns.Register(ctx, sd.nb, h); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if err := dns.UnregisterHost(ctx, sd.nb, h); err != nil {
				b.Fatal(err)
			}
			sd.unregHost = append(sd.unregHost, time.Since(t2))
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		d = append([]time.Duration{}, d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Microseconds())
	}
	small, large := sides[0], sides[1]
	for _, sd := range sides {
		b.ReportMetric(med(sd.reg), fmt.Sprintf("register-p50-%d-us", sd.names))
		b.ReportMetric(med(sd.unregHost), fmt.Sprintf("unregister-host-p50-%d-us", sd.names))
		b.ReportMetric(med(sd.unreg), fmt.Sprintf("unregister-by-ip-p50-%d-us", sd.names))
	}
	b.ReportMetric(med(large.reg)/med(small.reg), "register-5000/10-x")
	b.ReportMetric(med(large.unregHost)/med(small.unregHost), "unregister-host-5000/10-x")
	b.ReportMetric(med(large.unreg)/med(small.unreg), "unregister-by-ip-5000/10-x")
	b.ReportMetric(0, "ns/op")
}
