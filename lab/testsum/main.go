// Command testsum runs `go test -json` with the given arguments, prints what
// a plain `go test` run prints (package ok/FAIL lines, the output of failed
// tests) plus every skipped test with its reason, then a table of tests
// run, passed, failed and skipped per package, PASS or FAIL (with the
// reasons), and as its last line "N passed, N failed, N skipped".
//
// It exits non-zero when go test fails, and also when a suite that must run
// did not: under OVLMGR_TEST_STRICT=1 (what `make test` sets) any skip other
// than an optional one (see lab/prereq.Optional) and any package that ran no
// tests; always, a package named with -must that ran no tests.
//
//	go run ./lab/testsum [-must pkg,...] -- -race -count=1 ./...
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	ImportPath  string
	Test        string
	Output      string
	FailedBuild string
}

type pkgCount struct {
	run, pass, fail, skip, optional int
	noTests, result                 string
}

type summary struct {
	out      io.Writer
	pkgs     map[string]*pkgCount
	buf      map[string][]string // package/test -> output lines
	skips    []string            // "pkg TestX: reason"
	optional []string
	strict   bool
	must     map[string]bool
	closing  string // the last line: "N passed, N failed, N skipped"
}

func newSummary(out io.Writer, strict bool, must []string) *summary {
	s := &summary{out: out, pkgs: map[string]*pkgCount{}, buf: map[string][]string{}, strict: strict, must: map[string]bool{}}
	for _, m := range must {
		if m = strings.TrimSpace(m); m != "" {
			s.must[m] = true
		}
	}
	return s
}

func (s *summary) pkg(name string) *pkgCount {
	p := s.pkgs[name]
	if p == nil {
		p = &pkgCount{}
		s.pkgs[name] = p
	}
	return p
}

// line handles one line of go test -json output; lines that are not JSON
// (go vet or build messages) pass through.
func (s *summary) line(raw []byte) {
	var e event
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &e) != nil {
		fmt.Fprintf(s.out, "%s\n", raw)
		return
	}
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		return
	case "build-fail":
		return
	}
	if e.Package == "" {
		return
	}
	p := s.pkg(e.Package)
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output":
		if e.Test == "" {
			// Package-level lines: ok/FAIL/?, panics, TestMain output.
			o := strings.TrimRight(e.Output, "\n")
			switch {
			case o == "PASS" || o == "FAIL" || o == "testing: warning: no tests to run":
			case strings.HasPrefix(o, "?   \t"):
				p.noTests = "no test files"
			default:
				if strings.HasSuffix(o, "[no tests to run]") {
					p.noTests = "no tests to run"
				}
				fmt.Fprintln(s.out, o)
			}
			return
		}
		s.buf[key] = append(s.buf[key], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			p.result = e.Action
			if e.FailedBuild != "" {
				p.result = "build failed"
			}
			return
		}
		p.run++
		out := s.buf[key]
		delete(s.buf, key)
		switch e.Action {
		case "pass":
			p.pass++
		case "fail":
			p.fail++
			fmt.Fprint(s.out, strings.Join(out, ""))
		case "skip":
			reason := skipReason(out)
			where := fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason)
			if strings.Contains(reason, prereq.OptionalMarker) {
				p.optional++
				s.optional = append(s.optional, where)
			} else {
				p.skip++
				s.skips = append(s.skips, where)
			}
		}
	}
}

// skipReason is the test's own log lines (what t.Skip printed), without
// the === RUN / --- SKIP framing.
func skipReason(out []string) string {
	var r []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " | ")
}

// finish prints the table and the closing line and returns the reasons the
// run must fail, beyond go test's own exit status.
func (s *summary) finish() []string {
	var names []string
	for n := range s.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	var bad []string
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(s.out)
	fmt.Fprintln(tw, "run\tpassed\tfailed\tskipped\toptional skips\t\tpackage")
	var tp, tf, ts, to int
	for _, n := range names {
		p := s.pkgs[n]
		if p.noTests == "no test files" && p.run == 0 {
			continue
		}
		note := ""
		if p.run == 0 {
			note = "  (ran no tests)"
			if s.must[n] || s.strict {
				bad = append(bad, fmt.Sprintf("%s ran no tests: this suite must run", n))
			}
		}
		if p.result == "build failed" {
			note = "  (build failed)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t\t%s%s\n", p.run, p.pass, p.fail, p.skip, p.optional, n, note)
		tp, tf, ts, to = tp+p.pass, tf+p.fail, ts+p.skip, to+p.optional
	}
	for m := range s.must {
		if _, ok := s.pkgs[m]; !ok {
			bad = append(bad, fmt.Sprintf("%s did not run: this suite must run", m))
		}
	}
	tw.Flush()
	if len(s.optional) > 0 {
		fmt.Fprintln(s.out, "\noptional skips (tools `make deps` does not install):")
		for _, o := range s.optional {
			fmt.Fprintln(s.out, "  "+o)
		}
	}
	if len(s.skips) > 0 {
		fmt.Fprintln(s.out, "\nskipped:")
		for _, o := range s.skips {
			fmt.Fprintln(s.out, "  "+o)
		}
		if s.strict {
			bad = append(bad, fmt.Sprintf("%d test(s) skipped under %s=1: a missing prerequisite is a failure", len(s.skips), prereq.EnvStrict))
		}
	}
	sort.Strings(bad)
	s.closing = fmt.Sprintf("%d passed, %d failed, %d skipped", tp, tf, ts+to)
	if to > 0 {
		fmt.Fprintf(s.out, "\n%d of the skips are optional (not failures)\n", to)
	}
	return bad
}

func main() {
	must := flag.String("must", "github.com/ovlmgr/ovlmgr/integration", "comma-separated packages that must run at least one test")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testsum [-must pkg,...] -- [go test flags] packages")
		flag.PrintDefaults()
	}
	flag.Parse()
	s := newSummary(os.Stdout, prereq.Strict(), strings.Split(*must, ","))

	cmd := exec.Command("go", append([]string{"test", "-json"}, flag.Args()...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsum: start go test:", err)
		os.Exit(2)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		s.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsum: read go test output:", err)
	}
	runErr := cmd.Wait()
	bad := s.finish()
	for _, b := range bad {
		fmt.Println("FAIL:", b)
	}
	if runErr != nil {
		fmt.Println("FAIL: go test:", runErr)
	}
	if runErr != nil || len(bad) > 0 {
		fmt.Println("FAIL")
	} else {
		fmt.Println("PASS")
	}
	fmt.Println(s.closing)
	if runErr != nil || len(bad) > 0 {
		os.Exit(1)
	}
}
