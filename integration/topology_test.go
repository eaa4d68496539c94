package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// topoLab is the test's overlay on the shared lab: 2 routers, 3 networks,
// 6 containers (2 per node, named by alias), a service and a policy.
type topoLab struct {
	l                 *lab.Lab
	routers, networks []string
	containers        map[string]*container // alias -> container
	service, policy   string
	gateway           string // r1's external IP
}

func (tl *topoLab) names() []string {
	out := append(append([]string{}, tl.routers...), tl.networks...)
	for a := range tl.containers {
		out = append(out, a)
	}
	return append(out, tl.service, tl.policy, tl.gateway)
}

func newTopoLab(t *testing.T, ctx context.Context) *topoLab {
	t.Helper()
	l := sharedLab(t)
	nb := cniNB(t, l)
	tl := &topoLab{l: l, containers: map[string]*container{}}
	r1, r2 := segName("tpa"), segName("tpb")
	web, api, db := segName("tpweb"), segName("tpapi"), segName("tpdb")
	tl.routers = []string{r1, r2}
	tl.networks = []string{web, api, db}
	segRouter(t, nb, r1)
	segRouter(t, nb, r2)
	segNet(t, nb, web, "198.19.251.0/24", r1, "")
	segNet(t, nb, api, "198.19.252.0/24", r1, policy.DefaultDeny)
	segNet(t, nb, db, "198.19.253.0/24", r2, "")
	caps := map[string]interface{}{"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}}
	for i, spec := range []struct{ alias, net string }{
		{"tw1", web}, {"tw2", web}, {"ti1", api}, {"ti2", api}, {"td1", db}, {"td2", db},
	} {
		c := newContainer(t, newRuntime(t, l.Nodes[i%3]), confList(t, spec.net, "1.1.0", caps))
		c.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{spec.alias}}
		c.mustAdd(t, ctx)
		tl.containers[spec.alias] = c
	}
	tl.service = "front"
	if _, err := service.Create(ctx, nb, service.Spec{Name: tl.service, Network: web, VIP: "198.19.254.1:80",
		Backends: []string{tl.containers["tw1"].ip().String() + ":8080", tl.containers["tw2"].ip().String() + ":8080"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := service.Delete(context.Background(), nb, web, tl.service); err != nil {
			t.Errorf("cleanup service: %v", err)
		}
	})
	// r1's way out: a gateway on nodes 1 and 2 (the shared lab has no
	// external network, so it is bound nowhere; topology shows it as such)
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	tl.gateway = "198.18.100.91"
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: r1, ExternalNet: netip.MustParsePrefix(lab.ExternalCIDR),
		ExternalIP: netip.MustParseAddr(tl.gateway), NextHop: netip.MustParseAddr(lab.ExternalHostIP),
		Nodes: []string{l.Nodes[0].SystemID, l.Nodes[1].SystemID}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gateway.Unset(context.Background(), nb, r1); err != nil {
			t.Errorf("cleanup gateway: %v", err)
		}
	})
	tl.policy = segName("tpallow")
	segPolicy(t, nb, policy.Spec{Name: tl.policy, Network: api, Action: policy.Allow, From: []string{web}, Proto: "tcp", Port: "8080", Priority: 100})
	return tl
}

