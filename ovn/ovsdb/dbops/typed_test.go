package dbops_test

import (
	"context"
	"errors"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

func connectNB(t *testing.T) client.Client {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestQueryTiesEachSelectToItsResult builds one transaction of creates and
// typed selects on two tables and checks that every handle reads its own
// rows, decoded into models, with trimmed columns left zero.
func TestQueryTiesEachSelectToItsResult(t *testing.T) {
	ctx := context.Background()
	c := connectNB(t)

	tx := dbops.NewTx(c)
	p1 := &nbdb.LogicalSwitchPort{UUID: "p1", Name: "web-p1", Addresses: []string{"dynamic"}}
	tx.AddAPI(c.Create(p1))
	for _, name := range []string{"web", "db"} {
		ls := &nbdb.LogicalSwitch{Name: name, ExternalIDs: map[string]string{"k": name}}
		if name == "web" {
			ls.Ports = []string{"p1"}
		}
		tx.AddAPI(c.Create(ls))
	}
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}

	tx = dbops.NewTx(c)
	all := dbops.Query[nbdb.LogicalSwitch](tx, nil)
	web := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs("web")},
		func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.UUID, &ls.Ports} })
	ports := dbops.Query[nbdb.LogicalSwitchPort](tx, []ovsdb.Condition{dbops.NameIs("web-p1")})
	none := dbops.Query[nbdb.LogicalSwitch](tx, []ovsdb.Condition{dbops.NameIs("absent")})
	if _, err := web.Rows(); !errors.Is(err, dbops.ErrNotRun) {
		t.Fatalf("Rows before Transact: err = %v, want ErrNotRun", err)
	}
	if ops, _ := tx.Ops(); len(ops) != 4 || ops[1].Table != nbdb.LogicalSwitchTable || ops[2].Table != nbdb.LogicalSwitchPortTable {
		t.Fatalf("ops = %+v; want 4 selects on the models' tables", ops)
	}
	if ops, _ := tx.Ops(); len(ops[1].Columns) != 2 || ops[1].Columns[0] != "_uuid" || ops[1].Columns[1] != "ports" {
		t.Fatalf("trimmed select columns = %v, want [_uuid ports]", ops[1].Columns)
	}
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}

	lss, err := all.Rows()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ls := range lss {
		names = append(names, ls.Name+"="+ls.ExternalIDs["k"])
		if ls.UUID == "" {
			t.Errorf("switch %s decoded without its UUID", ls.Name)
		}
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "db=db" || names[1] != "web=web" {
		t.Fatalf("all switches = %v, want [db=db web=web]", names)
	}
	w, err := web.Rows()
	if err != nil || len(w) != 1 {
		t.Fatalf("web rows = %v, %v; want one", w, err)
	}
	ps, err := ports.Rows()
	if err != nil || len(ps) != 1 || ps[0].Name != "web-p1" || len(ps[0].Addresses) != 1 {
		t.Fatalf("port rows = %+v, %v; want web-p1 with its addresses", ps, err)
	}
	if w[0].Name != "" || len(w[0].Ports) != 1 || w[0].Ports[0] != ps[0].UUID {
		t.Fatalf("trimmed web row = %+v; want only _uuid and ports (= %s)", w[0], ps[0].UUID)
	}
	if u := web.UUIDs(); len(u) != 1 || u[0] != w[0].UUID {
		t.Fatalf("UUIDs = %v, want [%s]", u, w[0].UUID)
	}
	if none.Len() != 0 || all.Len() != 2 || web.Table() != nbdb.LogicalSwitchTable {
		t.Fatalf("Len absent=%d all=%d, table %q", none.Len(), all.Len(), web.Table())
	}

	if n, err := dbops.Count[nbdb.LogicalSwitch](ctx, c, nil); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
	got, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, c, []ovsdb.Condition{dbops.NameIs("db")})
	if err != nil || len(got) != 1 || got[0].Name != "db" {
		t.Fatalf("SelectRows(db) = %v, %v", got, err)
	}
}

// TestStillGuard checks that a Still guard lets the write through while
// the row is as read, and fails the whole transaction (nothing written)
// once a concurrent writer changed the guarded field.
func TestStillGuard(t *testing.T) {
	ctx := context.Background()
	c := connectNB(t)
	tx := dbops.NewTx(c)
	tx.AddAPI(c.Create(&nbdb.LogicalSwitch{Name: "web"}))
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	read, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, c, nil)
	if err != nil || len(read) != 1 {
		t.Fatal(read, err)
	}
	ls := read[0]

	write := func() (*dbops.Op, error) {
		tx := dbops.NewTx(c)
		g := dbops.Still(tx, ls, &ls.ExternalIDs)
		dbops.Typed[nbdb.LogicalSwitch](tx).SetKeys(dbops.ByUUID(ls.UUID), "other_config", map[string]string{"n": "1"})
		return g, tx.Transact(ctx)
	}
	if _, err := write(); err != nil {
		t.Fatalf("guarded write on an unchanged row: %v", err)
	}
	// A concurrent writer changes external_ids.
	other := &nbdb.LogicalSwitch{UUID: ls.UUID, ExternalIDs: map[string]string{"x": "y"}}
	if err := dbops.NewTx(c).AddAPI(c.Where(other).Update(other, &other.ExternalIDs)).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	tx = dbops.NewTx(c)
	g := dbops.Still(tx, ls, &ls.ExternalIDs)
	del := dbops.Typed[nbdb.LogicalSwitch](tx).Delete(dbops.ByUUID(ls.UUID))
	err = tx.Transact(ctx)
	if !g.Failed(err) || del.Failed(err) {
		t.Fatalf("guarded delete after a concurrent change: err = %v; want the guard to fail", err)
	}
	if n, err := dbops.Count[nbdb.LogicalSwitch](ctx, c, nil); err != nil || n != 1 {
		t.Fatalf("switches after the failed delete = %d, %v; want 1", n, err)
	}
	tx = dbops.NewTx(c)
	del = dbops.Typed[nbdb.LogicalSwitch](tx).Delete(dbops.ByUUID(ls.UUID))
	if err := tx.Transact(ctx); err != nil || del.Count() != 1 {
		t.Fatalf("unguarded delete: count %d, %v; want 1", del.Count(), err)
	}
}

