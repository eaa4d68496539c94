package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
)

// TestEncryptLab: the lab's userspace datapath cannot do OVN's IPsec.
// With encryption on, diagnose fails every node, naming why; off again,
// it says nothing about encryption. Container MTUs derived from the node
// leave room for ESP while encryption is on (a container attached before
// keeps its larger MTU, which node diagnose names), and none after.
func TestEncryptLab(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("en"), Gateways: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	nb := cniNB(t, l)
	cniNetwork(t, nb, "enc", "198.19.60.0/24")
	rt := newRuntime(t, l.Nodes[0])
	list := confList(t, "enc", "1.0.0", nil)
	attach := func() *container {
		c := newContainer(t, rt, list)
		c.mustAdd(t, ctx)
		return c
	}
	plain := attach()
	if got, want := plain.mtu(t), l.UnderlayMTU-58; got != want {
		t.Fatalf("encryption off: container MTU %d, want the underlay's %d - Geneve 58 = %d", got, l.UnderlayMTU, want)
	}
	encryption := func() []diagnose.Check {
		r, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
		var out []diagnose.Check
		for _, c := range r.Checks {
			if strings.HasPrefix(c.Name, "encryption") {
				out = append(out, c)
			}
		}
		return out
	}
	if cs := encryption(); len(cs) != 0 {
		t.Fatalf("encryption off: diagnose says %+v", cs)
	}
	if err := encrypt.Set(ctx, nb, true); err != nil {
		t.Fatal(err)
	}
	cs := encryption()
	if len(cs) != 2 {
		t.Fatalf("encryption on: %d encryption checks %+v, want one per node", len(cs), cs)
	}
	for i, c := range cs {
		if c.Status != diagnose.Fail || !strings.Contains(c.Detail, "tunnels of chassis "+l.Nodes[i].SystemID+" should be encrypted and are not: userspace datapath") {
			t.Errorf("encryption on, check %d: %s %q", i, c.Status, c.Detail)
		}
	}
	t.Logf("%s: %s (fix: %s)", cs[0].Name, cs[0].Detail, cs[0].Fix)
	// The node's own diagnose says the same from its datapath.
	n := l.Nodes[0]
	var node *diagnose.Check
	for _, c := range nodediag.Check(ctx, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath, NB: l.NB}, nil) {
		if c.Name == "encryption" {
			node = &c
		}
	}
	if node == nil || node.Status != diagnose.Fail || !strings.Contains(node.Detail, "userspace datapath") {
		t.Fatalf("node diagnose with encryption on: %+v; want a failed encryption check naming the userspace datapath", node)
	}
	// Encrypted tunnels carry ESP too: a container attached now gets 46
	// bytes less, and the one attached before is too large for them.
	enc := attach()
	if got, want := enc.mtu(t), l.UnderlayMTU-58-46; got != want {
		t.Errorf("encryption on: container MTU %d, want the underlay's %d - Geneve 58 - ESP 46 = %d", got, l.UnderlayMTU, want)
	}
	var flagged []string
	for _, c := range nodediag.Check(ctx, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath, NB: l.NB}, nil) {
		if strings.HasPrefix(c.Name, "port ") && c.Status == diagnose.Fail {
			flagged = append(flagged, c.Detail)
		}
	}
	if len(flagged) != 1 || !strings.Contains(flagged[0], "container "+plain.id[:12]) || !strings.Contains(flagged[0], "(Geneve + ESP)") {
		t.Errorf("node diagnose with encryption on flags %q; want only container %s, whose MTU leaves no room for ESP", flagged, plain.id[:12])
	}
	if err := encrypt.Set(ctx, nb, false); err != nil {
		t.Fatal(err)
	}
	if cs := encryption(); len(cs) != 0 {
		t.Fatalf("encryption off again: diagnose says %+v", cs)
	}
	if got, want := attach().mtu(t), l.UnderlayMTU-58; got != want {
		t.Errorf("encryption off again: container MTU %d, want %d", got, want)
	}
}