// ovlmgrRun runs the built ovlmgr and returns stdout, stderr and the exit code.
func ovlmgrRun(t *testing.T, ctx context.Context, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, ovlmgrBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("ovlmgr %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// TestTopologyViews: the topology of a lab with 2 routers, 3 networks, 6
// containers on 3 nodes, a service and a policy, in every format: text and
// JSON name everything; the DOT parses (gonum's parser, and graphviz's dot
// lays it out) with the policy edge between the networks; the SVG is
// well-formed XML with a group per object; the HTML page opened in headless
// chromium shows every network and container; `topology serve` updates the
// open page when a network appears. Also completion (scripts parse, names
// come from the NB, bash really completes) and trace --exit-code.
func TestTopologyViews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tl := newTopoLab(t, ctx)
	l := tl.l
	web, api := tl.networks[0], tl.networks[1]

	out := map[string]string{}
	for _, f := range []string{"text", "json", "dot", "svg", "html"} {
		o, e, code := ovlmgrRun(t, ctx, nil, "topology", "--lab", l.Name, "-o", f)
		if code != 0 {
			t.Fatalf("topology -o %s: exit %d: %s", f, code, e)
		}
		for _, n := range tl.names() {
			if !strings.Contains(o, n) {
				t.Errorf("topology -o %s does not name %s", f, n)
			}
		}
		for _, n := range l.Nodes {
			if !strings.Contains(o, n.SystemID) {
				t.Errorf("topology -o %s does not name node %s", f, n.SystemID)
			}
		}
		out[f] = o
	}
	t.Run("json", func(t *testing.T) {
		var g topology.Graph
		if err := json.Unmarshal([]byte(out["json"]), &g); err != nil {
			t.Fatal(err)
		}
		byName := map[string]topology.Container{}
		for _, c := range g.Containers {
			byName[c.Network+"/"+c.Name] = c
		}
		for alias, c := range tl.containers {
			var net string
			for _, n := range tl.networks {
				if _, ok := byName[n+"/"+alias]; ok {
					net = n
				}
			}
			got := byName[net+"/"+alias]
			if got.Node != c.rt.node.SystemID || got.IP != c.ip().String() || !got.Up {
				t.Errorf("container %s: %+v; want on %s with %s, up", alias, got, c.rt.node.SystemID, c.ip())
			}
		}
		// The gateway makes ovn-controller run BFD on the tunnels to the
		// gateway nodes: their state comes from BFD once the sessions are
		// up (they start as "init"); the others' from the tunnel interfaces.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var bad []topology.Tunnel
			for _, tn := range g.Tunnels {
				if tn.State != topology.TunnelUp || (tn.Source != "ovs" && tn.Source != "bfd") {
					bad = append(bad, tn)
				}
			}
			if len(bad) == 0 {
				t.Logf("tunnels: %+v", g.Tunnels)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tunnels %+v; want up (from the nodes' OVS or BFD) within 30 s", bad)
			}
			time.Sleep(500 * time.Millisecond)
			o, e, code := ovlmgrRun(t, ctx, nil, "topology", "--lab", l.Name, "-o", "json")
			g = topology.Graph{}
			if err := json.Unmarshal([]byte(o), &g); code != 0 || err != nil {
				t.Fatalf("topology -o json: exit %d, %v: %s", code, err, e)
			}
		}
		bfd := 0
		for _, tn := range g.Tunnels {
			if tn.Source == "bfd" {
				bfd++
			}
		}
		if bfd == 0 {
			t.Errorf("no tunnel state from BFD with a gateway on n1, n2: %+v", g.Tunnels)
		}
		if len(g.Tunnels) != 3 {
			t.Errorf("%d tunnels; want 3 between 3 nodes: %+v", len(g.Tunnels), g.Tunnels)
		}
		if len(g.Gateways) != 1 || g.Gateways[0].Router != tl.routers[0] || g.Gateways[0].ExternalIP != tl.gateway+"/24" ||
			fmt.Sprint(g.Gateways[0].Nodes) != fmt.Sprint([]string{l.Nodes[0].SystemID, l.Nodes[1].SystemID}) || g.Gateways[0].State == "" {
			t.Errorf("gateways %+v; want r1's at %s/24 on n1, n2 with a state", g.Gateways, tl.gateway)
		}
		if n := g.Network(api); n == nil || n.Isolation != policy.DefaultDeny || n.Router != tl.routers[0] {
			t.Errorf("network %s: %+v; want default-deny on router %s", api, n, tl.routers[0])
		}
	})
	t.Run("dot", func(t *testing.T) {
		f, err := dot.ParseString(out["dot"])
		if err != nil {
			t.Fatalf("DOT does not parse: %v\n%s", err, out["dot"])
		}
		edges := map[string]bool{}
		var walk func([]ast.Stmt)
		walk = func(stmts []ast.Stmt) {
			for _, s := range stmts {
				switch s := s.(type) {
				case *ast.EdgeStmt:
					edges[strings.Trim(s.From.String(), `"`)+" -> "+strings.Trim(s.To.Vertex.String(), `"`)] = true
				case *ast.Subgraph:
					walk(s.Stmts)
				}
			}
		}
		walk(f.Graphs[0].Stmts)
		for _, e := range []string{"net:" + web + " -> net:" + api, "router:" + tl.routers[0] + " -> net:" + web,
			"router:" + tl.routers[0] + " -> gw:" + tl.routers[0] + ":gw", "gw:" + tl.routers[0] + ":gw -> node:" + l.Nodes[1].SystemID} {
			if !edges[e] {
				t.Errorf("DOT has no edge %s", e)
			}
		}
		prereq.Bins(t, "dot")
		cmd := exec.CommandContext(ctx, "dot", "-Tsvg")
		cmd.Stdin = strings.NewReader(out["dot"])
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "<svg") {
			t.Errorf("graphviz dot -Tsvg: %v: %.300s", err, b)
		}
	})
	t.Run("svg", func(t *testing.T) {
		groups := svgGroups(t, out["svg"])
		for _, n := range tl.networks {
			if !groups["network:"+n] {
				t.Errorf("SVG has no network group %s", n)
			}
		}
		for a := range tl.containers {
			if !groups["container:"+a] {
				t.Errorf("SVG has no container group %s", a)
			}
		}
		if !groups["policy:"+tl.policy] || !groups["service:"+tl.service] || !groups["router:"+tl.routers[1]] || !groups["gateway:"+tl.routers[0]+":gw"] {
			t.Errorf("SVG lacks the policy, service or router groups: %v", groups)
		}
	})
	t.Run("html in chromium", func(t *testing.T) {
		page := out["html"]
		if m := regexp.MustCompile(`(src|href)=|https?://[^"]*`).FindAllString(page, -1); len(m) != 1 || m[0] != "http://www.w3.org/2000/svg" {
			t.Errorf("page refers to outside resources: %v; want only the SVG namespace", m)
		}
		file := filepath.Join(t.TempDir(), "topology.html")
		if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		bctx := browser(t, ctx)
		if err := chromedp.Do(bctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("svg.ovl-topology"))); err != nil {
			t.Fatal(err)
		}
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](shownJS))
		if err != nil {
			t.Fatal(err)
		}
		assertShown(t, shown, tl)
	})
	t.Run("serve live", func(t *testing.T) {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		cmd := exec.CommandContext(sctx, ovlmgrBin(t), "topology", "serve", "--lab", l.Name, "--listen", "127.0.0.1:0")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stop(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(stderr)
		if !sc.Scan() {
			t.Fatalf("topology serve printed nothing: %v", sc.Err())
		}
		url := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "serving the topology on ")
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		bctx := browser(t, ctx)
		if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#status.live`)),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`g.network[data-name=%q]`, web)))); err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](shownJS))
		if err != nil {
			t.Fatal(err)
		}
		assertShown(t, shown, tl)
		added := segName("tplive")
		start := time.Now()
		segNet(t, cniNB(t, l), added, "198.19.250.0/24", tl.routers[1], "")
		wctx, wcancel := context.WithTimeout(bctx, 15*time.Second)
		defer wcancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`g.network[data-name=%q]`, added)))); err != nil {
			t.Fatalf("the open page did not show network %s created after it loaded: %v", added, err)
		}
		t.Logf("a new network appeared on the open page %v after its creation", time.Since(start).Round(time.Millisecond))
	})
	t.Run("completion", func(t *testing.T) {
		prereq.Bins(t, "bash", "zsh", "fish")
		for _, sh := range []string{"bash", "zsh", "fish"} {
			script, e, code := ovlmgrRun(t, ctx, nil, "completion", sh)
			if code != 0 || !strings.Contains(script, "__complete") {
				t.Fatalf("completion %s: exit %d: %s%s", sh, code, e, script)
			}
			cmd := exec.CommandContext(ctx, sh, "-n") // fish: --no-execute
			cmd.Stdin = strings.NewReader(script)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n on the %s script: %v: %s", sh, sh, err, b)
			}
		}
		env := []string{"OVLMGR_NB=" + l.NB}
		got, _, _ := ovlmgrRun(t, ctx, env, "__complete", "--", "net", "show", "")
		for _, n := range tl.networks {
			if !strings.Contains("\n"+got, "\n"+n+"\n") {
				t.Errorf("__complete net show: %q lacks network %s", got, n)
			}
		}
		got, _, _ = ovlmgrRun(t, ctx, env, "__complete", "--", "router", "attach", tl.routers[0], "tpw")
		if strings.TrimSpace(got) != web {
			t.Errorf("__complete router attach R tpw: %q; want %s", got, web)
		}
		got, _, _ = ovlmgrRun(t, ctx, nil, "__complete", "--", "trace", "--lab", l.Name, "tw")
		if got != "tw1\ntw2\n" {
			t.Errorf("__complete trace --lab L tw: %q; want tw1, tw2", got)
		}
		// bash itself: source the script, complete `ovlmgr net show <TAB>`.
		script, _, _ := ovlmgrRun(t, ctx, nil, "completion", "bash")
		cmd := exec.CommandContext(ctx, "bash", "-c", script+`
COMP_WORDS=(ovlmgr net show tpw); COMP_CWORD=3; _ovlmgr; printf '%s\n' "${COMPREPLY[@]}"`)
		cmd.Env = append(os.Environ(), "OVLMGR_NB="+l.NB, "PATH="+filepath.Dir(ovlmgrBin(t))+":"+os.Getenv("PATH"))
		b, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != web {
			t.Errorf("bash completion of `ovlmgr net show tpw`: %v: %q; want %s", err, b, web)
		}
		// fish too: `complete -C` asks fish for the completions of a line.
		fishScript, _, _ := ovlmgrRun(t, ctx, nil, "completion", "fish")
		cmd = exec.CommandContext(ctx, "fish", "--no-config", "-c", fishScript+"\ncomplete -C 'ovlmgr router attach "+tl.routers[0]+" tpw'")
		cmd.Env = append(os.Environ(), "OVLMGR_NB="+l.NB, "PATH="+filepath.Dir(ovlmgrBin(t))+":"+os.Getenv("PATH"))
		b, err = cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != web {
			t.Errorf("fish completion of `ovlmgr router attach R tpw`: %v: %q; want %s", err, b, web)
		}
		got, _, _ = ovlmgrRun(t, ctx, nil, "__complete", "--", "net", "create", "--sub")
		if got != "--subnet\n--subnet6\n" {
			t.Errorf("__complete net create --sub: %q; want --subnet and --subnet6", got)
		}
		got, _, _ = ovlmgrRun(t, ctx, nil, "__complete", "--", "net", "create", "--subnet6")
		if got != "--subnet6\n" {
			t.Errorf("__complete net create --subnet6: %q; want --subnet6", got)
		}
	})
	t.Run("trace exit codes", func(t *testing.T) {
		from, to := tl.containers["tw1"], tl.containers["ti1"]
		for _, tc := range []struct {
			to, port string
			code     int
			want     string
		}{
			{to.ip().String(), "8080", 0, "DELIVERED"},
			{to.ip().String(), "22", 1, "DROPPED"},
			{"nosuch-container", "22", 2, "nosuch-container"},
		} {
			o, e, code := ovlmgrRun(t, ctx, nil, "trace", "--exit-code", "--lab", l.Name, from.id, tc.to, "--proto", "tcp", "--port", tc.port)
			if code != tc.code || !strings.Contains(o+e, tc.want) {
				t.Errorf("trace --exit-code to %s tcp/%s: exit %d; want %d with %q:\n%s%s", tc.to, tc.port, code, tc.code, tc.want, o, e)
			}
		}
	})
}

