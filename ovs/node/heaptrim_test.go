package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// TestHeapTrimWarning: a userspace datapath node with jumbo frames is told
// to raise ovs-vswitchd's trim threshold unless its environment already
// does; standard frames and the kernel datapath are never told.
func TestHeapTrimWarning(t *testing.T) {
	for _, c := range []struct {
		dp      string
		mtu     int
		environ []string
		warn    bool
	}{
		{"netdev", 9000, []string{"PATH=/usr/bin"}, true},
		{"netdev", 9000, nil, true},
		{"netdev", 9000, []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2"}, true},
		{"netdev", 9000, []string{"GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072"}, true}, // the default, spelled out
		{"netdev", 9000, []string{"GLIBC_TUNABLES=" + VswitchdHeapTunables}, false},
		{"netdev", 9000, []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0x1000000"}, false},
		{"netdev", 9000, []string{"MALLOC_TRIM_THRESHOLD_=16777216"}, false},
		{"netdev", 1500, nil, false},
		{"netdev", HeapTrimMTU - 1, nil, false},
		{"netdev", HeapTrimMTU, nil, true},
		{"system", 9000, nil, false},
	} {
		w := HeapTrimWarning(c.dp, c.mtu, c.environ)
		if (w != "") != c.warn {
			t.Errorf("%s MTU %d %q: warning %q; want one: %v", c.dp, c.mtu, c.environ, w, c.warn)
		}
		if c.warn && (!strings.Contains(w, "MTU "+strconv.Itoa(c.mtu)) || !strings.Contains(w, "GLIBC_TUNABLES="+VswitchdHeapTunables)) {
			t.Errorf("%s MTU %d: warning %q should name the MTU and the setting", c.dp, c.mtu, w)
		}
	}
}

// TestJoinHeapTrimWarning: join reads the environment of the process in the
// ovs-vswitchd pidfile next to the database socket and the MTU of the
// interface holding the encap IP.
func TestJoinHeapTrimWarning(t *testing.T) {
	e := setup(t)
	setMTU := func(mtu int) {
		t.Helper()
		err := e.netns.Do(func(ns.NetNS) error {
			l, err := netlink.LinkByName("d0")
			if err != nil {
				return err
			}
			return netlink.LinkSetMTU(l, mtu)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A process standing in for ovs-vswitchd: join reads only its pidfile
	// and /proc/PID/environ.
	vswitchd := func(env ...string) {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		pidfile := filepath.Join(filepath.Dir(e.ovs.Socket), "ovs-vswitchd.pid")
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	heapWarned := func(step string) bool {
		t.Helper()
		res, err := e.join(t, e.opts())
		if err != nil {
			t.Fatalf("%s: join: %v", step, err)
		}
		n := 0
		for _, w := range res.Warnings {
			if strings.Contains(w, "heap trim threshold") {
				n++
			}
		}
		return n == 1
	}

	setMTU(9000)
	vswitchd("PATH=/usr/bin")
	if !heapWarned("MTU 9000, default threshold") {
		t.Error("MTU 9000, default threshold: no heap warning")
	}
	vswitchd("PATH=/usr/bin", "GLIBC_TUNABLES="+VswitchdHeapTunables)
	if heapWarned("MTU 9000, raised threshold") {
		t.Error("MTU 9000, raised threshold: warned")
	}
	vswitchd("PATH=/usr/bin")
	setMTU(1500)
	if heapWarned("MTU 1500, default threshold") {
		t.Error("MTU 1500: warned")
	}
}
