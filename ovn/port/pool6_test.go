package port_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestPoolIPv6 (real ovn-northd): on an IPv6-only network pool ports are
// made like the slow path's ports (northd's MAC and its EUI-64 address,
// pinned as "MAC IPv6" in addresses and port_security), hinted on the
// switch and claimed from there with their address; on a dual-stack
// network a pool port carries both addresses (the MAC derived from the
// IPv4 one, the IPv6 one its EUI-64). net show counts them as pooled, not
// as ports, and net delete takes them along.
func TestPoolIPv6(t *testing.T) {
	nb, nbs := startOVN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const six, dual, node = "p6six", "p6dual", "n1"
	six64 := netip.MustParsePrefix("fd00:198:19:26::/64")
	dual64 := netip.MustParsePrefix("fd00:198:19:27::/64")
	if _, err := network.Create(ctx, nb, network.Spec{Name: six, IPv6Subnet: six64.String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, nb, network.Spec{Name: dual, Subnet: "198.19.27.0/24", IPv6Subnet: dual64.String()}); err != nil {
		t.Fatal(err)
	}
	row := func(name string) string {
		return strings.TrimSpace(nbs.Run(t, "ovn-nbctl", "--bare", "--columns=addresses,port_security", "list", "logical_switch_port", name))
	}
	eui := func(a netip.Addr, mac string) bool {
		m, err := net.ParseMAC(mac)
		b := a.As16()
		return err == nil && b[11] == 0xff && b[12] == 0xfe && b[8] == m[0]^2 && b[9] == m[1] && b[10] == m[2] &&
			b[13] == m[3] && b[14] == m[4] && b[15] == m[5]
	}

	// IPv6-only.
	if _, err := port.FillPool(ctx, nb, port.PoolSpec{Network: six, Node: node}, 3); err != nil {
		t.Fatalf("fill the pool of an IPv6-only network: %v", err)
	}
	have, err := port.ListPool(ctx, nb, six, node)
	if err != nil || len(have) != 3 {
		t.Fatalf("pool of %s: %d ports (%v); want 3", six, len(have), err)
	}
	seen := map[netip.Addr]bool{}
	for _, pp := range have {
		if pp.State != port.PoolReady || pp.IP.IsValid() || !six64.Contains(pp.IPv6) || seen[pp.IPv6] || !eui(pp.IPv6, pp.MAC) {
			t.Fatalf("pool port %+v: want ready, no IPv4, an EUI-64 address of its MAC in %s of its own", pp, six64)
		}
		seen[pp.IPv6] = true
		if want := pp.MAC + " " + pp.IPv6.String(); strings.Count(row(pp.Name), want) != 2 {
			t.Fatalf("pool port %s row %q: want %q in addresses and port_security", pp.Name, row(pp.Name), want)
		}
	}
	ids, err := lsIDs(ctx, nb, six)
	if err != nil {
		t.Fatal(err)
	}
	hs := port.PoolHints(ids, six, node)
	if len(hs) != 3 {
		t.Fatalf("%d pool hints on %s's switch (%v); want 3", len(hs), six, ids)
	}
	pp := hs[0]
	s := port.Spec{Network: six, Node: node, Container: "c6", IfName: "eth0"}
	if err := port.Claim(ctx, nb, s, pp); err != nil {
		t.Fatalf("claim pool port %s of an IPv6-only network: %v", pp.Name, err)
	}
	got, err := port.Get(ctx, nb, pp.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Container != "c6" || got.IP.IsValid() || got.IPv6 != pp.IPv6 || got.MAC != pp.MAC {
		t.Fatalf("claimed port %+v; want container c6 with %s %s", got, pp.MAC, pp.IPv6)
	}
	if holder, err := port.MACHolder(ctx, nb, pp.MAC); err != nil || !strings.Contains(holder, pp.Name) {
		t.Fatalf("holder of the claimed port's MAC %s: %q (%v); want %s (a requested MAC must not take it)", pp.MAC, holder, err, pp.Name)
	}
	n, err := network.Get(ctx, nb, six)
	if err != nil || n.Ports != 1 || n.Pooled != 2 {
		t.Fatalf("net show %s after a claim: %+v (%v); want 1 port, 2 pooled", six, n, err)
	}

	// Dual stack: both addresses.
	if _, err := port.FillPool(ctx, nb, port.PoolSpec{Network: dual, Node: node}, 2); err != nil {
		t.Fatal(err)
	}
	dh, err := port.ListPool(ctx, nb, dual, node)
	if err != nil || len(dh) != 2 {
		t.Fatalf("pool of %s: %d ports (%v); want 2", dual, len(dh), err)
	}
	for _, pp := range dh {
		if !pp.IP.IsValid() || pp.MAC != port.MACFromIP(pp.IP).String() || !dual64.Contains(pp.IPv6) || !eui(pp.IPv6, pp.MAC) {
			t.Fatalf("dual-stack pool port %+v: want the MAC of its IPv4 address and that MAC's EUI-64 in %s", pp, dual64)
		}
		if want := pp.MAC + " " + pp.IP.String() + " " + pp.IPv6.String(); strings.Count(row(pp.Name), want) != 2 {
			t.Fatalf("pool port %s row %q: want %q in addresses and port_security", pp.Name, row(pp.Name), want)
		}
	}

	// Nothing left after DEL and net delete.
	if err := port.Delete(ctx, nb, pp.Name); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{six, dual} {
		if err := network.Delete(ctx, nb, name, false); err != nil {
			t.Fatalf("net delete %s with only pool ports: %v", name, err)
		}
	}
	if left, err := port.ListPool(ctx, nb, "", ""); err != nil || len(left) != 0 {
		t.Fatalf("pool ports after net delete: %d (%v)", len(left), err)
	}
	if out := strings.TrimSpace(nbs.Run(t, "ovn-nbctl", "--bare", "--columns=name", "list", "logical_switch_port")); out != "" {
		t.Fatalf("ports left after net delete: %q", out)
	}
}
