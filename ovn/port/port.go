// Package port manages the OVN Northbound Logical_Switch_Port of a container
// interface: its stable name from container ID + ifname, its owner
// external_ids, and its address from OVN's own IPAM (ovn-northd fills
// dynamic_addresses; we then pin the address as static so it stays reserved).
package port

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// NamePrefix starts the name of every container port.
const NamePrefix = "ovl-"

// Options keys set on every container port.
const (
	OptRequestedChassis = "requested-chassis"
	OptIfaceIDVer       = "iface-id-ver"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound     = errors.New("port not found")
	ErrExists       = errors.New("port already exists")
	ErrNoAddress    = errors.New("no free address")
	ErrAddressInUse = errors.New("address in use")
	// ErrMACRefused is a requested MAC that cannot be used: malformed,
	// all-zero, multicast, derived from another IP, or held by another
	// container or a router port.
	ErrMACRefused      = errors.New("mac refused")
	ErrNetworkNotFound = errors.New("network not found")
	ErrNotOwned        = errors.New("not an ovlmgr port")
	// ErrNoIPAM means ovn-northd did not answer the address request in time.
	ErrNoIPAM = errors.New("no address assigned in time")
)

// ErrIPRefused: a requested IP cannot be used on the network (not IPv4,
// outside the subnet, its network, broadcast or gateway address).
var ErrIPRefused = errors.New("ip refused")

// ipRefusedError describes why; it is ErrIPRefused.
type ipRefusedError struct{ msg string }

func (e *ipRefusedError) Error() string        { return e.msg }
func (e *ipRefusedError) Is(target error) bool { return target == ErrIPRefused }

// Hash is owner.InterfaceHash, the hex SHA-256 of "containerID/ifName".
// The host-side veth name (ovs/port.HostIfName) derives from it: it only
// has to be unique on one node.
func Hash(containerID, ifName string) string {
	return owner.InterfaceHash(containerID, ifName)
}

// Name returns the Logical_Switch_Port name of a container interface:
// "ovl-" + 16 hex digits of SHA-256("node/containerID/ifName"). A port
// belongs to (node, container ID, ifname): the same container ID and
// ifname on two nodes are two ports, so an ADD on one node can never find,
// move or delete the other node's port. Stable, so DEL finds it from the
// node's system-id, the container ID and the ifname alone.
func Name(node, containerID, ifName string) string {
	h := sha256.Sum256([]byte(node + "/" + containerID + "/" + ifName))
	return NamePrefix + hex.EncodeToString(h[:])[:16]
}

// LegacyName is the name ports had before the node was part of it
// ("ovl-" + 16 hex digits of Hash). DEL and GC still remove such a port,
// but only when its ovlmgr.io/node is the node asking.
func LegacyName(containerID, ifName string) string {
	return NamePrefix + Hash(containerID, ifName)[:16]
}

// MACFromIP returns the MAC a container interface gets when none is
// requested: 0a:58 followed by the four bytes of its IPv4 address (as
// ovn-kubernetes does). An address that is reused keeps its MAC, so peers'
// ARP caches stay right when a container is replaced at the same address.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}

