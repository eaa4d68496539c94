package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// cniVersions are the spec versions every CNI behaviour is tested over.
var cniVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// cniBuild is the ovlmgr-cni binary built once per test process.
var cniBuild struct {
	once sync.Once
	dir  string
	err  error
}

// cniPluginDir builds ./cni-plugin (and ./cli as ovlmgr) into a temporary directory once and
// returns that directory (the runtime's CNI_PATH). cniTeardown removes it.
func cniPluginDir(t testing.TB) string {
	t.Helper()
	cniBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "ovlmgr-cni-test-")
		if err != nil {
			cniBuild.err = err
			return
		}
		cniBuild.dir = dir
		for bin, pkg := range map[string]string{"ovlmgr-cni": "../cni-plugin", "ovlmgr": "../cli", "prevplugin": "./testdata/prevplugin"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, bin), pkg)
			if bin == "ovlmgr-cni" {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: static
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				cniBuild.err = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	if cniBuild.err != nil {
		t.Fatal(cniBuild.err)
	}
	return cniBuild.dir
}

// cniTeardown removes the built plugin (called from TestMain).
func cniTeardown() {
	if cniBuild.dir != "" {
		os.RemoveAll(cniBuild.dir)
	}
}

// nodeExec runs plugins the way a runtime on that node would: inside the
// node's network namespace with the node's environment (OVS_RUNDIR...).
type nodeExec struct {
	node *lab.Node
	// stderr collects the plugin's log lines.
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (e *nodeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	cmd := nsexec.Command(ctx, e.node.NetNSPath, e.node.Env, pluginPath)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CNI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	e.mu.Lock()
	e.stderr.Write(stderr.Bytes())
	e.mu.Unlock()
	if err != nil {
		emsg := &types.Error{}
		if stdout.Len() == 0 {
			emsg.Msg = fmt.Sprintf("plugin failed with no message on stdout: %v: %s", err, stderr.String())
		} else if perr := json.Unmarshal(stdout.Bytes(), emsg); perr != nil {
			emsg.Msg = fmt.Sprintf("plugin failed, stdout %q not an error: %v", stdout.String(), perr)
		}
		return nil, emsg
	}
	return stdout.Bytes(), nil
}

func (e *nodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *nodeExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// runtime is a CNI runtime on one lab node (libcni with its own cache dir).
type runtime struct {
	node *lab.Node
	cni  *libcni.CNIConfig
	exec *nodeExec
}

func newRuntime(t testing.TB, node *lab.Node) *runtime {
	t.Helper()
	e := &nodeExec{node: node}
	return &runtime{node: node, exec: e, cni: libcni.NewCNIConfigWithCacheDir([]string{cniPluginDir(t)}, t.TempDir(), e)}
}

// confList builds a conflist for network net at spec version ver; extra keys
// go into the plugin entry.
func confList(t testing.TB, net, ver string, extra map[string]interface{}) *libcni.NetworkConfigList {
	t.Helper()
	p := map[string]interface{}{"type": "ovlmgr-cni", "network": net, "capabilities": map[string]bool{"ips": true, "mac": true}}
	for k, v := range extra {
		p[k] = v
	}
	b, err := json.Marshal(map[string]interface{}{"cniVersion": ver, "name": net, "plugins": []interface{}{p}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatalf("conflist %s: %v", b, err)
	}
	return l
}

// container is a network namespace wired by the plugin.
type container struct {
	id     string
	ifName string
	ns     ns.NetNS
	rt     *runtime
	list   *libcni.NetworkConfigList
	conf   *libcni.RuntimeConf
	result *current.Result
}

var ctrSeq struct {
	mu sync.Mutex
	n  int
}

// newContainer makes a namespace (removed at test end) and its runtime conf.
func newContainer(t testing.TB, rt *runtime, list *libcni.NetworkConfigList) *container {
	t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	ctrSeq.mu.Lock()
	ctrSeq.n++
	// The sequence number first: the DNS name of a container without
	// aliases is its ID's first 12 characters (dns.IDName), which must
	// differ between the containers of one run (ctr<pid>-100 and
	// ctr<pid>-1000 did not). At least 12 characters (the padded
	// tail), as tests cut IDs to those 12.
	id := fmt.Sprintf("c%d-%d-%07d", ctrSeq.n, os.Getpid(), time.Now().UnixNano()%10000000)
	ctrSeq.mu.Unlock()
	return &container{id: id, ifName: "eth0", ns: netns, rt: rt, list: list,
		conf: &libcni.RuntimeConf{ContainerID: id, NetNS: netns.Path(), IfName: "eth0"}}
}

// add runs ADD and keeps the result converted to the current version.
func (c *container) add(ctx context.Context) error {
	r, err := c.rt.cni.AddNetworkList(ctx, c.list, c.conf)
	if err != nil {
		return err
	}
	cr, err := current.NewResultFromResult(r)
	if err != nil {
		return err
	}
	c.result = cr
	return nil
}

// addParallel runs the containers' ADDs at once and returns their errors
// in the same order.
func addParallel(ctx context.Context, ctrs []*container) []error {
	errs := make([]error, len(ctrs))
	var wg sync.WaitGroup
	for i, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.add(ctx)
		}()
	}
	wg.Wait()
	return errs
}

func (c *container) del(ctx context.Context) error {
	return c.rt.cni.DelNetworkList(ctx, c.list, c.conf)
}

// mustAdd runs ADD and registers a DEL at test end.
func (c *container) mustAdd(t testing.TB, ctx context.Context) {
	t.Helper()
	if err := c.add(ctx); err != nil {
		t.Fatalf("ADD %s on %s: %v\nplugin log:\n%s", c.id, c.rt.node.Name, err, c.rt.exec.stderr.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.del(ctx); err != nil {
			t.Errorf("cleanup DEL %s: %v", c.id, err)
		}
	})
}

// ip returns the container's IPv4 address.
func (c *container) ip() net.IP {
	for _, ipc := range c.result.IPs {
		if ipc.Address.IP.To4() != nil {
			return ipc.Address.IP
		}
	}
	return nil
}

// mtu is the container interface MTU from the result (read from the link
// when the result's version has no mtu field).
func (c *container) mtu(t testing.TB) int {
	mtu := 0
	err := c.ns.Do(func(ns.NetNS) error {
		ifc, err := net.InterfaceByName(c.ifName)
		if err != nil {
			return err
		}
		mtu = ifc.MTU
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mtu
}

// ping runs ping inside the container; trap 4: first packet to a new
// tunnel peer may be dropped, so it retries (-c count, -w deadline).
func (c *container) ping(ctx context.Context, dst net.IP, extra ...string) error {
	args := append([]string{"-n", "-q", "-c", "1", "-W", "1"}, extra...)
	args = append(args, dst.String())
	var last error
	for i := 0; i < 5; i++ {
		out, err := nsexec.Command(ctx, c.ns.Path(), nil, "ping", args...).CombinedOutput()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("ping %v from %s: %v: %s", args, c.id, err, out)
	}
	return last
}

// tcpTransfer sends n bytes from c to srv's IPv4 address over TCP and
// checks they arrive.
func tcpTransfer(ctx context.Context, srv, cl *container, n int) error {
	return tcpOver(ctx, srv, cl, srv.ip(), n)
}

// tcpOver sends n bytes from cl to srv's address dst (either family) over
// TCP and checks they arrive.
func tcpOver(ctx context.Context, srv, cl *container, dst net.IP, n int) error {
	var ln net.Listener
	if err := srv.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(dst.String(), "0"))
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		k, _ := io.Copy(io.Discard, conn)
		got <- k
	}()
	var conn net.Conn
	err := cl.ns.Do(func(ns.NetNS) error {
		d := net.Dialer{Timeout: 5 * time.Second}
		var err error
		for i := 0; i < 4; i++ {
			if conn, err = d.DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dial %s from %s: %w", ln.Addr(), cl.id, err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	buf := []byte(strings.Repeat("ovlmgr6-", 1<<13))
	for sent := 0; sent < n; {
		k, err := conn.Write(buf[:min(len(buf), n-sent)])
		if err != nil {
			conn.Close()
			return fmt.Errorf("write after %d bytes: %w", sent, err)
		}
		sent += k
	}
	conn.Close()
	if k := <-got; k != int64(n) {
		return fmt.Errorf("server received %d bytes; sent %d", k, n)
	}
	return nil
}

// serveTCP listens on ip:port inside c until test end and runs handle for
// every connection (handle closes it).
func serveTCP(t testing.TB, c *container, ip net.IP, port int, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	if err := c.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(conn)
		}
	}()
}

// cniNB connects to the lab's NB.
func cniNB(t testing.TB, l *lab.Lab) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nb, err := dbconn.ConnectNB(ctx, l.NB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	return nb
}

// cniNetwork creates a network removed at test end.
func cniNetwork(t testing.TB, nb client.Client, name, subnet string) *network.Network {
	t.Helper()
	return specNetwork(t, nb, network.Spec{Name: name, Subnet: subnet})
}

// specNetwork creates the network s and removes it (with whatever is still
// attached) at test end; a test may delete it first.
func specNetwork(t testing.TB, nb client.Client, s network.Spec) *network.Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := network.Create(ctx, nb, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := network.Delete(ctx, nb, s.Name, true); err != nil && !errors.Is(err, network.ErrNotFound) {
			t.Errorf("cleanup network %s: %v", s.Name, err)
		}
	})
	return n
}

