// Package vagrant holds the tests of the Vagrant VM lab (Vagrantfile, settings.rb, provisioning scripts). No VM is
// booted: the tests check the machine plan the settings produce, that Vagrant reads the Vagrantfile into exactly that
// plan, and that the scripts pass shellcheck.
package vagrant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// plan is what `ruby settings.rb` prints.
type plan struct {
	Settings struct {
		Workers         int    `json:"workers"`
		Box             string `json:"box"`
		NetPrefix       string `json:"net_prefix"`
		MTU             int    `json:"mtu"`
		CentralIP       string `json:"central_ip"`
		ContainerMTU    int    `json:"container_mtu"`
		LibvirtDriver   string `json:"libvirt_driver"`
		UnderlayNetwork string `json:"underlay_network"`
		ExternalNetwork string `json:"external_network"`
	} `json:"settings"`
	Machines []struct {
		Name     string `json:"name"`
		Hostname string `json:"hostname"`
		Role     string `json:"role"`
		IP       string `json:"ip"`
		SystemID string `json:"system_id"`
		Primary  bool   `json:"primary"`
		Last     bool   `json:"last"`
		Gateway  bool   `json:"gateway"`
	} `json:"machines"`
	Env   map[string]map[string]string `json:"env"`
	Steps map[string][]string          `json:"steps"`
}

// ovlmgrEnv is the environment without any OVLMGR_* variable of the caller, plus extra.
func ovlmgrEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OVLMGR_") && !strings.HasPrefix(kv, "VAGRANT_") {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// need skips the test when tool (ruby, vagrant: the VM lab's tools, which
// `make deps` does not install) is missing. The skip is an optional one
// (prereq.Optional): `make test` counts it apart instead of failing.
//
// The vagrant CLI takes seconds per run (ruby, plugins), so `make unit`
// (go test -short) leaves its tests to `make test`.
func need(t *testing.T, tool string) {
	t.Helper()
	if tool == "vagrant" && testing.Short() {
		t.Skip("unit run (-short): runs the vagrant CLI (seconds per case); make test runs it")
	}
	if m := sysbin.Missing(tool); len(m) > 0 {
		prereq.Optional(t, fmt.Errorf("%s is not installed (the VM lab's tool; apt-get install %s)", tool, tool))
	}
}

// settingsPlan runs settings.rb with env; it returns the plan, or stderr and a non-nil error when it refused.
func settingsPlan(t *testing.T, env map[string]string) (plan, string, error) {
	t.Helper()
	cmd := exec.Command("ruby", "settings.rb")
	cmd.Env = ovlmgrEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var p plan
	if err := cmd.Run(); err != nil {
		return p, stderr.String(), err
	}
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		t.Fatalf("settings.rb printed no plan: %v\n%s", err, stdout.String())
	}
	return p, stderr.String(), nil
}

