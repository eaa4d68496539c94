package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// chaosKill is one fault of the chaos schedule: which ("nb", "sb",
// "northd") has its leader (active instance) killed -9 and restarted.
type chaosKill struct {
	which   string
	victim  string
	atOp    int64         // number of actions done when it fired
	toWrite time.Duration // kill -> next successful NB write (a probe)
}

// chaosResult is what a chaos run did and found.
type chaosResult struct {
	actions, ok, failed int
	failures            []string // each failed action's error
	took                map[string][]time.Duration
	kills               []chaosKill
	pingSent, pingLost  int
	longestGap          time.Duration // longest time without an echo reply during the run
	elapsed             time.Duration
	problems            []string // NB content that disagrees with the actions that succeeded
}

// chaosClient runs mixed actions on its own router's networks and keeps
// the model of what NB must hold: exactly the results of the actions that
// reported success.
type chaosClient struct {
	id       int
	nb       client.Client
	rnd      *rand.Rand
	router   string
	nets     map[string]*network.Network
	netSeq   int
	ports    map[string]string // port name -> network
	policies map[string]string // policy -> network
	services map[string]string // service -> network
	seq      int
	ok, fail int
	errs     []string
	took     map[string][]time.Duration // by action kind
	done     *atomic.Int64              // actions run by all clients
}

func (c *chaosClient) prefix() string { return fmt.Sprintf("ha%d", c.id) }

// subnet k of client c: /28s in 198.19.0.0/16, disjoint between clients.
func (c *chaosClient) subnet(k int) string {
	return fmt.Sprintf("198.19.%d.%d/28", c.id*60+k/16, (k%16)*16)
}

func pick[V any](r *rand.Rand, m map[string]V) (string, bool) {
	if len(m) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[r.Intn(len(keys))], true
}

// busy reports whether network n still carries ports, policies or services.
func (c *chaosClient) busy(n string) bool {
	for _, m := range []map[string]string{c.ports, c.policies, c.services} {
		for _, v := range m {
			if v == n {
				return true
			}
		}
	}
	return false
}

