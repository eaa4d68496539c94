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
		"fd00::5":      "ip fd00::5: only IPv4 is supported",
	} {
		s := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, IP: netip.MustParseAddr(ip)}
		err := s.Validate()
		if !errors.Is(err, port.ErrIPRefused) || err.Error() != want {
			t.Errorf("Validate with ip %s = %v; want ErrIPRefused %q", ip, err, want)
		}
	}
	ok := port.Spec{Network: "web", Node: "n1", Container: "c1", IfName: "eth0", Subnet: sub, Gateway: gw, IP: netip.MustParseAddr("198.19.0.9")}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate with ip 198.19.0.9 = %v; want nil", err)
	}
}
