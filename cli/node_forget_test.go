package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestNodeForget: `node forget` removes a gone node's container ports with
// their DNS names, its pool ports and its SB chassis, and nothing of
// another node; a node that shows as connected is refused unless --force;
// --dry-run removes nothing; a second run finds nothing.
func TestNodeForget(t *testing.T) {
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ovl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", nbs.Endpoint, "--sb", sbs.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	sbs.Run(t, "ovn-sbctl", "chassis-add", "gone", "geneve", "198.18.0.13")
	sbs.Run(t, "ovn-sbctl", "chassis-add", "live", "geneve", "198.18.0.11")
	// live's ovn-controller has caught up: a Chassis_Private row of its chassis.
	sbs.Run(t, "ovn-sbctl", "--id=@c", "get", "Chassis", "live", "_uuid", "--", "create", "Chassis_Private", "name=live", "chassis=@c")
	if code, out, errs := ovl("net", "create", "web", "--subnet", "198.19.0.0/24"); code != 0 {
		t.Fatalf("net create: exit %d\n%s%s", code, out, errs)
	}
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
	mk := func(node, ctr, ip string) *ovnport.Port {
		t.Helper()
		p, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "web", Node: node, Container: ctr, IfName: "eth0",
			IP: netip.MustParseAddr(ip), Subnet: netip.MustParsePrefix("198.19.0.0/24")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dns.Register(ctx, nb, dns.Host{Network: "web", Name: ctr, ContainerID: ctr, IPs: []net.IP{net.ParseIP(ip)}}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone1, gone2 := mk("gone", "g1", "198.19.0.5"), mk("gone", "g2", "198.19.0.6")
	kept := mk("live", "l1", "198.19.0.7")
	nbs.Run(t, "ovn-nbctl", "lsp-add", "web", "ovl-poolgone", "--", "set", "Logical_Switch_Port", "ovl-poolgone",
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=pool-port`, `external_ids:"ovlmgr.io/node"=gone`,
		`external_ids:"ovlmgr.io/network"=web`, `external_ids:"ovlmgr.io/pool"=ready`)

	// A connected node is refused, naming --force; nothing changes.
	if code, _, errs := ovl("node", "forget", "live"); code == 0 || !strings.Contains(errs, "connected") || !strings.Contains(errs, "--force") {
		t.Errorf("forget a connected node: exit %d, %s; want refused naming --force", code, errs)
	}
	// --dry-run lists and removes nothing.
	code, out, errs := ovl("node", "forget", "gone", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove port "+gone1.Name) || !strings.Contains(out, "would remove 1 pool port") || !strings.Contains(out, "would remove SB chassis gone") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errs)
	}
	if ps, _ := ovnport.List(ctx, nb, ovnport.Filter{Node: "gone"}); len(ps) != 2 {
		t.Errorf("dry run removed ports: %d left; want 2", len(ps))
	}
	code, out, errs = ovl("node", "forget", "gone")
	if code != 0 || !strings.Contains(out, "removed port "+gone2.Name) || !strings.Contains(out, "removed SB chassis gone") {
		t.Fatalf("forget gone: exit %d\n%s%s", code, out, errs)
	}
	if ps, err := ovnport.List(ctx, nb, ovnport.Filter{Node: "gone"}); err != nil || len(ps) != 0 {
		t.Errorf("ports of gone after forget: %v, %v; want none", ps, err)
	}
	if pp, err := ovnport.ListPool(ctx, nb, "", "gone"); err != nil || len(pp) != 0 {
		t.Errorf("pool ports of gone after forget: %v, %v; want none", pp, err)
	}
	recs, err := dns.Records(ctx, nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(func() []string {
		var s []string
		for k, v := range recs {
			s = append(s, k+"="+v)
		}
		return s
	}(), " ")
	if strings.Contains(all, "198.19.0.5") || strings.Contains(all, "198.19.0.6") || !strings.Contains(all, "198.19.0.7") {
		t.Errorf("DNS records after forget: %s; want gone's addresses gone, live's kept", all)
	}
	if _, err := ovnport.Get(ctx, nb, kept.Name); err != nil {
		t.Errorf("live's port after forgetting gone: %v", err)
	}
	chs, err := chassis.List(ctx, sb)
	if err != nil || len(chs) != 1 || chs[0].Name != "live" {
		t.Errorf("SB chassis after forget: %+v, %v; want live only", chs, err)
	}
	// Idempotent.
	if code, out, _ := ovl("node", "forget", "gone"); code != 0 || !strings.Contains(out, "removed 0 pool port") || strings.Contains(out, "removed port") {
		t.Errorf("second forget: exit %d\n%s", code, out)
	}
	// --force forgets a connected node.
	if code, out, errs := ovl("node", "forget", "live", "--force"); code != 0 || !strings.Contains(out, "removed port "+kept.Name) {
		t.Errorf("forget live --force: exit %d\n%s%s", code, out, errs)
	}
}
