package port_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

func TestHostIfName(t *testing.T) {
	a, b := ovsport.HostIfName("abc", "eth0"), ovsport.HostIfName("abc", "eth1")
	if len(a) != 15 || a == b || a != ovsport.HostIfName("abc", "eth0") || !strings.HasPrefix(a, "ovl") {
		t.Fatalf("HostIfName: %q %q; want 15 bytes, stable, unique per ifname", a, b)
	}
}

// TestPlugWaitUnplug: Plug adds an owned port, WaitInstalled returns on the
// ovn-installed event (not before), a stale row's sticky flag is never
// taken for the new one, a timeout says vswitchd never attached it, and
// Unplug is idempotent and refuses foreign ports.
// brInt starts an Open_vSwitch db with br-int and connects to it (closed
// at test end).
func brInt(t *testing.T, ctx context.Context) (*ovsdbtest.Server, client.Client) {
	t.Helper()
	srv := ovsdbtest.StartVswitch(t)
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int")
	ovs, err := vsdb.Connect(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ovs.Close)
	return srv, ovs
}

func TestPlugWaitUnplug(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, ovs := brInt(t, ctx)
	spec := ovsport.PlugSpec{Name: "ovlaaaa", IfaceID: "ovl-x", IfaceIDVer: "ctr1", MAC: "0a:00:00:00:00:01", Container: "ctr1", IfName: "eth0", Network: "web", Config: "podman-web"}
	uuid, err := ovsport.Plug(ctx, ovs, spec)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Run(t, "ovs-vsctl", "--no-wait", "get", "Interface", "ovlaaaa", "external_ids")
	for _, want := range []string{`iface-id=ovl-x`, `iface-id-ver=ctr1`, `"ovlmgr.io/owner"=ovlmgr`, `"ovlmgr.io/network"=web`, `"ovlmgr.io/cni-config"=podman-web`} {
		if !strings.Contains(got, want) {
			t.Errorf("external_ids %s; want %s", got, want)
		}
	}
	// Nothing sets ovn-installed: the wait ends at the deadline saying vswitchd did not attach it.
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = ovsport.WaitInstalled(sctx, ovs, "ovlaaaa", uuid)
	scancel()
	var nr *ovsport.NotReadyError
	if !errors.As(err, &nr) || nr.Attached || !strings.Contains(err.Error(), "ovs-vswitchd") {
		t.Fatalf("WaitInstalled without vswitchd = %v; want NotReadyError naming ovs-vswitchd", err)
	}
	// The flag set by "ovn-controller" (here ovs-vsctl) ends the wait as an event.
	done := make(chan error, 1)
	go func() { done <- ovsport.WaitInstalled(ctx, ovs, "ovlaaaa", uuid) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("WaitInstalled returned %v before ovn-installed was set", err)
	default:
	}
	srv.Run(t, "ovs-vsctl", "--no-wait", "set", "Interface", "ovlaaaa", `external_ids:ovn-installed="true"`)
	if err := <-done; err != nil {
		t.Fatalf("WaitInstalled after ovn-installed: %v", err)
	}
	// A re-plug (leftover of an interrupted ADD) replaces the row: the new
	// one carries no sticky flag, so the wait does not end on the old one.
	uuid2, err := ovsport.Plug(ctx, ovs, spec)
	if err != nil || uuid2 == uuid {
		t.Fatalf("re-plug: %s, %v; want a fresh interface row", uuid2, err)
	}
	sctx, scancel = context.WithTimeout(ctx, 200*time.Millisecond)
	err = ovsport.WaitInstalled(sctx, ovs, "ovlaaaa", uuid2)
	scancel()
	if !errors.As(err, &nr) {
		t.Fatalf("WaitInstalled on the fresh row = %v; want not ready (old flag must not count)", err)
	}
	if ifs, err := ovsport.List(ctx, ovs); err != nil || len(ifs) != 1 || ifs[0].Network != "web" || ifs[0].Container != "ctr1" {
		t.Fatalf("List = %+v, %v", ifs, err)
	}
	for i := 0; i < 2; i++ {
		if err := ovsport.Unplug(ctx, ovs, "ovlaaaa"); err != nil {
			t.Fatalf("Unplug #%d: %v", i, err)
		}
	}
	if out := srv.Run(t, "ovs-vsctl", "--no-wait", "list-ports", "br-int"); strings.TrimSpace(out) != "" {
		t.Errorf("ports left: %q", out)
	}
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-port", "br-int", "foreign")
	if err := ovsport.Unplug(ctx, ovs, "foreign"); !errors.Is(err, ovsport.ErrNotOwned) {
		t.Errorf("Unplug(foreign) = %v; want ErrNotOwned", err)
	}
	if _, err := ovsport.Plug(ctx, ovs, ovsport.PlugSpec{Name: "foreign", IfaceID: "x"}); !errors.Is(err, ovsport.ErrNotOwned) {
		t.Errorf("Plug over a foreign port = %v; want ErrNotOwned", err)
	}
	if _, err := ovsport.Plug(ctx, ovs, ovsport.PlugSpec{Name: "x", Bridge: "br-none"}); err == nil || !strings.Contains(err.Error(), "br-none not found") {
		t.Errorf("Plug into a missing bridge = %v", err)
	}
}

