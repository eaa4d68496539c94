package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/cni-plugin/plugin"
	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// cniServer is `ovlmgr-cni serve` running on a lab node.
type cniServer struct {
	cmd    *exec.Cmd
	socket string
	mu     sync.Mutex
	log    bytes.Buffer
	done   chan struct{}
}

func (s *cniServer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(b)
}

func (s *cniServer) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// startCNIServer starts the node's CNI server as an operator would (the
// node's environment, its network namespace) and waits for its socket. It
// is stopped at test end.
func startCNIServer(t testing.TB, node *lab.Node) *cniServer {
	t.Helper()
	s := &cniServer{socket: plugin.ServerSocket(node.OVS), done: make(chan struct{})}
	if s.socket == "" {
		t.Fatalf("node %s: OVS endpoint %s has no server socket", node.Name, node.OVS)
	}
	s.cmd = nsexec.Command(context.Background(), node.NetNSPath, node.Env, filepath.Join(cniPluginDir(t), "ovlmgr-cni"), "serve")
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t, syscall.SIGTERM) })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logText(), "serving ADD and DEL") {
		select {
		case <-s.done:
			t.Fatalf("ovlmgr-cni serve on %s exited: %s", node.Name, s.logText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovlmgr-cni serve on %s not listening after 20s: %s", node.Name, s.logText())
		}
	}
	return s
}

// stop signals the server (by its PID) and waits for it to exit.
func (s *cniServer) stop(t testing.TB, sig syscall.Signal) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("ovlmgr-cni serve did not exit on %v within 30s", sig)
	}
}

// unservedOVS is an endpoint of node's Open_vSwitch db in a directory of
// its own (a symlink to the db socket): a plugin given it finds no CNI
// server socket there and runs the verb itself.
func unservedOVS(t testing.TB, node *lab.Node) string {
	t.Helper()
	path, ok := strings.CutPrefix(node.OVS, "unix:")
	if !ok {
		t.Fatalf("node %s: OVS endpoint %s is not unix:", node.Name, node.OVS)
	}
	link := filepath.Join(t.TempDir(), "db.sock")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	return "unix:" + link
}

// served reports whether the server's log has verb of container c done.
// The server logs it before it answers, but its output reaches the log
// through a pipe: give the copy a moment.
func (s *cniServer) served(verb string, c *container) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if doneIn(s.logText(), verb, c) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// doneIn reports whether log has the line of verb of container c done.
func doneIn(log, verb string, c *container) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, fmt.Sprintf("ovlmgr-cni %s %.12s/%s: ", verb, c.id, c.ifName)) && strings.Contains(line, " done in ") {
			return true
		}
	}
	return false
}

