package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// daemon is one OVS/OVN daemon of the lab, started detached with a pidfile
// in dir and stopped by the PID in that file.
type daemon struct {
	Node string // "central" or a node name
	Name string // ovsdb-server-nb, ovs-vswitchd, ...
	bin  string
	dir  string
	args []string
	env  []string
	ns   string
	// goDaemon: an ovlmgr program (the control service), not an OVS one:
	// no --detach; it writes --pidfile itself once it serves.
	goDaemon bool
}

func (d *daemon) pidfile() string { return filepath.Join(d.dir, d.Name+".pid") }
func (d *daemon) logfile() string { return filepath.Join(d.dir, d.Name+".log") }
func (d *daemon) errfile() string { return filepath.Join(d.dir, d.Name+".stderr") }

// start runs the daemon in its namespace with --detach: it returns once
// the daemon is ready (or failed), and the daemon outlives this process.
func (d *daemon) start(ctx context.Context) error {
	if d.goDaemon {
		return d.startGo(ctx)
	}
	args := append([]string{}, d.args...)
	args = append(args,
		"--pidfile="+d.pidfile(), "--log-file="+d.logfile(),
		"--detach", "--no-chdir", "-vconsole:err", "-vsyslog:off")
	errf, err := os.Create(d.errfile())
	if err != nil {
		return fmt.Errorf("start %s on %s: %w", d.Name, d.Node, err)
	}
	defer errf.Close()
	bin, err := lookBin(d.bin)
	if err != nil {
		return fmt.Errorf("start %s on %s: %w", d.Name, d.Node, err)
	}
	run := func() error {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), d.env...)
		cmd.Stdout, cmd.Stderr = errf, errf
		return cmd.Run()
	}
	if d.ns != "" {
		err = ns.WithNetNSPath(d.ns, func(ns.NetNS) error { return run() })
	} else {
		err = run()
	}
	if err != nil {
		return fmt.Errorf("start %s on %s: %v\n%s", d.Name, d.Node, err, d.lastLines(8))
	}
	if _, err := d.pid(); err != nil {
		return fmt.Errorf("start %s on %s: %v\n%s", d.Name, d.Node, err, d.lastLines(8))
	}
	return nil
}

// lastLines returns the last n lines of the daemon's stderr and log.
func (d *daemon) lastLines(n int) string {
	var b strings.Builder
	for _, f := range []string{d.errfile(), d.logfile()} {
		data, err := os.ReadFile(f)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- last lines of %s:\n%s\n", f, tail(string(data), n))
	}
	return strings.TrimRight(b.String(), "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pid returns the PID in the pidfile if that process is alive and is this
// daemon (its command line names our pidfile, so a reused PID is never ours).
func (d *daemon) pid() (int, error) {
	data, err := os.ReadFile(d.pidfile())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%s on %s is not running (no pidfile)", d.Name, d.Node)
		}
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s on %s: bad pidfile %s", d.Name, d.Node, d.pidfile())
	}
	if !ownedAlive(pid, d.pidfile()) {
		return 0, fmt.Errorf("%s on %s (pid %d) is not running", d.Name, d.Node, pid)
	}
	return pid, nil
}

// ownedAlive reports whether pid runs (not a zombie) with --pidfile=pidfile.
func ownedAlive(pid int, pidfile string) bool {
	if Exited(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(cmdline), "\x00") {
		if a == "--pidfile="+pidfile {
			return true
		}
	}
	return false
}

// Exited reports whether process pid has exited (a zombie not yet reaped
// counts as exited: detached daemons are reaped lazily by init).
func Exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] == 'Z' || s[i+2] == 'X'
}

// stop sends SIGTERM to the daemon (SIGKILL after 5 s) and waits until it
// has exited. A daemon that is not running is not an error.
func (d *daemon) stop() error {
	pid, err := d.pid()
	if err != nil {
		os.Remove(d.pidfile())
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for !Exited(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
			for !Exited(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("stop %s on %s: pid %d survives SIGKILL", d.Name, d.Node, pid)
				}
				time.Sleep(5 * time.Millisecond)
			}
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	os.Remove(d.pidfile())
	return nil
}

// startGo starts an ovlmgr daemon in its own session (it outlives this
// process) and waits until its pidfile names it.
func (d *daemon) startGo(ctx context.Context) error {
	os.Remove(d.pidfile())
	errf, err := os.Create(d.errfile())
	if err != nil {
		return fmt.Errorf("start %s on %s: %w", d.Name, d.Node, err)
	}
	defer errf.Close()
	cmd := exec.Command(d.bin, append(append([]string{}, d.args...), "--pidfile="+d.pidfile())...)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	run := func() error { return cmd.Start() }
	if d.ns != "" {
		err = ns.WithNetNSPath(d.ns, func(ns.NetNS) error { return run() })
	} else {
		err = run()
	}
	if err != nil {
		return fmt.Errorf("start %s on %s: %v", d.Name, d.Node, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.pid(); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("start %s on %s: exited\n%s", d.Name, d.Node, d.lastLines(8))
		case <-ctx.Done():
			return fmt.Errorf("start %s on %s: %w", d.Name, d.Node, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start %s on %s: no pidfile within 10s\n%s", d.Name, d.Node, d.lastLines(8))
		}
	}
}
