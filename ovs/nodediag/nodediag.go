// Package nodediag runs the diagnose checks that belong to one node: its
// daemons, its chassis identity, br-int's datapath type, its Geneve tunnels
// to every other chassis, container MTUs against the underlay, TX checksum
// offload on container veths with the userspace datapath, and leaked ports.
// It reads the node's Open_vSwitch database through libovsdb, links through
// netlink and ethtool, and calls ovn-appctl with an argument list.
package nodediag

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab/sysbin"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovs/mtu"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// VethPrefix starts the host-side veth names ovlmgr-cni creates ("ovl" +
// 12 hex digits, see ovs/port.HostIfName); only those count as leaks.
const VethPrefix = "ovl"

// Target says where a node's daemons and namespace are.
type Target struct {
	// OVS is the node's Open_vSwitch db endpoint (default dbconn.DefaultOVS()).
	OVS string
	// RunDir is the node's OVS_RUNDIR (default $OVS_RUNDIR or /var/run/openvswitch).
	RunDir string
	// OVNRunDir is the node's OVN_RUNDIR (default $OVN_RUNDIR or /var/run/ovn).
	OVNRunDir string
	// NetNS is the path of the node's network namespace ("" = this process's).
	NetNS string
	// NB, when set, lets the port checks look up NB ports.
	NB string
}

