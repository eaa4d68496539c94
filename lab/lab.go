// Package lab runs a real multi-node OVN deployment on one machine: a
// central network namespace (NB and SB ovsdb-servers, ovn-northd) and one
// namespace per node (ovsdb-server, ovs-vswitchd with the userspace
// datapath, ovn-controller), joined by an underlay Linux bridge. Daemons are
// detached, so a lab outlives the process that brought it up; Load re-opens
// it from its directory and Down stops exactly its daemons (by PID) and
// removes its namespaces and directory.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/sysbin"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
	"github.com/ovlmgr/ovlmgr/ovs/node"
)

// Defaults and fixed addresses. The underlay is 198.18.0.0/24: central is
// .1, node i is .10+i. Overlays in tests use 198.19.0.0/16.
const (
	DefaultRoot  = "/run/ovlmgr-lab"
	DefaultName  = "ovl"
	DefaultNodes = 3
	DefaultMTU   = 1500
	MaxNodes     = 50
	CentralIP    = "198.18.0.1"
	UnderlayCIDR = "198.18.0.0/24"
	// PhysBridge holds each node's underlay veth and its underlay IP.
	PhysBridge = "br-phy"
	stateFile  = "lab.json"
	underlayBr = "br-ul"
	nodeVeth   = "ul0"
	// underlayMAC is fixed: a Linux bridge otherwise takes its newest
	// port's MAC and neighbours' ARP entries go stale.
	underlayMAC = "02:00:c6:12:00:01"
)

// Options configure Up. Zero values mean the defaults.
type Options struct {
	// Nodes is the number of nodes (default 3, at most 50).
	Nodes int
	// Dir holds the lab's databases, sockets, logs and state (default
	// /run/ovlmgr-lab/<Name>).
	Dir string
	// Name prefixes every namespace of the lab: 1-8 of a-z 0-9, starting
	// with a letter (default "ovl"). Labs with different names never collide.
	Name string
	// UnderlayMTU is the underlay MTU (default 1500); overlay MTU is 58 less.
	UnderlayMTU int
	// Log receives progress lines (nil: silent).
	Log io.Writer
	// Central is the number of central members (default 1: standalone NB
	// and SB). 3 or 5 make NB and SB RAFT clusters with one member, and one
	// ovn-northd, per central namespace (see cluster.go).
	Central int
	// Insecure makes a plain lab: NB and SB on plain TCP without
	// authentication, which any process in a node namespace can rewrite
	// (for debugging; `lab up --insecure`, OVLMGR_LAB_INSECURE=1). By
	// default a lab is a TLS lab: NB and SB on TLS only, with two CAs,
	// per-node and admin certificates, the SB's RBAC for chassis and the
	// control service, through which nodes write the NB (see tls.go,
	// docs/security.md).
	Insecure bool
	// TLS asks for a TLS lab explicitly (the default; it also wins over
	// OVLMGR_LAB_INSECURE=1). TLS and Insecure together are an error.
	TLS bool
	// ControlBin is the ovlmgr binary that runs the control service of a
	// TLS lab (two instances). Empty: $OVLMGR_LAB_CONTROL_BIN, else the
	// running program when it is ovlmgr; a TLS lab without one fails
	// (ErrNoControlBin).
	ControlBin string
	// Gateways are the nodes plugged into the external network (see
	// external.go). nil: n1 and n2 (n1 alone in a 1-node lab); []{"none"}:
	// no external network.
	Gateways []string
	// Underlays > 1 puts the nodes on that many routed underlay subnets
	// joined by a router namespace (see underlay.go); WANMTU (default the
	// underlay MTU) and WANDelay (one way, netem) shape the links from the
	// router to underlays 2 and up.
	Underlays int
	WANMTU    int
	WANDelay  time.Duration
	// UnderlayIPv6 runs the Geneve tunnels over IPv6: each node's br-phy
	// also gets fd00:198:18::N/64 (see underlay6.go), its ovn-encap-ip.
	// The central databases stay on the IPv4 underlay.
	UnderlayIPv6 bool
	// CNIServerBin, when set, is the ovlmgr-cni binary whose `serve` runs
	// on every node as the node's CNI server (daemon CNIServerDaemon),
	// started once the node has joined (`lab up --cni-server`).
	CNIServerBin string
}