// rawPlugin runs the plugin binary on node with exactly the CNI variables
// given (no libcni) and returns stdout, the CNI error code (0 on success)
// and the message.
func rawPlugin(t testing.TB, ctx context.Context, node *lab.Node, env []string, stdin string) (string, uint, string) {
	t.Helper()
	cmd := nsexec.Command(ctx, node.NetNSPath, append(append([]string{}, node.Env...), env...), filepath.Join(cniPluginDir(t), "ovlmgr-cni"))
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), 0, ""
	}
	e := &types.Error{}
	if jerr := json.Unmarshal(stdout.Bytes(), e); jerr != nil {
		t.Fatalf("plugin failed (%v) without a JSON error on stdout: %q, stderr %q", err, stdout.String(), stderr.String())
	}
	if e.Code == 0 {
		t.Fatalf("plugin failed with code 0: %q", stdout.String())
	}
	return stdout.String(), e.Code, e.Msg
}

// cniCode extracts the CNI error code of an error returned by libcni.
func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// containerPort finds the NB port of container interface id/ifName on
// node (system-id) by its owner keys, as `port list` and DEL do: a port
// claimed from the pool keeps the pool's name, so the name derived from
// node, container and ifname finds only ports made on the slow path.
// network "" matches any. ovnport.ErrNotFound when there is none.
func containerPort(ctx context.Context, nb client.Client, node, network, id, ifName string) (*ovnport.Port, error) {
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Node: node, Network: network, Container: id})
	if err != nil {
		return nil, err
	}
	var found *ovnport.Port
	for _, p := range ps {
		if p.IfName != ifName {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("container %s/%s on %s: two NB ports, %s and %s", id, ifName, node, found.Name, p.Name)
		}
		found = p
	}
	if found == nil {
		return nil, fmt.Errorf("container %s/%s on %s (network %q): %w", id, ifName, node, network, ovnport.ErrNotFound)
	}
	return found, nil
}

