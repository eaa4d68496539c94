package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// A routed lab (Options.Underlays > 1) puts its nodes on several underlay
// subnets joined by a router namespace <name>-r instead of one bridge:
// underlay u is 198.18.u.0/24 (node i at 198.18.u.(10+i), the router at
// 198.18.u.1), nodes split in order (4 nodes, 2 underlays: n1,n2 on
// 198.18.1.0/24 and n3,n4 on 198.18.2.0/24). The central namespace stays on
// 198.18.0.0/24 (br-ul); the router's leg there is r0 (198.18.0.254).
//
// In the router namespace each underlay u is a bridge br-u<u> holding the
// nodes' veths and one end (w<u>b) of a veth whose other end (w<u>a)
// carries the router's address. For u >= 2 that veth is the WAN link: both
// ends have MTU Options.WANMTU and a netem qdisc delaying each direction by
// Options.WANDelay, so every path from underlay u to anything else (other
// underlays, central) crosses it, while nodes within one underlay talk over
// their bridge at the full underlay MTU.
const (
	// RouterIP is the router's address on the central underlay.
	RouterIP    = "198.18.0.254"
	routerMAC   = "02:00:c6:12:00:fe"
	routerVeth  = "r0"
	centralToR  = "to-r"
	MaxUnderlay = 9
	// routedPrefix is what nodes and central route through the router.
	routedPrefix = "198.18.0.0/16"
)

// underlayGW is the router's address on underlay u.
func underlayGW(u int) string { return fmt.Sprintf("198.18.%d.1", u) }

// wanMAC is the fixed MAC of the router's leg w<u>a on underlay u.
func wanMAC(u int) string { return fmt.Sprintf("02:00:c6:12:%02x:01", u) }

// routed: the lab's nodes sit behind its router namespace (a routed lab,
// or a site of a multi-site lab).
func (l *Lab) routed() bool { return l.RouterNetNS != "" }

// underlayNums returns the underlay numbers of the lab's nodes (198.18.U.0/24),
// in order, each once.
func (l *Lab) underlayNums() []int {
	var out []int
	seen := map[int]bool{}
	for _, n := range l.Nodes {
		if !seen[n.Underlay] {
			seen[n.Underlay] = true
			out = append(out, n.Underlay)
		}
	}
	return out
}

// checkUnderlays resolves the routed-underlay options.
func (o *Options) checkUnderlays() error {
	if o.Underlays == 0 {
		o.Underlays = 1
	}
	if o.Underlays < 1 || o.Underlays > MaxUnderlay || o.Underlays > o.Nodes {
		return fmt.Errorf("lab underlays %d: allowed 1 to %d and at most the number of nodes (%d)", o.Underlays, MaxUnderlay, o.Nodes)
	}
	if o.Underlays == 1 && (o.WANMTU != 0 || o.WANDelay != 0) {
		return fmt.Errorf("lab wan mtu/delay: only with 2 or more underlays (--underlays)")
	}
	if o.WANMTU == 0 {
		o.WANMTU = o.UnderlayMTU
	}
	if o.WANMTU < 1280 || o.WANMTU > o.UnderlayMTU {
		return fmt.Errorf("lab wan mtu %d: allowed 1280 to the underlay MTU %d", o.WANMTU, o.UnderlayMTU)
	}
	if o.WANDelay < 0 || o.WANDelay > time.Second {
		return fmt.Errorf("lab wan delay %s: allowed 0 to 1s", o.WANDelay)
	}
	return nil
}

// underlayOf returns the underlay (1..k) of node i (1..nodes) in a lab of
// k underlays: nodes split in order, the first underlays taking the extra.
func underlayOf(i, nodes, k int) int {
	return (i-1)*k/nodes + 1
}

// planUnderlays sets the router namespace and each node's underlay and address.
func (l *Lab) planUnderlays(o Options) {
	if o.Underlays <= 1 {
		return
	}
	l.Underlays, l.WANMTU, l.WANDelay = o.Underlays, o.WANMTU, o.WANDelay
	l.RouterNetNS = filepath.Join(NetNSDir, o.Name+"-r")
	for i, n := range l.Nodes {
		n.Underlay = underlayOf(i+1, len(l.Nodes), o.Underlays)
		n.EncapIP = fmt.Sprintf("198.18.%d.%d", n.Underlay, 11+i)
	}
}

