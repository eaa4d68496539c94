package main

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestTopologyWithoutSB: with the SB unreachable `topology` still draws
// what the NB knows (exit 0) and says what is missing; a bad -o is usage.
func TestTopologyWithoutSB(t *testing.T) {
	n := netCLI{t: t, srv: ovsdbtest.StartNB(t)}
	if code, _, e := n.run("router", "create", "r1"); code != 0 {
		t.Fatalf("router create: %s", e)
	}
	if code, _, e := n.run("net", "create", "web", "--subnet", "198.18.7.0/24", "--router", "r1"); code != 0 {
		t.Fatalf("net create: %s", e)
	}
	for _, f := range []string{"text", "svg", "html", "dot", "json"} {
		code, out, e := n.run("--sb", "unix:/nonexistent", "topology", "-o", f)
		if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "198.18.7.0/24") || !strings.Contains(out, "r1") {
			t.Errorf("-o %s: exit %d, stderr %q: want the NB's network and router:\n%.400s", f, code, e, out)
		}
		if f != "dot" && !strings.Contains(out, "southbound unreadable") && !strings.Contains(out, `"sbError": "connect to SB unix:/nonexistent`) {
			t.Errorf("-o %s does not say the SB could not be read:\n%.400s", f, out)
		}
	}
	if code, _, e := n.run("topology", "-o", "png"); code != 2 || !strings.Contains(e, "allowed are text, dot, svg, html, json") {
		t.Errorf("-o png: exit %d, %q; want usage 2 naming the formats", code, e)
	}
}

// TestTopologyIPv6OnlyContainer: a container on an IPv6-only network is
// drawn with its address and its DNS name (before: no address, and its
// container ID for a name).
func TestTopologyIPv6OnlyContainer(t *testing.T) {
	n := netCLI{t: t, srv: ovsdbtest.StartNB(t)}
	if code, _, e := n.run("net", "create", "v6", "--subnet", "fd00:198:19:77::/64"); code != 0 {
		t.Fatalf("net create: %s", e)
	}
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, n.srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	ip6 := netip.MustParseAddr("fd00:198:19:77::50")
	if _, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "v6", Node: "n1", Container: "3f9c2a1b77aa", IfName: "eth0",
		Subnet6: netip.MustParsePrefix("fd00:198:19:77::/64"), IP6: ip6}); err != nil {
		t.Fatal(err)
	}
	if _, err := dns.Register(ctx, nb, dns.Host{Network: "v6", Name: "web6", ContainerID: "3f9c2a1b77aa", IPs: []net.IP{ip6.AsSlice()}}); err != nil {
		t.Fatal(err)
	}
	code, out, e := n.run("--sb", "unix:/nonexistent", "topology", "-o", "json")
	if code != 0 {
		t.Fatalf("topology: exit %d: %s", code, e)
	}
	var g struct {
		Containers []struct{ Name, IP string }
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("topology -o json: %v\n%.400s", err, out)
	}
	if len(g.Containers) != 1 || g.Containers[0].IP != ip6.String() || g.Containers[0].Name != "web6" {
		t.Errorf("containers %+v; want web6 at %s", g.Containers, ip6)
	}
}
