package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// TestUnderlayCommands: underlay path-mtu records the path MTU (only
// lowering unless --raise), underlay show prints it with encryption and the
// container MTU they give, and bad values are refused naming what is allowed.
func TestUnderlayCommands(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	show := func() underlayView {
		t.Helper()
		code, out, errs := n.run("underlay", "show", "-o", "json")
		if code != 0 {
			t.Fatalf("underlay show: exit %d, stderr %q", code, errs)
		}
		var v underlayView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("underlay show -o json: %v: %q", err, out)
		}
		return v
	}
	if code, out, _ := n.run("underlay", "show"); code != 0 || !strings.Contains(out, "none (every path carries the nodes' link MTU)") || !strings.Contains(out, "ENCRYPTION     off") {
		t.Errorf("underlay show on a new NB: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		out  string
		want underlayView
	}{
		{[]string{"1400"}, "underlay path MTU 1400\n", underlayView{PathMTU: 1400, ContainerMTU4: 1342, ContainerMTU6: 1322}},
		{[]string{"1450"}, "underlay path MTU 1400 kept (smaller than 1450; --raise to raise it)\n", underlayView{PathMTU: 1400, ContainerMTU4: 1342, ContainerMTU6: 1322}},
		{[]string{"1450", "--raise"}, "underlay path MTU 1450\n", underlayView{PathMTU: 1450, ContainerMTU4: 1392, ContainerMTU6: 1372}},
	} {
		code, out, errs := n.run(append([]string{"underlay", "path-mtu"}, tc.args...)...)
		if code != 0 || out != tc.out {
			t.Errorf("underlay path-mtu %v: exit %d, stdout %q (want %q), stderr %q", tc.args, code, out, tc.out, errs)
		}
		if v := show(); v != tc.want {
			t.Errorf("after path-mtu %v: show %+v, want %+v", tc.args, v, tc.want)
		}
	}
	// Encrypted tunnels also carry ESP.
	if code, _, errs := n.run("encrypt", "on"); code != 0 {
		t.Fatalf("encrypt on: exit %d, %q", code, errs)
	}
	if v, want := show(), (underlayView{PathMTU: 1450, Encrypted: true, ContainerMTU4: 1450 - 58 - 46, ContainerMTU6: 1450 - 78 - 46}); v != want {
		t.Errorf("encrypted: show %+v, want %+v", v, want)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"1000"}, 1, "1000: out of range (want 1280 to 9000)"},
		{[]string{"big"}, 2, `MTU "big": not a number (want 1280 to 9000)`},
		{nil, 2, "want MTU"},
	} {
		code, _, errs := n.run(append([]string{"underlay", "path-mtu"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("underlay path-mtu %v: exit %d, stderr %q; want exit %d naming %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
	if v := show(); v.PathMTU != 1450 {
		t.Errorf("refused values changed the path MTU: %+v", v)
	}
}
