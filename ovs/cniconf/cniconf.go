// Package cniconf is what ovlmgr knows of the CNI spec and shares between
// the plugin (which versions it answers) and the CLI (the conflist it
// writes for a network): the supported spec versions and the conflist.
package cniconf

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// SupportedVersions returns the CNI spec versions ovlmgr-cni speaks.
func SupportedVersions() []string { return []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} }

// DefaultConfListVersion is the cniVersion of generated conflists: the
// newest version that the CNI libraries of podman 4.x and containerd
// 1.6/1.7 read (they reject 1.1.0 results with "unsupported CNI result
// version" and do not know the 1.1 "cniVersions" list).
const DefaultConfListVersion = "1.0.0"

// ErrVersion says a requested cniVersion is not one ovlmgr-cni speaks.
type ErrVersion struct{ Version string }

func (e *ErrVersion) Error() string {
	return fmt.Sprintf("cniVersion %q: want one of %s", e.Version, strings.Join(SupportedVersions(), ", "))
}

// ConfList returns the conflist JSON for the ovlmgr network name at CNI
// spec version ver ("" = DefaultConfListVersion); mtu 0 leaves the MTU to
// the network and the node. A 1.1.0 conflist also lists every version the
// plugin speaks in "cniVersions", so a 1.1-aware runtime picks the newest
// it knows. The plugin entry declares the capabilities the plugin honours:
// ips, mac, aliases (DNS names) and portMappings (published ports).
func ConfList(name, ver string, mtu int) ([]byte, error) {
	if ver == "" {
		ver = DefaultConfListVersion
	}
	if !slices.Contains(SupportedVersions(), ver) {
		return nil, &ErrVersion{Version: ver}
	}
	p := map[string]interface{}{
		"type":         "ovlmgr-cni",
		"network":      name,
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true, "portMappings": true},
	}
	if mtu != 0 {
		p["mtu"] = mtu
	}
	l := map[string]interface{}{
		"cniVersion": ver,
		"name":       name,
		"plugins":    []interface{}{p},
	}
	if ver == "1.1.0" {
		l["cniVersions"] = SupportedVersions()
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("conflist for network %q: %w", name, err)
	}
	return append(b, '\n'), nil
}
