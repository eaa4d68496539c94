package trace_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
)

// TestTraceExternalInbound: `trace external ADDRESS` names the floating IP
// or published port and the container behind it, and says why it is not
// reached when nothing is bound (no chassis in this database).
func TestTraceExternalInbound(t *testing.T) {
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	sb, err := dbconn.ConnectSB(ctx, sbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if _, err := router.Create(ctx, nb, "r1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, nb, network.Spec{Name: "web", Subnet: "198.19.0.0/24", Router: "r1"}); err != nil {
		t.Fatal(err)
	}
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: "r1", ExternalNet: netip.MustParsePrefix("198.18.100.0/24"),
		ExternalIP: netip.MustParseAddr("198.18.100.10"), NextHop: netip.MustParseAddr("198.18.100.1"), Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	p, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "web", Node: "n2", Container: "c0ffee1234", IfName: "eth0",
		IP: netip.MustParseAddr("198.19.0.5"), Subnet: netip.MustParsePrefix("198.19.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(ctx, nb, publish.Spec{Network: "web", Port: p.Name, Container: p.Container, IfName: "eth0", Node: "n2", IP: p.IP,
		Mappings: []publish.Mapping{{HostPort: 8080, ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fip.Create(ctx, nb, sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.20"), Container: "c0ffee"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		to, proto string
		port      int
		external  string
		reason    string
	}{
		{"198.18.100.10", "tcp", 8080, "published 198.18.100.10:8080 -> container c0ffee1234:80 on gateway (none bound)", "is bound on no node"},
		{"198.18.100.20", "icmp", 0, "floating IP 198.18.100.20 on gateway (none bound)", "is bound on no node"},
		{"198.18.100.10", "tcp", 9090, "", "nothing is published on 198.18.100.10:9090/tcp"},
		{"198.18.100.10", "icmp", 0, "", "is no floating IP; a published port needs --proto tcp|udp and --port"},
	} {
		res, err := trace.Trace(ctx, nb, sb, sbs.Endpoint, trace.Request{From: trace.External, To: c.to, Proto: c.proto, Port: c.port})
		if err != nil {
			t.Fatalf("%s %s/%d: %v", c.to, c.proto, c.port, err)
		}
		if res.External != c.external {
			t.Errorf("%s %s/%d: external %q; want %q", c.to, c.proto, c.port, res.External, c.external)
		}
		if res.Verdict != trace.Dropped || !strings.Contains(res.Reason, c.reason) {
			t.Errorf("%s %s/%d: %s %q; want dropped saying %q", c.to, c.proto, c.port, res.Verdict, res.Reason, c.reason)
		}
	}
}
