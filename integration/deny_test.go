package integration

import (
	"errors"
	"fmt"
	"time"
)

// denyProbes is how many probes in a row must fail on a path before a test
// concludes it is closed: one lost packet (the first one to a new tunnel
// peer is dropped by design, trap 4) or one slow reply proves nothing.
const denyProbes = 3

// errReached says a probe on a path expected closed got through.
var errReached = errors.New("probe got through")

// denied concludes that a path is closed, the only way the tests may: the
// same kind of probe succeeds on an allowed path (allowed, which may retry
// a lost first packet itself), then denyProbes probes in a row fail on the
// denied path, then the allowed path still answers. It returns nil when
// all of that holds, an error wrapping errReached when a denied probe got
// through, and another error when the allowed path failed (the prober is
// broken, so a failure on the denied path would prove nothing).
func denied(allowed, probe func() error) error {
	if err := allowed(); err != nil {
		return fmt.Errorf("control probe on an allowed path failed, so a failure proves nothing: %w", err)
	}
	for i := 0; i < denyProbes; i++ {
		if err := probe(); err == nil {
			return fmt.Errorf("probe %d of %d on the denied path: %w", i+1, denyProbes, errReached)
		}
	}
	if err := allowed(); err != nil {
		return fmt.Errorf("control probe on an allowed path failed after the denied probes: %w", err)
	}
	return nil
}

// deniedWithin retries denied until it holds (a policy or topology change
// takes a moment to reach every node) or within passes, and returns the
// last error.
func deniedWithin(within time.Duration, allowed, probe func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := denied(allowed, probe)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// retried runs probe up to n times and returns nil at its first success:
// for control probes, whose first packet to a new tunnel peer may be lost.
func retried(n int, probe func() error) func() error {
	return func() error {
		var err error
		for i := 0; i < n; i++ {
			if err = probe(); err == nil {
				return nil
			}
		}
		return err
	}
}
