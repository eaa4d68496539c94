package trace

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Endpoint is one end of a trace: a container port, or for a destination
// possibly a bare IP no container holds.
type Endpoint struct {
	Input string `json:"input"`
	// Port is the Logical_Switch_Port name ("" for a bare IP).
	Port      string     `json:"port,omitempty"`
	Name      string     `json:"name,omitempty"` // DNS name of the container, if any
	Container string     `json:"container,omitempty"`
	IfName    string     `json:"ifname,omitempty"`
	Network   string     `json:"network,omitempty"`
	Router    string     `json:"router,omitempty"`
	MAC       string     `json:"mac,omitempty"`
	IP        netip.Addr `json:"ip"`
	// IP6 is the port's IPv6 address (networks with an IPv6 /64).
	IP6 netip.Addr `json:"ip6,omitzero"`
	// Node is the node the port was created for (requested chassis).
	Node string `json:"node,omitempty"`
	// BoundOn is the chassis the port is bound on in SB ("" = none).
	BoundOn string `json:"boundOn,omitempty"`
	lsp     *nbdb.LogicalSwitchPort
}

// Label names the endpoint in ovlmgr terms: "container web-1" or "198.19.1.9".
func (e *Endpoint) Label() string {
	switch {
	case e.Name != "":
		return "container " + e.Name
	case e.Container != "":
		c := e.Container
		if len(c) > 12 {
			c = c[:12]
		}
		return "container " + c
	case e.Port != "":
		return "port " + e.Port
	}
	return e.IP.String()
}

// portsIndex is our container ports, read once per trace.
type portsIndex struct {
	ports []*nbdb.LogicalSwitchPort
}

func readPorts(ctx context.Context, nb client.Client) (*portsIndex, error) {
	lsps, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindPort, nil)}, func(m *nbdb.LogicalSwitchPort) []any {
		return []any{&m.UUID, &m.Name, &m.Addresses, &m.DynamicAddresses, &m.PortSecurity, &m.ExternalIDs, &m.Options, &m.Up}
	})
	if err != nil {
		return nil, fmt.Errorf("read container ports: %w", err)
	}
	sort.Slice(lsps, func(i, j int) bool { return lsps[i].Name < lsps[j].Name })
	return &portsIndex{ports: lsps}, nil
}

// macIP returns the first "MAC IP" of a port (static, else dynamic).
func macIP(p *nbdb.LogicalSwitchPort) (string, netip.Addr) {
	cands := append([]string{}, p.Addresses...)
	if p.DynamicAddresses != nil {
		cands = append(cands, *p.DynamicAddresses)
	}
	for _, a := range cands {
		f := strings.Fields(a)
		if len(f) < 2 || f[1] == "dynamic" {
			continue
		}
		for _, s := range f[1:] {
			if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
				return f[0], ip
			}
		}
	}
	return "", netip.Addr{}
}

