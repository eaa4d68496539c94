package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
)

// fault is one daemon the fault run kills -9, keeps down and restarts.
type fault struct {
	node, daemon string
	// full is the daemon's name in `lab status` (ovsdb-server-nb, ...).
	full    string
	downFor time.Duration
	// area and check name the `ovlmgr diagnose` check about this daemon;
	// cause is what that check must say while the daemon is down.
	area, check, cause string
	// follows lists what other failed checks may say while it is down:
	// consequences of this outage, naming it. Any other failed check is
	// diagnose blaming something that is not broken.
	follows []string
}

// faults are the outages of the fault run on lab l, one after another: the
// central databases and northd, then ovn-controller and ovs-vswitchd (10 s)
// on the first node (the side of the pinging and sending container).
func faults(l *lab.Lab) []fault {
	n := l.Nodes[0].Name
	return []fault{
		{lab.Central, "nb", "ovsdb-server-nb", 2 * time.Second,
			"cluster", "nb", "NB unreachable at " + l.NB, []string{"NB unreachable at " + l.NB}},
		{lab.Central, "sb", "ovsdb-server-sb", 2 * time.Second,
			"cluster", "sb", "SB unreachable at " + l.SB, []string{"SB unreachable at " + l.SB, "not connected to SB"}},
		{lab.Central, "northd", "ovn-northd", 2 * time.Second,
			"cluster", "northd", `ovn-northd is not running: nobody holds its lock "ovn_northd"`, nil},
		{n, "ovn-controller", "ovn-controller", 2 * time.Second,
			"node " + n, "ovn-controller", "ovn-controller is not running", nil},
		{n, "ovs-vswitchd", "ovs-vswitchd", 10 * time.Second,
			"node " + n, "ovs-vswitchd", "ovs-vswitchd is not running", []string{"ovs-vswitchd is not running"}},
	}
}

// faultResult is what one outage cost the traffic.
type faultResult struct {
	fault
	sent, lost int           // echo requests sent from the kill to recovery, and unanswered
	longestGap time.Duration // longest time without an echo reply
	tcpGap     time.Duration // longest time without stream bytes arriving
	clean      time.Duration // from the restart until `ovlmgr diagnose` is all clean
}

// pinger sends ICMP echo requests from a container every interval and
// records when each is answered.
type pinger struct {
	conn     *icmp.PacketConn
	dst      net.IP
	id       int
	interval time.Duration
	mu       sync.Mutex
	sentAt   []time.Time // by sequence number
	replied  []time.Time // zero: no reply (yet)
	stop     chan struct{}
	done     sync.WaitGroup
}

func startPinger(t testing.TB, src *container, dst net.IP, interval time.Duration) *pinger {
	t.Helper()
	p := &pinger{dst: dst, id: os.Getpid() & 0xffff, interval: interval, stop: make(chan struct{})}
	if err := src.ns.Do(func(ns.NetNS) error {
		var err error
		p.conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatalf("icmp socket in %s: %v", src.id, err)
	}
	p.done.Add(2)
	go p.send()
	go p.receive()
	t.Cleanup(p.close)
	return p
}

func (p *pinger) send() {
	defer p.done.Done()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		seq := len(p.sentAt)
		p.sentAt = append(p.sentAt, time.Now())
		p.replied = append(p.replied, time.Time{})
		p.mu.Unlock()
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: []byte("ovlmgr-fault")}}
		b, _ := m.Marshal(nil)
		_, _ = p.conn.WriteTo(b, &net.IPAddr{IP: p.dst})
	}
}

func (p *pinger) receive() {
	defer p.done.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		now := time.Now()
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply || !from.(*net.IPAddr).IP.Equal(p.dst) {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id {
			continue
		}
		p.mu.Lock()
		// Sequence numbers wrap at 65536: the newest request with these low bits.
		for s := len(p.sentAt) - 1; s >= 0 && s >= len(p.sentAt)-65536; s-- {
			if s&0xffff == e.Seq {
				if p.replied[s].IsZero() {
					p.replied[s] = now
				}
				break
			}
		}
		p.mu.Unlock()
	}
}

func (p *pinger) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.conn.Close()
	p.done.Wait()
}

