// Package owner holds the external_ids keys that mark OVN Northbound rows as
// ovlmgr's. Listing, ownership checks and garbage collection are queries on
// these keys, never name parsing.
package owner

import (
	"crypto/sha256"
	"encoding/hex"
)

// External_ids keys stamped on every row ovlmgr creates.
const (
	KeyOwner     = "ovlmgr.io/owner"
	KeyKind      = "ovlmgr.io/kind"
	KeyName      = "ovlmgr.io/name"
	KeyContainer = "ovlmgr.io/container"
	KeyIfName    = "ovlmgr.io/ifname"
	KeyNode      = "ovlmgr.io/node"
	KeyNetwork   = "ovlmgr.io/network"
	KeyRouter    = "ovlmgr.io/router"
	// KeyVIP is a service's "IP:PORT/proto" on its Load_Balancer; ovn/port
	// reads it too (a requested IP must not be a service VIP).
	KeyVIP = "ovlmgr.io/vip"
	// KeyGateway is a network switch's gateway address (written by
	// ovn/network; read by dns, service and trace).
	KeyGateway = "ovlmgr.io/gateway"
	// KeyPort is the container's Logical_Switch_Port name on the rows made
	// for it (floating IPs, published ports): they go when the port goes.
	KeyPort = "ovlmgr.io/port"
	// KeyWrittenBy is who wrote the row through the control service
	// ("node:NAME" or "admin:NAME", from the client's certificate; see
	// ovn/control and docs/security.md).
	KeyWrittenBy = "ovlmgr.io/written-by"
	// LabelPrefix prefixes user labels (--label k=v) stored in external_ids.
	LabelPrefix = "ovlmgr.io/label."
)

// Owner is the value of KeyOwner on every row we create.
const Owner = "ovlmgr"

// Kinds of rows, the value of KeyKind.
const (
	KindNetwork = "network"
	KindRouter  = "router"
	KindPort    = "port"
	KindPolicy  = "policy"
	KindService = "service"
	KindDNS     = "dns"
	// KindFIP is a floating IP (a dnat_and_snat NAT row); KindPublished a
	// published container port (a Load_Balancer on the router).
	KindFIP       = "fip"
	KindPublished = "published-port"
)

// IDs returns the owner external_ids for a row of the given kind and name.
// Extra key/value pairs (for example KeyContainer) are added from extra.
func IDs(kind, name string, extra map[string]string) map[string]string {
	ids := map[string]string{KeyOwner: Owner, KeyKind: kind, KeyName: name}
	for k, v := range extra {
		ids[k] = v
	}
	return ids
}

// Owned reports whether external_ids mark a row as ours and of the given kind.
// An empty kind matches any kind.
func Owned(ids map[string]string, kind string) bool {
	if ids[KeyOwner] != Owner {
		return false
	}
	return kind == "" || ids[KeyKind] == kind
}

// Selector returns the external_ids subset that every row of kind carries;
// use it with an "includes" condition to list our rows of that kind.
func Selector(kind string) map[string]string {
	return map[string]string{KeyOwner: Owner, KeyKind: kind}
}

// Labels extracts user labels from external_ids.
func Labels(ids map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range ids {
		if len(k) > len(LabelPrefix) && k[:len(LabelPrefix)] == LabelPrefix {
			out[k[len(LabelPrefix):]] = v
		}
	}
	return out
}

// InterfaceHash is the hex SHA-256 of "containerID/ifName": the identity of
// a container interface on one node. The host-side veth name
// (ovs/port.HostIfName) and the legacy NB port name (ovn/port.LegacyName)
// derive from it, so both halves compute it without importing each other.
func InterfaceHash(containerID, ifName string) string {
	h := sha256.Sum256([]byte(containerID + "/" + ifName))
	return hex.EncodeToString(h[:])
}
