package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs url's /metrics and parses it with Prometheus' own text parser.
func scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", base, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", base, err)
	}
	return fams
}

// sample returns the value of family name's sample with exactly the given
// labels among its own (others ignored), and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestExporter: the cluster exporter and a node exporter (the real binary,
// on the shared lab) serve metrics Prometheus' parser reads; port counts per
// network and node and free addresses follow attaches and detaches; a
// failed CNI ADD shows in the node's error counter with its CNI code, and
// every ADD in its latency histogram.
func TestExporter(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, _ := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, m := startCLI(t, `serving http://(\S+)/metrics`, "exporter", "--lab", l.Name, "--listen", "127.0.0.1:0")
	cluster := "http://" + m[1]
	_, m = startCLI(t, `serving http://(\S+)/metrics`, "exporter", "--lab", l.Name, "--lab-node", n1.Name, "--listen", "127.0.0.1:0")
	node1 := "http://" + m[1]

	net := segName("exm")
	segNet(t, nb, net, "198.18.74.0/28", "", "") // 14 hosts, 13 without the gateway
	want := func(what string, fams map[string]*dto.MetricFamily, name string, labels map[string]string, v float64) {
		t.Helper()
		got, ok := sample(fams, name, labels)
		if !ok && v == 0 {
			return
		}
		if !ok || got != v {
			t.Errorf("%s: %s%v = %v (present %v); want %v", what, name, labels, got, ok, v)
		}
	}
	fams := scrape(t, cluster)
	want("empty network", fams, "ovlmgr_network_free_addresses", map[string]string{"network": net}, 13)
	want("empty network", fams, "ovlmgr_network_ports", map[string]string{"network": net, "node": n1.Name}, 0)
	for _, n := range l.Nodes {
		want("lab", fams, "ovlmgr_chassis_up", map[string]string{"chassis": n.SystemID}, 1)
	}
	want("lab", fams, "ovlmgr_ovsdb_up", map[string]string{"db": "nb", "endpoint": l.NB}, 1)
	want("lab", fams, "ovlmgr_ovsdb_role", map[string]string{"db": "sb", "endpoint": l.SB, "role": "standalone"}, 1)
	want("lab", fams, "ovlmgr_exporter_scrape_error", map[string]string{"source": "nb"}, 0)
	if _, ok := sample(fams, "ovlmgr_northd_lag", map[string]string{"stage": "hv"}); !ok {
		t.Error("no ovlmgr_northd_lag{stage=hv}")
	}
	before := scrape(t, node1)
	adds0, _ := sample(before, "ovlmgr_cni_duration_seconds", map[string]string{"verb": "ADD", "node": n1.Name})
	errs0, _ := sample(before, "ovlmgr_cni_errors_total", map[string]string{"verb": "ADD", "code": "7", "node": n1.Name})
	if v, ok := sample(before, "ovlmgr_tunnel_up", map[string]string{"node": n1.Name, "remote": n2.EncapIP}); !ok || v != 1 {
		t.Errorf("n1's tunnel to %s: ovlmgr_tunnel_up = %v (present %v); want 1", n2.EncapIP, v, ok)
	}

	// Two containers on n1, one on n2, then one of n1's leaves.
	rt1, rt2 := newRuntime(t, nodeWithStats(n1)), newRuntime(t, nodeWithStats(n2))
	a := newContainer(t, rt1, confList(t, net, "1.0.0", nil))
	a.mustAdd(t, ctx)
	newContainer(t, rt1, confList(t, net, "1.0.0", nil)).mustAdd(t, ctx)
	newContainer(t, rt2, confList(t, net, "1.0.0", nil)).mustAdd(t, ctx)
	fams = scrape(t, cluster)
	want("3 attached", fams, "ovlmgr_network_ports", map[string]string{"network": net, "node": n1.Name}, 2)
	want("3 attached", fams, "ovlmgr_network_ports", map[string]string{"network": net, "node": n2.Name}, 1)
	want("3 attached", fams, "ovlmgr_network_free_addresses", map[string]string{"network": net}, 10)
	if err := a.del(ctx); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, cluster)
	want("1 detached", fams, "ovlmgr_network_ports", map[string]string{"network": net, "node": n1.Name}, 1)
	want("1 detached", fams, "ovlmgr_network_free_addresses", map[string]string{"network": net}, 11)

	// A failed ADD (no such network: CNI code 7) on n1.
	bad := newContainer(t, rt1, confList(t, segName("nonet"), "1.0.0", nil))
	if err := bad.add(ctx); err == nil || cniCode(err) != 7 {
		t.Fatalf("ADD to a missing network = %v (code %d); want code 7", err, cniCode(err))
	}
	after := scrape(t, node1)
	want("after 3 ADDs on n1", after, "ovlmgr_cni_duration_seconds", map[string]string{"verb": "ADD", "node": n1.Name}, adds0+3)
	want("after a failed ADD", after, "ovlmgr_cni_errors_total", map[string]string{"verb": "ADD", "code": "7", "node": n1.Name}, errs0+1)
	want("after a DEL on n1", after, "ovlmgr_cni_errors_total", map[string]string{"verb": "DEL", "code": "7", "node": n1.Name}, 0)
	if testing.Verbose() {
		for _, name := range []string{"ovlmgr_cni_duration_seconds", "ovlmgr_cni_errors_total"} {
			if f := after[name]; f != nil {
				t.Logf("%s: %s", name, fmt.Sprint(f.Metric))
			}
		}
	}
}
