package attach

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// Session keeps a node's database connections open across calls: the
// local Open_vSwitch db and the Northbound, for a process that serves many
// verbs (the node's CNI server, cni-plugin/plugin Serve). Each call still
// reads the node's settings (its Open_vSwitch row, its certificate) and
// reconnects the NB when its endpoint or the node's certificate changed or
// the connection stays down (see reconnectWait). A nil *Session makes every call connect and close
// its own. Safe for concurrent use.
type Session struct {
	// Log receives what the session does beside the calls (the sweep of
	// orphaned OVS ports); nil discards it.
	Log Logger

	mu    sync.Mutex
	ovs   client.Client
	ovsEP string
	nb    client.Client
	nbKey string
	// nbMonitor: nb's monitor of what ADD reads runs (monitored.go).
	nbMonitor bool
	// tls is the node's loaded identity, tlsKey what it was loaded from.
	tls    *tls.Config
	tlsKey string
	// swept is when the last sweep started; sweeping is set during one.
	swept    time.Time
	sweeping bool
}

// NewSession returns a Session that connects on first use.
func NewSession() *Session { return &Session{} }

// Close closes the session's connections; a later call reconnects.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ovs != nil {
		s.ovs.Close()
		s.ovs = nil
	}
	if s.nb != nil {
		s.nb.Close()
		s.nb = nil
	}
}

// kept is a session's client lent to one call: its Close leaves the
// connection open for the next call.
type kept struct{ client.Client }

func (kept) Close() {}

// Unwrap returns the session's client (dbconn.Wrapper): dbconn's cluster
// reads recognise it.
func (k kept) Unwrap() client.Client { return k.Client }

// ovsClient returns the session's Open_vSwitch db client for ep, connecting
// when there is none, it is down or ep changed.
func (s *Session) ovsClient(ctx context.Context, ep string) (client.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ovs != nil && s.ovsEP == ep && reconnected(ctx, s.ovs) {
		return kept{s.ovs}, nil
	}
	if s.ovs != nil {
		s.ovs.Close()
		s.ovs = nil
	}
	c, err := vsdb.Connect(ctx, ep)
	if err != nil {
		return nil, err
	}
	s.ovs, s.ovsEP = c, ep
	return kept{c}, nil
}

// dropOVS closes the session's Open_vSwitch client if it is still c (a
// call found it unusable): the next call reconnects.
func (s *Session) dropOVS(c client.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := c.(kept); ok && s.ovs == k.Client {
		s.ovs.Close()
		s.ovs = nil
	}
}

// nbClient returns the session's NB client for the node's endpoint and
// identity, connecting when there is none, it is down, or either changed.
func (s *Session) nbClient(ctx context.Context, nd *node) (client.Client, error) {
	key := nd.nbEP + "\x00" + identity(nd.tls)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nb != nil && s.nbKey == key && reconnected(ctx, s.nb) {
		return kept{s.nb}, nil
	}
	if s.nb != nil {
		s.nb.Close()
		s.nb = nil
	}
	c, err := dbconn.ConnectNBTLS(ctx, nd.nbEP, nd.tls)
	if err != nil {
		return nil, err
	}
	s.nb, s.nbKey = c, key
	s.nbMonitor = monitorNB(ctx, c)
	return kept{c}, nil
}

// tlsConfig loads f (nil when it cannot be), again only when a file's
// path, size or modification time changed.
func (s *Session) tlsConfig(f dbconn.TLSFiles) *tls.Config {
	key := ""
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		st, err := os.Stat(p)
		if err != nil {
			return nil
		}
		key += fmt.Sprintf("%s\x00%d\x00%d\x00", p, st.Size(), st.ModTime().UnixNano())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tls != nil && s.tlsKey == key {
		return s.tls
	}
	cfg, err := f.Config()
	if err != nil {
		return nil
	}
	s.tls, s.tlsKey = cfg, key
	return cfg
}

// sweepSoon starts a sweep (sweepLocal) beside the caller unless one runs
// or one started less than sweepEvery ago.
func (s *Session) sweepSoon(nd *node, nb client.Client) {
	s.mu.Lock()
	if s.sweeping || time.Since(s.swept) < sweepEvery {
		s.mu.Unlock()
		return
	}
	s.sweeping, s.swept = true, time.Now()
	log := s.Log
	s.mu.Unlock()
	if log == nil {
		log = nopLogger{}
	}
	go func() {
		defer func() {
			s.mu.Lock()
			s.sweeping = false
			s.mu.Unlock()
		}()
		sweepLocal(context.Background(), nd, nb, log)
	}()
}

// reconnectWait is how long a session waits for a client that lost its
// connection (a database restart, a cluster leader change) to reconnect by
// itself before it replaces it: calls in flight on it keep retrying there.
const reconnectWait = 2 * time.Second

// reconnected reports whether c is connected, waiting up to reconnectWait
// (and ctx) for it to reconnect.
func reconnected(ctx context.Context, c client.Client) bool {
	deadline := time.Now().Add(reconnectWait)
	for !c.Connected() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// identity fingerprints a TLS identity by its certificate chain (a new CA
// comes with a new certificate); nil, the process's own, is "".
func identity(cfg *tls.Config) string {
	if cfg == nil {
		return ""
	}
	h := sha256.New()
	for _, c := range cfg.Certificates {
		for _, der := range c.Certificate {
			h.Write(der)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
