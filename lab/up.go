package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// up creates everything after the state file is written.
func (l *Lab) up(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	if err := l.issueTLS(); err != nil {
		return err
	}
	if err := l.upCentral(ctx); err != nil {
		return err
	}
	if err := l.sbConnection(ctx); err != nil {
		return err
	}
	if err := l.adminPathMTU(ctx); err != nil {
		return err
	}
	l.logf("lab %s: central up (NB %s, SB %s)", l.Name, l.NB, l.SB)
	if err := l.upRouter(); err != nil {
		return err
	}
	if err := l.upExternal(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	var joined atomic.Int32
	errs := make([]error, len(l.Nodes))
	for i, n := range l.Nodes {
		wg.Add(1)
		go func(i int, n *Node) {
			defer wg.Done()
			if err := l.upNode(ctx, n); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n.Name, err)
				return
			}
			l.logf("lab %s: node %s joined (encap %s) [%d/%d]", l.Name, n.Name, n.EncapIP, joined.Add(1), len(l.Nodes))
		}(i, n)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.logf("lab %s: %d node(s) joined, waiting for chassis and tunnels", l.Name, len(l.Nodes))
	return l.waitReady(ctx)
}

func (l *Lab) upCentral(ctx context.Context) error {
	if _, err := createNetNS(filepath.Base(l.CentralNetNS)); err != nil {
		return err
	}
	h, closeH, err := handleAt(l.CentralNetNS)
	if err != nil {
		return err
	}
	defer closeH()
	if err := linkUp(h, "lo"); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	mac, _ := net.ParseMAC(underlayMAC)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: underlayBr, HardwareAddr: mac, MTU: l.UnderlayMTU}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("central: add bridge %s: %w", underlayBr, err)
	}
	if err := addAddrUp(h, underlayBr, CentralIP+"/24"); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	// The central TCP listeners are kernel endpoints whose packets enter
	// OVS on the nodes: their checksums must be complete (trap 1).
	if err := ns.WithNetNSPath(l.CentralNetNS, func(ns.NetNS) error { return ovsport.TxChecksumOff(underlayBr) }); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	for _, which := range []string{"nb", "sb"} {
		if l.Central > 1 {
			break // clustered databases: upMembers
		}
		schema := schemaNB
		if which == "sb" {
			schema = schemaSB
		}
		if err := createDB(ctx, filepath.Join(l.CentralDir, which+".db"), schema); err != nil {
			return fmt.Errorf("central: %w", err)
		}
	}
	if l.Central > 1 {
		if err := l.upMembers(ctx); err != nil {
			return err
		}
	}
	for _, d := range l.centralDaemons() {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	if l.Central > 1 {
		return l.waitCluster(ctx)
	}
	return nil
}

