package nodediag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	ovsmtu "github.com/ovlmgr/ovlmgr/ovs/mtu"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// MinProbe is the smallest IPv4 packet probed (the IPv4 minimum MTU);
// MinProbe6 the smallest IPv6 one (IPv6's minimum link MTU).
const (
	MinProbe  = 68
	MinProbe6 = 1280
)

// Prober sends DF-marked ICMP echo requests from inside a container.
type Prober struct {
	// NetNS is the container's network namespace path; IfName its interface.
	NetNS, IfName string
	// Timeout waits for each reply (default 400 ms); Tries per size (default 2:
	// the first packet to a new tunnel peer may be dropped).
	Timeout time.Duration
	Tries   int
}

// ProbeResult is the outcome of a path MTU search.
type ProbeResult struct {
	// Configured is the container interface's MTU.
	Configured int `json:"configured"`
	// Largest is the largest IP packet (bytes, headers included) that
	// crossed and was answered; 0 when even MinProbe did not cross.
	Largest int `json:"largest"`
	Probes  int `json:"probes"`
}

// Largest finds the largest packet that really crosses to dst: DF echo
// requests (no fragmentation, the route's PMTU ignored) sized by binary
// search between MinProbe and the interface MTU.
func (p Prober) Largest(ctx context.Context, dst netip.Addr) (*ProbeResult, error) {
	if !dst.Is4() && !dst.Is6() {
		return nil, fmt.Errorf("probe %q: not an IP address", dst)
	}
	if p.Timeout == 0 {
		p.Timeout = 400 * time.Millisecond
	}
	if p.Tries == 0 {
		p.Tries = 2
	}
	res := &ProbeResult{}
	err := inNS(p.NetNS, func() error {
		l, err := netlink.LinkByName(p.IfName)
		if err != nil {
			return fmt.Errorf("find %s: %w", p.IfName, err)
		}
		res.Configured = l.Attrs().MTU
		family, proto, level, opt, probe := unix.AF_INET, unix.IPPROTO_ICMP, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE
		if dst.Is6() {
			// The kernel fills in ICMPv6 checksums on raw ICMPv6 sockets.
			family, proto, level, opt, probe = unix.AF_INET6, unix.IPPROTO_ICMPV6, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("raw ICMP socket: %w", err)
		}
		defer unix.Close(fd)
		// Never fragment, ignore the route's path MTU (IPv4's DF bit).
		if err := unix.SetsockoptInt(fd, level, opt, probe); err != nil {
			return fmt.Errorf("set DF: %w", err)
		}
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, p.IfName); err != nil {
			return fmt.Errorf("bind to %s: %w", p.IfName, err)
		}
		id := uint16(os.Getpid()) ^ uint16(time.Now().UnixNano())
		seq := uint16(0)
		pass := func(size int) (bool, error) {
			for i := 0; i < p.Tries; i++ {
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				seq++
				res.Probes++
				echoFn := echo
				if dst.Is6() {
					echoFn = echo6
				}
				ok, err := echoFn(fd, dst, id, seq, size, p.Timeout)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		hi := res.Configured
		ok, err := pass(hi)
		if err != nil {
			return err
		}
		if ok {
			res.Largest = hi
			return nil
		}
		lo := MinProbe
		if dst.Is6() {
			lo = MinProbe6
		}
		if ok, err := pass(lo); err != nil || !ok {
			return err
		}
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			ok, err := pass(mid)
			if err != nil {
				return err
			}
			if ok {
				lo = mid
			} else {
				hi = mid
			}
		}
		res.Largest = lo
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe path MTU to %s: %w", dst, err)
	}
	return res, nil
}

// echo sends one echo request of size bytes (IPv4 packet) and waits for
// its reply.
func echo(fd int, dst netip.Addr, id, seq uint16, size int, timeout time.Duration) (bool, error) {
	payload := size - 20 - 8
	if payload < 0 {
		payload = 0
	}
	pkt := make([]byte, 8+payload)
	pkt[0] = 8 // echo request
	binary.BigEndian.PutUint16(pkt[4:], id)
	binary.BigEndian.PutUint16(pkt[6:], seq)
	for i := 8; i < len(pkt); i++ {
		pkt[i] = byte(i)
	}
	binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	if err := unix.Sendto(fd, pkt, 0, to); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			return false, nil
		}
		return false, fmt.Errorf("send %d bytes: %w", size, err)
	}
	return awaitReply(fd, timeout, func(buf []byte, from unix.Sockaddr) bool {
		sa, ok := from.(*unix.SockaddrInet4)
		if !ok || netip.AddrFrom4(sa.Addr) != dst || len(buf) < 20 {
			return false
		}
		ihl := int(buf[0]&0x0f) * 4
		if len(buf) < ihl+8 {
			return false
		}
		icmp := buf[ihl:]
		return icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id && binary.BigEndian.Uint16(icmp[6:]) == seq
	})
}

