package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// TestSiteCLI: site init/join/list, link's usage errors, policy --from
// SITE/NETWORK resolution and encrypt on/status/off against real NB, SB
// and IC databases (no ovn-ic: what needs it is in integration/TestSites).
func TestSiteCLI(t *testing.T) {
	prereq.Files(t, "/usr/share/ovn/ovn-ic-nb.ovsschema", "/usr/share/ovn/ovn-ic-sb.ovsschema")
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	nbs.Run(t, "ovn-nbctl", "init")
	icnb := ovsdbtest.Start(t, "/usr/share/ovn/ovn-ic-nb.ovsschema")
	icsb := ovsdbtest.Start(t, "/usr/share/ovn/ovn-ic-sb.ovsschema")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", nbs.Endpoint, "--sb", sbs.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	ic := []string{"--ic-nb", icnb.Endpoint, "--ic-sb", icsb.Endpoint}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout on success, stderr otherwise
	}{
		{append([]string{"site", "init"}, ic...), 0, "IC databases ready"},
		{[]string{"site", "join", "east"}, 0, "site east: joined"},
		{[]string{"site", "join", "west"}, 1, `already site "east"`},
		{[]string{"site", "list", "--ic-sb", icsb.Endpoint}, 0, "SITE  LOCAL  GATEWAY  HOSTNAME  ENCAPS"},
		{[]string{"router", "create", "blue"}, 0, "router blue created"},
		{[]string{"site", "link", "blue", "--transit", "ts1", "--ip", "198.18.254.1", "--nodes", "n1", "--ic-nb", icnb.Endpoint}, 2, `--ip "198.18.254.1": want ADDRESS/PREFIX`},
		{[]string{"site", "link", "blue", "--transit", "ts1", "--ip", "198.18.254.1/24", "--nodes", "n1"}, 2, "--ic-nb is required"},
		{[]string{"site", "link", "blue", "--ip", "198.18.254.1/24"}, 2, "--transit"},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--router", "blue"}, 0, "network web"},
		{[]string{"policy", "create", "p1", "--net", "web", "--allow", "--from", "west/db"}, 2, "--from SITE/NETWORK needs --ic-nb"},
		{[]string{"policy", "create", "p1", "--net", "web", "--allow", "--from", "west/db", "--ic-nb", icnb.Endpoint}, 1, `"west/db" is no network of another site's linked router`},
		{[]string{"encrypt", "on"}, 0, "encryption on"},
		{[]string{"encrypt", "status"}, 0, "encryption on"},
		{[]string{"encrypt", "off"}, 0, "encryption off"},
		{[]string{"encrypt", "status"}, 0, "encryption off"},
	} {
		code, out, e := run(c.args...)
		got := out
		if c.code != 0 {
			got = e
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, out, e, c.code, c.want)
		}
	}
}