// step runs one action. A failed action must name its object.
func (c *chaosClient) step(ctx context.Context) {
	c.seq++
	t0 := time.Now()
	r := c.rnd.Intn(100)
	var (
		what, object string
		err          error
	)
	netName, haveNet := pick(c.rnd, c.nets)
	switch {
	case !haveNet || len(c.nets) < 2 || r < 12:
		c.netSeq++
		object = fmt.Sprintf("%sn%d", c.prefix(), c.netSeq)
		what = "net create " + object
		var n *network.Network
		n, err = network.Create(ctx, c.nb, network.Spec{Name: object, Subnet: c.subnet(c.netSeq), Router: c.router})
		if err == nil {
			c.nets[object] = n
		}
	case r < 22:
		object = netName
		if c.busy(netName) {
			// Empty it first: delete one of its objects.
			for p, n := range c.ports {
				if n == netName {
					object, what = p, "port delete "+p
					if err = port.Delete(ctx, c.nb, p); err == nil {
						delete(c.ports, p)
					}
					break
				}
			}
			if what == "" {
				for p, n := range c.policies {
					if n == netName {
						object, what = p, "policy delete "+p
						if err = policy.Delete(ctx, c.nb, p); err == nil {
							delete(c.policies, p)
						}
						break
					}
				}
			}
			if what == "" {
				for s, n := range c.services {
					if n == netName {
						object, what = s, "service delete "+s
						if err = service.Delete(ctx, c.nb, n, s); err == nil {
							delete(c.services, s)
						}
						break
					}
				}
			}
			break
		}
		what = "net delete " + netName
		if err = network.Delete(ctx, c.nb, netName, false); err == nil {
			delete(c.nets, netName)
		}
	case r < 45:
		n := c.nets[netName]
		object = fmt.Sprintf("ctr-%s-%d", c.prefix(), c.seq)
		what = "port attach " + object
		sub, _ := netip.ParsePrefix(n.Subnet)
		gw, _ := netip.ParseAddr(n.Gateway)
		var p *port.Port
		p, err = port.Create(ctx, c.nb, port.Spec{Network: netName, Subnet: sub, Gateway: gw, Node: "n1", Container: object, IfName: "eth0"})
		if err == nil {
			c.ports[p.Name] = netName
		} else if errors.Is(err, port.ErrNoAddress) || strings.Contains(err.Error(), "no free address") {
			// A full /28 is a correct refusal, not a fault.
			err, what = nil, ""
		}
	case r < 60:
		p, ok := pick(c.rnd, c.ports)
		if !ok {
			return
		}
		object, what = p, "port detach "+p
		if err = port.Delete(ctx, c.nb, p); err == nil {
			delete(c.ports, p)
		}
	case r < 72:
		object = fmt.Sprintf("%sp%d", c.prefix(), c.seq)
		what = "policy create " + object
		_, err = policy.Create(ctx, c.nb, policy.Spec{Name: object, Network: netName, Action: "allow", From: []string{"any"},
			Proto: "tcp", Port: fmt.Sprint(1000 + c.seq%1000), Priority: 100 + c.seq%800})
		if err == nil {
			c.policies[object] = netName
		}
	case r < 80:
		p, ok := pick(c.rnd, c.policies)
		if !ok {
			return
		}
		object, what = p, "policy delete "+p
		if err = policy.Delete(ctx, c.nb, p); err == nil {
			delete(c.policies, p)
		}
	case r < 92:
		object = fmt.Sprintf("%ss%d", c.prefix(), c.seq)
		what = "service create " + object
		_, err = service.Create(ctx, c.nb, service.Spec{Name: object, Network: netName,
			VIP: fmt.Sprintf("198.18.%d.%d:%d", 100+c.id, 1+c.seq%250, 1000+c.seq), Selector: map[string]string{"app": object}})
		if err == nil {
			c.services[object] = netName
		}
	default:
		s, ok := pick(c.rnd, c.services)
		if !ok {
			return
		}
		object, what = s, "service delete "+s
		if err = service.Delete(ctx, c.nb, c.services[s], s); err == nil {
			delete(c.services, s)
		}
	}
	if what == "" {
		return
	}
	c.done.Add(1)
	kind := strings.Join(strings.Fields(what)[:2], " ")
	c.took[kind] = append(c.took[kind], time.Since(t0))
	if err == nil {
		c.ok++
		return
	}
	c.fail++
	msg := err.Error()
	if !strings.Contains(msg, object) && !strings.Contains(msg, object[:min(len(object), 12)]) {
		msg += "  [ERROR DOES NOT NAME " + object + "]"
	}
	c.errs = append(c.errs, what+": "+msg)
}