// TestCNIServer: with `ovlmgr-cni serve` on two nodes, the plugin hands
// ADD and DEL to the node's server (the server logs them, the plugin does
// not): containers on both nodes get addresses from the pool and reach each
// other; parallel ADDs on one node get distinct addresses; plugins killed
// at random points of an ADD the server runs leave nothing after the
// runtime's DEL; every DEL leaves nothing. A stopped server (socket
// removed) and a killed one (socket left, nobody listening) make the plugin
// do the verb itself.
func TestCNIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	net := uniqueName("srv")
	specNetwork(t, nb, network.Spec{Name: net, Subnet: "198.19.246.0/26"})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	s1 := startCNIServer(t, n1)
	s2 := startCNIServer(t, n2)
	rt1, rt2 := newRuntime(t, n1), newRuntime(t, n2)
	list := confList(t, net, "1.0.0", map[string]interface{}{"readyTimeout": "20s"})

	a, b := newContainer(t, rt1, list), newContainer(t, rt2, list)
	a.mustAdd(t, ctx)
	b.mustAdd(t, ctx)
	for _, c := range []struct {
		s *cniServer
		c *container
	}{{s1, a}, {s2, b}} {
		if !c.s.served("ADD", c.c) {
			t.Errorf("ADD of %s on %s: not in the server's log:\n%s", c.c.id, c.c.rt.node.Name, c.s.logText())
		}
		if strings.Contains(c.c.rt.exec.stderr.String(), c.c.id[:12]) {
			t.Errorf("ADD of %s on %s: the plugin logged it itself:\n%s", c.c.id, c.c.rt.node.Name, c.c.rt.exec.stderr.String())
		}
	}
	if err := a.crossPing(t, ctx, l, b); err != nil {
		t.Errorf("ping %s (n1) -> %s (n2): %v", a.ip(), b.ip(), err)
	}
	if err := b.crossPing(t, ctx, l, a); err != nil {
		t.Errorf("ping %s (n2) -> %s (n1): %v", b.ip(), a.ip(), err)
	}
	if err := tcpTransfer(ctx, a, b, 1<<20); err != nil {
		t.Errorf("TCP %s <- %s: %v", a.ip(), b.ip(), err)
	}

	// Parallel ADDs on one node through its server.
	ctrs := make([]*container, 6)
	for i := range ctrs {
		ctrs[i] = newContainer(t, rt1, list)
	}
	errs := addParallel(ctx, ctrs)
	seen := map[string]string{a.ip().String(): a.id, b.ip().String(): b.id}
	for i, c := range ctrs {
		if errs[i] != nil {
			t.Fatalf("parallel ADD %d: %v\nserver log:\n%s", i, errs[i], s1.logText())
		}
		if other, ok := seen[c.ip().String()]; ok {
			t.Errorf("parallel ADD %s got %s, already %s's", c.id, c.ip(), other)
		}
		seen[c.ip().String()] = c.id
	}
	checkOwners(t, ctx, nb, n1, ctrs)

	// Plugins killed while the server runs their ADD, then DEL as a
	// runtime does: nothing of them is left, the live ones keep theirs.
	killed := make([]*container, 6)
	var wg sync.WaitGroup
	for i := range killed {
		killed[i] = newContainer(t, rt1, list)
		wg.Add(1)
		go func(c *container, d time.Duration) {
			defer wg.Done()
			killAdd(t, ctx, n1, net, c, d)
		}(killed[i], time.Duration(5+15*i+rand.IntN(10))*time.Millisecond)
	}
	wg.Wait()
	for _, c := range killed {
		if err := c.del(ctx); err != nil {
			t.Errorf("DEL after a killed ADD of %s: %v", c.id, err)
		}
		assertNothingOf(t, ctx, nb, n1, net, c.id)
	}
	checkOwners(t, ctx, nb, n1, ctrs)
	for _, c := range ctrs {
		if err := c.del(ctx); err != nil {
			t.Errorf("DEL %s: %v", c.id, err)
		}
		if !s1.served("DEL", c) {
			t.Errorf("DEL of %s: not in the server's log:\n%s\nplugin log:\n%s", c.id, s1.logText(), rt1.exec.stderr.String())
		}
		assertNothingOf(t, ctx, nb, n1, net, c.id)
	}

	// No server: stopped (socket removed), then killed (socket left).
	s1.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(s1.socket); !os.IsNotExist(err) {
		t.Errorf("socket %s after the server stopped: %v", s1.socket, err)
	}
	c := newContainer(t, rt1, list)
	c.mustAdd(t, ctx)
	if err := c.ping(ctx, b.ip()); err != nil {
		t.Errorf("ping from a container added without a server: %v", err)
	}
	s1 = startCNIServer(t, n1)
	s1.stop(t, syscall.SIGKILL)
	if _, err := os.Stat(s1.socket); err != nil {
		t.Fatalf("socket of a killed server: %v", err)
	}
	d := newContainer(t, rt1, list)
	d.mustAdd(t, ctx)
	for _, c := range []*container{c, d} {
		if !doneIn(rt1.exec.stderr.String(), "ADD", c) {
			t.Errorf("ADD of %s without a server: not done by the plugin; its log:\n%s", c.id, rt1.exec.stderr.String())
		}
	}
	for _, c := range []*container{a, b, c, d} {
		if err := c.del(ctx); err != nil {
			t.Errorf("DEL %s: %v", c.id, err)
		}
		assertNothingOf(t, ctx, nb, c.rt.node, net, c.id)
	}
}

