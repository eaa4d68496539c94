package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer for two writers (go test's stderr copy and
// the status line).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun: the benchmark's result reaches stdout either way; stderr gets
// the status line only when it is a terminal.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a benchmark package (seconds)")
	}
	for _, tty := range []bool{false, true} {
		var out bytes.Buffer
		var errb syncBuffer
		code := run([]string{"-run", "^$", "-bench", ".", "-benchtime", "1x", "./testdata/benchpkg"}, &out, &errb, tty)
		if code != 0 || !strings.Contains(out.String(), "BenchmarkNothing") || !strings.Contains(out.String(), "42.00 answers") {
			t.Fatalf("tty %v: exit %d, stdout %q, stderr %q", tty, code, out.String(), errb.String())
		}
		status := strings.Contains(errb.String(), "bench: 1/1 packages done") || strings.Contains(errb.String(), "running benchpkg BenchmarkNothing")
		if tty != status || strings.Contains(out.String(), "\033[K") || strings.Contains(out.String(), "=== RUN") {
			t.Errorf("tty %v: stderr %q; want a status line only on a terminal, none in stdout", tty, errb.String())
		}
	}
}
