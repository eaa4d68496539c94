package network

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/names"
)

// Limits enforced on a Spec.
const (
	MaxNameLen = names.MaxLen
	MinPrefix  = 8  // largest IPv4 subnet: /8
	MaxPrefix  = 30 // smallest IPv4 subnet: /30 (two hosts)
	MinMTU     = 576
	MaxMTU     = 9000
	// IPv6Bits is the only accepted prefix length of a dual-stack IPv6 subnet
	// (OVN's other_config:ipv6_prefix is a /64 for SLAAC-style addresses).
	IPv6Bits = 64
)

// ValidateName checks a network name (names.Validate): it matches
// [A-Za-z0-9][A-Za-z0-9_.-]* (the CNI network-name rule) and has at most
// 63 characters. field names the input in the error (e.g. "name").
func ValidateName(field, name string) error { return names.Validate(field, name) }

// plan is a validated, normalised Spec.
type plan struct {
	name    string
	subnet  netip.Prefix
	gateway netip.Addr
	exclude []addrRange // as given, normalised
	mtu     int
	labels  map[string]string
	ipv6    netip.Prefix // zero when the network has no IPv6
	// gateway6 is the router's IPv6 address on the network (the /64's ::1),
	// valid when ipv6 is.
	gateway6 netip.Addr
	domain   string // DNS domain, normalised
	names    bool   // containers get DNS names
}

// v4 reports whether the network has an IPv4 subnet (it may be IPv6-only).
func (p *plan) v4() bool { return p.subnet.IsValid() }

// Gateway6 is the IPv6 gateway of a network's /64: its ::1 address, which
// OVN's EUI-64 IPAM never hands out (EUI-64 interface IDs have ff:fe in the
// middle). Routers give it to their port on the network.
func Gateway6(prefix netip.Prefix) netip.Addr {
	b := prefix.Masked().Addr().As16()
	b[15] = 1
	return netip.AddrFrom16(b)
}

type addrRange struct{ from, to netip.Addr }

func (r addrRange) String() string {
	if r.from == r.to {
		return r.from.String()
	}
	return r.from.String() + ".." + r.to.String()
}

func (r addrRange) size() int64 {
	return int64(ip4ToUint(r.to)) - int64(ip4ToUint(r.from)) + 1
}

