package network_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// TestIPv6UnindexedOverlap: a network whose /64 is not in the IPv6 overlap
// index (created before the ovlmgr.io/ipv6 key existed, or given its
// ipv6_prefix by hand, in either form ovn-northd reads) still holds its
// /64: a new network with it, dual-stack or IPv6-only, is refused naming
// that network, with nothing written; a network of another scope (a
// router's) may still reuse the /64 but not move into the global scope
// with it, and a new /64 is taken.
func TestIPv6UnindexedOverlap(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	unindex := func(name string, prefix string) {
		t.Helper()
		ops := []ovsdb.Operation{dbops.DelKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(name)}, "external_ids", network.KeyIPv6)}
		if prefix != "" {
			ops = append(ops, dbops.AddPairs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(name)}, "other_config",
				map[string]string{network.ConfigIPv6Prefix: prefix}))
		}
		if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
			t.Fatal(err)
		}
		if _, ok := switchNamed(t, c, name).ExternalIDs[network.KeyIPv6]; ok {
			t.Fatalf("%s still indexed", name)
		}
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6old", Subnet: "198.19.40.0/24", IPv6Subnet: "fd00:198:19:40::/64"}); err != nil {
		t.Fatal(err)
	}
	unindex("p6old", "")
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6cidr", Subnet: "198.19.42.0/24", IPv6Subnet: "fd00:198:19:42::/64"}); err != nil {
		t.Fatal(err)
	}
	// ovn-northd also reads ipv6_prefix with its length: "fd00:198:19:42::/64".
	if _, err := dbconn.Transact(ctx, c, dbops.DelKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs("p6cidr")}, "other_config",
		network.ConfigIPv6Prefix)); err != nil {
		t.Fatal(err)
	}
	unindex("p6cidr", "fd00:198:19:42::/64")

	dump := func() string {
		var b strings.Builder
		for _, table := range []string{"Logical_Switch", "DHCP_Options", "DNS", "Logical_Switch_Port", "Port_Group", "Logical_Router"} {
			b.WriteString(srv.Run(t, "ovn-nbctl", "list", table))
		}
		return b.String()
	}
	before := dump()
	for _, tc := range []struct {
		s      network.Spec
		holder string
	}{
		{network.Spec{Name: "p6new", Subnet: "198.19.41.0/24", IPv6Subnet: "fd00:198:19:40::/64"}, "p6old"},
		{network.Spec{Name: "p6new", IPv6Subnet: "fd00:198:19:40::/64"}, "p6old"},
		{network.Spec{Name: "p6new", Subnet: "198.19.41.0/24", IPv6Subnet: "fd00:198:19:42::/64"}, "p6cidr"},
	} {
		_, err := network.Create(ctx, c, tc.s)
		var fe *names.FieldError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.s.IPv6Subnet) ||
			!strings.Contains(err.Error(), `is the IPv6 subnet of network "`+tc.holder+`"`) {
			t.Errorf("Create(%+v) = %v; want an ipv6 subnet error naming network %q", tc.s, err, tc.holder)
		}
		if after := dump(); after != before {
			t.Errorf("Create(%+v) refused but wrote:\nbefore:\n%s\nafter:\n%s", tc.s, before, after)
		}
	}

	// Another scope may reuse the /64; a /64 nobody holds is taken.
	if _, err := router.Create(ctx, c, "p6r", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6routed", Subnet: "198.19.43.0/24", IPv6Subnet: "fd00:198:19:40::/64", Router: "p6r"}); err != nil {
		t.Errorf("a router's network with the /64 of an unindexed network of the global scope: %v", err)
	}
	// Moving a network into the global scope (detach) meets the same check.
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6moved", Subnet: "198.19.45.0/24", IPv6Subnet: "fd00:198:19:42::/64", Router: "p6r"}); err != nil {
		t.Fatal(err)
	}
	if err := network.Detach(ctx, c, "p6moved", "p6r"); err == nil || !strings.Contains(err.Error(), `network "p6cidr"`) {
		t.Errorf("detach a network onto the /64 of unindexed p6cidr: %v; want it refused naming p6cidr", err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6free", Subnet: "198.19.44.0/24", IPv6Subnet: "fd00:198:19:44::/64"}); err != nil {
		t.Errorf("a free /64: %v", err)
	}

	// Race: the guards read before an unindexed network takes the /64
	// fail the transaction that carries them (it then reads again).
	late := netip.MustParsePrefix("fd00:198:19:46::/64")
	guards, holder, err := network.IPv6GuardsOf(ctx, c, "", late)
	if err != nil || holder != "" {
		t.Fatalf("guards of a free /64: holder %q, %v", holder, err)
	}
	if _, err := dbconn.Transact(ctx, c, guards...); err != nil {
		t.Fatalf("guards of a free /64, nothing changed: %v", err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "p6late", Subnet: "198.19.46.0/24", IPv6Subnet: late.String()}); err != nil {
		t.Fatal(err)
	}
	unindex("p6late", "")
	if _, err := dbconn.Transact(ctx, c, guards...); !dbconn.FailedWait(err, 1) {
		t.Errorf("guards read before an unindexed network took the /64: %v; want the wait on unindexed networks to fail", err)
	}
	if _, holder, err := network.IPv6GuardsOf(ctx, c, "", late); err != nil || holder != "p6late" {
		t.Errorf("guards read again: holder %q (%v); want p6late", holder, err)
	}
}
