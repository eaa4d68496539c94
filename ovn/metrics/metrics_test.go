package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/metrics"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// scrape GETs srv's /metrics and parses it with Prometheus' text parser.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the gauge of family name whose labels include want; ok false when none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
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
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// TestCollect: the cluster collector on real NB and SB servers counts
// networks, ports per network and node (and those up), free addresses and
// northd lag as the NB holds them, reports both servers up and standalone,
// and when SB goes away says so (scrape error, ovsdb_up 0) while the NB
// metrics stay.
func TestCollect(t *testing.T) {
	nbSrv, sbSrv := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, nbSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	// 3 networks /26 with 4 ports each on nodes n1, n2, n3, n1.
	if err := populate(ctx, nb, 3, 4); err != nil {
		t.Fatal(err)
	}
	up := true
	g := &nbdb.NBGlobal{UUID: "g", NbCfg: 7, SbCfg: 5, HvCfg: 4}
	ins, err := nb.Create(g)
	if err != nil {
		t.Fatal(err)
	}
	upd := []ovsdb.Operation{{Op: ovsdb.OperationUpdate, Table: nbdb.LogicalSwitchPortTable,
		Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: "bn0001-p0"}},
		Row:   ovsdb.Row{"up": ovsdb.OvsSet{GoSet: []any{up}}}}}
	if _, err := dbconn.Transact(ctx, nb, append(ins, upd...)...); err != nil {
		t.Fatal(err)
	}

	col := metrics.New(metrics.Options{NB: nbSrv.Endpoint, SB: sbSrv.Endpoint})
	defer col.Close()
	srv := httptest.NewServer(metrics.Handler(col))
	defer srv.Close()
	fams := scrape(t, srv)
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		got, ok := value(fams, name, labels)
		if !ok || got != want {
			t.Errorf("%s%v = %v (present %v); want %v", name, labels, got, ok, want)
		}
	}
	check("ovlmgr_networks", nil, 3)
	check("ovlmgr_network_ports", map[string]string{"network": "bn0001", "node": "n1"}, 2)
	check("ovlmgr_network_ports", map[string]string{"network": "bn0001", "node": "n3"}, 1)
	check("ovlmgr_network_ports_up", map[string]string{"network": "bn0001", "node": "n1"}, 1)
	check("ovlmgr_network_ports_up", map[string]string{"network": "bn0002", "node": "n1"}, 0)
	// A /26 has 62 hosts: minus the gateway and 4 ports.
	check("ovlmgr_network_free_addresses", map[string]string{"network": "bn0000"}, 57)
	check("ovlmgr_nb_cfg", nil, 7)
	check("ovlmgr_northd_lag", map[string]string{"stage": "sb"}, 2)
	check("ovlmgr_northd_lag", map[string]string{"stage": "hv"}, 3)
	check("ovlmgr_ovsdb_up", map[string]string{"db": "nb", "endpoint": nbSrv.Endpoint}, 1)
	check("ovlmgr_ovsdb_up", map[string]string{"db": "sb", "endpoint": sbSrv.Endpoint}, 1)
	check("ovlmgr_ovsdb_role", map[string]string{"db": "nb", "role": "standalone"}, 1)
	check("ovlmgr_exporter_scrape_error", map[string]string{"source": "nb"}, 0)
	check("ovlmgr_exporter_scrape_error", map[string]string{"source": "sb"}, 0)
	if fams["process_resident_memory_bytes"] == nil {
		t.Error("no process metrics")
	}

	sbSrv.Stop()
	fams = scrape(t, srv)
	check("ovlmgr_exporter_scrape_error", map[string]string{"source": "sb"}, 1)
	check("ovlmgr_ovsdb_up", map[string]string{"db": "sb", "endpoint": sbSrv.Endpoint}, 0)
	check("ovlmgr_ovsdb_role", map[string]string{"db": "sb", "role": "unreachable"}, 1)
	check("ovlmgr_networks", nil, 3)
}
