package dbops_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// monitored is a dbops.Monitored over a real client whose monitor keeps
// the switches' name and external_ids, the DNS rows' external_ids and
// NB_Global's external_ids; it counts the transactions sent.
type monitored struct {
	client.Client
	sent *atomic.Int32
}

func (m monitored) Holds(table string, columns []string) bool {
	kept := map[string]map[string]bool{
		nbdb.LogicalSwitchTable: {"_uuid": true, "name": true, "external_ids": true},
		nbdb.DNSTable:           {"_uuid": true, "external_ids": true},
		nbdb.NBGlobalTable:      {"_uuid": true, "external_ids": true},
	}[table]
	for _, c := range columns {
		if !kept[c] {
			return false
		}
	}
	return kept != nil
}

func (m monitored) Fresh() client.Client { return m.Client }

func (m monitored) Transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	m.sent.Add(1)
	return m.Client.Transact(ctx, ops...)
}

// TestSelectRowsFromMonitor: on a Monitored client, SelectRows answers
// from the monitor's cache what it keeps (no transaction sent), with the
// conditions ADD's reads use (name, external_ids includes, _uuid not
// equal); a column the monitor does not keep, or no matching row in the
// cache, goes to the server; Fresh always does.
func TestSelectRowsFromMonitor(t *testing.T) {
	ctx := context.Background()
	c := connectNB(t)
	ls, d, g := &nbdb.LogicalSwitch{}, &nbdb.DNS{}, &nbdb.NBGlobal{}
	if _, err := c.Monitor(ctx, c.NewMonitor(client.WithTable(ls, &ls.Name, &ls.ExternalIDs),
		client.WithTable(d, &d.ExternalIDs), client.WithTable(g, &g.ExternalIDs))); err != nil {
		t.Fatal(err)
	}
	tx := dbops.NewTx(c)
	tx.AddAPI(c.Create(&nbdb.LogicalSwitch{Name: "web", ExternalIDs: map[string]string{"k": "web"}, OtherConfig: map[string]string{"subnet": "198.19.0.0/16"}}))
	tx.AddAPI(c.Create(&nbdb.DNS{ExternalIDs: map[string]string{"net": "web", "shard": "0"}, Records: map[string]string{"a": "198.19.0.2"}}))
	tx.AddAPI(c.Create(&nbdb.NBGlobal{ExternalIDs: map[string]string{"mtu": "1400"}}))
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	// The monitor's update may follow the reply: wait for it.
	for i := 0; ; i++ {
		if n := c.Cache().Table(nbdb.NBGlobalTable).Len() + c.Cache().Table(nbdb.DNSTable).Len() + c.Cache().Table(nbdb.LogicalSwitchTable).Len(); n == 3 {
			break
		} else if i > 500 {
			t.Fatalf("monitor holds %d rows, want 3", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	sent := &atomic.Int32{}
	m := monitored{Client: c, sent: sent}

	sws, err := dbops.SelectRows(ctx, m, []ovsdb.Condition{dbops.NameIs("web")},
		func(s *nbdb.LogicalSwitch) []any { return []any{&s.UUID, &s.Name, &s.ExternalIDs} })
	if err != nil || len(sws) != 1 || sws[0].ExternalIDs["k"] != "web" || sws[0].UUID == "" {
		t.Fatalf("switch from the cache: %+v, %v", sws, err)
	}
	sws[0].ExternalIDs["k"] = "changed by the caller"
	dnss, err := dbops.SelectRows(ctx, m, []ovsdb.Condition{dbops.Includes(map[string]string{"net": "web"})},
		func(r *nbdb.DNS) []any { return []any{&r.UUID, &r.ExternalIDs} })
	if err != nil || len(dnss) != 1 || dnss[0].ExternalIDs["shard"] != "0" {
		t.Fatalf("DNS row from the cache: %+v, %v", dnss, err)
	}
	gs, err := dbops.SelectRows(ctx, m, []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual,
		Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}, func(r *nbdb.NBGlobal) []any { return []any{&r.UUID, &r.ExternalIDs} })
	if err != nil || len(gs) != 1 || gs[0].ExternalIDs["mtu"] != "1400" {
		t.Fatalf("NB_Global from the cache: %+v, %v", gs, err)
	}
	if n := sent.Load(); n != 0 {
		t.Fatalf("reads the monitor keeps sent %d transactions, want 0", n)
	}
	again, _ := dbops.SelectRows(ctx, m, []ovsdb.Condition{dbops.NameIs("web")}, func(s *nbdb.LogicalSwitch) []any { return []any{&s.ExternalIDs} })
	if len(again) != 1 || again[0].ExternalIDs["k"] != "web" {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}

	// A column the monitor does not keep, a row it has not got, a read
	// with every column, and Fresh: each asks the server.
	sws, err = dbops.SelectRows(ctx, m, []ovsdb.Condition{dbops.NameIs("web")}, func(s *nbdb.LogicalSwitch) []any { return []any{&s.OtherConfig} })
	if err != nil || len(sws) != 1 || sws[0].OtherConfig["subnet"] != "198.19.0.0/16" {
		t.Fatalf("other_config from the server: %+v, %v", sws, err)
	}
	if none, err := dbops.SelectRows(ctx, m, []ovsdb.Condition{dbops.NameIs("db")}, func(s *nbdb.LogicalSwitch) []any { return []any{&s.Name} }); err != nil || len(none) != 0 {
		t.Fatalf("absent switch: %+v, %v", none, err)
	}
	if _, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, m, []ovsdb.Condition{dbops.NameIs("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbops.SelectRows(ctx, dbops.Fresh(m), []ovsdb.Condition{dbops.NameIs("web")}, func(s *nbdb.LogicalSwitch) []any { return []any{&s.Name} }); err != nil {
		t.Fatal(err)
	}
	if n := sent.Load(); n != 3 {
		t.Fatalf("reads the monitor cannot answer sent %d transactions on the Monitored client, want 3", n)
	}
	if dbops.Fresh(c) != c {
		t.Fatal("Fresh of a plain client is not the client")
	}
}
