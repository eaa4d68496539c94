package nodediag

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
)

func find(cs []diagnose.Check, name string) *diagnose.Check {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// TestCheckWithoutDaemons runs the node checks against a real Open_vSwitch
// database with no ovs-vswitchd or ovn-controller behind it.
func TestCheckWithoutDaemons(t *testing.T) {
	prereq.Root(t)
	ovs := ovsdbtest.StartVswitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	tg := Target{OVS: ovs.Endpoint, RunDir: dir, OVNRunDir: dir}

	cs := Check(ctx, tg, nil)
	for _, name := range []string{"ovs-vswitchd", "ovn-controller", "settings", "datapath"} {
		if c := find(cs, name); c == nil || c.Status != diagnose.Fail || c.Fix == "" {
			t.Errorf("%s: %+v; want a failure with a fix (all: %+v)", name, c, cs)
		}
	}

	// br-int with the kernel datapath: fine only where the module exists.
	ovs.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=system",
		"--", "set", "open", ".", "external_ids:system-id=n9", "external_ids:ovn-remote=tcp:198.18.0.1:6642",
		"external_ids:ovn-encap-type=geneve", "external_ids:ovn-encap-ip=198.18.0.250", "external_ids:ovn-bridge-datapath-type=system")
	cs = Check(ctx, tg, nil)
	c := find(cs, "datapath")
	_, kmod := os.Stat("/sys/module/openvswitch")
	switch {
	case c == nil:
		t.Fatalf("no datapath check: %+v", cs)
	case kmod != nil && (c.Status != diagnose.Fail || !strings.Contains(c.Detail, "no openvswitch kernel module") || !strings.Contains(c.Fix, "datapath_type=netdev")):
		t.Errorf("kernel datapath without the module: %+v", c)
	case kmod == nil && c.Status != diagnose.OK:
		t.Errorf("kernel datapath with the module: %+v", c)
	}
	if c := find(cs, "encap ip"); c == nil || c.Status != diagnose.Fail || !strings.Contains(c.Detail, "is on no interface") {
		t.Errorf("encap ip not local: %+v", c)
	}
	// The node checks name the node by its system-id.
	if cs[0].Area != "node n9" {
		t.Errorf("area %q; want node n9", cs[0].Area)
	}
	// Not registered in SB.
	cs = Check(ctx, tg, &diagnose.State{Chassis: []diagnose.Chassis{{Name: "n1", EncapIPs: []string{"198.18.0.11"}, Claimed: true}}})
	if c := find(cs, "chassis"); c == nil || c.Status != diagnose.Fail || !strings.Contains(c.Detail, "no chassis n9 in SB") {
		t.Errorf("unregistered: %+v", c)
	}
	if c := find(cs, "tunnel n9->n1"); c == nil || c.Status != diagnose.Fail || !strings.Contains(c.Detail, "no Geneve tunnel to n1") {
		t.Errorf("missing tunnel: %+v", c)
	}
}
