package vagrant

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// vmNetns builds a network namespace shaped like a lab VM: eth0 is the NAT NIC (10.0.2.15, default route, plus a stray
// 198.18.50.13), eth1 the private NIC with the encap IP 198.18.50.11 and the central IP 198.18.50.10.
func vmNetns(t *testing.T) ns.NetNS {
	t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	err = netns.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up: %w", err)
		}
		for name, addrs := range map[string][]string{
			"eth0": {"10.0.2.15/24", "198.18.50.13/32"},
			"eth1": {"198.18.50.11/24", "198.18.50.10/32"},
		} {
			// A veth whose peer stays here (this kernel has no dummy links); MTU 1500, the default.
			link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
			if err := netlink.LinkAdd(link); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
			peer, err := netlink.LinkByName(name + "p")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(peer); err != nil {
				return err
			}
			for _, a := range addrs {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					return err
				}
				if err := netlink.AddrAdd(link, addr); err != nil {
					return fmt.Errorf("add %s to %s: %w", a, name, err)
				}
			}
			if err := netlink.LinkSetUp(link); err != nil {
				return err
			}
		}
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("10.0.2.2")}); err != nil {
			return fmt.Errorf("default route via eth0: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("set up netns: %v", err)
	}
	return netns
}

// startDB runs a real ovsdb-server with schema inside netns listening on the central address and port (as on the lab's
// central VM) and returns its unix endpoint, to fill it from the test.
func startDB(t *testing.T, netns ns.NetNS, schema string, port int) string {
	t.Helper()
	dir := t.TempDir()
	db, sock := filepath.Join(dir, "db"), filepath.Join(dir, "db.sock")
	if out, err := ovsdbtest.Cmd(t, "ovsdb-tool", "create", db, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
	var log bytes.Buffer
	cmd := nsexec.Command(context.Background(), netns.Path(), nil, "ovsdb-server", db,
		"--remote=punix:"+sock, fmt.Sprintf("--remote=ptcp:%d:198.18.50.10", port),
		"--unixctl="+filepath.Join(dir, "db.ctl"), "--log-file="+filepath.Join(dir, "db.log"), "--no-chdir")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ovsdb-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovsdb-server did not listen on %s: %s", sock, log.String())
		}
	}
	return "unix:" + sock
}

func startSB(t *testing.T, netns ns.NetNS) string {
	return startDB(t, netns, "/usr/share/ovn/ovn-sb.ovsschema", 6642)
}

