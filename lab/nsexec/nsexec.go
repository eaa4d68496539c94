// Package nsexec runs programs inside a network namespace without `ip netns
// exec` or a shell: the program is started through this very binary, whose
// init (in this package) enters the namespace with setns on its locked main
// thread and then execs the target in place. Any binary that imports this
// package (ovlmgr, test binaries using package lab) can do it.
package nsexec

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// marker is argv[0] of a trampoline invocation: argv = marker, netns path,
// program path, then the program's own argv.
const marker = "ovlmgr-nsexec-trampoline"

func init() {
	if len(os.Args) < 4 || os.Args[0] != marker {
		return
	}
	err := execIn(os.Args[1], os.Args[2], os.Args[3:], os.Environ())
	fmt.Fprintf(os.Stderr, "%v\n", err)
	os.Exit(127)
}

// Command returns a command that runs name with args inside the network
// namespace at nsPath, with os.Environ() plus env. ctx kills it like
// exec.CommandContext. The returned Cmd's Path and Args[0:3] are the
// trampoline: set Stdin/Stdout/Stderr/Env(append only) as usual, but do not
// replace Path or Args.
func Command(ctx context.Context, nsPath string, env []string, name string, args ...string) *exec.Cmd {
	path, err := sysbin.Find(name)
	self, serr := os.Executable()
	if err != nil || serr != nil {
		// Let Start report the failure.
		cmd := exec.CommandContext(ctx, name, args...)
		if cmd.Err == nil {
			cmd.Err = fmt.Errorf("nsexec: find own executable: %v", serr)
		}
		return cmd
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Args = append([]string{marker, nsPath, path, name}, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Exec replaces the current process with name (found by sysbin.Find) and args
// run inside the network namespace at nsPath, with os.Environ() plus env.
// It returns only on failure.
func Exec(nsPath string, env []string, name string, args ...string) error {
	path, err := sysbin.Find(name)
	if err != nil {
		return fmt.Errorf("exec %s: %w", name, err)
	}
	return execIn(nsPath, path, append([]string{name}, args...), append(os.Environ(), env...))
}

// execIn enters the network namespace on the locked thread and execs path.
func execIn(nsPath, path string, argv, env []string) error {
	if err := enterNet(nsPath); err != nil {
		return err
	}
	err := syscall.Exec(path, argv, env)
	return fmt.Errorf("exec %s in %s: %w", path, nsPath, err)
}

// enterNet locks the calling goroutine to its thread (for good: the thread
// execs or the process exits) and moves the thread into the network
// namespace at nsPath.
func enterNet(nsPath string) error {
	runtime.LockOSThread()
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", nsPath, err)
	}
	return nil
}
