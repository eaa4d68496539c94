// Package prereq decides what a test does when something it needs is
// missing (root, a daemon, a package, a lab that cannot start): in hand runs
// it skips, naming what is missing and how to get it; under `make test`
// (OVLMGR_TEST_STRICT=1) it fails, so a suite can never turn green by
// skipping. Under `go test -short` (`make unit`) every test that needs a
// prerequisite skips, so the unit run needs no root and no daemons.
package prereq

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// EnvStrict is the environment switch `make test` sets.
const EnvStrict = "OVLMGR_TEST_STRICT"

// OptionalMarker starts the skip message of a test whose prerequisite is
// optional (see Optional); the `make test` summary counts such skips apart
// and does not fail on them.
const OptionalMarker = "optional prerequisite missing:"

// Strict reports whether missing prerequisites are failures.
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// Need stops the test when err (what is missing, and how to get it) is not
// nil: Fatal under Strict, Skip otherwise. Under -short it always skips: a
// test that calls Need needs something a unit run does not provide.
func Need(tb testing.TB, err error) {
	tb.Helper()
	if testing.Short() {
		if err == nil {
			err = errors.New("needs root or daemons")
		}
		tb.Skipf("unit run (-short): %v", err)
	}
	if err == nil {
		return
	}
	if Strict() {
		tb.Fatalf("missing prerequisite (%s=1): %v", EnvStrict, err)
	}
	tb.Skipf("missing prerequisite: %v", err)
}

// ErrNotRoot says a test needs root.
var ErrNotRoot = errors.New("needs root (network namespaces, daemons): run as root")

// Root stops the test (see Need) unless it runs as root.
func Root(tb testing.TB) {
	tb.Helper()
	var err error
	if os.Geteuid() != 0 || testing.Short() {
		err = ErrNotRoot
	}
	Need(tb, err)
}

// Bins stops the test (see Need) unless every program in names is found
// the way the lab finds them (sysbin.Find: PATH, then /usr/sbin, /usr/bin).
func Bins(tb testing.TB, names ...string) {
	tb.Helper()
	var err error
	if m := sysbin.Missing(names...); len(m) > 0 {
		err = fmt.Errorf("%s not installed (looked in PATH and %s): run `make deps`",
			strings.Join(m, ", "), strings.Join(sysbin.Dirs, ", "))
	} else if testing.Short() {
		err = fmt.Errorf("needs %s running", strings.Join(names, ", "))
	}
	Need(tb, err)
}

// Files stops the test (see Need) unless every path exists.
func Files(tb testing.TB, paths ...string) {
	tb.Helper()
	var m []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			m = append(m, p)
		}
	}
	var err error
	if len(m) > 0 {
		err = fmt.Errorf("%s missing: run `make deps`", strings.Join(m, ", "))
	}
	Need(tb, err)
}

// Optional skips the test, also under Strict, when err is not nil: for
// suites whose tools `make deps` does not install (the VM lab's ruby and
// vagrant). The skip message starts with OptionalMarker so the `make test`
// summary reports it as an optional skip.
func Optional(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Skipf("%s %v", OptionalMarker, err)
	}
}