// Lab is a running lab. Its exported fields are saved in Dir/lab.json.
type Lab struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// NB and SB are unix socket endpoints, usable from the host namespace
	// and from every node namespace.
	NB string `json:"nb"`
	SB string `json:"sb"`
	// NBTCP and SBTCP are the same databases on the underlay (reachable from
	// node namespaces only); ovn-controllers use SBTCP.
	NBTCP        string `json:"nbTCP"`
	SBTCP        string `json:"sbTCP"`
	CentralNetNS string `json:"centralNetNS"`
	CentralDir   string `json:"centralDir"`
	UnderlayMTU  int    `json:"underlayMTU"`
	// Central is the number of central members (0 or 1: standalone).
	Central int     `json:"central,omitempty"`
	Nodes   []*Node `json:"nodes"`
	// TLS is set in a TLS lab: its certificates (see tls.go).
	TLS *TLS `json:"tls,omitempty"`
	// Gateways are the nodes on the external network; External is the
	// outside world (nil without gateways).
	Gateways []string  `json:"gateways,omitempty"`
	External *External `json:"external,omitempty"`
	// Underlays > 1: a routed lab (RouterNetNS joins the underlays; the
	// WAN MTU and one-way delay shape underlays 2 and up).
	Underlays   int           `json:"underlays,omitempty"`
	RouterNetNS string        `json:"routerNetNS,omitempty"`
	WANMTU      int           `json:"wanMTU,omitempty"`
	WANDelay    time.Duration `json:"wanDelay,omitempty"`
	// UnderlayIPv6: tunnels run over the nodes' EncapIP6 addresses.
	UnderlayIPv6 bool `json:"underlayIPv6,omitempty"`
	log          io.Writer
}

