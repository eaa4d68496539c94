package nodediag

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// twoNS makes namespaces a and b joined by veth va (MTU mtuA, 198.18.9.1)
// and vb (MTU mtuB, 198.18.9.2); both are removed at test end.
func twoNS(t *testing.T, mtuA, mtuB int) (ns.NetNS, ns.NetNS) {
	t.Helper()
	prereq.Root(t)
	var out []ns.NetNS
	for i := 0; i < 2; i++ {
		n, err := testutils.NewNS()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = n.Close()
			_ = testutils.UnmountNS(n)
		})
		out = append(out, n)
	}
	a, b := out[0], out[1]
	err := a.Do(func(ns.NetNS) error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va", MTU: mtuA}, PeerName: "vb", PeerNamespace: netlink.NsFd(int(b.Fd()))}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		return up("va", "198.18.9.1/24")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("vb")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMTU(l, mtuB); err != nil {
			return err
		}
		return up("vb", "198.18.9.2/24")
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func up(name, cidr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// TestProber: the DF probe finds what really crosses, not what is
// configured: a veth peer with a smaller MTU drops larger packets.
func TestProber(t *testing.T) {
	a, b := twoNS(t, 1500, 1300)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dst := netip.MustParseAddr("198.18.9.2")
	// The exact size asserted must not depend on load: a reply that comes
	// late counts as a size that does not cross and would pull the search
	// down. A size that crosses is answered at once, one that does not is
	// dropped at once (no reply, ever), so generous waits and several tries
	// per failed size cost time only on the sizes that really fail.
	reliable := Prober{Timeout: 750 * time.Millisecond, Tries: 3}
	pa, pb := reliable, reliable
	pa.NetNS, pa.IfName = a.Path(), "va"
	pb.NetNS, pb.IfName = b.Path(), "vb"
	r, err := pa.Largest(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	// The veth receive check allows a VLAN header of slack (4 bytes).
	if r.Configured != 1500 || r.Largest < 1300 || r.Largest > 1304 {
		t.Errorf("got %+v; want configured 1500, largest 1300 (+4 veth slack)", r)
	}
	// From the side with the small MTU everything it can send crosses.
	r, err = pb.Largest(ctx, netip.MustParseAddr("198.18.9.1"))
	if err != nil || r.Largest != 1300 || r.Configured != 1300 {
		t.Errorf("from b: %+v %v; want 1300/1300", r, err)
	}
	// Nobody at that address: nothing crosses.
	r, err = Prober{NetNS: a.Path(), IfName: "va", Timeout: 100 * time.Millisecond, Tries: 1}.Largest(ctx, netip.MustParseAddr("198.18.9.3"))
	if err != nil || r.Largest != 0 {
		t.Errorf("to nobody: %+v %v; want largest 0", r, err)
	}
}

// TestFindContainerSide finds the peer of a veth in another namespace.
func TestFindContainerSide(t *testing.T) {
	a, b := twoNS(t, 1500, 1400)
	side, err := FindContainerSide(a.Path(), "va")
	if err != nil {
		t.Fatal(err)
	}
	if side.Name != "vb" || side.MTU != 1400 {
		t.Errorf("got %+v; want vb with MTU 1400", side)
	}
	// The path found opens b's namespace.
	var same bool
	err = ns.WithNetNSPath(side.NetNS, func(ns.NetNS) error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			same = same || i.Name == "vb"
		}
		return err
	})
	if err != nil || !same {
		t.Errorf("namespace %s (b is %s) has no vb: %v", side.NetNS, b.Path(), err)
	}
	if _, err := FindContainerSide(a.Path(), "nosuch"); err == nil {
		t.Error("no error for a missing interface")
	}
}

func TestChecksum(t *testing.T) {
	// An echo request with id 1, seq 1 and no payload.
	b := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	c := checksum(b)
	b[2], b[3] = byte(c>>8), byte(c)
	if checksum(b) != 0 {
		t.Errorf("checksum %#04x does not verify", c)
	}
	if c != 0xf7fd {
		t.Errorf("checksum %#04x; want 0xf7fd", c)
	}
}
