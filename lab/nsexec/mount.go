package nsexec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Bind is a bind mount made in a command's own mount namespace: Source (a
// directory, created when missing) is mounted over Target (created on the
// shared filesystem when missing, empty).
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// markerMounts is argv[0] of a trampoline invocation with bind mounts:
// argv = markerMounts, netns path, JSON []Bind, program path, program argv.
const markerMounts = "ovlmgr-nsexec-mounts-trampoline"

func init() {
	if len(os.Args) < 5 || os.Args[0] != markerMounts {
		return
	}
	var binds []Bind
	err := json.Unmarshal([]byte(os.Args[2]), &binds)
	if err == nil {
		err = execInMounts(os.Args[1], binds, os.Args[3], os.Args[4:], os.Environ())
	}
	fmt.Fprintf(os.Stderr, "%v\n", err)
	os.Exit(127)
}

// CommandMounts is Command with binds: the program runs in the network
// namespace at nsPath and in a new mount namespace of its own in which each
// Bind is mounted. Mounts made there (by the binds or the program) do not
// propagate back to the host, except under the named network namespace
// directory (/run/netns, /var/run/netns), which stays shared so network
// namespaces that a runtime creates are seen by every later command.
func CommandMounts(ctx context.Context, nsPath string, binds []Bind, env []string, name string, args ...string) *exec.Cmd {
	if len(binds) == 0 {
		return Command(ctx, nsPath, env, name, args...)
	}
	path, err := exec.LookPath(name)
	self, serr := os.Executable()
	b, jerr := json.Marshal(binds)
	if err != nil || serr != nil || jerr != nil {
		cmd := exec.CommandContext(ctx, name, args...)
		if cmd.Err == nil {
			cmd.Err = fmt.Errorf("nsexec: %w", errors.Join(serr, jerr))
		}
		return cmd
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Args = append([]string{markerMounts, nsPath, string(b), path, name}, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// ExecMounts is Exec with binds (see CommandMounts). It returns only on
// failure.
func ExecMounts(nsPath string, binds []Bind, env []string, name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("exec %s: %w", name, err)
	}
	return execInMounts(nsPath, binds, path, append([]string{name}, args...), append(os.Environ(), env...))
}

// execInMounts enters the network namespace, unshares the mount namespace
// of the locked thread (unshare(CLONE_NEWNS) also unshares the thread's fs
// attributes, so it works in a multi-threaded Go process), mounts binds and
// execs path.
func execInMounts(nsPath string, binds []Bind, path string, argv, env []string) error {
	if err := enterNet(nsPath); err != nil {
		return err
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("new mount namespace: %w", err)
	}
	if err := stopPropagation(); err != nil {
		return err
	}
	for _, b := range binds {
		if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Target) {
			return fmt.Errorf("bind %s on %s: want absolute paths", b.Source, b.Target)
		}
		for _, d := range []string{b.Source, b.Target} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
			}
		}
		if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
	}
	err := unix.Exec(path, argv, env)
	return fmt.Errorf("exec %s in %s: %w", path, nsPath, err)
}

// stopPropagation makes every shared mount of this (new) mount namespace a
// slave, except the named network namespace directory and what is under it:
// mounts made here then stay here, while host mounts still show up.
func stopPropagation() error {
	keep := map[string]bool{"/run/netns": true, "/var/run/netns": true}
	if p, err := filepath.EvalSymlinks("/var/run/netns"); err == nil {
		keep[p] = true
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var shared []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options optional... - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		isShared := false
		for _, o := range fields[6:] {
			if o == "-" {
				break
			}
			if strings.HasPrefix(o, "shared:") {
				isShared = true
			}
		}
		if !isShared || keptUnder(mp, keep) {
			continue
		}
		shared = append(shared, mp)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	for _, mp := range shared {
		if err := unix.Mount("", mp, "", unix.MS_SLAVE, ""); err != nil && err != unix.ENOENT && err != unix.EINVAL {
			return fmt.Errorf("make mount %s a slave: %w", mp, err)
		}
	}
	return nil
}

func keptUnder(mp string, keep map[string]bool) bool {
	for k := range keep {
		if mp == k || strings.HasPrefix(mp, k+"/") {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
