package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/health"
)

// TestTroubleshootCommands checks the trace and diagnose commands' input
// handling and diagnose's text/json output on real (empty) databases.
func TestTroubleshootCommands(t *testing.T) {
	nb, sb := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	nb.Run(t, "ovn-nbctl", "init")
	ovl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", nb.Endpoint, "--sb", sb.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"trace", "a"}, 2, "want FROM TO"},
		{[]string{"trace", "a", "b", "--proto", "sctp"}, 2, `--proto "sctp": allowed are icmp, tcp, udp`},
		{[]string{"trace", "a", "b", "--port", "22"}, 2, "--port 22: only with --proto tcp or udp"},
		{[]string{"trace", "a", "b", "--src-ip", "nope"}, 2, `--src-ip "nope": not an IP address`},
		{[]string{"trace", "a", "b", "-o", "yaml"}, 2, `--output "yaml": allowed are text, json`},
		{[]string{"trace", "web-1", "db-1"}, 1, `FROM "web-1": no container, port or IP of that name`},
		{[]string{"diagnose", "extra"}, 2, "want no arguments"},
		{[]string{"diagnose", "-o", "table"}, 2, `--output "table": allowed are text, json`},
		{[]string{"diagnose", "mtu", "a"}, 2, "want FROM TO"},
		{[]string{"diagnose", "--lab", "nosuchlab"}, 1, "no lab at"},
	} {
		code, out, errs := ovl(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%v: exit %d (%s%s); want %d with %q", tc.args, code, out, errs, tc.code, tc.err)
		}
	}
	// No northd: nobody holds its SB lock, so diagnose fails even without --sync.
	code, out, errs := ovl("diagnose")
	if code != 1 || !strings.Contains(out, `  fail  northd                 ovn-northd is not running: nobody holds its lock "ovn_northd"`) {
		t.Errorf("diagnose without northd: exit %d\n%s%s", code, out, errs)
	}
	// A stand-in holds northd's lock: no chassis warns, nothing fails (no --sync).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release, err := health.HoldLock(ctx, sb.Endpoint, health.NorthdLock)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	code, out, errs = ovl("diagnose")
	if code != 0 || !strings.Contains(out, "  ok    northd") || !strings.Contains(out, "  warn  chassis") {
		t.Errorf("diagnose: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = ovl("diagnose", "--sync", "--sync-timeout", "300ms", "-o", "json")
	var rep struct {
		Status string `json:"status"`
		Checks []struct {
			Name, Status, Detail, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Status != "fail" {
		t.Fatalf("diagnose --sync -o json: exit %d, %v\n%s", code, err, out)
	}
	northd := 0
	for _, c := range rep.Checks {
		if c.Name == "northd" {
			northd++
			if c.Status != "fail" || c.Fix == "" {
				t.Errorf("northd with --sync and no ovn-northd: %+v; want status fail with a fix", c)
			}
		}
	}
	if northd != 1 {
		t.Errorf("diagnose --sync -o json has %d checks named northd; want 1:\n%s", northd, out)
	}
}
