package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
)

// The node's CNI server (`ovlmgr-cni serve`) keeps the node's database
// connections open (attach.Session) and runs ADD and DEL for the plugin
// processes the runtimes start: a plugin that finds the server's socket
// forwards its invocation (the CNI variables and stdin) and prints the
// answer, so an ADD pays neither the connects nor the reads a fresh process
// makes. Without a server (no socket, or nobody listening) the plugin does
// the work itself; CHECK, STATUS, GC and VERSION always run in the plugin.

// ServerSocketName is the server's Unix socket, in the directory of the
// node's Open_vSwitch db socket: a server serves that db's node only.
const ServerSocketName = "ovlmgr-cni.sock"

const (
	verbAdd = "ADD"
	verbDel = "DEL"
)

// ServerSocket is the server socket for the Open_vSwitch db endpoint ovs
// ("" = dbconn.DefaultOVS()): beside a unix: endpoint's socket; "" for a
// tcp: or ssl: endpoint, which has no server.
func ServerSocket(ovs string) string {
	if ovs == "" {
		ovs = dbconn.DefaultOVS()
	}
	path, ok := strings.CutPrefix(ovs, "unix:")
	if !ok || path == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(path), ServerSocketName)
}

// wireRequest is one forwarded invocation.
type wireRequest struct {
	Command     string `json:"command"`
	ContainerID string `json:"containerID"`
	Netns       string `json:"netns"`
	IfName      string `json:"ifName"`
	Args        string `json:"args"`
	Path        string `json:"path"`
	Stdin       []byte `json:"stdin"`
}

// wireReply is its answer: what the plugin prints, or the CNI error.
type wireReply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *types.Error    `json:"error,omitempty"`
}

// forwardMargin is how long past the verb's own deadline a plugin waits
// for the server's answer.
const forwardMargin = 15 * time.Second

