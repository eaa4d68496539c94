package port_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// BenchmarkCreateRequestedMAC: Create with a requested IP and MAC (the MAC
// in-use wait guards on Logical_Switch_Port.external_ids and
// Logical_Router_Port.mac, evaluated by ovsdb-server) with 10 and with 3,000
// other container ports in NB (in another switch, so the requested IP's
// check of its own switch's ports stays the same size). Two NB servers,
// samples alternating between them.
func BenchmarkCreateRequestedMAC(b *testing.B) {
	type side struct {
		ports int
		nb    client.Client
		took  []time.Duration
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sides := []*side{{ports: 10}, {ports: 3000}}
	for _, s := range sides {
		srv := ovsdbtest.StartNB(b)
		srv.Run(b, "ovn-nbctl", "ls-add", "m", "--", "set", "logical_switch", "m", "other_config:subnet=198.19.0.0/16", "other_config:exclude_ips=198.19.0.1")
		srv.Run(b, "ovn-nbctl", "ls-add", "f")
		nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nb.Close)
		s.nb = nb
		var ops []ovsdb.Operation
		for i := 0; i < s.ports; i++ {
			name := fmt.Sprintf("fill-%d", i)
			mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
			a := fmt.Sprintf("%s 198.18.%d.%d", mac, i/250, 1+i%250)
			p := &nbdb.LogicalSwitchPort{UUID: fmt.Sprintf("fill%d", i), Name: name, Addresses: []string{a}, PortSecurity: []string{a},
				ExternalIDs: owner.IDs(owner.KindPort, name, map[string]string{owner.KeyNetwork: "f", owner.KeyNode: "n",
					owner.KeyContainer: name, owner.KeyIfName: "eth0", port.KeyMAC: mac})}
			ins, err := nb.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, ins...)
			ops = append(ops, dbops.AddRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs("f")}, "ports", p.UUID))
		}
		if len(ops) > 0 {
			if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k := 0; k < 100; k++ {
			for _, s := range sides {
				sp := port.Spec{Network: "m", Subnet: netip.MustParsePrefix("198.19.0.0/16"), Gateway: netip.MustParseAddr("198.19.0.1"),
					Node: "n", Container: fmt.Sprintf("c%d-%d", n, k), IfName: "eth0",
					IP: netip.AddrFrom4([4]byte{198, 19, 1, byte(2 + k)}), MAC: net.HardwareAddr{2, 0, 0, 1, byte(n), byte(k)}}
				start := time.Now()
				p, err := port.Create(ctx, s.nb, sp)
				s.took = append(s.took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if err := port.Delete(ctx, s.nb, p.Name); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	p50 := func(d []time.Duration) float64 {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	small, large := p50(sides[0].took), p50(sides[1].took)
	b.ReportMetric(small, "create-p50-10ports-ms")
	b.ReportMetric(large, "create-p50-3000ports-ms")
	b.ReportMetric(large/small, "3000/10-x")
}
