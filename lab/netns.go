package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// NetNSDir is where named network namespaces live (as with `ip netns`).
const NetNSDir = "/var/run/netns"

// createNetNS creates the persistent network namespace NetNSDir/name (what
// `ip netns add` does) and returns its path. It fails if it exists.
func createNetNS(name string) (string, error) {
	if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
		return "", fmt.Errorf("create netns %s: %w", name, err)
	}
	// Make the directory a shared mount point so the bind mounts propagate
	// to other mount namespaces, as iproute2 does.
	if err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		if err != unix.EINVAL {
			return "", fmt.Errorf("create netns %s: make %s shared: %w", name, NetNSDir, err)
		}
		if err := unix.Mount(NetNSDir, NetNSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("create netns %s: bind %s: %w", name, NetNSDir, err)
		}
		if err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("create netns %s: make %s shared: %w", name, NetNSDir, err)
		}
	}
	path := filepath.Join(NetNSDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("create netns %s: it already exists (left over from an earlier lab? run `ovlmgr lab down`)", name)
		}
		return "", fmt.Errorf("create netns %s: %w", name, err)
	}
	f.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The thread is never unlocked: Go discards it when the goroutine
		// ends, so no other goroutine runs in the new namespace.
		runtime.LockOSThread()
		if err = unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		err = unix.Mount(self, path, "none", unix.MS_BIND, "")
	}()
	wg.Wait()
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create netns %s: %w", name, err)
	}
	return path, nil
}

// deleteNetNS unmounts and removes a namespace made by createNetNS. A
// missing namespace is not an error.
func deleteNetNS(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("delete netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", path, err)
	}
	return nil
}
