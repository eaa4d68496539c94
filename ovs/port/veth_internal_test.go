package port

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// A host link the kernel removes between lookup and delete (the container's
// namespace went away during DEL) is gone, not a failure of DEL.
func TestDelLinkVanished(t *testing.T) {
	prereq.Root(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer testutils.UnmountNS(n)
	defer n.Close()
	err = n.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ovldel0"}, PeerName: "ovldel1"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("ovldel0")
		if err != nil {
			return err
		}
		if err := netlink.LinkDel(l); err != nil { // the kernel's removal
			return err
		}
		if err := delLink(l); err != nil {
			t.Errorf("delete of a link that vanished after lookup: %v, want nil", err)
		}
		if err := delHostLink("ovldel0"); err != nil {
			t.Errorf("delete of a missing link: %v, want nil", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
