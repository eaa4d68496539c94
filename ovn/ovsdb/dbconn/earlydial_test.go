package dbconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
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
