package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/events"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
)

// cliProc is a long-running ovlmgr command (events --follow, exporter)
// started by a test: its stdout lines with their arrival times, and the
// first stderr line matching a pattern.
type cliProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []timedLine
	kick   chan struct{}
	stderr strings.Builder
}

type timedLine struct {
	at   time.Time
	text string
}

// startCLI runs the test's ovlmgr binary with args, stopped (by its PID) at
// test end, and waits until a line of its stderr matches ready; it returns
// that match's submatches.
func startCLI(t testing.TB, ready string, args ...string) (*cliProc, []string) {
	t.Helper()
	bin := filepath.Join(cniPluginDir(t), "ovlmgr")
	p := &cliProc{cmd: exec.Command(bin, args...), kick: make(chan struct{}, 1)}
	p.cmd.Env = os.Environ()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-done
		_ = p.cmd.Wait()
	})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, timedLine{time.Now(), sc.Text()})
			p.mu.Unlock()
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}()
	re := regexp.MustCompile(ready)
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m
				sent = true
			}
		}
		if !sent {
			close(found)
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case m, ok := <-found:
		if !ok {
			t.Fatalf("ovlmgr %s exited before %q:\n%s", strings.Join(args, " "), ready, p.errText())
		}
		return p, m
	case <-time.After(30 * time.Second):
		t.Fatalf("ovlmgr %s: no %q on stderr within 30s:\n%s", strings.Join(args, " "), ready, p.errText())
	}
	return nil, nil
}

func (p *cliProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitEvent waits up to within for a JSON event line (events -o json) that
// match accepts and returns it with its arrival time.
func (p *cliProc) waitEvent(within time.Duration, match func(events.Event) bool) (events.Event, time.Time, bool) {
	deadline := time.After(within)
	seen := 0
	for {
		p.mu.Lock()
		lines := p.lines[seen:]
		seen = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			var e events.Event
			if json.Unmarshal([]byte(l.text), &e) == nil && match(e) {
				return e, l.at, true
			}
		}
		select {
		case <-p.kick:
		case <-deadline:
			return events.Event{}, time.Time{}, false
		}
	}
}

