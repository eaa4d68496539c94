package port

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Announce sends, from the container interface ifName inside netnsPath, a
// gratuitous ARP request and reply for ip4 and, when ip6 is valid, an
// unsolicited IPv6 Neighbor Advertisement (override flag set, to all
// nodes), so that peers replace a cached MAC of an earlier holder of the
// address at once. Frames go out on a raw AF_PACKET socket.
func Announce(netnsPath, ifName string, mac net.HardwareAddr, ip4, ip6 netip.Addr) error {
	f, err := AnnounceLinger(netnsPath, ifName, mac, ip4, ip6)
	if f != nil {
		_ = f.Close()
	}
	return err
}

// AnnounceLinger is Announce that returns its packet socket open instead of
// closing it (nil after an error). Closing the last reference to an
// AF_PACKET socket waits for an RCU grace period in the kernel
// (packet_release calls synchronize_net: 8-20 ms on a loaded 2-core
// machine, and a process's exit waits for it too). A caller on a latency
// path hands the file to a process that outlives it (e.g. as an extra file
// of a detached child) and then closes its own copy, which returns at once.
func AnnounceLinger(netnsPath, ifName string, mac net.HardwareAddr, ip4, ip6 netip.Addr) (*os.File, error) {
	var out *os.File
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("announce on %s: %w", ifName, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("announce on %s: raw socket: %w", ifName, err)
		}
		f := os.NewFile(uintptr(fd), "announce-"+ifName)
		send := func(dst net.HardwareAddr, frame []byte) error {
			var a [8]byte
			copy(a[:], dst)
			sa := &unix.SockaddrLinklayer{Ifindex: link.Attrs().Index, Halen: 6, Addr: a}
			return unix.Sendto(fd, frame, 0, sa)
		}
		var frames [][]byte
		if ip4.Is4() {
			frames = append(frames, garp(mac, ip4, 1), garp(mac, ip4, 2))
		}
		if ip6.Is6() {
			frames = append(frames, unsolicitedNA(mac, ip6))
		}
		for _, fr := range frames {
			if err := send(net.HardwareAddr(fr[0:6]), fr); err != nil {
				_ = f.Close()
				return fmt.Errorf("announce on %s: send: %w", ifName, err)
			}
		}
		out = f
		return nil
	})
	return out, err
}

// garp is a broadcast ARP frame (op 1 request, 2 reply) whose sender and
// target are both mac/ip.
func garp(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], 0x0806)
	binary.BigEndian.PutUint16(f[14:16], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:18], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:22], op)
	a := ip.As4()
	copy(f[22:28], mac)
	copy(f[28:32], a[:])
	if op == 2 {
		copy(f[32:38], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	copy(f[38:42], a[:])
	return f
}

// unsolicitedNA is an ICMPv6 Neighbor Advertisement for ip from ip to
// ff02::1 (hop limit 255, override flag, target link-layer address option).
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr) []byte {
	const icmpLen = 32 // 4 header + 4 flags + 16 target + 8 option
	f := make([]byte, 14+40+icmpLen)
	copy(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], 0x86dd)
	h := f[14:54]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], icmpLen)
	h[6], h[7] = 58, 255 // ICMPv6, hop limit
	src, dst := ip.As16(), netip.MustParseAddr("ff02::1").As16()
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	m := f[54:]
	m[0] = 136  // Neighbor Advertisement
	m[4] = 0x20 // override
	copy(m[8:24], src[:])
	m[24], m[25] = 2, 1 // target link-layer address, 8 bytes
	copy(m[26:32], mac)
	// Checksum over the IPv6 pseudo-header and the message.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	add(src[:])
	add(dst[:])
	sum += icmpLen + 58
	add(m)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(m[2:4], ^uint16(sum))
	return f
}
