package integration

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/site"
)

// rttMS pings dst from c 20 times, 50 ms apart, and returns the average
// round trip in milliseconds.
func rttMS(b *testing.B, ctx context.Context, c *container, dst string) float64 {
	out, err := nsexec.Command(ctx, c.ns.Path(), nil, "ping", "-n", "-q", "-c", "20", "-i", "0.05", dst).CombinedOutput()
	if err != nil {
		b.Fatalf("ping %s: %v: %s", dst, err, out)
	}
	m := regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("ping %s: no rtt in %s", dst, out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// BenchmarkSites: in a two-site lab, iperf3 TCP and ping RTT from a
// container in site A to one on another node of A (same site) and to one
// in site B (through both sites' interconnection gateways and the WAN
// router), 3 runs each, medians and the ratios cross-site / same-site;
// and the time from `site link` (B's link, completing the pair) to the
// first answered cross-site ping, over 3 unlink/link cycles.
func BenchmarkSites(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := upSites(b, ctx)
	if _, err := waitPing(ctx, e.web, e.db.ip(), 30*time.Second); err != nil {
		b.Fatalf("%v\n%s", err, e.dump(ctx))
	}
	iperfServer(b, ctx, e.admin)
	iperfServer(b, ctx, e.db)
	secs := throughputSeconds()
	var same, cross, rSame, rCross, linkS []float64
	for i := 0; i < b.N; i++ {
		for run := 0; run < 3; run++ {
			same = append(same, iperfRun(b, ctx, e.web, e.admin, secs).End.SumReceived.BitsPerSecond/1e9)
			cross = append(cross, iperfRun(b, ctx, e.web, e.db, secs).End.SumReceived.BitsPerSecond/1e9)
			rSame = append(rSame, rttMS(b, ctx, e.web, e.admin.ip().String()))
			rCross = append(rCross, rttMS(b, ctx, e.web, e.db.ip().String()))
		}
		for run := 0; run < 3; run++ {
			if err := site.Unlink(ctx, e.nbB, e.icnb, "r1", "ts1"); err != nil {
				b.Fatal(err)
			}
			// Until A forgets the route, an old path may still answer.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if rs, err := site.LearnedRoutes(ctx, e.nbA, "r1"); err == nil && len(rs) == 0 {
					break
				}
			}
			start := time.Now()
			if _, err := site.LinkRouter(ctx, e.nbB, e.icnb, site.LinkSpec{Router: "r1", Transit: "ts1", IP: netip.MustParsePrefix("198.18.254.2/24"), Nodes: []string{e.b.Nodes[0].SystemID}}); err != nil {
				b.Fatal(err)
			}
			if _, err := waitPing(ctx, e.web, e.db.ip(), 30*time.Second); err != nil {
				b.Fatal(err)
			}
			linkS = append(linkS, time.Since(start).Seconds())
		}
	}
	// B's interconnection gateway down for 3 s (its ovs-vswitchd stopped):
	// how long cross-site traffic is gone; A's local traffic must not notice.
	gap, localFail := gatewayDown(b, ctx, e, net.JoinHostPort(e.db.ip().String(), "5201"), 3*time.Second)
	if localFail > 0 {
		b.Fatalf("site A local traffic failed %d time(s) while B's gateway was down", localFail)
	}
	b.ReportMetric(gap.Seconds(), "gateway-down-3s-gap-s")
	b.ReportMetric(median(same), "same-site-Gbit/s")
	b.ReportMetric(median(cross), "cross-site-Gbit/s")
	b.ReportMetric(median(cross)/median(same), "cross/same-site-throughput-x")
	b.ReportMetric(median(rSame), "same-site-rtt-ms")
	b.ReportMetric(median(rCross), "cross-site-rtt-ms")
	b.ReportMetric(median(rCross)/median(rSame), "cross/same-site-rtt-x")
	b.ReportMetric(median(linkS), "link-to-first-packet-s")
	b.ReportMetric(maxOf(linkS), "link-to-first-packet-max-s")
	b.ReportMetric(0, "ns/op")
	b.Logf("gateway down 3 s: cross-site gap %s", gap.Round(time.Millisecond))
	b.Logf("same site %v Gbit/s, cross site %v Gbit/s; rtt %v / %v ms; link to first packet %v s", same, cross, rSame, rCross, linkS)
}
