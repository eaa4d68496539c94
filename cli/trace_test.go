package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTraceExitCodeError: a trace that cannot run exits 1 by default and 2
// with --exit-code, printing the error either way; bad usage exits 2 in both.
// (DELIVERED 0 / DROPPED 1 with --exit-code run in a lab:
// integration TestTopologyViews.)
func TestTraceExitCodeError(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"trace", "web-1", "db-1"}, 1},
		{[]string{"trace", "--exit-code", "web-1", "db-1"}, 2},
		{[]string{"trace", "web-1", "db-1", "--exit-code"}, 2},
		{[]string{"trace", "--exit-code", "web-1"}, 2},
		{[]string{"trace", "web-1"}, 2},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", "unix:/nonexistent", "--sb", "unix:/nonexistent", "--timeout", "2s"}, tc.args...), &out, &errb)
		if code != tc.code || !strings.HasPrefix(errb.String(), "ovlmgr: ") {
			t.Errorf("%v: exit %d, stderr %q; want %d and the error printed", tc.args, code, errb.String(), tc.code)
		}
	}
}
