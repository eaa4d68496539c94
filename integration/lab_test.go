package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// TestLabSizes brings up labs of 1, 3 and 5 nodes at the same time (so it
// also shows that labs with different names do not collide), checks
// chassis and tunnels, takes them down and checks nothing is left.
func TestLabSizes(t *testing.T) {
	needLab(t)
	hostLinks := linkNames(t)
	for i, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			t.Parallel()
			name := uniqueName(fmt.Sprintf("z%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			mtu := 1500
			if n == 3 {
				mtu = 9000 // a non-default underlay MTU reaches the veths and br-phy
			}
			dir := ""
			if n == 1 {
				dir = filepath.Join(t.TempDir(), "lab") // a lab outside the default root
			}
			l, err := lab.Up(ctx, lab.Options{Nodes: n, Name: name, UnderlayMTU: mtu, Dir: dir})
			if err != nil {
				t.Fatalf("lab up: %v", err)
			}
			downed := false
			defer func() {
				if !downed {
					_ = l.Down(context.Background())
				}
			}()
			checkLab(ctx, t, l, n)
			if n == 1 {
				checkUnhealthy(ctx, t, l)
			}

			if err := l.Down(ctx); err != nil {
				t.Fatalf("lab down: %v", err)
			}
			downed = true
			checkGone(t, l, hostLinks)
			if err := l.Down(ctx); err != nil {
				t.Fatalf("second lab down (must be a no-op): %v", err)
			}
		})
	}
}

