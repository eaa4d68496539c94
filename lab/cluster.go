package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/ovn/health"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// A clustered lab (Options.Central = 3 or 5) has one central member per
// namespace on the underlay: member 1 is the central namespace <name>-c
// (198.18.0.1, holding br-ul), member k is <name>-c<k> (198.18.0.k, a veth
// to-c<k> on br-ul). Each member runs an NB and an SB ovsdb-server of the
// RAFT clusters (clients on 6641/6642, RAFT on 6643/6644) and an ovn-northd
// (active/standby through its SB lock). Member k's files in central/ carry
// the suffix k: nb2.db, nb2.sock, ovsdb-server-nb2.ctl, ovn-northd2.pid, ...
const (
	raftPortNB = "6643"
	raftPortSB = "6644"
	memberVeth = "ul0"
)

// Member is one central member of a lab.
type Member struct {
	Index     int    `json:"index"` // 1..Central
	IP        string `json:"ip"`
	NetNSPath string `json:"netnsPath"`
}

// members returns the central members (one for a standalone lab).
func (l *Lab) members() []Member {
	n := l.Central
	if n < 1 {
		n = 1
	}
	out := make([]Member, 0, n)
	for k := 1; k <= n; k++ {
		m := Member{Index: k, IP: fmt.Sprintf("198.18.0.%d", k), NetNSPath: l.CentralNetNS}
		if k > 1 {
			m.NetNSPath = filepath.Join(NetNSDir, fmt.Sprintf("%s-c%d", l.Name, k))
		}
		out = append(out, m)
	}
	return out
}

// Members returns the lab's central members.
func (l *Lab) Members() []Member { return l.members() }

func memberSuffix(k int) string {
	if k == 1 {
		return ""
	}
	return strconv.Itoa(k)
}

func (m Member) mac() string { return fmt.Sprintf("02:00:c6:12:00:%02x", 0x80+m.Index) }

// planCluster sets the endpoints of a clustered lab: every member's unix
// socket (NB, SB) and TCP address (NBTCP, SBTCP), comma-separated.
func (l *Lab) planCluster(n int) {
	if n <= 1 {
		return
	}
	l.Central = n
	var nb, sb, nbt, sbt []string
	for _, m := range l.members() {
		sfx := memberSuffix(m.Index)
		nb = append(nb, "unix:"+filepath.Join(l.CentralDir, "nb"+sfx+".sock"))
		sb = append(sb, "unix:"+filepath.Join(l.CentralDir, "sb"+sfx+".sock"))
		nbt = append(nbt, "tcp:"+m.IP+":6641")
		sbt = append(sbt, "tcp:"+m.IP+":6642")
	}
	l.NB, l.SB = strings.Join(nb, ","), strings.Join(sb, ",")
	l.NBTCP, l.SBTCP = strings.Join(nbt, ","), strings.Join(sbt, ",")
}

// clusterDaemons are the central daemons of a clustered lab: every
// member's NB and SB ovsdb-server (member order), then every ovn-northd.
func (l *Lab) clusterDaemons(env []string) []*daemon {
	c := l.CentralDir
	var dbs, northds []*daemon
	for _, m := range l.members() {
		sfx := memberSuffix(m.Index)
		for _, which := range []string{"nb", "sb"} {
			port := "6641"
			if which == "sb" {
				port = "6642"
			}
			dbs = append(dbs, &daemon{Node: Central, Name: "ovsdb-server-" + which + sfx, bin: "ovsdb-server", dir: c, ns: m.NetNSPath, env: env,
				args: []string{filepath.Join(c, which+sfx+".db"), "--remote=punix:" + filepath.Join(c, which+sfx+".sock"),
					"--remote=ptcp:" + port + ":" + m.IP, "--unixctl=" + filepath.Join(c, "ovsdb-server-"+which+sfx+".ctl")}})
		}
		northds = append(northds, &daemon{Node: Central, Name: "ovn-northd" + sfx, bin: "ovn-northd", dir: c, ns: m.NetNSPath, env: env,
			args: []string{"--ovnnb-db=" + l.NB, "--ovnsb-db=" + l.SB, "--unixctl=" + filepath.Join(c, "ovn-northd"+sfx+".ctl")}})
	}
	return append(dbs, northds...)
}

