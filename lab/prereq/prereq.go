// Package prereq decides what a test does when something it needs is
// missing (root, a daemon, a package, a lab that cannot start): in hand runs
// and `make unit` it skips, naming what is missing and how to get it; under
// `make test` (OVLMGR_TEST_STRICT=1) it fails, so a suite can never turn
// green by skipping.
package prereq

import (
	"errors"
	"os"
	"testing"
)

// EnvStrict is the environment switch `make test` sets.
const EnvStrict = "OVLMGR_TEST_STRICT"

// Strict reports whether missing prerequisites are failures.
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// Need stops the test when err (what is missing, and how to get it) is not
// nil: Fatal under Strict, Skip otherwise.
func Need(tb testing.TB, err error) {
	tb.Helper()
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
	if os.Geteuid() != 0 {
		Need(tb, ErrNotRoot)
	}
}
