package port_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// TestPortJoinsPortGroup: a container port is in its network's port group
// from the transaction that creates it, and leaves it when deleted.
func TestPortJoinsPortGroup(t *testing.T) {
	nbs := ovsdbtest.StartNB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, err := network.Create(ctx, nb, network.Spec{Name: "web-1", Subnet: "198.19.7.0/24", Isolation: policy.DefaultDeny}); err != nil {
		t.Fatal(err)
	}
	s := spec("web-1", "198.19.7.0/24", "198.19.7.1", "pg1")
	s.IP = netip.MustParseAddr("198.19.7.9")
	p, err := port.Create(ctx, nb, s)
	if err != nil {
		t.Fatal(err)
	}
	members := func() []string {
		var pgs []*nbdb.PortGroup
		if err := dbconn.Select(ctx, nb, &nbdb.PortGroup{}, &pgs); err != nil || len(pgs) != 1 || pgs[0].Name != policy.PortGroupName("web-1") {
			t.Fatalf("port groups = %+v, %v; want one, %s", pgs, err, policy.PortGroupName("web-1"))
		}
		return pgs[0].Ports
	}
	if m := members(); len(m) != 1 || m[0] != p.UUID {
		t.Fatalf("port group members = %v, want [%s]", m, p.UUID)
	}
	if err := port.Delete(ctx, nb, p.Name); err != nil {
		t.Fatal(err)
	}
	if m := members(); len(m) != 0 {
		t.Fatalf("port group members after delete = %v, want none", m)
	}
}
