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
	mtu := l.UnderlayMTU
	wan := u != l.underlayNums()[0]
	if wan && l.WANMTU > 0 {
		mtu = l.WANMTU
	}
	if err := rh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br, MTU: l.UnderlayMTU}}); err != nil {
		return fmt.Errorf("add bridge %s: %w", br, err)
	}
	if err := linkUp(rh, br); err != nil {
		return err
	}
	amac, _ := net.ParseMAC(wanMAC(u))
	if err := rh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, MTU: mtu, HardwareAddr: amac}, PeerName: b}); err != nil {
		return fmt.Errorf("add veth %s<->%s: %w", a, b, err)
	}
	// The bridge keeps the underlay MTU for its node ports; b's smaller
	// MTU (WAN) makes the bridge drop larger frames towards the router.
	if bl, err := rh.LinkByName(b); err == nil {
		if err := rh.LinkSetMTU(bl, mtu); err != nil {
			return fmt.Errorf("set %s mtu %d: %w", b, mtu, err)
		}
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
// deployment's underlay path MTU (0: nothing to record).
func (l *Lab) joinPathMTU() int {
	if l.routed() {
		return l.PathMTU()
	}
	return 0
}
