package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// TestSegmentationCLI drives router, net --router/--isolation and policy
// commands against a real NB server: good paths print what was done, bad
// input exits non-zero with one clear line and writes nothing.
func TestSegmentationCLI(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	n := netCLI{t, srv}
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := n.run(args...)
		if code != 0 {
			t.Fatalf("ovlmgr %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	ok("router", "create", "blue")
	ok("router", "create", "red")
	ok("net", "create", "web", "--subnet", "198.19.0.0/24", "--router", "blue")
	ok("net", "create", "app", "--subnet", "198.19.1.0/24", "--router", "blue", "--isolation", "default-deny")
	ok("net", "create", "app-red", "--subnet", "198.19.1.0/24", "--router", "red")
	ok("net", "create", "ops", "--subnet", "198.19.9.0/24")
	ok("router", "attach", "red", "ops")
	ok("router", "detach", "red", "ops")
	if out := ok("net", "show", "app"); !strings.Contains(out, "default-deny") || !strings.Contains(out, "blue") {
		t.Errorf("net show app:\n%s", out)
	}
	if out := ok("router", "show", "blue"); !strings.Contains(out, "198.19.0.1/24") || !strings.Contains(out, "blue-app") {
		t.Errorf("router show blue:\n%s", out)
	}
	ok("policy", "create", "p-allow", "--net", "app", "--allow", "--from", "web", "--proto", "tcp", "--port", "8080")
	ok("policy", "create", "p-deny", "--net", "app", "--deny", "--from", "any", "--proto", "tcp", "--port", "8080-8090", "--log")
	ok("policy", "create", "p-high", "--net", "app", "--allow", "--from", "198.19.9.0/24", "--priority", "500")
	out := ok("policy", "list", "--net", "app")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var names []string
	for _, l := range lines[1:] {
		names = append(names, strings.Fields(l)[2])
	}
	if strings.Join(names, ",") != "p-high,p-deny,p-allow,(default-deny)" {
		t.Errorf("policy list order = %v, want p-high, p-deny, p-allow, (default-deny):\n%s", names, out)
	}
	if out := ok("policy", "list"); !strings.Contains(out, "(default-allow)") || !strings.Contains(out, "ops ") {
		t.Errorf("policy list shows no isolation line for networks without policies:\n%s", out)
	}
	var ps []map[string]interface{}
	if err := json.Unmarshal([]byte(ok("policy", "list", "-o", "json")), &ps); err != nil || len(ps) != 3 {
		t.Errorf("policy list -o json: %v %v", ps, err)
	}
	if out := ok("policy", "show", "p-allow", "-o", "yaml"); !strings.Contains(out, "\nnetwork: app\n") || !strings.Contains(out, "aclPriority: 1200") {
		t.Errorf("policy show -o yaml:\n%s", out)
	}
	if out := ok("policy", "show", "p-allow"); !strings.Contains(out, "tcp.dst == 8080") {
		t.Errorf("policy show:\n%s", out)
	}

	bad := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "create", "x", "--net", "nosuch", "--allow"}, 1, `--net nosuch: network "nosuch": not found`},
		{[]string{"policy", "create", "x", "--net", "app", "--allow", "--from", "198.19.0.0/33"}, 2, `--from "198.19.0.0/33": invalid CIDR`},
		{[]string{"policy", "create", "x", "--net", "app", "--allow", "--proto", "tcp", "--port", "0"}, 2, `--port "0": want a port 1..65535`},
		{[]string{"policy", "create", "x", "--net", "app", "--allow", "--proto", "tcp", "--port", "70000"}, 2, `--port "70000"`},
		{[]string{"policy", "create", "x", "--net", "app", "--allow", "--deny"}, 2, "--allow and --deny together"},
		{[]string{"policy", "create", "x", "--net", "app"}, 2, "exactly one of --allow or --deny"},
		{[]string{"policy", "create", "x", "--net", "foreign", "--allow"}, 1, "not managed by ovlmgr"},
		{[]string{"policy", "create", "p-allow", "--net", "web", "--allow"}, 1, "already exists"},
		{[]string{"net", "update", "app", "--isolation", "closed"}, 2, `isolation "closed": allowed are default-deny, default-allow`},
		{[]string{"net", "create", "x", "--subnet", "198.19.5.0/24", "--isolation", "closed"}, 2, `isolation "closed"`},
		{[]string{"net", "create", "x", "--subnet", "198.19.5.0/24", "--router", "nosuch"}, 1, `router "nosuch": not found`},
		{[]string{"net", "create", "x", "--subnet", "198.19.0.128/25", "--router", "blue"}, 1, `overlaps network "web"`},
		{[]string{"router", "delete", "blue"}, 1, "networks attached: app, web (detach them, or use --force to detach and delete)\n"},
		{[]string{"router", "create", "bad name"}, 2, `router name "bad name"`},
		{[]string{"router", "attach", "nosuch", "ops"}, 1, `router "nosuch": not found`},
		{[]string{"router", "detach", "blue", "ops"}, 1, "not attached to any router"},
		{[]string{"net", "delete", "web"}, 1, "source (--from) of policies p-allow (on network app)"},
	}
	srv.Run(t, "ovn-nbctl", "ls-add", "foreign")
	before := rowCounts(t, srv)
	for _, tc := range bad {
		code, _, errs := n.run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("ovlmgr %s: exit %d, stderr %q; want exit %d and one line containing %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
	}
	if after := rowCounts(t, srv); after != before {
		t.Errorf("bad input wrote rows: %s -> %s", before, after)
	}

	// A --from network with no path to --net: created, exit 0, with a
	// warning on stderr naming both routers (or none); one on the same
	// router gets none.
	for _, tc := range []struct{ from, want string }{
		{"web", ""},
		{"ops", "network ops is on no router and network app is on router blue: no path between them"},
		{"app-red", "network app-red is on router red and network app is on router blue: no path between them"},
	} {
		code, out, errs := n.run("policy", "create", "p-reach-"+tc.from, "--net", "app", "--allow", "--from", tc.from, "-o", "json")
		var p struct{ Warnings []string }
		if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil {
			t.Errorf("policy create --from %s: exit %d, %v: %s%s", tc.from, code, err, out, errs)
			continue
		}
		if tc.want == "" && (errs != "" || len(p.Warnings) != 0) {
			t.Errorf("policy create --from %s (same router): warned %q %v", tc.from, errs, p.Warnings)
		}
		if tc.want != "" && (!strings.Contains(errs, "ovlmgr: warning: policy p-reach-"+tc.from+": --from "+tc.from+": "+tc.want) ||
			len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], tc.want)) {
			t.Errorf("policy create --from %s: stderr %q, warnings %v; want %q", tc.from, errs, p.Warnings, tc.want)
		}
		ok("policy", "delete", "p-reach-"+tc.from)
	}

	ok("policy", "delete", "p-allow")
	ok("net", "update", "app", "--isolation", "default-allow")
	ok("router", "delete", "blue", "--force")
	var web map[string]interface{}
	if err := json.Unmarshal([]byte(ok("net", "show", "web", "-o", "json")), &web); err != nil || web["router"] != nil {
		t.Errorf("web after router delete --force: %v %v; want no router", web, err)
	}
}

// rowCounts counts the rows of the tables segmentation writes.
func rowCounts(t *testing.T, srv *ovsdbtest.Server) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"Logical_Switch", "Logical_Switch_Port", "Logical_Router", "Logical_Router_Port", "ACL", "Port_Group", "Address_Set"} {
		out := srv.Run(t, "ovn-nbctl", "--bare", "--columns=_uuid", "list", table)
		b.WriteString(table + "=" + strconv.Itoa(strings.Count(out, "\n")) + " ")
	}
	return b.String()
}