// upMembers creates the namespaces of members 2..N on the underlay and the
// clustered databases (ovsdb-tool create-cluster on member 1, join-cluster
// on the others).
func (l *Lab) upMembers(ctx context.Context) error {
	ch, closeC, err := handleAt(l.CentralNetNS)
	if err != nil {
		return err
	}
	defer closeC()
	brl, err := ch.LinkByName(underlayBr)
	if err != nil {
		return fmt.Errorf("central: %w", err)
	}
	cns, err := netns.GetFromPath(l.CentralNetNS)
	if err != nil {
		return fmt.Errorf("open %s: %w", l.CentralNetNS, err)
	}
	defer cns.Close()
	for _, m := range l.members()[1:] {
		if _, err := createNetNS(filepath.Base(m.NetNSPath)); err != nil {
			return err
		}
		mns, err := netns.GetFromPath(m.NetNSPath)
		if err != nil {
			return fmt.Errorf("open %s: %w", m.NetNSPath, err)
		}
		hw, _ := net.ParseMAC(m.mac())
		centralEnd := fmt.Sprintf("to-c%d", m.Index)
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: centralEnd, MTU: l.UnderlayMTU, Namespace: netlink.NsFd(cns)},
			PeerName:         memberVeth,
			PeerNamespace:    netlink.NsFd(mns),
			PeerHardwareAddr: hw,
		}
		err = netlink.LinkAdd(veth)
		mns.Close()
		if err != nil {
			return fmt.Errorf("add veth %s<->%s: %w", centralEnd, memberVeth, err)
		}
		cl, err := ch.LinkByName(centralEnd)
		if err != nil {
			return fmt.Errorf("central: %w", err)
		}
		if err := ch.LinkSetMaster(cl, brl); err != nil {
			return fmt.Errorf("central: attach %s to %s: %w", centralEnd, underlayBr, err)
		}
		if err := ch.LinkSetUp(cl); err != nil {
			return fmt.Errorf("central: up %s: %w", centralEnd, err)
		}
		mh, closeM, err := handleAt(m.NetNSPath)
		if err != nil {
			return err
		}
		err = linkUp(mh, "lo")
		if err == nil {
			err = addAddrUp(mh, memberVeth, m.IP+"/24")
		}
		closeM()
		if err != nil {
			return fmt.Errorf("member %d: %w", m.Index, err)
		}
		// The member's TCP listeners are kernel endpoints whose packets
		// enter OVS on the nodes (trap 1).
		if err := ns.WithNetNSPath(m.NetNSPath, func(ns.NetNS) error { return ovsport.TxChecksumOff(memberVeth) }); err != nil {
			return fmt.Errorf("member %d: %w", m.Index, err)
		}
	}
	for _, which := range []string{"nb", "sb"} {
		schema, raft, dbName := schemaNB, raftPortNB, "OVN_Northbound"
		if which == "sb" {
			schema, raft, dbName = schemaSB, raftPortSB, "OVN_Southbound"
		}
		first := l.raftScheme() + ":" + CentralIP + ":" + raft
		for _, m := range l.members() {
			file := filepath.Join(l.CentralDir, which+memberSuffix(m.Index)+".db")
			args := []string{"create-cluster", file, schema, first}
			if m.Index > 1 {
				args = []string{"join-cluster", file, dbName, l.raftScheme() + ":" + m.IP + ":" + raft, first}
			}
			if err := ovsdbTool(ctx, args...); err != nil {
				return fmt.Errorf("central: %w", err)
			}
		}
	}
	return nil
}

