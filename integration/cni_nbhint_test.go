package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
)

// TestPluginNBHint: a plugin process without the node's CNI server notes
// beside the node's Open_vSwitch db socket how it reached the NB (owner
// only), starts the next ADD's NB connection from that note while it
// connects the local db, and never uses a note the local db contradicts:
// a note naming another NB (a decoy ovsdb-server without the network) is
// dropped and rewritten, and the ADD reads the network from the real NB.
// The node is a bare Open_vSwitch db (no ovs-vswitchd), so every ADD ends
// in code 11 after its short readyTimeout, having read the network.
func TestPluginNBHint(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("nh%d", os.Getpid()%10000)
	cniNetwork(t, nb, name, "198.19.101.0/24")
	fake, srv := fakeNode(t, l, "fake-"+name)
	hintPath := filepath.Join(srv.Dir, attach.NBHintFile)
	logFile := filepath.Join(t.TempDir(), "plugin.log")

	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","mtu":1400,"readyTimeout":"300ms","logLevel":"debug","logFile":%q}`, name, logFile)
	// logLine is the plugin's debug log line of verb on container c that
	// says how it connected the NB.
	logLine := func(step, verb string, c *container) string {
		t.Helper()
		raw, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatalf("%s: plugin log: %v", step, err)
		}
		who := fmt.Sprintf("ovlmgr-cni %s %.12s/eth0: ", verb, c.id) // the log's prefix
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, who) && strings.Contains(line, "connected") {
				return line
			}
		}
		t.Fatalf("%s: no connect line for %s of %s in the plugin log:\n%s", step, verb, c.id, raw)
		return ""
	}
	run := func(verb string, c *container) (uint, string) {
		env := []string{"CNI_COMMAND=" + verb, "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + c.ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
		_, code, msg := rawPlugin(t, ctx, fake, env, conf)
		return code, msg
	}
	// add runs one ADD and returns its log line saying how it connected.
	var last *container
	add := func(step string) string {
		t.Helper()
		last = newContainer(t, newRuntime(t, fake), nil)
		if code, msg := run("ADD", last); code != 11 || !strings.Contains(msg, "ovs-vswitchd did not attach") {
			t.Fatalf("%s: ADD on a node without vswitchd: code %d %q; want 11 after reading the network", step, code, msg)
		}
		return logLine(step, "ADD", last)
	}
	readHint := func(step string) map[string]any {
		t.Helper()
		st, err := os.Stat(hintPath)
		if err != nil {
			t.Fatalf("%s: no NB hint beside the node's db socket: %v", step, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: NB hint mode %v, want 0600", step, st.Mode().Perm())
		}
		raw, _ := os.ReadFile(hintPath)
		var h map[string]any
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatalf("%s: NB hint %q: %v", step, raw, err)
		}
		return h
	}
	const early = "beside the local db"

	if line := add("no hint"); strings.Contains(line, early) {
		t.Errorf("no hint: the ADD says it connected from one: %q", line)
	}
	if h := readHint("no hint"); h["nb"] != l.NB {
		t.Fatalf("no hint: the hint written names NB %v, want the node's %q", h["nb"], l.NB)
	}
	if line := add("hint"); !strings.Contains(line, early) {
		t.Errorf("hint: the ADD did not start its NB connection from the hint: %q", line)
	}
	// DEL starts it before its own work on the node.
	if code, msg := run("DEL", last); code != 0 {
		t.Fatalf("hint: DEL: code %d %q", code, msg)
	}
	if line := logLine("hint", "DEL", last); !strings.Contains(line, "beside the node's work") {
		t.Errorf("hint: the DEL did not start its NB connection from the hint: %q", line)
	}

	decoy := ovsdbtest.StartNB(t)
	raw, _ := json.Marshal(map[string]any{"nb": decoy.Endpoint})
	if err := os.WriteFile(hintPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if line := add("decoy"); strings.Contains(line, early) {
		t.Errorf("decoy: the ADD used a hint its local db contradicts: %q", line)
	}
	if h := readHint("decoy"); h["nb"] != l.NB {
		t.Errorf("decoy: the hint names NB %v after the ADD, want the node's %q", h["nb"], l.NB)
	}
}