// TestProvisionChecks runs provision.sh's checks in a namespace shaped like a VM, against a real SB: each bad setup
// (encap IP on the NAT NIC or nowhere, wrong MTU, a system-id or encap IP another chassis has) stops provisioning with
// its message before anything is written.
func TestProvisionChecks(t *testing.T) {
	prereq.Root(t)
	prereq.Bins(t, "ovsdb-server", "ovsdb-tool", "ovn-sbctl")
	netns := vmNetns(t)
	sb := startSB(t, netns)
	for _, args := range [][]string{
		{"chassis-add", "worker1", "geneve", "198.18.50.21"},
		{"set", "Chassis", "worker1", "hostname=worker9"},
		{"chassis-add", "other", "geneve", "198.18.50.11"},
		{"set", "Chassis", "other", "hostname=other"},
	} {
		if out, err := ovsdbtest.Cmd(t, "ovn-sbctl", append([]string{"--db=" + sb, "--timeout=10"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ovn-sbctl %v: %v: %s", args, err, out)
		}
	}

	// Files the join step would write; the checks must fail before touching them.
	watched := []string{"/etc/openvswitch/system-id.conf", "/etc/ovlmgr/lab.env", "/etc/systemd/system/ovlmgr-underlay-mtu.service"}
	before := map[string]string{}
	for _, f := range watched {
		b, _ := os.ReadFile(f)
		before[f] = string(b)
	}

	base := map[string]string{
		"OVLMGR_ROLE": "worker", "OVLMGR_NODE": "worker2", "OVLMGR_SYSTEM_ID": "worker2",
		"OVLMGR_ENCAP_IP": "198.18.50.11", "OVLMGR_CENTRAL_IP": "198.18.50.10", "OVLMGR_NET_PREFIX": "198.18.50",
		"OVLMGR_MTU": "1500", "OVLMGR_WAIT": "10",
	}
	for _, tc := range []struct {
		name string
		step string
		env  map[string]string
		want string
	}{
		{"nat address", "mtu", map[string]string{"OVLMGR_ENCAP_IP": "10.0.2.15"},
			"encap IP 10.0.2.15 is the NAT address every VirtualBox VM shares"},
		{"outside prefix", "join", map[string]string{"OVLMGR_ENCAP_IP": "198.18.51.11"},
			"encap IP 198.18.51.11 is not in the private network 198.18.50.0/24"},
		{"on no interface", "join", map[string]string{"OVLMGR_ENCAP_IP": "198.18.50.12"},
			"encap IP 198.18.50.12 is on no interface of this VM: the private network NIC is missing"},
		{"on the NAT NIC", "mtu", map[string]string{"OVLMGR_ENCAP_IP": "198.18.50.13"},
			"encap IP 198.18.50.13 is on eth0, the NAT/default-route NIC"},
		{"mtu", "join", map[string]string{"OVLMGR_MTU": "9000"},
			"MTU of eth1 is 1500, not OVLMGR_MTU=9000"},
		{"bad system-id", "join", map[string]string{"OVLMGR_SYSTEM_ID": "-x"},
			"system-id '-x' is not allowed"},
		{"cloned system-id", "join", map[string]string{"OVLMGR_SYSTEM_ID": "worker1", "OVLMGR_NODE": "worker1"},
			"system-id worker1 is already the chassis of host 'worker9': every VM needs its own system-id"},
		{"duplicate encap IP", "join", nil,
			"encap IP 198.18.50.11 is already used by chassis 'other'"},
		{"missing setting", "join", map[string]string{"OVLMGR_SYSTEM_ID": ""},
			"OVLMGR_SYSTEM_ID is not set"},
		{"unknown step", "boot", nil, "unknown step 'boot'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for k, v := range base {
				if x, ok := tc.env[k]; ok {
					v = x
				}
				env = append(env, k+"="+v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := nsexec.Command(ctx, netns.Path(), env, "bash", "provision.sh", tc.step)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("provision.sh %s: %v (want exit 1)\nstdout: %s\nstderr: %s", tc.step, err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), "ERROR: "+tc.want) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.want)
			}
		})
	}
	for _, f := range watched {
		if b, _ := os.ReadFile(f); string(b) != before[f] {
			t.Errorf("%s changed by a provisioning run that failed its checks", f)
		}
	}
}