// validate checks s and returns the normalised plan. Errors
// (*names.FieldError) name the Spec field, the value and what is allowed.
func validate(s Spec) (*plan, error) {
	if err := ValidateName("name", s.Name); err != nil {
		return nil, err
	}
	p := &plan{name: s.Name, mtu: s.MTU}
	d, err := dns.NormalizeDomain(s.Domain)
	if err != nil {
		return nil, err
	}
	p.domain = d
	switch s.ContainerNames {
	case "", "on":
		p.names = true
	case dns.ContainerNamesOff:
	default:
		return nil, names.Bad("container names", s.ContainerNames, "want on or off")
	}
	if s.Subnet == "" && s.IPv6Subnet == "" {
		return nil, names.Missing("subnet", "want an IPv4 CIDR a.b.c.d/%d to /%d, an IPv6 /64, or both", MinPrefix, MaxPrefix)
	}
	if s.Subnet != "" {
		sub, err := parseSubnet(s.Subnet)
		if err != nil {
			return nil, err
		}
		p.subnet = sub
	}
	if s.IPv6Subnet != "" {
		v6, err := ParseIPv6Subnet(s.IPv6Subnet)
		if err != nil {
			return nil, err
		}
		p.ipv6, p.gateway6 = v6, Gateway6(v6)
	}
	if !p.v4() {
		// IPv6-only: the gateway is the /64's ::1, exclusions are IPv4 ranges.
		if s.Gateway != "" {
			return nil, names.Bad("gateway", s.Gateway, "an IPv6-only network's gateway is always %s (its /64's ::1); set none", p.gateway6)
		}
		if len(s.Exclude) > 0 {
			return nil, names.Bad("exclude", s.Exclude[0], "an IPv6-only network hands out EUI-64 addresses of the containers' MACs: nothing to exclude")
		}
	} else {
		sub := p.subnet
		first, last := hostRange(sub)
		if s.Gateway == "" {
			p.gateway = first
		} else {
			gw, err := netip.ParseAddr(s.Gateway)
			if err != nil || !gw.Is4() {
				return nil, names.Bad("gateway", s.Gateway, "not an IPv4 address (want a host address inside %s, %s to %s; the IPv6 gateway is always the /64's ::1)", sub, first, last)
			}
			if !sub.Contains(gw) || gw.Less(first) || last.Less(gw) {
				return nil, names.Bad("gateway", s.Gateway, "must be a host address inside %s (%s to %s; not the network or broadcast address)", sub, first, last)
			}
			p.gateway = gw
		}
		for _, e := range s.Exclude {
			r, err := parseRange(e, sub)
			if err != nil {
				return nil, err
			}
			p.exclude = append(p.exclude, r)
		}
	}
	if s.MTU != 0 && (s.MTU < MinMTU || s.MTU > MaxMTU) {
		return nil, names.Bad("mtu", s.MTU, "out of range (want %d to %d, or unset for the node's MTU minus the Geneve overhead)", MinMTU, MaxMTU)
	}
	if err := validateRouting(s); err != nil {
		return nil, err
	}
	p.labels = map[string]string{}
	for k, v := range s.Labels {
		if !names.ValidLabelKey(k) {
			return nil, names.Bad("label", k+"="+v, "key must match %s, at most %d characters", names.LabelKeyRule, MaxNameLen)
		}
		if len(v) > 253 || strings.ContainsAny(v, "\n\r\t") {
			return nil, names.Bad("label", k+"="+v, "value must be at most 253 characters without tabs or newlines")
		}
		p.labels[k] = v
	}
	return p, nil
}

// parseSubnet accepts an IPv4 CIDR of /8 to /30 with no host bits set.
// Host bits are refused rather than silently cleared: a user who typed
// 198.19.0.5/24 may have meant a /32-ish address or another subnet.
func parseSubnet(s string) (netip.Prefix, error) {
	want := fmt.Sprintf("want a.b.c.d/%d to /%d", MinPrefix, MaxPrefix)
	pfx, err := netip.ParsePrefix(s)
	if err != nil || !pfx.Addr().Is4() {
		if err == nil && pfx.Addr().Is6() {
			return netip.Prefix{}, names.Bad("subnet", s, "not IPv4 (%s); an IPv6 /64 goes in {ipv6 subnet}", want)
		}
		return netip.Prefix{}, names.Bad("subnet", s, "not a valid IPv4 CIDR (%s)", want)
	}
	if pfx.Bits() < MinPrefix || pfx.Bits() > MaxPrefix {
		return netip.Prefix{}, names.Bad("subnet", s, "prefix length /%d out of range (%s)", pfx.Bits(), want)
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, names.Bad("subnet", s, "host bits set, did you mean %s", pfx.Masked())
	}
	return pfx, nil
}

// ParseIPv6Subnet accepts an IPv6 /64 with no host bits set (OVN's
// other_config:ipv6_prefix is a /64: northd hands out EUI-64 addresses).
// Errors are *names.FieldError on field "ipv6 subnet".
func ParseIPv6Subnet(s string) (netip.Prefix, error) {
	v6, err := netip.ParsePrefix(s)
	if err != nil || !v6.Addr().Is6() || v6.Addr().Is4In6() {
		return netip.Prefix{}, names.Bad("ipv6 subnet", s, "not a valid IPv6 CIDR (want an IPv6 /64, e.g. fd00:198:19::/64)")
	}
	if v6.Bits() != IPv6Bits {
		return netip.Prefix{}, names.Bad("ipv6 subnet", s, "IPv6 subnet must be a /64 (OVN's IPAM gives EUI-64 addresses in a /64), got /%d", v6.Bits())
	}
	if v6.Masked() != v6 {
		return netip.Prefix{}, names.Bad("ipv6 subnet", s, "host bits set, did you mean %s", v6.Masked())
	}
	return v6, nil
}

