// Package mtu owns the MTU arithmetic of OVN's Geneve overlay: what the
// encapsulation costs on an IPv4 or IPv6 underlay, and so the largest
// container MTU an underlay link carries. Node diagnosis, the CNI path and
// the lab all take these numbers from here.
package mtu

import "net/netip"

const (
	// GeneveV4 is what OVN's Geneve encapsulation costs over an IPv4
	// underlay: outer IPv4 20 + UDP 8 + Geneve 8 + OVN's option 8 + the
	// inner Ethernet header 14.
	GeneveV4 = 58
	// GeneveV6 is the same over an IPv6 underlay (outer IPv6 header 40).
	GeneveV6 = 78
	// IPsecESP is what OVN's tunnel encryption (NB_Global ipsec, ESP in
	// transport mode with AES-GCM, as ovs-monitor-ipsec sets it up) adds to
	// every tunnel packet: SPI 4 + sequence 4 + IV 8 + ICV 16 + trailer up
	// to 5 (padding to 4 bytes, pad length, next header) = 37, plus 8 for
	// UDP encapsulation when a NAT sits between nodes, rounded up to 46,
	// the figure ovn-kubernetes reserves.
	IPsecESP = 46
)

// GeneveOverhead returns what the encapsulation costs when the tunnel's
// outer header is of underlay's family (the node's ovn-encap-ip).
func GeneveOverhead(underlay netip.Addr) int {
	if underlay.Is6() {
		return GeneveV6
	}
	return GeneveV4
}

// Overhead returns what a tunnel packet costs on top of the container's
// packet: Geneve for underlay's family, plus ESP when the deployment
// encrypts its tunnels.
func Overhead(underlay netip.Addr, encrypted bool) int {
	o := GeneveOverhead(underlay)
	if encrypted {
		o += IPsecESP
	}
	return o
}

// Container returns the largest container MTU that an underlay link of
// MTU underlayMTU carries without fragmenting, for tunnels from underlay,
// encrypted or not.
func Container(underlayMTU int, underlay netip.Addr, encrypted bool) int {
	return underlayMTU - Overhead(underlay, encrypted)
}
