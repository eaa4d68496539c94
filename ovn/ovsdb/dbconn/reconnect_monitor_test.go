package dbconn_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// Monitors started while the client reconnects, again and again, all
// return: a reconnect restarts the monitors holding the client's RPC lock,
// and a Monitor that took the monitors lock first and then waited for the
// RPC lock deadlocked with it (libovsdb v0.8.0), leaving the client and
// every later Monitor on it blocked for good. A long-lived client (the
// node's CNI server) met it under load after an inactivity-probe
// disconnect. Fails without the lock order of the libovsdb copy's Monitor.
func TestMonitorDuringReconnects(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A libovsdb client as dbconn.Connect makes it (reconnecting), without
	// dbconn's wrapper: the deadlock is the client's own.
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	retry := backoff.NewConstantBackOff(time.Millisecond)
	quiet := logr.Discard()
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(srv.Endpoint), client.WithReconnect(dbconn.DefaultTimeout, retry),
		client.WithLogger(&quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Closed only on success: a deadlocked client would block Close too.
	drop, ok := c.(interface{ DropConnection() })
	if !ok {
		t.Fatalf("client %T cannot drop its connection", c)
	}
	// Standing monitors, which every reconnect restarts.
	for i := 0; i < 3; i++ {
		if _, err := c.Monitor(ctx, c.NewMonitor(client.WithTable(&nbdb.LogicalSwitch{}))); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the reconnects
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				drop.DropConnection()
			}
		}
	}()
	const monitors = 400
	done := make(chan int)
	go func() { // monitors started and cancelled meanwhile, on a client that is often not connected
		var ok int
		for i := 0; i < monitors && ctx.Err() == nil; i++ {
			mctx, mcancel := context.WithTimeout(ctx, 2*time.Second)
			cookie, err := c.Monitor(mctx, c.NewMonitor(client.WithTable(&nbdb.LogicalRouter{})))
			if err == nil {
				ok++
				_ = c.MonitorCancel(mctx, cookie)
			}
			mcancel()
		}
		done <- ok
	}()
	select {
	case ok := <-done:
		t.Logf("%d of %d monitors started between reconnects", ok, monitors)
	case <-time.After(45 * time.Second):
		close(stop)
		t.Fatal("a Monitor during a reconnect has not returned in 45 s: the client is deadlocked")
	}
	close(stop)
	wg.Wait()
	// The client still works once its last reconnect is through.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := c.Monitor(ctx, c.NewMonitor(client.WithTable(&nbdb.LoadBalancer{})))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor 10 s after the reconnects: %v", err)
		}
	}
	c.Close()
}
