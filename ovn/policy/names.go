package policy

import (
	"fmt"
	"strings"
)

// PortGroupName returns the Port_Group name of network's ports. OVN port
// group (and address set) names must match [a-zA-Z_.][a-zA-Z_.0-9]*, so the
// network name is escaped deterministically and reversibly: "ovl_" followed
// by the name with '_' written "_5f" and '-' written "_2d" (e.g. "front-end"
// -> "ovl_front_2dend"). OVN also derives the address sets
// "$<name>_ip4"/"$<name>_ip6" holding the group's port addresses.
func PortGroupName(network string) string { return "ovl_" + escape(network) }

// AddressSetName returns the Address_Set name holding policy's CIDR sources.
func AddressSetName(policy string) string { return "ovlpol_" + escape(policy) }

// AddressSetName6 returns the Address_Set name holding policy's IPv6 CIDR
// sources (OVN matches an address set against one family: ip4.src or
// ip6.src).
func AddressSetName6(policy string) string { return "ovlpol6_" + escape(policy) }

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		r := s[i]
		if r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteByte(r)
		} else {
			fmt.Fprintf(&b, "_%02x", r)
		}
	}
	return b.String()
}