func TestSettingsPlan(t *testing.T) {
	need(t, "ruby")
	lab := netip.MustParsePrefix("198.18.0.0/15")
	for _, tc := range []struct {
		env     map[string]string
		workers int
		prefix  string
		mtu     int
	}{
		{env: nil, workers: 2, prefix: "198.18.50", mtu: 1500},
		{env: map[string]string{"OVLMGR_WORKERS": "1"}, workers: 1, prefix: "198.18.50", mtu: 1500},
		{env: map[string]string{"OVLMGR_WORKERS": "3"}, workers: 3, prefix: "198.18.50", mtu: 1500},
		{env: map[string]string{"OVLMGR_WORKERS": "0"}, workers: 0, prefix: "198.18.50", mtu: 1500},
		{env: map[string]string{"OVLMGR_WORKERS": "3", "OVLMGR_NET_PREFIX": "198.19.7", "OVLMGR_MTU": "9000"},
			workers: 3, prefix: "198.19.7", mtu: 9000},
		{env: map[string]string{"OVLMGR_WORKERS": " 5 ", "OVLMGR_MTU": "1400", "OVLMGR_BOX": "ovlmgr/bookworm-local",
			"OVLMGR_LIBVIRT_DRIVER": "qemu"}, workers: 5, prefix: "198.18.50", mtu: 1400},
	} {
		t.Run(fmt.Sprintf("workers=%d,prefix=%s,mtu=%d", tc.workers, tc.prefix, tc.mtu), func(t *testing.T) {
			p, stderr, err := settingsPlan(t, tc.env)
			if err != nil {
				t.Fatalf("settings.rb refused %v: %v: %s", tc.env, err, stderr)
			}
			s := p.Settings
			if s.Workers != tc.workers || s.NetPrefix != tc.prefix || s.MTU != tc.mtu || s.ContainerMTU != tc.mtu-58 {
				t.Errorf("settings = %+v, want workers %d prefix %s mtu %d container mtu %d", s, tc.workers, tc.prefix,
					tc.mtu, tc.mtu-58)
			}
			if want := tc.env["OVLMGR_BOX"]; want != "" && s.Box != want || want == "" && s.Box != "debian/bookworm64" {
				t.Errorf("box = %q", s.Box)
			}
			if len(p.Machines) != tc.workers+1 {
				t.Fatalf("%d machines, want central + %d workers: %+v", len(p.Machines), tc.workers, p.Machines)
			}
			ids, ips := map[string]string{}, map[string]string{}
			var chassis []string
			for i, m := range p.Machines {
				wantName, wantRole := fmt.Sprintf("worker%d", i), "worker"
				if i == 0 {
					wantName, wantRole = "central", "central"
				}
				wantIP := fmt.Sprintf("%s.%d", tc.prefix, 10+i)
				if m.Name != wantName || m.Hostname != wantName || m.Role != wantRole || m.IP != wantIP {
					t.Errorf("machine %d = %+v, want %s (%s) at %s", i, m, wantName, wantRole, wantIP)
				}
				if m.Primary != (i == 0) || m.Last != (i == tc.workers) {
					t.Errorf("machine %s: primary %v last %v", m.Name, m.Primary, m.Last)
				}
				addr, err := netip.ParseAddr(m.IP)
				if err != nil || !lab.Contains(addr) || m.IP == "10.0.2.15" {
					t.Errorf("machine %s: address %q is not inside %s", m.Name, m.IP, lab)
				}
				if m.SystemID == "" {
					t.Errorf("machine %s has no system-id", m.Name)
				}
				if other, dup := ids[m.SystemID]; dup {
					t.Errorf("system-id %q of %s is also the one of %s", m.SystemID, m.Name, other)
				}
				if other, dup := ips[m.IP]; dup {
					t.Errorf("address %s of %s is also the one of %s", m.IP, m.Name, other)
				}
				ids[m.SystemID], ips[m.IP] = m.Name, m.Name
				chassis = append(chassis, m.SystemID+"="+m.IP)

				// What provisioning gets: its own encap IP (on the private NIC) and system-id.
				e := p.Env[m.Name]
				if e["OVLMGR_ENCAP_IP"] != m.IP || e["OVLMGR_SYSTEM_ID"] != m.SystemID || e["OVLMGR_NODE"] != m.Hostname ||
					e["OVLMGR_ROLE"] != m.Role || e["OVLMGR_CENTRAL_IP"] != tc.prefix+".10" ||
					e["OVLMGR_MTU"] != fmt.Sprint(tc.mtu) || e["OVLMGR_NET_PREFIX"] != tc.prefix {
					t.Errorf("provisioning env of %s = %v", m.Name, e)
				}
				// worker1 alone is on the external network (its NIC found by MAC).
				if m.Gateway != (m.Name == "worker1") || (e["OVLMGR_EXTERNAL_MAC"] != "") != m.Gateway {
					t.Errorf("machine %s: gateway %v, OVLMGR_EXTERNAL_MAC %q", m.Name, m.Gateway, e["OVLMGR_EXTERNAL_MAC"])
				}
				// summary checks each chassis' hostname against its system-id.
				if m.SystemID != m.Hostname {
					t.Errorf("machine %s: system-id %q differs from hostname %q", m.Name, m.SystemID, m.Hostname)
				}

				steps := p.Steps[m.Name]
				want := []string{"mtu", "install", "join", "cni"}
				if m.Role == "central" {
					want = []string{"mtu", "install", "central", "join", "demo"}
				} else if m.Last {
					want = append(want, "summary")
				}
				if !reflect.DeepEqual(steps, want) {
					t.Errorf("steps of %s = %v, want %v", m.Name, steps, want)
				}
			}
			for name, e := range p.Env {
				if got := e["OVLMGR_CHASSIS"]; got != strings.Join(chassis, " ") {
					t.Errorf("OVLMGR_CHASSIS of %s = %q, want %q", name, got, strings.Join(chassis, " "))
				}
			}
			if p.Settings.CentralIP != tc.prefix+".10" {
				t.Errorf("central IP %s", p.Settings.CentralIP)
			}
		})
	}
}

