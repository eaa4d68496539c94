package render

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// Node IDs in DOT and SVG, by kind.
func routerID(name string) string       { return "router:" + name }
func networkID(name string) string      { return "net:" + name }
func nodeID(name string) string         { return "node:" + name }
func containerID(port string) string    { return "ctr:" + port }
func serviceID(net, name string) string { return "svc:" + net + "/" + name }
func gatewayID(name string) string      { return "gw:" + name }
func siteID(name string) string         { return "site:" + name }
func sourceID(src string) string        { return "src:" + src }

// q quotes a DOT ID or string.
func q(s string) string { return strconv.Quote(s) }

// DOT writes the graph in Graphviz's DOT language: routers (octagons),
// networks (boxes), one cluster per node holding its containers, services
// (ellipses) with edges to their backends, policies as edges from their
// sources to their network, tunnels as undirected edges between nodes.
func DOT(w io.Writer, g *topology.Graph) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("digraph overlay {\n")
	p("  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11, label=\"ovlmgr overlay\", labelloc=t];\n")
	p("  node [fontname=\"Helvetica\", fontsize=10, shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\"];\n")
	p("  edge [fontname=\"Helvetica\", fontsize=9];\n")
	for _, r := range g.Routers {
		p("  %s [label=%s, shape=octagon, fillcolor=\"#fde2b8\"];\n", q(routerID(r.Name)), q("router "+r.Name))
	}
	for _, n := range g.Networks {
		lbl := "network " + n.Name + "\n" + n.Subnet
		if n.IPv6Prefix != "" {
			lbl += "\n" + n.IPv6Prefix
		}
		lbl += "\n" + n.Isolation
		p("  %s [label=%s, fillcolor=\"#cfe3ff\"];\n", q(networkID(n.Name)), q(lbl))
		if n.Router != "" {
			p("  %s -> %s [dir=none, penwidth=2];\n", q(routerID(n.Router)), q(networkID(n.Name)))
		}
	}
	for _, n := range g.Nodes {
		p("  subgraph %s {\n", q("cluster_"+n.Name))
		p("    label=%s; style=\"rounded\"; color=%s;\n", q("node "+n.Name), q(nodeColor(n)))
		p("    %s [label=%s, shape=cds, fillcolor=\"#eeeeee\"];\n", q(nodeID(n.Name)), q(n.Name+"\n"+dash(n.EncapIP)+"\n"+nodeState(n)))
		for _, c := range g.ContainersOn(n.Name) {
			p("    %s [label=%s, fillcolor=%s];\n", q(containerID(c.Port)), q(c.Name+"\n"+c.IP), q(containerColor(c)))
		}
		p("  }\n")
	}
	for _, c := range g.ContainersOn("") {
		p("  %s [label=%s, fillcolor=%s];\n", q(containerID(c.Port)), q(c.Name+"\n"+c.IP), q(containerColor(c)))
	}
	for _, c := range g.Containers {
		if g.Network(c.Network) != nil {
			p("  %s -> %s [dir=none, color=\"#7f9fcf\"];\n", q(networkID(c.Network)), q(containerID(c.Port)))
		}
	}
	portOf := containerPorts(g)
	for _, s := range g.Services {
		id := serviceID(s.Network, s.Name)
		p("  %s [label=%s, shape=ellipse, fillcolor=\"#e3f5d8\"];\n", q(id), q("service "+s.Name+"\n"+s.VIP))
		p("  %s -> %s [dir=none, style=dashed];\n", q(networkID(s.Network)), q(id))
		for _, b := range s.Backends {
			if port := portOf[s.Network+"/"+b.Container]; b.Container != "" && port != "" {
				p("  %s -> %s [style=dotted, label=\"backend\"];\n", q(id), q(containerID(port)))
			} else {
				p("  %s [label=%s, shape=plaintext, style=\"\"];\n", q(sourceID(b.Addr)), q(b.Addr))
				p("  %s -> %s [style=dotted, label=\"backend\"];\n", q(id), q(sourceID(b.Addr)))
			}
		}
	}
	for _, pol := range g.Policies {
		for _, src := range pol.From {
			from := networkID(src)
			if g.Network(src) == nil {
				from = sourceID(src)
				p("  %s [label=%s, shape=note, fillcolor=\"#f4f4f4\"];\n", q(from), q(src))
			}
			p("  %s -> %s [label=%s, color=%s, fontcolor=%s];\n", q(from), q(networkID(pol.Network)),
				q("policy "+pol.Name+": "+pol.Action+" "+pol.What), q(actionColor(pol.Action)), q(actionColor(pol.Action)))
		}
	}
	for _, t := range g.Tunnels {
		lbl := dash(t.Type) + " " + t.State
		p("  %s -> %s [dir=none, style=bold, constraint=false, label=%s, color=%s];\n", q(nodeID(t.A)), q(nodeID(t.B)), q(lbl), q(tunnelColor(t.State)))
	}
	for _, gw := range g.Gateways {
		p("  %s [label=%s, shape=house, fillcolor=\"#f9d5e5\"];\n", q(gatewayID(gw.Name)),
			q("gateway of "+gw.Router+"\n"+dash(gw.ExternalIP)+"\n"+dash(gw.State)))
		if gw.Router != "" {
			p("  %s -> %s [dir=none, penwidth=2];\n", q(routerID(gw.Router)), q(gatewayID(gw.Name)))
		}
		for i, n := range gw.Nodes {
			style, lbl := "dashed", fmt.Sprintf("standby %d", i+1)
			if n == gw.Active {
				style, lbl = "bold", "active"
			}
			p("  %s -> %s [dir=none, style=%s, label=%s];\n", q(gatewayID(gw.Name)), q(nodeID(n)), style, q(lbl))
		}
		for _, s := range gw.Sites {
			p("  %s [label=%s, shape=tab, fillcolor=\"#f0f0f0\"];\n", q(siteID(s)), q("site "+s))
			p("  %s -> %s [dir=none];\n", q(gatewayID(gw.Name)), q(siteID(s)))
		}
	}
	p("}\n")
	return ew.err
}

// containerPorts maps "network/container name" to its port name.
func containerPorts(g *topology.Graph) map[string]string {
	out := map[string]string{}
	for _, c := range g.Containers {
		out[c.Network+"/"+c.Name] = c.Port
	}
	return out
}

func nodeColor(n topology.Node) string {
	if n.Connected {
		return "#4a8a4a"
	}
	return "#c0392b"
}

func containerColor(c topology.Container) string {
	if c.Up {
		return "#ffffff"
	}
	return "#f2d7d5"
}

func actionColor(action string) string {
	if strings.EqualFold(action, "deny") {
		return "#c0392b"
	}
	return "#2e7d32"
}

func tunnelColor(state string) string {
	if state == topology.TunnelUp {
		return "#2e7d32"
	}
	return "#c0392b"
}