// echo6 sends one ICMPv6 echo request of size bytes (IPv6 packet: 40
// header bytes included) and waits for its reply.
func echo6(fd int, dst netip.Addr, id, seq uint16, size int, timeout time.Duration) (bool, error) {
	payload := max(size-40-8, 0)
	pkt := make([]byte, 8+payload)
	pkt[0] = 128 // echo request
	binary.BigEndian.PutUint16(pkt[4:], id)
	binary.BigEndian.PutUint16(pkt[6:], seq)
	for i := 8; i < len(pkt); i++ {
		pkt[i] = byte(i)
	}
	if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet6{Addr: dst.As16()}); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			return false, nil
		}
		return false, fmt.Errorf("send %d bytes: %w", size, err)
	}
	return awaitReply(fd, timeout, func(buf []byte, from unix.Sockaddr) bool {
		// Raw ICMPv6 sockets deliver the message without the IPv6 header.
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok || netip.AddrFrom16(sa.Addr) != dst || len(buf) < 8 {
			return false
		}
		return buf[0] == 129 && binary.BigEndian.Uint16(buf[4:]) == id && binary.BigEndian.Uint16(buf[6:]) == seq
	})
}

// awaitReply receives on fd until match accepts a message (true), or
// timeout passes (false).
func awaitReply(fd int, timeout time.Duration, match func(msg []byte, from unix.Sockaddr) bool) (bool, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return false, err
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return false, fmt.Errorf("receive: %w", err)
		}
		if match(buf[:n], from) {
			return true, nil
		}
	}
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// MTUReport is `diagnose mtu FROM TO`: the largest packet that crosses from
// one container to another, against the configured MTU and the underlay.
type MTUReport struct {
	From   *trace.Endpoint `json:"from"`
	To     *trace.Endpoint `json:"to"`
	Result *ProbeResult    `json:"result"`
	// Limit is the underlay MTU minus the Geneve overhead (0 if unknown):
	// the smallest of the encap link's MTU, the deployment's recorded
	// underlay path MTU (network.PathMTU) and the measured Underlay path.
	Limit int `json:"limit,omitempty"`
	// Underlay is the node-to-node probe when the destination is on another
	// node: the largest outer packet that crosses from this node's encap IP
	// to the destination node's (through routers or a WAN on the way).
	Underlay *UnderlayPath  `json:"underlay,omitempty"`
	Check    diagnose.Check `json:"check"`
}

// UnderlayPath is the underlay part of a path MTU report.
type UnderlayPath struct {
	Node   string `json:"node"`   // the destination's node (chassis)
	From   string `json:"from"`   // this node's encap IP
	To     string `json:"to"`     // the destination node's encap IP
	Device string `json:"device"` // the interface holding this node's encap IP
	// Largest is the largest IP packet (outer headers included) that
	// crossed; the container packets it carries are Overhead smaller.
	Largest  int `json:"largest"`
	Overhead int `json:"overhead"`
}

