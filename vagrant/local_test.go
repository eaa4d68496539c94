package vagrant

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLocalBoxSettings: OVLMGR_BOX=local names the box vagrant/box/build.sh adds, the libvirt settings of the local
// way (storage pool, serial log directory) reach the plan, and bad values are refused with their one-line message.
func TestLocalBoxSettings(t *testing.T) {
	need(t, "ruby")
	script, err := os.ReadFile("box/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BOX_NAME=([A-Za-z0-9_.-]+)$`).FindSubmatch(script)
	if m == nil {
		t.Fatal("box/build.sh has no BOX_NAME=")
	}
	env := map[string]string{"OVLMGR_BOX": "local", "OVLMGR_LIBVIRT_POOL": "ovlmgr-e2e", "OVLMGR_SERIAL_DIR": "/var/lib/ovlmgr-e2e/serial"}
	cmd := exec.Command("ruby", "settings.rb")
	cmd.Env = ovlmgrEnv(env)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("settings.rb with %v: %v", env, err)
	}
	var p struct {
		Settings struct {
			Box         string `json:"box"`
			LibvirtPool string `json:"libvirt_pool"`
			SerialDir   string `json:"serial_dir"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.Settings.Box != string(m[1]) || p.Settings.LibvirtPool != "ovlmgr-e2e" || p.Settings.SerialDir != "/var/lib/ovlmgr-e2e/serial" {
		t.Errorf("settings %+v, want box %s (box/build.sh's BOX_NAME), pool ovlmgr-e2e, serial dir /var/lib/ovlmgr-e2e/serial",
			p.Settings, m[1])
	}
	for _, tc := range []struct{ env map[string]string }{
		{map[string]string{"OVLMGR_LIBVIRT_POOL": "a b"}},
		{map[string]string{"OVLMGR_SERIAL_DIR": "serial"}},
	} {
		_, stderr, err := settingsPlan(t, tc.env)
		for k, v := range tc.env {
			if err == nil || !strings.Contains(stderr, k+"="+`"`+v+`": must be`) {
				t.Errorf("%s=%q: err %v, stderr %q, want a refusal naming it", k, v, err, stderr)
			}
		}
	}
}

// TestVagrantfileLocal: Vagrant accepts the Vagrantfile the way make vagrant-e2e runs it (local box, software
// emulation without a display, serial console to a file, own storage pool, isolated management network).
func TestVagrantfileLocal(t *testing.T) {
	need(t, "ruby")
	need(t, "vagrant")
	env := map[string]string{"OVLMGR_BOX": "local", "OVLMGR_LIBVIRT_DRIVER": "qemu", "OVLMGR_MGMT_MODE": "none",
		"OVLMGR_LIBVIRT_POOL": "ovlmgr-e2e", "OVLMGR_SERIAL_DIR": filepath.Join(t.TempDir(), "serial")}
	if out, err := vagrant(t, env, "validate"); err != nil {
		t.Fatalf("vagrant validate with %v: %v\n%s", env, err, out)
	}
}
