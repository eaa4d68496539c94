package port

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VethSpec describes a container's veth pair. Call the functions using it
// from the node's (host) network namespace.
type VethSpec struct {
	// NetNS is the container's network namespace path.
	NetNS string
	// IfName is the container-side name; HostName the host side (HostIfName).
	IfName   string
	HostName string
	MAC      net.HardwareAddr
	MTU      int
	// Addr is the container's address with the network's prefix length.
	Addr    netip.Prefix
	Gateway netip.Addr
	// Addr6 is the optional IPv6 address (networks with an IPv6 /64),
	// on-link; Gateway6 its default route's next hop (the /64's ::1). Addr
	// is invalid on an IPv6-only network.
	Addr6    netip.Prefix
	Gateway6 netip.Addr
}

// Veth is what SetupVeth created.
type Veth struct {
	HostIndex int
	HostMAC   string
	ContIndex int
	ContMAC   string
}

// ErrLinkExists: the container interface already exists in the netns.
var ErrLinkExists = errors.New("interface already exists")

// linkExistsError names the interface and netns; it is ErrLinkExists.
type linkExistsError struct{ ifName, netns string }

func (e *linkExistsError) Error() string {
	return fmt.Sprintf("interface %s already exists in %s", e.ifName, e.netns)
}

func (e *linkExistsError) Is(target error) bool { return target == ErrLinkExists }

// SetupVeth creates the pair (container side with MAC, MTU, address,
// default route via the gateway and TX checksum offload off; host side up)
// and returns both ends. A leftover host-side link of the same name (an
// interrupted earlier ADD of the same container interface) is removed
// first. On failure nothing it created is left.
func SetupVeth(s VethSpec) (*Veth, error) {
	v, err := MakeVeth(s)
	if err != nil {
		return nil, err
	}
	if err := ConfigureVeth(s, v); err != nil {
		return nil, err
	}
	return v, nil
}

// MakeVeth creates the pair as SetupVeth does, with s's MAC and MTU when
// set and TX checksum offload off, the container side down and without
// addresses: what can be made before the address is known. ConfigureVeth completes it. On failure nothing it
// created is left.
func MakeVeth(s VethSpec) (*Veth, error) {
	if err := delHostLink(s.HostName); err != nil {
		return nil, err
	}
	v := &Veth{}
	err := ns.WithNetNSPath(s.NetNS, func(hostNS ns.NetNS) error {
		if _, err := netlink.LinkByName(s.IfName); err == nil {
			return &linkExistsError{ifName: s.IfName, netns: s.NetNS}
		}
		link, host, err := makeVeth(s, hostNS)
		if err != nil {
			return err
		}
		v.HostIndex, v.HostMAC = host.Attrs().Index, host.Attrs().HardwareAddr.String()
		v.ContIndex, v.ContMAC = link.Attrs().Index, link.Attrs().HardwareAddr.String()
		// Trap 1: a kernel sender leaves TCP/UDP checksums to the "hardware";
		// OVS's userspace datapath forwards them unfixed. Turn TX checksum
		// offload off so the kernel computes them.
		if err := TxChecksumOff(s.IfName); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		_ = delHostLink(s.HostName)
		return nil, fmt.Errorf("create veth %s/%s in %s: %w", s.HostName, s.IfName, s.NetNS, err)
	}
	return v, nil
}

// ConfigureVeth completes a pair MakeVeth made (v): MTU on both sides and
// MAC on the container side brought to s's where they differ, then the
// container side's sysctls, addresses, link up and default routes. On
// failure the pair is removed.
func ConfigureVeth(s VethSpec, v *Veth) error {
	err := configureVeth(s, v)
	if err != nil {
		_ = delHostLink(s.HostName)
		return fmt.Errorf("set up veth %s/%s in %s: %w", s.HostName, s.IfName, s.NetNS, err)
	}
	return nil
}

func configureVeth(s VethSpec, v *Veth) error {
	if s.MTU != 0 {
		host, err := netlink.LinkByName(s.HostName)
		if err != nil {
			return err
		}
		if host.Attrs().MTU != s.MTU {
			if err := netlink.LinkSetMTU(host, s.MTU); err != nil {
				return err
			}
		}
	}
	return ns.WithNetNSPath(s.NetNS, func(ns.NetNS) error {
		link, err := netlink.LinkByName(s.IfName)
		if err != nil {
			return err
		}
		if s.MTU != 0 && link.Attrs().MTU != s.MTU {
			if err := netlink.LinkSetMTU(link, s.MTU); err != nil {
				return err
			}
		}
		if len(s.MAC) > 0 && link.Attrs().HardwareAddr.String() != s.MAC.String() {
			if err := netlink.LinkSetHardwareAddr(link, s.MAC); err != nil {
				return err
			}
			v.ContMAC = s.MAC.String()
		}
		return configure(s, link)
	})
}

// configure sets up the container side link (in the container's namespace,
// the current one): IPv6 sysctls, addresses, up, default routes.
func configure(s VethSpec, link netlink.Link) error {
	if !s.Addr6.IsValid() {
		// The port's only address family is IPv4: no IPv6 link-local chatter.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+s.IfName+"/disable_ipv6", []byte("1"), 0o644)
	} else {
		// IPv6 is configured statically: router advertisements are
		// ignored, so one sent by another container (OVN's port
		// security lets a port's own link-local address through, and
		// its ACL stage passes ND/RA ahead of any ACL) adds no address
		// and no route. Set before the link is up.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+s.IfName+"/accept_ra", []byte("0"), 0o644); err != nil {
			return fmt.Errorf("ignore router advertisements on %s: %w", s.IfName, err)
		}
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+s.IfName+"/autoconf", []byte("0"), 0o644)
	}
	if s.Addr.IsValid() {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: s.Addr.Addr().AsSlice(), Mask: net.CIDRMask(s.Addr.Bits(), 32)}}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", s.Addr, s.IfName, err)
		}
	}
	if s.Addr6.IsValid() {
		// OVN reserved the address: no duplicate address detection delay.
		a6 := &netlink.Addr{IPNet: &net.IPNet{IP: s.Addr6.Addr().AsSlice(), Mask: net.CIDRMask(s.Addr6.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, a6); err != nil {
			return fmt.Errorf("add address %s to %s: %w", s.Addr6, s.IfName, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", s.IfName, err)
	}
	if s.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: s.Gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("add default route via %s on %s: %w", s.Gateway, s.IfName, err)
		}
	}
	if s.Addr6.IsValid() && s.Gateway6.IsValid() {
		// Static IPv6 default route (no router advertisements): the
		// gateway is on-link in the /64 (OVN answers its NS).
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: s.Gateway6.AsSlice(), Scope: netlink.SCOPE_UNIVERSE,
			Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("add IPv6 default route via %s on %s: %w", s.Gateway6, s.IfName, err)
		}
	}
	return nil
}