// TestLabCNIServer: a lab brought up with a CNI server (`lab up
// --cni-server`, Options.CNIServerBin) runs `ovlmgr-cni serve` on every
// node: lab status lists it alive, runtimes' ADDs on both nodes are served
// by it (its log has them) and the containers reach each other; one killed
// comes back with lab restart and serves the next ADD; lab down stops them
// all by PID.
func TestLabCNIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: uniqueName("cs"), Gateways: []string{"none"},
		CNIServerBin: filepath.Join(cniPluginDir(t), "ovlmgr-cni")})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	var seen []int // every server PID status showed
	servers := func() map[string]int {
		t.Helper()
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatalf("lab status: %v", err)
		}
		pids := map[string]int{}
		for _, d := range st.Daemons {
			if d.Name == lab.CNIServerDaemon && d.Alive {
				pids[d.Node] = d.PID
				seen = append(seen, d.PID)
			}
		}
		return pids
	}
	// Registered first, so it runs after the containers' and network's
	// cleanups: the servers must be gone once the lab is down.
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
		for _, pid := range seen {
			if !lab.Exited(pid) {
				t.Errorf("after lab down: a CNI server (pid %d) still runs", pid)
			}
		}
	})
	first := servers()
	if len(first) != 2 {
		t.Fatalf("lab status: CNI servers alive on %v, want n1 and n2", first)
	}
	serverLog := func(n *lab.Node) string {
		data, _ := os.ReadFile(filepath.Join(n.Dir, lab.CNIServerDaemon+".stderr"))
		return string(data)
	}
	nb := cniNB(t, l)
	net := uniqueName("lcs")
	specNetwork(t, nb, network.Spec{Name: net, Subnet: "198.19.247.0/26"})
	list := confList(t, net, "1.0.0", nil)
	rt1, rt2 := newRuntime(t, l.Nodes[0]), newRuntime(t, l.Nodes[1])
	a, b := newContainer(t, rt1, list), newContainer(t, rt2, list)
	a.mustAdd(t, ctx)
	b.mustAdd(t, ctx)
	for _, c := range []*container{a, b} {
		if log := serverLog(c.rt.node); !doneIn(log, "ADD", c) {
			t.Errorf("ADD of %s on %s: not in the lab's CNI server log:\n%s", c.id, c.rt.node.Name, log)
		}
	}
	if err := a.ping(ctx, b.ip()); err != nil {
		t.Errorf("ping %s (n1) -> %s (n2): %v", a.ip(), b.ip(), err)
	}

	if err := l.Restart(ctx, "n1", lab.CNIServerDaemon, lab.RestartOptions{Kill: true}); err != nil {
		t.Fatalf("lab restart n1 %s --kill: %v", lab.CNIServerDaemon, err)
	}
	if pid := servers()["n1"]; pid == 0 || pid == first["n1"] {
		t.Fatalf("after restart: n1's CNI server pid %d (before %d), want a new live one", pid, first["n1"])
	}
	c := newContainer(t, rt1, list)
	c.mustAdd(t, ctx)
	if log := serverLog(l.Nodes[0]); !doneIn(log, "ADD", c) {
		t.Errorf("ADD of %s after the restart: not in n1's new CNI server log:\n%s", c.id, log)
	}
	if err := c.ping(ctx, b.ip()); err != nil {
		t.Errorf("ping %s (n1) -> %s (n2): %v", c.ip(), b.ip(), err)
	}
	for _, x := range []*container{a, b, c} {
		if err := x.del(ctx); err != nil {
			t.Errorf("DEL %s: %v", x.id, err)
		}
	}
}

