// Package runfile opens the small state files ovlmgr keeps beside a node's
// sockets and in its run directory (the NB hint, the sweep stamp, the CNI
// counters) the way files a root process uses in a directory that may be
// shared must be opened: never through a symlink and only a regular file,
// and, to write, only a file of this process's user with one link. A user
// who can write that directory so cannot make root write, truncate, map or
// read another file, or hang on a FIFO.
package runfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNotOwn is a path Open refuses: a symlink or not a regular file (a
// FIFO), or, to write, another user's file or one with other links.
var ErrNotOwn = errors.New("not a regular file of this user")

// Open opens path with flag (os.O_* flags; O_NOFOLLOW, O_NONBLOCK and
// O_CLOEXEC are added) and perm for a created file, and checks the file it
// opened: a regular file; opened to write or create, also one owned by this
// process's user with one link (a reader, such as an exporter running as
// another user, reads root's files).
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s: a symlink: %w", path, ErrNotOwn)
		}
		return nil, err
	}
	if err := check(f, flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE) != 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// check checks the opened file: regular, and with write also this user's
// with one link.
func check(f *os.File, write bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok {
		return fmt.Errorf("%w (mode %v)", ErrNotOwn, fi.Mode())
	}
	if write && (int(st.Uid) != os.Geteuid() || st.Nlink != 1) {
		return fmt.Errorf("%w (owner uid %d, %d links)", ErrNotOwn, st.Uid, st.Nlink)
	}
	return nil
}

// ModTime is the modification time of path, a regular file (Open's rule:
// not followed through a symlink).
func ModTime(path string) (time.Time, error) {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Touch sets path's access and modification times to t, creating it
// (mode 0600) when missing; Open's rule holds for an existing file.
func Touch(path string, t time.Time) error {
	f, err := Open(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// futimens(2): utimensat on the descriptor itself (a NULL path), to
	// the nanosecond.
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("%s: set times: %w", path, e)
	}
	return nil
}