// verify compares NB with the client's model: every object of the client's
// prefix in NB is one whose create succeeded and whose delete did not,
// each exactly once, and no two ports share an address.
func (c *chaosClient) verify(ctx context.Context) []string {
	var probs []string
	pre := c.prefix()
	seen := map[string]int{}
	nets, err := network.List(ctx, c.nb)
	if err != nil {
		return []string{fmt.Sprintf("client %d: list networks: %v", c.id, err)}
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, pre+"n") {
			seen["net "+n.Name]++
		}
	}
	ports, err := port.List(ctx, c.nb, port.Filter{})
	if err != nil {
		return []string{fmt.Sprintf("client %d: list ports: %v", c.id, err)}
	}
	ips := map[string]string{}
	for _, p := range ports {
		if !strings.HasPrefix(p.Network, pre+"n") {
			continue
		}
		seen["port "+p.Name]++
		if p.IP.IsValid() {
			if other, dup := ips[p.IP.String()]; dup {
				probs = append(probs, fmt.Sprintf("address %s held by ports %s and %s", p.IP, other, p.Name))
			}
			ips[p.IP.String()] = p.Name
		}
	}
	pols, err := policy.List(ctx, c.nb, "")
	if err != nil {
		return []string{fmt.Sprintf("client %d: list policies: %v", c.id, err)}
	}
	for _, p := range pols {
		if strings.HasPrefix(p.Name, pre+"p") {
			seen["policy "+p.Name]++
		}
	}
	for n := range c.nets {
		svcs, err := service.List(ctx, c.nb, n)
		if err != nil {
			return []string{fmt.Sprintf("client %d: list services of %s: %v", c.id, n, err)}
		}
		for _, s := range svcs {
			seen["service "+s.Name]++
		}
	}
	want := map[string]bool{}
	for n := range c.nets {
		want["net "+n] = true
	}
	for p := range c.ports {
		want["port "+p] = true
	}
	for p := range c.policies {
		want["policy "+p] = true
	}
	for s := range c.services {
		want["service "+s] = true
	}
	for k, n := range seen {
		switch {
		case !want[k]:
			probs = append(probs, fmt.Sprintf("NB holds %s (x%d) but no successful action left it there", k, n))
		case n > 1:
			probs = append(probs, fmt.Sprintf("NB holds %s %d times", k, n))
		}
	}
	for k := range want {
		if seen[k] == 0 {
			probs = append(probs, fmt.Sprintf("NB lacks %s although its create reported success", k))
		}
	}
	sort.Strings(probs)
	return probs
}