// setPoolSize sets the pool size of network name (ovlmgr.io/pool-size on
// its switch; 0 turns the pool off).
func setPoolSize(t testing.TB, nb client.Client, name string, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dbconn.Transact(ctx, nb, dbops.SetKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(name)}, "external_ids",
		map[string]string{ovnport.KeyPoolSize: strconv.Itoa(size)})); err != nil {
		t.Fatalf("pool size of network %s: %v", name, err)
	}
}

// assertGone checks that nothing of container id/ifname is left: no NB
// port, no OVS port on node, no host veth in node's namespace.
func assertGone(t testing.TB, nb client.Client, node *lab.Node, id, ifName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if p, err := containerPort(ctx, nb, node.SystemID, "", id, ifName); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("container %s: NB port still there (%+v, %v)", id, p, err)
	}
	lsp := ovnport.Name(node.SystemID, id, ifName)
	if p, err := ovnport.Get(ctx, nb, lsp); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("container %s: NB port %s still there (%+v, %v)", id, lsp, p, err)
	}
	host := ovsport.HostIfName(id, ifName)
	ovs, err := vsdb.Connect(ctx, node.OVS)
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	if i, err := ovsport.Get(ctx, ovs, host); err != nil || i != nil {
		t.Errorf("container %s: OVS interface %s still on %s (%+v, %v)", id, host, node.Name, i, err)
	}
	if err := node.Do(func() error {
		if _, err := netlink.LinkByName(host); err == nil {
			return fmt.Errorf("host veth %s still in %s", host, node.Name)
		}
		return nil
	}); err != nil {
		t.Errorf("container %s: %v", id, err)
	}
}