// makeVeth creates the pair from inside the container's namespace: the
// container side s.IfName (MAC, MTU) here, its peer s.HostName (same MTU)
// in hostNS, set up there with IPv6 router advertisements ignored (the
// host side carries no addresses of its own). It returns both links as the
// kernel reports them (index, MAC). Plain netlink calls: the plugin does
// not link containernetworking/plugins' pkg/ip, whose dependencies
// (knftables, ...) cost start-up time on every CNI call.
func makeVeth(s VethSpec, hostNS ns.NetNS) (cont, host netlink.Link, err error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = s.IfName, s.MTU
	if len(s.MAC) > 0 {
		attrs.HardwareAddr = s.MAC
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: s.HostName, PeerNamespace: netlink.NsFd(int(hostNS.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, nil, fmt.Errorf("make veth pair %s/%s: a link of one of these names exists: %w", s.IfName, s.HostName, err)
		}
		return nil, nil, fmt.Errorf("make veth pair %s/%s: %w", s.IfName, s.HostName, err)
	}
	if cont, err = netlink.LinkByName(s.IfName); err != nil {
		_ = netlink.LinkDel(veth)
		return nil, nil, fmt.Errorf("look up new veth %s: %w", s.IfName, err)
	}
	err = hostNS.Do(func(ns.NetNS) error {
		if host, err = netlink.LinkByName(s.HostName); err != nil {
			return fmt.Errorf("look up new veth %s on the host: %w", s.HostName, err)
		}
		// No IPv6 on the host side (it carries no address of its own): an
		// fe80:: address on each of hundreds of br-int ports makes the
		// userspace datapath scan every node address per flooded ARP/ND
		// packet and port, and stalls ovs-vswitchd. Set before it is up.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+s.HostName+"/disable_ipv6", []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6 on %s: %w", s.HostName, err)
		}
		if err := netlink.LinkSetUp(host); err != nil {
			return fmt.Errorf("set %s up: %w", s.HostName, err)
		}
		return nil
	})
	if err != nil {
		_ = netlink.LinkDel(cont)
		return nil, nil, err
	}
	return cont, host, nil
}

// TxChecksumOff turns off TX checksum offload on the link name of the
// current network namespace (`ethtool -K name tx off`): the legacy
// ETHTOOL_STXCSUM request, which the kernel applies to every tx-checksum-*
// feature at once. One ioctl: safchain/ethtool's Features and Change each
// read the feature-name table into a fresh 1 MiB buffer, and did so on
// every ADD's veth: with that garbage, about 40 % of the CNI server's CPU
// per ADD (docs/cni.md, Cost per container).
func TxChecksumOff(name string) error {
	if len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("turn off tx checksum offload on %s: name longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("turn off tx checksum offload on %s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	// struct ethtool_value and struct ifreq with ifr_data pointing at it.
	v := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [24 - unsafe.Sizeof(uintptr(0))]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("turn off tx checksum offload on %s: %w", name, errno)
	}
	return nil
}

func delHostLink(name string) error {
	return delHostLinkIf(name, func(netlink.Link) bool { return true })
}

// delHostLinkIf deletes the host-side link name if it exists and del(l)
// says so.
func delHostLinkIf(name string, del func(netlink.Link) bool) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("delete host link %s: %w", name, err)
	}
	if !del(l) {
		return nil
	}
	return delLink(l)
}

