package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// BenchmarkPolicyToEnforced measures the time from `policy create` (the
// call starting) to the first packet it allows arriving on another node:
// NB change -> northd -> SB -> ovn-controller on the receiving node -> flows.
// A container on node 1 sends a UDP datagram every 2 ms to a container of a
// default-deny network on node 3; each sample allows a fresh port.
func BenchmarkPolicyToEnforced(b *testing.B) {
	const samples = 7
	l := sharedLab(b)
	nb := cniNB(b, l)
	n1, _, n3 := segNodes(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("er")
	segRouter(b, nb, r)
	na, nt := segName("ea"), segName("et")
	segNet(b, nb, na, "198.18.72.0/24", r, "")
	segNet(b, nb, nt, "198.18.73.0/24", r, policy.DefaultDeny)
	src := segCtr(b, ctx, n1, na)
	dst := segCtr(b, ctx, n3, nt)
	// Warm the path (ARP, tunnel peer) with traffic the isolation lets through.
	if err := dst.ping(ctx, src.ip()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var d []float64
		for i := 0; i < samples; i++ {
			port := 9100 + n*samples + i
			sink := segUDPSink(b, dst, port)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					case <-tick.C:
						_ = sendUDP(src, nil, dst.ip(), port, fmt.Sprintf("p%d-%d", port, k), 1)
					}
				}
			}()
			// Sanity: the default-deny network drops the datagrams so far. An
			// honest ping the isolation lets through (dst's own) marks time.
			if err := dst.ping(ctx, src.ip()); err != nil {
				b.Fatal(err)
			}
			if got := sink.received(); len(got) > 0 {
				close(stop)
				<-done
				b.Fatalf("udp/%d got %d datagrams before any policy allowed it", port, len(got))
			}
			name := segName(fmt.Sprintf("e%d-", port))
			start := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := policy.Create(pctx, nb, policy.Spec{Name: name, Network: nt, Action: policy.Allow, From: []string{na}, Proto: "udp", Port: fmt.Sprint(port), Priority: 100})
			pcancel()
			if err != nil {
				close(stop)
				<-done
				b.Fatal(err)
			}
			ok := false
			deadline := time.After(15 * time.Second)
			for !ok {
				for _, g := range sink.received() {
					if strings.HasPrefix(g, fmt.Sprintf("p%d-", port)) {
						ok = true
					}
				}
				if ok {
					break
				}
				select {
				case <-sink.kick:
				case <-deadline:
					close(stop)
					<-done
					b.Fatalf("no datagram to udp/%d arrived within 15 s of policy create", port)
				}
			}
			d = append(d, float64(time.Since(start).Microseconds())/1000)
			close(stop)
			<-done
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			if err := policy.Delete(dctx, nb, name); err != nil {
				b.Fatal(err)
			}
			dcancel()
		}
		sort.Float64s(d)
		b.ReportMetric(d[len(d)/2], "p50-ms")
		b.ReportMetric(d[len(d)-1], "max-ms")
	}
}
