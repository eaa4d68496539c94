package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkPluginStartup: the wall time of `CNI_COMMAND=VERSION` (process
// start, package init, one line out) of ovlmgr-cni and of the reference
// bridge plugin, started alternately 200 times each; p50s and their ratio.
// No lab needed.
func BenchmarkPluginStartup(b *testing.B) {
	ours := filepath.Join(cniPluginDir(b), "ovlmgr-cni")
	ref := filepath.Join(refPluginDir, "bridge")
	if _, err := os.Stat(ref); err != nil {
		needLab(b)
		b.Fatalf("reference plugin: %v (containernetworking-plugins)", err)
	}
	run := func(bin string) time.Duration {
		cmd := exec.Command(bin)
		cmd.Env = []string{"CNI_COMMAND=VERSION"}
		cmd.Stdin = strings.NewReader("")
		t0 := time.Now()
		out, err := cmd.Output()
		d := time.Since(t0)
		if err != nil || !strings.Contains(string(out), "supportedVersions") {
			b.Fatalf("%s VERSION: %v: %s", bin, err, out)
		}
		return d
	}
	for i := 0; i < 5; i++ { // warm the page cache
		run(ours)
		run(ref)
	}
	var o, r []time.Duration
	for n := 0; n < b.N; n++ {
		for i := 0; i < 200; i++ {
			o, r = append(o, run(ours)), append(r, run(ref))
		}
	}
	b.ReportMetric(pct(o, 50), "ovlmgr-cni-VERSION-p50-ms")
	b.ReportMetric(pct(r, 50), "bridge-VERSION-p50-ms")
	b.ReportMetric(pct(o, 50)/pct(r, 50), "ovlmgr/bridge-x")
	b.ReportMetric(0, "ns/op")
}
