package lab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// The lab's external network: a namespace "<name>-x" standing for the
// world outside the overlay, with a host at ExternalHostIP on a second
// underlay (ExternalCIDR, a Linux bridge br-ext). Each gateway node has a
// veth ex0 on that bridge, in its OVS bridge br-ex (netdev), mapped as
// physical network "external" (ovn-bridge-mappings external:br-ex) by the
// same code as `ovlmgr node join --external-iface ex0`.
const (
	ExternalCIDR   = "198.18.100.0/24"
	ExternalHostIP = "198.18.100.1"
	// ExampleExternalIP is the router external address docs and hints use.
	ExampleExternalIP = "198.18.100.10"
	// ExternalCIDR6 and ExternalHostIP6: the external network is dual-stack;
	// the outside host has this IPv6 address on it too (the IPv6 next hop).
	ExternalCIDR6   = "fd00:198:18:100::/64"
	ExternalHostIP6 = "fd00:198:18:100::1"
	// ExampleExternalIP6 is the router's external IPv6 address docs and hints use.
	ExampleExternalIP6 = "fd00:198:18:100::10"
	// ExternalPhysnet is the physical network name gateway nodes map.
	ExternalPhysnet = node.DefaultPhysnet
	// ExternalBridge is the OVS bridge on gateway nodes.
	ExternalBridge = node.DefaultExternalBridge
	externalBr     = "br-ext"
	externalVeth   = "ex0"
	// externalMAC is br-ext's fixed MAC (see underlayMAC).
	externalMAC = "02:00:c6:12:64:01"
)

// External is the lab's outside world (nil in a lab without gateways).
type External struct {
	// NetNS is the namespace path of the outside host.
	NetNS string `json:"netns"`
	// HostIP is the outside host's address, CIDR the external network.
	HostIP string `json:"hostIP"`
	CIDR   string `json:"cidr"`
	// HostIP6 and CIDR6: the same on the IPv6 side of the external network.
	HostIP6 string `json:"hostIP6,omitempty"`
	CIDR6   string `json:"cidr6,omitempty"`
	// Physnet and Bridge: what gateway nodes map (ovn-bridge-mappings Physnet:Bridge).
	Physnet string `json:"physnet"`
	Bridge  string `json:"bridge"`
}

// Command returns a command that runs name with args in the outside
// host's namespace (nothing else is entered: no mount namespace, no node
// environment). Do not replace Path or Args (see package nsexec).
func (e *External) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return nsexec.Command(ctx, e.NetNS, nil, name, args...)
}

// Exec replaces the current process with name and args run in the
// outside host's namespace (`ovlmgr lab exec outside -- CMD`). It returns
// only on failure.
func (e *External) Exec(name string, args ...string) error {
	return nsexec.Exec(e.NetNS, nil, name, args...)
}

// Do runs f on a thread inside the outside host's network namespace.
func (e *External) Do(f func() error) error {
	return ns.WithNetNSPath(e.NetNS, func(ns.NetNS) error { return f() })
}

// defaultGateways: n1 and n2 with two or more nodes, else n1.
func defaultGateways(nodes int) []string {
	if nodes >= 2 {
		return []string{"n1", "n2"}
	}
	return []string{"n1"}
}

// checkGateways resolves Options.Gateways: nil is the default, "none"
// alone means no external network; otherwise each must be a node name.
func (o *Options) checkGateways() error {
	if o.Gateways == nil {
		o.Gateways = defaultGateways(o.Nodes)
		return nil
	}
	if len(o.Gateways) == 1 && o.Gateways[0] == "none" {
		o.Gateways = []string{}
		return nil
	}
	seen := map[string]bool{}
	for _, g := range o.Gateways {
		var i int
		if _, err := fmt.Sscanf(g, "n%d", &i); err != nil || fmt.Sprintf("n%d", i) != g || i < 1 || i > o.Nodes {
			return fmt.Errorf("lab gateways %q: %q is not a node of the lab (n1 to n%d, or none)", strings.Join(o.Gateways, ","), g, o.Nodes)
		}
		if seen[g] {
			return fmt.Errorf("lab gateways %q: %s listed twice", strings.Join(o.Gateways, ","), g)
		}
		seen[g] = true
	}
	return nil
}

