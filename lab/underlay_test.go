package lab

import (
	"strings"
	"testing"
	"time"
)

// TestUnderlaysOption: nodes split over the underlays in order with their
// addresses, the WAN MTU defaults to the underlay MTU, and out-of-range
// values are refused naming the option and what is allowed.
func TestUnderlaysOption(t *testing.T) {
	o := Options{Nodes: 5, Underlays: 2, WANMTU: 1400, Gateways: []string{"none"}, Dir: "/tmp/x", Insecure: true}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	l := plan(o)
	var got []string
	for _, n := range l.Nodes {
		got = append(got, n.Name+"@"+n.EncapIP)
	}
	want := "n1@198.18.1.11 n2@198.18.1.12 n3@198.18.1.13 n4@198.18.2.14 n5@198.18.2.15"
	if strings.Join(got, " ") != want {
		t.Errorf("plan: %s, want %s", strings.Join(got, " "), want)
	}
	if l.PathMTU() != 1400 || l.joinPathMTU() != 1400 || !strings.HasSuffix(l.RouterNetNS, "/ovl-r") {
		t.Errorf("path MTU %d, join %d, router %s; want 1400, 1400, .../ovl-r", l.PathMTU(), l.joinPathMTU(), l.RouterNetNS)
	}
	flat := Options{Nodes: 3, Gateways: []string{"none"}, Dir: "/tmp/x", Insecure: true}
	if err := flat.defaults(); err != nil {
		t.Fatal(err)
	}
	if fl := plan(flat); fl.Nodes[2].EncapIP != "198.18.0.13" || fl.joinPathMTU() != 0 || fl.RouterNetNS != "" {
		t.Errorf("flat lab: n3 %s, join path MTU %d, router %q; want 198.18.0.13, 0, none", fl.Nodes[2].EncapIP, fl.joinPathMTU(), fl.RouterNetNS)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Nodes: 2, Underlays: 3}, "lab underlays 3: allowed 1 to 9 and at most the number of nodes (2)"},
		{Options{Nodes: 3, WANMTU: 1400}, "only with 2 or more underlays"},
		{Options{Nodes: 4, Underlays: 2, WANMTU: 1600}, "lab wan mtu 1600: allowed 1280 to the underlay MTU 1500"},
		{Options{Nodes: 4, Underlays: 2, WANDelay: 2 * time.Second}, "lab wan delay 2s: allowed 0 to 1s"},
	} {
		c.o.Dir = "/tmp/x"
		if err := c.o.defaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.o, err, c.want)
		}
	}
}
