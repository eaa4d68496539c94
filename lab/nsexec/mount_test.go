package nsexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// TestCommandMounts: the program sees each bind's source at its target, in
// the network namespace; neither the binds nor mounts the program makes
// reach the host, except network namespaces bound under /run/netns, which
// the host (and so every later command) sees.
func TestCommandMounts(t *testing.T) {
	prereq.Root(t)
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Close(); _ = testutils.UnmountNS(netns) }()
	var st unix.Stat_t
	if err := unix.Stat(netns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	wantNet := fmt.Sprintf("net:[%d]", st.Ino)

	src, target := t.TempDir(), filepath.Join(t.TempDir(), "cni")
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("node-a"), 0o644); err != nil {
		t.Fatal(err)
	}
	binds := []Bind{{Source: src, Target: target}}
	nsName := fmt.Sprintf("nsexec-mt-%d", os.Getpid())
	nsFile := filepath.Join("/run/netns", nsName)
	defer func() { _ = unix.Unmount(nsFile, unix.MNT_DETACH); os.Remove(nsFile) }()
	inner := filepath.Join(target, "inner")
	script := fmt.Sprintf(`set -e
readlink /proc/self/ns/net
cat %[1]s/marker; echo
mkdir -p %[2]s && mount -t tmpfs none %[2]s
mkdir -p /run/netns && touch %[3]s && mount --bind /proc/self/ns/net %[3]s
echo "$NSEXEC_TEST"`, target, inner, nsFile)
	out, err := CommandMounts(context.Background(), netns.Path(), binds, []string{"NSEXEC_TEST=env-ok"}, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("command with binds: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 3 || got[0] != wantNet || got[1] != "node-a" || got[2] != "env-ok" {
		t.Fatalf("output %q; want %s, node-a, env-ok", out, wantNet)
	}
	if _, err := os.Stat(filepath.Join(target, "marker")); err == nil {
		t.Error("the bind mount reached the host")
	}
	if _, err := os.Stat(filepath.Join(src, "inner")); err != nil {
		t.Errorf("inner dir made through the bind: %v", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(filepath.Join(src, "inner"), &sfs); err == nil && sfs.Type == unix.TMPFS_MAGIC {
		t.Error("a mount made by the command reached the host")
	}
	if err := unix.Statfs(nsFile, &sfs); err != nil || sfs.Type != unix.NSFS_MAGIC {
		t.Errorf("network namespace bound under /run/netns by the command not seen by the host: %v (type %#x)", err, sfs.Type)
	}

	if out, err := CommandMounts(context.Background(), netns.Path(), []Bind{{Source: "rel", Target: "/x"}}, nil, "true").CombinedOutput(); err == nil || !strings.Contains(string(out), "want absolute paths") {
		t.Errorf("relative bind source: %v %s", err, out)
	}
}
