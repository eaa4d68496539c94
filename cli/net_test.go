package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

type netCLI struct {
	t   *testing.T
	srv *ovsdbtest.Server
}

func (n netCLI) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"ovlmgr", "--nb", n.srv.Endpoint}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// switchCount selects every Logical_Switch directly from NB.
func (n netCLI) switchCount() int {
	n.t.Helper()
	c, err := dbconn.ConnectNB(context.Background(), n.srv.Endpoint)
	if err != nil {
		n.t.Fatal(err)
	}
	defer c.Close()
	var rows []nbdb.LogicalSwitch
	if err := dbconn.Select(context.Background(), c, &nbdb.LogicalSwitch{}, &rows); err != nil {
		n.t.Fatal(err)
	}
	return len(rows)
}

// TestNetBadInput: each bad input prints one line naming the field, the
// value and what is allowed, exits 2 (usage) or 1, and writes nothing.
func TestNetBadInput(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/33"}, 2, []string{`create network "web": --subnet "198.19.0.0/33": not a valid IPv4 CIDR (want a.b.c.d/8 to /30)`}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.5/24"}, 2, []string{`--subnet "198.19.0.5/24": host bits set, did you mean 198.19.0.0/24`}},
		{[]string{"net", "create", "web", "--subnet", "198.0.0.0/7"}, 2, []string{`--subnet "198.0.0.0/7"`, "/8 to /30"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/31"}, 2, []string{`--subnet "198.19.0.0/31"`, "/8 to /30"}},
		{[]string{"net", "create", "web"}, 2, []string{"--subnet is required"}},
		{[]string{"net", "create", "web", "--subnet", "fd00::/56"}, 2, []string{`--subnet "fd00::/56"`, "must be a /64"}},
		{[]string{"net", "create", "web", "--subnet6", "fd00:198:19::/64", "--gateway", "fd00:198:19::fe"}, 2, []string{`--gateway "fd00:198:19::fe"`, "IPv6-only", "fd00:198:19::1"}},
		{[]string{"net", "create", "web", "--subnet", "fd00:198:19::/64", "--subnet6", "fd00:198:20::/64"}, 2, []string{"at most one IPv6 /64"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--subnet", "fd00::/56"}, 2, []string{`--subnet "fd00::/56"`, "/64"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--subnet", "198.19.1.0/24"}, 2, []string{"at most one IPv4 subnet"}},
		{[]string{"net", "create", "-bad", "--subnet", "198.19.0.0/24"}, 2, []string{}}, // urfave takes -bad as a flag: still usage
		{[]string{"net", "create", "we b", "--subnet", "198.19.0.0/24"}, 2, []string{`name "we b"`, "[A-Za-z0-9][A-Za-z0-9_.-]*"}},
		{[]string{"net", "create", strings.Repeat("a", 64), "--subnet", "198.19.0.0/24"}, 2, []string{"at most 63"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--gateway", "198.19.0.255"}, 2, []string{`--gateway "198.19.0.255"`, "198.19.0.1 to 198.19.0.254"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--gateway", "198.19.9.1"}, 2, []string{`--gateway "198.19.9.1"`, "inside 198.19.0.0/24"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--exclude", "198.19.1.1"}, 2, []string{`--exclude "198.19.1.1"`, "inside 198.19.0.0/24"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--exclude", "198.19.0.9..198.19.0.1"}, 2, []string{`--exclude "198.19.0.9..198.19.0.1"`, "start <= end"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--mtu", "100"}, 2, []string{"--mtu 100", "576 to 9000"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--mtu", "big"}, 2, []string{"mtu"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--label", "novalue"}, 2, []string{`--label "novalue"`, "key=value"}},
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24", "--nosuchflag"}, 2, []string{"nosuchflag"}},
		{[]string{"net", "create"}, 2, []string{"net create: want NAME", "ovlmgr net create --help"}},
		{[]string{"net", "show"}, 2, []string{"want NAME"}},
		{[]string{"net", "list", "-o", "xml"}, 2, []string{`--output "xml"`, "table, json, yaml"}},
		{[]string{"net", "show", "nosuch"}, 1, []string{`network "nosuch": no such network`}},
		{[]string{"net", "delete", "nosuch"}, 1, []string{`delete network "nosuch": no such network`}},
	}
	for _, tc := range cases {
		code, out, errs := n.run(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d; want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
		if tc.code == 2 && tc.args[1] == "create" && len(tc.want) > 0 {
			if lines := strings.Count(strings.TrimRight(errs, "\n"), "\n") + 1; lines != 1 {
				t.Errorf("%v: stderr has %d lines; want one: %q", tc.args, lines, errs)
			}
		}
		if out != "" && tc.code != 0 {
			t.Errorf("%v: stdout %q; want nothing on error", tc.args, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr %q; want it to contain %q", tc.args, errs, w)
			}
		}
	}
	if c := n.switchCount(); c != 0 {
		t.Fatalf("NB has %d Logical_Switch rows after bad input; want none", c)
	}
}

func TestNetCommands(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	code, out, errs := n.run("net", "create", "web", "--subnet", "198.19.0.0/24", "--subnet", "fd00:198:19::/64",
		"--exclude", "198.19.0.10", "--exclude", "198.19.0.20..198.19.0.29", "--mtu", "1400", "--label", "team=shop", "--label", "env=prod")
	if code != 0 || !strings.Contains(out, "network web: subnet 198.19.0.0/24,fd00:198:19::/64, gateway 198.19.0.1") {
		t.Fatalf("create: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs = n.run("net", "create", "db", "--subnet", "198.19.1.0/28", "--gateway", "198.19.1.14", "-o", "json"); code != 0 {
		t.Fatalf("create db: exit %d: %s", code, errs)
	}
	var created network.Network
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Gateway != "198.19.1.14" || created.Free != 13 {
		t.Fatalf("create -o json = %+v, %v from %q", created, err, out)
	}
	// Rules that need the database: exit 1, one line, nothing written.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"net", "create", "web", "--subnet", "198.19.0.0/24"}, "network web already exists (subnet 198.19.0.0/24; --may-exist accepts an identical spec)"},
		{[]string{"net", "create", "web", "--subnet", "198.19.5.0/24", "--may-exist"}, "different spec (subnet 198.19.0.0/24); --may-exist accepts only an identical spec"},
		{[]string{"net", "create", "big", "--subnet", "198.19.0.0/16"}, `--subnet "198.19.0.0/16" overlaps network "db" (198.19.1.0/28)`},
		{[]string{"net", "create", "small", "--subnet", "198.19.0.128/25"}, `overlaps network "web" (198.19.0.0/24)`},
	} {
		code, _, errs := n.run(tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d stderr %q; want exit 1 and one line with %q", tc.args, code, errs, tc.want)
		}
	}
	if c := n.switchCount(); c != 2 {
		t.Fatalf("%d switches; want 2", c)
	}
	// --may-exist with the identical spec succeeds.
	if code, _, errs = n.run("net", "create", "db", "--subnet", "198.19.1.0/28", "--gateway", "198.19.1.14", "--may-exist"); code != 0 {
		t.Fatalf("may-exist: exit %d: %s", code, errs)
	}
	// ovn-nbctl sees the switch and OVN's IPAM config.
	if show := n.srv.Run(t, "ovn-nbctl", "show"); !strings.Contains(show, "(web)") || !strings.Contains(show, "(db)") {
		t.Errorf("ovn-nbctl show: %s", show)
	}
	code, out, _ = n.run("net", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME SUBNET GATEWAY PORTS FREE LABELS" {
		t.Errorf("list header %q", lines[0])
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "web 198.19.0.0/24,fd00:198:19::/64 198.19.0.1,fd00:198:19::1 0 242 env=prod,team=shop" {
		t.Errorf("list row %q", lines[2])
	}
	if strings.Index(lines[0], "SUBNET") != strings.Index(lines[1], "198.19.1.0/28") {
		t.Errorf("list columns not aligned:\n%s", out)
	}
	code, out, _ = n.run("net", "list", "-o", "json")
	var nets []network.Network
	if err := json.Unmarshal([]byte(out), &nets); code != 0 || err != nil || len(nets) != 2 || nets[1].Name != "web" || nets[1].MTU != 1400 ||
		nets[1].Labels["team"] != "shop" || nets[1].IPv6Prefix != "fd00:198:19::/64" || len(nets[1].Exclude) != 2 {
		t.Fatalf("list -o json: %v %+v from %s", err, nets, out)
	}
	code, out, _ = n.run("net", "show", "web", "-o", "yaml")
	var shown network.Network
	if err := yaml.Unmarshal([]byte(out), &shown); code != 0 || err != nil || shown.Name != "web" || shown.Free != 242 || shown.UUID != nets[1].UUID {
		t.Fatalf("show -o yaml: %v %+v from %s", err, shown, out)
	}
	code, out, _ = n.run("net", "show", "web")
	fields := map[string]string{}
	valueCol := -1
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		k, v, _ := strings.Cut(line, " ")
		fields[k] = strings.TrimSpace(v)
		if col := len(line) - len(strings.TrimLeft(line[len(k):], " ")); valueCol == -1 {
			valueCol = col
		} else if col != valueCol {
			t.Errorf("show: value of %s in column %d, others in %d:\n%s", k, col, valueCol, out)
		}
	}
	if code != 0 || fields["GATEWAY"] != "198.19.0.1,fd00:198:19::1" || fields["MTU"] != "1400" || fields["EXCLUDE"] != "198.19.0.10 198.19.0.20..198.19.0.29" ||
		fields["FREE"] != "242" || fields["LABELS"] != "env=prod,team=shop" {
		t.Fatalf("show table:\n%s", out)
	}
	code, out, errs = n.run("net", "delete", "web")
	if code != 0 || !strings.Contains(out, "network web deleted") {
		t.Fatalf("delete: exit %d %s%s", code, out, errs)
	}
	if code, _, errs = n.run("net", "show", "web"); code != 1 || !strings.Contains(errs, "no such network") {
		t.Fatalf("show after delete: exit %d %s", code, errs)
	}
	if c := n.switchCount(); c != 1 {
		t.Fatalf("%d switches after delete; want 1", c)
	}
}

// TestNetDeleteRefusesPorts: a network with container ports is kept and
// its ports are listed; --force deletes them with the network.
func TestNetDeleteRefusesPorts(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	if code, _, errs := n.run("net", "create", "web", "--subnet", "198.19.0.0/24"); code != 0 {
		t.Fatal(errs)
	}
	n.srv.Run(t, "ovn-nbctl", "lsp-add", "web", "c1_eth0", "--", "set", "Logical_Switch_Port", "c1_eth0",
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=port`, `external_ids:"ovlmgr.io/network"=web`)
	code, out, _ := n.run("net", "list")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "web 198.19.0.0/24 198.19.0.1 1 252 -") {
		t.Fatalf("list with one port:\n%s", out)
	}
	code, _, errs := n.run("net", "delete", "web")
	if code != 1 || !strings.Contains(errs, "c1_eth0") || !strings.Contains(errs, "--force") {
		t.Fatalf("delete with a port: exit %d %q", code, errs)
	}
	if code, _, errs = n.run("net", "delete", "web", "--force"); code != 0 {
		t.Fatalf("delete --force: exit %d %s", code, errs)
	}
	if out := n.srv.Run(t, "ovn-nbctl", "--columns=name", "list", "Logical_Switch_Port"); strings.Contains(out, "c1_eth0") {
		t.Fatalf("port left after --force: %s", out)
	}
}

// TestNetForeignSwitch: a switch ovlmgr did not create is never touched.
func TestNetForeignSwitch(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	n.srv.Run(t, "ovn-nbctl", "ls-add", "web")
	code, _, errs := n.run("net", "create", "web", "--subnet", "198.19.0.0/24")
	if code != 1 || !strings.Contains(errs, "does not manage") {
		t.Errorf("create over foreign: exit %d %q", code, errs)
	}
	code, _, errs = n.run("net", "delete", "web", "--force")
	if code != 1 || !strings.Contains(errs, "not managed by ovlmgr") {
		t.Errorf("delete foreign: exit %d %q", code, errs)
	}
	if c := n.switchCount(); c != 1 {
		t.Fatalf("%d switches; want the foreign one only", c)
	}
}

func TestNetHelpShowsExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"net", "--help"}, {"net", "create", "--help"}, {"net", "list", "--help"},
		{"net", "show", "--help"}, {"net", "delete", "--help"}} {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr"}, args...), &out, &errb)
		if code != 0 || !strings.Contains(out.String(), "Example:") || !strings.Contains(out.String(), "ovlmgr net") {
			t.Errorf("%v: exit %d, want an example in:\n%s", args, code, out.String())
		}
	}
}

// TestInterspersed: flags after positional arguments reach the command;
// everything from "--" on is kept as typed.
func TestInterspersed(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, tc := range []struct{ in, want string }{
		{"ovlmgr net create web --subnet 198.19.0.0/24 --may-exist -o json", "ovlmgr net create --subnet 198.19.0.0/24 --may-exist -o json web"},
		{"ovlmgr --nb unix:/x net delete web --force", "ovlmgr --nb unix:/x net delete --force web"},
		{"ovlmgr net create web --label=a=b x", "ovlmgr net create --label=a=b web x"},
		{"ovlmgr lab exec n1 -- ip -br a", "ovlmgr lab exec n1 -- ip -br a"},
		{"ovlmgr net list", "ovlmgr net list"},
		{"ovlmgr nosuch a -b", "ovlmgr nosuch a -b"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("interspersed(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestMain runs the test binary as an ovlmgr process when
// TestNetCreateRaceProcesses starts it so (OVLMGR_NET_HELPER set), and the
// tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("OVLMGR_NET_HELPER") != "" {
		netHelperProcess()
	}
	os.Exit(m.Run())
}

// netHelperProcess runs ovlmgr with the arguments in OVLMGR_NET_HELPER,
// once the file OVLMGR_NET_GO exists, and exits with its code.
func netHelperProcess() {
	args := strings.Split(os.Getenv("OVLMGR_NET_HELPER"), "\x1f")
	// Start together: wait for the go file (polling, bounded).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(os.Getenv("OVLMGR_NET_GO")); err == nil {
			break
		}
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// TestNetCreateRaceProcesses: `ovlmgr net create` of one name from separate
// processes at once: exactly one exits 0, the others exit 1 with
// "network NAME already exists".
func TestNetCreateRaceProcesses(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	for round := 0; round < 3; round++ {
		name := fmt.Sprintf("web%d", round)
		goFile := filepath.Join(t.TempDir(), "go")
		type result struct {
			code   int
			stderr string
		}
		var cmds []*exec.Cmd
		var errbufs []*bytes.Buffer
		for i := 0; i < 3; i++ {
			args := []string{"ovlmgr", "--nb", n.srv.Endpoint, "net", "create", name, "--subnet", fmt.Sprintf("198.18.%d.0/24", round*3+i)}
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "OVLMGR_NET_HELPER="+strings.Join(args, "\x1f"), "OVLMGR_NET_GO="+goFile)
			var eb bytes.Buffer
			cmd.Stderr = &eb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, errbufs = append(cmds, cmd), append(errbufs, &eb)
		}
		if err := os.WriteFile(goFile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var res []result
		for i, cmd := range cmds {
			err := cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			res = append(res, result{code, errbufs[i].String()})
		}
		wins := 0
		for _, r := range res {
			switch {
			case r.code == 0:
				wins++
			case r.code != 1 || !strings.Contains(r.stderr, "network "+name+" already exists"):
				t.Errorf("round %d: loser exit %d stderr %q; want 1 and already exists", round, r.code, r.stderr)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d processes won; want exactly 1: %+v", round, wins, res)
		}
	}
	if c := n.switchCount(); c != 3 {
		t.Fatalf("%d switches; want 3", c)
	}
}

// TestNetCreateIPv6Only: `net create --subnet6` alone makes an IPv6-only
// network; list and show print its /64 and its gateway ::1, and FREE "-".
func TestNetCreateIPv6Only(t *testing.T) {
	n := netCLI{t, ovsdbtest.StartNB(t)}
	if code, out, errs := n.run("net", "create", "six", "--subnet6", "fd00:198:19:6::/64"); code != 0 || !strings.Contains(out, "fd00:198:19:6::/64") {
		t.Fatalf("net create six --subnet6: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// FREE of a /64 is "-", not a 0 that reads as full.
	if code, out, errs := n.run("net", "list"); code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 ||
		strings.Join(strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]), " ") != "six fd00:198:19:6::/64 fd00:198:19:6::1 0 - -" {
		t.Errorf("net list: exit %d, stdout %q, stderr %q; want the row six fd00:198:19:6::/64 fd00:198:19:6::1 0 - -", code, out, errs)
	}
	code, out, errs := n.run("net", "show", "six", "-o", "json")
	if code != 0 || !strings.Contains(out, `"ipv6Prefix": "fd00:198:19:6::/64"`) || !strings.Contains(out, `"gateway6": "fd00:198:19:6::1"`) || !strings.Contains(out, `"subnet": ""`) {
		t.Errorf("net show six -o json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
