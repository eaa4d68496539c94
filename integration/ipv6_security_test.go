package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// frame6 is an Ethernet frame carrying an IPv6 packet (hop limit 255)
// with payload of next header nh; ICMPv6 (58) and UDP (17) checksums are
// filled in.
func frame6(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, nh byte, payload []byte) []byte {
	f := make([]byte, 14+40+len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:14], 0x86dd)
	h := f[14:54]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6], h[7] = nh, 255
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	p := f[54:]
	copy(p, payload)
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(s[:])
	add(d[:])
	sum += uint32(len(p)) + uint32(nh)
	add(p)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	ck := ^uint16(sum)
	switch nh {
	case 58:
		binary.BigEndian.PutUint16(p[2:4], ck)
	case 17:
		binary.BigEndian.PutUint16(p[6:8], ck)
	}
	return f
}

// udp6 is a UDP datagram (ports 5353 → 9999) with body.
func udp6(body string) []byte {
	u := make([]byte, 8+len(body))
	binary.BigEndian.PutUint16(u[0:2], 5353)
	binary.BigEndian.PutUint16(u[2:4], 9999)
	binary.BigEndian.PutUint16(u[4:6], uint16(len(u)))
	copy(u[8:], body)
	return u
}

// na is a Neighbor Advertisement (override) for target with mac as its
// target link-layer address.
func na(target netip.Addr, mac net.HardwareAddr) []byte {
	m := make([]byte, 32)
	m[0] = 136
	m[4] = 0x20
	t := target.As16()
	copy(m[8:24], t[:])
	m[24], m[25] = 2, 1
	copy(m[26:32], mac)
	return m
}

// ra is a Router Advertisement (router lifetime 1800 s) with a Prefix
// Information option for prefix (on-link, autonomous: SLAAC) and the
// sender's link-layer address.
func ra(prefix netip.Prefix, mac net.HardwareAddr) []byte {
	m := make([]byte, 16+32+8)
	m[0] = 134
	m[4] = 64                                  // cur hop limit
	binary.BigEndian.PutUint16(m[6:8], 1800)   // router lifetime
	o := m[16:48]                              // prefix information
	o[0], o[1], o[2], o[3] = 3, 4, 64, 0xc0    // type, len, prefix len, L+A
	binary.BigEndian.PutUint32(o[4:8], 86400)  // valid
	binary.BigEndian.PutUint32(o[8:12], 14400) // preferred
	p := prefix.Addr().As16()
	copy(o[16:32], p[:])
	s := m[48:56]
	s[0], s[1] = 1, 1
	copy(s[2:8], mac)
	return m
}

// linkLocal is fe80:: with mac's modified EUI-64.
func linkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// rawSend sends frame on c's interface from inside its namespace.
func rawSend(c *container, frame []byte) error {
	return c.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(c.ifName)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var a [8]byte
		copy(a[:], frame[0:6])
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: l.Attrs().Index, Halen: 6, Addr: a})
	})
}

// sniffer captures the frames arriving on c's interface.
type sniffer struct {
	fd     int
	frames chan []byte
}

func sniff(t *testing.T, c *container) *sniffer {
	t.Helper()
	s := &sniffer{fd: -1, frames: make(chan []byte, 1024)}
	err := c.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(c.ifName)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.Timeval{Usec: 100000}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		s.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("sniff on %s: %v", c.id, err)
	}
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 65536)
		for {
			select {
			case <-done:
				return
			default:
			}
			n, from, err := unix.Recvfrom(s.fd, buf, 0)
			if err != nil || n <= 0 {
				continue
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			s.frames <- bytes.Clone(buf[:n])
		}
	}()
	t.Cleanup(func() { close(done); time.Sleep(150 * time.Millisecond); unix.Close(s.fd) })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// saw reports whether a frame containing marker arrives within d.
