// Package layers states ovlmgr's package layering (docs/architecture.md) as
// data and checks the tree against it: the import facts from
// `go list -deps -json` (who depends on whom) and two source facts read with
// go/ast (OVSDB table names as string literals, and positional indexing of
// OVSDB results, belong to the OVSDB layer only). Its test runs the checks on
// this module in `make unit` and `make test`.
package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Module is this module's path.
const Module = "github.com/ovlmgr/ovlmgr"

// Package is one package of the module as `go list -deps -json` describes it
// (paths relative to Module).
type Package struct {
	Path  string   // e.g. "ovn/port"
	Dir   string   // absolute directory
	Deps  []string // module packages it depends on, directly or not (relative)
	Files []string // non-test Go files, absolute
	Tests []string // _test.go files, absolute
}

// Load runs `go list -deps -json ./...` in the module at root and returns the
// module's packages, sorted by path.
func Load(root string) ([]Package, error) {
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps -json ./... in %s: %w: %s", root, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Dir           string
			Deps, GoFiles, CgoFiles   []string
			TestGoFiles, XTestGoFiles []string
			Standard                  bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %w", err)
		}
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		q := Package{Path: rel, Dir: p.Dir}
		for _, d := range p.Deps {
			if r, ok := relative(d); ok {
				q.Deps = append(q.Deps, r)
			}
		}
		for _, f := range append(p.GoFiles, p.CgoFiles...) {
			q.Files = append(q.Files, filepath.Join(p.Dir, f))
		}
		for _, f := range append(p.TestGoFiles, p.XTestGoFiles...) {
			q.Tests = append(q.Tests, filepath.Join(p.Dir, f))
		}
		pkgs = append(pkgs, q)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Path < pkgs[j].Path })
	return pkgs, nil
}

func relative(importPath string) (string, bool) {
	if importPath == Module {
		return ".", true
	}
	r, ok := strings.CutPrefix(importPath, Module+"/")
	return r, ok
}

// Models are the generated libovsdb model packages (make generate).
var Models = []string{"ovn/nbdb", "ovn/sbdb", "ovn/icnbdb", "ovn/icsbdb", "ovs/vswitchd"}

// OVSDBLayer is the prefix of the OVSDB layer's packages: connection,
// transactions, typed selects, monitors, owner ids.
const OVSDBLayer = "ovn/ovsdb/"

// Leaves are module packages with no module imports that any layer may use.
var Leaves = []string{"lab/sysbin"}

// Rule forbids packages matching From to depend on packages matching To,
// except those matching Except. A pattern "x/..." matches x and everything
// under it; any other pattern matches one package.
type Rule struct {
	From, To []string
	Except   []string
	Why      string
}

// Rules are the dependency rules of docs/architecture.md.
var Rules = []Rule{
	{From: []string{"cli"}, To: []string{"cni-plugin/..."},
		Why: "binaries are thin: the CLI calls libraries, never the CNI plugin"},
	{From: []string{"ovn/...", "ovs/..."}, To: []string{"cli/...", "cni-plugin/...", "integration/...", "vagrant/...", "lab/..."},
		Except: Leaves,
		Why:    "feature packages and the OVSDB layer do not depend on binaries, tests or the lab"},
	{From: []string{"ovn/..."}, To: []string{"ovs/..."},
		Why: "one direction between the halves: node packages (ovs/) may use ovn/ (NB features, the OVSDB layer ovn/ovsdb, the NB/SB models), ovn/ never uses ovs/"},
	{From: []string{OVSDBLayer + "..."}, To: []string{"..."},
		Except: append([]string{OVSDBLayer + "..."}, Models...),
		Why:    "the OVSDB layer depends only on libovsdb and the generated models"},
	{From: Models, To: []string{"..."},
		Why: "generated models depend on nothing of ours"},
}

func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == p || strings.HasPrefix(path, p+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if match(p, path) {
			return true
		}
	}
	return false
}

// CheckDeps returns one line per forbidden dependency of pkgs under rules:
// "FROM depends on TO: WHY".
func CheckDeps(pkgs []Package, rules []Rule) []string {
	var bad []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !matchAny(r.From, p.Path) {
				continue
			}
			for _, d := range p.Deps {
				if d != p.Path && matchAny(r.To, d) && !matchAny(r.Except, d) {
					bad = append(bad, fmt.Sprintf("%s depends on %s: %s", p.Path, d, r.Why))
				}
			}
		}
	}
	return bad
}

// InLayer reports whether files of package path may name tables and index
// results: the OVSDB layer and the generated models.
func InLayer(path string) bool {
	return matchAny([]string{OVSDBLayer + "..."}, path) || matchAny(Models, path)
}

