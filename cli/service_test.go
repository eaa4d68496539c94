package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

func TestServiceCommands(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ovl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", srv.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, args := range [][]string{{"router", "create", "r1"}, {"net", "create", "web", "--subnet", "198.18.0.0/24", "--router", "r1"}} {
		if code, out, errs := ovl(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	code, out, errs := ovl("service", "create", "api", "--net", "web", "--vip", "198.18.0.100:80", "--backend", "198.18.0.5:8080")
	if code != 0 || !strings.Contains(out, "api.web.ovl") || !strings.Contains(out, "198.18.0.5:8080") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = ovl("service", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"vip": "198.18.0.100:80/tcp"`) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out, _ = ovl("service", "show", "api", "--net", "web")
	if code != 0 || !strings.Contains(out, "switches:") || !strings.Contains(out, "web") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	// Bad input: one clear line, exit 1 (2 for usage).
	code, _, errs = ovl("service", "create", "x", "--net", "web", "--vip", "198.18.0.101:80", "--backend", "nobody:80")
	if code != 1 || !strings.Contains(errs, `--backend nobody:80: backend not found: no container named "nobody" in network "web"`) {
		t.Fatalf("bad backend: exit %d: %s", code, errs)
	}
	code, _, errs = ovl("service", "create", "x", "--net", "web")
	if code != 2 || !strings.Contains(errs, "service create: --vip is required (see ovlmgr service create --help)") {
		t.Fatalf("missing --vip: exit %d: %s", code, errs)
	}
	code, _, errs = ovl("service", "create", "x", "--net", "web", "--vip", "1.2.3.4:80", "--selector", "novalue")
	if code != 2 || !strings.Contains(errs, `--selector "novalue": want label=value`) {
		t.Fatalf("bad selector: exit %d: %s", code, errs)
	}
	// The library names the input ("vip"); the CLI shows its flag.
	code, _, errs = ovl("service", "create", "x", "--net", "web", "--vip", "198.18.0.60:0", "--backend", "198.18.0.11:80")
	if code != 1 || !strings.Contains(errs, `--vip "198.18.0.60:0": port "0": allowed are 1-65535`) {
		t.Fatalf("bad VIP port: exit %d: %s", code, errs)
	}
	code, out, _ = ovl("service", "delete", "api", "--net", "web")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: exit %d: %s", code, out)
	}
	code, _, errs = ovl("service", "show", "api", "--net", "web")
	if code != 1 || !strings.Contains(errs, "service not found") {
		t.Fatalf("show deleted: exit %d: %s", code, errs)
	}
}

func TestNetCreateDomain(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ovl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", srv.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := ovl("router", "create", "r1"); code != 0 {
		t.Fatalf("router create: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := ovl("net", "create", "corp", "--subnet", "198.19.40.0/24", "--domain", "Corp.Test.", "--router", "r1"); code != 0 {
		t.Fatalf("net create --domain: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ := ovl("net", "show", "corp")
	if code != 0 || !strings.Contains(out, "corp.test") {
		t.Fatalf("net show: exit %d\n%s", code, out)
	}
	if got := srv.Run(t, "ovn-nbctl", "get", "logical_switch", "corp", `external_ids:"ovlmgr.io/domain"`); strings.Trim(strings.TrimSpace(got), `"`) != "corp.test" {
		t.Fatalf("stored domain = %s", got)
	}
	// The default is stored too.
	if code, _, errs := ovl("net", "create", "plain", "--subnet", "198.19.41.0/24"); code != 0 {
		t.Fatalf("net create: %s", errs)
	}
	if got := srv.Run(t, "ovn-nbctl", "get", "logical_switch", "plain", `external_ids:"ovlmgr.io/domain"`); strings.TrimSpace(got) != "ovl" {
		t.Fatalf("default domain = %s", got)
	}
	code, _, errs := ovl("net", "create", "bad", "--subnet", "198.19.42.0/24", "--domain", "a..b")
	if code == 0 || !strings.Contains(errs, `--domain "a..b"`) {
		t.Fatalf("bad domain: exit %d: %s", code, errs)
	}
	// A service on the network resolves under its domain.
	code, out, errs = ovl("service", "create", "api", "--net", "corp", "--vip", "198.19.40.100:80", "--backend", "198.19.40.5:80")
	if code != 0 || !strings.Contains(out, "api.corp.corp.test") {
		t.Fatalf("service on corp: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = ovl("dns", "list", "--net", "corp")
	if code != 0 || !strings.Contains(out, "api.corp.corp.test") || !strings.Contains(out, "100.40.19.198.in-addr.arpa") {
		t.Fatalf("dns list: exit %d\n%s", code, out)
	}
	// Deleting the network removes its services and DNS row.
	if code, _, errs := ovl("net", "delete", "corp"); code != 0 {
		t.Fatalf("net delete: %s", errs)
	}
	for _, table := range []string{"load_balancer", "dns"} {
		if out := strings.TrimSpace(srv.Run(t, "ovn-nbctl", "--bare", "--columns=_uuid", "find", table, `external_ids:"ovlmgr.io/network"=corp`)); out != "" {
			t.Fatalf("%s rows left after net delete: %s", table, out)
		}
	}
}
