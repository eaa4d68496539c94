package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"

	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
)

// TestPortAttachCLI: `ovlmgr port attach` on a node wires a hand-made
// namespace with the ADD code (it reaches a CNI container on another node),
// `port list` shows it, `port detach` leaves nothing.
func TestPortAttachCLI(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("ca%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.219.0/24")
	peer := newContainer(t, newRuntime(t, l.Nodes[2]), confList(t, name, "1.1.0", nil))
	peer.mustAdd(t, ctx)

	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Close(); _ = testutils.UnmountNS(netns) })
	bin := filepath.Join(cniPluginDir(t), "ovlmgr")
	node := l.Nodes[0]
	id := fmt.Sprintf("hand%d", os.Getpid())
	out, err := node.Command(ctx, bin, "port", "attach", name, "--netns", netns.Path(), "--name", id,
		"--ip", "198.19.219.77", "--label", "app=shop", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("port attach: %v: %s", err, out)
	}
	var a attach.Attachment
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("attach output %q: %v", out, err)
	}
	if a.Address.String() != "198.19.219.77/24" || a.Node != node.SystemID || a.Port != ovnport.Name(node.SystemID, id, "eth0") {
		t.Fatalf("attachment %+v; want 198.19.219.77/24 on %s", a, node.SystemID)
	}
	hand := &container{id: id, ifName: "eth0", ns: netns}
	if err := hand.ping(ctx, peer.ip()); err != nil {
		t.Fatalf("attached namespace to CNI container: %v", err)
	}
	// From the host (no local Open_vSwitch db): NB's view only.
	cmd := exec.CommandContext(ctx, bin, "port", "list", "--net", name, "-o", "json")
	cmd.Env = append(os.Environ(), "OVLMGR_NB="+l.NB, "OVS_RUNDIR="+t.TempDir())
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("port list: %v: %s", err, out)
	}
	var ps []ovnport.Port
	if err := json.Unmarshal(out, &ps); err != nil || len(ps) != 2 {
		t.Fatalf("port list: %d ports (%v): %s", len(ps), err, out)
	}
	for _, p := range ps {
		if !p.Up || (p.Container == id && (p.Labels["app"] != "shop" || p.IP.String() != "198.19.219.77")) {
			t.Errorf("listed port %+v: want up, and the attached one with label app=shop and 198.19.219.77", p)
		}
	}
	// On the node: its own ports also show ovn-installed.
	out, err = node.Command(ctx, bin, "port", "list", "--net", name, "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("port list on %s: %v: %s", node.Name, err, out)
	}
	var lps []struct {
		Container string `json:"container"`
		Installed *bool  `json:"installed"`
	}
	if err := json.Unmarshal(out, &lps); err != nil || len(lps) != 2 {
		t.Fatalf("port list on node: %v: %s", err, out)
	}
	for _, p := range lps {
		if (p.Container == id) != (p.Installed != nil && *p.Installed) {
			t.Errorf("port of %s installed=%v; want true only for the port of this node", p.Container, p.Installed)
		}
	}
	if out, err := node.Command(ctx, bin, "port", "list", "--net", name, "-o", "yaml").CombinedOutput(); err != nil || !strings.Contains(string(out), "installed: true") {
		t.Errorf("port list -o yaml on node: %v: %s", err, out)
	}
	if out, err := node.Command(ctx, bin, "port", "detach", id, "--netns", netns.Path()).CombinedOutput(); err != nil {
		t.Fatalf("port detach: %v: %s", err, out)
	}
	assertGone(t, nb, node, id, "eth0")
	if out, err := node.Command(ctx, bin, "port", "detach", id).CombinedOutput(); err != nil {
		t.Errorf("repeated detach: %v: %s", err, out)
	}
}