// parseRange parses "IP" or "IP..IP" inside sub.
func parseRange(s string, sub netip.Prefix) (addrRange, error) {
	allowed := fmt.Sprintf("want IP or IP..IP inside %s", sub)
	a, b, isRange := strings.Cut(s, "..")
	if !isRange {
		b = a
	}
	from, err1 := netip.ParseAddr(a)
	to, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil || !from.Is4() || !to.Is4() {
		return addrRange{}, names.Bad("exclude", s, "not an IPv4 address or range (%s)", allowed)
	}
	if !sub.Contains(from) || !sub.Contains(to) {
		return addrRange{}, names.Bad("exclude", s, "outside the subnet (%s)", allowed)
	}
	if to.Less(from) {
		return addrRange{}, names.Bad("exclude", s, "range end before its start (%s with start <= end)", allowed)
	}
	return addrRange{from, to}, nil
}

// hostRange returns the first and last host address of an IPv4 subnet
// (network and broadcast excluded).
func hostRange(p netip.Prefix) (first, last netip.Addr) {
	n := ip4ToUint(p.Addr())
	size := uint32(1) << (32 - p.Bits())
	return uintToIP4(n + 1), uintToIP4(n + size - 2)
}

func ip4ToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToIP4(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// excludeIPs is the other_config:exclude_ips value: the gateway and every
// --exclude item, space separated, in OVN's "IP IP..IP" syntax.
func (p *plan) excludeIPs() string {
	if !p.v4() {
		return ""
	}
	items := []string{p.gateway.String()}
	for _, r := range p.exclude {
		items = append(items, r.String())
	}
	return strings.Join(items, " ")
}

// free approximates the addresses OVN's IPAM can still hand out: usable hosts
// minus the gateway, the excluded addresses (overlaps between items and with
// the gateway are counted once) and the given number of ports.
func free(subnet netip.Prefix, gateway netip.Addr, exclude []addrRange, ports int) int {
	first, last := hostRange(subnet)
	rs := append([]addrRange{{gateway, gateway}}, exclude...)
	// clip to the host range and merge
	var clipped []addrRange
	for _, r := range rs {
		if r.from.Less(first) {
			r.from = first
		}
		if last.Less(r.to) {
			r.to = last
		}
		if !r.to.Less(r.from) {
			clipped = append(clipped, r)
		}
	}
	sort.Slice(clipped, func(i, j int) bool { return clipped[i].from.Less(clipped[j].from) })
	var used int64
	var cur *addrRange
	for i := range clipped {
		r := clipped[i]
		if cur != nil && ip4ToUint(r.from) <= ip4ToUint(cur.to)+1 {
			if cur.to.Less(r.to) {
				cur.to = r.to
			}
			continue
		}
		if cur != nil {
			used += cur.size()
		}
		cur = &r
	}
	if cur != nil {
		used += cur.size()
	}
	hosts := int64(ip4ToUint(last)) - int64(ip4ToUint(first)) + 1
	n := hosts - used - int64(ports)
	if n < 0 {
		n = 0
	}
	return int(n)
}

// parseExcludeIPs parses an other_config:exclude_ips value back into ranges;
// items that do not parse are skipped (the row may have been edited by hand).
func parseExcludeIPs(s string) []addrRange {
	var out []addrRange
	for _, f := range strings.Fields(s) {
		a, b, isRange := strings.Cut(f, "..")
		if !isRange {
			b = a
		}
		from, err1 := netip.ParseAddr(a)
		to, err2 := netip.ParseAddr(b)
		if err1 == nil && err2 == nil && from.Is4() && to.Is4() && !to.Less(from) {
			out = append(out, addrRange{from, to})
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
