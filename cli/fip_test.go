package main

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
)

func TestFIPCommands(t *testing.T) {
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	ovl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", nbs.Endpoint, "--sb", sbs.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	sbs.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	for _, args := range [][]string{{"router", "create", "r1"}, {"net", "create", "web", "--subnet", "198.19.0.0/24", "--router", "r1"},
		{"router", "gateway", "set", "r1", "--external-net", "198.18.100.0/24", "--ip", "198.18.100.10", "--next-hop", "198.18.100.1", "--nodes", "n1"}} {
		if code, out, errs := ovl(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	nb, err := dbconn.ConnectNB(context.Background(), nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, err := ovnport.Create(context.Background(), nb, ovnport.Spec{Network: "web", Node: "n2", Container: "3f9c2a1b77", IfName: "eth0",
		IP: netip.MustParseAddr("198.19.0.5"), Subnet: netip.MustParsePrefix("198.19.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := ovl("fip", "create", "198.18.100.20", "--container", "3f9c")
	if code != 0 || !strings.Contains(out, "floating IP 198.18.100.20 -> container 3f9c2a1b77 (eth0 198.19.0.5, network web) on router r1: centralized") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	// trace from outside names the floating IP and says why it is not reached here (nothing bound).
	code, out, _ = ovl("trace", "external", "198.18.100.20")
	if !strings.Contains(out, "external -> ") || !strings.Contains(out, "external: floating IP 198.18.100.20 on gateway (none bound)") || !strings.Contains(out, "DROPPED") {
		t.Errorf("trace external: exit %d\n%s", code, out)
	}
	// port list shows published ports.
	p, _ := ovnport.List(context.Background(), nb, ovnport.Filter{Container: "3f9c2a1b77"})
	if _, err := publish.Publish(context.Background(), nb, publish.Spec{Network: "web", Port: p[0].Name, Container: "3f9c2a1b77", IfName: "eth0",
		Node: "n2", IP: p[0].IP, Mappings: []publish.Mapping{{HostPort: 8080, ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = ovl("port", "list", "--net", "web")
	if code != 0 || !strings.Contains(out, "PUBLISHED") || !strings.Contains(out, "198.18.100.10:8080->80/tcp") {
		t.Errorf("port list: exit %d\n%s", code, out)
	}
	code, out, _ = ovl("fip", "list")
	if code != 0 || !strings.Contains(out, "198.18.100.20") || !strings.Contains(out, "centralized") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	// Bad input: one line naming the flag (or argument), the value and why.
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"fip", "create", "198.18.101.1", "--container", "3f9c"}, 1, `ip 198.18.101.1: outside the external network: router "r1"'s external network is 198.18.100.0/24`},
		{[]string{"fip", "create", "198.18.100.20", "--container", "3f9c"}, 1, "ip 198.18.100.20: address in use: the floating IP of container 3f9c2a1b77"},
		{[]string{"fip", "create", "198.18.100.21", "--container", "nosuch"}, 1, `--container "nosuch": unknown container`},
		{[]string{"fip", "create", "198.18.100.21"}, 2, "--container is required"},
		{[]string{"fip", "create", "nonsense", "--container", "3f9c"}, 2, `ip "nonsense": want an IPv4 or IPv6 address`},
		{[]string{"fip", "delete", "198.18.100.99"}, 1, "ip 198.18.100.99: floating IP not found"},
	} {
		code, _, errs := ovl(c.args...)
		if code != c.code || !strings.Contains(errs, c.says) {
			t.Errorf("%v: exit %d %q; want exit %d saying %q", c.args, code, errs, c.code, c.says)
		}
	}
	code, out, _ = ovl("fip", "delete", "198.18.100.20")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: exit %d %s", code, out)
	}
	code, out, _ = ovl("fip", "list", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after delete: exit %d %s", code, out)
	}
}
