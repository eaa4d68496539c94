// Package topology reads the whole overlay as one typed graph, in ovlmgr's
// terms: routers, networks, containers grouped by node, services and their
// backends, policies as edges between networks, and the tunnels between
// nodes with their state. It reads NB and SB through the feature packages'
// list functions (typed selects, a handful of round trips, no cache) and
// knows nothing of output formats: ovn/topology/render draws a Graph.
package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// Graph is the overlay at one moment. Every list is sorted by name.
type Graph struct {
	Routers    []Router    `json:"routers"`
	Networks   []Network   `json:"networks"`
	Nodes      []Node      `json:"nodes"`
	Containers []Container `json:"containers"`
	Services   []Service   `json:"services"`
	Policies   []Policy    `json:"policies"`
	Tunnels    []Tunnel    `json:"tunnels"`
	// Gateways are the routers' ways out of the overlay (ovn/gateway), with
	// the remote sites they reach once such a feature exists.
	Gateways []Gateway `json:"gateways,omitempty"`
	// SBError is set when the Southbound database could not be read: the
	// graph then has the NB view only (no chassis state, no tunnels).
	SBError string `json:"sbError,omitempty"`
	// Warnings are parts that could not be read (e.g. a node's OVS
	// database for its tunnel view).
	Warnings []string `json:"warnings,omitempty"`
}

// Router is a router (tenant) and the networks attached to it.
type Router struct {
	Name     string   `json:"name"`
	Networks []string `json:"networks"`
}

// Network is one overlay network.
type Network struct {
	Name       string `json:"name"`
	Subnet     string `json:"subnet"`
	IPv6Prefix string `json:"ipv6Prefix,omitempty"`
	Gateway    string `json:"gateway"`
	Router     string `json:"router,omitempty"`
	Isolation  string `json:"isolation"`
	Ports      int    `json:"ports"`
	Free       int    `json:"free"`
}

// Node is a chassis: a machine running ovn-controller.
type Node struct {
	Name      string `json:"name"`
	Hostname  string `json:"hostname,omitempty"`
	EncapIP   string `json:"encapIP,omitempty"`
	Connected bool   `json:"connected"`
	// InSB is false for a node that NB ports name but SB does not know.
	InSB bool `json:"inSB"`
}

