package network_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
)

// TestNorthdIPAM runs the real ovn-northd on a network's switch: the
// addresses it hands out respect other_config:subnet and exclude_ips as
// ovlmgr writes them (gateway and --exclude items never given out), and
// ipv6_prefix gives each port an IPv6 address too.
func TestNorthdIPAM(t *testing.T) {
	prereq.Bins(t, "ovn-northd")
	nb, sb := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	dir := t.TempDir()
	cmd := ovsdbtest.Cmd(t, "ovn-northd", "--ovnnb-db="+nb.Endpoint, "--ovnsb-db="+sb.Endpoint,
		"--unixctl="+filepath.Join(dir, "northd.ctl"), "--log-file="+filepath.Join(dir, "northd.log"), "-vconsole:off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })

	c := connect(t, nb)
	// /29: hosts .1-.6; gateway .1 and .2..4 excluded leave .5 and .6.
	if _, err := network.Create(context.Background(), c, network.Spec{
		Name: "tiny", Subnet: "198.19.0.0/29", Exclude: []string{"198.19.0.2..198.19.0.4"}, IPv6Subnet: "fd00:198:19::/64",
	}); err != nil {
		t.Fatal(err)
	}
	nb.Run(t, "ovn-nbctl", "lsp-add", "tiny", "p1", "--", "lsp-set-addresses", "p1", "0a:58:c6:13:00:01 dynamic")
	nb.Run(t, "ovn-nbctl", "lsp-add", "tiny", "p2", "--", "lsp-set-addresses", "p2", "0a:58:c6:13:00:02 dynamic")
	var got []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got = nil
		for _, p := range []string{"p1", "p2"} {
			lsps, err := dbops.SelectRows(context.Background(), c, []ovsdb.Condition{dbops.NameIs(p)},
				func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.DynamicAddresses} })
			if err != nil || len(lsps) != 1 {
				t.Fatalf("port %s: %d rows, %v", p, len(lsps), err)
			}
			if v := lsps[0].DynamicAddresses; v == nil {
				continue
			} else if f := strings.Fields(*v); len(f) == 3 {
				got = append(got, f[1], f[2])
			}
		}
		if len(got) == 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(got) != 4 {
		log, _ := os.ReadFile(filepath.Join(dir, "northd.log"))
		t.Fatalf("northd did not assign addresses: %v\n%s", got, log)
	}
	v4 := []string{got[0], got[2]}
	sort.Strings(v4)
	if v4[0] != "198.19.0.5" || v4[1] != "198.19.0.6" {
		t.Errorf("IPv4 addresses %v; want 198.19.0.5 and 198.19.0.6 (gateway and excluded addresses skipped)", v4)
	}
	for _, a := range []string{got[1], got[3]} {
		if ip, err := netip.ParseAddr(a); err != nil || !netip.MustParsePrefix("fd00:198:19::/64").Contains(ip) {
			t.Errorf("IPv6 address %s; want one in fd00:198:19::/64", a)
		}
	}
}
