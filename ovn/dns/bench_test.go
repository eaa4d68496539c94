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
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// BenchmarkRegisterScaling measures the per-container DNS cost (CNI ADD's
// Register; DEL's UnregisterHost, and Unregister, which reads the network's
// whole DNS row) in a network holding 10 and 5,000 names, on a real
// ovsdb-server.
func BenchmarkRegisterScaling(b *testing.B) {
	for _, existing := range []int{10, 5000} {
		b.Run(fmt.Sprintf("names=%d", existing), func(b *testing.B) {
			srv := startNB(b)
			ctx := context.Background()
			nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
			if err != nil {
				b.Fatal(err)
			}
			defer nb.Close()
			srv.Run(b, "ovn-nbctl", "ls-add", "big", "--", "set", "logical_switch", "big",
				`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=network`, `external_ids:"ovlmgr.io/name"=big`)
			n, err := dns.Ensure(ctx, nb, "big")
			if err != nil {
				b.Fatal(err)
			}
			recs := map[string]string{}
			for i := 0; i < existing; i++ {
				ip := net.IPv4(198, 19, byte(i/250), byte(i%250+1))
				recs[fmt.Sprintf("c%d.big.ovl", i)] = ip.String()
				recs[dns.ReverseName(ip)] = fmt.Sprintf("c%d.big.ovl", i)
			}
			d := &nbdb.DNS{UUID: n.DNSUUID}
			tx := dbops.NewTx(nb).AddAPI(nb.Where(d).Mutate(d, model.Mutation{Field: &d.Records, Mutator: ovsdb.MutateOperationInsert, Value: recs}))
			if err := tx.Transact(ctx); err != nil {
				b.Fatal(err)
			}
			const samples = 100
			var reg, unreg, unregHost []time.Duration
			b.ResetTimer()
			for i := 0; i < samples; i++ {
				ips := []net.IP{net.IPv4(198, 18, 200, byte(i+1))}
				t0 := time.Now()
				if _, err := dns.Register(ctx, nb, dns.Host{Network: "big", Name: fmt.Sprintf("new%d", i), IPs: ips}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := dns.Unregister(ctx, nb, "big", ips); err != nil {
					b.Fatal(err)
				}
				reg, unreg = append(reg, t1.Sub(t0)), append(unreg, time.Since(t1))
				h := dns.Host{Network: "big", Name: fmt.Sprintf("new%d", i), ContainerID: "0123456789abcdef", IPs: ips}
				if _, err := dns.Register(ctx, nb, h); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if err := dns.UnregisterHost(ctx, nb, h); err != nil {
					b.Fatal(err)
				}
				unregHost = append(unregHost, time.Since(t2))
			}
			b.StopTimer()
			med := func(d []time.Duration) float64 {
				sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
				return float64(d[len(d)/2].Microseconds())
			}
			b.ReportMetric(med(reg), "register-p50-us")
			b.ReportMetric(med(unreg), "unregister-p50-us")
			b.ReportMetric(med(unregHost), "unregister-host-p50-us")
			b.ReportMetric(0, "ns/op")
		})
	}
}
