package render

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// SVG layout: a grid, since the overlay has a fixed shape. Columns are the
// policy gutter, the networks, one column per node, the services; rows are
// the networks grouped by router, under a header of nodes with the tunnels
// arcing between them. A container sits in the cell of its network and its
// node. Policies are arcs in the gutter from source to target network,
// numbered and explained in the legend below.
const (
	charW      = 7.0 // width of one character at the 12px monospace font
	lineH      = 15.0
	pad        = 8.0
	margin     = 20.0
	ctrH       = 2*lineH + 8
	nodeHeadH  = 3*lineH + 10
	routerHead = 22.0
	rowGap     = 10.0
)

type svgBuf struct {
	b strings.Builder
}

func (s *svgBuf) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

func textW(lines ...string) float64 {
	m := 0
	for _, l := range lines {
		if n := len([]rune(l)); n > m {
			m = n
		}
	}
	return float64(m)*charW + 2*pad
}

// text writes lines of text starting at (x, y) (top-left of the first line).
func (s *svgBuf) text(x, y float64, class string, lines ...string) {
	for i, l := range lines {
		s.f(`<text x="%.1f" y="%.1f" class="%s">%s</text>`+"\n", x, y+float64(i)*lineH+12, class, esc(l))
	}
}

type netRow struct {
	net    topology.Network
	y, h   float64
	router string
}

// SVG writes the graph as a standalone SVG document.
func SVG(w io.Writer, g *topology.Graph) error {
	_, err := io.WriteString(w, svgString(g))
	return err
}

