package policy_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// TestIPv6Sources (real ovsdb-server): a policy with CIDRs of both
// families keeps them in one address set per family, the ACL matches both
// (and the source network's IPv4 and IPv6 addresses), and Delete removes
// both sets.
func TestIPv6Sources(t *testing.T) {
	_, c := nb(t)
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	addNetwork(t, c, "app", "198.18.2.0/24", policy.DefaultDeny)
	p, err := policy.Create(ctx, c, policy.Spec{Name: "dual", Network: "app", Action: policy.Allow,
		From: []string{"web", "fd00:198:18:9::/64", "198.18.9.0/24", "fd00:198:18:8::7"}, Proto: "tcp", Port: "8080"})
	if err != nil {
		t.Fatal(err)
	}
	want := "outport == @ovl_app && ip && (ip4.src == $ovl_web_ip4 || ip6.src == $ovl_web_ip6 || ip4.src == $ovlpol_dual || ip6.src == $ovlpol6_dual) && tcp && tcp.dst == 8080"
	if p.Match != want {
		t.Errorf("match %q\n want %q", p.Match, want)
	}
	sets := func() map[string][]string {
		rows, err := dbops.SelectRows[nbdb.AddressSet](ctx, c, []ovsdb.Condition{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, r := range rows {
			a := slices.Clone(r.Addresses)
			slices.Sort(a)
			out[r.Name] = a
		}
		return out
	}
	got := sets()
	if !slices.Equal(got["ovlpol_dual"], []string{"198.18.9.0/24"}) ||
		!slices.Equal(got["ovlpol6_dual"], []string{"fd00:198:18:8::7/128", "fd00:198:18:9::/64"}) {
		t.Errorf("address sets %v; want ovlpol_dual [198.18.9.0/24], ovlpol6_dual [fd00:198:18:8::7/128 fd00:198:18:9::/64]", got)
	}
	if err := policy.Delete(ctx, c, "dual"); err != nil {
		t.Fatal(err)
	}
	if got := sets(); len(got["ovlpol_dual"])+len(got["ovlpol6_dual"]) != 0 {
		t.Errorf("address sets after delete: %v", got)
	}
}
