package attach

import (
	"context"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// nbMonitored is what the session's NB monitor keeps in the cache of the
// session's NB client, so the CNI server answers what ADD reads before
// its claim without a round trip to central: the networks' switches
// (their own columns, not their ports), the DNS rows' identities (not
// their records) and NB_Global's underlay settings. These change when
// networks, pools and settings do, not with every container's traffic.
// nbMonitorOptions asks for the same columns.
var nbMonitored = map[string][]string{
	nbdb.LogicalSwitchTable: {"name", "external_ids", "other_config", "dns_records", "load_balancer"},
	nbdb.DNSTable:           {"external_ids"},
	nbdb.NBGlobalTable:      {"external_ids", "ipsec"},
}

func nbMonitorOptions() []client.MonitorOption {
	ls, d, g := &nbdb.LogicalSwitch{}, &nbdb.DNS{}, &nbdb.NBGlobal{}
	return []client.MonitorOption{
		client.WithTable(ls, &ls.Name, &ls.ExternalIDs, &ls.OtherConfig, &ls.DNSRecords, &ls.LoadBalancer),
		client.WithTable(d, &d.ExternalIDs),
		client.WithTable(g, &g.ExternalIDs, &g.Ipsec),
	}
}

// monitorNB starts the session's NB monitor on c (just connected); false
// when it could not be started: ADD then reads from the server.
// monitor_cond, as the watches on the same client: libovsdb's handler of a
// monitor_cond_since update waits for the monitors lock, which a watch's
// Monitor call holds until the read loop has read its reply, so every
// request on the client hung until its deadline (TestMonitorBesideWatches;
// ovn/ovsdb/libovsdb/OVLMGR.md).
func monitorNB(ctx context.Context, c client.Client) bool {
	mon := c.NewMonitor(nbMonitorOptions()...)
	mon.Method = ovsdb.ConditionalMonitorRPC
	_, err := c.Monitor(ctx, mon)
	return err == nil
}

// monitoredNB is the session's NB client lent for ADD's first reads: a
// dbops.Monitored whose selects of what the session's monitor keeps come
// from its cache (see nbMonitored).
type monitoredNB struct{ kept }

// Holds implements dbops.Monitored: the client is connected (a reconnect
// restores the monitor and rebuilds the cache) and its monitor keeps
// columns of table.
func (m monitoredNB) Holds(table string, columns []string) bool {
	if !m.Connected() {
		return false
	}
	kept, ok := nbMonitored[table]
	if !ok {
		return false
	}
	for _, c := range columns {
		if c != "_uuid" && !slices.Contains(kept, c) {
			return false
		}
	}
	return true
}

// Fresh implements dbops.Monitored: the same client, read from the server.
func (m monitoredNB) Fresh() client.Client { return m.kept }

var _ dbops.Monitored = monitoredNB{}

// reads returns nb for ADD's first reads: from the session's NB monitor
// when nb is the session's client and its monitor runs, else nb itself.
func (s *Session) reads(nb client.Client) client.Client {
	k, ok := nb.(kept)
	if s == nil || !ok {
		return nb
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nb != k.Client || !s.nbMonitor {
		return nb
	}
	return monitoredNB{k}
}