// MACFromIP6 is the MAC of an IPv6 address with no IPv4 one to derive it
// from (an IPv6-only network's router port and nameserver placeholder):
// 0a:59 followed by four bytes of the address's FNV-1a hash. Addresses are
// unique per network, so the MAC is unique on its segment.
func MACFromIP6(ip netip.Addr) net.HardwareAddr {
	b := ip.As16()
	h := fnv.New32a()
	h.Write(b[:])
	v := h.Sum32()
	return net.HardwareAddr{0x0a, 0x59, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// isDerivedMAC reports whether mac has the 0a:58 prefix of MACFromIP.
func isDerivedMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x0a && mac[1] == 0x58
}

// eui64 is the address in prefix's /64 with the modified EUI-64 interface
// identifier of mac (what ovn-northd derives for dual-stack switches).
func eui64(prefix netip.Addr, mac net.HardwareAddr) netip.Addr {
	a := prefix.As16()
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// Spec describes the port to create.
type Spec struct {
	// Network is the ovlmgr network, i.e. the Logical_Switch name.
	Network string
	// Subnet and Gateway of the network: for messages and checks of a requested IP.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Node is the chassis name (the node's Open_vSwitch external_ids:system-id).
	Node      string
	Container string
	IfName    string
	// MAC is optional; default MACFromIP of the port's IPv4 address.
	MAC net.HardwareAddr
	// IP is optional: a requested IPv4 address; zero means OVN's IPAM picks one.
	IP netip.Addr
	// Subnet6 is the network's IPv6 /64 (invalid without IPv6); IP6 an
	// optional requested IPv6 address in it. On a dual-stack network a
	// requested IP6 needs a requested IP, and a requested IP without IP6
	// gets the EUI-64 address of its MAC.
	Subnet6 netip.Prefix
	IP6     netip.Addr
	// Labels become external_ids ovlmgr.io/label.<k>.
	Labels map[string]string
}

// Port is a container port as stored in NB.
type Port struct {
	UUID      string     `json:"uuid"`
	Name      string     `json:"name"`
	Network   string     `json:"network"`
	Node      string     `json:"node"`
	Container string     `json:"container"`
	IfName    string     `json:"ifname"`
	MAC       string     `json:"mac"`
	IP        netip.Addr `json:"ip"`
	// IPv6 is set on dual-stack networks (ovn-northd's EUI-64 address from
	// the switch's ipv6_prefix), for ports whose address OVN assigned.
	IPv6   netip.Addr        `json:"ipv6,omitzero"`
	Up     bool              `json:"up"`
	Labels map[string]string `json:"labels,omitempty"`
	// IfaceIDVer is the port's options:iface-id-ver, which the OVS
	// Interface's external_ids:iface-id-ver must match for ovn-controller
	// to bind it: the container ID, or a pool port's token (pool.go).
	IfaceIDVer string `json:"ifaceIdVer,omitempty"`
	// WrittenBy is who last wrote the port through the control service
	// (owner.KeyWrittenBy: "node:n1", "admin:alice"); empty when written
	// straight to the NB.
	WrittenBy string `json:"writtenBy,omitempty"`
	// Created is when the port was made or claimed from a pool
	// (KeyCreated); zero for ports made by older versions.
	Created time.Time `json:"created,omitzero"`
}

// IPs are the port's addresses: IPv4 and IPv6, whichever it has (an
// IPv6-only network's port has only IPv6).
func (p *Port) IPs() []net.IP {
	var ips []net.IP
	if p.IP.IsValid() {
		ips = append(ips, p.IP.AsSlice())
	}
	if p.IPv6.IsValid() {
		ips = append(ips, p.IPv6.AsSlice())
	}
	return ips
}

// CheckMAC refuses a requested MAC (nil: none requested) that cannot be a
// container's: not 6 bytes, all-zero, or multicast/broadcast. It reads
// nothing; Create also refuses MACs in use and MACs derived from other
// addresses. Errors wrap ErrMACRefused.
func CheckMAC(mac net.HardwareAddr) error {
	if mac == nil {
		return nil
	}
	switch {
	case len(mac) != 6:
		return fmt.Errorf("mac %q: %w: want a 6-byte unicast MAC such as 02:00:c6:13:00:0a", mac, ErrMACRefused)
	case bytes.Equal(mac, make([]byte, 6)):
		return fmt.Errorf("mac %s: %w: all-zero; want a unicast MAC such as 02:00:c6:13:00:0a", mac, ErrMACRefused)
	case mac[0]&1 == 1:
		return fmt.Errorf("mac %s: %w: multicast/broadcast; want a unicast MAC (first byte even) such as 02:00:c6:13:00:0a", mac, ErrMACRefused)
	}
	return nil
}

// checkDerivedMAC refuses a requested MAC in the 0a:58 range of MACFromIP
// unless it is exactly the MAC derived from the requested ip: any other
// 0a:58 MAC is (or will be) the MAC of whichever container or router port
// has that address. The holder, if any, is named.
func checkDerivedMAC(ctx context.Context, nb client.Client, mac net.HardwareAddr, ip netip.Addr) error {
	if mac == nil || !isDerivedMAC(mac) || (ip.Is4() && bytes.Equal(mac, MACFromIP(ip))) {
		return nil
	}
	owner := netip.AddrFrom4([4]byte{mac[2], mac[3], mac[4], mac[5]})
	holder, err := MACHolder(ctx, nb, mac.String())
	if err != nil {
		return err
	}
	if holder == "" {
		holder = "whichever container gets address " + owner.String()
	}
	return fmt.Errorf("mac %s: %w: in the 0a:58:xx:xx:xx:xx range of MACs derived from addresses, it belongs to %s; request another MAC, or request ip %s together with it",
		mac, ErrMACRefused, holder, owner)
}

// Validate checks the spec and returns one error naming the field.
func (s *Spec) Validate() error {
	switch {
	case s.Network == "":
		return errors.New("network: empty")
	case s.Node == "":
		return errors.New("node: empty (the node's Open_vSwitch external_ids:system-id)")
	case s.Container == "":
		return errors.New("container ID: empty")
	case s.IfName == "":
		return errors.New("ifname: empty")
	}
	if err := CheckMAC(s.MAC); err != nil {
		return err
	}
	if s.IP.IsValid() {
		if !s.IP.Is4() {
			return &ipRefusedError{msg: fmt.Sprintf("ip %s: not IPv4 (an IPv6 address is requested as the IPv6 address)", s.IP)}
		}
		if s.Subnet.IsValid() {
			if err := checkInSubnet(s.IP, s.Subnet, s.Gateway); err != nil {
				return &ipRefusedError{msg: fmt.Sprintf("ip %s: %v", s.IP, err)}
			}
		}
	}
	if s.IP6.IsValid() {
		switch {
		case !s.IP6.Is6() || s.IP6.Is4In6():
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: not an IPv6 address", s.IP6)}
		case !s.Subnet6.IsValid():
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: network %q has no IPv6 subnet", s.IP6, s.Network)}
		case !s.Subnet6.Contains(s.IP6):
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: outside network IPv6 subnet %s", s.IP6, s.Subnet6)}
		case s.IP6 == s.Subnet6.Masked().Addr():
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: is the subnet-router anycast address of %s", s.IP6, s.Subnet6)}
		case s.IP6 == gateway6(s.Subnet6):
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: is the gateway of %s", s.IP6, s.Subnet6)}
		case s.Subnet.IsValid() && !s.IP.IsValid():
			return &ipRefusedError{msg: fmt.Sprintf("ipv6 %s: network %q is dual-stack: request its IPv4 address too (or neither)", s.IP6, s.Network)}
		}
	}
	return nil
}

// static reports whether the spec requests addresses (no IPAM wait).
func (s *Spec) static() bool { return s.IP.IsValid() || s.IP6.IsValid() }

// gateway6 is the router's address in an IPv6 /64: its ::1.
func gateway6(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	b[15] = 1
	return netip.AddrFrom16(b)
}

// macFromIP6 is the MAC of an IPv6-only port without a requested MAC: the
// MAC of its EUI-64 interface identifier when it has one (ff:fe in the
// middle: northd's addresses), else MACFromIP6.
func macFromIP6(ip netip.Addr) net.HardwareAddr {
	b := ip.As16()
	if b[11] == 0xff && b[12] == 0xfe {
		return net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}
	}
	return MACFromIP6(ip)
}

func checkInSubnet(ip netip.Addr, subnet netip.Prefix, gw netip.Addr) error {
	subnet = subnet.Masked()
	if !subnet.Contains(ip) {
		return fmt.Errorf("outside network subnet %s", subnet)
	}
	if ip == subnet.Addr() {
		return fmt.Errorf("is the network address of %s", subnet)
	}
	if ip == lastAddr(subnet) && subnet.Bits() < 31 {
		return fmt.Errorf("is the broadcast address of %s", subnet)
	}
	if gw.IsValid() && ip == gw {
		return fmt.Errorf("is the gateway of %s", subnet)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= uint32((uint64(1) << host) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Create creates the port in one transaction (guarded: no port with that
// name yet, the network's switch exists), then, unless an IP was requested,
// waits for ovn-northd to assign an address (an event on that one row) and
// pins it as static together with port_security "MAC IP". ctx bounds the
// wait. Any failure removes the port again.
func Create(ctx context.Context, nb client.Client, s Spec) (*Port, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("create port: %w", err)
	}
	name := Name(s.Node, s.Container, s.IfName)
	if err := checkDerivedMAC(ctx, nb, s.MAC, s.IP); err != nil {
		return nil, fmt.Errorf("create port (container %s, ifname %s) in network %q: %w", short(s.Container), s.IfName, s.Network, err)
	}
	mac := s.MAC
	if mac == nil && s.IP.IsValid() {
		mac = MACFromIP(s.IP)
	} else if mac == nil && s.IP6.IsValid() {
		mac = macFromIP6(s.IP6)
	}
	ids := owner.IDs(owner.KindPort, name, map[string]string{
		owner.KeyContainer: s.Container,
		owner.KeyIfName:    s.IfName,
		owner.KeyNode:      s.Node,
		owner.KeyNetwork:   s.Network,
		KeyCreated:         strconv.FormatInt(time.Now().Unix(), 10),
	})
	if mac != nil {
		ids[KeyMAC] = mac.String()
	}
	for k, v := range s.Labels {
		ids[owner.LabelPrefix+k] = v
	}
	// Without a requested MAC, ovn-northd picks a placeholder MAC with the
	// address; the port is pinned with MACFromIP(address) before anything
	// uses it.
	dyn := "dynamic"
	if mac != nil {
		dyn = mac.String() + " dynamic"
	}
	lsp := &nbdb.LogicalSwitchPort{
		UUID:        "newport",
		Name:        name,
		Addresses:   []string{dyn},
		Options:     map[string]string{OptRequestedChassis: s.Node, OptIfaceIDVer: s.Container},
		ExternalIDs: ids,
	}
	ip6 := s.IP6
	if s.static() {
		if !ip6.IsValid() && s.Subnet6.IsValid() {
			ip6 = eui64(s.Subnet6.Addr(), mac)
		}
		var f []string
		if s.IP.IsValid() {
			f = append(f, s.IP.String())
		}
		if ip6.IsValid() {
			f = append(f, ip6.String())
		}
		a := mac.String() + " " + strings.Join(f, " ")
		lsp.Addresses, lsp.PortSecurity = []string{a}, []string{a}
	}
	what := fmt.Sprintf("create port %s (container %s, ifname %s) in network %q", name, short(s.Container), s.IfName, s.Network)

	var w *watch.Watch
	if !s.static() {
		// Watch the port's row before it exists: ovn-northd's write of
		// dynamic_addresses then reaches the watch as a plain update.
		// A monitor sent as the connection broke goes again to the new leader.
		err := dbconn.Retry(ctx, func(bool) error {
			var err error
			w, err = watch.Start(ctx, nb, dynamicTables(name))
			return dbconn.AsLost(err)
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		defer w.Close()
	}
	var err error
	again := false
	for attempt := 0; ; attempt++ {
		err = dbconn.Retry(ctx, func(lost bool) error {
			again = again || lost
			err := insert(ctx, nb, s, lsp)
			if again && errors.Is(err, ErrExists) {
				// The insert whose reply was lost committed: the name
				// derives from node, container and ifname, so the port
				// is this interface's.
				return nil
			}
			return err
		})
		if !errors.Is(err, errRetry) || attempt >= 50 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p := &Port{Name: name, Network: s.Network, Node: s.Node, Container: s.Container, IfName: s.IfName,
		IP: s.IP, Labels: s.Labels, IfaceIDVer: s.Container}
	if s.static() {
		p.MAC, p.IPv6 = mac.String(), ip6
		got, err := Get(ctx, nb, name)
		if err != nil {
			return nil, undone(ctx, nb, name, fmt.Errorf("%s: %w", what, err))
		}
		p.UUID = got.UUID
		return p, nil
	}
	uuid, ip, ip6, err := waitDynamic(ctx, w, name, s)
	w.Close()
	if err != nil {
		return nil, undone(ctx, nb, name, fmt.Errorf("%s: %w", what, err))
	}
	switch {
	case mac == nil && ip.IsValid():
		// The MAC derived from the address, and on dual-stack the IPv6
		// address of the same /64 with that MAC's EUI-64: both unique
		// because the IPv4 address is.
		mac = MACFromIP(ip)
		if ip6.IsValid() {
			ip6 = eui64(ip6, mac)
		}
	case mac == nil:
		// IPv6-only: northd's MAC (unique in its MAC pool), whose EUI-64
		// northd's address is.
		mac = macFromIP6(ip6)
	}
	p.UUID, p.IP, p.IPv6, p.MAC = uuid, ip, ip6, mac.String()
	var f []string
	if ip.IsValid() {
		f = append(f, ip.String())
	}
	if ip6.IsValid() {
		f = append(f, ip6.String())
	}
	a := mac.String() + " " + strings.Join(f, " ")
	pin := &nbdb.LogicalSwitchPort{UUID: uuid, Addresses: []string{a}, PortSecurity: []string{a}}
	ops, err := nb.Where(pin).Update(pin, &pin.Addresses, &pin.PortSecurity)
	if err == nil {
		ops = append(ops, dbops.AddPairs(nbdb.LogicalSwitchPortTable, dbops.ByUUID(uuid), "external_ids", map[string]string{KeyMAC: mac.String()}))
		// Setting the same columns again is harmless: retry a lost reply.
		err = dbconn.Retry(ctx, func(bool) error { _, err := dbconn.Transact(ctx, nb, ops...); return err })
	}
	if err != nil {
		return nil, undone(ctx, nb, name, fmt.Errorf("%s: pin address %s: %w", what, ip, err))
	}
	return p, nil
}

// External_ids keys of container ports besides the owner keys.
const (
	// KeyMAC is the port's MAC: the in-use check for requested MACs selects
	// on it (addresses cannot be matched by MAC alone).
	KeyMAC = "ovlmgr.io/mac"
	// KeyCreated is the port's creation time (Unix seconds): node GC leaves
	// ports younger than its grace period alone (an ADD may be under way).
	KeyCreated = "ovlmgr.io/created"
)

var errRetry = errors.New("concurrent change, retry")

// insert runs the create transaction: [absent guard, switch-exists guard,
// (static IP: ports-unchanged guard), insert, mutate switch ports].
func insert(ctx context.Context, nb client.Client, s Spec, lsp *nbdb.LogicalSwitchPort, extra ...ovsdb.Operation) error {
	probe := &nbdb.LogicalSwitchPort{Name: lsp.Name}
	absent, err := dbconn.Absent(nb, probe, &probe.Name)
	if err != nil {
		return err
	}
	ls := &nbdb.LogicalSwitch{Name: s.Network}
	timeout := 0
	exists, err := nb.WhereAll(ls, model.Condition{Field: &ls.Name, Function: ovsdb.ConditionEqual, Value: s.Network}).
		Wait(ovsdb.WaitConditionEqual, &timeout, ls, &ls.Name)
	if err != nil {
		return err
	}
	ops := []ovsdb.Operation{absent, exists[0]}
	if s.static() {
		guard, err := checkStaticFree(ctx, nb, s)
		if err != nil {
			return err
		}
		ops = append(ops, guard)
	}
	// Extra guards of the caller (the pool's "unchanged" wait), evaluated
	// before the insert: errRetry when one fails.
	extraAt := len(ops)
	ops = append(ops, extra...)
	ins, err := nb.Create(lsp)
	if err != nil {
		return err
	}
	// Requested MACs must be free. A MAC derived from the address needs no
	// guard: it is unique in the network because the address is (and may
	// repeat on another router's overlapping subnet, a separate L2 domain).
	macAt := len(ops)
	if s.MAC != nil && !isDerivedMAC(s.MAC) {
		ops = append(ops, macGuards(s.MAC.String())...)
	}
	ops = append(ops, ins...)
	sw := &nbdb.LogicalSwitch{Name: s.Network}
	mut, err := nb.WhereAll(sw, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: s.Network}).
		Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{lsp.UUID}})
	if err != nil {
		return err
	}
	ops = append(ops, mut...)
	// Join the network's port group (policies, isolation) in the same transaction.
	ops = append(ops, policy.JoinOps(s.Network, lsp.UUID)...)
	_, err = dbconn.Transact(ctx, nb, ops...)
	switch {
	case err == nil:
		return nil
	case len(extra) > 0 && dbconn.FailedWait(err, extraAt):
		return errRetry
	case dbconn.FailedWait(err, 0):
		return fmt.Errorf("%w (delete it first)", ErrExists)
	case dbconn.FailedWait(err, 1):
		return fmt.Errorf("network %q: %w", s.Network, ErrNetworkNotFound)
	case s.static() && dbconn.FailedWait(err, 2):
		return errRetry
	case dbconn.FailedWait(err, macAt), dbconn.FailedWait(err, macAt+1):
		m := s.MAC.String()
		holder, herr := MACHolder(ctx, nb, m)
		if herr != nil {
			return fmt.Errorf("mac %s: %w: in use (%v)", m, ErrMACRefused, herr)
		}
		return fmt.Errorf("mac %s: %w: in use by %s", m, ErrMACRefused, holder)
	}
	if _, denied := dbconn.IsPermission(err); denied && s.MAC != nil {
		// Through the control service, which refuses a MAC in use before
		// the guards above run: the same answer as theirs.
		if holder, herr := MACHolder(ctx, nb, s.MAC.String()); herr == nil && holder != "" {
			return fmt.Errorf("mac %s: %w: in use by %s", s.MAC, ErrMACRefused, holder)
		}
	}
	return err
}

// macGuards are wait operations that fail the transaction when a
// container port (by its KeyMAC) or a router port already has mac. Both
// are conditional on the server: nothing is read into this process.
func macGuards(mac string) []ovsdb.Operation {
	return []ovsdb.Operation{
		dbops.None(nbdb.LogicalSwitchPortTable, []ovsdb.Condition{
			dbops.Includes(map[string]string{KeyMAC: mac}), dbops.Equal("type", ""),
		}, "type", ""),
		dbops.None(nbdb.LogicalRouterPortTable, []ovsdb.Condition{dbops.Equal("mac", mac)}, "mac", mac),
	}
}

// MACHolder names what holds mac: "container port P (container C, node
// N, network W)" or "router port P", or "" when nothing does. It selects
// on KeyMAC and on Logical_Router_Port.mac (conditional selects).
func MACHolder(ctx context.Context, nb client.Client, mac string) (string, error) {
	tx := dbops.NewTx(nb)
	lspq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(map[string]string{KeyMAC: mac})},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.Name, &p.ExternalIDs} })
	lrpq := dbops.Query(tx, []ovsdb.Condition{dbops.Equal("mac", mac)},
		func(p *nbdb.LogicalRouterPort) []any { return []any{&p.Name} })
	if err := tx.Transact(ctx); err != nil {
		return "", fmt.Errorf("find the holder of mac %s: %w", mac, err)
	}
	lsps, err := lspq.Rows()
	if err != nil {
		return "", err
	}
	for _, l := range lsps {
		return fmt.Sprintf("container port %s (container %s, node %s, network %s)", l.Name,
			short(l.ExternalIDs[owner.KeyContainer]), l.ExternalIDs[owner.KeyNode], l.ExternalIDs[owner.KeyNetwork]), nil
	}
	lrps, err := lrpq.Rows()
	if err != nil {
		return "", err
	}
	for _, r := range lrps {
		return fmt.Sprintf("router port %s", r.Name), nil
	}
	return "", nil
}