// TestVeth: SetupVeth in namespaces made here: container side has the MAC,
// MTU, address, default route and TX checksum offload off; CheckVeth
// passes then catches a change; an existing ifname is refused without
// leftovers; DelVeth is idempotent and tolerates a vanished netns.
func TestVeth(t *testing.T) {
	prereq.Root(t)
	hostNS, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { hostNS.Close(); _ = testutils.UnmountNS(hostNS) }()
	ctrNS, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ctrNS.Close(); _ = testutils.UnmountNS(ctrNS) }()
	mac, _ := net.ParseMAC("0a:58:c6:13:00:05")
	spec := ovsport.VethSpec{NetNS: ctrNS.Path(), IfName: "eth0", HostName: ovsport.HostIfName("c1", "eth0"), MAC: mac, MTU: 1442,
		Addr: netip.MustParsePrefix("198.19.0.5/24"), Gateway: netip.MustParseAddr("198.19.0.1")}
	err = hostNS.Do(func(ns.NetNS) error {
		v, err := ovsport.SetupVeth(spec)
		if err != nil {
			return err
		}
		if v.ContMAC != mac.String() {
			t.Errorf("container MAC %s; want %s", v.ContMAC, mac)
		}
		// The host side: same MTU, up, and reported by index and MAC.
		hl, err := netlink.LinkByName(spec.HostName)
		if err != nil {
			t.Fatalf("host side %s: %v", spec.HostName, err)
		}
		if a := hl.Attrs(); a.MTU != spec.MTU || a.Flags&net.FlagUp == 0 || a.Index != v.HostIndex || a.HardwareAddr.String() != v.HostMAC {
			t.Errorf("host side %s: mtu %d flags %v index %d mac %s; want mtu %d, up, index %d mac %s",
				spec.HostName, a.MTU, a.Flags, a.Index, a.HardwareAddr, spec.MTU, v.HostIndex, v.HostMAC)
		}
		// No IPv6 on the host side, in a namespace where new interfaces
		// get it by default: no fe80:: address on a br-int port.
		if addrs, err := netlink.AddrList(hl, netlink.FAMILY_V6); err != nil || len(addrs) != 0 {
			t.Errorf("host side %s: IPv6 addresses %v (%v); want none", spec.HostName, addrs, err)
		}
		if v, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + spec.HostName + "/disable_ipv6"); err != nil || strings.TrimSpace(string(v)) != "1" {
			t.Errorf("host side %s: disable_ipv6 %q (%v); want 1", spec.HostName, v, err)
		}
		if err := ovsport.CheckVeth(spec); err != nil {
			t.Errorf("CheckVeth after setup: %v", err)
		}
		_ = ctrNS.Do(func(ns.NetNS) error {
			e, err := ethtool.NewEthtool()
			if err != nil {
				return err
			}
			defer e.Close()
			feats, err := e.Features("eth0")
			if err != nil {
				t.Error(err)
				return nil
			}
			seen := 0
			for k, on := range feats {
				if strings.HasPrefix(k, "tx-checksum") {
					seen++
					if on {
						t.Errorf("feature %s still on", k)
					}
				}
			}
			if seen == 0 {
				t.Errorf("no tx-checksum feature among %d features of eth0: nothing checked", len(feats))
			}
			return nil
		})
		bad := spec
		bad.MTU = 1500
		if err := ovsport.CheckVeth(bad); err == nil || !strings.Contains(err.Error(), "MTU") {
			t.Errorf("CheckVeth with wrong MTU = %v", err)
		}
		// Same ifname again (another host name): refused, nothing new left.
		again := spec
		again.HostName = ovsport.HostIfName("c2", "eth0")
		if _, err := ovsport.SetupVeth(again); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second SetupVeth = %v; want already exists", err)
		}
		if ovsport.HostLinkExists(again.HostName) {
			t.Errorf("failed SetupVeth left %s", again.HostName)
		}
		for i := 0; i < 2; i++ {
			if err := ovsport.DelVeth(ctrNS.Path(), "eth0", spec.HostName); err != nil {
				t.Errorf("DelVeth #%d: %v", i, err)
			}
		}
		if ovsport.HostLinkExists(spec.HostName) {
			t.Errorf("host side %s left", spec.HostName)
		}
		if err := ovsport.DelVeth("/nonexistent/netns", "eth0", spec.HostName); err != nil {
			t.Errorf("DelVeth with a vanished netns: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = ctrNS.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("eth0 left in the container")
		}
		return nil
	})
}

