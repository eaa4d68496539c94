// Command benchrun runs `go test -json` with the given arguments (make
// bench's) and prints the tests' output as plain `go test` does, on
// stdout. When stderr is a terminal it also keeps one status line there,
// rewritten in place: packages done of the total, the benchmark running and
// for how long. When stderr is not a terminal it prints nothing more, so
// piped or logged runs stay as they were.
//
//	go run ./lab/benchrun -- -run '^$' -bench . -benchtime 1x ./...
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	os.Exit(run(args, os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func run(args []string, stdout, stderr io.Writer, tty bool) int {
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	st := &status{w: stderr, tty: tty, start: time.Now(), pkgs: map[string]bool{}}
	done := make(chan struct{})
	if tty {
		go st.tick(done)
	}
	follow(pipe, stdout, st)
	close(done)
	st.clear()
	if err := cmd.Wait(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	return 0
}

// follow copies each event's output to out and updates the status.
func follow(r io.Reader, out io.Writer, st *status) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			st.print(out, sc.Text()+"\n")
			continue
		}
		st.event(ev)
		// test2json's framing lines, which a plain go test -bench does not print
		if ev.Output != "" && !strings.HasPrefix(ev.Output, "=== ") {
			st.print(out, ev.Output)
		}
	}
}

// status is the terminal's status line.
type status struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	start   time.Time
	pkgs    map[string]bool // package -> done
	current string          // "pkg BenchmarkX"
	since   time.Time
	shown   bool
}

func (s *status) event(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Package == "" {
		return
	}
	if _, ok := s.pkgs[ev.Package]; !ok {
		s.pkgs[ev.Package] = false
	}
	switch {
	case ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip":
		if ev.Test == "" {
			s.pkgs[ev.Package] = true
		}
	case ev.Action == "output" && strings.HasPrefix(ev.Output, "Benchmark"):
		name := strings.Fields(ev.Output)[0]
		if cur := short(ev.Package) + " " + name; cur != s.current {
			s.current, s.since = cur, time.Now()
		}
	}
}

func short(pkg string) string {
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		return pkg[i+1:]
	}
	return pkg
}

// print writes test output: the status line is cleared first and drawn
// again after.
func (s *status) print(out io.Writer, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	_, _ = io.WriteString(out, text)
	if f, ok := out.(*os.File); ok {
		_ = f.Sync()
	}
	s.drawLocked()
}

func (s *status) tick(done chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.mu.Lock()
			s.drawLocked()
			s.mu.Unlock()
		}
	}
}

func (s *status) drawLocked() {
	if !s.tty {
		return
	}
	n := 0
	for _, d := range s.pkgs {
		if d {
			n++
		}
	}
	line := fmt.Sprintf("bench: %d/%d packages done, %s elapsed", n, len(s.pkgs), time.Since(s.start).Round(time.Second))
	if s.current != "" {
		line += fmt.Sprintf(", running %s (%s)", s.current, time.Since(s.since).Round(time.Second))
	}
	_, _ = io.WriteString(s.w, "\r\033[K"+line)
	s.shown = true
}

func (s *status) clearLocked() {
	if s.tty && s.shown {
		_, _ = io.WriteString(s.w, "\r\033[K")
		s.shown = false
	}
}

func (s *status) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}
