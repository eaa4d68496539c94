// Package sysbin finds the OVS/OVN programs (and the other system tools the
// lab and the node-side code run) the same way everywhere: in PATH, then in
// the directories Debian installs them to. A PATH without /usr/sbin (a
// non-login root shell, sudo with secure_path unset, CI runners) must not
// turn an installed ovn-northd into a "not installed" one.
package sysbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Dirs are searched, in order, after PATH.
var Dirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"}

// ErrNotFound is wrapped by the error Find returns for a missing program.
var ErrNotFound = errors.New("not found")

// Find returns the path of the executable name: name itself when it
// contains a slash, else the first match in PATH, then in Dirs. The error
// names the program, where it looked and how to get it, and wraps
// ErrNotFound.
func Find(name string) (string, error) {
	if strings.Contains(name, "/") {
		if executable(name) {
			return name, nil
		}
		return "", fmt.Errorf("program %s: %w (not an executable file)", name, ErrNotFound)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range Dirs {
		if p := filepath.Join(d, name); executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %s: %w in PATH or %s: run `make deps`", name, ErrNotFound, strings.Join(Dirs, ", "))
}

// Missing returns the names among names that Find cannot find.
func Missing(names ...string) []string {
	var out []string
	for _, n := range names {
		if _, err := Find(n); err != nil {
			out = append(out, n)
		}
	}
	return out
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