// PathMTU is the largest outer packet that crosses between any two nodes:
// the WAN MTU of a routed lab, else the underlay MTU.
func (l *Lab) PathMTU() int {
	if l.routed() && l.WANMTU > 0 && l.WANMTU < l.UnderlayMTU {
		return l.WANMTU
	}
	return l.UnderlayMTU
}

// upRouter creates the router namespace, its leg on the central underlay,
// one bridge and router leg per underlay, and the routes of central (and
// of every central member) through it.
func (l *Lab) upRouter() error {
	if !l.routed() {
		return nil
	}
	if _, err := createNetNS(filepath.Base(l.RouterNetNS)); err != nil {
		return err
	}
	rns, err := netns.GetFromPath(l.RouterNetNS)
	if err != nil {
		return fmt.Errorf("open %s: %w", l.RouterNetNS, err)
	}
	defer rns.Close()
	rh, closeR, err := handleAt(l.RouterNetNS)
	if err != nil {
		return err
	}
	defer closeR()
	if err := linkUp(rh, "lo"); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := ns.WithNetNSPath(l.RouterNetNS, func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		return fmt.Errorf("router: enable forwarding: %w", err)
	}
	// r0 <-> to-r on the central bridge.
	ch, closeC, err := handleAt(l.CentralNetNS)
	if err != nil {
		return err
	}
	defer closeC()
	rmac, _ := net.ParseMAC(routerMAC)
	if err := ch.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: centralToR, MTU: l.UnderlayMTU},
		PeerName: routerVeth, PeerNamespace: netlink.NsFd(rns), PeerHardwareAddr: rmac}); err != nil {
		return fmt.Errorf("router: add veth %s<->%s: %w", centralToR, routerVeth, err)
	}
	if err := attachUp(ch, centralToR, underlayBr); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	if err := addAddrUp(rh, routerVeth, RouterIP+"/24"); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := staticNeigh(rh, routerVeth, CentralIP, underlayMAC); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	for _, u := range l.underlayNums() {
		if err := l.upUnderlay(rh, u); err != nil {
			return fmt.Errorf("router: underlay %d: %w", u, err)
		}
	}
	if err := l.wanRoutes(rh); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	// Central and every member reach the underlays through the router.
	for _, m := range l.members() {
		dev := memberVeth
		if m.Index == 1 {
			dev = underlayBr
		}
		h, closeH, err := handleAt(m.NetNSPath)
		if err != nil {
			return err
		}
		err = routeVia(h, dev, routedPrefix, RouterIP)
		if err == nil {
			err = staticNeigh(h, dev, RouterIP, routerMAC)
		}
		closeH()
		if err != nil {
			return fmt.Errorf("central member %d: %w", m.Index, err)
		}
	}
	return nil
}

// upUnderlay creates underlay u's bridge and the router's leg on it.
func (l *Lab) upUnderlay(rh *netlink.Handle, u int) error {
	br := fmt.Sprintf("br-u%d", u)
	a, b := fmt.Sprintf("w%da", u), fmt.Sprintf("w%db", u)
	wan := u != l.underlayNums()[0]
	if err := rh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br, MTU: l.UnderlayMTU}}); err != nil {
		return fmt.Errorf("add bridge %s: %w", br, err)
	}
	if err := linkUp(rh, br); err != nil {
		return err
	}
	// The links keep the underlay MTU (one MTU per L2 segment): a smaller
	// MTU on b made the bridge drop larger frames from the nodes silently,
	// a black hole for the nodes' path MTU discovery (a node's TLS
	// handshake with the SB, 1483 bytes, never got through). The WAN MTU
	// is the router's: its routes (wanRoutes).
	amac, _ := net.ParseMAC(wanMAC(u))
	if err := rh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, MTU: l.UnderlayMTU, HardwareAddr: amac}, PeerName: b}); err != nil {
		return fmt.Errorf("add veth %s<->%s: %w", a, b, err)
	}
	if err := attachUp(rh, b, br); err != nil {
		return err
	}
	if err := addAddrUp(rh, a, underlayGW(u)+"/24"); err != nil {
		return err
	}
	if wan && l.WANDelay > 0 {
		for _, name := range []string{a, b} {
			if err := netemDelay(rh, name, l.WANDelay); err != nil {
				return err
			}
		}
	}
	return nil
}