// shownJS lists what the page draws: "kind:name" of every SVG group whose
// box has a size, plus "text:" each drawn SVG text.
const shownJS = `(() => {
  const out = [];
  document.querySelectorAll('svg.ovl-topology g[data-name]').forEach(g => {
    const r = g.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) out.push(g.getAttribute('class') + ':' + g.getAttribute('data-name'));
  });
  document.querySelectorAll('svg.ovl-topology text').forEach(t => {
    if (t.getBoundingClientRect().width > 0) out.push('text:' + t.textContent);
  });
  return out;
})()`

func assertShown(t *testing.T, shown []string, tl *topoLab) {
	t.Helper()
	set := map[string]bool{}
	text := ""
	for _, s := range shown {
		set[s] = true
		text += s + "\n"
	}
	for _, n := range tl.networks {
		if !set["network:"+n] || !strings.Contains(text, "text:network "+n+"\n") {
			t.Errorf("the browser does not show network %s", n)
		}
	}
	for a := range tl.containers {
		if !set["container:"+a] || !strings.Contains(text, "text:"+a+"\n") {
			t.Errorf("the browser does not show container %s", a)
		}
	}
	if t.Failed() {
		t.Logf("shown:\n%s", text)
	}
}

// browser starts headless chromium (Debian's) for the test.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	prereq.Bins(t, "chromium")
	path, _ := exec.LookPath("chromium")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// svgGroups parses the SVG as XML and returns "class:data-name" of its groups.
func svgGroups(t *testing.T, svg string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			var class, name string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "data-name":
					name = a.Value
				}
			}
			out[class+":"+name] = true
		}
	}
	return out
}
