package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/cniconf"
)

// TestCNIConfig: `cni config NET` prints a conflist libcni loads, --out
// writes it to DIR/10-ovlmgr-NET.conflist, and an unknown network or bad
// flags fail naming them without writing anything.
func TestCNIConfig(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, err := network.Create(ctx, nb, network.Spec{Name: "web", Subnet: "198.19.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", srv.Endpoint}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := runCLI("cni", "config", "web")
	if code != 0 {
		t.Fatalf("cni config web: exit %d: %s", code, errs)
	}
	l, err := libcni.ConfListFromBytes([]byte(out))
	if err != nil || l.Name != "web" || len(l.Plugins) != 1 || l.Plugins[0].Network.Type != "ovlmgr-cni" || l.CNIVersion != "1.0.0" || strings.Contains(out, "cniVersions") {
		t.Fatalf("conflist %q: %+v, %v", out, l, err)
	}
	// Every version the plugin speaks can be asked for; 1.1.0 also lists
	// the older ones (a 1.1 runtime picks the newest it knows).
	for _, v := range cniconf.SupportedVersions() {
		code, out, errs := runCLI("cni", "config", "web", "--cni-version", v)
		if code != 0 {
			t.Fatalf("--cni-version %s: exit %d: %s", v, code, errs)
		}
		l, err := libcni.ConfListFromBytes([]byte(out))
		if err != nil || l.CNIVersion != v {
			t.Fatalf("--cni-version %s: %q: %+v, %v", v, out, l, err)
		}
		var raw struct {
			Versions []string `json:"cniVersions"`
		}
		if err := json.Unmarshal([]byte(out), &raw); err != nil {
			t.Fatal(err)
		}
		if v == "1.1.0" && !slices.Equal(raw.Versions, cniconf.SupportedVersions()) || v != "1.1.0" && raw.Versions != nil {
			t.Errorf("--cni-version %s: cniVersions %v", v, raw.Versions)
		}
	}
	dir := t.TempDir()
	if code, _, errs := runCLI("cni", "config", "web", "--out", dir, "--mtu", "1400"); code != 0 {
		t.Fatalf("cni config --out: exit %d: %s", code, errs)
	}
	l, err = libcni.ConfListFromFile(filepath.Join(dir, "10-ovlmgr-web.conflist"))
	if err != nil || !strings.Contains(string(l.Bytes), `"mtu": 1400`) {
		t.Fatalf("written conflist: %v %s", err, l.Bytes)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cni", "config", "nosuch", "--out", dir}, 1, "nosuch"},
		{[]string{"cni", "config", "bad name"}, 2, "NET"},
		{[]string{"cni", "config", "web", "--mtu", "100"}, 2, "--mtu 100"},
		{[]string{"cni", "config"}, 2, "NET"},
		{[]string{"cni", "config", "web", "--cni-version", "2.0.0", "--out", dir}, 2, `--cni-version "2.0.0": want one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`},
		{[]string{"cni", "config", "web", "--cni-version", ""}, 2, `--cni-version ""`},
	} {
		code, _, errs := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q; want %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in --out dir; want 1", len(ents))
	}
}
