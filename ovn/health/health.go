// Package health tells, from the databases alone, whether OVN can answer a
// request now: whether ovn-northd is running (it holds the OVSDB lock
// "ovn_northd" on the Southbound database), whether the SB is reachable, and
// whether an NB change reaches the SB (NB_Global nb_cfg -> sb_cfg). The CNI
// plugin uses it to fail an ADD within a second or two, naming the cause,
// instead of waiting its whole ready timeout; diagnose uses it to notice a
// dead ovn-northd without writing to NB.
package health

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"golang.org/x/sync/singleflight"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// NorthdLock is the OVSDB lock ovn-northd holds on the SB while it is active.
const NorthdLock = "ovn_northd"

// Components named by UnavailableError.
const (
	CompNB     = "OVN Northbound"
	CompSB     = "OVN Southbound"
	CompNorthd = "ovn-northd"
)

// ErrUnavailable matches every *UnavailableError (errors.Is).
var ErrUnavailable = errors.New("OVN cannot answer now")

// UnavailableError says which part of OVN cannot answer, where, and why.
type UnavailableError struct {
	Component string // CompNB, CompSB or CompNorthd
	Endpoint  string // the database endpoint involved
	Reason    string
	// NoProgress: ovn-northd holds its lock but did not carry an NB change
	// to the SB in time (stuck or only slow).
	NoProgress bool
}