func (l *Lab) upNode(ctx context.Context, n *Node) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if _, err := createNetNS(filepath.Base(n.NetNSPath)); err != nil {
		return err
	}
	// The veth is created directly between the central (or, routed, the
	// router) and node namespaces, so no link ever appears in the host
	// namespace.
	endNS, endBr := l.underlayEnd(n)
	cns, err := netns.GetFromPath(endNS)
	if err != nil {
		return fmt.Errorf("open %s: %w", endNS, err)
	}
	defer cns.Close()
	nns, err := netns.GetFromPath(n.NetNSPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", n.NetNSPath, err)
	}
	defer nns.Close()
	centralEnd := "to-" + n.Name
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: centralEnd, MTU: l.UnderlayMTU, Namespace: netlink.NsFd(cns)},
		PeerName:      nodeVeth,
		PeerNamespace: netlink.NsFd(nns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s<->%s: %w", centralEnd, nodeVeth, err)
	}
	ch, closeC, err := handleAt(endNS)
	if err != nil {
		return err
	}
	defer closeC()
	cl, err := ch.LinkByName(centralEnd)
	if err != nil {
		return fmt.Errorf("central: %w", err)
	}
	brl, err := ch.LinkByName(endBr)
	if err != nil {
		return fmt.Errorf("central: %w", err)
	}
	if err := ch.LinkSetMaster(cl, brl); err != nil {
		return fmt.Errorf("central: attach %s to %s: %w", centralEnd, endBr, err)
	}
	if err := ch.LinkSetUp(cl); err != nil {
		return fmt.Errorf("central: up %s: %w", centralEnd, err)
	}
	nh, closeN, err := handleAt(n.NetNSPath)
	if err != nil {
		return err
	}
	defer closeN()
	for _, name := range []string{"lo", nodeVeth} {
		if err := linkUp(nh, name); err != nil {
			return err
		}
	}
	// The node's underlay address lives on br-phy, but its kernel also sees
	// every frame on the veth (an AF_PACKET port of the userspace datapath)
	// and by default answers ARP for any of its addresses there too, with
	// the veth's MAC. A peer's ovs-vswitchd keeps whichever reply it snooped
	// last as its tunnel neighbour entry, and Geneve sent to the veth's MAC
	// is dropped at this node. Answer only for addresses on the interface
	// asked (none on the veth).
	if err := writeSysctl(n.NetNSPath, "/proc/sys/net/ipv4/conf/"+nodeVeth+"/arp_ignore", "1"); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}

	if err := createDB(ctx, filepath.Join(n.Dir, "conf.db"), schemaVswitch); err != nil {
		return err
	}
	ds := n.daemons()
	if err := ds[0].start(ctx); err != nil {
		return err
	}
	oc, err := vsdb.Connect(ctx, n.OVS)
	if err != nil {
		return err
	}
	defer oc.Close()
	root, err := vsdb.Init(ctx, oc)
	if err != nil {
		return err
	}
	// br-phy (netdev) holds the underlay veth; the node's underlay IP goes
	// on br-phy itself, else tunnels cannot route (trap 2).
	ops, err := vsdb.BridgeOps(oc, root.UUID, vsdb.BridgeSpec{
		Name: PhysBridge, Datapath: "netdev", MTU: l.UnderlayMTU, Ports: []string{nodeVeth},
		OtherConfig: map[string]string{"hwaddr": n.mac()},
		ExternalIDs: map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: "bridge", owner.KeyName: PhysBridge},
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", PhysBridge, err)
	}
	if _, err := dbconn.Transact(ctx, oc, ops...); err != nil {
		return fmt.Errorf("create %s: %w", PhysBridge, err)
	}
	if err := ds[1].start(ctx); err != nil {
		return err
	}
	if err := l.plugPhys(ctx, n); err != nil {
		return fmt.Errorf("%w\n%s", err, ds[1].lastLines(8))
	}
	// A SYN lost on the fresh bridge would cost a 1 s retransmit in Join:
	// connect with short attempts first.
	if err := n.Do(func() error { return waitTCP(ctx, CentralIP+":6642") }); err != nil {
		return err
	}
	// A gateway node gets its external veth (br-ex and the bridge mapping
	// come with the join).
	ext, err := l.plugExternal(n)
	if err != nil {
		return err
	}
	// Join exactly as `ovlmgr node join` does, from inside the namespace so
	// the encap IP check sees br-phy.
	err = n.Do(func() error {
		_, err := node.Join(ctx, node.JoinOptions{
			OVS: n.OVS, SB: l.SBTCP, NB: l.nodeNB(), EncapIP: n.Tunnel(),
			SystemID: n.SystemID, Hostname: n.Name, Datapath: "netdev", External: ext,
			TLS:     l.joinTLS(n),
			PathMTU: l.joinPathMTU(),
		})
		return err
	})
	if err != nil {
		return err
	}
	if err := ds[2].start(ctx); err != nil {
		return err
	}
	for _, d := range ds[3:] { // the CNI server (Options.CNIServerBin)
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	// Interfaces created in the node's namespace from now on (the host side
	// of every container veth) get no IPv6, hence no link-local address.
	// ovs-vswitchd's userspace datapath asks, for each output to a port of
	// br-int, whether the port has an address (a scan of every address of
	// the namespace), and for an ARP or ICMPv6 packet to a port that has
	// one, whether any port of the bridge owns the target (that scan again
	// for every port): a broadcast flooded to N veths that each carry an
	// fe80:: address costs N x N x N string compares, in the revalidators
	// and on every upcall. See docs/cni.md, BenchmarkCNIChurn.
	return writeSysctl(n.NetNSPath, nodeIPv6Default, "1")
}

// nodeIPv6Default is the node namespace's default disable_ipv6: new
// interfaces (container veths) start without IPv6.
const nodeIPv6Default = "/proc/sys/net/ipv6/conf/default/disable_ipv6"

// createDB runs ovsdb-tool create.
func createDB(ctx context.Context, file, schema string) error {
	tool, err := lookBin("ovsdb-tool")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, tool, "create", file, schema).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovsdb-tool create %s: %v: %s", file, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func handleAt(path string) (*netlink.Handle, func(), error) {
	h0, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(h0)
	h0.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, h.Close, nil
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func addAddrUp(h *netlink.Handle, name, cidr string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", cidr, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// waitLink waits for ovs-vswitchd to create a bridge's internal device.
func waitLink(ctx context.Context, h *netlink.Handle, name string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := h.LinkByName(name); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("ovs-vswitchd did not create %s within 15s", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// staticNeigh adds a permanent neighbour entry ip -> mac on link name.
func staticNeigh(h *netlink.Handle, name, ip, mac string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return err
	}
	err = h.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP(ip), HardwareAddr: hw})
	if err != nil {
		return fmt.Errorf("neighbour %s -> %s on %s: %w", ip, mac, name, err)
	}
	return nil
}

// waitTCP connects to addr (from the current network namespace) with short
// attempts until it answers.
func waitTCP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	var d net.Dialer
	for {
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		c, err := d.DialContext(actx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("SB at %s unreachable over the underlay: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