// wanRoutes gives the router's routes between underlays u >= 2 and
// everything else the WAN MTU, both ways: the route to underlay u (its
// connected route, replaced) and, for packets that come in from underlay u
// (a rule on w<u>a's input, table 100+u), the routes to central and to
// the other underlays. A larger packet with DF set is dropped by the
// router with an ICMP "fragmentation needed" to its sender, as a router in
// front of a smaller WAN link does, so path MTU discovery works from the
// nodes as well as from central.
func (l *Lab) wanRoutes(rh *netlink.Handle) error {
	if l.WANMTU <= 0 || l.WANMTU >= l.UnderlayMTU {
		return nil
	}
	us := l.underlayNums()
	type leg struct{ dev, cidr string }
	legs := []leg{{routerVeth, "198.18.0.0/24"}}
	for _, u := range us {
		legs = append(legs, leg{fmt.Sprintf("w%da", u), fmt.Sprintf("198.18.%d.0/24", u)})
	}
	route := func(g leg, table int, src string) error {
		lk, err := rh.LinkByName(g.dev)
		if err != nil {
			return fmt.Errorf("find %s: %w", g.dev, err)
		}
		_, dst, err := net.ParseCIDR(g.cidr)
		if err != nil {
			return err
		}
		r := &netlink.Route{LinkIndex: lk.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK, MTU: l.WANMTU, Table: table}
		if src != "" {
			// The connected route as the kernel made it, plus the MTU.
			r.Protocol, r.Src = unix.RTPROT_KERNEL, net.ParseIP(src)
		}
		if err := rh.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s dev %s mtu %d (table %d): %w", g.cidr, g.dev, l.WANMTU, table, err)
		}
		return nil
	}
	for _, u := range us[1:] {
		in := leg{fmt.Sprintf("w%da", u), fmt.Sprintf("198.18.%d.0/24", u)}
		if err := route(in, unix.RT_TABLE_MAIN, underlayGW(u)); err != nil {
			return err
		}
		table := 100 + u
		for _, g := range legs {
			if g.dev != in.dev {
				if err := route(g, table, ""); err != nil {
					return err
				}
			}
		}
		rule := netlink.NewRule()
		rule.IifName, rule.Table, rule.Priority = in.dev, table, table
		if err := rh.RuleAdd(rule); err != nil {
			return fmt.Errorf("rule iif %s lookup %d: %w", in.dev, table, err)
		}
	}
	return nil
}

// ErrNoNetem: the kernel cannot delay packets (no sch_netem); a lab with a
// WAN delay cannot run on it.
var ErrNoNetem = errors.New("run the lab without --wan-delay, or on a kernel with sch_netem")

// netemDelay puts a netem qdisc delaying every packet by d at the root of
// link name (`tc qdisc replace dev NAME root netem delay D`).
func netemDelay(h *netlink.Handle, name string, d time.Duration) error {
	lk, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: lk.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		netlink.NetemQdiscAttrs{Latency: uint32(d.Microseconds()), Limit: 10000})
	if err := h.QdiscReplace(q); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netem delay %s on %s: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM, module sch_netem): %w", d, name, ErrNoNetem)
		}
		return fmt.Errorf("netem delay %s on %s: %w", d, name, err)
	}
	return nil
}

// attachUp enslaves link name to bridge br and sets it up.
func attachUp(h *netlink.Handle, name, br string) error {
	lk, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	bl, err := h.LinkByName(br)
	if err != nil {
		return fmt.Errorf("find %s: %w", br, err)
	}
	if err := h.LinkSetMaster(lk, bl); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, br, err)
	}
	if err := h.LinkSetUp(lk); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// routeVia replaces the route to prefix via gw on link dev.
