package attach_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// TestDetachAfterNodeLeft: on a node whose Open_vSwitch db has no
// system-id any more (`node leave --force` with a container still on it),
// DEL removes the container's OVS port and veth and succeeds, so the
// runtime can remove the container; ADD there still fails as not joined.
func TestDetachAfterNodeLeft(t *testing.T) {
	prereq.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := ovsdbtest.StartVswitch(t)
	srv.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int")
	ovs, err := vsdb.Connect(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ovs.Close)
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
	const ctr = "left-node-ctr"
	host := ovsport.HostIfName(ctr, "eth0")
	mac, _ := net.ParseMAC("0a:58:c6:13:00:05")
	spec := ovsport.VethSpec{NetNS: ctrNS.Path(), IfName: "eth0", HostName: host, MAC: mac, MTU: 1442,
		Addr: netip.MustParsePrefix("198.19.0.5/24"), Gateway: netip.MustParseAddr("198.19.0.1")}
	err = hostNS.Do(func(ns.NetNS) error {
		if _, err := ovsport.SetupVeth(spec); err != nil {
			return err
		}
		_, err := ovsport.Plug(ctx, ovs, ovsport.PlugSpec{Name: host, IfaceID: "ovl-0123456789abcdef", IfaceIDVer: ctr,
			MAC: mac.String(), Container: ctr, IfName: "eth0", Network: "web"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var addErr error
	err = hostNS.Do(func(ns.NetNS) error {
		_, addErr = attach.Attach(ctx, attach.AttachRequest{Network: "web", NB: "tcp:127.0.0.1:9", OVS: srv.Endpoint,
			ContainerID: "another", IfName: "eth1", NetNS: ctrNS.Path(), ReadyTimeout: 5 * time.Second}, nil)
		return attach.Detach(ctx, attach.DetachRequest{Network: "web", OVS: srv.Endpoint, ContainerID: ctr, IfName: "eth0",
			NetNS: ctrNS.Path(), Timeout: 10 * time.Second}, nil)
	})
	if err != nil {
		t.Fatalf("DEL on a node without system-id: %v; want success with the node side removed", err)
	}
	if !errors.Is(addErr, attach.ErrNodeNotJoined) {
		t.Errorf("ADD on a node without system-id: %v; want %v", addErr, attach.ErrNodeNotJoined)
	}
	if ifc, err := ovsport.Get(ctx, ovs, host); err != nil || ifc != nil {
		t.Errorf("OVS interface %s after DEL: %+v, %v; want none", host, ifc, err)
	}
	_ = hostNS.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName(host); err == nil {
			t.Errorf("host veth %s still there after DEL", host)
		}
		return nil
	})
	_ = ctrNS.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("container's eth0 still there after DEL")
		}
		return nil
	})
}
