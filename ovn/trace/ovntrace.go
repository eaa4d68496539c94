package trace

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// Flow is one logical flow ovn-trace went through.
type Flow struct {
	Table    int      `json:"table"`
	Stage    string   `json:"stage"` // ls_in_acl, lr_in_ip_routing, ...
	Match    string   `json:"match"`
	Priority int      `json:"priority"`
	UUID     string   `json:"uuid"` // first 8 hex digits of the Logical_Flow
	Actions  []string `json:"actions,omitempty"`
	// Implicit: no flow matched in this table (an implicit drop).
	Implicit bool `json:"implicit,omitempty"`
}

// Section is one pipeline pass of the packet through a datapath.
type Section struct {
	Pipeline string `json:"pipeline"` // ingress or egress
	Datapath string `json:"datapath"` // switch or router name
	InPort   string `json:"inport"`
	OutPort  string `json:"outport,omitempty"`
	Flows    []Flow `json:"flows"`
}

// Logical is ovn-trace's detailed output, parsed.
type Logical struct {
	Sections []Section `json:"sections"`
	// Outputs are the ports the packet left the logical network through
	// ("/* output to "P", type "" */" with type "" or "localport" ...).
	Outputs []string `json:"outputs,omitempty"`
	// Drop is the flow that dropped the packet, nil when none did.
	Drop *Flow `json:"drop,omitempty"`
	// DropDatapath is the datapath of Drop.
	DropDatapath string `json:"dropDatapath,omitempty"`
	Raw          string `json:"-"`
}

var (
	sectionRE  = regexp.MustCompile(`^\s*(ingress|egress)\(dp="([^"]*)", inport="([^"]*)"(?:, outport="([^"]*)")?\)\s*$`)
	flowRE     = regexp.MustCompile(`^\s*(\d+)\. (\S+) \([^)]*\): (.*), priority (\d+), uuid ([0-9a-f]+)\s*$`)
	implicitRE = regexp.MustCompile(`^\s*(\d+)\. (\S+): no match \(implicit drop\)`)
	outputRE   = regexp.MustCompile(`/\* output to "([^"]*)", type "([^"]*)" \*/`)
)

// parseLogical parses ovn-trace --detailed output.
func parseLogical(out string) *Logical {
	l := &Logical{Raw: out}
	var sec *Section
	var flow *Flow
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || strings.Trim(t, "-") == "" {
			continue
		}
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			l.Sections = append(l.Sections, Section{Pipeline: m[1], Datapath: m[2], InPort: m[3], OutPort: m[4]})
			sec = &l.Sections[len(l.Sections)-1]
			flow = nil
			continue
		}
		if sec == nil {
			continue
		}
		if m := flowRE.FindStringSubmatch(line); m != nil {
			tbl, _ := strconv.Atoi(m[1])
			prio, _ := strconv.Atoi(m[4])
			sec.Flows = append(sec.Flows, Flow{Table: tbl, Stage: m[2], Match: m[3], Priority: prio, UUID: m[5]})
			flow = &sec.Flows[len(sec.Flows)-1]
			continue
		}
		if m := implicitRE.FindStringSubmatch(line); m != nil {
			tbl, _ := strconv.Atoi(m[1])
			sec.Flows = append(sec.Flows, Flow{Table: tbl, Stage: m[2], Implicit: true})
			flow = &sec.Flows[len(sec.Flows)-1]
			if l.Drop == nil {
				l.Drop, l.DropDatapath = flow, sec.Datapath
			}
			continue
		}
		if m := outputRE.FindStringSubmatch(t); m != nil {
			if m[2] != "patch" {
				l.Outputs = append(l.Outputs, m[1])
			}
		}
		if flow == nil {
			continue
		}
		flow.Actions = append(flow.Actions, t)
		if l.Drop == nil && (t == "drop;" || strings.HasPrefix(t, "ct_commit { ct_mark.blocked = 1; }") || loggedDrop(t)) {
			l.Drop, l.DropDatapath = flow, sec.Datapath
		}
	}
	// Pointers into slices that grew may be stale: re-point Drop.
	if l.Drop != nil {
		for i := range l.Sections {
			for j := range l.Sections[i].Flows {
				f := &l.Sections[i].Flows[j]
				if f.UUID == l.Drop.UUID && f.Stage == l.Drop.Stage && f.Table == l.Drop.Table && l.Sections[i].Datapath == l.DropDatapath {
					cp := *f
					l.Drop = &cp
				}
			}
		}
	}
	return l
}

// runOVNTrace runs ovn-trace against SB with microflow, new-connection
// conntrack state at every ct_next, lbDst (IP:PORT, optional) as the
// load balancer's choice, and returns its detailed output.
func runOVNTrace(ctx context.Context, sb, microflow, lbDst string) (string, error) {
	args := []string{"--db=" + sb, "--detailed"}
	if lbDst != "" {
		args = append(args, "--lb-dst="+lbDst)
	}
	for i := 0; i < 8; i++ {
		args = append(args, "--ct=new,trk")
	}
	args = append(args, microflow)
	bin, err := sysbin.Find("ovn-trace")
	if err != nil {
		return "", fmt.Errorf("ovn-trace: %w", err)
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ovn-trace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// loggedDrop reports whether an action line is the log() of a dropping or
// rejecting ACL: ovn-trace prints a logged drop ACL's actions as the log()
// alone, with no drop; after it.
func loggedDrop(action string) bool {
	return strings.HasPrefix(action, "log(") && (strings.Contains(action, "verdict=drop") || strings.Contains(action, "verdict=reject"))
}