// checkStaticFree refuses a requested IP that is excluded or used by a port
// of the switch, and returns a wait operation that fails the transaction
// if the switch's ports changed since it looked.
func checkStaticFree(ctx context.Context, nb client.Client, s Spec) (ovsdb.Operation, error) {
	var sws []nbdb.LogicalSwitch
	probe := &nbdb.LogicalSwitch{Name: s.Network}
	if err := dbconn.Select(ctx, nb, probe, &sws, model.Condition{Field: &probe.Name, Function: ovsdb.ConditionEqual, Value: s.Network}); err != nil {
		return ovsdb.Operation{}, err
	}
	if len(sws) == 0 {
		return ovsdb.Operation{}, fmt.Errorf("network %q: %w", s.Network, ErrNetworkNotFound)
	}
	sw := sws[0]
	if sub, err := netip.ParsePrefix(sw.OtherConfig["subnet"]); err == nil && s.IP.IsValid() {
		if err := checkInSubnet(s.IP, sub, s.Gateway); err != nil {
			return ovsdb.Operation{}, &ipRefusedError{msg: fmt.Sprintf("ip %s: %v", s.IP, err)}
		}
	} else if s.IP.IsValid() && sw.OtherConfig["subnet"] == "" {
		return ovsdb.Operation{}, &ipRefusedError{msg: fmt.Sprintf("ip %s: network %q is IPv6-only", s.IP, s.Network)}
	}
	if s.IP.IsValid() && InExcludeIPs(sw.OtherConfig["exclude_ips"], s.IP) {
		if svc, err := vipHolder(ctx, nb, s.IP); err != nil {
			return ovsdb.Operation{}, err
		} else if svc != "" {
			return ovsdb.Operation{}, fmt.Errorf("ip %s: the VIP of service %s, reserved in network %q while the service exists: %w", s.IP, svc, s.Network, ErrAddressInUse)
		}
		return ovsdb.Operation{}, fmt.Errorf("ip %s: excluded from network %q (exclude_ips %q): %w", s.IP, s.Network, sw.OtherConfig["exclude_ips"], ErrAddressInUse)
	}
	if s.IP6.IsValid() {
		// exclude_ips is IPv4 only: a requested IPv6 address is checked
		// against the network's services (VIP, health-check source).
		if who, err := ipv6Holder(ctx, nb, s.Network, s.IP6); err != nil {
			return ovsdb.Operation{}, err
		} else if who != "" {
			return ovsdb.Operation{}, fmt.Errorf("ipv6 %s: %s in network %q: %w", s.IP6, who, s.Network, ErrAddressInUse)
		}
	}
	if len(sw.Ports) > 0 {
		lsps, err := switchPorts(ctx, nb, sw)
		if err != nil {
			return ovsdb.Operation{}, err
		}
		for _, l := range lsps {
			if l.Name == Name(s.Node, s.Container, s.IfName) {
				return ovsdb.Operation{}, fmt.Errorf("%w (delete it first)", ErrExists)
			}
			for _, ip := range portAddrs(l) {
				if ip == s.IP || ip == s.IP6 {
					return ovsdb.Operation{}, fmt.Errorf("ip %s: used by port %s in network %q: %w", ip, l.Name, s.Network, ErrAddressInUse)
				}
			}
		}
	}
	timeout := 0
	g := &nbdb.LogicalSwitch{UUID: sw.UUID, Ports: sw.Ports}
	if g.Ports == nil {
		g.Ports = []string{}
	}
	w, err := nb.Where(g).Wait(ovsdb.WaitConditionEqual, &timeout, g, &g.Ports)
	if err != nil {
		return ovsdb.Operation{}, err
	}
	return w[0], nil
}