// TestCNIServerChurn: the nodes' CNI servers under churn, as a runtime
// host starting and stopping many containers at once sees them: 96
// containers over three nodes, 8 ADDs in flight, then their DELs, 8 in
// flight. The pools run dry, so ADDs take both the pool and the slow path
// (its address watch) while refills run beside them on the same server
// connections. Every verb succeeds and is the server's; the addresses are
// distinct; containers on different nodes reach each other once the
// chassis have caught up with the churn (nb_cfg = hv_cfg); after the
// DELs nothing of any container is left and each node's pool is back to
// its size with net list FREE counting it. Latency is BenchmarkCNIChurn's.
func TestCNIServerChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	net := uniqueName("churn")
	specNetwork(t, nb, network.Spec{Name: net, Subnet: "198.19.180.0/24"})
	list := confList(t, net, "1.0.0", map[string]interface{}{"readyTimeout": "30s"})
	var servers []*cniServer
	var rts []*runtime
	for _, node := range l.Nodes {
		servers = append(servers, startCNIServer(t, node))
		rts = append(rts, newRuntime(t, node))
	}
	ctrs := make([]*container, 96)
	for i := range ctrs {
		ctrs[i] = newContainer(t, rts[i%len(rts)], list)
	}
	t.Cleanup(func() {
		for _, c := range ctrs {
			_ = c.del(context.Background())
		}
	})
	serverLogs := func() string {
		var b strings.Builder
		for i, s := range servers {
			fmt.Fprintf(&b, "CNI server of %s, last lines:\n%s\n", l.Nodes[i].Name, lastLines(s.logText(), 30))
		}
		return b.String()
	}
	churn := func(verb string, op func(*container) error) {
		t.Helper()
		work := make(chan *container)
		var mu sync.Mutex
		var fails []error
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					if err := op(c); err != nil {
						mu.Lock()
						fails = append(fails, fmt.Errorf("%s %s on %s: %w", verb, c.id, c.rt.node.Name, err))
						mu.Unlock()
					}
				}
			}()
		}
		for _, c := range ctrs {
			work <- c
		}
		close(work)
		wg.Wait()
		if len(fails) > 0 {
			t.Fatalf("%d of %d %ss failed; first: %v\n%s", len(fails), len(ctrs), verb, fails[0], serverLogs())
		}
	}
	churn("ADD", func(c *container) error { return c.add(ctx) })
	seen := map[string]string{}
	for i, c := range ctrs {
		if !servers[i%len(servers)].served("ADD", c) {
			t.Errorf("ADD of %s on %s: not in the server's log", c.id, c.rt.node.Name)
		}
		if other, ok := seen[c.ip().String()]; ok {
			t.Errorf("%s got %s, already %s's", c.id, c.ip(), other)
		}
		seen[c.ip().String()] = c.id
	}
	// Each ADD returned once its own node had the port's flows; the
	// other nodes catch up with the churn's changes (northd's recomputes,
	// then theirs) before containers on different nodes are expected to
	// reach each other at once.
	settled := time.Now()
	if err := settleHV(ctx, nb); err != nil {
		t.Fatal(err)
	}
	t.Logf("the chassis caught up %s after the last ADD", time.Since(settled).Round(time.Millisecond))
	// n1 -> n2, n2 -> n3, n3 -> n1: a container of the first ADDs to one
	// of the last.
	for i := range l.Nodes {
		a, b := ctrs[i], ctrs[len(ctrs)-len(l.Nodes)+(i+1)%len(l.Nodes)]
		if err := a.crossPing(t, ctx, l, b); err != nil {
			t.Errorf("ping %s (%s) -> %s (%s): %v", a.ip(), a.rt.node.Name, b.ip(), b.rt.node.Name, err)
		}
	}
	churn("DEL", func(c *container) error { return c.del(ctx) })
	for i, c := range ctrs {
		if !servers[i%len(servers)].served("DEL", c) {
			t.Errorf("DEL of %s on %s: not in the server's log", c.id, c.rt.node.Name)
		}
		assertNothingOf(t, ctx, nb, c.rt.node, net, c.id)
	}
	for _, node := range l.Nodes {
		settlePool(t, ctx, nb, net, node.SystemID, ovnport.DefaultPoolSize)
	}
	checkFree(t, ctx, nb, net, 0)
}
