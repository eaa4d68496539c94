package port_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestValidateIPRefused: a requested IP the network cannot give is
// ErrIPRefused (callers branch on it), with the text naming why.
func TestValidateIPRefused(t *testing.T) {
	sub := netip.MustParsePrefix("198.19.0.0/24")
	gw := netip.MustParseAddr("198.19.0.1")
	for ip, want := range map[string]string{
		"198.19.1.5":   "ip 198.19.1.5: outside network subnet 198.19.0.0/24",
		"198.19.0.0":   "ip 198.19.0.0: is the network address of 198.19.0.0/24",
		"198.19.0.255": "ip 198.19.0.255: is the broadcast address of 198.19.0.0/24",
		"198.19.0.1":   "ip 198.19.0.1: is the gateway of 198.19.0.0/24",
		"fd00::5":      "ip fd00::5: not IPv4 (an IPv6 address is requested as the IPv6 address)",
	} {
		s := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, IP: netip.MustParseAddr(ip)}
		err := s.Validate()
		if !errors.Is(err, port.ErrIPRefused) || err.Error() != want {
			t.Errorf("Validate with ip %s = %v; want ErrIPRefused %q", ip, err, want)
		}
	}
	sub6 := netip.MustParsePrefix("fd00:198:19::/64")
	for ip6, want := range map[string]string{
		"fd00:198:18::5": "ipv6 fd00:198:18::5: outside network IPv6 subnet fd00:198:19::/64",
		"fd00:198:19::":  "ipv6 fd00:198:19::: is the subnet-router anycast address of fd00:198:19::/64",
		"fd00:198:19::1": "ipv6 fd00:198:19::1: is the gateway of fd00:198:19::/64",
		"fd00:198:19::9": `ipv6 fd00:198:19::9: network "web" is dual-stack: request its IPv4 address too (or neither)`,
	} {
		s := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, Subnet6: sub6, IP6: netip.MustParseAddr(ip6)}
		if err := s.Validate(); !errors.Is(err, port.ErrIPRefused) || err.Error() != want {
			t.Errorf("Validate with ipv6 %s = %v; want ErrIPRefused %q", ip6, err, want)
		}
	}
	if s := (port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, IP6: netip.MustParseAddr("fd00::9"), IP: netip.MustParseAddr("198.19.0.9")}); !errors.Is(s.Validate(), port.ErrIPRefused) {
		t.Errorf("ipv6 on a network without IPv6 accepted")
	}
	both := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, Subnet6: sub6,
		IP: netip.MustParseAddr("198.19.0.9"), IP6: netip.MustParseAddr("fd00:198:19::9")}
	if err := both.Validate(); err != nil {
		t.Errorf("Validate with both families = %v; want nil", err)
	}
	only6 := port.Spec{Network: "six", Node: "n1", Container: "c1", IfName: "eth0", Subnet6: sub6, IP6: netip.MustParseAddr("fd00:198:19::9")}
	if err := only6.Validate(); err != nil {
		t.Errorf("Validate with ipv6 on an IPv6-only network = %v; want nil", err)
	}
	ok := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, IP: netip.MustParseAddr("198.19.0.9")}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate with ip 198.19.0.9 = %v; want nil", err)
	}
}
