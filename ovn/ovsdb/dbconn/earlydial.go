package dbconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
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

	mu    sync.Mutex
	taken bool
}

// startDial starts connecting ep (TLS with cfg for ssl:) within ctx; nil
// for a unix: endpoint, which has no round trip to save.
func startDial(ctx context.Context, ep string, cfg *tls.Config) *earlyDial {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") {
		return nil
	}
	e := &earlyDial{ep: u, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.conn, e.err = dialURL(ctx, u, cfg)
	}()
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