// IsGateway reports whether node n is plugged into the external network.
func (l *Lab) IsGateway(n string) bool {
	for _, g := range l.Gateways {
		if g == n {
			return true
		}
	}
	return false
}

// planExternal fills l.External when the lab has gateways.
func (l *Lab) planExternal(name string) {
	if len(l.Gateways) == 0 {
		return
	}
	l.External = &External{NetNS: filepath.Join(NetNSDir, name+"-x"), HostIP: ExternalHostIP, CIDR: ExternalCIDR,
		HostIP6: ExternalHostIP6, CIDR6: ExternalCIDR6, Physnet: ExternalPhysnet, Bridge: ExternalBridge}
}

// upExternal creates the outside namespace and its bridge with the host address.
func (l *Lab) upExternal() error {
	if l.External == nil {
		return nil
	}
	if _, err := createNetNS(filepath.Base(l.External.NetNS)); err != nil {
		return err
	}
	h, closeH, err := handleAt(l.External.NetNS)
	if err != nil {
		return err
	}
	defer closeH()
	if err := linkUp(h, "lo"); err != nil {
		return fmt.Errorf("outside: %w", err)
	}
	mac, _ := net.ParseMAC(externalMAC)
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: externalBr, HardwareAddr: mac, MTU: l.UnderlayMTU}}); err != nil {
		return fmt.Errorf("outside: add bridge %s: %w", externalBr, err)
	}
	bits := strings.SplitN(ExternalCIDR, "/", 2)[1]
	if err := addAddrUp(h, externalBr, ExternalHostIP+"/"+bits); err != nil {
		return fmt.Errorf("outside: %w", err)
	}
	// The IPv6 side (a /64, no DAD: the lab hands the address out).
	if err := addAddr6(h, externalBr, ExternalHostIP6); err != nil {
		return fmt.Errorf("outside: %w", err)
	}
	// The outside host's kernel TCP/UDP packets enter OVS on the gateway
	// nodes: their checksums must be complete (trap 1).
	if err := l.External.Do(func() error { return ovsport.TxChecksumOff(externalBr) }); err != nil {
		return fmt.Errorf("outside: %w", err)
	}
	return nil
}

// plugExternal connects gateway node n to the outside bridge: veth ex0 in
// the node (for br-ex), its peer to-<node> on br-ext. It returns what
// node.Join needs to build br-ex and the bridge mapping.
func (l *Lab) plugExternal(n *Node) (*node.External, error) {
	if l.External == nil || !l.IsGateway(n.Name) {
		return nil, nil
	}
	xns, err := netns.GetFromPath(l.External.NetNS)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.External.NetNS, err)
	}
	defer xns.Close()
	nns, err := netns.GetFromPath(n.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", n.NetNSPath, err)
	}
	defer nns.Close()
	outEnd := "to-" + n.Name
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: outEnd, MTU: l.UnderlayMTU, Namespace: netlink.NsFd(xns)},
		PeerName:      externalVeth,
		PeerNamespace: netlink.NsFd(nns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("add veth %s<->%s: %w", outEnd, externalVeth, err)
	}
	xh, closeX, err := handleAt(l.External.NetNS)
	if err != nil {
		return nil, err
	}
	defer closeX()
	ol, err := xh.LinkByName(outEnd)
	if err != nil {
		return nil, fmt.Errorf("outside: %w", err)
	}
	br, err := xh.LinkByName(externalBr)
	if err != nil {
		return nil, fmt.Errorf("outside: %w", err)
	}
	if err := xh.LinkSetMaster(ol, br); err != nil {
		return nil, fmt.Errorf("outside: attach %s to %s: %w", outEnd, externalBr, err)
	}
	if err := xh.LinkSetUp(ol); err != nil {
		return nil, fmt.Errorf("outside: up %s: %w", outEnd, err)
	}
	nh, closeN, err := handleAt(n.NetNSPath)
	if err != nil {
		return nil, err
	}
	defer closeN()
	if err := linkUp(nh, externalVeth); err != nil {
		return nil, err
	}
	return &node.External{Interface: externalVeth, Bridge: l.External.Bridge, Physnet: l.External.Physnet}, nil
}

// downExternal deletes the outside namespace.
func (l *Lab) downExternal() error {
	if l.External == nil {
		return nil
	}
	return deleteNetNS(l.External.NetNS)
}
