package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// HTMLOptions shape the page.
type HTMLOptions struct {
	// Live makes the page follow a Server: it listens to /events
	// (server-sent events) and swaps in /fragment on every change.
	Live bool
	// Generated is shown on the page (zero: now).
	Generated time.Time
}

const pageCSS = `body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 4px}
.meta{color:#666;font-size:12px;margin-bottom:10px}
#status.live{color:#2e7d32}#status.lost{color:#c0392b}
.graph{overflow:auto;border:1px solid #ddd;background:#fff;padding:4px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
h2{font-size:15px;margin:16px 0 4px}
.up{color:#2e7d32}.down{color:#c0392b}
input#filter{margin:6px 0;padding:3px 6px;width:240px}
.ovl-topology g.dim{opacity:.15}`

// The page's script: a name filter that dims what does not match, and, on
// a live page, the event stream that swaps in the new fragment.
const pageJS = `(function(){
function applyFilter(){var f=document.getElementById('filter');if(!f)return;var v=f.value.toLowerCase();
document.querySelectorAll('.ovl-topology g[data-name]').forEach(function(g){
var m=!v||(g.getAttribute('data-name')||'').toLowerCase().indexOf(v)>=0||(g.getAttribute('data-network')||'').toLowerCase().indexOf(v)>=0;
g.classList.toggle('dim',!m);});}
document.addEventListener('input',function(e){if(e.target.id==='filter')applyFilter();});
var live=document.body.getAttribute('data-live')==='1';
if(!live||!window.EventSource)return;
var st=document.getElementById('status');
var es=new EventSource('events');
es.onopen=function(){st.textContent='live';st.className='live';};
es.onerror=function(){st.textContent='disconnected, retrying';st.className='lost';};
es.onmessage=function(){fetch('fragment',{cache:'no-store'}).then(function(r){return r.text();}).then(function(t){
document.getElementById('content').innerHTML=t;applyFilter();});};
})();`

// HTML writes one self-contained page: inline SVG, inline CSS and script,
// no external resource; a browser opens it offline.
func HTML(w io.Writer, g *topology.Graph, o HTMLOptions) error {
	if o.Generated.IsZero() {
		o.Generated = time.Now()
	}
	var b strings.Builder
	live := "0"
	status := "snapshot"
	if o.Live {
		live, status = "1", "connecting"
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>ovlmgr topology</title>\n<style>%s</style></head>\n", pageCSS)
	fmt.Fprintf(&b, "<body data-live=\"%s\">\n<h1>ovlmgr overlay topology</h1>\n", live)
	fmt.Fprintf(&b, "<div class=\"meta\"><span id=\"status\">%s</span> · <input id=\"filter\" placeholder=\"filter by name\"></div>\n", status)
	fmt.Fprintf(&b, "<div id=\"content\">\n")
	writeFragment(&b, g, o.Generated)
	fmt.Fprintf(&b, "</div>\n<script>%s</script>\n</body></html>\n", pageJS)
	_, err := io.WriteString(w, b.String())
	return err
}

// Fragment writes the part of the page a live page swaps in.
func Fragment(w io.Writer, g *topology.Graph, at time.Time) error {
	var b strings.Builder
	writeFragment(&b, g, at)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFragment(b *strings.Builder, g *topology.Graph, at time.Time) {
	fmt.Fprintf(b, "<div class=\"meta\">read at %s</div>\n", esc(at.UTC().Format(time.RFC3339)))
	fmt.Fprintf(b, "<div class=\"graph\">\n%s</div>\n", svgString(g))

	table := func(title string, head []string, rows [][]string) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(b, "<h2>%s</h2>\n<table><tr>", esc(title))
		for _, h := range head {
			fmt.Fprintf(b, "<th>%s</th>", esc(h))
		}
		b.WriteString("</tr>\n")
		for _, r := range rows {
			b.WriteString("<tr>")
			for _, c := range r {
				cls := ""
				switch c {
				case "up", "connected":
					cls = ` class="up"`
				case "down", "missing", "disconnected", "not in SB":
					cls = ` class="down"`
				}
				fmt.Fprintf(b, "<td%s>%s</td>", cls, esc(c))
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</table>\n")
	}
	var rows [][]string
	for _, n := range g.Networks {
		rows = append(rows, []string{n.Name, n.Subnet, dash(n.Router), n.Isolation, fmt.Sprint(n.Ports), fmt.Sprint(n.Free)})
	}
	table("Networks", []string{"network", "subnet", "router", "isolation", "ports", "free"}, rows)
	rows = nil
	for _, c := range g.Containers {
		st := "up"
		if !c.Up {
			st = "down"
		}
		rows = append(rows, []string{c.Name, c.Network, dash(c.Node), c.IP, st})
	}
	table("Containers", []string{"container", "network", "node", "IP", "port"}, rows)
	rows = nil
	for _, s := range g.Services {
		rows = append(rows, []string{s.Network + "/" + s.Name, s.VIP, listOr(backendNames(s), "-")})
	}
	table("Services", []string{"service", "VIP", "backends"}, rows)
	rows = nil
	for _, p := range g.Policies {
		rows = append(rows, []string{p.Name, p.Action, p.What, strings.Join(p.From, ", "), p.Network, fmt.Sprint(p.Priority)})
	}
	table("Policies", []string{"policy", "action", "traffic", "from", "to", "priority"}, rows)
	rows = nil
	for _, t := range g.Tunnels {
		rows = append(rows, []string{t.A + " ↔ " + t.B, dash(t.Type), t.State, t.Source, t.Detail})
	}
	table("Tunnels", []string{"nodes", "type", "state", "from", "detail"}, rows)
	rows = nil
	for _, gw := range g.Gateways {
		rows = append(rows, []string{dash(gw.Router), dash(gw.ExternalIP), dash(gw.NextHop), listOr(gw.Nodes, "-"), dash(gw.State), listOr(gw.Sites, "-")})
	}
	table("Gateways", []string{"router", "external address", "next hop", "nodes (priority order)", "state", "sites"}, rows)
	if g.SBError != "" {
		fmt.Fprintf(b, "<p class=\"down\">southbound unreadable (no chassis state, no tunnels): %s</p>\n", esc(g.SBError))
	}
	for _, w := range g.Warnings {
		fmt.Fprintf(b, "<p class=\"down\">warning: %s</p>\n", esc(w))
	}
}