func svgString(g *topology.Graph) string {
	// containers by network and node, services by network: one pass each
	cells := map[string]map[string][]topology.Container{}
	onNode := map[string][]topology.Container{}
	for _, c := range g.Containers {
		if cells[c.Network] == nil {
			cells[c.Network] = map[string][]topology.Container{}
		}
		cells[c.Network][c.Node] = append(cells[c.Network][c.Node], c)
		onNode[c.Node] = append(onNode[c.Node], c)
	}
	svcs := map[string][]topology.Service{}
	for _, sv := range g.Services {
		svcs[sv.Network] = append(svcs[sv.Network], sv)
	}
	// columns
	type column struct {
		node string
		x, w float64
	}
	var nodes []topology.Node
	nodes = append(nodes, g.Nodes...)
	if len(onNode[""]) > 0 {
		nodes = append(nodes, topology.Node{Name: ""})
	}
	gws := map[string]topology.Gateway{}
	for _, gw := range g.Gateways {
		gws[gw.Router] = gw
	}
	arcs := policyArcs(g)
	gutter := 24 + 14*float64(len(arcs))
	netW := 150.0
	for _, n := range g.Networks {
		netW = max(netW, textW(netLines(n)...))
	}
	x := margin + gutter
	netX := x
	x += netW + 16
	cols := make([]column, len(nodes))
	for i, n := range nodes {
		w := max(150, textW(nodeLines(n)...))
		for _, c := range onNode[n.Name] {
			w = max(w, textW(ctrLines(c)...)+2*pad)
		}
		cols[i] = column{node: n.Name, x: x, w: w}
		x += w + 16
	}
	svcX := x
	svcW := 0.0
	for _, s := range g.Services {
		svcW = max(svcW, textW(svcLines(s)...))
	}
	if svcW > 0 {
		x += svcW + 16
	}
	width := max(x+margin, 480)

	// rows
	maxSpan := 0
	if len(g.Tunnels) > 0 {
		maxSpan = 1
	}
	colOf := map[string]int{}
	for i, c := range cols {
		colOf[c.node] = i
	}
	for _, t := range g.Tunnels {
		if d := abs(colOf[t.B] - colOf[t.A]); d > maxSpan {
			maxSpan = d
		}
	}
	notes := len(g.Warnings)
	if g.SBError != "" {
		notes++
	}
	y := margin + 24 + float64(notes)*lineH // title and notes
	tunnelBase := y + 22 + 18*float64(maxSpan)
	headY := tunnelBase
	y = headY + nodeHeadH + 16
	var rows []netRow
	groups := routerGroups(g)
	type band struct {
		router  string
		y0, y1  float64
		members int
	}
	var bands []band
	for _, grp := range groups {
		b := band{router: grp.router, y0: y}
		y += routerHead
		for _, n := range grp.nets {
			maxC := 0
			for _, cs := range cells[n.Name] {
				maxC = max(maxC, len(cs))
			}
			h := max(float64(len(netLines(n)))*lineH+2*pad, float64(maxC)*(ctrH+6)+6)
			hs := 0.0
			for _, s := range svcs[n.Name] {
				hs += float64(len(svcLines(s)))*lineH + 2*pad + 6
			}
			h = max(h, hs)
			rows = append(rows, netRow{net: n, y: y, h: h, router: grp.router})
			y += h + rowGap
		}
		b.y1 = y
		b.members = len(grp.nets)
		bands = append(bands, b)
		y += 8
	}
	// legend
	legend := legendLines(g)
	legendY := y + 10
	height := legendY + float64(len(legend))*lineH + margin + 10

	s := &svgBuf{}
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" class="ovl-topology" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`+"\n", width, height, width, height)
	s.f(`<style>text{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px;fill:#222}` +
		`.title{font-size:14px;font-weight:bold}.dim{fill:#666}.bold{font-weight:bold}` +
		`.lbl{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}` +
		`.up{fill:#2e7d32}.down{fill:#c0392b}</style>` + "\n")
	s.f(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", width, height)
	s.text(margin, margin-10, "title", fmt.Sprintf("ovlmgr overlay: %d router(s), %d network(s), %d container(s), %d node(s)",
		len(g.Routers), len(g.Networks), len(g.Containers), len(g.Nodes)))
	if g.SBError != "" {
		s.text(margin, margin+6, "down", "southbound unreadable: "+g.SBError)
	}
	for i, w := range g.Warnings {
		s.text(margin, margin+6+float64(i+1)*lineH, "down", "warning: "+w)
	}

	// router bands
	for _, b := range bands {
		name := "no router"
		fill := "#f7f7f7"
		if b.router != "" {
			name = "router " + b.router
			fill = "#fff4e3"
		}
		s.f(`<g class="router" data-name="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6" fill="%s" stroke="#e0b878"/>`,
			esc(b.router), netX-6, b.y0, width-netX-margin+6, b.y1-b.y0, fill)
		s.text(netX, b.y0+2, "bold", name)
		s.f("</g>\n")
		if gw, ok := gws[b.router]; ok && b.router != "" {
			s.f(`<g class="gateway" data-name="%s">`, esc(gw.Name))
			s.text(netX+netW+16, b.y0+2, "", "gateway "+dash(gw.ExternalIP)+": "+dash(gw.State)+" (nodes "+listOr(gw.Nodes, "-")+")")
			s.f("</g>\n")
		}
	}
	// node headers and column guides
	lastRowEnd := headY + nodeHeadH
	if len(rows) > 0 {
		lastRowEnd = rows[len(rows)-1].y + rows[len(rows)-1].h
	}
	for i, c := range cols {
		n := nodes[i]
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd" stroke-dasharray="4 4"/>`+"\n",
			c.x+c.w/2, headY+nodeHeadH, c.x+c.w/2, lastRowEnd)
		s.f(`<g class="node" data-name="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="#eeeeee" stroke="%s" stroke-width="2"/>`,
			esc(n.Name), c.x, headY, c.w, nodeHeadH, nodeColor(n))
		s.text(c.x+pad, headY+4, "", nodeLines(n)...)
		s.f("</g>\n")
	}
	// tunnels: arcs above the node headers
	for _, t := range g.Tunnels {
		a, b := colOf[t.A], colOf[t.B]
		if a > b {
			a, b = b, a
		}
		xa, xb := cols[a].x+cols[a].w/2, cols[b].x+cols[b].w/2
		top := tunnelBase - 14 - 18*float64(b-a)
		col := tunnelColor(t.State)
		pattern := ""
		if t.State != topology.TunnelUp {
			pattern = ` stroke-dasharray="6 4"`
		}
		s.f(`<g class="tunnel" data-a="%s" data-b="%s" data-state="%s"><path d="M %.1f %.1f C %.1f %.1f, %.1f %.1f, %.1f %.1f" fill="none" stroke="%s" stroke-width="2"%s/>`,
			esc(t.A), esc(t.B), esc(t.State), xa, headY, xa, top, xb, top, xb, headY, col, pattern)
		lbl := dash(t.Type) + " " + t.State
		s.f(`<text x="%.1f" y="%.1f" class="lbl" text-anchor="middle" style="fill:%s">%s</text></g>`+"\n", (xa+xb)/2, top+10, col, esc(lbl))
	}
	// network rows, containers, services
	rowOf := map[string]netRow{}
	for _, r := range rows {
		rowOf[r.net.Name] = r
		n := r.net
		s.f(`<g class="network" data-name="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="#cfe3ff" stroke="#7f9fcf"/>`,
			esc(n.Name), netX, r.y, netW, r.h)
		s.text(netX+pad, r.y+pad-4, "", netLines(n)...)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#7f9fcf" stroke-width="2"/>`, netX+netW, r.y+r.h/2, svcX-8, r.y+r.h/2)
		s.f("</g>\n")
		for i, c := range cols {
			for k, ct := range cells[n.Name][c.node] {
				cy := r.y + 3 + float64(k)*(ctrH+6)
				s.f(`<g class="container" data-name="%s" data-node="%s" data-network="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="%s" stroke="#555"/>`,
					esc(ct.Name), esc(nodes[i].Name), esc(n.Name), c.x+pad, cy, c.w-2*pad, ctrH, containerColor(ct))
				s.text(c.x+2*pad, cy+2, "", ctrLines(ct)...)
				s.f("</g>\n")
			}
		}
		sy := r.y
		for _, sv := range svcs[n.Name] {
			lines := svcLines(sv)
			h := float64(len(lines))*lineH + 2*pad
			s.f(`<g class="service" data-name="%s" data-network="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="12" fill="#e3f5d8" stroke="#6a9f58"/>`,
				esc(sv.Name), esc(n.Name), svcX, sy, svcW, h)
			s.text(svcX+pad, sy+pad-4, "", lines...)
			s.f("</g>\n")
			sy += h + 6
		}
	}
	// policy arcs in the gutter
	for i, a := range arcs {
		to, ok := rowOf[a.to]
		if !ok {
			continue
		}
		xg := netX - 12 - 14*float64(len(arcs)-i)
		ty := to.y + to.h/2 + float64(i%3)*4 - 4
		col := actionColor(a.action)
		fy := ty - 20
		if from, ok := rowOf[a.from]; ok {
			fy = from.y + from.h/2 + float64(i%3)*4 - 4
		}
		s.f(`<g class="policy" data-name="%s" data-from="%s" data-to="%s">`, esc(a.name), esc(a.from), esc(a.to))
		if _, ok := rowOf[a.from]; ok {
			s.f(`<path d="M %.1f %.1f L %.1f %.1f L %.1f %.1f L %.1f %.1f" fill="none" stroke="%s" stroke-width="1.5"/>`,
				netX, fy, xg, fy, xg, ty, netX-2, ty, col)
		} else {
			s.f(`<path d="M %.1f %.1f L %.1f %.1f L %.1f %.1f" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="3 3"/>`,
				xg, fy, xg, ty, netX-2, ty, col)
		}
		s.f(`<path d="M %.1f %.1f l -7 -4 l 0 8 z" fill="%s"/>`, netX-1, ty, col)
		s.f(`<text x="%.1f" y="%.1f" class="lbl" text-anchor="middle" style="fill:%s">P%d</text></g>`+"\n", xg, min(fy, ty)-3, col, a.num)
	}
	// gateways row (drawn in the legend area as text lines) and legend
	for i, l := range legend {
		class := ""
		if strings.HasSuffix(l, ":") {
			class = "bold"
		}
		s.text(margin, legendY+float64(i)*lineH, class, l)
	}
	s.f("</svg>\n")
	return s.b.String()
}

