package metrics_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/metrics"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// populate writes nets networks (/26 each in 198.18.0.0/15) with ports
// container ports each, over nodes n1..n3, in one transaction.
func populate(ctx context.Context, nb client.Client, nets, ports int) error {
	var ops []ovsdb.Operation
	for i := 0; i < nets; i++ {
		x := uint32(198)<<24 | uint32(18)<<16 + uint32(i*64)
		addr := func(off int) netip.Addr {
			v := x + uint32(off)
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		name := fmt.Sprintf("bn%04d", i)
		gw := addr(1)
		ls := &nbdb.LogicalSwitch{UUID: fmt.Sprintf("ls%d", i), Name: name,
			OtherConfig: map[string]string{"subnet": netip.PrefixFrom(addr(0), 26).String(), "exclude_ips": gw.String()},
			ExternalIDs: owner.IDs(owner.KindNetwork, name, map[string]string{owner.KeyGateway: gw.String()})}
		for j := 0; j < ports; j++ {
			ip := addr(2 + j)
			pn := fmt.Sprintf("%s-p%d", name, j)
			b := ip.As4()
			a := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x %s", b[0], b[1], b[2], b[3], ip)
			lsp := &nbdb.LogicalSwitchPort{UUID: fmt.Sprintf("lsp%d_%d", i, j), Name: pn, Addresses: []string{a}, PortSecurity: []string{a},
				ExternalIDs: owner.IDs(owner.KindPort, pn, map[string]string{owner.KeyNetwork: name, owner.KeyNode: fmt.Sprintf("n%d", j%3+1),
					owner.KeyContainer: pn, owner.KeyIfName: "eth0"})}
			ins, err := nb.Create(lsp)
			if err != nil {
				return err
			}
			ops = append(ops, ins...)
			ls.Ports = append(ls.Ports, lsp.UUID)
		}
		ins, err := nb.Create(ls)
		if err != nil {
			return err
		}
		ops = append(ops, ins...)
	}
	_, err := dbconn.Transact(ctx, nb, ops...)
	return err
}

// BenchmarkCollect is one in-process collection of the cluster metrics at
// 1,000 networks / 3,000 ports (NB) against a real ovsdb-server.
func BenchmarkCollect(b *testing.B) {
	nbSrv, sbSrv := ovsdbtest.StartNB(b), ovsdbtest.StartSB(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, nbSrv.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	if err := populate(ctx, nb, 1000, 3); err != nil {
		b.Fatal(err)
	}
	col := metrics.New(metrics.Options{NB: nbSrv.Endpoint, SB: sbSrv.Endpoint})
	defer col.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
