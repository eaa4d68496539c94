// Package integration holds end-to-end tests that run real OVN labs (package
// lab) on this machine. They need root and the Debian OVS/OVN packages; when
// either is missing they skip with the command to run, and fail under
// `make test` (OVLMGR_TEST_STRICT=1).
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// shared is the one 3-node lab the tests of this package share.
var shared struct {
	once sync.Once
	lab  *lab.Lab
	err  error
}

// TestMain tears the shared lab down after all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.lab != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := shared.lab.Down(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "shared lab down: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
	}
	cniTeardown()
	os.Exit(code)
}

// needLab stops the test when the lab cannot run here (not root, packages
// missing), saying what to do: a skip in hand runs, a failure under
// `make test` (prereq.Strict). Labs are TLS labs by default, whose control
// service runs the ovlmgr built for this test run (cniPluginDir) unless
// OVLMGR_LAB_CONTROL_BIN names another; OVLMGR_LAB_INSECURE=1 runs the
// suite on plain labs (but the tests that ask for TLS or plain).
func needLab(t testing.TB) {
	t.Helper()
	prereq.Need(t, lab.Check())
	if os.Getenv(lab.EnvControlBin) == "" {
		// Process-wide: every later lab of this run uses it.
		os.Setenv(lab.EnvControlBin, filepath.Join(cniPluginDir(t), "ovlmgr"))
	}
}

// uniqueName returns a lab name (at most 8 bytes) unique to this test
// process and prefix, so parallel test binaries never collide.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%04x", prefix, os.Getpid()&0xffff)
}

// sharedLab returns the package's shared 3-node lab, bringing it up on first
// use. TestMain takes it down after all tests. Tests must not take it down
// and should clean up what they add to it.
func sharedLab(t testing.TB) *lab.Lab {
	t.Helper()
	needLab(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.lab, shared.err = lab.Up(ctx, lab.Options{Nodes: 3, Name: uniqueName("sh")})
	})
	if shared.err != nil {
		t.Fatalf("shared lab: %v", shared.err)
	}
	return shared.lab
}