func (p *cliProc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// nodeWithStats is node whose plugin calls record their CNI counters in
// the node's directory (what the lab sets up; older labs lack the variable).
func nodeWithStats(node *lab.Node) *lab.Node {
	n := *node
	n.Env = append(append([]string{}, node.Env...), cnistats.EnvDir+"="+node.Dir)
	return &n
}

// eventBound is the bound on event arrival: an event is printed
// within 2 s of what it reports happening.
const eventBound = 2 * time.Second

// TestEventsFollow: `ovlmgr events --follow` (the real binary, on the shared
// lab) prints a container's attach, a connection denied by a deny policy
// (from the receiving node's ovn-controller ACL log, in ovlmgr's terms:
// policy, container names, port, node) and the detach, each within 2 s of
// it happening: attach and detach measured from the CNI ADD/DEL returning,
// the verdict from the connection attempt.
func TestEventsFollow(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	n1, n2, n3 := segNodes(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := segName("evr")
	segRouter(t, nb, r)
	na, nbn := segName("eva"), segName("evb")
	segNet(t, nb, na, "198.18.72.0/24", r, "")
	segNet(t, nb, nbn, "198.18.73.0/24", r, "")
	deny := segName("deny-db")
	segPolicy(t, nb, policy.Spec{Name: deny, Network: nbn, Action: policy.Deny, From: []string{na}, Proto: "tcp", Port: "5432", Priority: 100})
	nt := segName("evt")
	segNet(t, nb, nt, "198.18.75.0/24", r, policy.DefaultDeny)
	b := segCtr(t, ctx, n2, nbn)
	tc := segCtr(t, ctx, n3, nt)

	p, _ := startCLI(t, "following", "events", "--lab", l.Name, "--follow", "-o", "json")
	// The real-deployment path: n2's node exporter serves its ACL log and a
	// second events process reads it over HTTP (and NB/SB by endpoint).
	_, m := startCLI(t, `serving http://(\S+)/metrics`, "exporter", "--lab", l.Name, "--lab-node", n2.Name, "--listen", "127.0.0.1:0")
	agent := "http://" + m[1]
	pa, _ := startCLI(t, "following", "--nb", l.NB, "--sb", l.SB, "events", "--follow", "--agent", agent, "-o", "json")

	// Attach.
	a := newContainer(t, newRuntime(t, n1), confList(t, na, "1.0.0", nil))
	a.mustAdd(t, ctx)
	added := time.Now()
	e, at, ok := p.waitEvent(10*time.Second, func(e events.Event) bool {
		return e.Kind == events.Attached && e.IP == a.ip().String()
	})
	if !ok {
		t.Fatalf("no attached event for %s (%s) within 10s; events:\n%s\nstderr:\n%s", a.id, a.ip(), p.out(), p.errText())
	}
	if d := at.Sub(added); d > eventBound {
		t.Errorf("attached event arrived %s after ADD returned; want within %s", d, eventBound)
	}
	if e.Network != na || e.Node != n1.Name || e.Container != dns.IDName(a.id) || !strings.Contains(e.Text, "attached to network "+na) {
		t.Errorf("attached event = %+v; want network %s, node %s", e, na, n1.Name)
	}
	t.Logf("attach: event %s after ADD returned: %s", at.Sub(added).Round(time.Millisecond), e.Text)

	// A denied connection: warm the path up first (the first packet to a
	// new tunnel peer can be lost), then one TCP attempt to 5432.
	if err := a.ping(ctx, b.ip()); err != nil {
		t.Fatalf("ping %s -> %s: %v", a.id, b.ip(), err)
	}
	tried := time.Now()
	_ = a.ns.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(b.ip().String(), "5432"), 500*time.Millisecond)
		if err == nil {
			c.Close()
			t.Errorf("%s reached %s:5432 through deny policy %s", a.id, b.ip(), deny)
		}
		return nil
	})
	e, at, ok = p.waitEvent(10*time.Second, func(e events.Event) bool {
		return e.Kind == events.Verdict && e.Policy == deny && strings.Contains(e.Src, a.ip().String())
	})
	if !ok {
		t.Fatalf("no verdict of policy %s within 10s; events:\n%s", deny, p.out())
	}
	if d := at.Sub(tried); d > eventBound {
		t.Errorf("denied-connection event arrived %s after the attempt; want within %s", d, eventBound)
	}
	// In ovlmgr's terms: "<source name> <ip>:<port> -> <destination name>:5432/tcp"
	// (names: the containers' DNS names, here derived from their IDs).
	want := fmt.Sprintf("denied by policy %s: %s %s:", deny, dns.IDName(a.id), a.ip())
	wantDst := fmt.Sprintf(" -> %s:5432/tcp on node %s", dns.IDName(b.id), n2.Name)
	if e.Verdict != "denied" || e.Node != n2.Name || e.Network != nbn || e.Proto != "tcp" || !strings.HasSuffix(e.Dst, ":5432") ||
		!strings.HasPrefix(e.Text, want) || !strings.HasSuffix(e.Text, wantDst) {
		t.Errorf("verdict event = %+v; want %q...%q", e, want, wantDst)
	}
	t.Logf("verdict: event %s after the attempt: %s", at.Sub(tried).Round(time.Millisecond), e.Text)
	if e, at, ok := pa.waitEvent(10*time.Second, func(e events.Event) bool {
		return e.Kind == events.Verdict && e.Policy == deny && strings.Contains(e.Src, a.ip().String())
	}); !ok {
		t.Errorf("events --agent %s: no verdict of policy %s within 10s; events:\n%s\nstderr:\n%s", agent, deny, pa.out(), pa.errText())
	} else if d := at.Sub(tried); d > eventBound {
		t.Errorf("events --agent: denied-connection event arrived %s after the attempt; want within %s", d, eventBound)
	} else {
		t.Logf("verdict through n2's exporter: %s after the attempt: %s", d.Round(time.Millisecond), e.Text)
	}
	fams := scrape(t, agent)
	if v, ok := sample(fams, "ovlmgr_acl_log_hits_total", map[string]string{"node": n2.Name, "network": nbn, "policy": deny, "verdict": "drop"}); !ok || v < 1 {
		t.Errorf("n2's exporter: ovlmgr_acl_log_hits_total{policy=%s,verdict=drop} = %v (present %v); want >= 1", deny, v, ok)
	}

	// The default-deny network's own drop is logged too, under its name.
	if err := tc.ping(ctx, a.ip()); err != nil { // T's own traffic passes; warms the tunnel
		t.Fatalf("ping %s -> %s: %v", tc.id, a.ip(), err)
	}
	tried = time.Now()
	_ = a.ns.Do(func(ns.NetNS) error {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(tc.ip().String(), "8081"), 500*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("%s reached default-deny network %s", a.id, nt)
		}
		return nil
	})
	e, at, ok = p.waitEvent(10*time.Second, func(e events.Event) bool {
		return e.Kind == events.Verdict && e.Network == nt && strings.Contains(e.Src, a.ip().String())
	})
	if !ok {
		t.Fatalf("no default-deny verdict for network %s within 10s; events:\n%s", nt, p.out())
	}
	if d := at.Sub(tried); d > eventBound {
		t.Errorf("default-deny event arrived %s after the attempt; want within %s", d, eventBound)
	}
	if e.Policy != events.IsolationPolicy || e.Node != n3.Name || !strings.HasPrefix(e.Text, "denied by default-deny of network "+nt+": "+dns.IDName(a.id)+" ") ||
		!strings.HasSuffix(e.Text, " -> "+dns.IDName(tc.id)+":8081/tcp on node "+n3.Name) {
		t.Errorf("default-deny verdict = %+v; want policy %s on node %s", e, events.IsolationPolicy, n3.Name)
	}
	t.Logf("default-deny: event %s after the attempt: %s", at.Sub(tried).Round(time.Millisecond), e.Text)

	// Detach.
	if err := a.del(ctx); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	e, at, ok = p.waitEvent(10*time.Second, func(e events.Event) bool {
		return e.Kind == events.Detached && e.IP == a.ip().String()
	})
	if !ok {
		t.Fatalf("no detached event for %s within 10s; events:\n%s", a.id, p.out())
	}
	if d := at.Sub(deleted); d > eventBound {
		t.Errorf("detached event arrived %s after DEL returned; want within %s", d, eventBound)
	}
	t.Logf("detach: event %s after DEL returned: %s", at.Sub(deleted).Round(time.Millisecond), e.Text)

	// Without --follow: the verdict is in the logs' history, filtered by policy.
	out, err := exec.CommandContext(ctx, filepath.Join(cniPluginDir(t), "ovlmgr"), "events", "--lab", l.Name, "--policy", deny).CombinedOutput()
	// (a is gone now: its address is no longer a container's name.)
	hist := fmt.Sprintf("denied by policy %s: %s:", deny, a.ip())
	if err != nil || !strings.Contains(string(out), hist) || strings.Contains(string(out), "default-deny") {
		t.Errorf("events --policy %s = %v:\n%s\nwant a line with %q and none of other policies", deny, err, out, hist)
	}
}