// assertNoRecords checks that network nw has no DNS record naming or
// reversing one of the addresses ips of container id.
func assertNoRecords(t testing.TB, nb client.Client, nw, id string, ips ...net.IP) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := dns.Records(ctx, nb, nw)
	if err != nil {
		t.Fatal(err)
	}
	if left := dns.HostRecords(recs, ips); len(left) > 0 {
		t.Errorf("container %s (%v): DNS records left on %s: %v", id, ips, nw, left)
	}
}

// assertNetworkEmpty checks NB holds no container port of network name and
// no node's OVS db an interface of it.
func assertNetworkEmpty(t testing.TB, l *lab.Lab, nb client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: name})
	if err != nil || len(ps) != 0 {
		t.Errorf("network %s: %d NB ports left (%v)", name, len(ps), err)
	}
	for _, node := range l.Nodes {
		ovs, err := vsdb.Connect(ctx, node.OVS)
		if err != nil {
			t.Fatal(err)
		}
		ifs, err := ovsport.List(ctx, ovs)
		ovs.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ifs {
			if i.Network == name {
				t.Errorf("network %s: OVS interface %s left on %s", name, i.Name, node.Name)
			}
		}
		_ = node.Do(func() error {
			links, _ := netlink.LinkList()
			for _, lk := range links {
				for _, i := range ifs {
					if lk.Attrs().Name == i.Name && i.Network == name {
						t.Errorf("network %s: veth %s left on %s", name, i.Name, node.Name)
					}
				}
			}
			return nil
		})
	}
}

func typesAttachment(c *container) types.GCAttachment {
	return types.GCAttachment{ContainerID: c.id, IfName: c.ifName}
}

// assertNetworkEmptyExcept checks network name has exactly n NB ports.
func assertNetworkEmptyExcept(t testing.TB, nb client.Client, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: name})
	if err != nil || len(ps) != n {
		t.Errorf("network %s: %d NB ports (%v); want %d", name, len(ps), err, n)
	}
}

// leftover reports whether anything of container id/ifname exists (NB
// port, OVS interface on node, host veth).
func leftover(t testing.TB, nb client.Client, node *lab.Node, id, ifName string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := containerPort(ctx, nb, node.SystemID, "", id, ifName); err == nil {
		return true
	}
	if _, err := ovnport.Get(ctx, nb, ovnport.Name(node.SystemID, id, ifName)); err == nil {
		return true
	}
	host := ovsport.HostIfName(id, ifName)
	ovs, err := vsdb.Connect(ctx, node.OVS)
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	if i, _ := ovsport.Get(ctx, ovs, host); i != nil {
		return true
	}
	found := false
	_ = node.Do(func() error {
		_, err := netlink.LinkByName(host)
		found = err == nil
		return nil
	})
	return found
}

