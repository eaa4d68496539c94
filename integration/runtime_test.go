package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// podmanImage is the image the podman test imports on each node.
const podmanImage = "localhost/ovlmgr-busybox:1"

// podmanSetup writes containers.conf (CNI backend, ovlmgr-cni's dir, the
// node's /etc/cni/net.d) and storage.conf (vfs; graph and run roots at
// podman's defaults, which are per node in the lab) and returns the
// environment that points podman at them, and the path of a busybox rootfs
// tarball to `podman import`. conmon passes only
// conmon_env_vars to podman's cleanup process (which runs CNI DEL when a
// container exits), so the config paths are listed there too.
func podmanSetup(t testing.TB) (env []string, rootfs string) {
	t.Helper()
	for _, b := range []string{"podman", "conmon", "runc"} {
		rtTool(t, b)
	}
	dir := t.TempDir()
	cc, sc := filepath.Join(dir, "containers.conf"), filepath.Join(dir, "storage.conf")
	env = []string{"CONTAINERS_CONF=" + cc, "CONTAINERS_STORAGE_CONF=" + sc}
	q := func(ss ...string) string { b, _ := json.Marshal(ss); return string(b) }
	conf := fmt.Sprintf(`[containers]
# The lab's root lacks CAP_SYS_RESOURCE: keep rlimits below podman's defaults.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = %s
network_config_dir = "/etc/cni/net.d"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_env_vars = %s
`, q(cniPluginDir(t)), q(append([]string{"PATH=" + os.Getenv("PATH")}, env...)...))
	storage := `[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
`
	if err := os.WriteFile(cc, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sc, []byte(storage), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs = filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, busyboxRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return env, rootfs
}

// TestPodman: podman 4.x with its CNI backend and the conflist `ovlmgr cni
// config` writes, unedited: containers on two nodes get addresses, reach
// each other (ping, TCP) and each other's DNS name (--network-alias), a
// static --ip and --mac-address are honoured, and `podman rm` leaves no NB port, OVS port or
// veth behind; with the node's CNI server running, podman's ADD and DEL go
// through it.
func TestPodman(t *testing.T) {
	l := sharedLab(t)
	env, rootfs := podmanSetup(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw := fmt.Sprintf("pod%d", os.Getpid()%10000)
	cniNetwork(t, nb, nw, "198.19.241.0/24")
	n1, n2 := l.Nodes[0], l.Nodes[1]
	links := map[*lab.Node][]string{}
	for _, n := range []*lab.Node{n1, n2} {
		writeConfList(t, ctx, n, nw)
		rtRun(t, ctx, n, env, "podman", "import", "--quiet", rootfs, podmanImage)
		links[n] = hostLinks(t, n)
	}
	podman := func(n *lab.Node, args ...string) string {
		t.Helper()
		return strings.TrimSpace(rtRun(t, ctx, n, env, "podman", args...))
	}
	a, b := nw+"-a", nw+"-b"
	t.Cleanup(func() {
		_, _ = rtTryRun(context.Background(), n1, env, "podman", "rm", "-f", "-t", "0", a)
		_, _ = rtTryRun(context.Background(), n2, env, "podman", "rm", "-f", "-t", "0", b)
	})
	podman(n1, "run", "-d", "--name", a, "--network", nw, "--network-alias", "alpha", podmanImage, "sleep", "600")
	podman(n2, "run", "-d", "--name", b, "--network", nw, "--network-alias", "beta", "--ip", "198.19.241.77", "--mac-address", "02:42:c6:13:f1:4d", podmanImage, "sleep", "600")
	addr := func(n *lab.Node, ctr string) string {
		t.Helper()
		out := podman(n, "exec", ctr, "ip", "-4", "-o", "addr", "show", "eth0")
		m := regexp.MustCompile(`inet (198\.19\.241\.\d+)/24`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no address on eth0: %q", ctr, out)
		}
		return m[1]
	}
	ipA, ipB := addr(n1, a), addr(n2, b)
	if ipB != "198.19.241.77" {
		t.Errorf("--ip 198.19.241.77: container has %s", ipB)
	}
	if out := podman(n2, "exec", b, "ip", "link", "show", "eth0"); !strings.Contains(out, "link/ether 02:42:c6:13:f1:4d ") {
		t.Errorf("--mac-address 02:42:c6:13:f1:4d: %q", out)
	}
	// Trap 4: the first packet to a new tunnel peer may be lost.
	ping := func(dst string) []string {
		return []string{"sh", "-c", "for i in 1 2 3 4 5; do ping -c 1 -W 1 " + dst + " >/dev/null && exit 0; done; exit 1"}
	}
	podman(n1, append([]string{"exec", a}, ping(ipB)...)...)
	podman(n2, append([]string{"exec", b}, ping(ipA)...)...)

	// TCP from a to a listener in b.
	podman(n2, "exec", "-d", b, "sh", "-c", "echo hello-from-b | nc -l -p 8080")
	out := podman(n1, "exec", a, "sh", "-c", fmt.Sprintf(`for i in 1 2 3 4 5 6 7 8 9 10; do
  out=$(nc %s 8080 </dev/null) && [ -n "$out" ] && { echo "$out"; exit 0; }
  sleep 0.2
done; exit 1`, ipB))
	if out != "hello-from-b" {
		t.Errorf("TCP a -> b: got %q", out)
	}

	// DNS: podman put the CNI result's nameserver (the gateway address,
	// answered by ovn-controller) and search list first in resolv.conf; the
	// alias of the other container resolves there (busybox nslookup: no
	// EDNS). The server is named: the host's nameservers follow in
	// resolv.conf and are not reachable from the overlay.
	zone := dns.Zone(nw, dns.DefaultDomain)
	for _, q := range []struct {
		n        *lab.Node
		ctr, who string
		want     string
	}{{n1, a, "beta", ipB}, {n2, b, "alpha", ipA}} {
		rc := podman(q.n, "exec", q.ctr, "cat", "/etc/resolv.conf")
		if !strings.Contains(rc, "nameserver 198.19.241.1\n") || !strings.Contains(rc, "search "+zone) {
			t.Errorf("resolv.conf in %s: %q; want nameserver 198.19.241.1 and search %s first", q.ctr, rc, zone)
		}
		name := q.who + "." + zone
		// A only: OVN answers no AAAA for an IPv4-only name and busybox
		// would wait out its timeout for one.
		out := podman(q.n, "exec", q.ctr, "nslookup", "-type=a", name, "198.19.241.1")
		if !strings.Contains(out, "Address: "+q.want) {
			t.Errorf("nslookup %s in %s: %q; want %s", name, q.ctr, out, q.want)
		}
	}

	// With n1's CNI server running, podman's ADD and DEL on n1 go
	// through it (the plugin finds its socket in the node's OVS run
	// directory from podman's mount namespace too).
	srv := startCNIServer(t, n1)
	c := nw + "-c"
	t.Cleanup(func() { _, _ = rtTryRun(context.Background(), n1, env, "podman", "rm", "-f", "-t", "0", c) })
	id := podman(n1, "run", "-d", "--name", c, "--network", nw, podmanImage, "sleep", "600")
	if !srv.served("ADD", &container{id: id, ifName: "eth0"}) {
		t.Errorf("podman run %s on n1: ADD not served by n1's CNI server:\n%s", c, srv.logText())
	}
	podman(n1, append([]string{"exec", c}, ping(ipB)...)...)
	podman(n1, "rm", "-f", "-t", "0", c)
	if !srv.served("DEL", &container{id: id, ifName: "eth0"}) {
		t.Errorf("podman rm %s on n1: DEL not served by n1's CNI server:\n%s", c, srv.logText())
	}

	podman(n1, "rm", "-f", "-t", "0", a)
	podman(n2, "rm", "-f", "-t", "0", b)
	assertNetworkEmpty(t, l, nb, nw)
	for n, before := range links {
		assertLinksBack(t, n, before)
	}
}

// TestCNITool: cnitool (libcni's reference client) on the generated
// conflists: ADD/CHECK/DEL at the default version; at 1.1.0 also STATUS and
// GC, where GC on one node removes that node's attachments only: its NB
// port and its results cache entry go, the other node's stay and pass
// CHECK (each lab node has its own /var/lib/cni; the plugin's GC selects
// ports by node).
func TestCNITool(t *testing.T) {
	l := sharedLab(t)
	cnitool := rtTool(t, "cnitool")
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw := fmt.Sprintf("ct%d", os.Getpid()%10000)
	cniNetwork(t, nb, nw, "198.19.242.0/24")
	n1, n2 := l.Nodes[0], l.Nodes[1]
	env := []string{"CNI_PATH=" + cniPluginDir(t), "NETCONFPATH=/etc/cni/net.d"}
	newNS := func() string {
		t.Helper()
		ns, err := testutils.NewNS()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ns.Close(); _ = testutils.UnmountNS(ns) })
		return ns.Path()
	}
	ipOf := func(out string) string {
		t.Helper()
		var r struct {
			IPs []struct{ Address string } `json:"ips"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.IPs) == 0 {
			t.Fatalf("cnitool add result %q: %v", out, err)
		}
		ip, _, err := net.ParseCIDR(r.IPs[0].Address)
		if err != nil {
			t.Fatal(err)
		}
		return ip.String()
	}
	links := map[*lab.Node][]string{n1: hostLinks(t, n1), n2: hostLinks(t, n2)}
	for _, ver := range []string{"", "1.1.0"} {
		t.Run("version="+ver, func(t *testing.T) {
			var extra []string
			if ver != "" {
				extra = []string{"--cni-version", ver}
			}
			path1 := writeConfList(t, ctx, n1, nw, extra...)
			writeConfList(t, ctx, n2, nw, extra...)
			list, err := libcni.ConfListFromFile(filepath.Join(l.Nodes[0].Dir, "root", path1))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"": "1.0.0", "1.1.0": "1.1.0"}[ver]; list.CNIVersion != want {
				t.Fatalf("conflist version %s; want %s", list.CNIVersion, want)
			}
			ns1, ns2 := newNS(), newNS()
			ip1 := ipOf(rtRun(t, ctx, n1, env, cnitool, "add", nw, ns1))
			ip2 := ipOf(rtRun(t, ctx, n2, env, cnitool, "add", nw, ns2))
			rtRun(t, ctx, n1, env, cnitool, "check", nw, ns1)
			if out, err := pingFromNS(ctx, ns1, ip2); err != nil {
				t.Fatalf("%s -> %s: %v: %s", ip1, ip2, err, out)
			}
			if ver == "1.1.0" {
				rtRun(t, ctx, n1, env, cnitool, "status", nw, ns1)
				// GC without valid attachments on n1: n1's container goes,
				// n2's stays (its port, its cache entry, its traffic).
				rtRun(t, ctx, n1, env, cnitool, "gc", nw, ns1)
				if n := cacheEntries(t, n1, nw); n != 0 {
					t.Errorf("n1 results cache: %d entries after GC; want 0", n)
				}
				if n := cacheEntries(t, n2, nw); n != 1 {
					t.Errorf("n2 results cache: %d entries after GC on n1; want 1", n)
				}
				for node, want := range map[string]int{n1.SystemID: 0, n2.SystemID: 1} {
					ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: nw, Node: node})
					if err != nil || len(ps) != want {
						t.Errorf("NB ports of %s on %s after GC on n1: %d (%v); want %d", nw, node, len(ps), err, want)
					}
				}
				if _, err := rtTryRun(ctx, n1, env, cnitool, "check", nw, ns1); err == nil {
					t.Error("CHECK of n1's container after GC on n1 passed")
				}
				rtRun(t, ctx, n2, env, cnitool, "check", nw, ns2)
			}
			rtRun(t, ctx, n1, env, cnitool, "del", nw, ns1)
			rtRun(t, ctx, n2, env, cnitool, "del", nw, ns2)
			assertNetworkEmpty(t, l, nb, nw)
			for n, before := range links {
				assertLinksBack(t, n, before)
			}
		})
	}
}

// pingFromNS pings dst from the network namespace at nsPath (trap 4: retries).
func pingFromNS(ctx context.Context, nsPath, dst string) (string, error) {
	var out []byte
	var err error
	for i := 0; i < 5; i++ {
		out, err = nsexec.Command(ctx, nsPath, nil, "ping", "-n", "-q", "-c", "1", "-W", "1", dst).CombinedOutput()
		if err == nil {
			return string(out), nil
		}
	}
	return string(out), err
}

// cacheEntries counts node's CNI results cache entries of network nw
// (libcni keeps one file per attachment, /var/lib/cni/results/NET-ID-IF).
func cacheEntries(t testing.TB, node *lab.Node, nw string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(node.Dir, "root", "var", "lib", "cni", "results"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), nw+"-") {
			n++
		}
	}
	return n
}

// containerd is a containerd started on a lab node for one test, with the
// CRI plugin using ovlmgr-cni and the node's /etc/cni/net.d. Its root,
// state and socket are containerd's defaults, which are per node in the
// lab (lab.NodePrivateDirs).
type containerd struct {
	node   *lab.Node
	crictl string
	ctr    string
}

// env points crictl at the node's containerd (no probing of other
// runtimes' default sockets).
func (c *containerd) env() []string {
	return []string{"CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock", "IMAGE_SERVICE_ENDPOINT=unix:///run/containerd/containerd.sock"}
}

// startContainerd starts containerd on node (stopped by PID at test end,
// after every pod is removed) and imports the sandbox image offline.
func startContainerd(t *testing.T, ctx context.Context, node *lab.Node, image string, archive []byte) *containerd {
	t.Helper()
	bin := rtTool(t, "containerd")
	for _, b := range []string{"containerd-shim-runc-v2", "runc"} {
		rtTool(t, b)
	}
	c := &containerd{node: node, crictl: rtTool(t, "crictl"), ctr: rtTool(t, "ctr")}
	loopback := "/usr/lib/cni/loopback"
	if _, err := os.Stat(loopback); err != nil {
		prereq.Need(t, fmt.Errorf("%s (the CRI plugin sets up the pod's lo with it): run `make deps` (containernetworking-plugins)", loopback))
	}
	dir := t.TempDir()
	// The CRI plugin takes one bin_dir: ovlmgr-cni and loopback side by side.
	binDir := filepath.Join(dir, "cni-bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"ovlmgr-cni": filepath.Join(cniPluginDir(t), "ovlmgr-cni"), "loopback": loopback} {
		if err := os.Symlink(target, filepath.Join(binDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The lab's root lacks CAP_SYS_RESOURCE: no oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
`, image, binDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := node.Command(context.Background(), bin, "--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		// Pods first (their shims exit with them), then containerd by PID.
		_, _ = rtTryRun(context.Background(), node, c.env(), c.crictl, "rmp", "-fa")
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log on %s:\n%s", node.Name, lastLines(string(b), 40))
		}
	})
	// Ready when the CRI answers (bounded by ctx).
	for {
		if _, err := rtTryRun(ctx, node, c.env(), c.crictl, "info"); err == nil {
			break
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd on %s exited: %v\n%s", node.Name, err, lastLines(string(b), 40))
		case <-ctx.Done():
			t.Fatalf("containerd on %s: CRI not answering: %v", node.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	img := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(img, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	rtRun(t, ctx, node, nil, c.ctr, "-n", "k8s.io", "images", "import", "--snapshotter", "native", img)
	return c
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestContainerdCRI: containerd 1.6's CRI plugin (driven by crictl) with
// the unedited generated conflist: `crictl runp` gives the pod sandbox an
// address on the network from which a container on another node answers
// ping; `stopp` and `rmp` leave no NB port, OVS port or veth behind.
func TestContainerdCRI(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw := fmt.Sprintf("crd%d", os.Getpid()%10000)
	cniNetwork(t, nb, nw, "198.19.243.0/24")
	n1, n2 := l.Nodes[0], l.Nodes[1]
	writeConfList(t, ctx, n1, nw)
	image := "localhost/ovlmgr-busybox:1"
	c := startContainerd(t, ctx, n1, image, ociArchive(t, image, busyboxRootfs(t), []string{"/bin/sleep", "3600"}))

	// The peer: a container on n2 wired by the plugin through libcni.
	peer := newContainer(t, newRuntime(t, n2), confList(t, nw, "1.0.0", nil))
	peer.mustAdd(t, ctx)
	links := hostLinks(t, n1)

	dir := t.TempDir()
	podConf := filepath.Join(dir, "pod.json")
	if err := os.WriteFile(podConf, []byte(fmt.Sprintf(`{"metadata":{"name":"%s","namespace":"default","uid":"%s-uid","attempt":1},
"log_directory":%q,"linux":{}}`, nw, nw, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := strings.TrimSpace(rtRun(t, ctx, n1, c.env(), c.crictl, "runp", podConf))
	var insp struct {
		Status struct {
			State   string `json:"state"`
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string } `json:"namespaces"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(rtRun(t, ctx, n1, c.env(), c.crictl, "inspectp", pod)), &insp); err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(insp.Status.Network.IP)
	_, subnet, _ := net.ParseCIDR("198.19.243.0/24")
	if insp.Status.State != "SANDBOX_READY" || ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod %s: state %s, IP %q; want SANDBOX_READY with an address in %s", pod, insp.Status.State, insp.Status.Network.IP, subnet)
	}
	netnsPath := ""
	for _, ns := range insp.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			netnsPath = ns.Path
		}
	}
	if netnsPath == "" {
		t.Fatalf("pod %s: no network namespace in %+v", pod, insp.Info.RuntimeSpec.Linux.Namespaces)
	}
	if out, err := pingFromNS(ctx, netnsPath, peer.ip().String()); err != nil {
		t.Fatalf("pod %s (%s) -> container on n2 (%s): %v: %s", pod, ip, peer.ip(), err, out)
	}
	if err := peer.ping(ctx, ip); err != nil {
		t.Fatalf("container on n2 -> pod: %v", err)
	}
	rtRun(t, ctx, n1, c.env(), c.crictl, "stopp", pod)
	rtRun(t, ctx, n1, c.env(), c.crictl, "rmp", pod)
	if out := strings.TrimSpace(rtRun(t, ctx, n1, c.env(), c.crictl, "pods", "-q")); out != "" {
		t.Errorf("pods left after rmp: %q", out)
	}
	assertNetworkEmptyExcept(t, nb, nw, 1) // the peer on n2
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: nw, Node: n1.SystemID})
	if err != nil || len(ps) != 0 {
		t.Errorf("NB ports of the pod on n1 after rmp: %d (%v)", len(ps), err)
	}
	assertLinksBack(t, n1, links)
}

// TestLabNodePrivateDirs: commands on a lab node see the node's own
// /var/lib/cni and /etc/cni/net.d (another node and the host do not see
// what it writes there), and the node's Open_vSwitch db at the default
// path even with OVS_RUNDIR unset (as a runtime's cleanup process runs).
func TestLabNodePrivateDirs(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	name := fmt.Sprintf("private-%d", os.Getpid())
	for _, d := range []string{"/var/lib/cni", "/etc/cni/net.d"} {
		f := filepath.Join(d, name)
		rtRun(t, ctx, n1, nil, "sh", "-c", "echo n1 > "+f)
		t.Cleanup(func() { _, _ = rtTryRun(context.Background(), n1, nil, "rm", "-f", f) })
		if out := strings.TrimSpace(rtRun(t, ctx, n1, nil, "cat", f)); out != "n1" {
			t.Errorf("n1 reads %s: %q", f, out)
		}
		if _, err := rtTryRun(ctx, n2, nil, "cat", f); err == nil {
			t.Errorf("n2 sees n1's %s", f)
		}
		if _, err := os.Stat(f); err == nil {
			t.Errorf("the host sees n1's %s", f)
		}
		if _, err := os.Stat(filepath.Join(n1.Dir, "root", f)); err != nil {
			t.Errorf("n1's %s is not in its directory: %v", f, err)
		}
	}
	for _, n := range []*lab.Node{n1, n2} {
		out := rtRun(t, ctx, n, nil, "env", "-u", "OVS_RUNDIR", "-u", "OVN_RUNDIR", "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id")
		if got := strings.Trim(strings.TrimSpace(out), `"`); got != n.SystemID {
			t.Errorf("%s: Open_vSwitch db at the default path has system-id %q; want %s", n.Name, got, n.SystemID)
		}
	}
}
