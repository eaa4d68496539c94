package dbconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
)

// ErrConnectionLost matches (errors.Is) a transaction whose connection
// broke while it was in flight: the server (for a cluster: the leader) died
// or stepped down before replying. The transaction may or may not have
// committed. Callers that can tell their own result apart retry with Retry;
// the others report the error, which says so.
var ErrConnectionLost = errors.New("connection to the database lost while the transaction was in flight (leader change?); it may or may not have been applied")

// LostError is a transaction whose reply was lost (see ErrConnectionLost).
type LostError struct{ Err error }

func (e *LostError) Error() string { return ErrConnectionLost.Error() + ": " + e.Err.Error() }

// Unwrap returns the connection error.
func (e *LostError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrConnectionLost) true.
func (e *LostError) Is(target error) bool { return target == ErrConnectionLost }

// lostConnection reports whether err (from libovsdb's Transact) means the
// connection broke under a request that was sent: libovsdb blocks a
// transaction until it is reconnected (to the leader), so a request that
// was never sent does not fail this way.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, client.ErrNotConnected) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection is shut down", "connection reset", "broken pipe", "use of closed network connection",
		"not leader", "lost leadership", "leadership", "cluster error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Retry runs action, and again while it fails with ErrConnectionLost (the
// client reconnects to the new leader meanwhile), with a short backoff
// until ctx is done. action's argument again is true from the second run
// on: an earlier run may have committed, so action must accept its own
// result as success (a create that finds exactly what it makes, a delete
// that finds nothing). Every other error ends the retries.
func Retry(ctx context.Context, action func(again bool) error) error {
	wait := 20 * time.Millisecond
	again := false
	for {
		err := action(again)
		if !errors.Is(err, ErrConnectionLost) {
			return err
		}
		again = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up retrying: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		if wait *= 2; wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
	}
}

// AsLost returns err as a *LostError when it is a connection that broke
// under a request (for requests other than Transact, e.g. a monitor), so
// that Retry runs the action again; other errors are returned as they are.
func AsLost(err error) error {
	if lostConnection(err) && !errors.Is(err, ErrConnectionLost) {
		return &LostError{Err: err}
	}
	return err
}
