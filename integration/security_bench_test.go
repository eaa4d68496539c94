package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
)

// BenchmarkSecureADD: sequential CNI ADD latency on a plain lab and on a
// TLS lab where the plugin writes the NB through the control service with
// the node's certificate, in one run (same node count, same network size),
// their ratio, the hand-bound floor on the TLS lab, and the control
// service's resident memory after the run.
func BenchmarkSecureADD(b *testing.B) {
	needLab(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	uctx, ucancel := context.WithTimeout(ctx, 2*time.Minute)
	plain, err := lab.Up(uctx, lab.Options{Nodes: 2, Name: uniqueName("bp"), Gateways: []string{"none"}, Insecure: true})
	ucancel()
	if err != nil {
		b.Fatalf("plain lab: %v", err)
	}
	b.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := plain.Down(dctx); err != nil {
			b.Errorf("plain lab down: %v", err)
		}
	})
	secure := secureLab(b, "bs", 2)
	n := benchSamples()
	name := fmt.Sprintf("secb%d", os.Getpid()%10000)
	run := func(l *lab.Lab) []time.Duration {
		nb := cniNB(b, l)
		cniNetwork(b, nb, name, "198.19.52.0/22")
		var extra map[string]interface{}
		if v := os.Getenv("SEC_BENCH_NB"); v != "" && l.TLS != nil {
			extra = map[string]interface{}{"nb": v}
		}
		adds, _ := addDelLoopConf(b, ctx, l.Nodes[0], name, n, 1, extra)
		return adds
	}
	for i := 0; i < b.N; i++ {
		pa := run(plain)
		sa := run(secure)
		floor := newFloorArm(b, secure, secure.Nodes[0], cniNB(b, secure), name, "ready", 22, "198.19.55")
		var fl []time.Duration
		for k := 0; k < min(n, 50); k++ {
			fl = append(fl, floor.sample(b, ctx))
		}
		reportPct(b, "add-plain", pa)
		reportPct(b, "add-tls", sa)
		reportPct(b, "floor-tls", fl)
		b.ReportMetric(pct(sa, 50)/pct(pa, 50), "add-tls/plain-p50-x")
		b.ReportMetric(pct(sa, 50)/pct(fl, 50), "add-tls/floor-p50-x")
	}
	var rss float64
	for _, inst := range []string{"ovlmgr-control1", "ovlmgr-control2"} {
		if m := pidRSS(b, filepath.Join(secure.CentralDir, inst+".pid")); m > rss {
			rss = m
		}
	}
	b.ReportMetric(rss, "control-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// pidRSS is the resident memory (MiB) of the process in pidfile.
func pidRSS(b *testing.B, pidfile string) float64 {
	data, err := os.ReadFile(pidfile)
	if err != nil {
		b.Fatalf("control service pidfile: %v", err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(data)) + "/status")
	if err != nil {
		b.Fatalf("control service status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS in /proc status of %s", pidfile)
	return 0
}
