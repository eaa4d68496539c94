package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"sync"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressLog returns where long work (lab up) logs its progress lines: on
// a terminal a writer that keeps counted steps ("... [3/20]") on one line
// rewritten in place, and prints the other lines; nil (quiet) when w is
// not a terminal, e.g. piped into a file or another program.
func progressLog(w io.Writer) io.Writer {
	if !isTerminal(w) {
		return nil
	}
	return &statusWriter{w: w}
}

// step is a line that reports one step of several, rewritten in place.
var step = regexp.MustCompile(`\[\d+/\d+\]\s*$`)

// statusWriter writes whole lines; a step line stays open (no newline) and
// the next line replaces it.
type statusWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := s.buf[:i]
		end := "\n"
		if step.Match(line) {
			end = ""
		}
		if _, err := io.WriteString(s.w, "\r\033[K"+string(line)+end); err != nil {
			return len(p), err
		}
		s.buf = s.buf[i+1:]
	}
}