func (t *Target) defaults() {
	if t.OVS == "" {
		t.OVS = dbconn.DefaultOVS()
	}
	if t.RunDir == "" {
		t.RunDir = envOr("OVS_RUNDIR", "/var/run/openvswitch")
	}
	if t.OVNRunDir == "" {
		t.OVNRunDir = envOr("OVN_RUNDIR", "/var/run/ovn")
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// checker carries one run's state.
type checker struct {
	t      Target
	area   string
	st     *diagnose.State
	oc     client.Client
	root   *vswitchd.OpenvSwitch
	h      *netlink.Handle
	checks []diagnose.Check
	// underlay: the link holding the encap IP.
	underlay    string
	underlayMTU int
	// overhead is what Geneve costs over the encap IP's family (ovs/mtu).
	overhead int
	datapath string
	// vswitchdUp: ovs-vswitchd runs (it holds the bridges' devices).
	vswitchdUp bool
	// ifTypes maps OVS interface names to their type; bridgeOf to their bridge.
	ifTypes  map[string]string
	bridgeOf map[string]string
}

// loadPorts reads the OVS interfaces' types and the bridge of each port.
func (c *checker) loadPorts(ctx context.Context) {
	c.ifTypes, c.bridgeOf = map[string]string{}, map[string]string{}
	ifs, err := vsdb.Interfaces(ctx, c.oc, "")
	if err != nil {
		return
	}
	for _, i := range ifs {
		c.ifTypes[i.Name] = i.Type
	}
	var brs []*vswitchd.Bridge
	var ports []*vswitchd.Port
	if dbconn.Select(ctx, c.oc, &vswitchd.Bridge{}, &brs) != nil || dbconn.Select(ctx, c.oc, &vswitchd.Port{}, &ports) != nil {
		return
	}
	portName := map[string]string{}
	for _, p := range ports {
		portName[p.UUID] = p.Name
	}
	for _, b := range brs {
		for _, u := range b.Ports {
			c.bridgeOf[portName[u]] = b.Name
		}
	}
}

func (c *checker) add(cs ...diagnose.Check) { c.checks = append(c.checks, cs...) }

// Check runs the node checks. st is what diagnose.Cluster read (for the
// node's chassis and its peers); nil skips the checks that need it.
func Check(ctx context.Context, t Target, st *diagnose.State) []diagnose.Check {
	t.defaults()
	c := &checker{t: t, st: st, area: "node"}
	oc, err := vsdb.Connect(ctx, t.OVS)
	if err != nil {
		c.add(diagnose.Failf(c.area, "open_vswitch", "start the node's ovsdb-server (OVS)", "%v", err))
		return c.checks
	}
	defer oc.Close()
	c.oc = oc
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		c.add(diagnose.Failf(c.area, "open_vswitch", "initialise OVS (`ovs-vsctl --no-wait init`)", "%v", err))
		return c.checks
	}
	c.root = root
	sysID := root.ExternalIDs[node.KeySystemID]
	if sysID != "" {
		c.area = "node " + sysID
	}
	h, err := handleAt(t.NetNS)
	if err != nil {
		c.add(diagnose.Failf(c.area, "netns", "check the node's network namespace", "%v", err))
		return c.checks
	}
	defer h.Close()
	c.h = h

	c.loadPorts(ctx)
	c.daemons(ctx)
	c.identity(sysID)
	c.underlayARP(ctx)
	c.bridge(ctx)
	c.tunnels(ctx, sysID)
	c.ports(ctx)
	c.ipsec(ctx)
	return c.checks
}

// alive reports the PID in pidfile if that process runs (zombies count as
// exited).
func alive(pidfile string) (int, bool) {
	data, err := os.ReadFile(pidfile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pid, false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X' {
		return pid, false
	}
	return pid, true
}

// appctl runs ovs-appctl/ovn-appctl -t target args... (no shell).
func appctl(ctx context.Context, tool, target string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bin, err := sysbin.Find(tool)
	if err != nil {
		return "", fmt.Errorf("%s -t %s: %w", tool, target, err)
	}
	out, err := exec.CommandContext(ctx, bin, append([]string{"--timeout=5", "-t", target}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("%s -t %s %s: %v: %s", tool, target, strings.Join(args, " "), err, s)
	}
	return s, nil
}

func (c *checker) daemons(ctx context.Context) {
	pid, ok := alive(filepath.Join(c.t.RunDir, "ovs-vswitchd.pid"))
	c.vswitchdUp = ok
	if ok {
		c.add(diagnose.Okf(c.area, "ovs-vswitchd", "running (pid %d)", pid))
	} else {
		c.add(diagnose.Failf(c.area, "ovs-vswitchd", "start ovs-vswitchd on this node (e.g. `/usr/share/openvswitch/scripts/ovs-ctl start`)",
			"ovs-vswitchd is not running (no live pid in %s)", filepath.Join(c.t.RunDir, "ovs-vswitchd.pid")))
	}
	const fix = "start ovn-controller on this node (e.g. `/usr/share/ovn/scripts/ovn-ctl start_controller`)"
	pid, ok = alive(filepath.Join(c.t.OVNRunDir, "ovn-controller.pid"))
	if !ok {
		c.add(diagnose.Failf(c.area, "ovn-controller", fix, "ovn-controller is not running (no live pid in %s): no flows or tunnels are updated on this node",
			filepath.Join(c.t.OVNRunDir, "ovn-controller.pid")))
		return
	}
	ctl := filepath.Join(c.t.OVNRunDir, fmt.Sprintf("ovn-controller.%d.ctl", pid))
	out, err := appctl(ctx, "ovn-appctl", ctl, "connection-status")
	switch {
	case err != nil:
		c.add(diagnose.Warnf(c.area, "ovn-controller", "check ovn-controller's log", "running (pid %d) but does not answer: %v", pid, err))
	case out != "connected":
		c.add(diagnose.Failf(c.area, "ovn-controller", "check ovn-remote (`ovs-vsctl get open . external_ids:ovn-remote`) and that SB is reachable from this node",
			"running (pid %d) but not connected to SB: %s", pid, out))
	default:
		c.add(diagnose.Okf(c.area, "ovn-controller", "running (pid %d), connected to SB", pid))
	}
}

// identity checks the node's OVN settings and its chassis in SB.
func (c *checker) identity(sysID string) {
	ids := c.root.ExternalIDs
	var missing []string
	for _, k := range []string{node.KeySystemID, node.KeyRemote, node.KeyEncapType, node.KeyEncapIP} {
		if ids[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		c.add(diagnose.Failf(c.area, "settings", "run `ovlmgr node join`", "Open_vSwitch external_ids lack %s", strings.Join(missing, ", ")))
		return
	}
	encap := ids[node.KeyEncapIP]
	ip := net.ParseIP(encap)
	addrs, err := c.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		c.add(diagnose.Failf(c.area, "encap ip", "check netlink access", "list addresses: %v", err))
		return
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			if l, err := c.h.LinkByIndex(a.LinkIndex); err == nil {
				c.underlay, c.underlayMTU = l.Attrs().Name, l.Attrs().MTU
				if addr, ok := netip.AddrFromSlice(a.IP); ok {
					c.overhead = mtu.GeneveOverhead(addr.Unmap())
				}
			}
		}
	}
	switch typ, inOVS := c.ifTypes[c.underlay]; {
	case c.underlay == "":
		c.add(diagnose.Failf(c.area, "encap ip", "put the encap IP on the underlay interface (the bridge holding the NIC), or rejoin with the right --encap-ip",
			"ovn-encap-ip %s is on no interface of this node: tunnels cannot work", encap))
	case inOVS && typ != "internal":
		br := c.bridgeOf[c.underlay]
		c.add(diagnose.Failf(c.area, "encap ip", fmt.Sprintf("move %s from %s to the OVS bridge %s that holds it", encap, c.underlay, br),
			"ovn-encap-ip %s is on %s, a port of OVS bridge %s: tunnel packets leave by it directly and are lost", encap, c.underlay, br))
	default:
		c.add(diagnose.Okf(c.area, "encap ip", "%s on %s (MTU %d); system-id %s, remote %s", encap, c.underlay, c.underlayMTU, sysID, ids[node.KeyRemote]))
	}
	if c.st == nil {
		return
	}
	if c.st.SBUnreachable != "" {
		c.add(diagnose.Failf(c.area, "chassis", "fix SB reachability first", "not checked: %s", c.st.SBUnreachable))
		return
	}
	ch := c.st.ByName(sysID)
	switch {
	case ch == nil:
		c.add(diagnose.Failf(c.area, "chassis", "start ovn-controller on this node and check it reaches SB", "no chassis %s in SB: this node is not registered", sysID))
	case !contains(ch.EncapIPs, encap):
		c.add(diagnose.Failf(c.area, "chassis", "give every node its own system-id (`ovlmgr node join --system-id`)",
			"chassis %s in SB has encap %s, this node %s: another node uses system-id %s", sysID, strings.Join(ch.EncapIPs, ","), encap, sysID))
	case ids[node.KeyHostname] != "" && ch.Hostname != ids[node.KeyHostname]:
		c.add(diagnose.Warnf(c.area, "chassis", "give every node its own system-id", "chassis %s in SB has hostname %s, this node %s", sysID, ch.Hostname, ids[node.KeyHostname]))
	default:
		c.add(diagnose.Okf(c.area, "chassis", "registered in SB as %s", sysID))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bridge checks br-int and its datapath type against this machine.
func (c *checker) bridge(ctx context.Context) {
	name := c.root.ExternalIDs[node.KeyBridge]
	if name == "" {
		name = node.IntegrationBridge
	}
	br, err := vsdb.Bridge(ctx, c.oc, name)
	if err != nil || br == nil {
		c.add(diagnose.Failf(c.area, "datapath", "run `ovlmgr node join`", "no integration bridge %s (%v)", name, err))
		return
	}
	dp := br.DatapathType
	if dp == "" {
		dp = "system"
	}
	c.datapath = dp
	want := c.root.ExternalIDs[node.KeyBridgeDatapath]
	_, kmodErr := os.Stat("/sys/module/openvswitch")
	switch {
	case dp == "system" && kmodErr != nil:
		c.add(diagnose.Failf(c.area, "datapath", "`ovs-vsctl set open . external_ids:ovn-bridge-datapath-type=netdev -- set bridge "+name+" datapath_type=netdev`",
			"%s uses the kernel datapath but this machine has no openvswitch kernel module", name))
	case want != "" && want != dp:
		c.add(diagnose.Warnf(c.area, "datapath", "set both to the same type", "%s datapath_type %s, but ovn-bridge-datapath-type is %s", name, dp, want))
	default:
		c.add(diagnose.Okf(c.area, "datapath", "%s datapath %s fits this machine", name, dp))
	}
}

// underlayARP checks that no kernel port of the userspace bridge holding
// an IPv4 encap IP answers ARP for it (node.UnderlayARPFlux); it says
// nothing where that does not apply.
func (c *checker) underlayARP(ctx context.Context) {
	encap := net.ParseIP(c.root.ExternalIDs[node.KeyEncapIP])
	if c.underlay == "" || encap.To4() == nil {
		return
	}
	var f *node.ARPFlux
	err := inNS(c.t.NetNS, func() error {
		var err error
		f, err = node.UnderlayARPFlux(ctx, c.oc, c.underlay)
		return err
	})
	switch {
	case err != nil:
		c.add(diagnose.Warnf(c.area, "underlay arp", "check OVS", "%v", err))
	case f == nil:
	case len(f.Answering) > 0:
		c.add(diagnose.Warnf(c.area, "underlay arp", "sysctl -w "+f.Fix()+" (and in sysctl.d)", "%s", f.Problem(encap.String())))
	default:
		c.add(diagnose.Okf(c.area, "underlay arp", "only %s answers ARP for %s (kernel ports %s: arp_ignore set)", f.Bridge, encap, strings.Join(f.Kernel, ", ")))
	}
}

// tunnels checks a Geneve tunnel to every other chassis, egressing the
// interface that holds the encap IP.
func (c *checker) tunnels(ctx context.Context, sysID string) {
	if c.st == nil {
		return
	}
	if c.st.SBUnreachable != "" {
		c.add(diagnose.Failf(c.area, "tunnels", "fix SB reachability first", "not checked against SB chassis: %s", c.st.SBUnreachable))
		return
	}
	ifs, err := vsdb.Interfaces(ctx, c.oc, "geneve")
	if err != nil {
		c.add(diagnose.Failf(c.area, "tunnels", "check OVS", "%v", err))
		return
	}
	byIP := map[string]*vswitchd.Interface{}
	for _, i := range ifs {
		byIP[i.Options["remote_ip"]] = i
	}
	self := c.st.ByName(sysID)
	n := 0
	for _, p := range c.st.Chassis {
		if p.Name == sysID || len(p.EncapIPs) == 0 {
			continue
		}
		n++
		name := fmt.Sprintf("tunnel %s->%s", strings.TrimPrefix(c.area, "node "), p.Name)
		ip := p.EncapIPs[0]
		i := byIP[ip]
		if i == nil {
			fix := "check ovn-controller on this node (it creates a tunnel to every chassis in SB)"
			why := ""
			if self != nil && !sameStrings(self.TransportZones, p.TransportZones) {
				why = fmt.Sprintf(": transport zones differ (this node %v, %s %v)", self.TransportZones, p.Name, p.TransportZones)
				fix = "give both nodes the same external_ids:ovn-transport-zones (or none)"
			}
			if !p.Claimed {
				why = fmt.Sprintf(": chassis %s is stale", p.Name)
				fix = "delete the stale chassis (see chassis above)"
			}
			c.add(diagnose.Failf(c.area, name, fix, "no Geneve tunnel to %s (%s)%s", p.Name, ip, why))
			continue
		}
		egress := i.Status["tunnel_egress_iface"]
		switch {
		case i.Error != nil && *i.Error != "":
			c.add(diagnose.Failf(c.area, name, "see ovs-vswitchd's log", "tunnel %s to %s has error: %s", i.Name, ip, *i.Error))
		case c.underlay != "" && egress != c.underlay:
			c.add(diagnose.Failf(c.area, name, fmt.Sprintf("move the underlay IP to %s (the OVS bridge holding the NIC) and route %s through it", c.underlay, ip),
				"tunnel to %s (%s) egresses %q, not %s where the encap IP is", p.Name, ip, egress, c.underlay))
		case c.carrierDown(egress, i.Status["tunnel_egress_iface_carrier"]):
			if !c.vswitchdUp {
				c.add(diagnose.Failf(c.area, name, "start ovs-vswitchd on this node (it holds "+egress+")",
					"tunnel to %s egresses %s whose carrier is down: ovs-vswitchd is not running", p.Name, egress))
				break
			}
			c.add(diagnose.Failf(c.area, name, "bring "+egress+" up", "tunnel to %s egresses %s whose carrier is down", p.Name, egress))
		default:
			c.add(diagnose.Okf(c.area, name, "%s to %s via %s", i.Name, ip, egress))
		}
	}
	if n == 0 {
		c.add(diagnose.Okf(c.area, "tunnels", "no other chassis"))
	}
}

// carrierDown reports whether the egress link has no carrier, as the
// kernel of the node says (LOWER_UP). ovs-vswitchd's
// status:tunnel_egress_iface_carrier (ovs) is only the fallback for a link
// the node does not have: ovs-vswitchd recomputes it when the tunnel's
// route changes, so it can stay "down" after the egress bridge came up
// (seen after an ovs-vswitchd restart) and stays "up" after ovs-vswitchd died.
func (c *checker) carrierDown(egress, ovs string) bool {
	if egress != "" {
		if l, err := c.h.LinkByName(egress); err == nil {
			return l.Attrs().RawFlags&unix.IFF_LOWER_UP == 0
		}
	}
	return ovs == "down"
}

func sameStrings(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// ports checks the container ports on the node: NB port exists, MTU fits
// the underlay, TX checksum offload off (userspace datapath), ovn-installed;
// and veths that no OVS port holds.
func (c *checker) ports(ctx context.Context) {
	ifs, err := vsdb.Interfaces(ctx, c.oc, "")
	if err != nil {
		c.add(diagnose.Failf(c.area, "ports", "check OVS", "%v", err))
		return
	}
	var nb client.Client
	if c.t.NB != "" {
		if nb, err = dbconn.ConnectNB(ctx, c.t.NB); err != nil {
			c.add(diagnose.Warnf(c.area, "ports", "check --nb", "NB port checks skipped: %v", err))
		} else {
			defer nb.Close()
		}
	}
	inOVS := map[string]bool{}
	var cports []*vswitchd.Interface
	for _, i := range ifs {
		inOVS[i.Name] = true
		if i.ExternalIDs["iface-id"] != "" && (i.Type == "" || i.Type == "system") {
			cports = append(cports, i)
		}
	}
	sort.Slice(cports, func(i, j int) bool { return cports[i].Name < cports[j].Name })
	limit := 0
	pathMTU, pathWhat := c.underlayMTU, fmt.Sprintf("underlay %s MTU", c.underlay)
	overhead, overWhat := c.overhead, "Geneve"
	if nb != nil {
		if u, err := network.ReadUnderlay(ctx, nb); err == nil {
			// A routed or WAN underlay smaller than the encap link (NB_Global,
			// recorded at node join --path-mtu) is the real limit.
			if u.PathMTU > 0 && u.PathMTU < pathMTU {
				pathMTU, pathWhat = u.PathMTU, "underlay path MTU"
			}
			if u.Encrypted {
				overhead, overWhat = overhead+mtu.IPsecESP, "Geneve + ESP"
			}
		}
	}
	if c.underlayMTU > 0 {
		limit = pathMTU - overhead
	}
	cands := nsCandidates()
	bad := 0
	for _, i := range cports {
		id := i.ExternalIDs["iface-id"]
		if c := i.ExternalIDs[owner.KeyContainer]; c != "" {
			if len(c) > 12 {
				c = c[:12]
			}
			id = fmt.Sprintf("container %s (iface-id %s)", c, id)
		} else {
			id = "iface-id " + id
		}
		lspName := i.ExternalIDs["iface-id"]
		name := "port " + i.Name
		if nb != nil {
			lsp := &nbdb.LogicalSwitchPort{Name: lspName}
			var rows []*nbdb.LogicalSwitchPort
			if err := dbconn.Select(ctx, nb, lsp, &rows, model.Condition{Field: &lsp.Name, Function: ovsdb.ConditionEqual, Value: lspName}); err == nil && len(rows) == 0 {
				bad++
				fix := fmt.Sprintf("`ovs-vsctl --if-exists del-port %s` (and delete veth %s)", i.Name, i.Name)
				if owner.Owned(i.ExternalIDs, "") {
					fix = "`ovlmgr node gc` on this node (the next CNI ADD, DEL or GC here also removes it)"
				}
				c.add(diagnose.Failf(c.area, name, fix, "OVS port %s left behind: its iface-id %s has no NB port", i.Name, lspName))
				continue
			}
		}
		l, err := c.h.LinkByName(i.Name)
		if err != nil {
			bad++
			c.add(diagnose.Failf(c.area, name, fmt.Sprintf("the container is gone: remove it with CNI DEL or `ovs-vsctl del-port %s`", i.Name),
				"OVS port %s (%s) has no device on this node", i.Name, id))
			continue
		}
		var side *ContainerSide
		if l.Type() == "veth" {
			side, _ = findContainerSide(c.h, l, cands)
		}
		mtu, where := l.Attrs().MTU, "host side "+i.Name
		if side != nil && side.MTU > mtu {
			mtu, where = side.MTU, "container side "+side.Name
		}
		if limit > 0 && mtu > limit {
			bad++
			c.add(diagnose.Failf(c.area, name, fmt.Sprintf("set the container's MTU to %d or less (the network's --mtu, or the underlay MTU + %d)", limit, overhead),
				"%s: MTU %d (%s) exceeds %s %d - %d (%s) = %d: larger packets are dropped silently", id, mtu, where, pathWhat, pathMTU, overhead, overWhat, limit))
			continue
		}
		if c.datapath == "netdev" && side != nil {
			on, err := txChecksumOn(side.NetNS, side.Name)
			if err == nil && len(on) > 0 {
				bad++
				c.add(diagnose.Failf(c.area, name, fmt.Sprintf("turn off TX checksum offload in the container (`ethtool -K %s tx off`); ovlmgr-cni does this", side.Name),
					"%s: %s has TX checksum offload on (%s) with the userspace datapath: TCP/UDP from it arrive with bad checksums", id, side.Name, strings.Join(on, ",")))
				continue
			}
		}
		if i.ExternalIDs["ovn-installed"] != "true" {
			bad++
			c.add(diagnose.Warnf(c.area, name, "check ovn-controller on this node and that the NB port exists", "%s: ovn-controller has not installed its flows (no ovn-installed)", id))
		}
	}
	links, err := c.h.LinkList()
	if err == nil {
		for _, l := range links {
			if n := l.Attrs().Name; l.Type() == "veth" && !inOVS[n] && strings.HasPrefix(n, VethPrefix) && len(n) == 15 {
				bad++
				c.add(diagnose.Warnf(c.area, "veth "+l.Attrs().Name, fmt.Sprintf("delete it if no container uses it (`ip link del %s`)", l.Attrs().Name),
					"veth %s has no OVS port: leaked by a container that was not deleted cleanly?", l.Attrs().Name))
			}
		}
	}
	if bad == 0 {
		detail := fmt.Sprintf("%d container ports fine", len(cports))
		if limit > 0 {
			detail += fmt.Sprintf(" (MTU <= %d", limit)
			if c.datapath == "netdev" {
				detail += ", TX checksum offload off"
			}
			detail += ")"
		}
		c.add(diagnose.Okf(c.area, "ports", "%s; no leaked veths", detail))
	}
}
