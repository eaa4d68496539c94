package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// BenchmarkExporterScrape measures the cluster exporter (the real binary)
// against a real NB and SB: the time of one /metrics scrape and the
// exporter's CPU time per scrape and RSS, empty (the floor, same run) and at 1,000 networks with
// 3,000 container ports (written in one NB transaction).
func BenchmarkExporterScrape(b *testing.B) {
	nbSrv, sbSrv := ovsdbtest.StartNB(b), ovsdbtest.StartSB(b)
	_, m := startCLI(b, `serving http://(\S+)/metrics`, "--nb", nbSrv.Endpoint, "--sb", sbSrv.Endpoint, "exporter", "--listen", "127.0.0.1:0")
	base := "http://" + m[1]
	pid := exporterPID(b)
	measure := func() (p50, max time.Duration, rss int, cpu time.Duration) {
		var ds []float64
		cpu0 := cpuTime(b, pid)
		for i := 0; i < 20; i++ {
			start := time.Now()
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, float64(time.Since(start)))
		}
		return time.Duration(median(ds)), time.Duration(maxOf(ds)), rssKB(b, pid), (cpuTime(b, pid) - cpu0) / time.Duration(len(ds))
	}
	floorP50, _, floorRSS, floorCPU := measure()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, nbSrv.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	start := time.Now()
	if err := populate(ctx, nb, 1000, 3); err != nil {
		b.Fatal(err)
	}
	setup := time.Since(start)
	p50, max, rss, cpu := measure()
	b.ReportMetric(float64(floorP50)/1e6, "scrape-empty-ms")
	b.ReportMetric(float64(p50)/1e6, "scrape-1k-nets-ms")
	b.ReportMetric(float64(max)/1e6, "scrape-1k-nets-max-ms")
	b.ReportMetric(float64(p50)/float64(floorP50), "scrape-ratio")
	b.ReportMetric(float64(floorCPU)/1e6, "cpu-per-scrape-empty-ms")
	b.ReportMetric(float64(cpu)/1e6, "cpu-per-scrape-1k-nets-ms")
	b.ReportMetric(float64(floorRSS)/1024, "rss-empty-MiB")
	b.ReportMetric(float64(rss)/1024, "rss-1k-nets-MiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("setup: 1,000 networks + 3,000 ports in one NB transaction: %s", setup.Round(time.Millisecond))
}

// exporterPID is the PID of the newest ovlmgr exporter this process started.
func exporterPID(tb testing.TB) int {
	tb.Helper()
	ents, _ := os.ReadDir("/proc")
	best := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil || !strings.Contains(string(st), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
			continue
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "exporter") && pid > best {
			best = pid
		}
	}
	if best == 0 {
		tb.Fatal("exporter process not found")
	}
	return best
}

// cpuTime is the user+system CPU time process pid has used (clock ticks of 10 ms).
func cpuTime(tb testing.TB, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	stm, _ := strconv.Atoi(f[12])
	return time.Duration(ut+stm) * 10 * time.Millisecond
}

func rssKB(tb testing.TB, pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// populate writes nets networks (/26 each in 198.18.0.0/15) with ports
// container ports each, spread over nodes n1..n3, in one transaction.
func populate(ctx context.Context, nb client.Client, nets, ports int) error {
	var ops []ovsdb.Operation
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := 0; i < nets; i++ {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 + uint32(i*64)
		addr := func(off int) netip.Addr {
			x := v + uint32(off)
			return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
		}
		name := fmt.Sprintf("bn%04d", i)
		gw := addr(1)
		ls := &nbdb.LogicalSwitch{UUID: fmt.Sprintf("ls%d", i), Name: name,
			OtherConfig: map[string]string{"subnet": netip.PrefixFrom(addr(0), 26).String(), "exclude_ips": gw.String()},
			ExternalIDs: owner.IDs(owner.KindNetwork, name, map[string]string{owner.KeyGateway: gw.String()})}
		for j := 0; j < ports; j++ {
			ip := addr(2 + j)
			pn := fmt.Sprintf("%s-p%d", name, j)
			a := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x %s", ip.As4()[0], ip.As4()[1], ip.As4()[2], ip.As4()[3], ip)
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