// TestQueryWrongModel checks that a model of another database is an error
// of the transaction (before anything is sent), not a panic or an empty read.
func TestQueryWrongModel(t *testing.T) {
	c := connectNB(t)
	tx := dbops.NewTx(c)
	q := dbops.Query[sbdb.Chassis](tx, nil)
	err := tx.Transact(context.Background())
	if err == nil || q.Len() != 0 {
		t.Fatalf("select of an SB model on an NB client: err = %v", err)
	}
	if _, err := q.Rows(); !errors.Is(err, dbops.ErrNotRun) {
		t.Fatalf("Rows after a failed build: %v, want ErrNotRun", err)
	}
}

// TestCreateHandleUUID checks that an insert's handle reads the UUID of the
// row it created (not another operation's), and that a named UUID links
// rows of one transaction.
func TestCreateHandleUUID(t *testing.T) {
	ctx := context.Background()
	c := connectNB(t)

	tx := dbops.NewTx(c)
	lsp := &nbdb.LogicalSwitchPort{UUID: "newlsp", Name: "web-p1"}
	ls := &nbdb.LogicalSwitch{Name: "web", Ports: []string{lsp.UUID}}
	lsOp := tx.Create(ls)
	lspOp := tx.Create(lsp)
	if lspOp.UUID() != "" {
		t.Fatalf("UUID before Transact = %q, want empty", lspOp.UUID())
	}
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	sws, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, c, []ovsdb.Condition{dbops.NameIs("web")})
	if err != nil || len(sws) != 1 {
		t.Fatalf("read switch: %v, %d rows", err, len(sws))
	}
	ports, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, c, []ovsdb.Condition{dbops.NameIs("web-p1")})
	if err != nil || len(ports) != 1 {
		t.Fatalf("read port: %v, %d rows", err, len(ports))
	}
	if lsOp.UUID() != sws[0].UUID || lspOp.UUID() != ports[0].UUID || lsOp.UUID() == lspOp.UUID() {
		t.Fatalf("handles read switch %q port %q; rows are switch %q port %q", lsOp.UUID(), lspOp.UUID(), sws[0].UUID, ports[0].UUID)
	}
	if len(sws[0].Ports) != 1 || sws[0].Ports[0] != ports[0].UUID {
		t.Fatalf("switch ports %v, want [%s]", sws[0].Ports, ports[0].UUID)
	}

}

// closingClient is a client closed while a result decodes: once armed, its
// Cache() gives the cache `left` more times and nil after (a closed
// libovsdb client drops its cache).
type closingClient struct {
	client.Client
	armed atomic.Bool
	left  atomic.Int32
}

func (c *closingClient) Cache() *cache.TableCache {
	if c.armed.Load() && c.left.Add(-1) < 0 {
		return nil
	}
	return c.Client.Cache()
}

// TestRowsWhileClientCloses: a client closed while Rows decodes (a guard's
// round trip that outlived its CNI verb, whose process closed the client)
// gives the rows decoded with the cache taken, or an error: never a panic.
func TestRowsWhileClientCloses(t *testing.T) {
	ctx := context.Background()
	nb := connectNB(t)
	if err := dbops.NewTx(nb).AddAPI(nb.Create(&nbdb.NBGlobal{NbCfg: 4})).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	c := &closingClient{Client: nb}
	tx := dbops.NewTx(c)
	q := dbops.Query(tx, nil, func(g *nbdb.NBGlobal) []any { return []any{&g.NbCfg} })
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	c.left.Store(1)
	c.armed.Store(true) // closes right after the decode took the cache
	gs, err := q.Rows()
	if err != nil || len(gs) != 1 || gs[0].NbCfg != 4 {
		t.Fatalf("Rows with the client closing mid-decode = %+v, %v; want the one NB_Global row, nb_cfg 4", gs, err)
	}
	c.left.Store(0) // closed before the decode
	if gs, err := q.Rows(); err == nil {
		t.Fatalf("Rows after the client closed = %+v, nil; want an error", gs)
	}
}