// seq is the number of requests sent so far.
func (p *pinger) seq() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sentAt)
}

// answeredSince reports whether a request sent at or after seq was answered.
func (p *pinger) answeredSince(seq int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := seq; s < len(p.replied); s++ {
		if !p.replied[s].IsZero() {
			return true
		}
	}
	return false
}

// window counts the requests sent in [from, to) and the unanswered ones,
// and the longest time between replies (or the window's ends) in it.
func (p *pinger) window(from, to int) (sent, lost int, gap time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if to > len(p.sentAt) {
		to = len(p.sentAt)
	}
	last := p.sentAt[from]
	for s := from; s < to; s++ {
		sent++
		r := p.replied[s]
		if r.IsZero() {
			lost++
			continue
		}
		if d := r.Sub(last); d > gap {
			gap = d
		}
		if r.After(last) {
			last = r
		}
	}
	return sent, lost, gap
}

// stream is a TCP connection between two containers carrying a small write
// every interval; it records every error and when bytes last arrived.
type stream struct {
	mu       sync.Mutex
	received int64
	lastRecv time.Time
	longest  time.Duration // longest time between arrivals since markGap
	errs     []error
	conn     net.Conn
	stop     chan struct{}
	done     sync.WaitGroup
}

func startStream(t testing.TB, srv, cl *container, interval time.Duration) *stream {
	t.Helper()
	s := &stream{stop: make(chan struct{})}
	var ln net.Listener
	if err := srv.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(srv.ip().String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ns.Do(func(ns.NetNS) error {
		var err error
		for i := 0; i < 5; i++ {
			d := net.Dialer{Timeout: 3 * time.Second}
			if s.conn, err = d.DialContext(ctx, "tcp4", ln.Addr().String()); err == nil {
				return nil
			}
		}
		return err
	}); err != nil {
		t.Fatalf("stream dial %s: %v", ln.Addr(), err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatalf("stream accept: %v", err)
	}
	s.lastRecv = time.Now()
	s.done.Add(2)
	go func() { // receiver
		defer s.done.Done()
		defer peer.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := peer.Read(buf)
			now := time.Now()
			s.mu.Lock()
			if n > 0 {
				if d := now.Sub(s.lastRecv); d > s.longest {
					s.longest = d
				}
				s.received += int64(n)
				s.lastRecv = now
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					s.errs = append(s.errs, fmt.Errorf("receiver: %w", err))
				}
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
	go func() { // sender
		defer s.done.Done()
		chunk := bytes.Repeat([]byte("ovlmgr-stream-"), 73) // ~1 KiB
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				if err := s.conn.(*net.TCPConn).CloseWrite(); err != nil {
					s.addErr(fmt.Errorf("sender close: %w", err))
				}
				return
			case <-tick.C:
			}
			if _, err := s.conn.Write(chunk); err != nil {
				s.addErr(fmt.Errorf("sender: %w", err))
				return
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) addErr(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

// close ends the stream cleanly (the sender half-closes, the receiver reads
// to EOF) and waits for both sides.
func (s *stream) close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	done := make(chan struct{})
	go func() { s.done.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		s.addErr(errors.New("stream did not drain within 2 minutes after the sender closed"))
		s.conn.Close()
		<-done
	}
	s.conn.Close()
}

func (s *stream) state() (received int64, errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received, append([]error(nil), s.errs...)
}

// markGap starts a new longest-gap measurement and returns the old one.
func (s *stream) markGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.longest
	if d := time.Since(s.lastRecv); d > g {
		g = d
	}
	s.longest = 0
	return g
}

// labStatusJSON runs `ovlmgr lab status -o json` on l (exit 1 is expected
// while a daemon is down) and decodes it.
func labStatusJSON(ctx context.Context, t testing.TB, l *lab.Lab) (*lab.Status, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ovlmgrBin(t), "lab", "status", "--dir", l.Dir, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var st lab.Status
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("lab status: output is not JSON (%v): %v: %s %s", runErr, err, stdout.String(), stderr.String())
	}
	return &st, runErr
}

// labCLI runs `ovlmgr lab VERB --dir DIR args...`.
func labCLI(ctx context.Context, t testing.TB, l *lab.Lab, verb string, args ...string) {
	t.Helper()
	full := append([]string{"lab", verb, "--dir", l.Dir}, args...)
	out, err := exec.CommandContext(ctx, ovlmgrBin(t), full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovlmgr %s: %v: %s", strings.Join(full, " "), err, out)
	}
}

// runFaults brings up its own 2-node lab with a container on each node, keeps
// a ping (every 20 ms) and a TCP stream (1 KiB every 10 ms) running from the
// n1 container to the n2 container, and kills -9 each daemon of faults(lab)
// in turn with `ovlmgr lab kill`, checks that `ovlmgr lab status` and
// `ovlmgr diagnose --lab` (without --sync) name it dead with its cause and
// exit non-zero, keeps it down, restarts it with `ovlmgr lab restart`, waits
// until both ping replies and stream bytes arrive again, and then until
// diagnose is all ok again. Failures go to tb; the results are what each
// outage cost.
func runFaults(tb testing.TB) []faultResult {
	tb.Helper()
	needLab(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("ft")})
	if err != nil {
		tb.Fatalf("lab up: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			tb.Errorf("lab down: %v", err)
		}
	})
	nb := cniNB(tb, l)
	netName := "ft" + fmt.Sprint(os.Getpid()%10000)
	cniNetwork(tb, nb, netName, "198.19.90.0/24")
	list := confList(tb, netName, "1.0.0", nil)
	a := newContainer(tb, newRuntime(tb, l.Nodes[0]), list)
	a.mustAdd(tb, ctx)
	b := newContainer(tb, newRuntime(tb, l.Nodes[1]), list)
	b.mustAdd(tb, ctx)
	if err := a.ping(ctx, b.ip()); err != nil {
		tb.Fatalf("before any fault: %v", err)
	}

	p := startPinger(tb, a, b.ip(), 20*time.Millisecond)
	s := startStream(tb, b, a, 10*time.Millisecond)
	// Both paths work before the first fault (the probes can succeed), and
	// diagnose is clean (what it says later is about the fault).
	waitProgress(tb, p, s, "before any fault")
	if _, err := waitDiagnoseClean(ctx, tb, l, nil); err != nil {
		tb.Fatalf("before any fault: %v", err)
	}

	var results []faultResult
	for _, f := range faults(l) {
		what := f.node + " " + f.daemon
		from := p.seq()
		s.markGap()
		labCLI(ctx, tb, l, "kill", f.node, f.daemon)
		st, err := labStatusJSON(ctx, tb, l)
		if err == nil {
			tb.Errorf("%s killed: `lab status` exits 0 (healthy) while it is down", what)
		}
		if st != nil && !namesDead(st, f.node, f.full) {
			tb.Errorf("%s killed: `lab status` does not name it dead: daemons %+v, problems %q", what, st.Daemons, st.Problems)
		}
		rep, err := diagnoseJSON(ctx, tb, l)
		if err := diagnoseNamesDead(f, rep, err); err != nil {
			tb.Errorf("%s killed: %v", what, err)
		}
		time.Sleep(f.downFor)
		labCLI(ctx, tb, l, "restart", f.node, f.daemon)
		// Clean again after the restart (and before the next fault): the
		// daemon's own check is ok and nothing else is left failing.
		restarted := time.Now()
		if _, err := waitDiagnoseClean(ctx, tb, l, &f); err != nil {
			tb.Fatalf("after restarting %s: %v", what, err)
		}
		r := faultResult{fault: f, clean: time.Since(restarted)}
		if err := waitRecovered(ctx, p, s, p.seq()); err != nil {
			tb.Fatalf("after restarting %s: %v", what, err)
		}
		// One more second of traffic in the window: losses right after the
		// first reply count too.
		time.Sleep(time.Second)
		r.tcpGap = s.markGap()
		r.sent, r.lost, r.longestGap = p.window(from, p.seq())
		results = append(results, r)
		if _, errs := s.state(); len(errs) > 0 {
			tb.Fatalf("TCP stream broken by the %s outage: %v", what, errors.Join(errs...))
		}
	}
	s.close()
	if _, errs := s.state(); len(errs) > 0 {
		tb.Fatalf("TCP stream: %v", errors.Join(errs...))
	}
	return results
}