// switchPorts reads the name, addresses and external_ids of every port of
// sw (one transaction of selects by UUID).
func switchPorts(ctx context.Context, nb client.Client, sw nbdb.LogicalSwitch) ([]*nbdb.LogicalSwitchPort, error) {
	tx := dbops.NewTx(nb)
	qs := make([]*dbops.Result[nbdb.LogicalSwitchPort], 0, len(sw.Ports))
	for _, u := range sw.Ports {
		qs = append(qs, dbops.Query(tx, dbops.ByUUID(u), func(p *nbdb.LogicalSwitchPort) []any {
			return []any{&p.UUID, &p.Name, &p.Addresses, &p.DynamicAddresses, &p.ExternalIDs}
		}))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read ports of network %q: %w", sw.Name, err)
	}
	var out []*nbdb.LogicalSwitchPort
	for _, q := range qs {
		lsps, err := q.Rows()
		if err != nil {
			return nil, err
		}
		out = append(out, lsps...)
	}
	return out, nil
}

// portAddrs are the IP addresses in a port's addresses and
// dynamic_addresses.
func portAddrs(l *nbdb.LogicalSwitchPort) []netip.Addr {
	addrs := append([]string{}, l.Addresses...)
	if l.DynamicAddresses != nil {
		addrs = append(addrs, *l.DynamicAddresses)
	}
	var out []netip.Addr
	for _, a := range addrs {
		for _, f := range strings.Fields(a) {
			if ip, err := netip.ParseAddr(f); err == nil {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// Holders returns, of ips, those a port of network holds now (in its
// addresses or dynamic_addresses), with the port's name; pool ports do not
// count (no names or service backends are theirs until a container claims
// them). It reads every port of the network: for the rare paths that must
// not act on an address that has gone to someone else (a DEL from
// prevResult after the port was deleted). A missing network holds nothing.
func Holders(ctx context.Context, nb client.Client, network string, ips []netip.Addr) (map[netip.Addr]string, error) {
	var sws []nbdb.LogicalSwitch
	probe := &nbdb.LogicalSwitch{Name: network}
	if err := dbconn.Select(ctx, nb, probe, &sws, model.Condition{Field: &probe.Name, Function: ovsdb.ConditionEqual, Value: network}); err != nil {
		return nil, fmt.Errorf("find who holds %v on network %q: %w", ips, network, err)
	}
	out := map[netip.Addr]string{}
	if len(sws) == 0 || len(sws[0].Ports) == 0 {
		return out, nil
	}
	lsps, err := switchPorts(ctx, nb, sws[0])
	if err != nil {
		return nil, fmt.Errorf("find who holds %v: %w", ips, err)
	}
	for _, l := range lsps {
		if owner.Owned(l.ExternalIDs, KindPool) {
			continue
		}
		for _, a := range portAddrs(l) {
			for _, ip := range ips {
				if a == ip.Unmap() {
					out[ip] = l.Name
				}
			}
		}
	}
	return out, nil
}

// vipHolder returns "NETWORK/NAME" of an ovlmgr service whose VIP is ip, or "".
func vipHolder(ctx context.Context, nb client.Client, ip netip.Addr) (string, error) {
	lbs, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindService))},
		func(lb *nbdb.LoadBalancer) []any { return []any{&lb.ExternalIDs} })
	if err != nil {
		return "", fmt.Errorf("read services: %w", err)
	}
	for _, lb := range lbs {
		ids := lb.ExternalIDs
		v, _, _ := strings.Cut(ids[owner.KeyVIP], "/")
		if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr() == ip {
			return fmt.Sprintf("%q (network %s)", ids[owner.KeyName], ids[owner.KeyNetwork]), nil
		}
	}
	return "", nil
}