// checkLab asserts n connected chassis with Geneve encaps, full tunnel mesh
// egressing br-phy, and working node commands.
func checkLab(ctx context.Context, t *testing.T, l *lab.Lab, n int) {
	t.Helper()
	if len(l.Nodes) != n {
		t.Fatalf("lab has %d nodes, want %d", len(l.Nodes), n)
	}
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	chs, err := chassis.List(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != n {
		t.Fatalf("node list: %d chassis, want %d: %+v", len(chs), n, chs)
	}
	for i, ch := range chs {
		want := l.Nodes[i]
		if ch.Name != want.SystemID || ch.Hostname != want.Name || !ch.Connected {
			t.Errorf("chassis %d = %+v, want name %s hostname %s connected", i, ch, want.SystemID, want.Name)
		}
		if len(ch.Encaps) != 1 || ch.Encaps[0].Type != "geneve" || ch.Encaps[0].IP != want.EncapIP {
			t.Errorf("chassis %s encaps %+v, want geneve %s", ch.Name, ch.Encaps, want.EncapIP)
		}
	}
	for _, nd := range l.Nodes {
		oc, err := vsdb.Connect(ctx, nd.OVS)
		if err != nil {
			t.Fatal(err)
		}
		ifs, err := vsdb.Interfaces(ctx, oc, "geneve")
		oc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, i := range ifs {
			got[i.Options["remote_ip"]] = i.Status["tunnel_egress_iface"]
		}
		if len(got) != n-1 {
			t.Errorf("%s: %d geneve tunnels %v, want %d", nd.Name, len(got), got, n-1)
		}
		for _, other := range l.Nodes {
			if other == nd {
				continue
			}
			if eg, ok := got[other.EncapIP]; !ok || eg != lab.PhysBridge {
				t.Errorf("%s: tunnel to %s: present=%v egress=%q, want egress %s", nd.Name, other.Name, ok, eg, lab.PhysBridge)
			}
		}
		// The node's environment reaches its own db from inside its namespace.
		out, err := nd.Command(ctx, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id").CombinedOutput()
		if err != nil || strings.Trim(strings.TrimSpace(string(out)), `"`) != nd.SystemID {
			t.Errorf("%s: ovs-vsctl get system-id: %q, %v; want %s", nd.Name, out, err, nd.SystemID)
		}
		// The encap IP lives on br-phy inside the node's namespace; br-phy and
		// the underlay veth have the underlay MTU.
		err = nd.Do(func() error {
			for _, name := range []string{lab.PhysBridge, "ul0"} {
				link, err := netlink.LinkByName(name)
				if err != nil {
					return err
				}
				if link.Attrs().MTU != l.UnderlayMTU {
					return fmt.Errorf("%s MTU %d, want %d", name, link.Attrs().MTU, l.UnderlayMTU)
				}
			}
			l, err := netlink.LinkByName(lab.PhysBridge)
			if err != nil {
				return err
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if a.IP.String() == nd.EncapIP {
					return nil
				}
			}
			return fmt.Errorf("%s has %v, want %s", lab.PhysBridge, addrs, nd.EncapIP)
		})
		if err != nil {
			t.Errorf("%s: %v", nd.Name, err)
		}
	}
	st, err := l.Status(ctx)
	if err != nil || !st.Healthy() {
		t.Errorf("lab status: %v %v", err, st.Problems)
	}
	// Reloading the lab from its directory gives the same lab.
	l2, err := lab.Load(l.Dir)
	if err != nil || l2.NB != l.NB || len(l2.Nodes) != n {
		t.Errorf("lab.Load(%s) = %+v, %v", l.Dir, l2, err)
	}
}

// checkUnhealthy kills a node's ovn-controller: status and a second up
// must say so.
func checkUnhealthy(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, d := range st.Daemons {
		if d.Node == "n1" && d.Name == "ovn-controller" {
			pid = d.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no ovn-controller pid in status %+v", st.Daemons)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err = l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Healthy() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Healthy() || !strings.Contains(strings.Join(st.Problems, ";"), "ovn-controller on n1") {
		t.Errorf("status after killing ovn-controller: problems %v, want ovn-controller on n1", st.Problems)
	}
	_, err = lab.Up(ctx, lab.Options{Nodes: 1, Name: l.Name, Dir: l.Dir})
	if err == nil || !strings.Contains(err.Error(), "not healthy") || !strings.Contains(err.Error(), "ovn-controller on n1") {
		t.Errorf("lab up on a broken lab: %v, want 'not healthy' naming ovn-controller on n1", err)
	}
}

// checkGone asserts that no namespace, host link, process or file of the
// lab remains.
func checkGone(t *testing.T, l *lab.Lab, hostLinksBefore map[string]bool) {
	t.Helper()
	entries, _ := os.ReadDir(lab.NetNSDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Name+"-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("lab dir %s left behind (%v)", l.Dir, err)
	}
	for name := range linkNames(t) {
		if !hostLinksBefore[name] && isLabLink(name) {
			t.Errorf("link %s left in the host namespace", name)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue // gone or zombie
		}
		if strings.Contains(string(data), l.Dir+"/") {
			t.Errorf("process %s still running: %s", filepath.Dir(p), strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
}

// isLabLink reports whether a link name is one a lab creates.
func isLabLink(name string) bool {
	switch name {
	case "br-ul", "ul0", "br-phy", "br-int", "genev_sys_6081", "ovs-netdev", "br-ext", "ex0", "br-ex":
		return true
	}
	return strings.HasPrefix(name, "to-n")
}

func linkNames(t *testing.T) map[string]bool {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range links {
		out[l.Attrs().Name] = true
	}
	return out
}

// TestSharedLab checks the lab other tests of this package share.
func TestSharedLab(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checkLab(ctx, t, l, 3)
	// Bringing it up again reuses it.
	l2, err := lab.Up(ctx, lab.Options{Nodes: 3, Name: l.Name})
	if err != nil || l2.NB != l.NB {
		t.Fatalf("second lab up: %v", err)
	}
	if _, err := lab.Up(ctx, lab.Options{Nodes: 2, Name: l.Name}); err == nil || !strings.Contains(err.Error(), "already up with 3") {
		t.Fatalf("lab up with another node count: err %v, want 'already up with 3'", err)
	}
}

// TestLabDaemonFailure makes ovn-northd fail to start: Up must fail naming
// the daemon with its output, and leave nothing behind.
func TestLabDaemonFailure(t *testing.T) {
	needLab(t)
	fake := t.TempDir()
	script := "#!/bin/sh\necho 'fake northd: cannot start' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fake, "ovn-northd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fake+":"+os.Getenv("PATH"))
	hostLinks := linkNames(t)
	name := uniqueName("zf")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: 1, Name: name})
	if err == nil {
		_ = l.Down(ctx)
		t.Fatal("lab up with a failing ovn-northd succeeded")
	}
	if !strings.Contains(err.Error(), "ovn-northd") || !strings.Contains(err.Error(), "fake northd: cannot start") {
		t.Errorf("error %q should name ovn-northd and show its output", err)
	}
	checkGone(t, &lab.Lab{Name: name, Dir: lab.PathFor(name)}, hostLinks)
}

// TestLabConcurrentUp runs two `lab up` of one name at once: the loser must
// not tear down the winner's lab.
func TestLabConcurrentUp(t *testing.T) {
	needLab(t)
	hostLinks := linkNames(t)
	name := uniqueName("zc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type res struct {
		l   *lab.Lab
		err error
	}
	ch := make(chan res, 2)
	for i := 0; i < 2; i++ {
		go func() {
			l, err := lab.Up(ctx, lab.Options{Nodes: 1, Name: name})
			ch <- res{l, err}
		}()
	}
	var ok *lab.Lab
	for i := 0; i < 2; i++ {
		r := <-ch
		if r.err == nil {
			ok = r.l
		} else {
			t.Logf("one lab up failed (expected for the loser): %v", r.err)
		}
	}
	if ok == nil {
		t.Fatal("both concurrent lab ups failed")
	}
	defer func() { _ = ok.Down(context.Background()) }()
	st, err := ok.Status(ctx)
	if err != nil || !st.Healthy() {
		t.Fatalf("winner's lab after the race: %v %v", err, st.Problems)
	}
	if err := ok.Down(ctx); err != nil {
		t.Fatal(err)
	}
	checkGone(t, ok, hostLinks)
}

// TestLabVswitchdHeap: every node's ovs-vswitchd runs with a heap trim
// threshold above one receive batch at MTU 9000 (node.VswitchdHeapTunables),
// so a jumbo underlay does not turn its datapath into brk calls.
func TestLabVswitchdHeap(t *testing.T) {
	l := sharedLab(t)
	for _, n := range l.Nodes {
		// VswitchdHeapWarning says nothing of a process it cannot read.
		pid, err := os.ReadFile(filepath.Join(n.Dir, "ovs-vswitchd.pid"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/environ"); err != nil {
			t.Fatal(err)
		}
		if w := node.VswitchdHeapWarning("netdev", n.Dir, 9000); w != "" {
			t.Errorf("%s: %s", n.Name, w)
		}
	}
}

// TestLabUnderlayARP: an ARP request on the underlay for a node's address
// gets one reply, from the node's br-phy. The node's kernel also sees the
// request on its underlay veth (an AF_PACKET port of the userspace
// datapath), and with arp_ignore=0 it answered from there too, with the
// veth's MAC. Whichever reply a peer's ovs-vswitchd snooped last became
// its tunnel neighbour entry: with the veth's MAC every Geneve packet to
// that node was dropped there, until the entry was learned again (a rare
// cross-node outage right after ADD).
func TestLabUnderlayARP(t *testing.T) {
	l := sharedLab(t)
	for _, n := range l.Nodes {
		var phys net.HardwareAddr
		if err := n.Do(func() error {
			link, err := netlink.LinkByName(lab.PhysBridge)
			if err == nil {
				phys = link.Attrs().HardwareAddr
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for try := 0; try < 3; try++ {
			got, err := arpReplies(l.CentralNetNS, "br-ul", net.ParseIP(lab.CentralIP), net.ParseIP(n.EncapIP), 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !bytes.Equal(got[0], phys) {
				t.Fatalf("ARP for %s (%s) from central: replies from %v; want one, from its %s %s", n.EncapIP, n.Name, got, lab.PhysBridge, phys)
			}
		}
	}
}

// arpReplies sends an ARP request for target from interface ifName (with
// address src) in namespace nsPath and returns the sender MACs of the
// replies for target that arrive within wait.
func arpReplies(nsPath, ifName string, src, target net.IP, wait time.Duration) ([]net.HardwareAddr, error) {
	var out []net.HardwareAddr
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		proto := uint16(unix.ETH_P_ARP<<8&0xff00 | unix.ETH_P_ARP>>8)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: link.Attrs().Index}); err != nil {
			return err
		}
		mac := link.Attrs().HardwareAddr
		req := make([]byte, 42)
		copy(req[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(req[6:12], mac)
		binary.BigEndian.PutUint16(req[12:], unix.ETH_P_ARP)
		binary.BigEndian.PutUint16(req[14:], 1)      // Ethernet
		binary.BigEndian.PutUint16(req[16:], 0x0800) // IPv4
		req[18], req[19] = 6, 4
		binary.BigEndian.PutUint16(req[20:], 1) // request
		copy(req[22:28], mac)
		copy(req[28:32], src.To4())
		copy(req[38:42], target.To4())
		var bcast [8]byte
		copy(bcast[:], req[0:6])
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrLinklayer{Ifindex: link.Attrs().Index, Halen: 6, Addr: bcast}); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		for deadline := time.Now().Add(wait); ; {
			left := time.Until(deadline)
			if left <= 0 {
				return nil
			}
			tv := unix.NsecToTimeval(left.Nanoseconds())
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			if n >= 42 && binary.BigEndian.Uint16(buf[20:]) == 2 && net.IP(buf[28:32]).Equal(target) {
				out = append(out, append(net.HardwareAddr(nil), buf[22:28]...))
			}
		}
	})
	return out, err
}
