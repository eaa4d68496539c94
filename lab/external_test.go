package lab

import (
	"strings"
	"testing"
)

// TestGatewaysOption: the default gateways follow the node count, "none"
// means no external network, and anything but lab nodes is refused.
func TestGatewaysOption(t *testing.T) {
	for _, c := range []struct {
		nodes int
		in    []string
		want  string // joined result, or the error's text
		err   bool
	}{
		{1, nil, "n1", false},
		{3, nil, "n1,n2", false},
		{3, []string{"none"}, "", false},
		{3, []string{"n3", "n1"}, "n3,n1", false},
		{3, []string{"n4"}, `"n4" is not a node of the lab (n1 to n3, or none)`, true},
		{3, []string{"n01"}, `"n01" is not a node`, true},
		{3, []string{"n2", "n2"}, "n2 listed twice", true},
		{3, []string{"x"}, `"x" is not a node`, true},
	} {
		o := Options{Nodes: c.nodes, Gateways: c.in}
		err := o.checkGateways()
		if c.err {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%d nodes, gateways %q: %v, want an error saying %q", c.nodes, c.in, err, c.want)
			}
			continue
		}
		if err != nil || strings.Join(o.Gateways, ",") != c.want {
			t.Errorf("%d nodes, gateways %q: %q, %v; want %q", c.nodes, c.in, o.Gateways, err, c.want)
		}
		l := &Lab{Gateways: o.Gateways}
		l.planExternal("t")
		if (l.External != nil) != (c.want != "") {
			t.Errorf("gateways %q: External %+v", o.Gateways, l.External)
		}
		if l.External != nil && (l.External.HostIP != ExternalHostIP || l.External.NetNS != NetNSDir+"/t-x" || l.External.Bridge != "br-ex" || l.External.Physnet != "external") {
			t.Errorf("External %+v", l.External)
		}
	}
}