func ovsdbTool(ctx context.Context, args ...string) error {
	tool, err := lookBin("ovsdb-tool")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovsdb-tool %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// memberNeighbours adds permanent neighbour entries between node n and
// members 2..N, both ways (as plugPhys does for member 1).
func (l *Lab) memberNeighbours(nh *netlink.Handle, n *Node) error {
	for _, m := range l.members()[1:] {
		if err := staticNeigh(nh, PhysBridge, m.IP, m.mac()); err != nil {
			return err
		}
		mh, closeM, err := handleAt(m.NetNSPath)
		if err != nil {
			return err
		}
		err = staticNeigh(mh, memberVeth, n.EncapIP, n.mac())
		closeM()
		if err != nil {
			return err
		}
	}
	return nil
}

// MemberStatus is one member of a clustered database as it sees itself:
// role, term and election timer from its cluster/status, leadership,
// connection and log index from its _Server database.
type MemberStatus struct {
	DB            string `json:"db"`     // NB or SB
	Daemon        string `json:"daemon"` // ovsdb-server-nb2, ...
	Address       string `json:"address"`
	Alive         bool   `json:"alive"`
	Status        string `json:"status,omitempty"` // "cluster member", "joining cluster", ...
	Role          string `json:"role,omitempty"`   // leader, follower, candidate
	Term          int    `json:"term,omitempty"`
	Index         int    `json:"index,omitempty"`
	Connected     bool   `json:"connected"`
	ElectionTimer int    `json:"electionTimerMs,omitempty"`
}

// NorthdStatus is one ovn-northd: active (holds the SB lock) or standby.
type NorthdStatus struct {
	Daemon string `json:"daemon"`
	Alive  bool   `json:"alive"`
	State  string `json:"state,omitempty"` // active, standby, paused
}

// dbMembers returns the clustered ovsdb-servers of which ("nb" or "sb").
func (l *Lab) dbMembers(which string) []*daemon {
	var out []*daemon
	for _, d := range l.centralDaemons() {
		if d.bin == "ovsdb-server" && strings.TrimRight(strings.TrimPrefix(d.Name, "ovsdb-server-"), "0123456789") == which {
			out = append(out, d)
		}
	}
	return out
}

func (d *daemon) ctl() string { return filepath.Join(d.dir, d.Name+".ctl") }

// sock is the unix endpoint of a central ovsdb-server daemon.
func (d *daemon) sock() string {
	return "unix:" + filepath.Join(d.dir, strings.TrimPrefix(d.Name, "ovsdb-server-")+".sock")
}

// appctl runs ovs-appctl against a daemon's control socket.
func appctl(ctx context.Context, ctl string, args ...string) (string, error) {
	bin, err := lookBin("ovs-appctl")
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, append([]string{"-t", ctl}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ovs-appctl -t %s %s: %v: %s", ctl, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

var clusterField = regexp.MustCompile(`(?m)^(Status|Role|Term|Election timer|Address): (.*)$`)

// memberStatus reads one clustered ovsdb-server: cluster/status over its
// control socket (detail), and its _Server row through libovsdb.
func memberStatus(ctx context.Context, d *daemon, detail bool) MemberStatus {
	which := strings.TrimRight(strings.TrimPrefix(d.Name, "ovsdb-server-"), "0123456789")
	ms := MemberStatus{DB: strings.ToUpper(which), Daemon: d.Name}
	if _, err := d.pid(); err != nil {
		return ms
	}
	ms.Alive = true
	dbName := "OVN_Northbound"
	if which == "sb" {
		dbName = "OVN_Southbound"
	}
	if detail {
		if out, err := appctl(ctx, d.ctl(), "cluster/status", dbName); err == nil {
			for _, f := range clusterField.FindAllStringSubmatch(out, -1) {
				v := strings.TrimSpace(f[2])
				switch f[1] {
				case "Status":
					ms.Status = v
				case "Role":
					ms.Role = v
				case "Term":
					ms.Term, _ = strconv.Atoi(v)
				case "Election timer":
					ms.ElectionTimer, _ = strconv.Atoi(v)
				case "Address":
					ms.Address = v
				}
			}
		}
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st := health.Member(mctx, d.sock(), dbName)
	if st.Err == nil {
		ms.Connected, ms.Index = st.Connected, st.Index
		if ms.Role == "" {
			ms.Role = "follower"
			if st.Leader {
				ms.Role = "leader"
			}
		}
	}
	return ms
}

// Cluster reads every member of the clustered NB and SB and every
// ovn-northd (nil, nil for a standalone lab).
func (l *Lab) Cluster(ctx context.Context) ([]MemberStatus, []NorthdStatus) {
	if l.Central <= 1 {
		return nil, nil
	}
	return l.cluster(ctx, true)
}

func (l *Lab) cluster(ctx context.Context, detail bool) ([]MemberStatus, []NorthdStatus) {
	var ms []MemberStatus
	for _, which := range []string{"nb", "sb"} {
		for _, d := range l.dbMembers(which) {
			ms = append(ms, memberStatus(ctx, d, detail))
		}
	}
	var ns []NorthdStatus
	for _, d := range l.centralDaemons() {
		if d.bin != "ovn-northd" {
			continue
		}
		st := NorthdStatus{Daemon: d.Name}
		if _, err := d.pid(); err == nil {
			st.Alive = true
			if detail {
				if out, err := appctl(ctx, d.ctl(), "status"); err == nil {
					st.State = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Status:"))
				}
			}
		}
		ns = append(ns, st)
	}
	return ms, ns
}

// clusterProblems names what keeps a clustered lab from being healthy:
// a database without a leader, a live member not (yet) connected to its
// cluster.
func clusterProblems(ms []MemberStatus) []string {
	var probs []string
	leaders := map[string]int{}
	for _, m := range ms {
		if m.Alive && m.Role == "leader" && m.Connected {
			leaders[m.DB]++
		}
		if m.Alive && !m.Connected {
			probs = append(probs, fmt.Sprintf("%s member %s is not connected to its cluster", m.DB, m.Daemon))
		}
	}
	for _, db := range []string{"NB", "SB"} {
		if leaders[db] == 0 {
			probs = append(probs, fmt.Sprintf("%s cluster has no leader", db))
		}
	}
	return probs
}

// ErrNoLeader is returned by Leader when no member is leader (an election
// is under way or quorum is lost).
var ErrNoLeader = errors.New("no leader")

// Leader returns the daemon name (for Kill and Restart on "central") of
// the current leader of which: "nb", "sb", or "northd" for the active
// ovn-northd.
func (l *Lab) Leader(ctx context.Context, which string) (string, error) {
	if l.Central <= 1 {
		return centralAlias[which], nil
	}
	if which == "northd" {
		_, ns := l.cluster(ctx, true)
		for _, n := range ns {
			if n.State == "active" {
				return n.Daemon, nil
			}
		}
		return "", fmt.Errorf("lab %s: %w: no ovn-northd is active", l.Name, ErrNoLeader)
	}
	for _, d := range l.dbMembers(which) {
		if m := memberStatus(ctx, d, false); m.Role == "leader" && m.Connected {
			return d.Name, nil
		}
	}
	return "", fmt.Errorf("lab %s: %w of %s", l.Name, ErrNoLeader, strings.ToUpper(which))
}

// memberAlias maps nb2, sb3, northd2, ... to daemon names; nb-leader,
// sb-leader and northd-active to the current holder.
func (l *Lab) memberAlias(ctx context.Context, name string) (string, bool) {
	switch name {
	case "nb-leader", "sb-leader", "northd-active":
		which := strings.SplitN(name, "-", 2)[0]
		if n, err := l.Leader(ctx, which); err == nil {
			return n, true
		}
		return name, false
	}
	m := regexp.MustCompile(`^(nb|sb|northd)([1-9])$`).FindStringSubmatch(name)
	if m == nil {
		return name, false
	}
	k, _ := strconv.Atoi(m[2])
	return centralAlias[m[1]] + memberSuffix(k), true
}

// waitCluster waits until every member of both clusters is connected and
// each has a leader.
func (l *Lab) waitCluster(ctx context.Context) error {
	for {
		ms, _ := l.cluster(ctx, false)
		probs := clusterProblems(ms)
		if len(probs) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab %s: clusters not formed: %s", l.Name, strings.Join(probs, "; "))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LeaveRejoin moves the leadership of which ("nb" or "sb") the way RAFT
// does it gracefully: the leader leaves its cluster (ovs-appctl
// cluster/leave: it hands leadership to another member first, without
// dying), then it is stopped, its database file made again with
// ovsdb-tool join-cluster at the same address, and started; LeaveRejoin
// returns the former leader's daemon name once every member is connected
// again and the cluster has a leader.
func (l *Lab) LeaveRejoin(ctx context.Context, which string) (string, error) {
	if l.Central <= 1 {
		return "", fmt.Errorf("lab %s: leave and rejoin needs a clustered lab (--central 3)", l.Name)
	}
	name, err := l.Leader(ctx, which)
	if err != nil {
		return "", err
	}
	var d *daemon
	var others []string
	raft, dbName := raftPortNB, "OVN_Northbound"
	if which == "sb" {
		raft, dbName = raftPortSB, "OVN_Southbound"
	}
	var self Member
	for _, m := range l.members() {
		dn := "ovsdb-server-" + which + memberSuffix(m.Index)
		for _, dd := range l.dbMembers(which) {
			if dd.Name == dn && dn == name {
				d, self = dd, m
			}
		}
		if dn != name {
			others = append(others, l.raftScheme()+":"+m.IP+":"+raft)
		}
	}
	if d == nil {
		return "", fmt.Errorf("lab %s: leader %s is not a member daemon", l.Name, name)
	}
	if _, err := appctl(ctx, d.ctl(), "cluster/leave", dbName); err != nil {
		return name, err
	}
	// Leaving is done when the server no longer serves the database.
	for {
		if _, err := appctl(ctx, d.ctl(), "cluster/status", dbName); err != nil {
			break
		}
		select {
		case <-ctx.Done():
			return name, fmt.Errorf("lab %s: %s did not finish leaving its cluster: %w", l.Name, name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := d.stop(); err != nil {
		return name, err
	}
	file := d.args[0]
	if err := os.Remove(file); err != nil {
		return name, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	args := append([]string{"join-cluster", file, dbName, l.raftScheme() + ":" + self.IP + ":" + raft}, others...)
	if err := ovsdbTool(ctx, args...); err != nil {
		return name, err
	}
	if err := d.start(ctx); err != nil {
		return name, err
	}
	if err := l.waitCluster(ctx); err != nil {
		return name, err
	}
	l.logf("lab %s: %s left its cluster and joined again", l.Name, name)
	return name, nil
}

// ControlSockets returns the unixctl sockets of which's ("nb" or "sb")
// cluster members in the order of the endpoints (nil for a standalone lab).
func (l *Lab) ControlSockets(which string) []string {
	if l.Central <= 1 {
		return nil
	}
	var out []string
	for _, d := range l.dbMembers(which) {
		out = append(out, d.ctl())
	}
	return out
}

// Start starts a daemon that is not running (after Kill) with the lab's
// command line and, unlike Restart, does not wait for the whole lab to be
// healthy: for a central member of a clustered lab it waits until both
// clusters have every live member connected and a leader. Use it to bring
// back one of several killed daemons.
func (l *Lab) Start(ctx context.Context, node, name string) error {
	d, _, err := l.daemon(node, name)
	if err != nil {
		return err
	}
	if _, err := d.pid(); err == nil {
		return nil
	}
	if err := d.start(ctx); err != nil {
		return err
	}
	if l.Central > 1 && d.Node == Central && d.bin == "ovsdb-server" {
		return l.waitCluster(ctx)
	}
	return nil
}