// DelHostLinkIndex deletes the host-side link name of the current network
// namespace only while its index is index (0: unknown, nothing deleted): a
// link made again under that name since index was read is left alone.
func DelHostLinkIndex(name string, index int) error {
	if index <= 0 {
		return nil
	}
	return delHostLinkIf(name, func(l netlink.Link) bool { return l.Attrs().Index == index })
}

// delLink deletes l. A link the kernel removed after it was looked up (its
// peer's namespace went away meanwhile: ENODEV) is gone, not an error.
func delLink(l netlink.Link) error {
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete host link %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// DelVeth removes the pair: the host side by name (which takes the peer
// with it) and, if the namespace still exists, a container-side veth named
// ifName left behind. Missing links or namespace are not errors.
func DelVeth(netnsPath, ifName, hostName string) error {
	if err := delHostLink(hostName); err != nil {
		return err
	}
	if netnsPath == "" {
		return nil
	}
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			return nil
		}
		if l.Type() != "veth" {
			return nil
		}
		return netlink.LinkDel(l)
	})
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	if err != nil && !errors.As(err, &notExist) && !errors.As(err, &notNS) {
		return fmt.Errorf("delete %s in %s: %w", ifName, netnsPath, err)
	}
	return nil
}

// HostLinkExists reports whether the host-side link name exists.
func HostLinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// CheckVeth verifies the container side inside the namespace: the link,
// its MAC, MTU, address and default route via the gateway; and that the
// host side exists. It returns the first mismatch.
func CheckVeth(s VethSpec) error {
	if !HostLinkExists(s.HostName) {
		return fmt.Errorf("host interface %s missing", s.HostName)
	}
	return ns.WithNetNSPath(s.NetNS, func(ns.NetNS) error {
		l, err := netlink.LinkByName(s.IfName)
		if err != nil {
			return fmt.Errorf("interface %s missing in %s", s.IfName, s.NetNS)
		}
		a := l.Attrs()
		if s.MAC != nil && a.HardwareAddr.String() != s.MAC.String() {
			return fmt.Errorf("interface %s: MAC %s, want %s", s.IfName, a.HardwareAddr, s.MAC)
		}
		if s.MTU != 0 && a.MTU != s.MTU {
			return fmt.Errorf("interface %s: MTU %d, want %d", s.IfName, a.MTU, s.MTU)
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		found := !s.Addr.IsValid()
		for _, ad := range addrs {
			ones, _ := ad.Mask.Size()
			if p, ok := netip.AddrFromSlice(ad.IP.To4()); ok && netip.PrefixFrom(p, ones) == s.Addr {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("interface %s: address %s missing", s.IfName, s.Addr)
		}
		if s.Addr6.IsValid() {
			addrs6, err := netlink.AddrList(l, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			found6 := false
			for _, ad := range addrs6 {
				ones, _ := ad.Mask.Size()
				if p, ok := netip.AddrFromSlice(ad.IP); ok && netip.PrefixFrom(p, ones) == s.Addr6 {
					found6 = true
				}
			}
			if !found6 {
				return fmt.Errorf("interface %s: address %s missing", s.IfName, s.Addr6)
			}
		}
		if s.Gateway.IsValid() {
			routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			ok := false
			for _, r := range routes {
				if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw != nil && r.Gw.Equal(s.Gateway.AsSlice()) {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("interface %s: default route via %s missing", s.IfName, s.Gateway)
			}
		}
		if s.Addr6.IsValid() && s.Gateway6.IsValid() {
			routes, err := netlink.RouteList(l, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			ok := false
			for _, r := range routes {
				if (r.Dst == nil || r.Dst.String() == "::/0") && r.Gw != nil && r.Gw.Equal(s.Gateway6.AsSlice()) {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("interface %s: IPv6 default route via %s missing", s.IfName, s.Gateway6)
			}
		}
		return nil
	})
}

// LinkMTUOf returns the MTU of the link that holds address ipAddr in the
// current network namespace. An address dump that links changing meanwhile
// interrupted (netlink.ErrDumpInterrupted: other containers' veths come and
// go on a busy node) is read again; after a few tries its partial result
// serves when it holds the address.
func LinkMTUOf(ipAddr netip.Addr) (int, string, error) {
	var addrs []netlink.Addr
	var err error
	for try := 0; try < 5; try++ {
		if addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, "", err
	}
	for _, a := range addrs {
		if p, ok := netip.AddrFromSlice(a.IP); ok && p.Unmap() == ipAddr {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return 0, "", err
			}
			return l.Attrs().MTU, l.Attrs().Name, nil
		}
	}
	if err != nil {
		return 0, "", fmt.Errorf("find the interface holding %s: %w", ipAddr, err)
	}
	return 0, "", fmt.Errorf("no interface holds %s in this network namespace", ipAddr)
}

// ContainerLinkExists reports whether ifName exists inside the network
// namespace at netnsPath (false when the namespace is gone).
func ContainerLinkExists(netnsPath, ifName string) bool {
	found := false
	_ = ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		_, err := netlink.LinkByName(ifName)
		found = err == nil
		return nil
	})
	return found
}
