// Package diagnose checks an ovlmgr deployment and reports a checklist in
// ovlmgr terms: every line is ok, warn or fail, with a one-line fix. This
// package holds the checklist types and the central checks (NB and SB
// databases, ovn-northd, chassis, ports); package ovs/nodediag adds the
// checks that must run on a node.
package diagnose

import (
	"fmt"
	"io"
	"strings"
)

// Status of one check.
type Status string

// Check results, from best to worst.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Check is one line of the checklist.
type Check struct {
	// Area groups checks: "cluster", "chassis", "ports", "node n1".
	Area string `json:"area"`
	// Name is short and stable, e.g. "nb", "northd", "chassis n2", "tunnel n1->n3".
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix is a one-line remedy when Status is not ok.
	Fix string `json:"fix,omitempty"`
}

// Report is a checklist.
type Report struct {
	Checks []Check `json:"checks"`
	// Status is the worst status of all checks.
	Status Status `json:"status"`
}

// Add appends checks and updates the overall status.
func (r *Report) Add(cs ...Check) {
	for _, c := range cs {
		r.Checks = append(r.Checks, c)
		if r.Status == "" || c.Status.rank() > r.Status.rank() {
			r.Status = c.Status
		}
	}
	if r.Status == "" {
		r.Status = OK
	}
}

// Failed returns the checks that are not ok with at least status s.
func (r *Report) Failed(s Status) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status.rank() >= s.rank() && c.Status != OK {
			out = append(out, c)
		}
	}
	return out
}

// Find returns the first check whose name starts with prefix, or nil.
func (r *Report) Find(prefix string) *Check {
	for i := range r.Checks {
		if strings.HasPrefix(r.Checks[i].Name, prefix) {
			return &r.Checks[i]
		}
	}
	return nil
}

// WriteText prints the checklist, one line per check plus an indented fix.
func (r *Report) WriteText(w io.Writer) {
	area := ""
	for _, c := range r.Checks {
		if c.Area != area {
			area = c.Area
			fmt.Fprintf(w, "%s:\n", area)
		}
		fmt.Fprintf(w, "  %-4s  %-22s %s\n", c.Status, c.Name, c.Detail)
		if c.Fix != "" && c.Status != OK {
			fmt.Fprintf(w, "        fix: %s\n", c.Fix)
		}
	}
	n := len(r.Failed(Warn))
	switch r.Status {
	case OK, "":
		fmt.Fprintf(w, "all %d checks ok\n", len(r.Checks))
	default:
		fmt.Fprintf(w, "%d of %d checks need attention (worst: %s)\n", n, len(r.Checks), r.Status)
	}
}

// Okf builds an ok check.
func Okf(area, name, format string, args ...interface{}) Check {
	return Check{Area: area, Name: name, Status: OK, Detail: fmt.Sprintf(format, args...)}
}

// Failf builds a failed check with a fix.
func Failf(area, name, fix, format string, args ...interface{}) Check {
	return Check{Area: area, Name: name, Status: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

// Warnf builds a warning with a fix.
func Warnf(area, name, fix, format string, args ...interface{}) Check {
	return Check{Area: area, Name: name, Status: Warn, Detail: fmt.Sprintf(format, args...), Fix: fix}
}
