package lab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Underlay6CIDR is the IPv6 underlay of a lab with Options.UnderlayIPv6:
// node i is fd00:198:18::(10+i) (hex), on br-phy next to its IPv4
// address. Geneve over IPv6 costs 20 bytes more than over IPv4 (78): the
// container MTU derived from a 1500 underlay is 1422.
const Underlay6CIDR = "fd00:198:18::/64"

// planUnderlay6 gives every node its IPv6 underlay address when asked.
func (l *Lab) planUnderlay6(o Options) {
	if !o.UnderlayIPv6 {
		return
	}
	l.UnderlayIPv6 = true
	base := netip.MustParsePrefix(Underlay6CIDR).Addr().As16()
	for i, n := range l.Nodes {
		a := base
		a[15] = byte(11 + i)
		n.EncapIP6 = netip.AddrFrom16(a).String()
	}
}

// Tunnel is the node's Geneve endpoint (ovn-encap-ip): EncapIP6 in a lab
// with an IPv6 underlay, else EncapIP.
func (n *Node) Tunnel() string {
	if n.EncapIP6 != "" {
		return n.EncapIP6
	}
	return n.EncapIP
}

// addAddr6 puts ip/64 on link name without duplicate address detection (the
// lab hands the addresses out: no one else has them), so tunnels can use it
// at once. An empty ip does nothing.
func addAddr6(h *netlink.Handle, name, ip string) error {
	if ip == "" {
		return nil
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add %s/64 to %s: %w", ip, name, err)
	}
	return nil
}
