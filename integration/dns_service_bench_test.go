package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// dsReport reports the median and maximum of samples in milliseconds.
func dsReport(b *testing.B, prefix string, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(samples[len(samples)/2]), prefix+"p50-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), prefix+"max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkNameResolvesAcrossNodes measures the time from the start of a
// container's CNI ADD on node 3 (the real ovlmgr-cni through libcni: port,
// IPAM, veth, plug, ovn-installed, DNS records) to its name resolving from a
// container on node 1 (stub query, no EDNS).
func BenchmarkNameResolvesAcrossNodes(b *testing.B) {
	l := sharedLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nb := dsNB(ctx, b, l)
	n1, _, n3 := dsNodes(b, l)
	n := dsNetwork(ctx, b, nb, "dsbench", "198.19.170.0/24", fmt.Sprintf("ds-b%d", os.Getpid()))
	list := confList(b, n.name, "1.1.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}})
	obsCtr := newContainer(b, newRuntime(b, n1), list)
	obsCtr.mustAdd(b, ctx)
	obs := &dsCtr{name: "observer", netns: obsCtr.ns, net: n, node: n1}
	rt3 := newRuntime(b, n3)
	const samples = 15
	var add, total []time.Duration
	b.ResetTimer()
	for i := 0; i < samples; i++ {
		name := fmt.Sprintf("c%d", i)
		c := newContainer(b, rt3, list)
		c.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{name}}
		start := time.Now()
		c.mustAdd(b, ctx)
		added := time.Since(start)
		obs.dsResolve(b, name+".dsbench.ovl", dnsmessage.TypeA, "A "+c.ip().String())
		total = append(total, time.Since(start))
		add = append(add, added)
		if err := c.del(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	dsReport(b, "add-", add)
	dsReport(b, "add-to-resolve-", total)
}

// BenchmarkServiceCreateToServing measures the time from `service create`
// to the first TCP connection through the VIP answered by the backend (client
// on node 1, backend on node 2).
func BenchmarkServiceCreateToServing(b *testing.B) {
	l := sharedLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nb := dsNB(ctx, b, l)
	n1, n2, _ := dsNodes(b, l)
	n := dsNetwork(ctx, b, nb, "dsbsvc", "198.19.171.0/24", fmt.Sprintf("ds-v%d", os.Getpid()))
	cl := dsAdd(ctx, b, l, nb, n1, n, "client", nil)
	be := dsAdd(ctx, b, l, nb, n2, n, "backend", nil)
	be.dsServe(b, 8080)
	for i := 0; i < 50; i++ { // warm the tunnel
		if _, err := cl.dsHit(netip.AddrPortFrom(be.ip, 8080)); err == nil {
			break
		}
	}
	const samples = 15
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < samples; i++ {
		vip := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 201, byte(10 + i)}), 80)
		name := fmt.Sprintf("s%d", i)
		start := time.Now()
		if _, err := service.Create(ctx, nb, service.Spec{Name: name, Network: n.name, VIP: vip.String(), Backends: []string{"backend:8080"}}); err != nil {
			b.Fatal(err)
		}
		for {
			if who, err := cl.dsHitWithin(vip, 10*time.Millisecond); err == nil && who == "backend" {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("VIP %s not serving 30s after create", vip)
			}
		}
		took = append(took, time.Since(start))
		if err := service.Delete(ctx, nb, n.name, name); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	dsReport(b, "", took)
}