func TestSettingsRefused(t *testing.T) {
	need(t, "ruby")
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OVLMGR_WORKERS": "x"}, `OVLMGR_WORKERS="x": must be a whole number from 0 to 50`},
		{map[string]string{"OVLMGR_WORKERS": "-1"}, `OVLMGR_WORKERS="-1": must be a whole number from 0 to 50`},
		{map[string]string{"OVLMGR_WORKERS": "51"}, `OVLMGR_WORKERS="51": must be a whole number from 0 to 50`},
		{map[string]string{"OVLMGR_CPUS": "0"}, `OVLMGR_CPUS="0": must be a whole number from 1 to 32`},
		{map[string]string{"OVLMGR_MEMORY": "256"}, `OVLMGR_MEMORY="256": must be a whole number from 512 to 65536`},
		{map[string]string{"OVLMGR_MTU": "1337"}, `OVLMGR_MTU="1337": must be a whole number from 1338 to 9216`},
		{map[string]string{"OVLMGR_MTU": "1500.5"}, `OVLMGR_MTU="1500.5": must be a whole number`},
		{map[string]string{"OVLMGR_NET_PREFIX": "10.0.2"}, `OVLMGR_NET_PREFIX="10.0.2": must be three octets of a /24 inside 198.18.0.0/15`},
		{map[string]string{"OVLMGR_NET_PREFIX": "198.20.1"}, `OVLMGR_NET_PREFIX="198.20.1": must be three octets`},
		{map[string]string{"OVLMGR_NET_PREFIX": "198.18.256"}, `OVLMGR_NET_PREFIX="198.18.256": must be three octets`},
		{map[string]string{"OVLMGR_NET_PREFIX": "198.18.1.0/24"}, `OVLMGR_NET_PREFIX="198.18.1.0/24": must be three octets`},
		{map[string]string{"OVLMGR_LIBVIRT_DRIVER": "tcg"}, `OVLMGR_LIBVIRT_DRIVER="tcg": must be one of kvm, qemu`},
		{map[string]string{"OVLMGR_MGMT_MODE": "route"}, `OVLMGR_MGMT_MODE="route": must be one of nat, none`},
		{map[string]string{"OVLMGR_BOX": "debian bookworm"}, `OVLMGR_BOX="debian bookworm": must be a box name`},
		{map[string]string{"OVLMGR_DEMO_SUBNET": "198.19.10.0/33"}, `OVLMGR_DEMO_SUBNET="198.19.10.0/33": must be an IPv4 CIDR`},
		{map[string]string{"OVLMGR_DEMO_SUBNET": "198.19.10.1/24"}, `OVLMGR_DEMO_SUBNET="198.19.10.1/24": must be a network address (198.19.10.0/24)`},
		{map[string]string{"OVLMGR_MGMT_NET": "fd00::/64"}, `OVLMGR_MGMT_NET="fd00::/64": must be an IPv4 CIDR`},
		{map[string]string{"OVLMGR_DEMO_SUBNET": "198.18.50.128/25"}, `OVLMGR_NET_PREFIX=198.18.50 overlaps OVLMGR_DEMO_SUBNET=198.18.50.128/25`},
		{map[string]string{"OVLMGR_MGMT_NET": "198.18.0.0/16"}, `OVLMGR_NET_PREFIX=198.18.50 overlaps OVLMGR_MGMT_NET=198.18.0.0/16`},
		{map[string]string{"OVLMGR_WAIT": "5"}, `OVLMGR_WAIT="5": must be a whole number from 10 to 3600`},
		{map[string]string{"OVLMGR_EXTERNAL_PREFIX": "198.18.50"}, `OVLMGR_NET_PREFIX=198.18.50 overlaps OVLMGR_EXTERNAL_PREFIX=198.18.50`},
		{map[string]string{"OVLMGR_EXTERNAL_PREFIX": "10.0.0"}, `OVLMGR_EXTERNAL_PREFIX="10.0.0": must be three octets of a /24 inside 198.18.0.0/15`},
	} {
		t.Run(fmt.Sprint(tc.env), func(t *testing.T) {
			_, stderr, err := settingsPlan(t, tc.env)
			if err == nil {
				t.Fatalf("settings.rb accepted %v", tc.env)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
}

// vagrant runs vagrant in this directory with the libvirt provider, keeping all its state in temporary directories.
func vagrant(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("vagrant", args...)
	all := map[string]string{
		"VAGRANT_DEFAULT_PROVIDER":   "libvirt",
		"VAGRANT_HOME":               t.TempDir(),
		"VAGRANT_DOTFILE_PATH":       t.TempDir(),
		"VAGRANT_CHECKPOINT_DISABLE": "1",
		"VAGRANT_NO_COLOR":           "1",
	}
	for k, v := range env {
		all[k] = v
	}
	cmd.Env = ovlmgrEnv(all)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestVagrantfile: Vagrant itself reads the Vagrantfile into the machines of the plan, validates it, and refuses a bad
// setting with the settings' message.
func TestVagrantfile(t *testing.T) {
	need(t, "ruby")
	need(t, "vagrant")
	for _, env := range []map[string]string{
		{"OVLMGR_WORKERS": "1"},
		{"OVLMGR_WORKERS": "2"},
		{"OVLMGR_WORKERS": "3", "OVLMGR_NET_PREFIX": "198.19.7", "OVLMGR_MTU": "9000", "OVLMGR_LIBVIRT_DRIVER": "qemu"},
	} {
		t.Run(fmt.Sprint(env), func(t *testing.T) {
			p, stderr, err := settingsPlan(t, env)
			if err != nil {
				t.Fatalf("settings.rb: %v: %s", err, stderr)
			}
			if out, err := vagrant(t, env, "validate"); err != nil {
				t.Fatalf("vagrant validate: %v\n%s", err, out)
			}
			out, err := vagrant(t, env, "status", "--machine-readable")
			if err != nil {
				t.Fatalf("vagrant status: %v\n%s", err, out)
			}
			var got, want []string
			for _, line := range strings.Split(out, "\n") {
				f := strings.Split(line, ",")
				if len(f) >= 4 && f[2] == "provider-name" {
					if f[3] != "libvirt" {
						t.Errorf("machine %s has provider %s", f[1], f[3])
					}
					got = append(got, f[1])
				}
			}
			for _, m := range p.Machines {
				want = append(want, m.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("vagrant status lists %v, want %v\n%s", got, want, out)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		out, err := vagrant(t, map[string]string{"OVLMGR_NET_PREFIX": "10.0.2"}, "validate")
		if err == nil || !strings.Contains(out, `OVLMGR_NET_PREFIX="10.0.2": must be three octets`) {
			t.Errorf("vagrant validate with OVLMGR_NET_PREFIX=10.0.2: err %v, output:\n%s", err, out)
		}
	})
}

// TestScripts: every shell script here (and in box/, e2e/) is shellcheck-clean (bash -n when shellcheck is not installed)
// and strict.
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob("*.sh")
	for _, dir := range []string{"box", "e2e"} {
		more, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
		scripts = append(scripts, more...)
	}
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, s := range scripts {
		body, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(body), "#!/usr/bin/env bash\n") || !strings.Contains(string(body), "\nset -euo pipefail\n") {
			t.Errorf("%s: must start with #!/usr/bin/env bash and set -euo pipefail", s)
		}
		var cmd *exec.Cmd
		if _, err := exec.LookPath("shellcheck"); err == nil {
			cmd = exec.Command("shellcheck", "-x", s)
		} else {
			t.Logf("shellcheck is not installed: bash -n only")
			cmd = exec.Command("bash", "-n", s)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", cmd, err, out)
		}
	}
}
