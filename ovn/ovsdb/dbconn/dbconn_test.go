package dbconn_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

func TestParseEndpoints(t *testing.T) {
	good := map[string]int{
		"unix:/var/run/ovn/ovnnb_db.sock":              1,
		"tcp:198.18.0.1:6641,tcp:198.18.0.2:6641":      2,
		" tcp:198.18.0.1:6641 , ssl:198.18.0.3:6641 ,": 2,
	}
	for in, n := range good {
		eps, err := dbconn.ParseEndpoints(in)
		if err != nil || len(eps) != n {
			t.Errorf("ParseEndpoints(%q) = %v, %v; want %d endpoints", in, eps, err, n)
		}
	}
	bad := map[string]string{
		"":               "no OVSDB endpoint",
		"http://x":       "scheme must be",
		"tcp:198.18.0.1": "IP:PORT",
		"unix:":          "socket path",
	}
	for in, want := range bad {
		if _, err := dbconn.ParseEndpoints(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEndpoints(%q) error = %v; want it to mention %q", in, err, want)
		}
	}
}

func TestConnectUnreachable(t *testing.T) {
	dbm, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = dbconn.Connect(ctx, dbm, "unix:/nonexistent/nb.sock", dbconn.Options{What: "NB"})
	if err == nil || !strings.Contains(err.Error(), "connect to NB unix:/nonexistent/nb.sock") {
		t.Fatalf("error = %v; want it to name NB and the endpoint", err)
	}
}

func TestSelectAndWaitGuard(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	dbm, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := dbconn.Connect(ctx, dbm, srv.Endpoint, dbconn.Options{What: "NB"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ls := &nbdb.LogicalSwitch{Name: "web", ExternalIDs: map[string]string{"k": "v"}}
	guard := func(name string) ovsdb.Operation {
		m := &nbdb.LogicalSwitch{Name: name}
		op, err := dbconn.Absent(c, m, &m.Name)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	ins, err := c.Create(ls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, c, append([]ovsdb.Operation{guard("web")}, ins...)...); err != nil {
		t.Fatalf("first create: %v", err)
	}
	_, err = dbconn.Transact(ctx, c, append([]ovsdb.Operation{guard("web")}, ins...)...)
	if !dbconn.FailedWait(err, 0) {
		t.Fatalf("second create: error %v; want a failed wait at op 0", err)
	}

	var got []*nbdb.LogicalSwitch
	m := &nbdb.LogicalSwitch{}
	if err := dbconn.Select(ctx, c, m, &got, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: "web"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "web" || got[0].ExternalIDs["k"] != "v" || got[0].UUID == "" {
		t.Fatalf("select = %+v; want the one switch web with its external_ids and UUID", got)
	}
	var all []nbdb.LogicalSwitch
	if err := dbconn.Select(ctx, c, &nbdb.LogicalSwitch{}, &all); err != nil || len(all) != 1 {
		t.Fatalf("select all = %v, %v; want 1 row", all, err)
	}
}

// TestSelectIgnoresCache: Select reads what the server holds even when the
// client's cache holds matching rows (libovsdb's cache-derived conditions
// kept only the first cached match).
func TestSelectIgnoresCache(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	dbm, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dbconn.Connect(ctx, dbm, srv.Endpoint, dbconn.Options{What: "NB"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	create := func(names ...string) {
		t.Helper()
		var ops []ovsdb.Operation
		for _, n := range names {
			ins, err := c.Create(&nbdb.LogicalSwitch{Name: n, ExternalIDs: map[string]string{"team": "shop"}})
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, ins...)
		}
		if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
			t.Fatal(err)
		}
	}
	create("a", "b", "c")
	// The client monitors the table: its cache holds a, b and c.
	if _, err := c.MonitorAll(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); c.Cache().Table(nbdb.LogicalSwitchTable).Len() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("cache never held the 3 switches")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := &nbdb.LogicalSwitch{}
	sel := func() []string {
		t.Helper()
		var got []*nbdb.LogicalSwitch
		if err := dbconn.Select(ctx, c, m, &got, model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes,
			Value: map[string]string{"team": "shop"}}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ls := range got {
			names = append(names, ls.Name)
		}
		sort.Strings(names)
		return names
	}
	if got := sel(); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("select with the 3 matches cached = %v; want a,b,c", got)
	}
	other, err := dbconn.Connect(ctx, dbm, srv.Endpoint, dbconn.Options{What: "NB"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ins, err := other.Create(&nbdb.LogicalSwitch{Name: "d", ExternalIDs: map[string]string{"team": "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, other, ins...); err != nil {
		t.Fatal(err)
	}
	if got := sel(); strings.Join(got, ",") != "a,b,c,d" {
		t.Fatalf("select after another client added d = %v; want a,b,c,d", got)
	}
}
