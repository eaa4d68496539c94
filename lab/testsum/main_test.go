package main

import (
	"bytes"
	"strings"
	"testing"
)

const pkg = "github.com/ovlmgr/ovlmgr/x"

func feed(s *summary, lines ...string) {
	for _, l := range lines {
		s.line([]byte(l))
	}
}

// TestSummary: counts per package, a skip fails under strict but not
// otherwise, an optional skip never fails, a must-run package with no
// tests fails, and the last line is "N passed, N failed, N skipped".
func TestSummary(t *testing.T) {
	events := []string{
		`{"Action":"start","Package":"` + pkg + `"}`,
		`{"Action":"run","Package":"` + pkg + `","Test":"TestA"}`,
		`{"Action":"pass","Package":"` + pkg + `","Test":"TestA"}`,
		`{"Action":"run","Package":"` + pkg + `","Test":"TestB"}`,
		`{"Action":"output","Package":"` + pkg + `","Test":"TestB","Output":"    b_test.go:9: missing prerequisite: ovn-northd not installed\n"}`,
		`{"Action":"skip","Package":"` + pkg + `","Test":"TestB"}`,
		`{"Action":"run","Package":"` + pkg + `","Test":"TestC"}`,
		`{"Action":"output","Package":"` + pkg + `","Test":"TestC","Output":"    c_test.go:3: optional prerequisite missing: ruby\n"}`,
		`{"Action":"skip","Package":"` + pkg + `","Test":"TestC"}`,
		`{"Action":"output","Package":"` + pkg + `","Output":"ok  \t` + pkg + `\t0.1s\n"}`,
		`{"Action":"pass","Package":"` + pkg + `"}`,
	}
	for _, tc := range []struct {
		strict  bool
		must    []string
		wantBad []string
	}{
		{false, nil, nil},
		{true, nil, []string{"1 test(s) skipped"}},
		{false, []string{pkg + "/integration"}, []string{"integration did not run"}},
	} {
		var out bytes.Buffer
		s := newSummary(&out, tc.strict, tc.must)
		feed(s, events...)
		bad := s.finish()
		if len(bad) != len(tc.wantBad) {
			t.Errorf("strict=%v must=%v: bad %q; want %q", tc.strict, tc.must, bad, tc.wantBad)
		}
		for i := range tc.wantBad {
			if i < len(bad) && !strings.Contains(bad[i], tc.wantBad[i]) {
				t.Errorf("bad[%d] = %q; want %q", i, bad[i], tc.wantBad[i])
			}
		}
		if s.closing != "1 passed, 0 failed, 2 skipped" {
			t.Errorf("closing %q", s.closing)
		}
		if !strings.Contains(out.String(), "ovn-northd not installed") || !strings.Contains(out.String(), "ok  \t"+pkg) {
			t.Errorf("output lacks the skip reason or go test's ok line:\n%s", out.String())
		}
		if !regexpRow(out.String(), "3", "1", "0", "1", "1", pkg) {
			t.Errorf("no table row 3 run, 1 passed, 0 failed, 1 skipped, 1 optional:\n%s", out.String())
		}
	}
	// A package that ran no tests fails under strict.
	var out bytes.Buffer
	s := newSummary(&out, true, nil)
	feed(s, `{"Action":"output","Package":"`+pkg+`","Output":"ok  \t`+pkg+`\t0.1s [no tests to run]\n"}`,
		`{"Action":"pass","Package":"`+pkg+`"}`)
	if bad := s.finish(); len(bad) != 1 || !strings.Contains(bad[0], "ran no tests") {
		t.Errorf("no tests under strict: %q", bad)
	}
}

func regexpRow(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
