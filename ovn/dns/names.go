package dns

import (
	"fmt"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"net"
	"strings"
)

// DefaultDomain is the DNS domain of a network that sets none.
const DefaultDomain = "ovl"

// KeyDomain is the Logical_Switch external_ids key holding a network's DNS
// domain (`net create --domain`).
const KeyDomain = "ovlmgr.io/domain"

// KeyContainerNames on a network's Logical_Switch external_ids is "off"
// when its containers get no DNS names (`net create --container-names
// off`): ADD, DEL and GC then never change the network's DNS rows. Service
// names stay. Absent (or anything else): on.
const KeyContainerNames = "ovlmgr.io/container-names"

// ContainerNamesOff is KeyContainerNames' value that turns names off.
const ContainerNamesOff = "off"

// ContainerNames reports whether the network's containers get DNS names.
func (n *Network) ContainerNames() bool {
	return n.Switch == nil || n.Switch.ExternalIDs[KeyContainerNames] != ContainerNamesOff
}

// NormalizeDomain checks a DNS domain ("ovl", "corp.example") and returns it
// lower-cased without a trailing dot. Empty means DefaultDomain.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return DefaultDomain, nil
	}
	if len(d) > 200 {
		return "", names.Bad("domain", d, "longer than 200 characters")
	}
	for _, l := range strings.Split(d, ".") {
		if !validLabel(l) {
			return "", names.Bad("domain", d, "label %q: allowed are 1-63 of a-z, 0-9 and '-', not starting or ending with '-'", l)
		}
	}
	return d, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// ValidateName checks a short host or service name: one DNS label.
func ValidateName(name string) error {
	if !validLabel(name) {
		return fmt.Errorf("name %q: must be one DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'", name)
	}
	return nil
}

// IDName is the fallback host name of a container: its ID's first 12 characters.
func IDName(containerID string) string {
	n := sanitize(containerID)
	if len(n) > 12 {
		n = strings.TrimRight(n[:12], "-")
	}
	return n
}

// HostName picks a container's short DNS name, in order: the first usable
// entry of aliases (the CNI `aliases` capability), k8sPodName (K8S_POD_NAME),
// else IDName(containerID). Names are lower-cased; characters outside
// a-z, 0-9 and '-' become '-'; they are cut to 63 characters.
func HostName(aliases []string, k8sPodName, containerID string) string {
	for _, a := range aliases {
		if n := sanitize(a); n != "" {
			return n
		}
	}
	if n := sanitize(k8sPodName); n != "" {
		return n
	}
	return IDName(containerID)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := b.String()
	if len(n) > 63 {
		n = n[:63]
	}
	return strings.Trim(n, "-")
}

// Zone is the DNS zone of a network: "<network>.<domain>", lower-cased.
func Zone(network, domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return strings.ToLower(network) + "." + domain
}

// FQDN is "<name>.<network>.<domain>", the name a container or service
// resolves under (without the trailing dot; OVN stores names that way).
func FQDN(name, network, domain string) string {
	return strings.ToLower(name) + "." + Zone(network, domain)
}

// ReverseName is the PTR query name of ip: "4.3.2.1.in-addr.arpa" or the
// nibble form under ip6.arpa.
func ReverseName(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", v4[3], v4[2], v4[1], v4[0])
	}
	ip16 := ip.To16()
	if ip16 == nil {
		return ""
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := len(ip16) - 1; i >= 0; i-- {
		b.WriteByte(hex[ip16[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[ip16[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// addrValue is the OVN record value for a name: its addresses separated by
// spaces (OVN answers A from the IPv4 ones and AAAA from the IPv6 ones).
func addrValue(ips []net.IP) string {
	s := make([]string, 0, len(ips))
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return strings.Join(s, " ")
}