// Container is one container interface (an NB port of ours).
type Container struct {
	// Name is the container's DNS name on its network, else the first 12
	// characters of its container ID.
	Name        string `json:"name"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	Port        string `json:"port"`
	Network     string `json:"network"`
	Node        string `json:"node"`
	// IP is its IPv4 address, or its IPv6 one on an IPv6-only network.
	IP string `json:"ip"`
	Up bool   `json:"up"`
}

// Service is a load-balanced service with its backends.
type Service struct {
	Name     string    `json:"name"`
	Network  string    `json:"network"`
	VIP      string    `json:"vip"`
	Backends []Backend `json:"backends"`
}

// Backend is one service backend; Container is its container's Name when
// the address is a container's on the service's network.
type Backend struct {
	Addr      string `json:"addr"`
	Container string `json:"container,omitempty"`
}

// Policy is a policy, drawn as edges from its sources to its network.
type Policy struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Action  string `json:"action"`
	// From are the sources: network names, CIDRs or "any".
	From []string `json:"from"`
	// What is the traffic matched, e.g. "tcp/5432" or "any".
	What     string `json:"what"`
	Priority int    `json:"priority"`
}

// Tunnel states.
const (
	TunnelUp      = "up"
	TunnelDown    = "down"
	TunnelMissing = "missing" // a node's OVS has no tunnel interface to the peer
	TunnelUnknown = "unknown"
)

// Tunnel is the Geneve tunnel between two nodes (A < B).
type Tunnel struct {
	A     string `json:"a"`
	B     string `json:"b"`
	Type  string `json:"type"`
	State string `json:"state"`
	// Source says where State comes from: "sb" (both chassis registered
	// and connected, with encaps of one type), "ovs" (the nodes' tunnel
	// interfaces), "bfd" (their BFD sessions).
	Source string `json:"source"`
	Detail string `json:"detail,omitempty"`
}

// Gateway is a router's way out of the overlay (ovn/gateway): its address
// on the external network, the gateway nodes in priority order and the
// node it is active on now.
type Gateway struct {
	// Name is the gateway's router port ("R:gw").
	Name       string `json:"name"`
	Router     string `json:"router"`
	ExternalIP string `json:"externalIP"` // IP/prefix on the external network
	NextHop    string `json:"nextHop,omitempty"`
	// ExternalIP6 and NextHop6: the IPv6 side of a dual-stack gateway (an
	// IPv6-only one has its address in ExternalIP and NextHop).
	ExternalIP6 string `json:"externalIP6,omitempty"`
	NextHop6    string `json:"nextHop6,omitempty"`
	Physnet     string `json:"physnet,omitempty"`
	// Nodes are the gateway nodes, highest priority first.
	Nodes []string `json:"nodes"`
	// Active is the node the gateway is bound on now ("" when none, or
	// SB unread).
	Active string `json:"active,omitempty"`
	// State: "active on N", "not bound on any node" or "unknown (SB
	// unread)".
	State string `json:"state"`
	// Sites are remote sites reached through the gateway; no site feature
	// exists yet, so Read leaves it empty (renderers draw them if set).
	Sites []string `json:"sites,omitempty"`
}

// Read reads the graph from NB and SB. sb may be nil (NB view only). An
// unreachable SB does not fail the read: Graph.SBError says why its parts
// are missing.
func Read(ctx context.Context, nb, sb client.Client) (*Graph, error) {
	g := &Graph{}
	nets, err := network.List(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	routers, err := router.List(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	ports, err := port.List(ctx, nb, port.Filter{})
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	svcs, err := service.List(ctx, nb, "")
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	pols, err := policy.List(ctx, nb, "")
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	names, err := dnsNames(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	for _, n := range nets {
		g.Networks = append(g.Networks, Network{Name: n.Name, Subnet: n.Subnet, IPv6Prefix: n.IPv6Prefix, Gateway: n.Gateway,
			Router: n.Router, Isolation: n.Isolation, Ports: n.Ports, Free: n.Free})
	}
	for _, r := range routers {
		rr := Router{Name: r.Name}
		for _, a := range r.Networks {
			rr.Networks = append(rr.Networks, a.Network)
		}
		g.Routers = append(g.Routers, rr)
	}
	byIP := map[string]string{} // network/ip -> container name
	for _, p := range ports {
		c := Container{ContainerID: p.Container, IfName: p.IfName, Port: p.Name, Network: p.Network, Node: p.Node, Up: p.Up}
		// Its IPv4 address, else (an IPv6-only network) its IPv6 one.
		switch {
		case p.IP.IsValid():
			c.IP = p.IP.String()
		case p.IPv6.IsValid():
			c.IP = p.IPv6.String()
		}
		c.Name = names[p.Network+"/"+c.IP]
		if c.Name == "" {
			c.Name = shortID(p.Container)
		}
		if c.IP != "" {
			byIP[p.Network+"/"+c.IP] = c.Name
		}
		g.Containers = append(g.Containers, c)
	}
	sort.Slice(g.Containers, func(i, j int) bool {
		a, b := g.Containers[i], g.Containers[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Port < b.Port
	})
	for _, s := range svcs {
		sv := Service{Name: s.Name, Network: s.Network, VIP: s.VIP}
		for _, b := range s.Backends {
			be := Backend{Addr: b}
			if ap, err := netip.ParseAddrPort(b); err == nil {
				be.Container = byIP[s.Network+"/"+ap.Addr().String()]
			}
			sv.Backends = append(sv.Backends, be)
		}
		g.Services = append(g.Services, sv)
	}
	for _, p := range pols {
		from := p.From
		if len(from) == 0 {
			from = []string{"any"}
		}
		what := "any"
		if p.Proto != "" {
			what = p.Proto
			if p.Port != "" {
				what += "/" + p.Port
			}
		}
		g.Policies = append(g.Policies, Policy{Name: p.Name, Network: p.Network, Action: p.Action, From: from, What: what, Priority: p.Priority})
	}
	sort.Slice(g.Policies, func(i, j int) bool { return g.Policies[i].Name < g.Policies[j].Name })

	var chs []chassis.Chassis
	if sb != nil {
		if chs, err = chassis.List(ctx, sb); err != nil {
			g.SBError = err.Error()
			sb = nil
		}
	}
	g.nodesAndTunnels(chs)
	if err := g.readGateways(ctx, nb, sb); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return g, nil
}

// readGateways finds the routers with a gateway in one select of gateway
// router ports, then reads each gateway (ovn/gateway.Get) and, with sb,
// where it is active. Gateways are few: one per router that has one.
func (g *Graph) readGateways(ctx context.Context, nb, sb client.Client) error {
	lrps, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(router.KindGateway, nil)},
		func(p *nbdb.LogicalRouterPort) []any { return []any{&p.UUID, &p.ExternalIDs} })
	if err != nil {
		return fmt.Errorf("read gateways: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range lrps {
		r := p.ExternalIDs[owner.KeyRouter]
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		gw, err := gateway.Get(ctx, nb, r)
		if errors.Is(err, gateway.ErrNoGateway) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		t := Gateway{Name: gw.Port, Router: r, Physnet: gw.Physnet, Nodes: gw.Nodes, State: "unknown (SB unread)"}
		if gw.ExternalIP.IsValid() {
			t.ExternalIP = netip.PrefixFrom(gw.ExternalIP, gw.ExternalNet.Bits()).String()
		}
		if gw.NextHop.IsValid() {
			t.NextHop = gw.NextHop.String()
		}
		switch {
		case gw.ExternalIP6.IsValid() && !gw.ExternalIP.IsValid():
			// An IPv6-only gateway: its address is the gateway's address.
			t.ExternalIP = netip.PrefixFrom(gw.ExternalIP6, gw.ExternalNet6.Bits()).String()
			t.NextHop = gw.NextHop6.String()
		case gw.ExternalIP6.IsValid():
			t.ExternalIP6 = netip.PrefixFrom(gw.ExternalIP6, gw.ExternalNet6.Bits()).String()
			t.NextHop6 = gw.NextHop6.String()
		}
		if sb != nil {
			if t.Active, err = gateway.Active(ctx, sb, gw); err != nil {
				return err
			}
			t.State = "not bound on any node"
			if t.Active != "" {
				t.State = "active on " + t.Active
			}
		}
		g.Gateways = append(g.Gateways, t)
	}
	sort.Slice(g.Gateways, func(i, j int) bool { return g.Gateways[i].Router < g.Gateways[j].Router })
	return nil
}

// nodesAndTunnels fills Nodes from the chassis and the nodes ports name,
// and one tunnel per pair of chassis with an encap of a common type.
func (g *Graph) nodesAndTunnels(chs []chassis.Chassis) {
	seen := map[string]bool{}
	for _, c := range chs {
		n := Node{Name: c.Name, Hostname: c.Hostname, Connected: c.Connected, InSB: true}
		if len(c.Encaps) > 0 {
			n.EncapIP = c.Encaps[0].IP
		}
		g.Nodes = append(g.Nodes, n)
		seen[c.Name] = true
	}
	for _, c := range g.Containers {
		if c.Node != "" && !seen[c.Node] {
			g.Nodes = append(g.Nodes, Node{Name: c.Node})
			seen[c.Node] = true
		}
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].Name < g.Nodes[j].Name })
	sort.Slice(chs, func(i, j int) bool { return chs[i].Name < chs[j].Name })
	for i := range chs {
		for j := i + 1; j < len(chs); j++ {
			a, b := chs[i], chs[j]
			typ := commonEncap(a, b)
			t := Tunnel{A: a.Name, B: b.Name, Type: typ, Source: "sb"}
			switch {
			case typ == "":
				t.State, t.Detail = TunnelDown, "no encap type in common"
			case a.Connected && b.Connected:
				t.State = TunnelUp
			default:
				t.State = TunnelDown
				var off []string
				for _, c := range []chassis.Chassis{a, b} {
					if !c.Connected {
						off = append(off, c.Name)
					}
				}
				t.Detail = "ovn-controller not connected on " + strings.Join(off, ", ")
			}
			g.Tunnels = append(g.Tunnels, t)
		}
	}
}

func commonEncap(a, b chassis.Chassis) string {
	for _, x := range a.Encaps {
		for _, y := range b.Encaps {
			if x.Type == y.Type {
				return x.Type
			}
		}
	}
	return ""
}

// NodeTunnel is what one node's Open_vSwitch database says about its tunnel
// to a peer encap IP: the interface exists, and its BFD state when BFD runs
// on it ("up", "down", ...; "" without BFD).
type NodeTunnel struct {
	RemoteIP string
	BFD      string
}

// AddNodeTunnels refines the tunnels of node from its own OVS view (the
// caller reads the node's Open_vSwitch Interface rows of type geneve; this
// package reads no node database). A peer without a tunnel interface makes
// the tunnel "missing"; a BFD state overrides the SB-derived one.
func (g *Graph) AddNodeTunnels(node string, obs []NodeTunnel) {
	byIP := map[string]NodeTunnel{}
	for _, o := range obs {
		byIP[o.RemoteIP] = o
	}
	encapOf := map[string]string{}
	for _, n := range g.Nodes {
		encapOf[n.Name] = n.EncapIP
	}
	for i := range g.Tunnels {
		t := &g.Tunnels[i]
		var peer string
		switch node {
		case t.A:
			peer = t.B
		case t.B:
			peer = t.A
		default:
			continue
		}
		o, ok := byIP[encapOf[peer]]
		switch {
		case t.State == TunnelMissing || (t.Source == "bfd" && t.State != TunnelUp):
			// the other end already found it broken
		case !ok:
			t.State, t.Source = TunnelMissing, "ovs"
			t.Detail = fmt.Sprintf("node %s has no tunnel interface to %s (%s)", node, peer, encapOf[peer])
		case o.BFD != "":
			t.State, t.Source = o.BFD, "bfd"
			if o.BFD != TunnelUp {
				t.Detail = fmt.Sprintf("BFD %s on %s", o.BFD, node)
			}
		case t.Source == "sb" && t.State == TunnelUp:
			t.Source = "ovs"
		}
	}
}

// AddGateways adds the overlay's gateways (and the sites they reach).
func (g *Graph) AddGateways(gws []Gateway) {
	g.Gateways = append(g.Gateways, gws...)
	sort.Slice(g.Gateways, func(i, j int) bool { return g.Gateways[i].Name < g.Gateways[j].Name })
}

// ContainersOn returns the containers on node, in Graph order.
func (g *Graph) ContainersOn(node string) []Container {
	var out []Container
	for _, c := range g.Containers {
		if c.Node == node {
			out = append(out, c)
		}
	}
	return out
}

// Network returns the named network, nil when absent.
func (g *Graph) Network(name string) *Network {
	for i := range g.Networks {
		if g.Networks[i].Name == name {
			return &g.Networks[i]
		}
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// dnsNames maps "network/ip" to the container's short DNS name (the
// smallest name when an address has several), from our DNS rows in one
// select.
func dnsNames(ctx context.Context, nb client.Client) (map[string]string, error) {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindDNS, nil)},
		func(d *nbdb.DNS) []any { return []any{&d.UUID, &d.ExternalIDs, &d.Records} })
	if err != nil {
		return nil, fmt.Errorf("read DNS names: %w", err)
	}
	out := map[string]string{}
	for _, d := range rows {
		netName := d.ExternalIDs[owner.KeyNetwork]
		for key, val := range d.Records {
			if strings.HasSuffix(key, ".arpa") {
				continue
			}
			short := strings.SplitN(key, ".", 2)[0]
			for _, ip := range dns.ParseValue(val) {
				k := netName + "/" + ipString(ip)
				if cur, ok := out[k]; !ok || short < cur {
					out[k] = short
				}
			}
		}
	}
	return out, nil
}

func ipString(ip net.IP) string {
	if a, ok := netip.AddrFromSlice(ip); ok {
		return a.Unmap().String()
	}
	return ip.String()
}
