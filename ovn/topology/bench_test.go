package topology_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// fill creates 10 routers, nets networks and 3 container ports per network
// (static addresses, so no ovn-northd is needed). The networks are not
// attached to the routers: creating networks on a router slows down with
// their number (100 in 16 s, the second 100 in 91 s here), which would make
// the setup, not the read, the cost of this benchmark.
func fill(b testing.TB, nb client.Client, nets int) {
	ctx := context.Background()
	for r := 0; r < 10; r++ {
		if _, err := router.Create(ctx, nb, fmt.Sprintf("r%d", r), nil); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < nets; i++ {
		// the i-th /26 of 198.18.0.0/15 (room for 2,048)
		v := uint32(198)<<24 | uint32(18)<<16 | uint32(i)*64
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 26)
		name := fmt.Sprintf("net%04d", i)
		n, err := network.Create(ctx, nb, network.Spec{Name: name, Subnet: sub.String()})
		if err != nil {
			b.Fatal(err)
		}
		// 3 container ports, inserted directly (port.Create's per-port
		// checks would make the setup quadratic): what List selects on
		var ops []ovsdb.Operation
		var uuids []string
		for k := 0; k < 3; k++ {
			pn := fmt.Sprintf("p%04d-%d", i, k)
			ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v) + byte(10+k)})
			a := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x %s", byte(v>>16), byte(v>>8), byte(v), 10+k, ip)
			p := &nbdb.LogicalSwitchPort{UUID: fmt.Sprintf("lsp%d", k), Name: pn, Addresses: []string{a}, PortSecurity: []string{a},
				ExternalIDs: owner.IDs(owner.KindPort, pn, map[string]string{owner.KeyNetwork: name, owner.KeyNode: fmt.Sprintf("n%d", k),
					owner.KeyContainer: fmt.Sprintf("c%04d%d", i, k), owner.KeyIfName: "eth0"})}
			ins, err := nb.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, ins...)
			uuids = append(uuids, p.UUID)
		}
		sw := &nbdb.LogicalSwitch{UUID: n.UUID}
		mut, err := nb.Where(sw).Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationInsert, Value: uuids})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dbconn.Transact(ctx, nb, append(ops, mut...)...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead: one topology.Read (NB only) with 10 networks / 30 ports
// and with 1,000 networks / 3,000 ports, medians of alternating samples,
// and their ratio.
func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	conn := func() client.Client {
		c, err := dbconn.ConnectNB(ctx, ovsdbtest.StartNB(b).Endpoint)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	small, large := conn(), conn()
	fill(b, small, 10)
	st := time.Now()
	fill(b, large, 1000)
	b.Logf("setup: 1,000 networks and 3,000 ports in %v", time.Since(st).Round(time.Second))
	const samples = 15
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	b.ResetTimer()
	var m10, m1000 time.Duration
	for i := 0; i < b.N; i++ {
		var d10, d1000 []time.Duration
		for k := 0; k < samples; k++ {
			for _, s := range []struct {
				c client.Client
				d *[]time.Duration
				n int
			}{{small, &d10, 30}, {large, &d1000, 3000}} {
				t0 := time.Now()
				g, err := topology.Read(ctx, s.c, nil)
				*s.d = append(*s.d, time.Since(t0))
				if err != nil || len(g.Containers) != s.n {
					b.Fatalf("read: %v, %d containers; want %d", err, len(g.Containers), s.n)
				}
			}
		}
		m10, m1000 = median(d10), median(d1000)
	}
	b.ReportMetric(float64(m10.Microseconds())/1000, "ms-read-30-ports")
	b.ReportMetric(float64(m1000.Microseconds())/1000, "ms-read-3000-ports")
	b.ReportMetric(float64(m1000)/float64(m10), "read-3000/30-ports-x")
}