// TestProvisionSteps runs the steps join, demo, cni and summary for real in a namespace shaped like a VM: the real
// `ovlmgr node join` on a real Open_vSwitch db that carries a cloned box's system-id, a real ovn-controller (already
// running, as Debian's package leaves it) registering in a real SB over TCP, `ovlmgr net create` and `ovlmgr cni
// config` on a real NB over TCP. Only systemctl is a stand-in (no systemd here) and files go under a temporary root.
// Every step runs twice: the second run changes nothing (re-provisioning is safe).
func TestProvisionSteps(t *testing.T) {
	prereq.Root(t)
	prereq.Bins(t, "ovsdb-server", "ovsdb-tool", "ovn-sbctl", "ovn-nbctl", "ovs-vsctl", "ovn-controller")
	netns := vmNetns(t)
	sb := startSB(t, netns)
	nb := startDB(t, netns, "/usr/share/ovn/ovn-nb.ovsschema", 6641)
	if out, err := ovsdbtest.Cmd(t, "ovn-nbctl", "--db="+nb, "init").CombinedOutput(); err != nil {
		t.Fatalf("ovn-nbctl init: %v: %s", err, out)
	}
	vs := ovsdbtest.StartVswitch(t)
	const cloned = "6f9b8d2e-box-image-id"
	vs.Run(t, "ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".", "external_ids:system-id="+cloned)

	root, bin, run := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/openvswitch"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/openvswitch/system-id.conf"), []byte(cloned+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "ovlmgr"), "../cli")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ovlmgr: %v\n%s", err, out)
	}
	calls := filepath.Join(run, "systemctl.calls")
	stub := "#!/bin/sh\necho \"$*\" >>" + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}

	// ovn-controller, started before the join like the package starts it; stopped by PID at the end.
	var ctlLog bytes.Buffer
	ctl := nsexec.Command(context.Background(), netns.Path(), []string{"OVN_RUNDIR=" + run, "OVS_RUNDIR=" + vs.Dir},
		"ovn-controller", vs.Endpoint, "--pidfile="+filepath.Join(run, "ovn-controller.pid"),
		"--log-file="+filepath.Join(run, "ovn-controller.log"), "-vconsole:off")
	ctl.Stdout, ctl.Stderr = &ctlLog, &ctlLog
	if err := ctl.Start(); err != nil {
		t.Fatalf("start ovn-controller: %v", err)
	}
	t.Cleanup(func() {
		_ = ctl.Process.Kill()
		_ = ctl.Wait()
	})

	env := []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"), "OVLMGR_ROOT=" + root, "OVS_RUNDIR=" + vs.Dir, "OVN_RUNDIR=" + run,
		"OVLMGR_ROLE=worker", "OVLMGR_NODE=worker2", "OVLMGR_SYSTEM_ID=worker2", "OVLMGR_ENCAP_IP=198.18.50.11",
		"OVLMGR_CENTRAL_IP=198.18.50.10", "OVLMGR_NET_PREFIX=198.18.50", "OVLMGR_MTU=1500", "OVLMGR_WAIT=30",
		"OVLMGR_DEMO_SUBNET=198.19.10.0/24", "OVLMGR_CHASSIS=worker2=198.18.50.11",
	}
	step := func(name string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := nsexec.Command(ctx, netns.Path(), env, "bash", "provision.sh", name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(run, "ovn-controller.log"))
			t.Fatalf("provision.sh %s: %v\n%s\novn-controller: %s", name, err, out, log)
		}
		return string(out)
	}
	join := func() string { return step("join") }

	first := join()
	t.Logf("first run:\n%s", first)
	for _, want := range []string{
		"replacing the OVS system-id " + cloned + " from the box image",
		"node worker2 (hostname worker2, encap geneve 198.18.50.11) joined",
		"joined: chassis worker2, encap geneve 198.18.50.11 on eth1",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first join output lacks %q:\n%s", want, first)
		}
	}
	ids := vs.Run(t, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids")
	for _, want := range []string{`system-id=worker2`, `hostname=worker2`, `ovn-encap-ip="198.18.50.11"`,
		`ovn-remote="tcp:198.18.50.10:6642"`, `ovn-encap-type=geneve`, `ovn-bridge-datapath-type=system`} {
		if !strings.Contains(ids, want) {
			t.Errorf("Open_vSwitch external_ids lack %s: %s", want, ids)
		}
	}
	if br := vs.Run(t, "ovs-vsctl", "--bare", "--columns=name", "list", "Bridge"); strings.TrimSpace(br) != "br-int" {
		t.Errorf("bridges after join: %q, want br-int", br)
	}
	chassis := ovsdbtest.Cmd(t, "ovn-sbctl", "--db="+sb, "--bare", "--columns=name,hostname", "list", "Chassis")
	out, err := chassis.Output()
	if err != nil || !strings.Contains(string(out), "worker2\nworker2") {
		t.Errorf("SB chassis: %v %q, want worker2 on worker2", err, out)
	}
	for file, want := range map[string]string{
		"etc/openvswitch/system-id.conf": "worker2\n",
		"etc/ovlmgr/lab.env":             "OVLMGR_NB=tcp:198.18.50.10:6641\nOVLMGR_SB=tcp:198.18.50.10:6642\n",
	} {
		if b, err := os.ReadFile(filepath.Join(root, file)); err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}
	firstCalls, _ := os.ReadFile(calls)
	if want := "stop ovn-controller\nenable ovn-host\nstart ovn-host ovn-controller\n"; string(firstCalls) != want {
		t.Errorf("systemctl calls = %q, want %q", firstCalls, want)
	}

	// Again: nothing to do, ovn-controller is not stopped, the chassis stays.
	second := join()
	t.Logf("second run:\n%s", second)
	if !strings.Contains(second, "node worker2 (hostname worker2, encap geneve 198.18.50.11) already joined") ||
		strings.Contains(second, "replacing") {
		t.Errorf("second join output:\n%s", second)
	}
	allCalls, _ := os.ReadFile(calls)
	if got := strings.TrimPrefix(string(allCalls), string(firstCalls)); got != "enable ovn-host\nstart ovn-host ovn-controller\n" {
		t.Errorf("systemctl calls of the second run = %q", got)
	}

	// demo (central's last step): the demo network in NB, the CNI config, what to try; again: the same.
	conflist := filepath.Join(root, "etc/cni/net.d/10-ovlmgr-demo.conflist")
	for i := 0; i < 2; i++ {
		demo := step("demo")
		for _, want := range []string{"ovlmgr lab: 1 OVN chassis (worker2), NB tcp:198.18.50.10:6641",
			"vagrant ssh worker2 -c 'sudo ovlmgr-demo add c1'", "container MTU 1442"} {
			if !strings.Contains(demo, want) {
				t.Errorf("demo run %d output lacks %q:\n%s", i+1, want, demo)
			}
		}
		sw, err := ovsdbtest.Cmd(t, "ovn-nbctl", "--db="+nb, "--bare", "--columns=other_config", "find", "Logical_Switch",
			"name=demo").Output()
		if err != nil || !strings.Contains(string(sw), "subnet=198.19.10.0/24") {
			t.Errorf("demo switch in NB after run %d: %v %q", i+1, err, sw)
		}
		if b, err := os.ReadFile(conflist); err != nil || !strings.Contains(string(b), `"network": "demo"`) {
			t.Errorf("%s after demo run %d: %v %s", conflist, i+1, err, b)
		}
	}
	// ovlmgr-demo finds a container's address on another node in NB, by the key the plugin writes.
	if out, err := ovsdbtest.Cmd(t, "ovn-nbctl", "--db="+nb, "lsp-add", "demo", "c9-eth0", "--", "lsp-set-addresses", "c9-eth0",
		"0a:58:c6:13:0a:09 198.19.10.9", "--", "set", "Logical_Switch_Port", "c9-eth0",
		fmt.Sprintf("external_ids:%q=c9", owner.KeyContainer)).CombinedOutput(); err != nil {
		t.Fatalf("lsp-add: %v: %s", err, out)
	}
	demoEnv := []string{"OVLMGR_NB=tcp:198.18.50.10:6641"}
	ip, err := nsexec.Command(context.Background(), netns.Path(), demoEnv, "bash", "ovlmgr-demo.sh", "ip", "c9").CombinedOutput()
	if err != nil || string(ip) != "198.19.10.9\n" {
		t.Errorf("ovlmgr-demo ip c9: %v %q, want 198.19.10.9", err, ip)
	}
	ip, err = nsexec.Command(context.Background(), netns.Path(), demoEnv, "bash", "ovlmgr-demo.sh", "ip", "c8").CombinedOutput()
	if err == nil || !strings.Contains(string(ip), "no address for container 'c8'") {
		t.Errorf("ovlmgr-demo ip c8: %v %q, want an error", err, ip)
	}

	// cni (a worker's last step) after removing the file: written again from NB.
	if err := os.Remove(conflist); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(calls)
	step("cni")
	if b, err := os.ReadFile(conflist); err != nil || !strings.Contains(string(b), `"type": "ovlmgr-cni"`) {
		t.Errorf("%s after cni: %v %s", conflist, err, b)
	}
	// ... and the node's CNI server: a systemd unit, written once, restarted on every run (a new binary takes over).
	unit := filepath.Join(root, "etc/systemd/system/ovlmgr-cni.service")
	if b, err := os.ReadFile(unit); err != nil || !strings.Contains(string(b), "ExecStart=/opt/cni/bin/ovlmgr-cni serve --pidfile /run/ovlmgr-cni.pid\n") {
		t.Errorf("%s after cni: %v %s", unit, err, b)
	}
	// demo wrote the unit first (systemd reloads then), cni finds it unchanged.
	after, _ := os.ReadFile(calls)
	if got := strings.TrimPrefix(string(after), string(before)); got != "enable ovlmgr-cni.service\nrestart ovlmgr-cni.service\n" {
		t.Errorf("systemctl calls of step cni = %q", got)
	}
	if n := strings.Count(string(after), "daemon-reload\nenable ovlmgr-cni.service\nrestart ovlmgr-cni.service\n"); n != 1 {
		t.Errorf("systemctl calls: the unit was loaded %d times, want once (when first written):\n%s", n, after)
	}
	// summary (the last worker): every chassis registered, node list, what to try.
	sum := step("summary")
	if !strings.Contains(sum, "worker2") || !strings.Contains(sum, "198.18.50.11") || !strings.Contains(sum, "Try, from vagrant/") {
		t.Errorf("summary output:\n%s", sum)
	}
	t.Logf("summary:\n%s", sum)
}