// ip6Of returns a port's IPv6 address (static, else dynamic), if any.
func ip6Of(p *nbdb.LogicalSwitchPort) netip.Addr {
	cands := append([]string{}, p.Addresses...)
	if p.DynamicAddresses != nil {
		cands = append(cands, *p.DynamicAddresses)
	}
	for _, a := range cands {
		f := strings.Fields(a)
		for _, s := range f[min(1, len(f)):] {
			if ip, err := netip.ParseAddr(s); err == nil && ip.Is6() {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// macOf is a port's MAC (its first address entry's).
func macOf(p *nbdb.LogicalSwitchPort) string {
	cands := append([]string{}, p.Addresses...)
	if p.DynamicAddresses != nil {
		cands = append(cands, *p.DynamicAddresses)
	}
	for _, a := range cands {
		if f := strings.Fields(a); len(f) >= 2 && f[1] != "dynamic" {
			return f[0]
		}
	}
	return ""
}

func fromLSP(input string, p *nbdb.LogicalSwitchPort) *Endpoint {
	ids := p.ExternalIDs
	e := &Endpoint{Input: input, Port: p.Name, Container: ids[owner.KeyContainer], IfName: ids[owner.KeyIfName],
		Network: ids[owner.KeyNetwork], Node: ids[owner.KeyNode], lsp: p}
	if e.Node == "" {
		e.Node = p.Options["requested-chassis"]
	}
	e.MAC, e.IP = macIP(p)
	e.IP6 = ip6Of(p)
	if e.MAC == "" {
		e.MAC = macOf(p) // IPv6-only
	}
	return e
}

// resolve finds what input names: an IPv4 address, a port name, a
// container DNS name ("web-1", "web-1.web", FQDN), or a container ID prefix.
func resolve(idx *portsIndex, input string, names map[string]dnsRecord) ([]*Endpoint, error) {
	if ip, err := netip.ParseAddr(input); err == nil {
		var out []*Endpoint
		for _, p := range idx.ports {
			if _, pip := macIP(p); pip == ip || ip6Of(p) == ip {
				out = append(out, fromLSP(input, p))
			}
		}
		if len(out) == 0 {
			return []*Endpoint{{Input: input, IP: ip}}, nil
		}
		return out, nil
	}
	for _, p := range idx.ports {
		if p.Name == input {
			return []*Endpoint{fromLSP(input, p)}, nil
		}
	}
	// DNS names: "<name>.<network>.<domain>" keys.
	var out []*Endpoint
	seen := map[string]bool{}
	in := strings.ToLower(strings.TrimSuffix(input, "."))
	for fqdn, rec := range names {
		if fqdn != in && !strings.HasPrefix(fqdn, in+".") {
			continue
		}
		for _, a := range dns.ParseValue(rec.value) {
			ip, _ := netip.AddrFromSlice(a)
			ip = ip.Unmap()
			for _, p := range idx.ports {
				if _, pip := macIP(p); pip == ip && !seen[p.Name] && p.ExternalIDs[owner.KeyNetwork] == rec.network {
					seen[p.Name] = true
					e := fromLSP(input, p)
					e.Name = strings.SplitN(fqdn, ".", 2)[0]
					out = append(out, e)
				}
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if len(input) >= 4 {
		for _, p := range idx.ports {
			if strings.HasPrefix(p.ExternalIDs[owner.KeyContainer], input) {
				out = append(out, fromLSP(input, p))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: no container, port or IP of that name (give a container name, container ID prefix of 4+ characters, port name or IPv4 address)", input)
	}
	return out, nil
}

// dnsRecord is one name of a network's DNS row.
type dnsRecord struct{ network, value string }

// dnsNames reads every name record of our networks: FQDN -> addresses.
func dnsNames(ctx context.Context, nb client.Client) (map[string]dnsRecord, error) {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindDNS, nil)}, func(m *nbdb.DNS) []any { return []any{&m.UUID, &m.Records, &m.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("read DNS names: %w", err)
	}
	out := map[string]dnsRecord{}
	for _, r := range rows {
		for k, v := range r.Records {
			if !strings.HasSuffix(k, ".arpa") {
				out[k] = dnsRecord{network: r.ExternalIDs[owner.KeyNetwork], value: v}
			}
		}
	}
	return out, nil
}

// netInfo is what the trace needs of a network.
type netInfo struct {
	Name   string
	Router string
	Subnet netip.Prefix
	// Gateway is the router's address on this network (when on a router).
	Gateway netip.Addr
	// RouterMAC is the MAC of the router's port on this network.
	RouterMAC string
	// Subnet6 and Gateway6 are the network's IPv6 /64 and its gateway.
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
}

// readNetwork reads network name and its router port MAC.
func readNetwork(ctx context.Context, nb client.Client, name string) (*netInfo, error) {
	lss, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(name)}, func(m *nbdb.LogicalSwitch) []any { return []any{&m.UUID, &m.Name, &m.ExternalIDs, &m.OtherConfig} })
	if err != nil {
		return nil, fmt.Errorf("read network %q: %w", name, err)
	}
	for _, ls := range lss {
		if !owner.Owned(ls.ExternalIDs, owner.KindNetwork) {
			continue
		}
		ni := &netInfo{Name: name, Router: ls.ExternalIDs[owner.KeyRouter]}
		ni.Subnet, _ = netip.ParsePrefix(ls.OtherConfig["subnet"])
		ni.Gateway, _ = netip.ParseAddr(ls.ExternalIDs[owner.KeyGateway])
		if a, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil {
			ni.Subnet6 = netip.PrefixFrom(a, 64)
			ni.Gateway6, _ = netip.ParseAddr(ls.ExternalIDs[dns.KeyGateway6])
		}
		if ni.Router != "" {
			lrpName := ni.Router + "-" + name
			lrps, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(lrpName)},
				func(m *nbdb.LogicalRouterPort) []any { return []any{&m.UUID, &m.Name, &m.MAC} })
			if err != nil {
				return nil, fmt.Errorf("read router port %s: %w", lrpName, err)
			}
			if len(lrps) > 0 {
				ni.RouterMAC = lrps[0].MAC
			}
		}
		return ni, nil
	}
	return nil, fmt.Errorf("network %q not found", name)
}

// binding returns the chassis (name) port is bound on, "" for none.
func binding(ctx context.Context, sb client.Client, port string) (string, error) {
	pbs, err := dbops.SelectRows(ctx, sb, []ovsdb.Condition{{Column: "logical_port", Function: ovsdb.ConditionEqual, Value: port}}, func(m *sbdb.PortBinding) []any { return []any{&m.UUID, &m.LogicalPort, &m.Chassis} })
	if err != nil {
		return "", fmt.Errorf("read binding of %s: %w", port, err)
	}
	if len(pbs) == 0 || pbs[0].Chassis == nil {
		return "", nil
	}
	chs, err := dbops.SelectRows(ctx, sb, []ovsdb.Condition{dbops.UUIDIs(*pbs[0].Chassis)}, func(m *sbdb.Chassis) []any { return []any{&m.UUID, &m.Name, &m.Hostname} })
	if err != nil {
		return "", fmt.Errorf("read chassis of %s: %w", port, err)
	}
	if len(chs) == 0 {
		return "", nil
	}
	return chs[0].Name, nil
}

// nameOf sets e.Name from its network's DNS records when it has none.
func nameOf(e *Endpoint, names map[string]dnsRecord) {
	if e.Name != "" || e.Port == "" {
		return
	}
	best := ""
	for fqdn, rec := range names {
		if rec.network != e.Network {
			continue
		}
		for _, a := range dns.ParseValue(rec.value) {
			if ip, ok := netip.AddrFromSlice(a); ok && ip.Unmap() == e.IP {
				if n := strings.SplitN(fqdn, ".", 2)[0]; best == "" || n < best {
					best = n
				}
			}
		}
	}
	e.Name = best
}
