package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
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
