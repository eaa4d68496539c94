package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/graph/formats/dot"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// sample is a graph with every kind of object, a down tunnel, a container
// that is down, a CIDR policy source and a gateway with sites.
func sample() *topology.Graph {
	return &topology.Graph{
		Routers: []topology.Router{{Name: "r1", Networks: []string{"api", "web"}}},
		Networks: []topology.Network{
			{Name: "api", Subnet: "198.19.2.0/24", Router: "r1", Isolation: "default-deny", Ports: 1, Free: 252},
			{Name: "lone", Subnet: "198.19.9.0/24", Isolation: "default-allow"},
			{Name: "web", Subnet: "198.19.1.0/24", Router: "r1", Isolation: "default-allow", Ports: 2, Free: 251},
		},
		Nodes: []topology.Node{{Name: "n1", EncapIP: "198.18.0.11", Connected: true, InSB: true}, {Name: "n2", EncapIP: "198.18.0.12", InSB: true}},
		Containers: []topology.Container{
			{Name: "web-1", Port: "p1", Network: "web", Node: "n1", IP: "198.19.1.2", Up: true},
			{Name: "api-1", Port: "p3", Network: "api", Node: "n2", IP: "198.19.2.2"},
			{Name: "web-2", Port: "p2", Network: "web", Node: "n2", IP: "198.19.1.3", Up: true},
		},
		Services: []topology.Service{{Name: "front", Network: "web", VIP: "198.19.1.100:80/tcp",
			Backends: []topology.Backend{{Addr: "198.19.1.2:8080", Container: "web-1"}, {Addr: "198.19.1.77:8080"}}}},
		Policies: []topology.Policy{{Name: "web-to-api", Network: "api", Action: "allow", From: []string{"web", "198.18.9.0/24"}, What: "tcp/8080", Priority: 100}},
		Tunnels:  []topology.Tunnel{{A: "n1", B: "n2", Type: "geneve", State: topology.TunnelDown, Source: "sb", Detail: "ovn-controller not connected on n2"}},
		Gateways: []topology.Gateway{{Name: "r1:gw", Router: "r1", ExternalIP: "198.18.100.9/24", NextHop: "198.18.100.1",
			Nodes: []string{"n1", "n2"}, Active: "n1", State: "active on n1", Sites: []string{"paris"}}},
	}
}

func names() []string {
	return []string{"r1", "api", "lone", "web", "n1", "n2", "web-1", "web-2", "api-1", "front", "web-to-api", "198.18.100.9/24", "active on n1", "paris", "198.18.9.0/24"}
}

func TestFormatsNameEverything(t *testing.T) {
	g := sample()
	for name, f := range map[string]func(io.Writer) error{
		"text": func(w io.Writer) error { return Text(w, g) },
		"dot":  func(w io.Writer) error { return DOT(w, g) },
		"svg":  func(w io.Writer) error { return SVG(w, g) },
		"html": func(w io.Writer) error { return HTML(w, g, HTMLOptions{}) },
	} {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range names() {
			if !strings.Contains(b.String(), n) {
				t.Errorf("%s does not name %s", name, n)
			}
		}
		if !strings.Contains(b.String(), "down") {
			t.Errorf("%s does not show the down tunnel", name)
		}
	}
}

func TestDOTParses(t *testing.T) {
	var b bytes.Buffer
	if err := DOT(&b, sample()); err != nil {
		t.Fatal(err)
	}
	f, err := dot.ParseString(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(f.Graphs) != 1 || !f.Graphs[0].Directed {
		t.Fatalf("want one digraph, got %+v", f.Graphs)
	}
	// names with quotes and backslashes stay one ID
	g := sample()
	g.Networks[0].Name = `we"ird\name`
	b.Reset()
	if err := DOT(&b, g); err != nil {
		t.Fatal(err)
	}
	if _, err := dot.ParseString(b.String()); err != nil {
		t.Fatalf("DOT with a quote in a name: %v", err)
	}
}

func TestSVGWellFormed(t *testing.T) {
	g := sample()
	g.Containers[0].Name = `<script>&"x"`
	var b bytes.Buffer
	if err := SVG(&b, g); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	groups := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			groups++
		}
	}
	// 1 router band + 1 "no router" band, 2 nodes, 1 tunnel, 3 networks,
	// 3 containers, 1 service, 2 policy arcs, 1 gateway
	if groups != 15 {
		t.Errorf("%d groups; want 15", groups)
	}
}

func TestServer(t *testing.T) {
	s := NewServer()
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.Update(sample(), nil)
	for path, want := range map[string]string{"/": `data-live="1"`, "/fragment": "web-1", "/topology.svg": "<svg",
		"/topology.dot": "digraph", "/topology.json": `"web-1"`, "/topology.txt": "tunnels:"} {
		r, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want %q in %.200s", path, r.StatusCode, want, body)
		}
	}
	// the event stream: the current version at once, then one per update
	r, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	want := func(s string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		acc := ""
		for !strings.Contains(acc, s) {
			select {
			case c := <-got:
				acc += c
			case <-deadline:
				t.Fatalf("event stream: %q; want %q", acc, s)
			}
		}
	}
	want("data: 1\n\n")
	s.Update(sample(), nil)
	want("data: 2\n\n")
}

// BenchmarkRender: rendering 1,000 networks on 10 routers with 3,000
// containers on 50 nodes, per format (CPU only; reading is in Read).
func BenchmarkRender(b *testing.B) {
	g := &topology.Graph{}
	for r := 0; r < 10; r++ {
		g.Routers = append(g.Routers, topology.Router{Name: fmt.Sprintf("r%d", r)})
	}
	for n := 0; n < 50; n++ {
		g.Nodes = append(g.Nodes, topology.Node{Name: fmt.Sprintf("n%02d", n), EncapIP: fmt.Sprintf("198.18.0.%d", n+10), Connected: true, InSB: true})
	}
	for i := 0; i < 1000; i++ {
		g.Networks = append(g.Networks, topology.Network{Name: fmt.Sprintf("net%04d", i), Subnet: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), Router: fmt.Sprintf("r%d", i%10), Isolation: "default-allow"})
	}
	for i := 0; i < 3000; i++ {
		g.Containers = append(g.Containers, topology.Container{Name: fmt.Sprintf("c%04d", i), Port: fmt.Sprintf("p%d", i),
			Network: fmt.Sprintf("net%04d", i%1000), Node: fmt.Sprintf("n%02d", i%50), IP: "10.0.0.1", Up: true})
	}
	for a := 0; a < 50; a++ {
		for c := a + 1; c < 50; c++ {
			g.Tunnels = append(g.Tunnels, topology.Tunnel{A: g.Nodes[a].Name, B: g.Nodes[c].Name, Type: "geneve", State: topology.TunnelUp})
		}
	}
	for _, f := range []struct {
		name string
		f    func(io.Writer) error
	}{
		{"text", func(w io.Writer) error { return Text(w, g) }},
		{"dot", func(w io.Writer) error { return DOT(w, g) }},
		{"svg", func(w io.Writer) error { return SVG(w, g) }},
		{"html", func(w io.Writer) error { return HTML(w, g, HTMLOptions{}) }},
	} {
		b.Run(f.name, func(b *testing.B) {
			var size int
			for i := 0; i < b.N; i++ {
				var buf bytes.Buffer
				if err := f.f(&buf); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
			}
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}