// PathMTU probes from the container from (which must be bound on the node
// of t) to to, and judges the result.
func PathMTU(ctx context.Context, t Target, nb, sb client.Client, from, to string) (*MTUReport, error) {
	t.defaults()
	f, dst, err := trace.Resolve(ctx, nb, sb, from, to)
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	// IPv6 when TO is an IPv6 address or the destination has only IPv6.
	probeIP := dst.IP
	if a, err := netip.ParseAddr(to); err == nil && a.Is6() {
		probeIP = a
	} else if !probeIP.IsValid() && dst.IP6.IsValid() {
		probeIP = dst.IP6
	}
	oc, err := vsdb.Connect(ctx, t.OVS)
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	self := root.ExternalIDs[node.KeySystemID]
	if f.BoundOn != self {
		return nil, fmt.Errorf("diagnose mtu: %s is on node %q, this is node %s: run it there (lab: `ovlmgr lab exec %s -- ovlmgr diagnose mtu ...`)", f.Label(), f.BoundOn, self, f.BoundOn)
	}
	ifs, err := vsdb.Interfaces(ctx, oc, "")
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	host := ""
	for _, i := range ifs {
		if i.ExternalIDs["iface-id"] == f.Port {
			host = i.Name
		}
	}
	if host == "" {
		return nil, fmt.Errorf("diagnose mtu: no OVS port with iface-id %s on node %s", f.Port, self)
	}
	side, err := FindContainerSide(t.NetNS, host)
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	rep := &MTUReport{From: f, To: dst}
	if h, err := handleAt(t.NetNS); err == nil {
		defer h.Close()
		c := &checker{h: h, root: root}
		c.identity(self)
		under, _ := network.ReadUnderlay(ctx, nb)
		if under.Encrypted {
			// Encrypted tunnels: every packet also carries ESP.
			c.overhead += ovsmtu.IPsecESP
		}
		if c.underlayMTU > 0 {
			rep.Limit = c.underlayMTU - c.overhead
			if p := under.PathMTU; p > 0 && p-c.overhead < rep.Limit {
				rep.Limit = p - c.overhead
			}
		}
		if c.underlay != "" && dst.BoundOn != "" && dst.BoundOn != self {
			u, err := probeUnderlay(ctx, sb, t.NetNS, c.underlay, root.ExternalIDs[node.KeyEncapIP], dst.BoundOn)
			if err != nil {
				return nil, fmt.Errorf("diagnose mtu: %w", err)
			}
			if u != nil {
				u.Overhead = c.overhead
				rep.Underlay = u
			}
			if u != nil && u.Largest > 0 && (rep.Limit == 0 || u.Largest-c.overhead < rep.Limit) {
				rep.Limit = u.Largest - c.overhead
			}
		}
	}
	r, err := Prober{NetNS: side.NetNS, IfName: side.Name}.Largest(ctx, probeIP)
	if err != nil {
		return nil, fmt.Errorf("diagnose mtu: %w", err)
	}
	rep.Result = r
	name := "mtu " + f.Label() + " -> " + dst.Label()
	fix := fmt.Sprintf("set the container MTU to %d (network --mtu, or fix the underlay MTU)", r.Largest)
	switch {
	case r.Largest == 0:
		rep.Check = diagnose.Failf("mtu", name, fmt.Sprintf("run `ovlmgr trace %s %s`", from, to), "not even a %d-byte packet crosses", MinProbe)
	case r.Largest < r.Configured:
		rep.Check = diagnose.Failf("mtu", name, fix, "only packets up to %d bytes cross, but %s's MTU is %d: larger ones are dropped silently (underlay limit %d)", r.Largest, side.Name, r.Configured, rep.Limit)
	case rep.Limit > 0 && r.Configured > rep.Limit:
		rep.Check = diagnose.Failf("mtu", name, fmt.Sprintf("set the container MTU to %d (network --mtu, or node join --path-mtu)", rep.Limit),
			"packets up to %s's MTU %d cross now, but the underlay path%s carries only %d: larger container packets will be dropped", side.Name, r.Configured, rep.underlayNote(), rep.Limit)
	default:
		rep.Check = diagnose.Okf("mtu", name, "packets up to the configured MTU %d cross (underlay limit %d%s)", r.Configured, rep.Limit, rep.underlayNote())
	}
	return rep, nil
}

// underlayNote describes the measured underlay path, if any.
func (r *MTUReport) underlayNote() string {
	if r.Underlay == nil {
		return ""
	}
	u := r.Underlay
	return fmt.Sprintf("; underlay path %s -> %s (node %s) via %s: %d bytes", u.From, u.To, u.Node, u.Device, u.Largest)
}

// probeUnderlay measures the largest outer packet from this node (encap IP
// from on device dev, in netnsPath) to the encap IP of chassis peer: DF
// ICMP echoes between the nodes' own addresses, so routers and WAN links on
// the way are measured, not assumed.
func probeUnderlay(ctx context.Context, sb client.Client, netnsPath, dev, from, peer string) (*UnderlayPath, error) {
	chs, err := chassis.List(ctx, sb)
	if err != nil {
		return nil, fmt.Errorf("underlay path to node %s: %w", peer, err)
	}
	to := ""
	for _, ch := range chs {
		if ch.Name == peer {
			for _, e := range ch.Encaps {
				if e.Type == "geneve" {
					to = e.IP
				}
			}
		}
	}
	ip, err := netip.ParseAddr(to)
	if err != nil {
		return nil, fmt.Errorf("underlay path to node %s: no geneve encap IP in SB", peer)
	}
	r, err := Prober{NetNS: netnsPath, IfName: dev}.Largest(ctx, ip)
	if err != nil {
		return nil, fmt.Errorf("underlay path to node %s: %w", peer, err)
	}
	return &UnderlayPath{Node: peer, From: from, To: to, Device: dev, Largest: r.Largest}, nil
}
