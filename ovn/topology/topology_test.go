package topology

import (
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
)

func threeNodes(connected ...bool) []chassis.Chassis {
	var out []chassis.Chassis
	for i, name := range []string{"n1", "n2", "n3"} {
		out = append(out, chassis.Chassis{Name: name, Connected: connected[i],
			Encaps: []chassis.Encap{{Type: "geneve", IP: "198.18.0.1" + string(rune('1'+i))}}})
	}
	return out
}

func tunnel(t *testing.T, g *Graph, a, b string) Tunnel {
	t.Helper()
	for _, tn := range g.Tunnels {
		if tn.A == a && tn.B == b {
			return tn
		}
	}
	t.Fatalf("no tunnel %s-%s in %+v", a, b, g.Tunnels)
	return Tunnel{}
}

// TestTunnelStates: SB gives one tunnel per pair (down when a chassis is
// not connected); each node's OVS view refines it: a missing interface,
// a BFD state; a broken end is not overwritten by the healthy other end.
func TestTunnelStates(t *testing.T) {
	g := &Graph{}
	g.nodesAndTunnels(threeNodes(true, true, false))
	if len(g.Tunnels) != 3 {
		t.Fatalf("%d tunnels; want 3", len(g.Tunnels))
	}
	if tn := tunnel(t, g, "n1", "n2"); tn.State != TunnelUp || tn.Source != "sb" {
		t.Errorf("n1-n2 %+v; want up from sb", tn)
	}
	if tn := tunnel(t, g, "n1", "n3"); tn.State != TunnelDown || tn.Detail != "ovn-controller not connected on n3" {
		t.Errorf("n1-n3 %+v; want down, n3 not connected", tn)
	}
	// n1 has a tunnel to n2 with BFD down and none to n3; n2 sees n1 fine.
	g.AddNodeTunnels("n1", []NodeTunnel{{RemoteIP: "198.18.0.12", BFD: "down"}})
	g.AddNodeTunnels("n2", []NodeTunnel{{RemoteIP: "198.18.0.11", BFD: "up"}, {RemoteIP: "198.18.0.13"}})
	if tn := tunnel(t, g, "n1", "n2"); tn.State != "down" || tn.Source != "bfd" || tn.Detail != "BFD down on n1" {
		t.Errorf("n1-n2 %+v; want down from bfd on n1, kept when n2 reports up", tn)
	}
	if tn := tunnel(t, g, "n1", "n3"); tn.State != TunnelMissing || tn.Source != "ovs" {
		t.Errorf("n1-n3 %+v; want missing (no interface on n1)", tn)
	}
	if tn := tunnel(t, g, "n2", "n3"); tn.State != TunnelDown || tn.Source != "sb" {
		t.Errorf("n2-n3 %+v; want still down from sb (n3 not connected)", tn)
	}
	g2 := &Graph{}
	g2.nodesAndTunnels(threeNodes(true, true, true))
	g2.AddNodeTunnels("n1", []NodeTunnel{{RemoteIP: "198.18.0.12"}, {RemoteIP: "198.18.0.13"}})
	if tn := tunnel(t, g2, "n1", "n2"); tn.State != TunnelUp || tn.Source != "ovs" {
		t.Errorf("n1-n2 %+v; want up, confirmed by ovs", tn)
	}
}
