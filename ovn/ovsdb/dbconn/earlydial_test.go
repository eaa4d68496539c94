package dbconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
)

// The connection to a remote endpoint starts before the client's model is
// built (in a fresh process, the CNI plugin's, the model and client take
// milliseconds the TCP and TLS round trips need not wait for), the client
// takes that connection instead of dialing again, and a connection no
// client took (the model failed) is closed.
func TestDialBeforeModel(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	proxy := ovsdbtest.StartProxy(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	build := func() (model.ClientDBModel, error) {
		for deadline := time.Now().Add(5 * time.Second); proxy.Accepted() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return model.ClientDBModel{}, errors.New("no connection to the server while the model was built")
			}
		}
		return nbdb.FullDatabaseModel()
	}
	c, err := connectModel(ctx, build, proxy.Endpoint, Options{What: "NB"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Echo(ctx); err != nil {
		t.Errorf("echo on the early connection: %v", err)
	}
	if n := proxy.Accepted(); n != 1 {
		t.Errorf("%d connections for one connect; want 1, the early one", n)
	}
	c.Close()

	failed := errors.New("model refused")
	before := proxy.Accepted()
	_, err = connectModel(ctx, func() (model.ClientDBModel, error) {
		for deadline := time.Now().Add(5 * time.Second); proxy.Accepted() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				break
			}
		}
		return model.ClientDBModel{}, failed
	}, proxy.Endpoint, Options{What: "NB"})
	if !errors.Is(err, failed) {
		t.Fatalf("connect with a failing model: %v; want %v", err, failed)
	}
	for deadline := time.Now().Add(5 * time.Second); proxy.Open() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after the connect failed; want the early one closed", proxy.Open())
		}
	}
}

// A caller on a thread inside another network namespace (a node's, entered
// with ns.Do; node join from `ovlmgr lab up` is one) connects from that
// namespace: the connection is not started ahead by a goroutine, which
// would run on a thread of the process's namespace and reach another
// server or none. Here the server listens only inside the namespace, on
// its loopback.
func TestDialFromThreadNetNS(t *testing.T) {
	prereq.Root(t)
	srv := ovsdbtest.StartNB(t)
	target, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = target.Close()
		_ = testutils.UnmountNS(target)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = target.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		proxy := ovsdbtest.StartProxy(t, srv) // listens in target
		c, err := connectModel(ctx, nbdb.FullDatabaseModel, proxy.Endpoint, Options{What: "NB"})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Echo(ctx)
	})
	if err != nil {
		t.Fatalf("connect from a thread in the server's namespace: %v", err)
	}
	here := make(chan bool)
	Beside(func(h bool) { here <- h })
	if !<-here {
		t.Error("Beside from the test's own namespace: here false")
	}
	err = target.Do(func(ns.NetNS) error {
		Beside(func(h bool) { here <- h })
		return nil
	})
	if err != nil || <-here {
		t.Errorf("Beside from a thread in another namespace: here true (%v)", err)
	}
}