// keyHCSource is service.KeyHCSource (ovn/service imports this package).
const keyHCSource = "ovlmgr.io/hc-source"

// ipv6Holder names the service of network whose VIP or health-check source
// is ip, or "".
func ipv6Holder(ctx context.Context, nb client.Client, network string, ip netip.Addr) (string, error) {
	lbs, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindService)),
		dbops.Includes(map[string]string{owner.KeyNetwork: network})},
		func(lb *nbdb.LoadBalancer) []any { return []any{&lb.ExternalIDs} })
	if err != nil {
		return "", fmt.Errorf("read services of network %q: %w", network, err)
	}
	for _, lb := range lbs {
		ids := lb.ExternalIDs
		v, _, _ := strings.Cut(ids[owner.KeyVIP], "/")
		if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr() == ip {
			return fmt.Sprintf("the VIP of service %q", ids[owner.KeyName]), nil
		}
		if ids[keyHCSource] == ip.String() {
			return fmt.Sprintf("the health-check source of service %q", ids[owner.KeyName]), nil
		}
	}
	return "", nil
}

// InExcludeIPs reports whether ip is in an other_config:exclude_ips value
// ("IP" and "IP1..IP2" items, space separated).
func InExcludeIPs(list string, ip netip.Addr) bool {
	for _, f := range strings.Fields(list) {
		lo, hi, isRange := strings.Cut(f, "..")
		a, err := netip.ParseAddr(lo)
		if err != nil {
			continue
		}
		if !isRange {
			if a == ip {
				return true
			}
			continue
		}
		b, err := netip.ParseAddr(hi)
		if err == nil && a.Compare(ip) <= 0 && ip.Compare(b) <= 0 {
			return true
		}
	}
	return false
}