func routeVia(h *netlink.Handle, dev, prefix, gw string) error {
	lk, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find %s: %w", dev, err)
	}
	_, dst, err := net.ParseCIDR(prefix)
	if err != nil {
		return err
	}
	if err := h.RouteReplace(&netlink.Route{LinkIndex: lk.Attrs().Index, Dst: dst, Gw: net.ParseIP(gw)}); err != nil {
		return fmt.Errorf("route %s via %s dev %s: %w", prefix, gw, dev, err)
	}
	return nil
}

// underlayEnd returns where node n's underlay veth ends: the central
// namespace and br-ul, or the router namespace and br-u<underlay>.
func (l *Lab) underlayEnd(n *Node) (nsPath, bridge string) {
	if l.routed() {
		return l.RouterNetNS, fmt.Sprintf("br-u%d", n.Underlay)
	}
	return l.CentralNetNS, underlayBr
}

// plugRouted is plugPhys's routing part in a routed lab: the node's route
// to the other underlays and central through its underlay's router leg,
// and permanent neighbour entries between node and router both ways.
func (l *Lab) plugRouted(nh *netlink.Handle, n *Node) error {
	gw := underlayGW(n.Underlay)
	if err := staticNeigh(nh, PhysBridge, gw, wanMAC(n.Underlay)); err != nil {
		return err
	}
	if err := routeVia(nh, PhysBridge, routedPrefix, gw); err != nil {
		return err
	}
	rh, closeR, err := handleAt(l.RouterNetNS)
	if err != nil {
		return err
	}
	defer closeR()
	if err := staticNeigh(rh, fmt.Sprintf("w%da", n.Underlay), n.EncapIP, n.mac()); err != nil {
		return err
	}
	// OVS's userspace tunnels resolve the next hop themselves (tnl/neigh,
	// learned from ARP they snoop), not from the kernel's static entry:
	// seen here, a gateway node kept no entry for its router for 30 s and
	// dropped every tunnel packet. Tell ovs-vswitchd the router's MAC.
	return tnlNeigh(n, gw, wanMAC(n.Underlay))
}

// tnlNeigh sets ovs-vswitchd's tunnel neighbour entry ip -> mac on br-phy
// of node n (`ovs-appctl tnl/neigh/set br-phy IP MAC`).
func tnlNeigh(n *Node, ip, mac string) error {
	pid, err := n.daemons()[1].pid()
	if err != nil {
		return fmt.Errorf("tunnel neighbour %s: %w", ip, err)
	}
	ctl := filepath.Join(n.Dir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid))
	_, err = appctl(context.Background(), ctl, "tnl/neigh/set", PhysBridge, ip, mac)
	return err
}

// downRouter deletes the router namespace.
func (l *Lab) downRouter() error {
	if l.RouterNetNS == "" {
		return nil
	}
	return deleteNetNS(l.RouterNetNS)
}

// joinPathMTU is what a node of a routed lab records at join as the
// deployment's underlay path MTU (0: nothing to record). A node whose NB is
// the control service records nothing: NB_Global is the admin's, and the
// control service refuses the node's write (adminPathMTU records it).
func (l *Lab) joinPathMTU() int {
	if l.routed() && !l.nodesUseControl() {
		return l.PathMTU()
	}
	return 0
}

// adminPathMTU records a routed lab's underlay path MTU in the NB as the
// admin (over the NB's unix socket) when its nodes write the NB through the
// control service, which lets no node write NB_Global.
func (l *Lab) adminPathMTU(ctx context.Context) error {
	if !l.routed() || !l.nodesUseControl() {
		return nil
	}
	nb, err := dbconn.ConnectNB(ctx, l.NB)
	if err != nil {
		return fmt.Errorf("lab %s: record the underlay path MTU %d: %w", l.Name, l.PathMTU(), err)
	}
	defer nb.Close()
	if _, err := network.LowerPathMTU(ctx, nb, l.PathMTU()); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	return nil
}
