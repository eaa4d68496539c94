package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/chassis"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"ovlmgr"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestNodeList(t *testing.T) {
	sb := ovsdbtest.StartSB(t)
	sb.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	sb.Run(t, "ovn-sbctl", "set", "Chassis", "n1", "hostname=host1")

	code, out, errs := runCLI("--sb", sb.Endpoint, "node", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "geneve:198.18.0.11") || !strings.Contains(out, "host1") {
		t.Fatalf("node list: code %d out %q err %q", code, out, errs)
	}
	code, out, errs = runCLI("--sb", sb.Endpoint, "node", "list", "-o", "json")
	var chs []chassis.Chassis
	if code != 0 || json.Unmarshal([]byte(out), &chs) != nil || len(chs) != 1 || chs[0].Encaps[0].IP != "198.18.0.11" || chs[0].Connected {
		t.Fatalf("node list -o json: code %d out %q err %q", code, out, errs)
	}
	if code, _, errs = runCLI("--sb", sb.Endpoint, "node", "list", "-o", "xml"); code != 2 || !strings.Contains(errs, "allowed are table, json, yaml") {
		t.Fatalf("node list -o xml: code %d err %q", code, errs)
	}
}

func TestNodeLabUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"node", "join", "--encap-ip", "198.18.0.11"}, 2, "--sb is required"},
		{[]string{"node", "join", "--sb", "tcp:198.18.0.1:6642"}, 2, "--encap-ip is required"},
		{[]string{"node", "join", "--sb", "tcp:198.18.0.1:6642", "--encap-ip", "198.18.0.11", "--datapath", "dpdk"}, 1, `--datapath "dpdk": allowed are system, netdev`},
		{[]string{"node", "join", "--sb", "tcp:198.18.0.1:6642", "--encap-ip", "nope"}, 1, `--encap-ip "nope": not an IP address`},
		{[]string{"lab", "exec", "n1"}, 2, "want NODE -- COMMAND"},
		{[]string{"lab", "env", "--dir", "/nonexistent/lab"}, 1, "no lab at /nonexistent/lab"},
		{[]string{"lab", "up", "--name", "Bad_Name"}, 1, `lab name "Bad_Name"`},
		{[]string{"lab", "up", "--nodes", "99", "--name", "x"}, 1, "lab nodes 99: allowed 1 to 50"},
		{[]string{"lab", "up", "--tls", "--insecure", "--name", "x"}, 1, "--tls and --insecure together"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: code %d err %q, want code %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}
