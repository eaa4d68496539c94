package attach

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
)

// monitoredNBServer starts an NB with network "web" (198.19.0.0/24) and
// returns it, an admin client and a client with the session's NB monitor
// running; both clients close at test end.
func monitoredNBServer(t *testing.T, ctx context.Context) (*ovsdbtest.Server, client.Client, client.Client) {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	var cs []client.Client
	for i := 0; i < 2; i++ {
		c, err := dbconn.ConnectNB(ctx, srv.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cs = append(cs, c)
	}
	if _, err := network.Create(ctx, cs[0], network.Spec{Name: "web", Subnet: "198.19.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	if !monitorNB(ctx, cs[1]) {
		t.Fatal("monitor did not start")
	}
	return srv, cs[0], cs[1]
}

// counted counts the transactions sent through it.
type counted struct {
	client.Client
	sent *atomic.Int32
}

func (c counted) Transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	c.sent.Add(1)
	return c.Client.Transact(ctx, ops...)
}

// TestMonitorAnswersADDReads: with the session's NB monitor running, the
// three reads ADD makes before its claim (the network, its DNS rows and
// pool hints, the underlay) send no transaction and read what the server
// holds, even after a change; a network made after the monitor's last
// update is read from the server; and the session lends the monitored
// client only for its own NB client with a monitor.
func TestMonitorAnswersADDReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, admin, c := monitoredNBServer(t, ctx)
	if err := network.SetPathMTU(ctx, admin, 1400); err != nil {
		t.Fatal(err)
	}
	// The monitor started before that write: wait for it to carry it.
	carried := func() bool {
		for _, r := range c.Cache().Table(nbdb.NBGlobalTable).Rows() {
			if r.(*nbdb.NBGlobal).ExternalIDs[network.KeyPathMTU] == "1400" {
				return true
			}
		}
		return false
	}
	for i := 0; !carried(); i++ {
		if i > 500 {
			t.Fatal("the monitor has no NB_Global row after the path MTU was set")
		}
		time.Sleep(2 * time.Millisecond)
	}
	sent := &atomic.Int32{}
	m := monitoredNB{kept{counted{Client: c, sent: sent}}}
	read := func() (*network.Network, *dns.Network, network.Underlay) {
		t.Helper()
		n, err := network.Lookup(ctx, m, "web")
		if err != nil {
			t.Fatal(err)
		}
		d, err := dns.Ensure(ctx, m, "web")
		if err != nil {
			t.Fatal(err)
		}
		u, err := network.ReadUnderlay(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return n, d, u
	}
	n, d, u := read()
	if n.Subnet != "198.19.0.0/24" || d.DNSUUID == "" || u.PathMTU != 1400 {
		t.Fatalf("read network %+v, DNS %+v, underlay %+v", n, d, u)
	}
	if got := sent.Load(); got != 0 {
		t.Fatalf("ADD's reads sent %d transactions through the monitored client, want 0", got)
	}
	// A change reaches the reads once the monitor carries it.
	if err := network.SetPathMTU(ctx, admin, 1300); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, _, u = read(); u.PathMTU == 1300 {
			break
		} else if i > 500 {
			t.Fatalf("underlay path MTU %d after the change, want 1300", u.PathMTU)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// A network the monitor has not got (a request right after net
	// create) is read from the server: here a client whose monitor has
	// no rows at all.
	if _, err := network.Create(ctx, admin, network.Spec{Name: "db", Subnet: "198.19.1.0/24"}); err != nil {
		t.Fatal(err)
	}
	bare, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	var missed atomic.Int32
	if n, err := network.Lookup(ctx, monitoredNB{kept{counted{Client: bare, sent: &missed}}}, "db"); err != nil || n.Subnet != "198.19.1.0/24" {
		t.Fatalf("network db from the server: %+v, %v", n, err)
	}
	if missed.Load() != 1 {
		t.Fatalf("a read the cache could not answer sent %d transactions, want 1", missed.Load())
	}

	// The session: its own NB client comes back monitored; anything else,
	// and a nil session, as given.
	s := &Session{nb: c, nbMonitor: true}
	if _, ok := s.reads(kept{c}).(dbops.Monitored); !ok {
		t.Error("the session's NB client with its monitor is not lent monitored")
	}
	if _, ok := s.reads(admin).(dbops.Monitored); ok {
		t.Error("another client is lent monitored")
	}
	s.nbMonitor = false
	if _, ok := s.reads(kept{c}).(dbops.Monitored); ok {
		t.Error("the session's NB client without a monitor is lent monitored")
	}
	var none *Session
	if got := none.reads(admin); got != admin {
		t.Error("a nil session changed the client")
	}
}

// TestMonitorBesideWatches: the session's NB monitor, busy with updates
// (every claim and refill changes a switch's external_ids), leaves the
// client's watches (the slow path's and the refill's) and transactions
// working: a watch started while its updates arrive gets its reply.
// libovsdb's update3 handler (monitor_cond_since) waits for the monitors
// lock that Monitor holds until its reply is read, on the loop that reads
// it: every request on the client then hung until its deadline.
func TestMonitorBesideWatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, admin, c := monitoredNBServer(t, ctx)
	done := make(chan struct{})
	writes := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				writes <- nil
				return
			default:
			}
			if _, err := dbconn.Transact(ctx, admin, dbops.SetKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs("web")},
				"external_ids", map[string]string{"churn": fmt.Sprint(i)})); err != nil {
				writes <- err
				return
			}
		}
	}()
	defer func() {
		close(done)
		if err := <-writes; err != nil {
			t.Errorf("switch updates: %v", err)
		}
	}()
	for i := 0; i < 100; i++ {
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		lsp := &nbdb.LogicalSwitchPort{Name: fmt.Sprintf("p%d", i)}
		w, err := watch.Start(wctx, c, []watch.Table{{Model: lsp, Cond: []model.Condition{{Field: &lsp.Name, Function: ovsdb.ConditionEqual, Value: lsp.Name}},
			Fields: []interface{}{&lsp.Name}}})
		wcancel()
		if err != nil {
			t.Fatalf("watch %d, started while the session monitor's updates arrive: %v", i, err)
		}
		w.Close()
	}
	if _, err := network.Lookup(ctx, c, "web"); err != nil {
		t.Fatalf("a read on the client after the watches: %v", err)
	}
}
