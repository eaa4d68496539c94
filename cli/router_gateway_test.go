package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// TestRouterGatewayCLI: router gateway set/show/unset against real NB and
// SB; bad input prints one line naming the flag and value, exits non-zero
// and writes nothing; router show lists the gateway and its NAT rules.
func TestRouterGatewayCLI(t *testing.T) {
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n2", "geneve", "198.18.0.12")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", nbs.Endpoint, "--sb", sbs.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, a := range [][]string{{"router", "create", "blue"}, {"net", "create", "web", "--subnet", "198.19.0.0/24", "--router", "blue"}} {
		if code, _, e := run(a...); code != 0 {
			t.Fatalf("%v: %d %s", a, code, e)
		}
	}
	set := func(ip, hop, nodes string) []string {
		return []string{"router", "gateway", "set", "blue", "--external-net", "198.18.100.0/24", "--ip", ip, "--next-hop", hop, "--nodes", nodes}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{set("198.18.100.10", "198.18.100.1", "n1,n7"), `--nodes "n7": no such chassis in SB (known: n1, n2)`},
		{set("198.18.101.10", "198.18.100.1", "n1"), `--ip 198.18.101.10: outside the external net 198.18.100.0/24`},
		{set("198.19.0.50", "198.18.100.1", "n1"), `--ip 198.19.0.50: outside the external net`},
		{set("198.18.100.10", "198.18.0.1", "n1"), `--next-hop 198.18.0.1: outside the external net 198.18.100.0/24`},
		{set("nope", "198.18.100.1", "n1"), `--ip "nope": not an IP address`},
		{[]string{"router", "gateway", "set", "blue", "--ip", "198.18.100.10"}, `--external-net`},
	} {
		code, _, e := run(c.args...)
		if code == 0 || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", c.args[3:], code, e, c.want)
		}
	}
	if code, _, _ := run("router", "gateway", "show", "blue"); code == 0 {
		t.Error("bad input left a gateway behind")
	}
	if code, out, e := run(set("198.18.100.10", "198.18.100.1", "n2,n1")...); code != 0 || !strings.Contains(out, "nodes n2,n1") {
		t.Fatalf("set: %d %q %s", code, out, e)
	}
	code, out, e := run("router", "show", "blue")
	if code != 0 {
		t.Fatalf("router show: %d %s", code, e)
	}
	for _, want := range []string{"EXTERNAL IP    198.18.100.10", "n2 (priority 20, standby), n1 (priority 10, standby)", "ACTIVE         none yet", "web  snat  198.19.0.0/24  198.18.100.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("router show lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = run("router", "show", "blue", "-o", "json")
	var v struct {
		Name    string `json:"name"`
		Gateway struct {
			ExternalIP string   `json:"externalIP"`
			Nodes      []string `json:"nodes"`
			Active     string   `json:"active"`
		} `json:"gateway"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Name != "blue" || v.Gateway.ExternalIP != "198.18.100.10" || len(v.Gateway.Nodes) != 2 {
		t.Errorf("router show -o json: %v %+v\n%s", err, v, out)
	}
	// Dual-stack: the IPv6 flags; family mismatches and an address outside
	// --external-net6 name the flag and write nothing.
	if code, _, e := run("net", "create", "six", "--subnet6", "fd00:198:19:6::/64", "--router", "blue"); code != 0 {
		t.Fatalf("net create six: %d %s", code, e)
	}
	set6 := func(ip6, hop6 string) []string {
		return append(set("198.18.100.10", "198.18.100.1", "n1"), "--external-net6", "fd00:198:18:100::/64", "--ip6", ip6, "--next-hop6", hop6)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{set6("fd00:198:18:101::10", "fd00:198:18:100::1"), `--ip6 fd00:198:18:101::10: outside the external net6 fd00:198:18:100::/64`},
		{set6("fd00:198:18:100::10", "198.18.100.1"), `--next-hop6 198.18.100.1: not an IPv6 address`},
		{set("fd00:198:18:100::10", "198.18.100.1", "n1"), `--ip "fd00:198:18:100::10": an IPv6 value; give the IPv6 side with --ip6`},
		{append(set("198.18.100.10", "198.18.100.1", "n1"), "--ip6", "fd00:198:18:100::10"), `--external-net6`},
	} {
		code, _, e := run(c.args...)
		if code == 0 || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", c.args[3:], code, e, c.want)
		}
	}
	if _, out, _ := run("router", "show", "blue"); strings.Contains(out, "fd00:198:18:100") {
		t.Errorf("bad IPv6 input changed the gateway:\n%s", out)
	}
	if code, out, e := run(set6("fd00:198:18:100::10", "fd00:198:18:100::1")...); code != 0 || !strings.Contains(out, "gateway fd00:198:18:100::10 on fd00:198:18:100::/64") {
		t.Fatalf("set dual-stack: %d %q %s", code, out, e)
	}
	_, out, _ = run("router", "gateway", "show", "blue")
	for _, want := range []string{"EXTERNAL IP6   fd00:198:18:100::10", "NEXT HOP6      fd00:198:18:100::1", "six  snat  fd00:198:19:6::/64  fd00:198:18:100::10"} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway show lacks %q:\n%s", want, out)
		}
	}
	if code, out, e := run("router", "gateway", "unset", "blue"); code != 0 || !strings.Contains(out, "gateway removed") {
		t.Fatalf("unset: %d %q %s", code, out, e)
	}
	if _, out, _ := run("router", "show", "blue"); !strings.Contains(out, "GATEWAY   none") && !strings.Contains(out, "GATEWAY  none") {
		t.Errorf("router show after unset:\n%s", out)
	}
	// IPv6-only: the IPv6 flags alone.
	only6 := []string{"router", "gateway", "set", "blue", "--external-net6", "fd00:198:18:100::/64", "--ip6", "fd00:198:18:100::10",
		"--next-hop6", "fd00:198:18:100::1", "--nodes", "n1"}
	if code, _, e := run(append(only6, "--ip", "198.18.100.10")...); code == 0 || !strings.Contains(e, "--external-net") {
		t.Errorf("IPv6 flags and --ip alone: exit %d %q; want a missing --external-net", code, e)
	}
	if code, out, e := run(only6...); code != 0 || !strings.Contains(out, "gateway fd00:198:18:100::10") {
		t.Fatalf("set IPv6-only: %d %q %s", code, out, e)
	}
	if _, out, _ := run("router", "gateway", "show", "blue"); strings.Contains(out, "EXTERNAL IP ") || !strings.Contains(out, "six  snat  fd00:198:19:6::/64") || strings.Contains(out, "web  snat") {
		t.Errorf("gateway show of an IPv6-only gateway:\n%s", out)
	}
}