type arc struct {
	num            int
	name, from, to string
	action, what   string
}

// policyArcs lists one arc per policy source.
func policyArcs(g *topology.Graph) []arc {
	var out []arc
	num := 0
	for _, p := range g.Policies {
		num++
		for _, src := range p.From {
			out = append(out, arc{num: num, name: p.Name, from: src, to: p.Network, action: p.Action, what: p.What})
		}
	}
	return out
}

type routerGroup struct {
	router string
	nets   []topology.Network
}

func routerGroups(g *topology.Graph) []routerGroup {
	var out []routerGroup
	idx := map[string]int{}
	for _, r := range g.Routers {
		idx[r.Name] = len(out)
		out = append(out, routerGroup{router: r.Name})
	}
	var none []topology.Network
	for _, n := range g.Networks {
		if i, ok := idx[n.Router]; ok && n.Router != "" {
			out[i].nets = append(out[i].nets, n)
		} else {
			none = append(none, n)
		}
	}
	if len(none) > 0 {
		out = append(out, routerGroup{nets: none})
	}
	return out
}

func netLines(n topology.Network) []string {
	l := []string{"network " + n.Name, n.Subnet}
	if n.IPv6Prefix != "" {
		l = append(l, n.IPv6Prefix)
	}
	return append(l, n.Isolation, fmt.Sprintf("%d ports, %d free", n.Ports, n.Free))
}

func nodeLines(n topology.Node) []string {
	if n.Name == "" {
		return []string{"(no node)", "", ""}
	}
	return []string{"node " + n.Name, dash(n.EncapIP), nodeState(n)}
}

func ctrLines(c topology.Container) []string {
	st := ""
	if !c.Up {
		st = " (down)"
	}
	return []string{c.Name + st, c.IP}
}

func svcLines(s topology.Service) []string {
	l := []string{"service " + s.Name, s.VIP}
	for _, b := range backendNames(s) {
		l = append(l, "-> "+b)
	}
	return l
}

func legendLines(g *topology.Graph) []string {
	var l []string
	if len(g.Policies) > 0 {
		l = append(l, "policies:")
		for i, p := range g.Policies {
			l = append(l, fmt.Sprintf("  P%d %s: %s %s from %s to %s (priority %d)", i+1, p.Name, p.Action, p.What, strings.Join(p.From, ", "), p.Network, p.Priority))
		}
	}
	if len(g.Tunnels) > 0 {
		l = append(l, "tunnels:")
		for _, t := range g.Tunnels {
			s := fmt.Sprintf("  %s <-> %s %s %s (from %s)", t.A, t.B, dash(t.Type), t.State, t.Source)
			if t.Detail != "" {
				s += ": " + t.Detail
			}
			l = append(l, s)
		}
	}
	if len(g.Gateways) > 0 {
		l = append(l, "gateways:")
		for _, gw := range g.Gateways {
			l = append(l, "  "+gw.Router+": "+gatewayLine(gw))
		}
	}
	return l
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}