// forward hands verb to the node's CNI server and reports whether one
// answered (then err is the verb's outcome, its result printed). A server
// that cannot be reached leaves the verb to the caller; one that fails
// after taking it (killed, restarted) is code 11, try again: what it had
// made is undone by it or found as a leftover by the next ADD or DEL.
func forward(verb string, args *skel.CmdArgs, c *Config) (bool, error) {
	path := ServerSocket(c.OVS)
	if path == "" {
		return false, nil
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false, nil
	}
	defer conn.Close()
	if peerAllowed(conn) != nil {
		// Not a server root (or this user) runs: a socket someone else
		// put there. The plugin does the verb itself.
		return false, nil
	}
	timeout := c.ReadyTimeout.Duration
	if timeout <= 0 {
		timeout = attach.DefaultReadyTimeout
	}
	_ = conn.SetDeadline(time.Now().Add(timeout + forwardMargin))
	failed := func(err error) (bool, error) {
		return true, cniErr(types.ErrTryAgainLater, fmt.Sprintf("the node's CNI server at %s: %v", path, err))
	}
	req := wireRequest{Command: verb, ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		Args: args.Args, Path: args.Path, Stdin: args.StdinData}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return failed(err)
	}
	var rep wireReply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		return failed(err)
	}
	if rep.Error != nil {
		return true, rep.Error
	}
	if len(rep.Result) > 0 {
		if _, err := os.Stdout.Write(rep.Result); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Server is the node's CNI server (see Serve).
type Server struct {
	// OVS is the node's Open_vSwitch db endpoint (unix:), for requests
	// whose config names none.
	OVS string
	// Log receives the server's own lines (the verbs log as the plugin
	// does, to the config's logFile); nil: discarded.
	Log func(format string, a ...interface{})
	// Listening, when set, is called once the socket accepts requests
	// (`ovlmgr-cni serve --pidfile` writes its pidfile there).
	Listening func(socket string)

	mu       sync.Mutex
	sessions map[string]*attach.Session
	refills  refills
	wg       sync.WaitGroup
	// busy serializes the verbs of one container interface.
	busy containerLocks
	// readTimeout bounds reading a request (default requestReadTimeout);
	// verb runs a parsed request (default run). Tests set them.
	readTimeout time.Duration
	verb        func(ctx context.Context, req wireRequest, c *Config) (result []byte, after func(bool), err error)
}

// requestReadTimeout bounds how long a client may take to send its
// request, maxRequest its size: a client that connects and stalls, or
// sends without end, holds no handler (and no server stop) for longer.
const (
	requestReadTimeout = 10 * time.Second
	maxRequest         = 4 << 20
)

// containerLocks lets one verb at a time run per container interface
// (container ID, ifname). A runtime that killed a plugin whose ADD the
// server runs and then sends ADD or DEL again for that interface would
// otherwise race with the first ADD's undo, which removes what it made by
// name: the veth, the OVS port, the NB port of the second.
type containerLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// lock waits until no other verb holds key, or ctx ends; unlock releases.
func (l *containerLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		if l.m == nil {
			l.m = map[string]chan struct{}{}
		}
		held, ok := l.m[key]
		if !ok {
			done := make(chan struct{})
			l.m[key] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.m, key)
				l.mu.Unlock()
				close(done)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Serve listens on the socket beside s.OVS's db socket and serves until
// ctx ends; then it stops accepting, waits for the verbs in flight and
// closes its connections. A socket file nobody listens on (a server that
// died) is replaced; one with a live server is an error.
func (s *Server) Serve(ctx context.Context) error {
	if s.OVS == "" {
		s.OVS = dbconn.DefaultOVS()
	}
	path := ServerSocket(s.OVS)
	if path == "" {
		return fmt.Errorf("serve: ovs endpoint %q: want unix:PATH (the server's socket goes beside the db socket)", s.OVS)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("serve: %s: another server listens there", path)
	}
	_ = os.Remove(path)
	l, err := listenPrivate(path)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.logf("serving ADD and DEL for the node of %s on %s", s.OVS, path)
	if s.Listening != nil {
		s.Listening(path)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.wg.Wait()
			s.closeSessions()
			return fmt.Errorf("serve: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
		}()
	}
	_ = os.Remove(path)
	s.wg.Wait()
	s.refills.wait()
	s.closeSessions()
	return nil
}

// listenPrivate listens on a Unix socket at path that is mode 0600 from
// its creation: no moment in which another user could connect, and no
// chmod by name afterwards (which would follow a symlink put there).
func listenPrivate(path string) (net.Listener, error) {
	old := unix.Umask(0o177)
	defer unix.Umask(old)
	return net.Listen("unix", path)
}

// peerAllowed says whether the process at the other end of conn runs as
// root or as this process's user: the only clients a server serves, and
// the only server a plugin forwards to. The socket's mode keeps others out
// already; this holds where its directory is handed to another user (an
// OVS run directory chowned to the openvswitch account).
func peerAllowed(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return errors.New("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("peer uid %d (pid %d): the node's CNI server and its clients run as root", cred.Uid, cred.Pid)
	}
	return nil
}

// checkRequest checks what skel checks in a plugin process (the container
// ID, the interface name, the configuration's name: names that go into
// port names, logs and the kernel), and that the request is for this
// server's node: its Open_vSwitch db is the one the server was started for.
func (s *Server) checkRequest(req wireRequest, c *Config) error {
	if err := utils.ValidateContainerID(req.ContainerID); err != nil {
		return err
	}
	if err := utils.ValidateInterfaceName(req.IfName); err != nil {
		return err
	}
	if c.Name == "" {
		return cniErr(types.ErrInvalidNetworkConfig, "missing network name")
	}
	if err := utils.ValidateNetworkName(c.Name); err != nil {
		return err
	}
	if ServerSocket(c.OVS) != ServerSocket(s.OVS) {
		return cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf(`config key "ovs": %q is not the Open_vSwitch db of this node's CNI server (%s)`, c.OVS, s.OVS))
	}
	return nil
}

// serverLog is the server's log as an attach.Logger (info and errors).
type serverLog struct{ s *Server }

func (l serverLog) Infof(f string, a ...interface{})  { l.s.logf(f, a...) }
func (l serverLog) Debugf(string, ...interface{})     {}
func (l serverLog) Errorf(f string, a ...interface{}) { l.s.logf("error: "+f, a...) }

func (s *Server) logf(format string, a ...interface{}) {
	if s.Log != nil {
		s.Log(format, a...)
	}
}

// maxSessions bounds the sessions a server keeps (one a pair of
// endpoints; a node's configs name one or two NB endpoints): requests
// naming ever new endpoints cannot make it hold connections without end.
const maxSessions = 8

// session is the Session for a config's endpoints.
func (s *Server) session(c *Config) (*attach.Session, error) {
	key := c.NB + "\x00" + c.OVS
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[string]*attach.Session{}
	}
	if ss, ok := s.sessions[key]; ok {
		return ss, nil
	}
	if len(s.sessions) >= maxSessions {
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf(`config key "nb": %q: the node's CNI server serves at most %d different endpoints`, c.NB, maxSessions))
	}
	ss := attach.NewSession()
	ss.Log = serverLog{s}
	s.sessions[key] = ss
	return ss, nil
}

func (s *Server) closeSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.Close()
	}
	s.sessions = nil
}