// Node is one node of a lab.
type Node struct {
	Name      string `json:"name"` // n1, n2, ...
	SystemID  string `json:"systemID"`
	EncapIP   string `json:"encapIP"`
	NetNSPath string `json:"netnsPath"`
	Dir       string `json:"dir"`
	// OVS is the node's Open_vSwitch db endpoint ("unix:<Dir>/db.sock").
	OVS string `json:"ovs"`
	// Underlay is the node's underlay subnet (1..Underlays) in a routed lab.
	Underlay int `json:"underlay,omitempty"`
	// EncapIP6 is the node's IPv6 underlay address and tunnel endpoint in
	// a lab with UnderlayIPv6 (EncapIP then only carries the databases).
	EncapIP6 string `json:"encapIP6,omitempty"`
	// Env makes OVS/OVN tools, ovlmgr and ovlmgr-cni use this node's
	// daemons (OVS_RUNDIR, OVN_RUNDIR, ... = Dir; OVLMGR_NB/SB, OVN_NB_DB/OVN_SB_DB).
	Env []string `json:"env"`
	// CNIServer is the ovlmgr-cni binary of the node's CNI server (empty:
	// the lab runs none; Options.CNIServerBin).
	CNIServer string `json:"cniServer,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// executable reports whether path is an executable regular file.
func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// CNIPluginBin finds the ovlmgr-cni binary for Options.CNIServerBin: in
// dir (where the running ovlmgr is), else on $PATH.
func CNIPluginBin(dir string) (string, error) {
	if p := filepath.Join(dir, "ovlmgr-cni"); dir != "" && executable(p) {
		return p, nil
	}
	p, err := exec.LookPath("ovlmgr-cni")
	if err != nil {
		return "", fmt.Errorf("no ovlmgr-cni in %s or on $PATH (make build puts ovlmgr and ovlmgr-cni in bin/)", dir)
	}
	return filepath.Abs(p)
}

// PathFor returns the directory of the lab with this name under DefaultRoot.
func PathFor(name string) string { return filepath.Join(DefaultRoot, name) }

// Check says what is missing to run a lab (root, the Debian packages), or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, daemons): run it with sudo")
	}
	var missing []string
	for _, b := range []string{"ovsdb-server", "ovsdb-tool", "ovs-vswitchd", "ovn-northd", "ovn-controller"} {
		if _, err := lookBin(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, f := range []string{schemaNB, schemaSB, schemaVswitch} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run `make deps` (apt-get install openvswitch-switch ovn-central ovn-host)", strings.Join(missing, ", "))
	}
	return nil
}

const (
	schemaNB      = "/usr/share/ovn/ovn-nb.ovsschema"
	schemaSB      = "/usr/share/ovn/ovn-sb.ovsschema"
	schemaVswitch = "/usr/share/openvswitch/vswitch.ovsschema"
)

// lookBin finds an OVS/OVN program the way every part of ovlmgr does
// (sysbin.Find: PATH, then the Debian sbin/bin dirs).
func lookBin(name string) (string, error) { return sysbin.Find(name) }

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("lab name %q: use 1-8 of a-z 0-9, starting with a letter", o.Name)
	}
	if o.Nodes == 0 {
		o.Nodes = DefaultNodes
	}
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		return fmt.Errorf("lab nodes %d: allowed 1 to %d", o.Nodes, MaxNodes)
	}
	if o.UnderlayMTU == 0 {
		o.UnderlayMTU = DefaultMTU
	}
	if o.UnderlayMTU < 1280 || o.UnderlayMTU > 9000 {
		return fmt.Errorf("lab underlay MTU %d: allowed 1280 to 9000", o.UnderlayMTU)
	}
	if o.Central == 0 {
		o.Central = 1
	}
	if o.Central != 1 && o.Central != 3 && o.Central != 5 {
		return fmt.Errorf("lab central %d: allowed 1 (standalone), 3 or 5 (RAFT clusters)", o.Central)
	}
	if err := o.checkGateways(); err != nil {
		return err
	}
	if err := o.checkUnderlays(); err != nil {
		return err
	}
	if o.UnderlayIPv6 && o.Underlays > 1 {
		return fmt.Errorf("lab underlay IPv6: only with one underlay (not with %d routed underlays)", o.Underlays)
	}
	if err := o.resolveTLS(); err != nil {
		return err
	}
	if o.CNIServerBin != "" {
		if !executable(o.CNIServerBin) {
			return fmt.Errorf("lab CNI server binary %q: not an executable file (want the ovlmgr-cni binary)", o.CNIServerBin)
		}
	}
	if o.Dir == "" {
		o.Dir = PathFor(o.Name)
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("lab dir %q: %w", o.Dir, err)
	}
	o.Dir = abs
	// Unix socket paths (<dir>/nNN/ovs-vswitchd.<pid>.ctl) must fit in 107 bytes.
	if len(o.Dir) > 64 {
		return fmt.Errorf("lab dir %q: at most 64 bytes long (unix socket paths inside it must stay short)", o.Dir)
	}
	return nil
}

// plan returns the lab layout for o (no side effects).
func plan(o Options) *Lab {
	central := filepath.Join(o.Dir, "central")
	l := &Lab{
		Name: o.Name, Dir: o.Dir,
		NB:           "unix:" + filepath.Join(central, "nb.sock"),
		SB:           "unix:" + filepath.Join(central, "sb.sock"),
		NBTCP:        "tcp:" + CentralIP + ":6641",
		SBTCP:        "tcp:" + CentralIP + ":6642",
		CentralNetNS: filepath.Join(NetNSDir, o.Name+"-c"),
		CentralDir:   central,
		UnderlayMTU:  o.UnderlayMTU,
		log:          o.Log,
	}
	l.planCluster(o.Central)
	defer l.planTLS(!o.Insecure, o.ControlBin)
	l.Gateways = o.Gateways
	l.planExternal(o.Name)
	for i := 1; i <= o.Nodes; i++ {
		name := fmt.Sprintf("n%d", i)
		dir := filepath.Join(o.Dir, name)
		n := &Node{
			Name: name, SystemID: name,
			EncapIP:   fmt.Sprintf("198.18.0.%d", 10+i),
			NetNSPath: filepath.Join(NetNSDir, o.Name+"-"+name),
			Dir:       dir,
			OVS:       "unix:" + filepath.Join(dir, "db.sock"),
		}
		n.Env = []string{
			"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir,
			"OVN_RUNDIR=" + dir, "OVN_DBDIR=" + dir, "OVN_LOGDIR=" + dir,
			dbconn.EnvNB + "=" + l.NB, dbconn.EnvSB + "=" + l.SB,
			// The plugin's CNI counters, per node (nodes share the filesystem).
			cnistats.EnvDir + "=" + dir,
			"OVN_NB_DB=" + l.NB, "OVN_SB_DB=" + l.SB,
		}
		n.CNIServer = o.CNIServerBin
		l.Nodes = append(l.Nodes, n)
	}
	l.planUnderlays(o)
	l.planUnderlay6(o)
	return l
}

// Up brings a lab up and returns when every chassis is registered in SB and
// every node has Geneve tunnels to all others that egress br-phy. An
// existing healthy lab of that name (and node count) is reused; an unhealthy
// one is reported. On failure everything Up started is stopped and removed.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, stateFile)); err == nil {
		return reuse(ctx, o)
	}
	l := plan(o)
	if _, err := os.Stat(l.CentralNetNS); err == nil {
		return nil, fmt.Errorf("lab %q: namespace %s exists but %s has no lab state: a lab of that name with another --dir? run `ovlmgr lab down --name %s --dir DIR`", o.Name, l.CentralNetNS, o.Dir, o.Name)
	}
	// Creating the directory is the lock: of two concurrent `lab up` of one
	// name only one gets past here, so the other never cleans up its daemons.
	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("lab %q: %w", o.Name, err)
	}
	if err := os.Mkdir(o.Dir, 0o755); err != nil {
		entries, rerr := os.ReadDir(o.Dir)
		if !errors.Is(err, os.ErrExist) || rerr != nil || len(entries) > 0 {
			return nil, fmt.Errorf("lab %q: directory %s already exists and has no lab state (another `lab up` still running, or leftovers: run `ovlmgr lab down --name %s` or remove it)", o.Name, o.Dir, o.Name)
		}
	}
	if err := os.Mkdir(l.CentralDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab %q: %w", o.Name, err)
	}
	if err := l.save(); err != nil {
		os.RemoveAll(o.Dir)
		return nil, err
	}
	start := time.Now()
	if err := l.up(ctx); err != nil {
		l.logf("lab %s: up failed, cleaning up", l.Name)
		if derr := l.Down(context.Background()); derr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, derr)
		}
		return nil, err
	}
	l.logf("lab %s: %d node(s) ready in %.1fs", l.Name, len(l.Nodes), time.Since(start).Seconds())
	return l, nil
}

func reuse(ctx context.Context, o Options) (*Lab, error) {
	l, err := Load(o.Dir)
	if err != nil {
		return nil, err
	}
	l.log = o.Log
	if len(l.Nodes) != o.Nodes {
		return nil, fmt.Errorf("lab %q is already up with %d node(s), not %d: run `ovlmgr lab down --name %s` first", l.Name, len(l.Nodes), o.Nodes, l.Name)
	}
	if max(l.Underlays, 1) != o.Underlays {
		return nil, fmt.Errorf("lab %q is already up with %d underlay(s), not %d: run `ovlmgr lab down --name %s` first", l.Name, max(l.Underlays, 1), o.Underlays, l.Name)
	}
	if l.UnderlayIPv6 != o.UnderlayIPv6 {
		return nil, fmt.Errorf("lab %q is already up with underlay IPv6 %v, not %v: run `ovlmgr lab down --name %s` first", l.Name, l.UnderlayIPv6, o.UnderlayIPv6, l.Name)
	}
	if tls := l.TLS != nil; tls == o.Insecure {
		return nil, fmt.Errorf("lab %q is already up as a %s lab, not a %s one: run `ovlmgr lab down --name %s` first", l.Name, tlsWord(tls), tlsWord(!tls), l.Name)
	}
	if l.UnderlayMTU != o.UnderlayMTU {
		return nil, fmt.Errorf("lab %q is already up with underlay MTU %d, not %d: run `ovlmgr lab down --name %s` first", l.Name, l.UnderlayMTU, o.UnderlayMTU, l.Name)
	}
	if has, want := l.Nodes[0].CNIServer != "", o.CNIServerBin != ""; has != want {
		return nil, fmt.Errorf("lab %q is already up %s CNI servers: run `ovlmgr lab down --name %s` first", l.Name, map[bool]string{true: "with", false: "without"}[has], l.Name)
	}
	st, err := l.Status(ctx)
	if err != nil {
		return nil, err
	}
	if len(st.Problems) > 0 {
		return nil, fmt.Errorf("lab %q exists but is not healthy:\n  %s\nrun `ovlmgr lab down --name %s` and up again (unless another `lab up` is still starting it)", l.Name, strings.Join(st.Problems, "\n  "), l.Name)
	}
	l.logf("lab %s: already up and healthy, reusing it", l.Name)
	return l, nil
}

// tlsWord names a lab's kind in messages.
func tlsWord(tls bool) string {
	if tls {
		return "TLS"
	}
	return "plain (--insecure)"
}

// Load re-opens a running lab from its name (under DefaultRoot) or its
// directory (any argument containing a "/").
func Load(nameOrDir string) (*Lab, error) {
	dir := nameOrDir
	if !strings.Contains(nameOrDir, "/") {
		if nameOrDir == "" {
			nameOrDir = DefaultName
		}
		dir = PathFor(nameOrDir)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab at %s (start one with `ovlmgr lab up`)", dir)
		}
		return nil, fmt.Errorf("load lab %s: %w", dir, err)
	}
	var l Lab
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("load lab %s: %s: %w", dir, stateFile, err)
	}
	return &l, nil
}

func (l *Lab) save() error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("lab %q: write state: %w", l.Name, err)
	}
	return os.Rename(tmp, filepath.Join(l.Dir, stateFile))
}

func (l *Lab) logf(format string, args ...interface{}) {
	if l.log != nil {
		fmt.Fprintf(l.log, format+"\n", args...)
	}
}

// SetLog sets where progress lines go (nil: silent).
func (l *Lab) SetLog(w io.Writer) { l.log = w }

// Node returns the node with this name (n1, n2, ...).
func (l *Lab) Node(name string) (*Node, error) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	return nil, fmt.Errorf("lab %q has no node %q (nodes: %s)", l.Name, name, strings.Join(names, ", "))
}

// Env returns the environment block that points ovlmgr at this lab, one
// `export KEY=value` line each, for `eval "$(ovlmgr lab env)"`.
func (l *Lab) Env() string {
	return fmt.Sprintf("export %s=%s\nexport %s=%s\n", dbconn.EnvNB, l.NB, dbconn.EnvSB, l.SB) + l.tlsEnv()
}

// Do runs f on a thread inside the node's network namespace.
func (n *Node) Do(f func() error) error {
	return ns.WithNetNSPath(n.NetNSPath, func(ns.NetNS) error { return f() })
}

// Command returns a command that runs name with args inside the node's
// network namespace, in a mount namespace of its own where the node's
// private directories (Binds) are mounted, with the node's Env added to
// os.Environ(). Set its Stdin/Stdout/Stderr as usual and append to Env; do
// not replace Path or Args (see package nsexec).
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return nsexec.CommandMounts(ctx, n.NetNSPath, n.Binds(), n.Env, name, args...)
}

// NodePrivateDirs are the host directories of which each node has its own
// copy (Dir/root/<path>), mounted over them for commands run on the node
// (Command, `ovlmgr lab exec`): the CNI results cache and config dir, and
// the state of podman and containerd. So a runtime's GC on one node never
// sees another node's attachments, and each node runs its own runtimes at
// their default paths (e.g. /run/containerd/containerd.sock).
var NodePrivateDirs = []string{
	"/var/lib/cni", "/etc/cni/net.d",
	"/var/lib/containers", "/run/containers", "/run/libpod", "/dev/shm",
	"/var/lib/containerd", "/run/containerd",
}

// Binds returns the node's bind mounts: Dir/root/<path> over each of
// NodePrivateDirs, and Dir itself over the default OVS and OVN run
// directories (/var/run/openvswitch, /var/run/ovn), so programs that know
// nothing of OVS_RUNDIR (a runtime's cleanup process, its CNI plugins) find
// the node's Open_vSwitch db and ovn-controller where a real node has them.
func (n *Node) Binds() []nsexec.Bind {
	var b []nsexec.Bind
	for _, d := range NodePrivateDirs {
		b = append(b, nsexec.Bind{Source: filepath.Join(n.Dir, "root", d), Target: d})
	}
	for _, d := range []string{"/var/run/openvswitch", "/var/run/ovn"} {
		b = append(b, nsexec.Bind{Source: n.Dir, Target: d})
	}
	return b
}

// Exec replaces the current process with name and args run as Command
// would run them. It returns only on failure.
func (n *Node) Exec(name string, args ...string) error {
	return nsexec.ExecMounts(n.NetNSPath, n.Binds(), n.Env, name, args...)
}

// mac is the node's fixed br-phy MAC (02:00:c6:12:00:<last byte of its IP>).
func (n *Node) mac() string {
	ip := net.ParseIP(n.EncapIP).To4()
	return fmt.Sprintf("02:00:c6:12:00:%02x", ip[3])
}

// daemons returns the lab's daemons in start order.
func (l *Lab) centralDaemons() []*daemon {
	c := l.CentralDir
	env := []string{"OVS_RUNDIR=" + c, "OVS_DBDIR=" + c, "OVS_LOGDIR=" + c, "OVN_RUNDIR=" + c, "OVN_DBDIR=" + c, "OVN_LOGDIR=" + c}
	db := func(which, port string) *daemon {
		return &daemon{Node: "central", Name: "ovsdb-server-" + which, bin: "ovsdb-server", dir: c, ns: l.CentralNetNS, env: env,
			args: []string{filepath.Join(c, which+".db"), "--remote=punix:" + filepath.Join(c, which+".sock"),
				"--remote=ptcp:" + port + ":" + CentralIP, "--unixctl=" + filepath.Join(c, "ovsdb-server-"+which+".ctl")}}
	}
	if l.Central > 1 {
		return l.withTLS(l.clusterDaemons(env))
	}
	return l.withTLS([]*daemon{db("nb", "6641"), db("sb", "6642"),
		{Node: "central", Name: "ovn-northd", bin: "ovn-northd", dir: c, ns: l.CentralNetNS, env: env,
			args: []string{"--ovnnb-db=" + l.NB, "--ovnsb-db=" + l.SB, "--unixctl=" + filepath.Join(c, "ovn-northd.ctl")}}})
}

// vswitchdEnv is env plus the heap setting ovs-vswitchd should run with
// (node.VswitchdHeapTunables, added to any GLIBC_TUNABLES of ours): without
// it a lab with a jumbo underlay spends its datapath CPU shrinking and
// regrowing ovs-vswitchd's heap.
func vswitchdEnv(env []string) []string {
	t := node.VswitchdHeapTunables
	if cur := os.Getenv("GLIBC_TUNABLES"); cur != "" {
		t = cur + ":" + t
	}
	return append(slices.Clone(env), "GLIBC_TUNABLES="+t)
}

func (n *Node) daemons() []*daemon {
	db := "unix:" + filepath.Join(n.Dir, "db.sock")
	ds := []*daemon{
		{Node: n.Name, Name: "ovsdb-server", bin: "ovsdb-server", dir: n.Dir, ns: n.NetNSPath, env: n.Env,
			args: []string{filepath.Join(n.Dir, "conf.db"), "--remote=punix:" + filepath.Join(n.Dir, "db.sock")}},
		{Node: n.Name, Name: "ovs-vswitchd", bin: "ovs-vswitchd", dir: n.Dir, ns: n.NetNSPath, env: vswitchdEnv(n.Env), args: []string{db}},
		{Node: n.Name, Name: "ovn-controller", bin: "ovn-controller", dir: n.Dir, ns: n.NetNSPath, env: n.Env, args: []string{db}},
	}
	if n.CNIServer != "" {
		ds = append(ds, &daemon{Node: n.Name, Name: CNIServerDaemon, bin: n.CNIServer, dir: n.Dir, ns: n.NetNSPath, env: n.Env,
			goDaemon: true, args: []string{"serve", "--ovs", db}})
	}
	return ds
}

// Down stops the lab's daemons by PID (ovn-controllers, ovs-vswitchds, node
// ovsdb-servers, then ovn-northd and the central databases), deletes its
// namespaces (and with them every link) and its directory. It is idempotent.
func (l *Lab) Down(ctx context.Context) error {
	var errs []error
	phase := func(ds []*daemon) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, d := range ds {
			wg.Add(1)
			go func(d *daemon) {
				defer wg.Done()
				if err := d.stop(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}(d)
		}
		wg.Wait()
	}
	var servers []*daemon // CNI servers first: they talk to all of the node's daemons
	for _, n := range l.Nodes {
		servers = append(servers, n.daemons()[3:]...)
	}
	phase(servers)
	for i := 2; i >= 0; i-- { // ovn-controller, ovs-vswitchd, ovsdb-server
		var ds []*daemon
		for _, n := range l.Nodes {
			ds = append(ds, n.daemons()[i])
		}
		phase(ds)
	}
	var northds, dbs []*daemon
	for _, d := range l.centralDaemons() {
		if d.bin == "ovn-northd" {
			northds = append(northds, d)
		} else {
			dbs = append(dbs, d)
		}
	}
	phase(northds)
	phase(dbs)
	for _, n := range l.Nodes {
		if err := deleteNetNS(n.NetNSPath); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range l.members() {
		if err := deleteNetNS(m.NetNSPath); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.downExternal(); err != nil {
		errs = append(errs, err)
	}
	if err := l.downRouter(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		// Only a directory holding our state file is ours to remove.
		if _, err := os.Stat(filepath.Join(l.Dir, stateFile)); err == nil {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab %q down: %w", l.Name, errors.Join(errs...))
	}
	l.logf("lab %s: down", l.Name)
	return nil
}

// encapIPs returns the node underlay IPs.
func (l *Lab) encapIPs() map[string]string {
	out := map[string]string{}
	for _, n := range l.Nodes {
		out[n.EncapIP] = n.Name
	}
	return out
}
