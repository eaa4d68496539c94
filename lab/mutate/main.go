// Command mutate checks that the tests catch deliberate breaks of the
// invariants listed in a mutations file (integration/testdata/mutations.txt):
// it copies the source tree to a temporary directory, runs every listed
// test there once unmodified (each must run and pass), then applies one
// break at a time, runs only that break's tests, and restores the file. A
// break is caught when at least one of its tests fails. It prints a table
// and exits non-zero when a break is not caught, a mutant does not build,
// or the unmodified tree does not pass.
//
//	go run ./lab/mutate [-file integration/testdata/mutations.txt] [-only SUBSTRING]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// mutation is one block of the mutations file.
type mutation struct {
	Comment  string
	File     string
	Original string
	Broken   string
	Run      string
	Package  string
	line     int
}

// parse reads blocks of "key: value" lines separated by blank lines; "#"
// lines before a block's keys are its description.
func parse(r io.Reader) ([]mutation, error) {
	var out []mutation
	var cur *mutation
	var comment []string
	sc := bufio.NewScanner(r)
	n := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		m := *cur
		cur = nil
		for k, v := range map[string]string{"file": m.File, "original": m.Original, "broken": m.Broken, "run": m.Run, "package": m.Package} {
			if v == "" {
				return fmt.Errorf("mutation at line %d: key %q missing (want file, original, broken, run, package)", m.line, k)
			}
		}
		if m.Original == m.Broken {
			return fmt.Errorf("mutation at line %d: broken is the same as original", m.line)
		}
		out = append(out, m)
		return nil
	}
	for sc.Scan() {
		n++
		l := sc.Text()
		switch t := strings.TrimSpace(l); {
		case t == "":
			if err := flush(); err != nil {
				return nil, err
			}
			comment = nil
		case strings.HasPrefix(t, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(t, "#")))
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q: want key: value", n, l)
			}
			if cur == nil {
				cur = &mutation{line: n, Comment: strings.Join(comment, " ")}
			}
			v = strings.TrimPrefix(v, " ")
			switch strings.TrimSpace(k) {
			case "file":
				cur.File = v
			case "original":
				cur.Original = v
			case "broken":
				cur.Broken = v
			case "run":
				cur.Run = v
			case "package":
				cur.Package = v
			default:
				return nil, fmt.Errorf("line %d: unknown key %q (want file, original, broken, run, package)", n, k)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, sc.Err()
}

// copyTree copies the source tree at src into dst, without .git and bin.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == ".git" || rel == "bin") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
}

// outcome is what one go test -json run did to the tests it matched.
type outcome struct {
	passed, failed, skipped []string
	buildFailed             bool
	output                  string // failed tests' output, for the log
}

func runTests(dir, pkg, run string, log io.Writer) (*outcome, error) {
	cmd := exec.Command("go", "test", "-json", "-count=1", "-run", run, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OVLMGR_TEST_STRICT=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output() // a failing test is an expected outcome here
	o := &outcome{}
	bufs := map[string][]string{}
	for _, l := range bytes.Split(out, []byte("\n")) {
		var e struct {
			Action, Test, Output, FailedBuild string
		}
		if len(l) == 0 || json.Unmarshal(l, &e) != nil {
			continue
		}
		switch e.Action {
		case "output":
			bufs[e.Test] = append(bufs[e.Test], e.Output)
		case "build-output":
			o.output += e.Output
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" && e.FailedBuild != "" {
					o.buildFailed = true
				}
				continue
			}
			if strings.Contains(e.Test, "/") {
				continue // subtests: their parent carries the verdict
			}
			switch e.Action {
			case "pass":
				o.passed = append(o.passed, e.Test)
			case "fail":
				o.failed = append(o.failed, e.Test)
				o.output += strings.Join(bufs[e.Test], "")
			case "skip":
				o.skipped = append(o.skipped, e.Test)
			}
		}
	}
	fmt.Fprintf(log, "$ (cd %s && go test -count=1 -run '%s' %s)\n%s%s\n", dir, run, pkg, o.output, stderr.String())
	if len(o.passed)+len(o.failed)+len(o.skipped) == 0 && !o.buildFailed {
		return o, fmt.Errorf("go test -run %q %s ran no tests: %s", run, pkg, strings.TrimSpace(stderr.String()))
	}
	return o, nil
}