// dynamicTables is what waitDynamic watches: the port's name and
// dynamic_addresses.
func dynamicTables(name string) []watch.Table {
	m := &nbdb.LogicalSwitchPort{Name: name}
	return []watch.Table{{
		Model:  m,
		Cond:   []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}},
		Fields: []interface{}{&m.Name, &m.DynamicAddresses},
	}}
}

// waitDynamic waits on w (started with dynamicTables before the port was
// created) until ovn-northd fills dynamic_addresses: "MAC IP" is success,
// "MAC" alone means the subnet is full.
func waitDynamic(ctx context.Context, w *watch.Watch, name string, s Spec) (string, netip.Addr, netip.Addr, error) {
	start := time.Now()
	var uuid string
	var ip, ip6 netip.Addr
	var full bool
	err := w.Wait(ctx, func(tc *cache.TableCache) (bool, error) {
		for u, r := range tc.Table(nbdb.LogicalSwitchPortTable).Rows() {
			l := r.(*nbdb.LogicalSwitchPort)
			if l.Name != name {
				continue
			}
			uuid = u
			if l.DynamicAddresses == nil {
				return false, nil
			}
			for _, f := range strings.Fields(*l.DynamicAddresses)[1:] {
				if a, err := netip.ParseAddr(f); err == nil {
					if a.Is4() {
						ip = a
					} else if a.Is6() {
						ip6 = a
					}
				}
			}
			if !ip.IsValid() && (!ip6.IsValid() || s.Subnet.IsValid()) {
				full = true
			}
			return true, nil
		}
		if uuid != "" {
			return false, errors.New("port deleted while waiting for its address")
		}
		return false, nil
	})
	cause := context.Cause(ctx)
	switch {
	case err != nil && cause != nil && !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled):
		// Cut short with a reason (the plugin's check that OVN can answer).
		return "", ip, ip6, fmt.Errorf("no address from ovn-northd after %s: %w", time.Since(start).Round(time.Millisecond), cause)
	case err != nil && ctx.Err() != nil:
		return "", ip, ip6, fmt.Errorf("%w: ovn-northd assigned no address within %s (is ovn-northd running and connected to NB and SB?)", ErrNoIPAM, time.Since(start).Round(time.Millisecond))
	case err != nil:
		return "", ip, ip6, err
	case full:
		sub := s.Subnet.String()
		if !s.Subnet.IsValid() {
			sub = "its subnet"
		}
		return "", ip, ip6, fmt.Errorf("%w in %s (%s)", ErrNoAddress, s.Network, sub)
	}
	return uuid, ip, ip6, nil
}