func (e *UnavailableError) Error() string {
	switch e.Component {
	case CompNB, CompSB:
		return fmt.Sprintf("%s unreachable at %s: %s", e.Component, e.Endpoint, e.Reason)
	}
	return fmt.Sprintf("%s %s", e.Component, e.Reason)
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ErrProbeUnsupported: the lock probe cannot ask (an ssl: endpoint without
// a client certificate); callers then rely on the nb_cfg round trip alone.
var ErrProbeUnsupported = errors.New("lock probe unsupported")

// LockState is what a lock probe found.
type LockState int

// Lock states.
const (
	LockHeld LockState = iota // another client (ovn-northd) holds the lock
	LockFree                  // nobody held it
)

// ProbeLock asks the OVSDB server(s) at endpoints (comma list; unix:, tcp: or ssl:)
// whether someone holds lock, with the protocol's "lock" request on a
// connection of its own that is closed right away (RFC 7047 4.1.8; libovsdb
// has no lock API). If nobody held it, this connection held it for the
// moment until it closed; a daemon asking meanwhile gets it on that close.
// An endpoint that cannot be asked returns an error naming it.
func ProbeLock(ctx context.Context, endpoints, lock string) (LockState, error) {
	eps, err := dbconn.ParseEndpoints(endpoints)
	if err != nil {
		return LockFree, err
	}
	var errs []string
	asked, unsupported := false, 0
	for _, ep := range eps {
		held, err := probeOne(ctx, ep, lock)
		if errors.Is(err, ErrProbeUnsupported) {
			unsupported++
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		asked = true
		if held {
			return LockHeld, nil
		}
	}
	if !asked && unsupported == len(eps) {
		return LockFree, fmt.Errorf("%s: %w", endpoints, ErrProbeUnsupported)
	}
	if !asked {
		return LockFree, errors.New(strings.Join(errs, "; "))
	}
	return LockFree, nil
}

func probeOne(ctx context.Context, ep, lock string) (bool, error) {
	scheme, addr, _ := strings.Cut(ep, ":")
	var d net.Dialer
	var conn net.Conn
	var err error
	switch scheme {
	case "unix", "tcp":
		conn, err = d.DialContext(ctx, scheme, addr)
	case "ssl":
		// With the process's certificate (a node's, on a TLS deployment).
		cfg, cerr := dbconn.ContextTLS(ctx)
		if cerr != nil {
			return false, fmt.Errorf("%s: %w: %v", ep, ErrProbeUnsupported, cerr)
		}
		conn, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, "tcp", addr)
	default:
		return false, fmt.Errorf("%s: %w", ep, ErrProbeUnsupported)
	}
	if err != nil {
		return false, err
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	req := map[string]interface{}{"method": "lock", "params": []string{lock}, "id": "ovlmgr-lock-probe"}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return false, fmt.Errorf("send lock request: %w", err)
	}
	dec := json.NewDecoder(conn)
	for {
		var msg struct {
			ID     interface{}     `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  interface{}     `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			return false, fmt.Errorf("read lock reply: %w", err)
		}
		if msg.ID != "ovlmgr-lock-probe" {
			continue // a notification or echo
		}
		if msg.Error != nil {
			return false, fmt.Errorf("lock %q: %v", lock, msg.Error)
		}
		var r struct {
			Locked bool `json:"locked"`
		}
		if err := json.Unmarshal(msg.Result, &r); err != nil {
			return false, fmt.Errorf("lock reply %s: %w", msg.Result, err)
		}
		return !r.Locked, nil
	}
}

// HoldLock takes lock on the OVSDB server at endpoint (unix: or tcp:) the
// way a daemon does, on a connection of its own, waiting until it is
// granted (or ctx ends). release closes the connection, which frees the
// lock. Tests use it to stand in for ovn-northd.
func HoldLock(ctx context.Context, endpoint, lock string) (release func(), err error) {
	scheme, addr, _ := strings.Cut(endpoint, ":")
	if scheme != "unix" && scheme != "tcp" {
		return nil, fmt.Errorf("%s: HoldLock supports unix: and tcp: endpoints only", endpoint)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, scheme, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(map[string]interface{}{"method": "lock", "params": []string{lock}, "id": "ovlmgr-hold"}); err != nil {
		conn.Close()
		return nil, err
	}
	// The reply says locked, or the server sends "locked" once the
	// current holder has gone.
	dec := json.NewDecoder(conn)
	for {
		var msg struct {
			Method string `json:"method"`
			Result *struct {
				Locked bool `json:"locked"`
			} `json:"result"`
		}
		if err := dec.Decode(&msg); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock %q at %s: %w", lock, endpoint, err)
		}
		if msg.Method == "locked" || (msg.Result != nil && msg.Result.Locked) {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return func() { conn.Close() }, nil
}

// NorthdRunning reports whether ovn-northd is running as seen from the SB at
// sbEndpoints: nil when someone holds its lock, else an *UnavailableError
// (SB unreachable, or northd not running).
func NorthdRunning(ctx context.Context, sbEndpoints string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := ProbeLock(cctx, sbEndpoints, NorthdLock)
	if errors.Is(err, ErrProbeUnsupported) {
		return err // not an answer about OVN
	}
	if err != nil {
		return &UnavailableError{Component: CompSB, Endpoint: sbEndpoints, Reason: err.Error()}
	}
	if st == LockFree {
		return &UnavailableError{Component: CompNorthd, Endpoint: sbEndpoints,
			Reason: fmt.Sprintf("is not running: nobody holds its lock %q on the SB at %s", NorthdLock, sbEndpoints)}
	}
	return nil
}

// allRows matches every row (OVSDB needs a "where"; NB_Global has one row).
var allRows = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: zeroUUID}}}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// roundTrips joins round trips asked for at the same time on one client
// (keyed by the client Connect made; the node's CNI server runs a guard per
// verb on one): one answers for all, where each would bump nb_cfg, make
// ovn-northd recompute for nothing and poll the same row.
var roundTrips singleflight.Group

// roundTripPoll is how often a round trip reads sb_cfg.
const roundTripPoll = 50 * time.Millisecond

// RoundTrip bumps NB_Global nb_cfg (what `ovn-nbctl --wait=sb sync` does)
// and waits up to budget for ovn-northd to carry it to the SB (sb_cfg):
// proof that northd is alive and connected to both databases. nbEndpoint
// only names the NB in errors. Callers on one client at the same time share
// one round trip; one whose ctx ends first returns then.
func RoundTrip(ctx context.Context, nb client.Client, nbEndpoint string, budget time.Duration) error {
	key := fmt.Sprintf("%p", dbconn.Unwrap(nb))
	shared := roundTrips.DoChan(key, func() (any, error) {
		// Not cancelled with the first caller: the others wait for it too.
		return nil, roundTrip(context.WithoutCancel(ctx), nb, nbEndpoint, budget)
	})
	select {
	case r := <-shared:
		return r.Err
	case <-ctx.Done():
		return &UnavailableError{Component: CompNB, Endpoint: nbEndpoint, Reason: "nb_cfg round trip: " + ctx.Err().Error()}
	}
}

func roundTrip(ctx context.Context, nb client.Client, nbEndpoint string, budget time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	tx := dbops.NewTx(nb)
	bump := &nbdb.NBGlobal{}
	tx.AddAPI(nb.WhereAll(bump, model.Condition{Field: &bump.UUID, Function: ovsdb.ConditionNotEqual, Value: zeroUUID}).
		Mutate(bump, model.Mutation{Field: &bump.NbCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1}))
	cfg := dbops.Query(tx, allRows, func(g *nbdb.NBGlobal) []any { return []any{&g.NbCfg} })
	if err := tx.Transact(ctx); err != nil {
		return &UnavailableError{Component: CompNB, Endpoint: nbEndpoint, Reason: "bump NB_Global nb_cfg: " + err.Error()}
	}
	gs, err := cfg.Rows()
	if err != nil {
		return &UnavailableError{Component: CompNB, Endpoint: nbEndpoint, Reason: "read NB_Global nb_cfg: " + err.Error()}
	}
	if len(gs) == 0 {
		return &UnavailableError{Component: CompNB, Endpoint: nbEndpoint, Reason: "NB_Global has no row"}
	}
	want := gs[0].NbCfg
	start := time.Now()
	got := 0
	// Polled, not watched: the client may be shared (the node's CNI server),
	// and a monitor of the one NB_Global row, cancelled late or not at all
	// under load, leaves rows the client's other monitors then collide with
	// (libovsdb reconnects, failing every request in flight).
	for {
		var rows []*nbdb.NBGlobal
		if err = dbconn.Select(ctx, nb, &nbdb.NBGlobal{}, &rows); err == nil && len(rows) > 0 {
			if got = rows[0].SbCfg; got >= want {
				break
			}
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(roundTripPoll):
			continue
		}
		break
	}
	if err != nil {
		return &UnavailableError{Component: CompNorthd, Endpoint: nbEndpoint, NoProgress: true,
			Reason: fmt.Sprintf("did not carry NB change nb_cfg %d to the SB within %s (sb_cfg %d): it is stuck, overloaded or cannot reach a database",
				want, time.Since(start).Round(time.Millisecond), got)}
	}
	return nil
}

// Check finds out whether OVN can assign an address and bind a port now.
// It first asks the SB at sbEndpoints who holds ovn-northd's lock (no NB
// write): nobody means ovn-northd is not running. If the SB cannot be asked
// from here, or northd holds the lock, an nb_cfg round trip (RoundTrip,
// within budget) decides: it passing means OVN works (the SB may just not be
// reachable from this host). It returns nil or an *UnavailableError; one
// with NoProgress set (northd holds its lock but did not answer in budget)
// may be load rather than failure.
func Check(ctx context.Context, nb client.Client, nbEndpoint, sbEndpoints string, budget time.Duration) error {
	var sbErr error
	if sbEndpoints != "" {
		sbErr = NorthdRunning(ctx, sbEndpoints)
		var ue *UnavailableError
		if errors.As(sbErr, &ue) && ue.Component == CompNorthd {
			return sbErr
		}
	}
	err := RoundTrip(ctx, nb, nbEndpoint, budget)
	if err == nil {
		return nil
	}
	var ue, sbUE *UnavailableError
	if errors.As(sbErr, &sbUE) && errors.As(err, &ue) && ue.NoProgress {
		return sbErr // northd cannot reach the SB either
	}
	return err
}

// Guard runs Check after grace and then every interval until ctx ends; when
// two checks in a row find OVN unavailable for certain (not NoProgress) it
// cancels ctx with the second *UnavailableError as cause
// (context.Cause). One finding alone is not certain: for a moment while an
// NB or SB leader hands over (or ovn-northd takes its lock again after
// one), a write can time out and nobody holds the lock. Run it in its own
// goroutine next to a wait that only OVN can end (an address from northd's
// IPAM, ovn-installed). Last returns the latest finding.
type Guard struct {
	// TLS is the identity for ssl: endpoints (nil: the process's).
	TLS  *tls.Config
	mu   sync.Mutex
	last error
}

// Run is the guard's loop (see Guard).
func (g *Guard) Run(ctx context.Context, cancel context.CancelCauseFunc, nb client.Client, nbEndpoint, sbEndpoints string, grace, interval, budget time.Duration) {
	ctx = dbconn.WithTLS(ctx, g.TLS)
	t := time.NewTimer(grace)
	defer t.Stop()
	suspect := false // the previous check found OVN unavailable for certain
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := Check(ctx, nb, nbEndpoint, sbEndpoints, budget)
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		g.last = err
		g.mu.Unlock()
		var ue *UnavailableError
		switch {
		case err == nil, errors.As(err, &ue) && ue.NoProgress:
			suspect = false
		case !suspect:
			suspect = true
		default:
			cancel(err)
			return
		}
		t.Reset(interval)
	}
}

// Last returns the latest check's finding (e.g. northd holding its lock but
// not answering), or nil.
func (g *Guard) Last() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}