// diagnoseJSON runs `ovlmgr diagnose --lab DIR -o json` (without --sync)
// and decodes its report; the error is the command's (exit 1 when a check
// fails), with its stderr.
func diagnoseJSON(ctx context.Context, t testing.TB, l *lab.Lab) (*diagnose.Report, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ovlmgrBin(t), "diagnose", "--lab", l.Dir, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r diagnose.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("ovlmgr diagnose: output is not JSON (%v): %v: %s %s", runErr, err, stdout.String(), stderr.String())
	}
	if runErr != nil {
		runErr = fmt.Errorf("%w: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return &r, runErr
}

// diagnoseNamesDead checks what `ovlmgr diagnose` said while f's daemon was
// down: it exited non-zero, f's check failed saying f.cause, with a fix,
// and every other failed check is a consequence naming the same outage.
func diagnoseNamesDead(f fault, r *diagnose.Report, runErr error) error {
	if r == nil {
		return runErr
	}
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) || ee.ExitCode() == 0 {
		return fmt.Errorf("`ovlmgr diagnose` exits %v, want non-zero while %s is down:\n%s", runErr, f.full, reportText(r))
	}
	var problems []string
	named := false
	for _, c := range r.Failed(diagnose.Fail) {
		switch {
		case c.Area == f.area && c.Name == f.check:
			if !strings.Contains(c.Detail, f.cause) || c.Fix == "" {
				problems = append(problems, fmt.Sprintf("%s %s: %q (fix %q), want %q and a fix", c.Area, c.Name, c.Detail, c.Fix, f.cause))
			} else {
				named = true
			}
		case !containsAny(c.Detail, f.follows):
			problems = append(problems, fmt.Sprintf("%s %s fails for another reason: %s", c.Area, c.Name, c.Detail))
		}
	}
	if !named {
		problems = append(problems, fmt.Sprintf("no failed check %q in %q saying %q", f.check, f.area, f.cause))
	}
	if len(problems) > 0 {
		return fmt.Errorf("`ovlmgr diagnose` while %s is down: %s:\n%s", f.full, strings.Join(problems, "; "), reportText(r))
	}
	return nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// waitDiagnoseClean runs `ovlmgr diagnose --lab` until it exits 0 with
// every check ok, including f's check (if f is given). Clients reconnect
// with backoff after a restart, so the first runs may still fail; the bound
// (a minute) only keeps a lasting failure from hanging the run. It returns
// the number of runs.
func waitDiagnoseClean(ctx context.Context, tb testing.TB, l *lab.Lab, f *fault) (int, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var seen []string // what was not ok meanwhile, for the log
	var last *diagnose.Report
	for runs := 1; ; runs++ {
		r, err := diagnoseJSON(ctx, tb, l)
		if r != nil {
			last = r
		}
		if err == nil && r.Status != diagnose.OK {
			err = fmt.Errorf("exit 0 but status %s", r.Status)
		}
		if err == nil && f != nil {
			if c := findCheck(r, f.area, f.check); c == nil || c.Status != diagnose.OK {
				err = fmt.Errorf("check %s %s: %+v", f.area, f.check, c)
			}
		}
		if err == nil {
			if len(seen) > 0 {
				tb.Logf("`ovlmgr diagnose` all ok after %d runs; before: %s", runs, strings.Join(seen, "; "))
			}
			return runs, nil
		}
		if r != nil {
			for _, c := range r.Failed(diagnose.Warn) {
				if line := c.Area + " " + c.Name + ": " + c.Detail; !slices.Contains(seen, line) {
					seen = append(seen, line)
				}
			}
		}
		select {
		case <-ctx.Done():
			text := ""
			if last != nil {
				text = reportText(last)
			}
			return runs, fmt.Errorf("`ovlmgr diagnose` not clean within a minute (%d runs): %v; not ok meanwhile: %s; the last report:\n%s",
				runs, err, strings.Join(seen, "; "), text)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// findCheck returns the check called name in area, or nil.
func findCheck(r *diagnose.Report, area, name string) *diagnose.Check {
	for i := range r.Checks {
		if r.Checks[i].Area == area && r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// namesDead reports whether st shows daemon name on node as not alive and
// one of its problems names it.
func namesDead(st *lab.Status, node, name string) bool {
	dead := false
	for _, d := range st.Daemons {
		if d.Node == node && d.Name == name && !d.Alive {
			dead = true
		}
	}
	for _, pr := range st.Problems {
		if dead && strings.Contains(pr, name+" on "+node) {
			return true
		}
	}
	return false
}

// waitProgress waits until a ping reply and new stream bytes arrive.
func waitProgress(tb testing.TB, p *pinger, s *stream, what string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitRecovered(ctx, p, s, p.seq()); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// waitRecovered waits until a request sent at or after seq is answered and
// the stream has received more bytes than now. A broken stream ends the
// wait. The bound (a minute) only keeps a dead path from hanging the run.
func waitRecovered(ctx context.Context, p *pinger, s *stream, seq int) error {
	before, _ := s.state()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		got, errs := s.state()
		if len(errs) > 0 {
			return fmt.Errorf("TCP stream broken: %w", errors.Join(errs...))
		}
		pinged := p.answeredSince(seq)
		if pinged && got > before {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no recovery within a minute: ping answered %v, stream bytes %d -> %d", pinged, before, got)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestFaultRestarts: established TCP between containers on two nodes
// survives a kill -9 and restart of NB, SB, northd, and of ovn-controller
// and ovs-vswitchd (down 10 s) on the sender's node; ping comes back after
// each; `lab status` and `ovlmgr diagnose` name each dead daemon while it is
// down, and diagnose is all ok again after its restart.
func TestFaultRestarts(t *testing.T) {
	for _, r := range runFaults(t) {
		t.Logf("%s %s down %v: %d/%d echo requests lost, longest ping gap %v, longest stream gap %v, diagnose all ok %v after the restart",
			r.node, r.daemon, r.downFor, r.lost, r.sent, r.longestGap.Round(time.Millisecond), r.tcpGap.Round(time.Millisecond), r.clean.Round(time.Millisecond))
	}
}

// BenchmarkFaultRestarts prints, per daemon killed -9 and restarted (see
// runFaults), the echo requests lost (20 ms apart) and the longest gaps
// without a ping reply and without stream bytes, and the time from the
// restart until `ovlmgr diagnose` is all ok again. One run per benchmark
// call: the numbers are per outage, not per b.N.
func BenchmarkFaultRestarts(b *testing.B) {
	for _, r := range runFaults(b) {
		b.Run(fmt.Sprintf("%s=%s", r.node, r.daemon), func(b *testing.B) {
			b.ReportMetric(r.downFor.Seconds(), "down-s")
			b.ReportMetric(float64(r.lost), "pings-lost")
			b.ReportMetric(float64(r.sent), "pings-sent")
			b.ReportMetric(r.longestGap.Seconds(), "ping-gap-s")
			b.ReportMetric(r.tcpGap.Seconds(), "tcp-gap-s")
			b.ReportMetric(r.clean.Seconds(), "diagnose-ok-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestLabRestartBadNames: lab restart and lab kill refuse a node or daemon
// the lab does not have, naming what is allowed, and touch nothing.
func TestLabRestartBadNames(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct{ node, daemon, want string }{
		{"n1", "northd", "allowed ovsdb-server, ovs-vswitchd, ovn-controller"},
		{lab.Central, "ovn-controller", "allowed nb, sb, northd"},
		{"n9", "ovn-controller", `no node "n9"`},
	} {
		err := l.Restart(ctx, c.node, c.daemon, lab.RestartOptions{Kill: true})
		if !errors.Is(err, lab.ErrUnknownDaemon) || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("restart %s %s: %v; want ErrUnknownDaemon naming %q", c.node, c.daemon, err, c.want)
		}
		if err := l.Kill(ctx, c.node, c.daemon); !errors.Is(err, lab.ErrUnknownDaemon) {
			t.Errorf("kill %s %s: %v; want ErrUnknownDaemon", c.node, c.daemon, err)
		}
	}
	if err := l.Restart(ctx, "n1", "ovn-controller", lab.RestartOptions{DownFor: -time.Second}); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("restart with negative down-for: %v; want refused", err)
	}
	st, err := l.Status(ctx)
	if err != nil || !st.Healthy() {
		t.Fatalf("lab after refused restarts: %v %+v; want healthy", err, st)
	}
}
