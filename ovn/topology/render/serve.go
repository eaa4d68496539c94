package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// Server serves the live topology page: / (the page), /fragment (what
// the page swaps in), /events (server-sent events, one per new graph),
// /topology.svg, /topology.dot, /topology.json and /topology.txt. Feed it
// graphs with Update (topology.Follow's callback).
type Server struct {
	mu      sync.Mutex
	g       *topology.Graph
	err     error
	at      time.Time
	version int
	subs    map[chan int]bool
}

// NewServer returns a Server showing an empty graph until the first Update.
func NewServer() *Server {
	return &Server{g: &topology.Graph{}, at: time.Now(), subs: map[chan int]bool{}}
}

// Update publishes a new graph (or the error of a failed read: the last
// graph stays, with the error shown).
func (s *Server) Update(g *topology.Graph, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.g = g
	}
	s.err = err
	s.at = time.Now()
	s.version++
	for ch := range s.subs {
		select {
		case ch <- s.version:
		default:
		}
	}
}

// Version counts the updates so far.
func (s *Server) Version() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

func (s *Server) snapshot() (*topology.Graph, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.g, s.at, s.err
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g, at, rerr := s.snapshot()
	var buf bytes.Buffer
	var err error
	switch r.URL.Path {
	case "/", "/index.html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = HTML(&buf, g, HTMLOptions{Live: true, Generated: at})
	case "/fragment":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if rerr != nil {
			fmt.Fprintf(&buf, "<p class=\"down\">last read failed: %s</p>\n", esc(rerr.Error()))
		}
		err = Fragment(&buf, g, at)
	case "/topology.svg":
		w.Header().Set("Content-Type", "image/svg+xml")
		err = SVG(&buf, g)
	case "/topology.dot":
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		err = DOT(&buf, g)
	case "/topology.txt":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		err = Text(&buf, g)
	case "/topology.json":
		w.Header().Set("Content-Type", "application/json")
		err = json.NewEncoder(&buf).Encode(g)
	case "/events":
		s.events(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// events streams one server-sent event per update (its data is the
// update's number) and a comment every 15 s to keep proxies from closing
// the stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan int, 1)
	s.mu.Lock()
	s.subs[ch] = true
	v := s.version
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "retry: 2000\ndata: %d\n\n", v)
	fl.Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case v := <-ch:
			fmt.Fprintf(w, "data: %d\n\n", v)
		case <-tick.C:
			fmt.Fprintf(w, ": keepalive\n\n")
		}
		fl.Flush()
	}
}
