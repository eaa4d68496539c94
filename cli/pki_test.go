package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
)

// TestPKICommands: init, issue (a node and a server), show, and the usage
// errors; an ssl: endpoint without certificates names the flags.
func TestPKICommands(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	if code, _, errs := runCLI("pki", "init", "--dir", dir); code != 0 {
		t.Fatalf("pki init: code %d %s", code, errs)
	}
	if code, _, errs := runCLI("pki", "init", "--dir", dir); code != 1 || !strings.Contains(errs, "--force") {
		t.Fatalf("pki init again: code %d %q, want 1 naming --force", code, errs)
	}
	code, o, errs := runCLI("pki", "issue", "--dir", dir, "--role", "node", "--name", "n1", "--out", out)
	if code != 0 || !strings.Contains(o, "--private-key "+filepath.Join(out, "n1-key.pem")) {
		t.Fatalf("pki issue: code %d out %q err %q", code, o, errs)
	}
	if code, _, errs = runCLI("pki", "issue", "--dir", dir, "--role", "server", "--name", "central", "--ip", "198.18.0.1", "--out", out); code != 0 {
		t.Fatalf("pki issue server: %d %s", code, errs)
	}
	code, o, errs = runCLI("pki", "show", "-o", "json", filepath.Join(out, "central.pem"))
	var in pki.Info
	if code != 0 || json.Unmarshal([]byte(o), &in) != nil || in.Role != "server" || in.Issuer != "ovlmgr control CA" || len(in.IPs) != 1 {
		t.Fatalf("pki show: code %d out %q err %q", code, o, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pki", "issue", "--dir", dir, "--role", "root", "--name", "x", "--out", out}, "allowed admin, control, server, node"},
		{[]string{"pki", "issue", "--dir", dir, "--name", "x", "--out", out}, "--role"},
		{[]string{"pki", "issue", "--dir", dir, "--role", "node", "--name", "n1", "--ip", "nope", "--out", out}, "not an IP"},
		{[]string{"pki", "init", "--dir", dir, "--only", "root"}, "allowed control, node"},
	} {
		if code, _, errs := runCLI(tc.args...); code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: code %d %q, want 2 naming %q", tc.args, code, errs, tc.want)
		}
	}
	for _, k := range []string{"OVLMGR_CA_CERT", "OVLMGR_CERT", "OVLMGR_PRIVATE_KEY"} {
		t.Setenv(k, "")
	}
	if code, _, errs := runCLI("--nb", "ssl:198.18.0.1:6641", "net", "list"); code == 0 || !strings.Contains(errs, "--ca-cert") {
		t.Errorf("net list on ssl: without certificates: code %d %q, want an error naming --ca-cert", code, errs)
	}
}
