package nodediag

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// TestTunnelCarrierFromKernel: a tunnel's egress carrier is what the node's
// kernel says, not ovs-vswitchd's status:tunnel_egress_iface_carrier, which
// can stay "down" after the egress bridge came up (after an ovs-vswitchd
// restart) and "up" after ovs-vswitchd died. The node is a network namespace
// with a veth holding the encap IP (its carrier follows its peer); the tunnel row is written by hand.
func TestTunnelCarrierFromKernel(t *testing.T) {
	prereq.Root(t)
	prereq.Bins(t, "ip")
	ovs := ovsdbtest.StartVswitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nsName := fmt.Sprintf("ndcar%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", nsName)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsName).Run() })
	ip("-n", nsName, "link", "add", "egr0", "type", "veth", "peer", "name", "egr1")
	ip("-n", nsName, "addr", "add", "198.18.0.250/24", "dev", "egr0")
	ip("-n", nsName, "link", "set", "egr0", "up")
	ip("-n", nsName, "link", "set", "egr1", "up")

	ovs.Run(t, "ovs-vsctl", "--no-wait", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
		"--", "set", "open", ".", "external_ids:system-id=n9", "external_ids:ovn-remote=tcp:198.18.0.1:6642",
		"external_ids:ovn-encap-type=geneve", "external_ids:ovn-encap-ip=198.18.0.250", "external_ids:ovn-bridge-datapath-type=netdev",
		"--", "add-port", "br-int", "ovn-n1-0", "--", "set", "interface", "ovn-n1-0", "type=geneve", "options:remote_ip=198.18.0.11",
		"status:tunnel_egress_iface=egr0", "status:tunnel_egress_iface_carrier=down")
	setOVSCarrier := func(v string) {
		ovs.Run(t, "ovs-vsctl", "--no-wait", "set", "interface", "ovn-n1-0", "status:tunnel_egress_iface_carrier="+v)
	}
	dir := t.TempDir()
	// A stand-in ovs-vswitchd: this test process's pid in the pidfile.
	pidfile := filepath.Join(dir, "ovs-vswitchd.pid")
	if err := os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := Target{OVS: ovs.Endpoint, RunDir: dir, OVNRunDir: dir, NetNS: "/run/netns/" + nsName}
	st := &diagnose.State{Chassis: []diagnose.Chassis{
		{Name: "n9", EncapIPs: []string{"198.18.0.250"}, Claimed: true},
		{Name: "n1", EncapIPs: []string{"198.18.0.11"}, Claimed: true},
	}}
	tunnel := func() *diagnose.Check {
		t.Helper()
		cs := Check(ctx, tg, st)
		c := find(cs, "tunnel n9->n1")
		if c == nil {
			t.Fatalf("no tunnel check: %+v", cs)
		}
		return c
	}

	// OVS says down, the kernel says the carrier is up: ok.
	if c := tunnel(); c.Status != diagnose.OK || !strings.Contains(c.Detail, "via egr0") {
		t.Errorf("carrier up in the kernel, down in a stale OVS status: %+v; want ok", c)
	}
	// The kernel says down, OVS up: fail, with the fix to bring it up.
	ip("-n", nsName, "link", "set", "egr1", "down") // egr0 stays up, without carrier
	setOVSCarrier("up")
	if c := tunnel(); c.Status != diagnose.Fail || !strings.Contains(c.Detail, "egresses egr0 whose carrier is down") || c.Fix != "bring egr0 up" {
		t.Errorf("carrier down in the kernel, up in a stale OVS status: %+v; want a failure", c)
	}
	// ovs-vswitchd not running: the failure names it.
	if err := os.Remove(pidfile); err != nil {
		t.Fatal(err)
	}
	if c := tunnel(); c.Status != diagnose.Fail || !strings.Contains(c.Detail, "whose carrier is down: ovs-vswitchd is not running") || !strings.Contains(c.Fix, "start ovs-vswitchd") {
		t.Errorf("carrier down, ovs-vswitchd dead: %+v", c)
	}
}
