package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// LogLine is one line of a node's ovn-controller log.
type LogLine struct {
	Node string `json:"node"`
	Line string `json:"line"`
}

// LogSource reads one or more nodes' ovn-controller logs.
type LogSource interface {
	// Read sends the log's lines to out: those already in the log when
	// fromStart, then, when follow, every line appended until ctx ends.
	// Without follow it returns once the lines present are sent.
	Read(ctx context.Context, fromStart, follow bool, out chan<- LogLine) error
}

// FileSource is a node's ovn-controller log file on this machine: a lab
// node's Dir/ovn-controller.log, or /var/log/ovn/ovn-controller.log on a
// node (read by that node's exporter).
type FileSource struct {
	Node, Path string
	// Poll is how often a followed file is checked for new lines (default 100ms).
	Poll time.Duration
}

// Read implements LogSource. A file that is truncated or replaced (log
// rotation) is read again from its start.
func (s FileSource) Read(ctx context.Context, fromStart, follow bool, out chan<- LogLine) error {
	poll := s.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("ovn-controller log of node %s: %w", s.Node, err)
	}
	defer func() { f.Close() }()
	if !fromStart {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var partial string
	for {
		line, err := r.ReadString('\n')
		if err == nil {
			select {
			case out <- LogLine{Node: s.Node, Line: strings.TrimRight(partial+line, "\n")}:
			case <-ctx.Done():
				return ctx.Err()
			}
			partial = ""
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		partial += line
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		if replaced(f, s.Path) {
			nf, err := os.Open(s.Path)
			if err != nil {
				continue // between rotation's rename and the new file
			}
			f.Close()
			f, partial = nf, ""
			r.Reset(f)
		}
	}
}

// replaced reports whether the open file f is no longer the file at path,
// or was truncated below the position read.
func replaced(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return true
	}
	pi, err := os.Stat(path)
	if err != nil {
		return false
	}
	a, ok1 := fi.Sys().(*syscall.Stat_t)
	b, ok2 := pi.Sys().(*syscall.Stat_t)
	if ok1 && ok2 && (a.Ino != b.Ino || a.Dev != b.Dev) {
		return true
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	return err == nil && fi.Size() < pos
}

// HTTPSource reads the acl_log lines a node's exporter serves
// (`ovlmgr exporter --node`, path /acl-log): the way `ovlmgr events`
// collects verdicts from the nodes of a real deployment.
type HTTPSource struct {
	// URL is the exporter's base URL, e.g. http://198.18.0.11:9477.
	URL    string
	Client *http.Client
}

// Read implements LogSource; a followed stream that breaks is re-opened
// (from its end: lines written meanwhile are lost) until ctx ends.
func (s HTTPSource) Read(ctx context.Context, fromStart, follow bool, out chan<- LogLine) error {
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	for {
		err := s.read(ctx, c, fromStart, follow, out)
		if !follow || ctx.Err() != nil {
			return err
		}
		fromStart = false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (s HTTPSource) read(ctx context.Context, c *http.Client, fromStart, follow bool, out chan<- LogLine) error {
	u := fmt.Sprintf("%s/acl-log?from-start=%t&follow=%t", strings.TrimRight(s.URL, "/"), fromStart, follow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("node agent %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("node agent %s: %s: %s", s.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var l LogLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("node agent %s: %w", s.URL, err)
		}
		select {
		case out <- l:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ACLLogHandler serves src's acl_log lines as JSON lines (LogLine), the
// endpoint HTTPSource reads: ?from-start=true sends the lines already in the
// log, ?follow=true keeps the response open and sends new lines as they come.
func ACLLogHandler(src LogSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fromStart := r.URL.Query().Get("from-start") == "true"
		follow := r.URL.Query().Get("follow") == "true"
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		lines := make(chan LogLine, 256)
		errc := make(chan error, 1)
		go func() { errc <- src.Read(ctx, fromStart, follow, lines); close(lines) }()
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		fl, _ := w.(http.Flusher)
		wrote := false
		if follow && fl != nil {
			// The client waits for the headers before it reads lines.
			w.WriteHeader(http.StatusOK)
			fl.Flush()
			wrote = true
		}
		for l := range lines {
			if _, ok := ParseACLLog(l.Line); !ok {
				continue
			}
			if err := enc.Encode(l); err != nil {
				return
			}
			wrote = true
			if fl != nil && len(lines) == 0 {
				fl.Flush()
			}
		}
		if err := <-errc; err != nil && !wrote && ctx.Err() == nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
}
