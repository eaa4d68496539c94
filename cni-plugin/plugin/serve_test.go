package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

func TestServerSocket(t *testing.T) {
	t.Setenv("OVS_RUNDIR", "/run/n1")
	for in, want := range map[string]string{
		"":                         "/run/n1/ovlmgr-cni.sock",
		"unix:/var/run/x/db.sock":  "/var/run/x/ovlmgr-cni.sock",
		"tcp:198.18.0.1:6640":      "",
		"ssl:198.18.0.1:6640":      "",
		"unix:":                    "",
		"/var/run/x/db.sock":       "",
		"unix:relative/db.sock":    "relative/ovlmgr-cni.sock",
		"unix:/var/run/x/other.db": "/var/run/x/ovlmgr-cni.sock",
	} {
		if got := ServerSocket(in); got != want {
			t.Errorf("ServerSocket(%q) = %q; want %q", in, got, want)
		}
	}
}

// fakeServer listens where the plugin looks for the node's server and
// answers each request with answer (nil: closes without a word).
func fakeServer(t *testing.T, dir string, answer func(wireRequest) *wireReply) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dir, ServerSocketName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req wireRequest
			if json.NewDecoder(c).Decode(&req) == nil {
				if rep := answer(req); rep != nil {
					_ = json.NewEncoder(c).Encode(rep)
				}
			}
			c.Close()
		}
	}()
}

func TestForward(t *testing.T) {
	dir := t.TempDir()
	c := &Config{OVS: "unix:" + filepath.Join(dir, "db.sock")}
	args := &skel.CmdArgs{ContainerID: "ctr1", Netns: "/run/netns/x", IfName: "eth0", StdinData: []byte(`{"network":"web"}`)}

	// No socket: the plugin does the verb itself.
	if served, err := forward(verbAdd, args, c); served || err != nil {
		t.Fatalf("no server: served %v, %v; want the verb left to the plugin", served, err)
	}
	// A socket nobody listens on (a killed server's): the same.
	l, err := net.Listen("unix", filepath.Join(dir, ServerSocketName))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if served, err := forward(verbAdd, args, c); served || err != nil {
		t.Fatalf("stale socket: served %v, %v; want the verb left to the plugin", served, err)
	}
	os.Remove(filepath.Join(dir, ServerSocketName))

	// A server's CNI error reaches the runtime unchanged, with the
	// request carrying the invocation.
	var got wireRequest
	fakeServer(t, dir, func(r wireRequest) *wireReply {
		got = r
		if r.ContainerID == "gone" {
			return nil
		}
		return &wireReply{Error: types.NewError(CodeNoAddress, "network web: no free address", "")}
	})
	served, err := forward(verbAdd, args, c)
	var te *types.Error
	if !served || !errors.As(err, &te) || te.Code != CodeNoAddress || te.Msg != "network web: no free address" {
		t.Fatalf("server error: served %v, %v; want code %d as the server sent it", served, err, CodeNoAddress)
	}
	if got.Command != verbAdd || got.ContainerID != "ctr1" || got.Netns != "/run/netns/x" || got.IfName != "eth0" || string(got.Stdin) != `{"network":"web"}` {
		t.Errorf("request as the server got it: %+v", got)
	}
	// A server that takes the verb and dies: code 11, try again.
	served, err = forward(verbDel, &skel.CmdArgs{ContainerID: "gone"}, c)
	if !served || !errors.As(err, &te) || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "CNI server") {
		t.Fatalf("server gone mid-verb: served %v, %v; want code 11 naming the server", served, err)
	}
}

