package port_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestRequestedIPv6ServiceAddress: a requested IPv6 address that is the
// IPv6 health-check source or the IPv6 VIP of a service of the network is
// refused naming the service (exclude_ips, which guards IPv4, has no IPv6);
// another address passes.
func TestRequestedIPv6ServiceAddress(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "h6", "198.19.7.0/24", "198.19.7.1")
	nbs.Run(t, "ovn-nbctl", "set", "logical_switch", "h6", "other_config:ipv6_prefix=fd00:198:19:7::")
	ids := owner.IDs(owner.KindService, "api", map[string]string{owner.KeyNetwork: "h6",
		owner.KeyVIP: "[fd00:198:19:7::80]:80/tcp", "ovlmgr.io/hc-source": "fd00:198:19:7:ffff:ffff:ffff:fffe"})
	args := []string{"create", "load_balancer", "name=h6/api", `vips:"[fd00:198:19:7::80]:80"=""`}
	for k, v := range ids {
		args = append(args, `external_ids:"`+k+`"="`+v+`"`)
	}
	nbs.Run(t, "ovn-nbctl", args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, c := range []struct{ ip6, want string }{
		{"fd00:198:19:7:ffff:ffff:ffff:fffe", `the health-check source of service "api"`},
		{"fd00:198:19:7::80", `the VIP of service "api"`},
		{"fd00:198:19:7::9", ""},
	} {
		s := spec("h6", "198.19.7.0/24", "198.19.7.1", "c"+string(rune('a'+i)))
		s.Subnet6 = netip.MustParsePrefix("fd00:198:19:7::/64")
		s.IP = netip.MustParseAddr("198.19.7." + string(rune('2'+i)))
		s.IP6 = netip.MustParseAddr(c.ip6)
		_, err := port.Create(ctx, nb, s)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("requested IPv6 %s: %v; want it granted", c.ip6, err)
		case c.want != "" && (!errors.Is(err, port.ErrAddressInUse) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("requested IPv6 %s: %v; want address in use naming %s", c.ip6, err, c.want)
		}
	}
}
