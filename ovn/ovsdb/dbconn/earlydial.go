package dbconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/client"
)

// earlyDial is the connection to a client's first endpoint, started before
// the client is built; the client's first connect to that endpoint takes
// it (dialer), every other connect dials anew.
type earlyDial struct {
	ep   *url.URL
	done chan struct{}
	conn net.Conn
	err  error
	// elsewhere: the goroutine's thread was not in the caller's network
	// namespace, so it did not dial (the caller dials itself).
	elsewhere bool

	mu    sync.Mutex
	taken bool
}

// startDial starts connecting ep (TLS with cfg for ssl:) within ctx, from
// the caller's network namespace; nil for a unix: endpoint, which has no
// round trip to save.
func startDial(ctx context.Context, ep string, cfg *tls.Config) *earlyDial {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") {
		return nil
	}
	e := &earlyDial{ep: u, done: make(chan struct{})}
	Beside(func(here bool) {
		defer close(e.done)
		if e.elsewhere = !here; here {
			e.conn, e.err = dialURL(ctx, u, cfg)
		}
	})
	return e
}

// dialer is the client's libovsdb Dialer.
func (e *earlyDial) dialer(cfg *tls.Config) client.Dialer {
	return func(ctx context.Context, u *url.URL) (net.Conn, error) {
		if !e.take(u) {
			return dialURL(ctx, u, cfg)
		}
		select {
		case <-e.done:
			if e.elsewhere {
				return dialURL(ctx, u, cfg)
			}
			return e.conn, e.err
		case <-ctx.Done():
			go e.closeWhenDone()
			return nil, ctx.Err()
		}
	}
}

// take reports whether u is the early endpoint not yet taken, and takes it.
func (e *earlyDial) take(u *url.URL) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.taken || u.String() != e.ep.String() {
		return false
	}
	e.taken = true
	return true
}

// release closes the early connection if no connect took it. Nil-safe.
func (e *earlyDial) release() {
	if e == nil {
		return
	}
	e.mu.Lock()
	taken := e.taken
	e.taken = true
	e.mu.Unlock()
	if !taken {
		go e.closeWhenDone()
	}
}

func (e *earlyDial) closeWhenDone() {
	<-e.done
	if e.conn != nil {
		e.conn.Close()
	}
}

// dialURL connects as libovsdb does: TCP, or TLS with cfg (its handshake
// done) for ssl:, or a Unix socket.
func dialURL(ctx context.Context, u *url.URL, cfg *tls.Config) (net.Conn, error) {
	var d net.Dialer
	switch u.Scheme {
	case "unix":
		return d.DialContext(ctx, "unix", u.Path)
	case "tcp":
		return d.DialContext(ctx, "tcp", u.Opaque)
	case "ssl":
		td := tls.Dialer{Config: cfg}
		return td.DialContext(ctx, "tcp", u.Opaque)
	}
	return nil, fmt.Errorf("unknown network protocol %s", u.Scheme)
}

// Beside runs f in a goroutine, with here true when the goroutine's
// threads are in the caller's network namespace. A socket belongs to the
// namespace of the thread that makes it, and a caller on a thread locked
// into a node's or container's namespace (ns.Do) starts goroutines on
// threads of the process's: f must then not connect (here false), or it
// would reach another server or none. (Threads that are not locked are all
// in the process's namespace: Go starts new ones from a thread that never
// changes its own.)
func Beside(f func(here bool)) {
	caller := threadNetNS()
	go func() { f(caller != "" && threadNetNS() == caller) }()
}

// threadNetNS names the calling thread's network namespace ("" if
// unknown).
func threadNetNS() string {
	s, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		return ""
	}
	return s
}