func TestServeRefusesSecondServer(t *testing.T) {
	dir := t.TempDir()
	fakeServer(t, dir, func(wireRequest) *wireReply { return nil })
	s := &Server{OVS: "unix:" + filepath.Join(dir, "db.sock")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Serve(ctx); err == nil || !strings.Contains(err.Error(), "another server listens") {
		t.Fatalf("Serve beside a live server: %v; want refused", err)
	}
	if err := (&Server{OVS: "tcp:198.18.0.1:6640"}).Serve(ctx); err == nil || !strings.Contains(err.Error(), `ovs endpoint "tcp:198.18.0.1:6640"`) {
		t.Fatalf("Serve on a tcp: endpoint: %v; want refused naming it", err)
	}
}

// TestServeAnswersAndStops: a served verb that fails before any database
// (no network namespace) comes back as the plugin's own error would; an
// unknown verb is refused; the socket goes when the server stops.
func TestServeAnswersAndStops(t *testing.T) {
	dir := t.TempDir()
	s := &Server{OVS: "unix:" + filepath.Join(dir, "db.sock")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	sock := filepath.Join(dir, ServerSocketName)
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 250 {
			t.Fatal("server socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v (%v); want 0600", fi.Mode().Perm(), err)
	}
	c := &Config{OVS: s.OVS}
	stdin := []byte(`{"cniVersion":"1.0.0","name":"web","type":"ovlmgr-cni","network":"web"}`)
	served, err := forward(verbAdd, &skel.CmdArgs{ContainerID: "ctr1", Netns: "", IfName: "eth0", StdinData: stdin}, c)
	var te *types.Error
	if !served || !errors.As(err, &te) || te.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(te.Msg, "CNI_NETNS") {
		t.Errorf("served ADD without netns: served %v, %v; want code 4 naming CNI_NETNS", served, err)
	}
	served, err = forward("CHECK", &skel.CmdArgs{ContainerID: "ctr1", StdinData: stdin}, c)
	if !served || !errors.As(err, &te) || te.Code != types.ErrInvalidEnvironmentVariables {
		t.Errorf("served CHECK: served %v, %v; want refused with code 4", served, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after stop: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket after stop: %v; want removed", err)
	}
}

// startServer runs s until the test ends and returns its socket's config.
func startServer(t *testing.T, s *Server) (*Config, context.CancelFunc, <-chan error) {
	t.Helper()
	dir := t.TempDir()
	s.OVS = "unix:" + filepath.Join(dir, "db.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(cancel)
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, ServerSocketName)); err == nil {
			break
		}
		if i > 250 {
			t.Fatal("server socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Config{OVS: s.OVS}, cancel, done
}

// TestServeOneVerbPerInterface: a verb of a container interface starts only
// once the one before it (such as an ADD undoing after its plugin was
// killed) has returned; other interfaces are not held up. Before, the
// second ran at once, and the first's undo could remove what it made.
func TestServeOneVerbPerInterface(t *testing.T) {
	release, started := make(chan struct{}), make(chan string, 4)
	var early, firstDone atomic.Bool
	s := &Server{}
	s.verb = func(ctx context.Context, req wireRequest, c *Config) ([]byte, func(bool), error) {
		started <- req.ContainerID + "/" + req.Args
		if req.Args == "first" {
			<-release
			firstDone.Store(true)
		} else if req.ContainerID == "c1" && !firstDone.Load() {
			early.Store(true)
		}
		return nil, nil, nil
	}
	c, _, _ := startServer(t, s)
	stdin := []byte(`{"cniVersion":"1.0.0","name":"web","type":"ovlmgr-cni","network":"web"}`)
	run := func(id, tag string) chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := forward(verbDel, &skel.CmdArgs{ContainerID: id, IfName: "eth0", Args: tag, StdinData: stdin}, c)
			ch <- err
		}()
		return ch
	}
	first := run("c1", "first")
	if got := <-started; got != "c1/first" {
		t.Fatalf("started %s, want c1/first", got)
	}
	second := run("c1", "second")
	other := run("c2", "other")
	if err := <-other; err != nil {
		t.Fatalf("DEL of another interface: %v", err)
	}
	select {
	case got := <-started:
		if got != "c2/other" {
			t.Fatalf("started %s while c1's first verb runs", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("another interface's verb waited for c1's")
	}
	select {
	case got := <-started:
		t.Fatalf("started %s while c1's first verb runs", got)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if early.Load() {
		t.Error("c1's second verb ran before its first returned")
	}
}

// TestServeStalledClient: a client that connects and sends nothing holds
// neither a handler nor the server's stop beyond the request read timeout.
func TestServeStalledClient(t *testing.T) {
	s := &Server{readTimeout: 200 * time.Millisecond}
	c, cancel, done := startServer(t, s)
	conn, err := net.Dial("unix", ServerSocket(c.OVS))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop while a client stalled")
	}
}

// TestServeChecksRequest: the server checks what skel checks in a plugin
// process (container ID, interface name, the configuration's name) and
// that the request is for its own node's db, before any verb runs: a
// client cannot get a newline into the logs or the port names, nor make
// the server act on another db.
func TestServeChecksRequest(t *testing.T) {
	var ran atomic.Int32
	s := &Server{verb: func(context.Context, wireRequest, *Config) ([]byte, func(bool), error) {
		ran.Add(1)
		return []byte(`{}`), nil, nil
	}}
	c, _, _ := startServer(t, s)
	conf := func(name, ovs string) []byte {
		b, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "type": "ovlmgr-cni", "network": "web", "ovs": ovs})
		return b
	}
	for _, tc := range []struct {
		what       string
		ctr, ifn   string
		stdin      []byte
		code       uint
		msgHas     string
		wantServed bool
	}{
		{"newline in the interface name", "ctr1", "eth0\ntouch /tmp/x #", conf("web", c.OVS), types.ErrInvalidEnvironmentVariables, "interface name", true},
		{"slash in the interface name", "ctr1", "../eth0", conf("web", c.OVS), types.ErrInvalidEnvironmentVariables, "interface name", true},
		{"newline in the container ID", "ctr1\nx", "eth0", conf("web", c.OVS), types.ErrInvalidEnvironmentVariables, "containerID", true},
		{"no configuration name", "ctr1", "eth0", conf("", c.OVS), types.ErrInvalidNetworkConfig, "network name", true},
		{"another node's db", "ctr1", "eth0", conf("web", "unix:/var/run/other/db.sock"), types.ErrInvalidNetworkConfig, `"ovs"`, true},
	} {
		sock := filepath.Join(filepath.Dir(strings.TrimPrefix(c.OVS, "unix:")), ServerSocketName)
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewEncoder(conn).Encode(wireRequest{Command: verbAdd, ContainerID: tc.ctr, IfName: tc.ifn, Netns: "/run/netns/x", Stdin: tc.stdin})
		var rep wireReply
		err = json.NewDecoder(conn).Decode(&rep)
		conn.Close()
		if err != nil || rep.Error == nil || rep.Error.Code != tc.code || !strings.Contains(rep.Error.Msg, tc.msgHas) {
			t.Errorf("%s: reply %+v (%v); want code %d naming %s", tc.what, rep.Error, err, tc.code, tc.msgHas)
		}
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("%d refused requests ran their verb", n)
	}
	// A good request runs.
	if served, err := forward(verbAdd, &skel.CmdArgs{ContainerID: "ctr1", IfName: "eth0", Netns: "/run/netns/x", StdinData: conf("web", "")}, c); !served || err != nil || ran.Load() != 1 {
		t.Fatalf("good request: served %v, %v, verb ran %d times; want served once", served, err, ran.Load())
	}
}

// TestServePeerUser: a server serves only clients that run as root (or
// as its own user), and a plugin forwards only to such a server, also when
// the socket and its directory are open to others (an OVS run directory
// handed to the openvswitch account). Checked with a process running as
// nobody on each side.
func TestServePeerUser(t *testing.T) {
	if os.Getenv(peerHelperEnv) != "" {
		return
	}
	prereq.Root(t)
	exe := nobodyCopy(t)
	var ran atomic.Int32
	s := &Server{verb: func(context.Context, wireRequest, *Config) ([]byte, func(bool), error) {
		ran.Add(1)
		return []byte(`{}`), nil, nil
	}}
	c, _, _ := startServer(t, s)
	dir := filepath.Dir(strings.TrimPrefix(c.OVS, "unix:"))
	sock := filepath.Join(dir, ServerSocketName)
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err := asNobody(exe, "client", sock).CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "serves") && !strings.Contains(string(out), "run as root") || ran.Load() != 0 {
		t.Errorf("client as nobody: answer %s, verb ran %d times; want refused, naming the rule", out, ran.Load())
	}

	// A socket nobody's process listens on: the plugin does the verb itself.
	dir2, err := os.MkdirTemp("", "peer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir2) })
	if err := os.Chmod(dir2, 0o777); err != nil {
		t.Fatal(err)
	}
	fake := asNobody(exe, "server", filepath.Join(dir2, ServerSocketName))
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Process.Kill(); _ = fake.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir2, ServerSocketName)); err == nil {
			break
		}
		if i > 250 {
			t.Fatal("nobody's socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	served, err := forward(verbAdd, &skel.CmdArgs{ContainerID: "ctr1", IfName: "eth0", StdinData: []byte(`{}`)}, &Config{OVS: "unix:" + filepath.Join(dir2, "db.sock")})
	if served || err != nil {
		t.Errorf("forward to a socket of nobody's: served %v, %v; want the verb left to the plugin", served, err)
	}
}

const peerHelperEnv = "OVLMGR_TEST_PEER_HELPER"

// TestPeerHelper is the process TestServePeerUser runs as nobody: "client
// SOCK" sends one request and prints the answer; "server SOCK" answers
// every request with success.
func TestPeerHelper(t *testing.T) {
	mode := os.Getenv(peerHelperEnv)
	if mode == "" {
		return // only as TestServePeerUser's helper process
	}
	sock := os.Getenv(peerHelperEnv + "_SOCK")
	switch mode {
	case "client":
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		stdin := []byte(`{"cniVersion":"1.0.0","name":"web","type":"ovlmgr-cni","network":"web"}`)
		_ = json.NewEncoder(conn).Encode(wireRequest{Command: verbAdd, ContainerID: "ctr1", IfName: "eth0", Netns: "/run/netns/x", Stdin: stdin})
		var rep wireReply
		if err := json.NewDecoder(conn).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		if rep.Error != nil {
			os.Stdout.WriteString(rep.Error.Msg + "\n")
		} else {
			os.Stdout.WriteString("served\n")
		}
	case "server":
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = json.NewEncoder(c).Encode(wireReply{Result: json.RawMessage(`{"forged":true}`)})
			c.Close()
		}
	}
}

// nobodyCopy copies the test binary where user nobody can run it.
func nobodyCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "peerbin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "plugin.test")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// asNobody is exe's TestPeerHelper in mode on sock, run as nobody.
func asNobody(exe, mode, sock string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^TestPeerHelper$", "-test.v")
	cmd.Env = []string{peerHelperEnv + "=" + mode, peerHelperEnv + "_SOCK=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// TestServeSessionsBounded: the server keeps at most maxSessions sessions
// (one a pair of endpoints); a request naming yet another NB endpoint is
// refused naming the key, and known endpoints are still served.
func TestServeSessionsBounded(t *testing.T) {
	s := &Server{OVS: "unix:/run/n1/db.sock"}
	defer s.closeSessions()
	for i := 0; i < maxSessions; i++ {
		if _, err := s.session(&Config{NB: fmt.Sprintf("ssl:198.18.0.%d:6641", i+1), OVS: s.OVS}); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	_, err := s.session(&Config{NB: "ssl:198.18.0.99:6641", OVS: s.OVS})
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, `"nb"`) {
		t.Errorf("session %d: %v; want code 7 naming \"nb\"", maxSessions+1, err)
	}
	if ss, err := s.session(&Config{NB: "ssl:198.18.0.1:6641", OVS: s.OVS}); err != nil || ss == nil {
		t.Errorf("a known endpoint after the bound: %v", err)
	}
}