// handle serves one forwarded invocation. The plugin waits for the answer
// without writing more: its end closing first means the runtime killed it,
// and the verb's context ends (an ADD then undoes what it made).
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	rt := s.readTimeout
	if rt == 0 {
		rt = requestReadTimeout
	}
	_ = conn.SetReadDeadline(time.Now().Add(rt))
	var req wireRequest
	dec := json.NewDecoder(io.LimitReader(conn, maxRequest))
	if err := dec.Decode(&req); err != nil {
		s.logf("request: %v", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	// A verb in flight finishes when the server stops (its own deadlines
	// bound it); only the plugin going away cancels it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		cancel()
	}()
	var rep wireReply
	var after func(bool)
	err := peerAllowed(conn)
	if err != nil {
		s.logf("%q refused: %v", req.Command, err)
		err = cniErr(CodeInternal, err.Error())
	}
	var c *Config
	if err == nil {
		c, err = ParseConfig(req.Stdin)
	}
	if err == nil && c.OVS == "" {
		c.OVS = s.OVS
	}
	if err == nil {
		err = s.checkRequest(req, c)
	}
	if err == nil {
		// After any verb of this interface still running (or undoing).
		unlock, lerr := s.busy.lock(ctx, req.ContainerID+"\x00"+req.IfName)
		if lerr != nil {
			s.logf("%s %.12s/%s: the plugin went away while an earlier verb of this interface ran", req.Command, req.ContainerID, req.IfName)
			return
		}
		defer unlock()
		verb := s.verb
		if verb == nil {
			verb = s.run
		}
		rep.Result, after, err = verb(ctx, req, c)
	}
	if err != nil {
		rep.Error = asCNIError(err)
	}
	werr := json.NewEncoder(conn).Encode(&rep)
	if after != nil {
		after(werr == nil)
	}
	if werr != nil {
		s.logf("%s %.12s/%s: answer: %v", req.Command, req.ContainerID, req.IfName, werr)
	}
}

// run runs a served verb.
func (s *Server) run(ctx context.Context, req wireRequest, c *Config) ([]byte, func(bool), error) {
	args := &skel.CmdArgs{ContainerID: req.ContainerID, Netns: req.Netns, IfName: req.IfName, Args: req.Args, Path: req.Path, StdinData: req.Stdin}
	if req.Command != verbAdd && req.Command != verbDel {
		return nil, nil, cniErr(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_COMMAND %q: the node's CNI server serves ADD and DEL", req.Command))
	}
	sess, err := s.session(c)
	if err != nil {
		return nil, nil, err
	}
	if req.Command == verbAdd {
		return add(ctx, args, c, sess, s.refill)
	}
	return nil, nil, del(ctx, args, c, sess)
}

// asCNIError is err as the runtime would get it from the plugin (skel
// turns an error without a code into 999).
func asCNIError(err error) *types.Error {
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	return cniErr(types.ErrInternal, err.Error())
}

// refill brings the pool of c's network back to size in the server, one
// refill a network at a time (a request during one runs it once more
// after), and closes linger beside it.
func (s *Server) refill(sess *attach.Session, c *Config, linger []*os.File) {
	go closeAll(linger)
	rc := &Config{Network: c.Network, NB: c.NB, OVS: c.OVS, LogFile: c.LogFile, LogLevel: c.LogLevel}
	s.refills.kick(c.NB+"\x00"+c.OVS+"\x00"+c.Network, func() {
		l := newLogger(rc, "REFILL", "", "")
		defer l.close()
		start := time.Now()
		res, err := attach.Refill(context.Background(), attach.RefillRequest{Network: rc.Network, NB: rc.NB, OVS: rc.OVS,
			Timeout: refillTimeout, Session: sess})
		if err != nil {
			l.Errorf("pool refill of network %s: %v", rc.Network, err)
			return
		}
		l.Debugf("pool of network %s: %d ready, %d made, %d removed in %s", rc.Network, res.Ready, res.Made, res.Removed,
			time.Since(start).Round(time.Millisecond))
	})
}

// refills runs at most one refill a key at a time.
type refills struct {
	mu      sync.Mutex
	running map[string]bool
	again   map[string]bool
	wg      sync.WaitGroup
}

// kick runs f for key now, or once more after the run in progress.
func (r *refills) kick(key string, f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running, r.again = map[string]bool{}, map[string]bool{}
	}
	if r.running[key] {
		r.again[key] = true
		return
	}
	r.running[key] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			f()
			r.mu.Lock()
			if !r.again[key] {
				delete(r.running, key)
				r.mu.Unlock()
				return
			}
			r.again[key] = false
			r.mu.Unlock()
		}
	}()
}

// wait waits for the refills in progress.
func (r *refills) wait() { r.wg.Wait() }
