// Package render draws a topology.Graph as text, Graphviz DOT, SVG (a
// pure-Go grid layout: no external program, no wasm) and a self-contained
// HTML page, and serves that page live (Server).
package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// Text writes the graph as an indented outline.
func Text(w io.Writer, g *topology.Graph) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("routers:\n")
	if len(g.Routers) == 0 {
		p("  (none)\n")
	}
	for _, r := range g.Routers {
		p("  %s: %s\n", r.Name, listOr(r.Networks, "no networks"))
	}
	p("networks:\n")
	if len(g.Networks) == 0 {
		p("  (none)\n")
	}
	for _, n := range g.Networks {
		p("  %s  %s", n.Name, n.Subnet)
		if n.IPv6Prefix != "" {
			p(" %s", n.IPv6Prefix)
		}
		p("  router %s  %s  ports %d  free %d\n", dash(n.Router), n.Isolation, n.Ports, n.Free)
	}
	p("nodes:\n")
	if len(g.Nodes) == 0 {
		p("  (none)\n")
	}
	for _, n := range g.Nodes {
		p("  %s  %s  %s\n", n.Name, dash(n.EncapIP), nodeState(n))
		for _, c := range g.ContainersOn(n.Name) {
			p("    %-20s %-15s network %s%s\n", c.Name, c.IP, c.Network, downMark(c))
		}
	}
	if cs := g.ContainersOn(""); len(cs) > 0 {
		p("  (no node)\n")
		for _, c := range cs {
			p("    %-20s %-15s network %s%s\n", c.Name, c.IP, c.Network, downMark(c))
		}
	}
	if len(g.Services) > 0 {
		p("services:\n")
		for _, s := range g.Services {
			p("  %s/%s  %s -> %s\n", s.Network, s.Name, s.VIP, listOr(backendNames(s), "no backends"))
		}
	}
	if len(g.Policies) > 0 {
		p("policies:\n")
		for _, pol := range g.Policies {
			p("  %s: %s %s from %s to %s (priority %d)\n", pol.Name, pol.Action, pol.What, strings.Join(pol.From, ", "), pol.Network, pol.Priority)
		}
	}
	if len(g.Tunnels) > 0 {
		p("tunnels:\n")
		for _, t := range g.Tunnels {
			p("  %s <-> %s  %s %s (%s)", t.A, t.B, dash(t.Type), t.State, t.Source)
			if t.Detail != "" {
				p(": %s", t.Detail)
			}
			p("\n")
		}
	}
	if len(g.Gateways) > 0 {
		p("gateways:\n")
		for _, gw := range g.Gateways {
			p("  %s: %s\n", gw.Router, gatewayLine(gw))
		}
	}
	if g.SBError != "" {
		p("southbound unreadable (no chassis state, no tunnels): %s\n", g.SBError)
	}
	for _, w := range g.Warnings {
		p("warning: %s\n", w)
	}
	return ew.err
}

// gatewayLine describes a gateway in one line.
func gatewayLine(gw topology.Gateway) string {
	s := "gateway " + dash(gw.ExternalIP)
	if gw.NextHop != "" {
		s += " via " + gw.NextHop
	}
	if gw.ExternalIP6 != "" {
		s += ", " + gw.ExternalIP6 + " via " + dash(gw.NextHop6)
	}
	s += ", nodes " + listOr(gw.Nodes, "-") + ", " + dash(gw.State)
	if len(gw.Sites) > 0 {
		s += ", sites " + strings.Join(gw.Sites, ", ")
	}
	return s
}

func backendNames(s topology.Service) []string {
	var out []string
	for _, b := range s.Backends {
		if b.Container != "" {
			out = append(out, b.Container+" ("+b.Addr+")")
		} else {
			out = append(out, b.Addr)
		}
	}
	return out
}

func nodeState(n topology.Node) string {
	switch {
	case !n.InSB:
		return "not in SB"
	case n.Connected:
		return "connected"
	}
	return "disconnected"
}

func downMark(c topology.Container) string {
	if c.Up {
		return ""
	}
	return "  (down)"
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