// hasLink reports whether the container's interface exists in its netns.
func (c *container) hasLink() bool {
	found := false
	_ = c.ns.Do(func(ns.NetNS) error {
		_, err := netlink.LinkByName(c.ifName)
		found = err == nil
		return nil
	})
	return found
}

// fakeNode is a node of l's NB made of a bare Open_vSwitch db (system-id
// systemID, br-int, no ovs-vswitchd) and a network namespace: an ADD there
// reads the network and makes its port, then waits in vain for
// ovn-installed. Both go at test end.
func fakeNode(t *testing.T, l *lab.Lab, systemID string) (*lab.Node, *ovsdbtest.Server) {
	t.Helper()
	srv := ovsdbtest.StartVswitch(t)
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int", "--", "set", "Open_vSwitch", ".",
		"external_ids:system-id="+systemID, `external_ids:"ovlmgr.io/nb"="`+l.NB+`"`)
	nodeNS, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodeNS.Close(); _ = testutils.UnmountNS(nodeNS) })
	return &lab.Node{Name: "fake", NetNSPath: nodeNS.Path(), Env: []string{"OVS_RUNDIR=" + srv.Dir, "OVN_RUNDIR=" + t.TempDir()}}, srv
}

// crossPing pings dst from c like ping. When that fails it says why the
// packet does not arrive, so that a rare failure comes with its cause:
// ovlmgr's trace both ways (OVN's logical trace and ofproto/trace on the
// sending node); both nodes' tunnel neighbours, routes, ovn-controller
// connection, datapath flows, conntrack entries and zones; both
// containers' neighbour tables; the end of both nodes' ovn-controller and
// ovs-vswitchd logs; then whether and when ping works again within 30 s.
func (c *container) crossPing(t testing.TB, ctx context.Context, l *lab.Lab, dst *container) error {
	t.Helper()
	start := time.Now()
	err := c.ping(ctx, dst.ip())
	if err == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r strings.Builder
	section := func(title string, out []byte) {
		fmt.Fprintf(&r, "\n--- %s\n%s", title, bytes.TrimRight(out, "\n"))
	}
	for _, p := range [][2]*container{{c, dst}, {dst, c}} {
		out, _ := exec.CommandContext(rctx, ovlmgrBin(t), "trace", "--lab", l.Name, p[0].id, p[1].ip().String(), "--on-node", "--detail").CombinedOutput()
		section("ovlmgr trace "+p[0].id+" "+p[1].ip().String()+" --on-node --detail", out)
	}
	for _, x := range []*container{c, dst} {
		out, _ := nsexec.Command(rctx, x.ns.Path(), nil, "ip", "neigh", "show").CombinedOutput()
		section("container "+x.id+" on "+x.rt.node.Name+": ip neigh", out)
	}
	for _, n := range []*lab.Node{c.rt.node, dst.rt.node} {
		for _, args := range [][]string{
			{"ovs-appctl", "tnl/neigh/show"},
			{"ovs-appctl", "ovs/route/show"},
			{"ovs-appctl", "-t", "ovn-controller", "connection-status"},
			{"ovs-appctl", "dpctl/dump-flows"},
			{"ovs-appctl", "dpctl/dump-conntrack"},
			{"ovs-appctl", "-t", "ovn-controller", "ct-zone-list"},
		} {
			out, _ := n.Command(rctx, args[0], args[1:]...).CombinedOutput()
			section(n.Name+": "+strings.Join(args, " "), out)
		}
		for _, f := range []string{"ovn-controller.log", "ovs-vswitchd.log"} {
			b, _ := os.ReadFile(filepath.Join(n.Dir, f))
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			section(n.Name+": "+f+" (last 40 lines)", []byte(strings.Join(lines[max(0, len(lines)-40):], "\n")))
		}
	}
	again := "ping still fails 30 s later"
	for time.Since(start) < 30*time.Second {
		if c.ping(ctx, dst.ip()) == nil {
			again = fmt.Sprintf("ping works again %v after the first try", time.Since(start).Round(100*time.Millisecond))
			break
		}
	}
	return fmt.Errorf("%w\n%s; why:%s", err, again, r.String())
}
