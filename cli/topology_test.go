package main

import (
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
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
