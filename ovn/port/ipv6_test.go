package port_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestIPv6Ports (real ovn-northd): on an IPv6-only switch a port gets
// northd's EUI-64 address and keeps northd's MAC (the address's interface
// identifier), pinned as "MAC IPv6"; a requested IPv6 address is pinned
// as given; on a dual-stack switch a requested IPv4 address alone gets
// the EUI-64 address of its derived MAC, and a requested pair is pinned
// as "MAC IPv4 IPv6"; an address in use is refused.
func TestIPv6Ports(t *testing.T) {
	nb, nbs := startOVN(t)
	nbs.Run(t, "ovn-nbctl", "ls-add", "six", "--", "set", "logical_switch", "six", "other_config:ipv6_prefix=fd00:198:19:16::")
	addNet(t, nbs, "dual", "198.19.17.0/24", "198.19.17.1")
	nbs.Run(t, "ovn-nbctl", "set", "logical_switch", "dual", "other_config:ipv6_prefix=fd00:198:19:17::")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	six := netip.MustParsePrefix("fd00:198:19:16::/64")
	base := port.Spec{Network: "six", Subnet6: six, Node: "node-1", IfName: "eth0"}
	pinned := func(p *port.Port) string {
		return strings.TrimSpace(nbs.Run(t, "ovn-nbctl", "--bare", "--columns=addresses,port_security", "list", "logical_switch_port", p.Name))
	}

	s := base
	s.Container = "dyn6"
	p, err := port.Create(ctx, nb, s)
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC(p.MAC)
	if p.IP.IsValid() || !six.Contains(p.IPv6) || mac == nil {
		t.Fatalf("IPv6-only port %+v: want no IPv4, an address in %s and a MAC", p, six)
	}
	b := p.IPv6.As16()
	if b[11] != 0xff || b[12] != 0xfe || b[8] != mac[0]^2 || b[15] != mac[5] {
		t.Errorf("port %s: address %s is not the EUI-64 of its MAC %s", p.Name, p.IPv6, p.MAC)
	}
	if want := p.MAC + " " + p.IPv6.String(); strings.Count(pinned(p), want) != 2 {
		t.Errorf("row %q: want %q in addresses and port_security", pinned(p), want)
	}

	s = base
	s.Container, s.IP6 = "req6", netip.MustParseAddr("fd00:198:19:16::99")
	q, err := port.Create(ctx, nb, s)
	if err != nil {
		t.Fatal(err)
	}
	if q.IPv6 != s.IP6 || strings.Count(pinned(q), q.MAC+" fd00:198:19:16::99") != 2 {
		t.Errorf("requested IPv6: port %+v, row %q", q, pinned(q))
	}
	s.Container = "again"
	if _, err := port.Create(ctx, nb, s); err == nil || !strings.Contains(err.Error(), "fd00:198:19:16::99") || !strings.Contains(err.Error(), "used by port "+q.Name) {
		t.Errorf("the same IPv6 address again: %v; want it refused naming %s", err, q.Name)
	}

	dual := netip.MustParsePrefix("fd00:198:19:17::/64")
	d := port.Spec{Network: "dual", Subnet: netip.MustParsePrefix("198.19.17.0/24"), Gateway: netip.MustParseAddr("198.19.17.1"), Subnet6: dual,
		Node: "node-1", IfName: "eth0", Container: "req4", IP: netip.MustParseAddr("198.19.17.20")}
	r, err := port.Create(ctx, nb, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.MAC != "0a:58:c6:13:11:14" || r.IPv6 != netip.MustParseAddr("fd00:198:19:17:858:c6ff:fe13:1114") {
		t.Errorf("requested IPv4 on dual stack: port %+v; want MAC 0a:58:c6:13:11:14 and its EUI-64 fd00:198:19:17:858:c6ff:fe13:1114", r)
	}
	d.Container, d.IP, d.IP6 = "req46", netip.MustParseAddr("198.19.17.21"), netip.MustParseAddr("fd00:198:19:17::21")
	r2, err := port.Create(ctx, nb, d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0a:58:c6:13:11:15 198.19.17.21 fd00:198:19:17::21"; strings.Count(pinned(r2), want) != 2 {
		t.Errorf("requested pair: row %q; want %q twice", pinned(r2), want)
	}
}
