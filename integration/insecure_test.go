package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// TestInsecureLab keeps the plain lab (`lab up --insecure`, TLS being the
// default) working: NB and SB on plain TCP, no certificates in `lab env`,
// nodes with the NB's unix socket; what --insecure warns about holds (a
// process in a node namespace writes the NB over plain TCP, here a
// network); containers on two nodes ping each other over it.
func TestInsecureLab(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("tdi"), Gateways: []string{"none"}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if l.TLS != nil || l.NBTCP != "tcp:"+lab.CentralIP+":6641" || l.SBTCP != "tcp:"+lab.CentralIP+":6642" || strings.Contains(l.Env(), dbconn.EnvCert) {
		t.Fatalf("insecure lab: TLS %+v, NB %s, SB %s, env %q; want plain TCP and no certificates", l.TLS, l.NBTCP, l.SBTCP, l.Env())
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	err = n1.Do(func() error {
		nb, err := dbconn.ConnectNB(ctx, l.NBTCP)
		if err != nil {
			return err
		}
		defer nb.Close()
		_, err = network.Create(ctx, nb, network.Spec{Name: "tdplain", Subnet: "198.19.40.0/24"})
		return err
	})
	if err != nil {
		t.Fatalf("network create from node n1 over %s: %v; want the plain NB to take it", l.NBTCP, err)
	}
	list := confList(t, "tdplain", "1.0.0", nil)
	a := newContainer(t, newRuntime(t, n1), list)
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, n2), list)
	b.mustAdd(t, ctx)
	if err := a.ping(ctx, b.ip()); err != nil {
		t.Fatalf("n1 -> n2 on the insecure lab: %v", err)
	}
	if err := b.ping(ctx, a.ip()); err != nil {
		t.Fatalf("n2 -> n1 on the insecure lab: %v", err)
	}
}