// UndoBudget bounds Undo: its attempts and the pauses between them, on a
// clock of its own (the failed action's deadline has usually passed).
const UndoBudget = 5 * time.Second

// LeftoverError is an NB port that a failed action could not remove again.
// It is returned joined with the action's own error (errors.As finds it).
type LeftoverError struct {
	Port string
	Err  error // why the delete failed
}

func (e *LeftoverError) Error() string {
	return fmt.Sprintf("the NB port %s could not be removed: %v; `ovlmgr port detach` or CNI GC removes it", e.Port, e.Err)
}

func (e *LeftoverError) Unwrap() error { return e.Err }

// Undo deletes the port named name after a failed action, retrying with
// backoff (each attempt at most a second) for up to UndoBudget, whatever
// ctx's deadline. It returns nil or a *LeftoverError.
func Undo(ctx context.Context, nb client.Client, name string) error {
	base := context.WithoutCancel(ctx)
	deadline := time.Now().Add(UndoBudget)
	pause := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(base, min(time.Second, time.Until(deadline)))
		err := Delete(actx, nb, name)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrNotOwned) || time.Until(deadline) < pause {
			return &LeftoverError{Port: name, Err: err}
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// undone returns err, joined with Undo's *LeftoverError when the port stays.
func undone(ctx context.Context, nb client.Client, name string, err error) error {
	if uerr := Undo(ctx, nb, name); uerr != nil {
		return fmt.Errorf("%w, and %w", err, uerr)
	}
	return err
}

// createdAt reads KeyCreated (zero when missing or malformed).
func createdAt(ids map[string]string) time.Time {
	sec, err := strconv.ParseInt(ids[KeyCreated], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Get returns the port named name (an indexed select, no cache).
func Get(ctx context.Context, nb client.Client, name string) (*Port, error) {
	var lsps []nbdb.LogicalSwitchPort
	m := &nbdb.LogicalSwitchPort{Name: name}
	if err := dbconn.Select(ctx, nb, m, &lsps, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return nil, fmt.Errorf("get port %s: %w", name, err)
	}
	if len(lsps) == 0 {
		return nil, fmt.Errorf("port %s: %w", name, ErrNotFound)
	}
	if !owner.Owned(lsps[0].ExternalIDs, owner.KindPort) {
		return nil, fmt.Errorf("port %s: %w (no %s=%s external_id)", name, ErrNotOwned, owner.KeyOwner, owner.Owner)
	}
	return fromRow(&lsps[0]), nil
}

func fromRow(l *nbdb.LogicalSwitchPort) *Port {
	p := &Port{
		UUID: l.UUID, Name: l.Name,
		Network:    l.ExternalIDs[owner.KeyNetwork],
		Node:       l.ExternalIDs[owner.KeyNode],
		Container:  l.ExternalIDs[owner.KeyContainer],
		IfName:     l.ExternalIDs[owner.KeyIfName],
		Up:         l.Up != nil && *l.Up,
		IfaceIDVer: l.Options[OptIfaceIDVer],
		WrittenBy:  l.ExternalIDs[owner.KeyWrittenBy],
		Created:    createdAt(l.ExternalIDs),
	}
	if lb := owner.Labels(l.ExternalIDs); len(lb) > 0 {
		p.Labels = lb
	}
	addrs := append([]string{}, l.Addresses...)
	if l.DynamicAddresses != nil {
		addrs = append(addrs, *l.DynamicAddresses)
	}
	for _, a := range addrs {
		f := strings.Fields(a)
		if len(f) >= 1 && p.MAC == "" {
			if _, err := net.ParseMAC(f[0]); err == nil {
				p.MAC = f[0]
			}
		}
		for _, x := range f[min(1, len(f)):] {
			if ip, err := netip.ParseAddr(x); err == nil {
				if ip.Is4() && !p.IP.IsValid() {
					p.IP = ip
				} else if ip.Is6() && !p.IPv6.IsValid() {
					p.IPv6 = ip
				}
			}
		}
	}
	return p
}

// Delete removes the port named name and its reference from its switch in
// one transaction. A missing port is not an error; a port without our owner
// key is refused.
//
// A delete whose reply is lost runs again (dbconn.Retry): it is idempotent.
func Delete(ctx context.Context, nb client.Client, name string) error {
	return dbconn.Retry(ctx, func(bool) error { return deletePort(ctx, nb, name) })
}

func deletePort(ctx context.Context, nb client.Client, name string) error {
	ops, err := DeleteOps(ctx, nb, name)
	if err != nil || len(ops) == 0 {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return fmt.Errorf("delete port %s: %w", name, err)
	}
	return nil
}

// DeleteOps reads the port named name and returns the operations that
// delete it (its reference from its switch: the row goes with it), for a
// caller that deletes more in the same transaction; none when there is no
// such port. A port without our owner key is refused (ErrNotOwned).
func DeleteOps(ctx context.Context, nb client.Client, name string) ([]ovsdb.Operation, error) {
	var lsps []nbdb.LogicalSwitchPort
	m := &nbdb.LogicalSwitchPort{Name: name}
	if err := dbconn.Select(ctx, nb, m, &lsps, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return nil, fmt.Errorf("delete port %s: %w", name, err)
	}
	var ops []ovsdb.Operation
	for _, l := range lsps {
		if !owner.Owned(l.ExternalIDs, owner.KindPort) {
			return nil, fmt.Errorf("delete port %s: %w (refusing to touch it)", name, ErrNotOwned)
		}
		sw := &nbdb.LogicalSwitch{}
		mut, err := nb.WhereAll(sw, model.Condition{Field: &sw.Ports, Function: ovsdb.ConditionIncludes, Value: []string{l.UUID}}).
			Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{l.UUID}})
		if err != nil {
			return nil, fmt.Errorf("delete port %s: %w", name, err)
		}
		ops = append(ops, mut...)
	}
	return ops, nil
}

// Filter selects ports in List; empty fields match all.
type Filter struct {
	Network   string
	Node      string
	Container string
}

// List returns our container ports matching f, sorted by network and name.
// It selects on the owner external_ids (no cache), for the CLI and GC.
func List(ctx context.Context, nb client.Client, f Filter) ([]*Port, error) {
	sel := owner.Selector(owner.KindPort)
	if f.Network != "" {
		sel[owner.KeyNetwork] = f.Network
	}
	if f.Node != "" {
		sel[owner.KeyNode] = f.Node
	}
	if f.Container != "" {
		sel[owner.KeyContainer] = f.Container
	}
	var lsps []nbdb.LogicalSwitchPort
	m := &nbdb.LogicalSwitchPort{}
	if err := dbconn.Select(ctx, nb, m, &lsps, model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: sel}); err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	out := make([]*Port, 0, len(lsps))
	for i := range lsps {
		out = append(out, fromRow(&lsps[i]))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