// TestLinkMTUOfWhileLinksChange: the encap interface's MTU is found while
// other links come and go in the namespace (veths of parallel ADDs), which
// interrupts netlink address dumps.
func TestLinkMTUOfWhileLinksChange(t *testing.T) {
	prereq.Root(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Close(); _ = testutils.UnmountNS(n) }()
	addr := netip.MustParseAddr("198.18.7.1")
	err = n.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "encap0", MTU: 1400}, PeerName: "encap1"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("encap0")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr("198.18.7.1/24")
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		// Enough addresses that a dump takes several netlink messages,
		// as on a node with hundreds of container veths.
		peer, err := netlink.LinkByName("encap1")
		if err != nil {
			return err
		}
		for i := 0; i < 600; i++ {
			a, _ := netlink.ParseAddr(fmt.Sprintf("198.18.%d.%d/32", 10+i/250, 1+i%250))
			if err := netlink.AddrAdd(peer, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		churned <- n.Do(func(ns.NetNS) error {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return nil
				default:
				}
				name := fmt.Sprintf("churn%d", i%8)
				if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
					return err
				}
				l, err := netlink.LinkByName(name)
				if err != nil {
					return err
				}
				a, _ := netlink.ParseAddr(fmt.Sprintf("198.18.8.%d/32", 1+i%8))
				_ = netlink.AddrAdd(l, a)
				if err := netlink.LinkDel(l); err != nil {
					return err
				}
			}
		})
	}()
	var fails []error
	err = n.Do(func(ns.NetNS) error {
		for i := 0; i < 300; i++ {
			mtu, name, err := ovsport.LinkMTUOf(addr)
			if err != nil || mtu != 1400 || name != "encap0" {
				fails = append(fails, fmt.Errorf("try %d: %d %q %v", i, mtu, name, err))
			}
		}
		return nil
	})
	close(stop)
	if cerr := <-churned; cerr != nil {
		t.Fatalf("link churn: %v", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) > 0 {
		t.Fatalf("%d of 300 lookups failed while links changed; first: %v", len(fails), fails[0])
	}
}

