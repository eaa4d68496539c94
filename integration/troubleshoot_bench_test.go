package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
	"github.com/ovlmgr/ovlmgr/ovs/nodetrace"
)

// BenchmarkTroubleshoot measures, on the shared 3-node lab with two
// containers, how long one `trace` (resolve + ovn-trace + verdict), one
// `trace --on-node` (ofproto/trace) and one full `diagnose` (central checks
// with --sync plus the node checks of all three nodes) take.
func BenchmarkTroubleshoot(b *testing.B) {
	l := sharedLab(b)
	nb := cniNB(b, l)
	sb := tsSB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net := fmt.Sprintf("tb%d", os.Getpid()%10000)
	cniNetwork(b, nb, net, "198.19.236.0/24")
	c1 := newContainer(b, newRuntime(b, l.Nodes[0]), confList(b, net, "1.0.0", nil))
	c1.mustAdd(b, ctx)
	c2 := newContainer(b, newRuntime(b, l.Nodes[1]), confList(b, net, "1.0.0", nil))
	c2.mustAdd(b, ctx)
	if err := c1.ping(ctx, c2.ip()); err != nil {
		b.Fatal(err)
	}
	const n = 20
	var tr, on, dg []float64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for i := 0; i < n; i++ {
		start := time.Now()
		r, err := trace.Trace(ctx, nb, sb, l.SB, trace.Request{From: c1.id, To: c2.ip().String(), Proto: "tcp", Port: 80})
		if err != nil || r.Verdict != trace.Delivered {
			b.Fatalf("trace: %v %+v", err, r)
		}
		tr = append(tr, ms(time.Since(start)))
		start = time.Now()
		if _, err := nodetrace.OnNode(ctx, sb, r, nodetrace.NodeAccess{OVS: l.Nodes[0].OVS, RunDir: l.Nodes[0].Dir}); err != nil {
			b.Fatal(err)
		}
		on = append(on, ms(time.Since(start)))
		start = time.Now()
		rep, st := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB, Sync: true})
		for _, nd := range l.Nodes {
			rep.Add(nodediag.Check(ctx, nodediag.Target{OVS: nd.OVS, RunDir: nd.Dir, OVNRunDir: nd.Dir, NetNS: nd.NetNSPath, NB: l.NB}, st)...)
		}
		dg = append(dg, ms(time.Since(start)))
		if f := rep.Failed(diagnose.Fail); len(f) > 0 && i == 0 {
			// Other tests share this lab; report, do not fail the measurement.
			b.Logf("diagnose on the shared lab: %d failed check(s), first %+v", len(f), f[0])
		}
	}
	b.ReportMetric(median(tr), "trace-p50-ms")
	b.ReportMetric(median(on), "on-node-p50-ms")
	b.ReportMetric(median(dg), "diagnose-sync-3nodes-p50-ms")
	b.ReportMetric(0, "ns/op")
}
