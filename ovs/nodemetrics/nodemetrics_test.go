package nodemetrics

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
)

func aclLine(name, verdict string) string {
	return fmt.Sprintf("2026-12-04T21:00:00.123Z|00042|acl_log(ovn_pinctrl0)|INFO|name=%q, verdict=%s, severity=warning, direction=to-lport: tcp,vlan_tci=0x0000,nw_src=198.18.0.2,nw_dst=198.18.1.3,tp_src=4000,tp_dst=5432,tcp_flags=syn\n", name, verdict)
}

func gather(t *testing.T, c *Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func value(f *dto.MetricFamily, labels map[string]string) float64 {
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		if m.Histogram != nil {
			return float64(m.Histogram.GetSampleCount())
		}
		return m.Counter.GetValue()
	}
	return -1
}

// TestCollector: ACL log hits count the lines appended since the previous
// scrape (a partial last line waits for its newline) and start over on a
// rotated log; CNI counters come from the plugin's file.
func TestCollector(t *testing.T) {
	dir := t.TempDir()
	logf, stats := filepath.Join(dir, "ovn-controller.log"), filepath.Join(dir, cnistats.FileName)
	if err := os.WriteFile(logf, []byte("2026-12-04T21:00:00.000Z|00001|vlog|INFO|opened log file\n"+aclLine("deny-db", "drop")+aclLine("web", "allow")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, code := range []uint{0, 0, 11} {
		if err := cnistats.RecordAt(stats, cnistats.Add, 40*time.Millisecond, code); err != nil {
			t.Fatal(err)
		}
	}
	c := New(Options{Node: "n1", CNIStats: stats, ACLLog: logf})
	fams := gather(t, c)
	if v := value(fams["ovlmgr_acl_log_hits_total"], map[string]string{"policy": "deny-db", "verdict": "drop", "node": "n1"}); v != 1 {
		t.Errorf("deny-db drops = %v, want 1", v)
	}
	if v := value(fams["ovlmgr_cni_duration_seconds"], map[string]string{"verb": "ADD"}); v != 3 {
		t.Errorf("ADD calls = %v, want 3", v)
	}
	if v := value(fams["ovlmgr_cni_errors_total"], map[string]string{"verb": "ADD", "code": "11"}); v != 1 {
		t.Errorf("ADD errors with code 11 = %v, want 1", v)
	}
	f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := aclLine("deny-db", "drop")
	fmt.Fprint(f, line+line[:30])
	f.Close()
	if v := value(gather(t, c)["ovlmgr_acl_log_hits_total"], map[string]string{"policy": "deny-db", "verdict": "drop"}); v != 2 {
		t.Errorf("after one more line (and a partial one): deny-db drops = %v, want 2", v)
	}
	f, _ = os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, line[30:])
	f.Close()
	if v := value(gather(t, c)["ovlmgr_acl_log_hits_total"], map[string]string{"policy": "deny-db", "verdict": "drop"}); v != 3 {
		t.Errorf("after the partial line's end: deny-db drops = %v, want 3", v)
	}
	// Rotation: the log is renamed away and a new one begins.
	if err := os.Rename(logf, logf+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logf, []byte(aclLine("deny-db", "drop")), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := value(gather(t, c)["ovlmgr_acl_log_hits_total"], map[string]string{"policy": "deny-db", "verdict": "drop"}); v != 4 {
		t.Errorf("after rotation: deny-db drops = %v, want 4", v)
	}
}
