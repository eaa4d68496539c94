package chassis

import (
	"context"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbconn"
)

func TestList(t *testing.T) {
	sb := ovsdbtest.StartSB(t)
	sb.Run(t, "ovn-sbctl", "chassis-add", "n2", "geneve", "198.18.0.12")
	sb.Run(t, "ovn-sbctl", "chassis-add", "n1", "geneve", "198.18.0.11")
	sb.Run(t, "ovn-sbctl", "set", "Chassis", "n1", "hostname=host1")
	ch1 := strings.TrimSpace(sb.Run(t, "ovn-sbctl", "--bare", "--columns=_uuid", "find", "Chassis", "name=n1"))
	// n1 has a live ovn-controller (Chassis_Private caught up), n2 does not.
	sb.Run(t, "ovn-sbctl", "create", "Chassis_Private", "name=n1", "chassis="+ch1)
	dp := strings.TrimSpace(sb.Run(t, "ovn-sbctl", "create", "Datapath_Binding", "tunnel_key=1"))
	for i, p := range []string{"p1", "p2"} {
		sb.Run(t, "ovn-sbctl", "create", "Port_Binding", "logical_port="+p, "datapath="+dp, "tunnel_key="+string(rune('1'+i)), "chassis="+ch1)
	}
	sb.Run(t, "ovn-sbctl", "create", "Port_Binding", "logical_port=p3", "datapath="+dp, "tunnel_key=3")

	ctx := context.Background()
	c, err := dbconn.ConnectSB(ctx, sb.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	chs, err := List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 {
		t.Fatalf("got %d chassis, want 2: %+v", len(chs), chs)
	}
	n1, n2 := chs[0], chs[1]
	if n1.Name != "n1" || n1.Hostname != "host1" || !n1.Connected || n1.Ports != 2 ||
		len(n1.Encaps) != 1 || n1.Encaps[0] != (Encap{Type: "geneve", IP: "198.18.0.11"}) {
		t.Errorf("n1 = %+v", n1)
	}
	if n2.Name != "n2" || n2.Connected || n2.Ports != 0 || len(n2.Encaps) != 1 || n2.Encaps[0].IP != "198.18.0.12" {
		t.Errorf("n2 = %+v", n2)
	}

	// Once the configuration moves on and n1 does not follow, it shows as
	// disconnected.
	sb.Run(t, "ovn-sbctl", "set", "SB_Global", ".", "nb_cfg=5")
	chs, err = List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if chs[0].Connected {
		t.Errorf("n1 connected with a stale nb_cfg: %+v", chs[0])
	}
}