// TestUnplugIfaceAndDelHostLinkIndex: the sweep's removals act only on what
// it read. A port plugged again under the same name (a new interface row)
// and a link made again under the same name (a new index) stay.
func TestUnplugIfaceAndDelHostLinkIndex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, ovs := brInt(t, ctx)
	spec := ovsport.PlugSpec{Name: "ovlsweep", IfaceID: "ovl-gone", IfaceIDVer: "c1", Container: "c1", IfName: "eth0", Network: "web"}
	old, err := ovsport.Plug(ctx, ovs, spec)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ovsport.Plug(ctx, ovs, spec) // the ADD's new port of the same name
	if err != nil {
		t.Fatal(err)
	}
	if gone, err := ovsport.UnplugIface(ctx, ovs, "ovlsweep", old); gone || err != nil {
		t.Fatalf("UnplugIface with the replaced interface = %v, %v; want false, nil", gone, err)
	}
	if i, err := ovsport.Get(ctx, ovs, "ovlsweep"); err != nil || i == nil || i.UUID != cur {
		t.Fatalf("after UnplugIface of the old interface: %+v, %v; want the new one %s kept", i, err, cur)
	}
	if gone, err := ovsport.UnplugIface(ctx, ovs, "ovlsweep", cur); !gone || err != nil {
		t.Fatalf("UnplugIface with the current interface = %v, %v; want true, nil", gone, err)
	}
	if out := srv.Run(t, "ovs-vsctl", "--no-wait", "list-ports", "br-int"); strings.TrimSpace(out) != "" {
		t.Fatalf("ports left: %q", out)
	}
	if gone, err := ovsport.UnplugIface(ctx, ovs, "ovlsweep", cur); gone || err != nil {
		t.Fatalf("UnplugIface of a missing port = %v, %v; want false, nil", gone, err)
	}
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-port", "br-int", "foreign")
	fu := strings.TrimSpace(srv.Run(t, "ovs-vsctl", "--no-wait", "get", "Interface", "foreign", "_uuid"))
	if _, err := ovsport.UnplugIface(ctx, ovs, "foreign", fu); !errors.Is(err, ovsport.ErrNotOwned) {
		t.Fatalf("UnplugIface of a foreign port = %v; want ErrNotOwned", err)
	}

	prereq.Root(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer testutils.UnmountNS(n)
	defer n.Close()
	err = n.Do(func(ns.NetNS) error {
		index := func() int {
			l, err := netlink.LinkByName("ovlsweep")
			if err != nil {
				return 0
			}
			return l.Attrs().Index
		}
		add := func() int {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ovlsweep"}, PeerName: "ovlsweep-c"}); err != nil {
				t.Fatal(err)
			}
			return index()
		}
		first := add()
		if l, err := netlink.LinkByName("ovlsweep"); err != nil {
			t.Fatal(err)
		} else if err := netlink.LinkDel(l); err != nil {
			t.Fatal(err)
		}
		second := add()
		if first == second || second == 0 {
			t.Fatalf("link indexes %d, %d: want two", first, second)
		}
		for _, stale := range []int{first, 0} {
			if err := ovsport.DelHostLinkIndex("ovlsweep", stale); err != nil || index() != second {
				t.Fatalf("DelHostLinkIndex(%d) = %v: link index now %d; want %d kept", stale, err, index(), second)
			}
		}
		if err := ovsport.DelHostLinkIndex("ovlsweep", second); err != nil || index() != 0 {
			t.Fatalf("DelHostLinkIndex(%d) = %v: link index now %d; want it gone", second, err, index())
		}
		return ovsport.DelHostLinkIndex("ovlsweep", second) // gone already: no error
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGetListColumns: Get and List read each column an Iface carries (they
// select only those), and List only our container interfaces.
func TestGetListColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, ovs := brInt(t, ctx)
	spec := ovsport.PlugSpec{Name: "ovlcols", IfaceID: "ovl-cols", IfaceIDVer: "c9", Container: "c9", IfName: "eth1", Network: "web"}
	uuid, err := ovsport.Plug(ctx, ovs, spec)
	if err != nil {
		t.Fatal(err)
	}
	// What ovs-vswitchd and ovn-controller would write.
	srv.Run(t, "ovs-vsctl", "--no-wait", "set", "Interface", "ovlcols", "ofport=7", "ifindex=42", `error="no such device"`,
		"external_ids:ovn-installed=true", "statistics:rx_packets=5")
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-port", "br-int", "notours", "--", "set", "Interface", "notours", "type=internal")
	want := ovsport.Iface{UUID: uuid, Name: "ovlcols", IfaceID: "ovl-cols", IfaceIDVer: "c9", Container: "c9", IfName: "eth1", Network: "web",
		Ofport: 7, Ifindex: 42, Installed: true, Error: "no such device"}
	got, err := ovsport.Get(ctx, ovs, "ovlcols")
	if err != nil || got == nil || *got != want {
		t.Errorf("Get = %+v, %v; want %+v", got, err, want)
	}
	list, err := ovsport.List(ctx, ovs)
	if err != nil || len(list) != 1 || *list[0] != want {
		var got []ovsport.Iface
		for _, i := range list {
			got = append(got, *i)
		}
		t.Errorf("List = %+v, %v; want [%+v]", got, err, want)
	}
	if got, err := ovsport.Get(ctx, ovs, "nosuch"); got != nil || err != nil {
		t.Errorf("Get(nosuch) = %+v, %v; want nil, nil", got, err)
	}
}