func (s *sniffer) saw(marker []byte, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case f := <-s.frames:
			if bytes.Contains(f, marker) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// TestIPv6PortSecurity: raw frames from container A on a dual-stack
// network, watched on B and C (C on another node): a UDP datagram with a
// forged IPv6 source does not arrive (the same datagram from A's own
// address does); a Neighbor Advertisement claiming B's address with A's
// MAC does not reach C, and C keeps B's MAC (A's NA for its own address
// does reach C); a Router Advertisement from A changes nothing on C: no
// address from its prefix, no default route via A (containers take no
// RAs: their IPv6 configuration is static).
func TestIPv6PortSecurity(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	specNetwork(t, nb, network.Spec{Name: "v6sec", Subnet: "198.19.62.0/24", IPv6Subnet: "fd00:198:19:62::/64"})
	list := confList(t, "v6sec", "1.0.0", nil)
	a := newContainer(t, newRuntime(t, l.Nodes[0]), list)
	a.mustAdd(t, ctx)
	b := newContainer(t, newRuntime(t, l.Nodes[0]), list)
	b.mustAdd(t, ctx)
	c := newContainer(t, newRuntime(t, l.Nodes[1]), list)
	c.mustAdd(t, ctx)
	macOf := func(x *container) net.HardwareAddr {
		for _, i := range x.result.Interfaces {
			if i.Sandbox != "" {
				m, _ := net.ParseMAC(i.Mac)
				return m
			}
		}
		t.Fatalf("%s: no container interface in the result", x.id)
		return nil
	}
	addr6 := func(x *container) netip.Addr { a, _ := netip.AddrFromSlice(x.ip6()); return a }
	aMAC, bMAC := macOf(a), macOf(b)
	aIP, bIP := addr6(a), addr6(b)
	// Neighbour entries and tunnels in place: C and A reach B over IPv6.
	for _, x := range []*container{a, c} {
		if err := x.ping(ctx, b.ip6()); err != nil {
			t.Fatal(err)
		}
	}
	bSniff, cSniff := sniff(t, b), sniff(t, c)
	allNodes := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	ff02 := netip.MustParseAddr("ff02::1")

	// Forged source.
	legit := udp6("ovlmgr-legit-src")
	if err := rawSend(a, frame6(aMAC, bMAC, aIP, bIP, 17, legit)); err != nil {
		t.Fatal(err)
	}
	if !bSniff.saw([]byte("ovlmgr-legit-src"), 3*time.Second) {
		t.Fatalf("control: UDP from A's own IPv6 address did not reach B")
	}
	forged := netip.MustParseAddr("fd00:198:19:62::dead")
	if err := rawSend(a, frame6(aMAC, bMAC, forged, bIP, 17, udp6("ovlmgr-forged-src"))); err != nil {
		t.Fatal(err)
	}
	if bSniff.saw([]byte("ovlmgr-forged-src"), 2*time.Second) {
		t.Errorf("UDP with forged IPv6 source %s from A reached B", forged)
	}

	// Forged NA: A claims B's address.
	if err := rawSend(a, frame6(aMAC, allNodes, aIP, ff02, 58, na(aIP, aMAC))); err != nil {
		t.Fatal(err)
	}
	// The NA's target and target link-layer address option mark it.
	naMarker := func(target netip.Addr) []byte {
		t := target.As16()
		return append(append(t[:], 2, 1), aMAC...)
	}
	if !cSniff.saw(naMarker(aIP), 3*time.Second) {
		t.Fatalf("control: A's NA for its own address did not reach C")
	}
	if err := rawSend(a, frame6(aMAC, allNodes, aIP, ff02, 58, na(bIP, aMAC))); err != nil {
		t.Fatal(err)
	}
	if cSniff.saw(naMarker(bIP), 2*time.Second) {
		t.Errorf("A's NA claiming B's address %s reached C", bIP)
	}
	if neigh := neighMAC(t, c, bIP); neigh != "" && neigh != bMAC.String() {
		t.Errorf("C's neighbour entry for B %s is %s after A's forged NA; want B's MAC %s", bIP, neigh, bMAC)
	}

	// RA from A with a prefix for SLAAC.
	bad := netip.MustParsePrefix("fd00:bad:0:1::/64")
	if err := rawSend(a, frame6(aMAC, allNodes, linkLocal(aMAC), ff02, 58, ra(bad, aMAC))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := c.ns.Do(func(ns.NetNS) error {
		lnk, err := netlink.LinkByName(c.ifName)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(lnk, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, ad := range addrs {
			if ip, ok := netip.AddrFromSlice(ad.IP); ok && bad.Contains(ip) {
				return fmt.Errorf("C configured %s from A's router advertisement", ip)
			}
		}
		routes, err := netlink.RouteList(lnk, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Gw != nil && r.Gw.IsLinkLocalUnicast() {
				return fmt.Errorf("C has a route to %v via %s (A's router advertisement)", r.Dst, r.Gw)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// neighMAC is c's neighbour-table MAC for ip ("" when it has none).
func neighMAC(t *testing.T, c *container, ip netip.Addr) string {
	t.Helper()
	mac := ""
	err := c.ns.Do(func(ns.NetNS) error {
		lnk, err := netlink.LinkByName(c.ifName)
		if err != nil {
			return err
		}
		ns, err := netlink.NeighList(lnk.Attrs().Index, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a == ip && n.HardwareAddr != nil {
				mac = strings.ToLower(n.HardwareAddr.String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}