func main() {
	file := flag.String("file", "integration/testdata/mutations.txt", "mutations file")
	only := flag.String("only", "", "run only mutations whose file or run pattern contains this")
	logPath := flag.String("log", "bin/mutation.log", "where the test output goes")
	flag.Parse()
	if err := run(*file, *only, *logPath); err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func run(file, only, logPath string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	ms, err := parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var sel []mutation
	for _, m := range ms {
		if only == "" || strings.Contains(m.File, only) || strings.Contains(m.Run, only) {
			sel = append(sel, m)
		}
	}
	if len(sel) == 0 {
		return fmt.Errorf("%s: no mutations (selected %q)", file, only)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()

	root, err := os.Getwd()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ovlmgr-mutation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(root, tmp); err != nil {
		return fmt.Errorf("copy tree to %s: %w", tmp, err)
	}
	// Each original must occur exactly once, in the copy as in the tree.
	for _, m := range sel {
		b, err := os.ReadFile(filepath.Join(tmp, m.File))
		if err != nil {
			return fmt.Errorf("mutation %s: %w", m.Run, err)
		}
		if c := bytes.Count(b, []byte(m.Original)); c != 1 {
			return fmt.Errorf("mutation %s: %s has the original text %d times; want once: %q", m.Run, m.File, c, m.Original)
		}
	}

	// Baseline: every listed test runs and passes on the unmodified copy.
	byPkg := map[string][]string{}
	for _, m := range sel {
		byPkg[m.Package] = append(byPkg[m.Package], m.Run)
	}
	var pkgs []string
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var bad []string
	for _, p := range pkgs {
		fmt.Printf("baseline %s ...\n", p)
		pattern := "(" + strings.Join(byPkg[p], ")|(") + ")"
		o, err := runTests(tmp, p, pattern, logf)
		switch {
		case err != nil:
			bad = append(bad, "baseline: "+err.Error())
		case o.buildFailed || len(o.failed) > 0 || len(o.skipped) > 0:
			bad = append(bad, fmt.Sprintf("baseline %s: failed %v, skipped %v, build failed %v: the unmodified tree must pass (see %s)", p, o.failed, o.skipped, o.buildFailed, logPath))
		default:
			for _, r := range byPkg[p] {
				re, err := regexp.Compile(r)
				if err != nil {
					return fmt.Errorf("run pattern %q: %w", r, err)
				}
				if !anyMatch(re, o.passed) {
					bad = append(bad, fmt.Sprintf("baseline %s: no test matching %q ran", p, r))
				}
			}
		}
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Println("FAIL:", b)
		}
		return errors.New("baseline did not pass; no mutation run")
	}

	type row struct {
		m      mutation
		result string
		caught bool
		took   time.Duration
	}
	var rows []row
	for i, m := range sel {
		fmt.Printf("mutation %d/%d: %s (%s) ...\n", i+1, len(sel), m.File, m.Run)
		path := filepath.Join(tmp, m.File)
		orig, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, bytes.Replace(orig, []byte(m.Original), []byte(m.Broken), 1), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(logf, "=== mutation %s: %s\n--- %s\n+++ %s\n", m.File, m.Comment, m.Original, m.Broken)
		start := time.Now()
		o, err := runTests(tmp, m.Package, m.Run, logf)
		r := row{m: m, took: time.Since(start).Round(time.Second)}
		switch {
		case err != nil:
			r.result = "error: " + err.Error()
		case o.buildFailed:
			r.result = "mutant does not build"
		case len(o.failed) > 0:
			r.result, r.caught = "failed: "+strings.Join(o.failed, ", "), true
		case len(o.skipped) > 0:
			r.result = "skipped: " + strings.Join(o.skipped, ", ")
		default:
			r.result = "passed: " + strings.Join(o.passed, ", ")
		}
		rows = append(rows, r)
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBREAK\tFILE\tTESTS\tRESULT\tTIME\tCAUGHT")
	caught := 0
	for _, r := range rows {
		c := "NO"
		if r.caught {
			c = "yes"
			caught++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", short(r.m.Comment, 60), r.m.File, r.m.Run, r.result, r.took, c)
	}
	tw.Flush()
	fmt.Printf("\n%d of %d breaks caught (test output: %s)\n", caught, len(rows), logPath)
	if caught != len(rows) {
		return fmt.Errorf("%d break(s) not caught by any test", len(rows)-caught)
	}
	return nil
}

func anyMatch(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
