package port_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// TestAnnounce: a peer whose ARP and neighbour entries hold an old MAC for
// the addresses takes the new MAC from Announce's gratuitous ARP and
// unsolicited Neighbor Advertisement (so the frames are well formed,
// checksum included: the kernel drops bad ones).
func TestAnnounce(t *testing.T) {
	prereq.Root(t)
	a, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); _ = testutils.UnmountNS(a) }()
	b, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close(); _ = testutils.UnmountNS(b) }()
	mac, _ := net.ParseMAC("0a:58:c6:13:00:05")
	old, _ := net.ParseMAC("0a:58:de:ad:be:ef")
	ip4, ip6 := netip.MustParseAddr("198.19.0.5"), netip.MustParseAddr("fd00::5")
	var peerIdx int
	err = a.Do(func(ns.NetNS) error {
		la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: mac}, PeerName: "peer", PeerNamespace: netlink.NsFd(int(b.Fd()))}
		if err := netlink.LinkAdd(la); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip4.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip6.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("peer")
		if err != nil {
			return err
		}
		peerIdx = l.Attrs().Index
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.19.0.9"), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fd00::9"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		// Entries for the addresses with the old MAC, as a peer of the
		// earlier holder has them.
		for _, ip := range []netip.Addr{ip4, ip6} {
			fam := netlink.FAMILY_V4
			if ip.Is6() {
				fam = netlink.FAMILY_V6
			}
			if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: peerIdx, Family: fam, State: netlink.NUD_STALE, IP: ip.AsSlice(), HardwareAddr: old}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The kernel ignores updates within locktime (1 s) of the last one.
	time.Sleep(1100 * time.Millisecond)
	if err := ovsport.Announce(a.Path(), "eth0", mac, ip4, ip6); err != nil {
		t.Fatal(err)
	}
	_ = b.Do(func(ns.NetNS) error {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			var got net.HardwareAddr
			for i := 0; i < 50; i++ {
				ns, _ := netlink.NeighList(peerIdx, fam)
				for _, n := range ns {
					if n.IP.Equal(ip4.AsSlice()) || n.IP.Equal(ip6.AsSlice()) {
						got = n.HardwareAddr
					}
				}
				if got.String() == mac.String() {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got.String() != mac.String() {
				t.Errorf("peer's neighbour entry (family %d) has %s after Announce; want %s", fam, got, mac)
			}
		}
		return nil
	})
}