// TableNames returns the OVSDB table names the generated models declare
// (their `const XTable = "Name"`), read from the model packages' files.
func TableNames(pkgs []Package) (map[string]bool, error) {
	names := map[string]bool{}
	for _, p := range pkgs {
		if !matchAny(Models, p.Path) {
			continue
		}
		for _, f := range p.Files {
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			for _, decl := range file.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasSuffix(n.Name, "Table") || i >= len(vs.Values) {
							continue
						}
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if v, err := strconv.Unquote(lit.Value); err == nil {
								names[v] = true
							}
						}
					}
				}
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no XTable constants in %v", Models)
	}
	return names, nil
}

// Finding is one source fact outside the OVSDB layer.
type Finding struct {
	File string // relative to the module root
	Line int
	What string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.What) }

// Tools are OVS/OVN command-line programs: a call that runs one (tests
// inspect and set up databases with them) takes table names in the tool's
// own syntax, and so does a helper named after one (nbctl("get", ...)).
var Tools = []string{"ovn-nbctl", "ovn-sbctl", "ovs-vsctl", "ovsdb-client", "ovn-ic-nbctl", "ovn-ic-sbctl", "vtep-ctl"}

// ScanFile reports, in one Go file, a table name used as a string literal
// where OVSDB is accessed (a call argument, such as Select("ACL", ...) or
// DecodeRows(c, "ACL", ...), or an ovsdb.Operation{Table: "ACL"}; tables are
// named by the models' constants and typed helpers) and positional indexing
// of OVSDB results: x[i].Rows and x.Rows[i]. A call that runs one of Tools,
// a call into strings, fmt, errors, regexp or bytes, and a table header (three or more upper-case string literals and nothing
// else, such as row(w, "NAME", "VIP", "DNS")) are not table access.
func ScanFile(root, file string, tables map[string]bool) ([]Finding, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, file)
	if err != nil {
		rel = file
	}
	var out []Finding
	add := func(n ast.Node, what string) {
		out = append(out, Finding{File: filepath.ToSlash(rel), Line: fset.Position(n.Pos()).Line, What: what})
	}
	table := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(lit.Value)
		return lit.Value, err == nil && tables[v]
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if runsTool(n) || header(n) {
				return true
			}
			for _, a := range n.Args {
				if v, ok := table(a); ok {
					add(a, "table name as a string literal "+v)
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Table" {
				if v, ok := table(n.Value); ok {
					add(n.Value, "table name as a string literal "+v)
				}
			}
		case *ast.SelectorExpr:
			if _, ok := n.X.(*ast.IndexExpr); ok && n.Sel.Name == "Rows" {
				add(n, "positional result indexing "+text(fset, src, n))
			}
		case *ast.IndexExpr:
			if s, ok := n.X.(*ast.SelectorExpr); ok && s.Sel.Name == "Rows" {
				if _, inner := s.X.(*ast.IndexExpr); !inner {
					add(n, "positional result indexing "+text(fset, src, n))
				}
			}
		}
		return true
	})
	return out, nil
}

func literal(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

// textPackages are standard packages whose functions take text, not tables
// (strings.Contains(err.Error(), "Open_vSwitch") checks a message).
var textPackages = map[string]bool{"strings": true, "fmt": true, "errors": true, "regexp": true, "bytes": true}

func runsTool(c *ast.CallExpr) bool {
	var callee string
	switch f := c.Fun.(type) {
	case *ast.Ident:
		callee = f.Name
	case *ast.SelectorExpr:
		callee = f.Sel.Name
		if x, ok := f.X.(*ast.Ident); ok && textPackages[x.Name] {
			return true
		}
	}
	// helpers named after a tool, such as nbctl(args...)
	for _, t := range []string{"nbctl", "sbctl", "vsctl"} {
		if strings.Contains(strings.ToLower(callee), t) {
			return true
		}
	}
	for _, a := range c.Args {
		if v, ok := literal(a); ok {
			for _, t := range Tools {
				if v == t {
					return true
				}
			}
		}
	}
	return false
}

func header(c *ast.CallExpr) bool {
	n := 0
	for _, a := range c.Args {
		v, ok := literal(a)
		if !ok {
			continue
		}
		if v == "" || strings.ToUpper(v) != v {
			return false
		}
		n++
	}
	return n >= 3
}

// text returns the source text of n.
func text(fset *token.FileSet, src []byte, n ast.Node) string {
	a, b := fset.Position(n.Pos()).Offset, fset.Position(n.End()).Offset
	if a < 0 || b > len(src) || a > b {
		return ""
	}
	return string(src[a:b])
}

// Scan runs ScanFile over every Go file (tests included) of the packages
// outside the OVSDB layer and the models (and this package).
func Scan(root string, pkgs []Package) ([]Finding, error) {
	tables, err := TableNames(pkgs)
	if err != nil {
		return nil, err
	}
	var all []Finding
	for _, p := range pkgs {
		if InLayer(p.Path) || p.Path == "lab/layers" {
			continue // the layer itself, and this checker's own test sources
		}
		for _, file := range append(append([]string{}, p.Files...), p.Tests...) {
			fs, err := ScanFile(root, file, tables)
			if err != nil {
				return nil, err
			}
			all = append(all, fs...)
		}
	}
	return all, nil
}
