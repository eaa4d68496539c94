package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/events"
)

// TestEventsFromAgent: `ovlmgr events` without --follow reads a node's ACL
// log through the node exporter's /acl-log endpoint (here the real handler
// on a real log file) and prints the verdicts in ovlmgr's terms, filtered by
// --policy; -o json is one event per line.
func TestEventsFromAgent(t *testing.T) {
	nb := ovsdbtest.StartNB(t)
	logf := filepath.Join(t.TempDir(), "ovn-controller.log")
	lines := "2026-12-04T21:00:00.000Z|00001|vlog|INFO|opened log file\n" +
		`2026-12-04T21:00:01.000Z|00042|acl_log(ovn_pinctrl0)|INFO|name="deny-db", verdict=drop, severity=warning, direction=to-lport: tcp,vlan_tci=0x0000,nw_src=198.18.0.2,nw_dst=198.18.1.3,tp_src=41532,tp_dst=5432,tcp_flags=syn` + "\n" +
		`2026-12-04T21:00:02.000Z|00043|acl_log(ovn_pinctrl0)|INFO|name="web", verdict=allow, severity=info, direction=to-lport: icmp,vlan_tci=0x0000,nw_src=198.18.0.2,nw_dst=198.18.1.3,icmp_type=8,icmp_code=0` + "\n"
	if err := os.WriteFile(logf, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := httptest.NewServer(events.ACLLogHandler(events.FileSource{Node: "n2", Path: logf}))
	defer agent.Close()

	code, out, errs := runCLI("--nb", nb.Endpoint, "events", "--agent", agent.URL)
	want := []string{
		"denied by policy deny-db: 198.18.0.2:41532 -> 198.18.1.3:5432/tcp on node n2",
		"allowed by policy web: 198.18.0.2 -> 198.18.1.3/icmp on node n2",
	}
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, want[0]) || !strings.Contains(out, want[1]) {
		t.Fatalf("events --agent: code %d out %q err %q; want the two lines %q", code, out, errs, want)
	}
	code, out, errs = runCLI("--nb", nb.Endpoint, "events", "--agent", agent.URL, "--policy", "deny-db", "-o", "json")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"policy":"deny-db"`) || !strings.Contains(out, `"verdict":"denied"`) {
		t.Fatalf("events --policy deny-db -o json: code %d out %q err %q", code, out, errs)
	}
}

func TestObserveUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"events", "web"}, 2, "events takes no arguments"},
		{[]string{"events", "-o", "xml"}, 2, "allowed are text, json"},
		{[]string{"exporter", "extra"}, 2, "exporter takes no arguments"},
		{[]string{"exporter", "--listen", "nohost:port:x"}, 1, "exporter: --listen nohost:port:x"},
		{[]string{"exporter", "--lab", "nolab-x"}, 1, "nolab-x"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: code %d err %q, want code %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}
