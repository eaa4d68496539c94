package ovsdbtest

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what a Proxy does to the transaction it is armed for.
type Fault int

const (
	// LoseReply forwards the request, lets the server commit it, then cuts
	// the connection before the reply reaches the client: a reply lost in a
	// leader change, as the client sees it.
	LoseReply Fault = iota
	// Silence forwards the request and drops every later reply on that
	// connection, which stays up: a server that stopped answering.
	Silence
	// Stall forwards the request and holds every later reply on that
	// connection, in order, for StallFor: a server slow to answer, past the
	// client's deadline. It matches any request containing the word (a
	// monitor too), not only a transaction.
	Stall
	// DropRequest never forwards the request (any request containing the
	// word, like Stall); the connection stays up: a request lost on its
	// way, whose caller times out while the server never saw it.
	DropRequest
	// Cut forwards the request (any request containing the word, like
	// Stall), lets the replies through for CutAfter, then closes the
	// connection: a server that goes away right after answering.
	Cut
)

// CutAfter is how long Cut lets replies through before it closes.
const CutAfter = 100 * time.Millisecond

// StallFor is how long Stall holds the replies.
const StallFor = time.Second

// Proxy forwards TCP clients to a Server's unix socket and, armed, breaks
// the next transaction whose request contains a word (see Fault).
type Proxy struct {
	// Endpoint is "tcp:127.0.0.1:PORT", for dbconn.Connect.
	Endpoint string
	ln       net.Listener
	sock     string
	mu       sync.Mutex
	word     string
	fault    Fault
	fired    atomic.Int32
	sent     atomic.Int64
	accepted atomic.Int32
	open     atomic.Int32
}

// StartProxy starts a proxy to s, closed at test end.
func StartProxy(tb testing.TB, s *Server) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Endpoint: "tcp:" + ln.Addr().String(), ln: ln, sock: strings.TrimPrefix(s.Endpoint, "unix:")}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.open.Add(1)
			go func() {
				defer p.open.Add(-1)
				p.serve(c)
			}()
		}
	}()
	return p
}

// Arm makes the next transaction whose request contains word meet fault.
func (p *Proxy) Arm(word string, fault Fault) {
	p.mu.Lock()
	p.word, p.fault = word, fault
	p.mu.Unlock()
}

// Fired is how many armed faults have happened.
func (p *Proxy) Fired() int { return int(p.fired.Load()) }

// Accepted is how many client connections the proxy has accepted.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Open is how many of them are still open (neither side has closed).
func (p *Proxy) Open() int { return int(p.open.Load()) }

// Sent is how many bytes of the server's replies the proxy has passed on
// to its clients (counted before each write, so a client has never read
// more than Sent).
func (p *Proxy) Sent() int64 { return p.sent.Load() }

func (p *Proxy) serve(c net.Conn) {
	s, err := net.Dial("unix", p.sock)
	if err != nil {
		c.Close()
		return
	}
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); s.Close() }) }
	defer closeBoth()
	var hold atomic.Bool        // set: the server's replies go nowhere
	var stallUntil atomic.Int64 // unix ns: the server's replies wait until then
	go func() {
		defer closeBoth()
		b := make([]byte, 64<<10)
		for {
			n, err := s.Read(b)
			if d := time.Until(time.Unix(0, stallUntil.Load())); n > 0 && d > 0 {
				time.Sleep(d)
			}
			if n > 0 && !hold.Load() {
				p.sent.Add(int64(n))
				if _, werr := c.Write(b[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			fault := p.fault
			hit := p.word != "" && (fault == Stall || fault == DropRequest || fault == Cut || bytes.Contains(chunk, []byte(`"transact"`))) && bytes.Contains(chunk, []byte(p.word))
			if hit {
				p.word = ""
			}
			p.mu.Unlock()
			if hit && fault == DropRequest {
				p.fired.Add(1)
				continue
			}
			if hit && fault == Cut {
				time.AfterFunc(CutAfter, closeBoth)
			} else if hit && fault == Stall {
				stallUntil.Store(time.Now().Add(StallFor).UnixNano())
			} else if hit {
				hold.Store(true)
			}
			if _, werr := s.Write(chunk); werr != nil {
				return
			}
			if hit {
				p.fired.Add(1)
				if fault == LoseReply {
					time.Sleep(300 * time.Millisecond) // the server commits
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
