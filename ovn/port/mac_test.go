package port_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/port"
)

func TestMACFromIPAndCheckMAC(t *testing.T) {
	if got := port.MACFromIP(netip.MustParseAddr("198.19.0.10")).String(); got != "0a:58:c6:13:00:0a" {
		t.Errorf("MACFromIP(198.19.0.10) = %s; want 0a:58:c6:13:00:0a", got)
	}
	for _, bad := range []string{"00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "03:00:00:00:00:01"} {
		hw, _ := net.ParseMAC(bad)
		if err := port.CheckMAC(hw); !errors.Is(err, port.ErrMACRefused) || !strings.Contains(err.Error(), bad) {
			t.Errorf("CheckMAC(%s) = %v; want ErrMACRefused naming it", bad, err)
		}
	}
	if err := port.CheckMAC(net.HardwareAddr{2, 0, 0, 0, 0, 1}); err != nil {
		t.Errorf("CheckMAC(02:00:00:00:00:01) = %v", err)
	}
}

// TestPortIdentityAndMACs: the same container ID and ifname on two nodes
// are two ports; MACs derive from the address; a requested MAC held by a
// container or a router port, or derived from another address, is refused
// naming the holder.
func TestPortIdentityAndMACs(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "m", "198.19.8.0/24", "198.19.8.1")
	nbs.Run(t, "ovn-nbctl", "lr-add", "r", "--", "lrp-add", "r", "r-m", "02:00:00:00:aa:01", "198.19.8.1/24")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s1 := spec("m", "198.19.8.0/24", "198.19.8.1", "dup")
	s2 := s1
	s2.Node = "node-2"
	p1, err := port.Create(ctx, nb, s1)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := port.Create(ctx, nb, s2)
	if err != nil {
		t.Fatalf("same container ID on another node: %v", err)
	}
	if p1.Name == p2.Name || p1.IP == p2.IP || p1.Node != "node-1" || p2.Node != "node-2" {
		t.Errorf("ports %+v and %+v; want two ports with their own names, addresses and nodes", p1, p2)
	}
	for _, p := range []*port.Port{p1, p2} {
		if want := port.MACFromIP(p.IP).String(); p.MAC != want {
			t.Errorf("port %s at %s has MAC %s; want %s", p.Name, p.IP, p.MAC, want)
		}
		got, err := port.Get(ctx, nb, p.Name)
		if err != nil || got.MAC != p.MAC || got.IP != p.IP {
			t.Errorf("NB port %s = %+v (%v); want %s %s", p.Name, got, err, p.MAC, p.IP)
		}
	}

	// A requested MAC: once. Again, with another container's MAC, a
	// router port's MAC or the MAC derived from another address: refused.
	want := func(s port.Spec, holder string) {
		t.Helper()
		_, err := port.Create(ctx, nb, s)
		if !errors.Is(err, port.ErrMACRefused) || !strings.Contains(err.Error(), holder) {
			t.Errorf("create with mac %s = %v; want ErrMACRefused naming %q", s.MAC, err, holder)
		}
		if _, err := port.Get(ctx, nb, port.Name(s.Node, s.Container, s.IfName)); !errors.Is(err, port.ErrNotFound) {
			t.Errorf("refused create of %s left its port: %v", s.Container, err)
		}
	}
	s3 := spec("m", "198.19.8.0/24", "198.19.8.1", "mac-a")
	s3.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 5}
	p3, err := port.Create(ctx, nb, s3)
	if err != nil || p3.MAC != "02:00:00:00:00:05" {
		t.Fatalf("requested MAC: %+v, %v", p3, err)
	}
	s4 := spec("m", "198.19.8.0/24", "198.19.8.1", "mac-b")
	s4.MAC = s3.MAC
	want(s4, p3.Name)
	s4.MAC = net.HardwareAddr{2, 0, 0, 0, 0xaa, 1}
	want(s4, "router port r-m")
	s4.MAC = port.MACFromIP(p1.IP)
	want(s4, p1.Name)
	s4.MAC = port.MACFromIP(netip.MustParseAddr("198.19.8.200"))
	want(s4, "198.19.8.200")
	// Overlapping subnets (different routers): the same address, hence
	// the same derived MAC, in another switch is fine.
	addNet(t, nbs, "m2", "198.19.8.0/24", "198.19.8.1")
	s5 := spec("m2", "198.19.8.0/24", "198.19.8.1", "overlap")
	s5.IP = p1.IP
	if p, err := port.Create(ctx, nb, s5); err != nil || p.MAC != p1.MAC {
		t.Errorf("address %s of another switch: %+v, %v; want MAC %s", p1.IP, p, err, p1.MAC)
	}
	// The MAC derived from the requested address itself is fine.
	s4.IP = netip.MustParseAddr("198.19.8.200")
	if p, err := port.Create(ctx, nb, s4); err != nil || p.MAC != "0a:58:c6:13:08:c8" {
		t.Errorf("ip 198.19.8.200 with its own derived MAC: %+v, %v", p, err)
	}
}
