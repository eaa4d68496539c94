package node

import (
	"context"
	"errors"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// TestJoinExternal: join with External creates br-ex (br-int's datapath)
// holding the interface and maps the physical network; another mapping the
// user had survives; leave removes the bridge and the mapping key. A
// missing interface or a physnet mapped elsewhere is refused with nothing
// written.
func TestJoinExternal(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.ovs.Run(t, "ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=other:br-other")

	o := e.opts()
	o.External = &External{Interface: "nope0"}
	_, err := e.join(t, o)
	var fe *names.FieldError
	if !errors.As(err, &fe) || fe.Field != "external interface" {
		t.Fatalf("join with a missing interface: %v, want a FieldError on external interface", err)
	}
	if e.bridge(t, "br-int") != nil || e.ids(t)[KeyRemote] != "" {
		t.Fatal("refused join wrote something")
	}

	o.External = &External{Interface: "d1"}
	if _, err := e.join(t, o); err != nil {
		t.Fatal(err)
	}
	br := e.bridge(t, DefaultExternalBridge)
	if br == nil || br.DatapathType != "netdev" || !owner.Owned(br.ExternalIDs, KindExternalBridge) || len(br.Ports) != 2 {
		t.Fatalf("br-ex: %+v, want a netdev bridge of ours with its internal port and d1", br)
	}
	if got := e.ids(t)[KeyBridgeMappings]; got != "external:br-ex,other:br-other" {
		t.Errorf("%s = %q", KeyBridgeMappings, got)
	}
	// Again: nothing changes.
	if res, err := e.join(t, o); err != nil || res.Changed {
		t.Errorf("second join: %+v, %v; want unchanged", res, err)
	}
	// The physnet mapped to another bridge is refused unless forced.
	o2 := o
	o2.External = &External{Interface: "d1", Bridge: "br-x2"}
	if _, err := e.join(t, o2); !errors.Is(err, ErrOtherRemote) || !errors.As(err, &fe) || fe.Field != "physnet" {
		t.Errorf("remap without force: %v", err)
	}
	if err := Leave(ctx, LeaveOptions{OVS: e.ovs.Endpoint}); err != nil {
		t.Fatal(err)
	}
	if e.bridge(t, DefaultExternalBridge) != nil {
		t.Error("br-ex still there after leave")
	}
	if got := e.ids(t)[KeyBridgeMappings]; got != "other:br-other" {
		t.Errorf("%s after leave = %q, want the user's own mapping only", KeyBridgeMappings, got)
	}
}
