package layers_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/layers"
)

// moduleRoot is the directory of this module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("go env GOMOD = %q: not inside the ovlmgr module", gomod)
	}
	return filepath.Dir(gomod)
}

func load(t *testing.T) (string, []layers.Package) {
	t.Helper()
	root := moduleRoot(t)
	pkgs, err := layers.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	// A load that misses the tree would pass every rule: the packages the
	// rules are about must be there.
	have := map[string]bool{}
	for _, p := range pkgs {
		have[p.Path] = true
	}
	for _, want := range []string{"cli", "cni-plugin", "ovn/port", "ovn/trace", "ovs/port", "ovn/ovsdb/dbconn", "ovn/ovsdb/dbops", "ovn/nbdb", "ovs/vswitchd"} {
		if !have[want] {
			t.Fatalf("go list in %s did not list %s (got %d packages)", root, want, len(pkgs))
		}
	}
	return root, pkgs
}

// pendingDeps are dependencies still being removed ("FROM depends on TO").
// Empty when the layering is complete; an entry may only leave this list.
var pendingDeps = map[string]bool{}

// TestDependencies: the import graph follows docs/architecture.md.
func TestDependencies(t *testing.T) {
	_, pkgs := load(t)
	seen := map[string]bool{}
	for _, v := range layers.CheckDeps(pkgs, layers.Rules) {
		dep, _, _ := strings.Cut(v, ":")
		seen[dep] = true
		if !pendingDeps[dep] {
			t.Error(v)
		}
	}
	for d := range pendingDeps {
		if !seen[d] {
			t.Logf("%s no longer holds: remove it from pendingDeps", d)
		}
	}
}

// TestRulesCatch: each rule fires on a package that breaks it and stays
// quiet on the allowed directions.
func TestRulesCatch(t *testing.T) {
	pkgs := []layers.Package{
		{Path: "cli", Deps: []string{"cni-plugin/plugin", "ovn/port", "ovs/port"}},
		{Path: "ovn/trace", Deps: []string{"ovs/flowtrace", "ovn/ovsdb/dbconn", "ovn/nbdb", "lab/sysbin"}},
		{Path: "ovn/port", Deps: []string{"lab/ovsdbtest"}},
		{Path: "ovs/port", Deps: []string{"ovn/port", "ovn/ovsdb/owner", "cni-plugin/plugin"}},
		{Path: "ovn/ovsdb/dbconn", Deps: []string{"ovn/nbdb", "ovn/ovsdb/owner", "ovn/port"}},
		{Path: "ovn/nbdb", Deps: []string{"ovn/ovsdb/owner"}},
	}
	got := layers.CheckDeps(pkgs, layers.Rules)
	want := []string{
		"cli depends on cni-plugin/plugin",
		"ovn/trace depends on ovs/flowtrace",
		"ovn/port depends on lab/ovsdbtest",
		"ovs/port depends on cni-plugin/plugin",
		"ovn/ovsdb/dbconn depends on ovn/port",
		"ovn/nbdb depends on ovn/ovsdb/owner",
	}
	if len(got) != len(want) {
		t.Errorf("CheckDeps found %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w+":")
		}
		if !found {
			t.Errorf("CheckDeps missed %q", w)
		}
	}
}

// pending lists files that still name tables as strings or index results
// by position while their packages move to typed access. Empty when the
// conversion is complete; a file may only leave this list.
var pending = map[string]bool{}

// TestTypedAccessOnly: outside the OVSDB layer (ovn/ovsdb/...) and the
// generated models, no string literal is an OVSDB table name and no OVSDB
// result is indexed by position (res[i].Rows, r.Rows[i]).
func TestTypedAccessOnly(t *testing.T) {
	root, pkgs := load(t)
	found, err := layers.Scan(root, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string][]string{}
	for _, f := range found {
		if !pending[f.File] {
			t.Error(f)
		}
		per[f.File] = append(per[f.File], f.What)
	}
	var stale []string
	for f := range pending {
		if len(per[f]) == 0 {
			stale = append(stale, f)
		}
	}
	sort.Strings(stale)
	for _, f := range stale {
		t.Logf("%s is clean now: remove it from pending", f)
	}
}

// TestScanFile: the scanner finds each kind of fact and nothing else.
func TestScanFile(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "fmt"

func f(res []struct{ Rows []int }, r struct{ Rows []int }) {
	_ = res[0].Rows
	_ = r.Rows[1]
	_ = res[1].Rows[0]
	fmt.Println(Select("Logical_Switch", nil, "_uuid"), "Logical_Switch_Port: not a table", "logical_switch")
	_ = Operation{Table: "Port_Binding", Op: "select"}
	run("ovn-nbctl", "list", "Logical_Switch")
	nbctl("get", "Logical_Switch", "web", "ports")
	_ = strings.Contains(msg, "Logical_Switch")
	row(w, "NAME", "VIP", "Port_Binding")
	row(w, "NAME", "VIP", "DNS")
	const t = "Port_Binding"
	_ = Options{What: "Port_Binding"}
	for range r.Rows {
	}
}
`
	file := filepath.Join(dir, "x.go")
	if err := writeFile(file, src); err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{"Logical_Switch": true, "Logical_Switch_Port": true, "Port_Binding": true, "DNS": true}
	got, err := layers.ScanFile(dir, file, tables)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	want := []string{
		"x.go:6: positional result indexing res[0].Rows",
		"x.go:7: positional result indexing r.Rows[1]",
		"x.go:8: positional result indexing res[1].Rows",
		`x.go:9: table name as a string literal "Logical_Switch"`,
		`x.go:10: table name as a string literal "Port_Binding"`,
		`x.go:14: table name as a string literal "Port_Binding"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ScanFile found:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestTableNames: the table list comes from the generated models.
func TestTableNames(t *testing.T) {
	_, pkgs := load(t)
	names, err := layers.TableNames(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Logical_Switch", "Logical_Switch_Port", "ACL", "Port_Group", "Port_Binding", "Chassis", "Encap", "Open_vSwitch", "Bridge", "Interface", "Port"} {
		if !names[n] {
			t.Errorf("table %s not among the models' tables (%d)", n, len(names))
		}
	}
}

func writeFile(name, s string) error { return os.WriteFile(name, []byte(s), 0o644) }

// TestModelsMarkedGenerated: every file of the generated models carries
// Go's one-line `// Code generated ... DO NOT EDIT.` header (make generate
// writes it), so tools and reviewers treat them as generated.
func TestModelsMarkedGenerated(t *testing.T) {
	_, pkgs := load(t)
	n := 0
	for _, p := range pkgs {
		if !slices.Contains(layers.Models, p.Path) {
			continue
		}
		for _, file := range p.Files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if !ast.IsGenerated(f) {
				t.Errorf("%s: no `// Code generated ... DO NOT EDIT.` line (make generate)", file)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no files in %v", layers.Models)
	}
}
