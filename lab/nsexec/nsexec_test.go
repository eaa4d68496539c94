package nsexec

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

func TestCommandRunsInNamespace(t *testing.T) {
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
	want := fmt.Sprintf("net:[%d]", st.Ino)

	out, err := Command(context.Background(), netns.Path(), nil, "readlink", "/proc/self/ns/net").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("readlink in namespace: %q, %v; want %s", out, err, want)
	}
	out, err = Command(context.Background(), netns.Path(), []string{"NSEXEC_TEST=hello"}, "printenv", "NSEXEC_TEST").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("printenv in namespace: %q, %v; want hello", out, err)
	}
	// This process stays in its own namespace.
	self, _ := os.Readlink("/proc/self/ns/net")
	if self == want {
		t.Fatal("test process moved into the namespace")
	}

	cmd := Command(context.Background(), netns.Path(), nil, "no-such-program-xyz")
	if err := cmd.Run(); err == nil {
		t.Fatal("running a missing program succeeded")
	}
	cmd = Command(context.Background(), "/nonexistent/netns", nil, "true")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "open network namespace") {
		t.Fatalf("bad namespace: %v %s", err, out)
	}
}