// probeWrite measures from a kill until an NB write succeeds again: it
// creates and deletes a router, each attempt bounded to 10 s (a write on a
// loaded cluster, with the race detector on elsewhere, can take seconds: a
// shorter bound retried forever without one succeeding).
func probeWrite(ctx context.Context, nb client.Client, name string, since time.Time) (time.Duration, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := router.Create(actx, nb, name, nil)
		cancel()
		if err == nil {
			d := time.Since(since)
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := router.Delete(dctx, nb, name, false, nil); err != nil {
				return d, fmt.Errorf("probe router %s delete: %w", name, err)
			}
			return d, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("no successful NB write since the kill: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killLeader kills -9 the current leader of which, measures the time to
// the next successful NB write, keeps it down for down, and restarts it
// (Restart returns once the lab is healthy again).
func killLeader(ctx context.Context, l *lab.Lab, nb client.Client, which string, down time.Duration, probe string) (chaosKill, error) {
	k := chaosKill{which: which}
	var err error
	for {
		if k.victim, err = l.Leader(ctx, which); err == nil {
			break
		}
		if ctx.Err() != nil {
			return k, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	if err := l.Kill(ctx, lab.Central, k.victim); err != nil {
		return k, err
	}
	if k.toWrite, err = probeWrite(ctx, nb, probe, t0); err != nil {
		return k, err
	}
	if rest := down - time.Since(t0); rest > 0 {
		time.Sleep(rest)
	}
	return k, l.Restart(ctx, lab.Central, k.victim, lab.RestartOptions{})
}

// runChaos runs actions mixed actions from 4 parallel clients on a
// clustered lab while the NB leader is killed -9 and restarted nbKills
// times, the SB leader once and the active ovn-northd once, spread over
// the run. Two containers attached before (n1 -> n2) are pinged every
// 20 ms throughout.
func runChaos(tb testing.TB, actions, nbKills int) chaosResult {
	l := haLab(tb, "hac")
	nb := cniNB(tb, l)
	// Bounded well inside go test's timeout: a stuck run fails with the
	// step that waited instead of hanging the package.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Duration(actions)*500*time.Millisecond)
	defer cancel()

	// Containers attached before the chaos, through the real plugin.
	cniNetwork(tb, nb, "hapre", "198.19.250.0/24")
	n1, _ := l.Node("n1")
	n2, _ := l.Node("n2")
	list := confList(tb, "hapre", "1.0.0", nil)
	src := newContainer(tb, newRuntime(tb, n1), list)
	src.mustAdd(tb, ctx)
	dst := newContainer(tb, newRuntime(tb, n2), list)
	dst.mustAdd(tb, ctx)
	if err := src.crossPing(tb, ctx, l, dst); err != nil {
		tb.Fatalf("before the chaos: %v", err)
	}
	pg := startPinger(tb, src, dst.ip(), 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	startSeq := pg.seq()

	var done atomic.Int64
	clients := make([]*chaosClient, 4)
	for i := range clients {
		c := &chaosClient{id: i, rnd: rand.New(rand.NewSource(int64(i + 1))), router: fmt.Sprintf("har%d", i),
			took: map[string][]time.Duration{}, done: &done,
			nets: map[string]*network.Network{}, ports: map[string]string{}, policies: map[string]string{}, services: map[string]string{}}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		c.nb, err = dbconn.ConnectNB(cctx, l.NB)
		if err == nil {
			_, err = router.Create(cctx, c.nb, c.router, nil)
		}
		ccancel()
		if err != nil {
			tb.Fatal(err)
		}
		defer c.nb.Close()
		clients[i] = c
	}

	schedule := []string{}
	for i := 0; i < nbKills; i++ {
		schedule = append(schedule, "nb")
		if i == 0 {
			schedule = append(schedule, "sb")
		}
		if i == 1 || nbKills == 1 {
			schedule = append(schedule, "northd")
		}
	}
	res := chaosResult{actions: actions}
	start := time.Now()
	var wg sync.WaitGroup
	var killErr error
	stopKills := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j, which := range schedule {
			at := int64(actions) * int64(j+1) / int64(len(schedule)+1)
			for done.Load() < at {
				select {
				case <-stopKills:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			k, err := killLeader(ctx, l, nb, which, 500*time.Millisecond, fmt.Sprintf("haprobe%d", j))
			k.atOp = done.Load()
			res.kills = append(res.kills, k)
			if err != nil {
				killErr = fmt.Errorf("kill %d (%s leader %s): %w", j, which, k.victim, err)
				return
			}
		}
	}()
	for _, c := range clients {
		wg.Add(1)
		go func(c *chaosClient) {
			defer wg.Done()
			for done.Load() < int64(actions) {
				actx, acancel := context.WithTimeout(ctx, 30*time.Second)
				c.step(actx)
				acancel()
			}
		}(c)
	}
	// Clients finish their share; kills still pending then fire on an idle
	// cluster, which counts for the connectivity bound too.
	wg.Wait()
	close(stopKills)
	res.elapsed = time.Since(start)
	if killErr != nil {
		tb.Fatal(killErr)
	}
	time.Sleep(200 * time.Millisecond)
	res.pingSent, res.pingLost, res.longestGap = pg.window(startSeq, pg.seq())
	pg.close()
	for _, c := range clients {
		res.ok += c.ok
		res.failed += c.fail
		res.failures = append(res.failures, c.errs...)
		for k, v := range c.took {
			if res.took == nil {
				res.took = map[string][]time.Duration{}
			}
			res.took[k] = append(res.took[k], v...)
		}
		vctx, vcancel := context.WithTimeout(ctx, 30*time.Second)
		res.problems = append(res.problems, c.verify(vctx)...)
		vcancel()
	}
	return res
}

func (r chaosResult) print(tb testing.TB) {
	tb.Logf("chaos: %d actions (%d ok, %d failed) by 4 clients in %.1fs, %d kills", r.ok+r.failed, r.ok, r.failed, r.elapsed.Seconds(), len(r.kills))
	for i, k := range r.kills {
		tb.Logf("  kill %d: %s leader %s (after %d actions): next NB write after %d ms", i+1, k.which, k.victim, k.atOp, k.toWrite.Milliseconds())
	}
	kinds := make([]string, 0, len(r.took))
	for k := range r.took {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		d := append([]time.Duration(nil), r.took[k]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		tb.Logf("  %-15s n=%-4d p50 %5d ms  p95 %5d ms  max %5d ms", k, len(d), d[len(d)/2].Milliseconds(), d[len(d)*95/100].Milliseconds(), d[len(d)-1].Milliseconds())
	}
	tb.Logf("  pre-attached containers n1->n2: %d echo requests, %d lost, longest gap without reply %d ms", r.pingSent, r.pingLost, r.longestGap.Milliseconds())
	for _, f := range r.failures {
		tb.Logf("  failed: %s", f)
	}
}

// TestHAChaos: 4 clients run mixed actions (net create/delete, port
// attach/detach, policy and service create/delete) while the NB leader is
// killed -9 and restarted 3 times, the SB leader once and the active
// ovn-northd once. NB must then hold exactly the results of the actions
// that reported success (none twice, no address twice), every failure
// must name its object, and the containers attached before must keep
// talking (the longest gap is printed: a bound, not a timing assertion).
// OVLMGR_HA_ACTIONS / OVLMGR_HA_KILLS set the size (the long form:
// 1000 and 5; BenchmarkHAChaos runs it).
func TestHAChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("clustered lab")
	}
	actions, kills := 200, 3
	if v := os.Getenv("OVLMGR_HA_ACTIONS"); v != "" {
		fmt.Sscan(v, &actions)
	}
	if v := os.Getenv("OVLMGR_HA_KILLS"); v != "" {
		fmt.Sscan(v, &kills)
	}
	r := runChaos(t, actions, kills)
	r.print(t)
	for _, p := range r.problems {
		t.Error(p)
	}
	for _, f := range r.failures {
		if strings.Contains(f, "[ERROR DOES NOT NAME") {
			t.Errorf("unclear error: %s", f)
		}
	}
	if r.ok+r.failed < actions*9/10 {
		t.Errorf("only %d of %d actions ran", r.ok+r.failed, actions)
	}
	if r.pingSent > 0 && r.pingLost == r.pingSent {
		t.Errorf("the pre-attached containers lost all %d echo requests", r.pingSent)
	}
}

// BenchmarkHALeaderKill: on a clustered lab (3-member NB and SB), the NB
// leader is killed -9 10 times (restarted after each); per kill the time
// until the next NB write succeeds (a router create through a client given
// all three members). Prints p50/p95/max.
func BenchmarkHALeaderKill(b *testing.B) {
	l := haLab(b, "hbk")
	nb := cniNB(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var took []time.Duration
	for i := 0; i < 10; i++ {
		k, err := killLeader(ctx, l, nb, "nb", 0, fmt.Sprintf("hbprobe%d", i))
		if err != nil {
			b.Fatalf("kill %d: %v", i, err)
		}
		took = append(took, k.toWrite)
		b.Logf("kill %d: %s, next write after %d ms", i+1, k.victim, k.toWrite.Milliseconds())
	}
	b.Logf("NB leader kill -> next successful write over %d kills: p50 %d ms, p95 %d ms, max %d ms (load %s)", len(took),
		percentile(took, 50).Milliseconds(), percentile(took, 95).Milliseconds(), percentile(took, 100).Milliseconds(), loadavg())
	b.ReportMetric(percentile(took, 50).Seconds()*1000, "p50-ms")
	b.ReportMetric(percentile(took, 95).Seconds()*1000, "p95-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHAChaos is the long chaos run: 1,000 mixed actions by 4
// clients, the NB leader killed -9 5 times, the SB leader and the active
// ovn-northd once (see TestHAChaos for what is checked).
func BenchmarkHAChaos(b *testing.B) {
	r := runChaos(b, 1000, 5)
	r.print(b)
	for _, p := range r.problems {
		b.Error(p)
	}
	b.ReportMetric(float64(r.ok), "ok")
	b.ReportMetric(float64(r.failed), "failed")
	b.ReportMetric(r.longestGap.Seconds()*1000, "ping-gap-ms")
	b.ReportMetric(0, "ns/op")
}
