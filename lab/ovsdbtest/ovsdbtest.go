// Package ovsdbtest starts a real ovsdb-server with a real schema (OVN
// Northbound, Southbound or Open_vSwitch) on a temporary unix socket for
// tests and benchmarks, and stops it by PID when the test ends.
package ovsdbtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// Installed schema paths (Debian's ovn-common and openvswitch-common).
const (
	NBSchema      = "/usr/share/ovn/ovn-nb.ovsschema"
	SBSchema      = "/usr/share/ovn/ovn-sb.ovsschema"
	VswitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"
)

// Server is a running ovsdb-server owned by one test.
type Server struct {
	// Endpoint is "unix:<socket>", ready for dbconn.Connect.
	Endpoint string
	// Socket is the unix socket path.
	Socket string
	// Dir holds the database file, socket and log.
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNB starts an ovsdb-server with the OVN Northbound schema.
func StartNB(tb testing.TB) *Server { tb.Helper(); return Start(tb, NBSchema) }

// StartSB starts an ovsdb-server with the OVN Southbound schema.
func StartSB(tb testing.TB) *Server { tb.Helper(); return Start(tb, SBSchema) }

// StartVswitch starts an ovsdb-server with the Open_vSwitch schema and its
// single Open_vSwitch row, as ovs-vswitchd's startup scripts create it.
func StartVswitch(tb testing.TB) *Server {
	tb.Helper()
	s := Start(tb, VswitchSchema)
	s.Run(tb, "ovs-vsctl", "--no-wait", "init")
	return s
}

// Start starts ovsdb-server on a fresh database made from schema and
// registers its stop with tb.Cleanup. When the OVS packages are not
// installed it stops the test through prereq (skip, or fail under
// OVLMGR_TEST_STRICT=1), saying what to run.
func Start(tb testing.TB, schema string) *Server {
	tb.Helper()
	prereq.Bins(tb, "ovsdb-server", "ovsdb-tool")
	prereq.Files(tb, schema)
	tool, _ := sysbin.Find("ovsdb-tool")
	server, _ := sysbin.Find("ovsdb-server")
	// Unix socket paths must stay under 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "ovsdbtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	if out, err := exec.Command(tool, "create", db, schema).CombinedOutput(); err != nil {
		tb.Fatalf("ovsdb-tool create %s: %v: %s", schema, err, out)
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "db.sock"), done: make(chan struct{})}
	s.Endpoint = "unix:" + s.Socket
	logFile := filepath.Join(dir, "ovsdb-server.log")
	s.cmd = exec.Command(server, db,
		"--remote=punix:"+s.Socket,
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+logFile,
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"-vconsole:off")
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start ovsdb-server: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	tb.Cleanup(s.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket file exists from bind() on, before listen(): wait
		// until a connection is accepted.
		if conn, err := net.Dial("unix", s.Socket); err == nil {
			conn.Close()
			return s
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logFile)
			tb.Fatalf("ovsdb-server exited at start: %s\n%s", stderr.String(), tail(string(log), 10))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ovsdb-server socket %s did not appear in 10s", s.Socket)
		}
	}
}

// Stop stops the server by PID (SIGTERM, then SIGKILL after 5 s) and waits
// for it to exit. Safe to call more than once.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Run runs an OVS/OVN command-line tool against this server's database
// (--db=<endpoint>) and fails the test on error. It returns stdout.
func (s *Server) Run(tb testing.TB, tool string, args ...string) string {
	tb.Helper()
	full := append([]string{"--db=" + s.Endpoint}, args...)
	prereq.Bins(tb, tool)
	path, _ := sysbin.Find(tool)
	cmd := exec.Command(path, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v: %s", tool, strings.Join(full, " "), err, stderr.String())
	}
	return stdout.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// String describes the server for test logs.
func (s *Server) String() string {
	return fmt.Sprintf("ovsdb-server %s (pid %d)", s.Endpoint, s.cmd.Process.Pid)
}

// Cmd returns an exec.Cmd for the OVS/OVN program name, found the way the
// lab finds it (sysbin.Find: PATH, then /usr/sbin, /usr/bin). A missing
// program stops the test through prereq (skip, or fail under
// OVLMGR_TEST_STRICT=1) naming it.
func Cmd(tb testing.TB, name string, args ...string) *exec.Cmd {
	tb.Helper()
	prereq.Bins(tb, name)
	path, _ := sysbin.Find(name)
	return exec.Command(path, args...)
}
