package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

const defaultTimeout = 10 * time.Second

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitCode is an outcome, not an error: the command has printed its result
// and the process exits with this code, printing nothing more (trace's
// exitDropped).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Exit codes beyond 0 (ok), 1 (error) and 2 (usage).
const (
	// exitDropped: `trace` printed its verdict and it is DROPPED.
	exitDropped exitCode = 3
)

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...interface{}) error {
	return usageError{fmt.Errorf(format, args...)}
}

// needArgs checks the count of positional arguments.
func needArgs(c *cli.Context, n int, names string) error {
	if c.NArg() != n {
		return usagef("%s: want %s, got %d argument(s) (see ovlmgr %s --help)", commandPath(c), names, c.NArg(), commandPath(c))
	}
	return nil
}

// needFlags returns a usage error naming the first empty one of names.
func needFlags(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.String(n) == "" {
			return usagef("%s: --%s is required (see ovlmgr %s --help)", commandPath(c), n, commandPath(c))
		}
	}
	return nil
}

// needArgsFlags is needArgs(n, usage) then needFlags(flags...). Flags given
// after the arguments are already in place: run reorders them
// (interspersed).
func needArgsFlags(c *cli.Context, n int, usage string, flags ...string) error {
	if err := needArgs(c, n, usage); err != nil {
		return err
	}
	return needFlags(c, flags...)
}

// commandPath is the command's full name, e.g. "net create" (urfave/cli v2's
// FullName gives only the last word).
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command == nil || ctx.Command.Name == "" || ctx.Command.Name == c.App.Name {
			continue
		}
		if len(names) > 0 && names[0] == ctx.Command.Name {
			continue
		}
		names = append([]string{ctx.Command.Name}, names...)
	}
	return strings.Join(names, " ")
}

// callContext bounds a command's database work by the global --timeout.
func callContext(c *cli.Context) (context.Context, context.CancelFunc) {
	d := c.Duration("timeout")
	if d <= 0 {
		d = defaultTimeout
	}
	return context.WithTimeout(c.Context, d)
}

// outputFlag is the -o flag of list/show commands (a new one per command:
// urfave/cli writes into the flags it applies).
func outputFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table, json or yaml"}
}

// printOut writes v as JSON or YAML, or calls table with an aligned tab
// writer for the table format.
func printOut(c *cli.Context, v interface{}, table func(w io.Writer)) error {
	w := c.App.Writer
	switch f := c.String("output"); f {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		defer enc.Close()
		return enc.Encode(v)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	default:
		return usagef("--output %q: allowed are table, json, yaml", f)
	}
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

// labelsFlag parses repeated --label k=v values.
func parseLabels(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// interspersed moves the flags of the command being run before its
// positional arguments, so `ovlmgr net create web --subnet X` works:
// urfave/cli v2 stops parsing flags at the first positional argument.
// Everything from a "--" on is left as it is (e.g. lab exec NODE -- CMD).
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, cmds := app.Flags, app.Commands
	for {
		i := 0
		for i < len(rest) && strings.HasPrefix(rest[i], "-") && rest[i] != "--" {
			out = append(out, rest[i])
			if takesValue(flags, rest[i]) && i+1 < len(rest) {
				out = append(out, rest[i+1])
				i++
			}
			i++
		}
		rest = rest[i:]
		if len(rest) == 0 {
			return out
		}
		var cmd *cli.Command
		for _, c := range cmds {
			if c.HasName(rest[0]) {
				cmd = c
			}
		}
		if cmd == nil {
			return append(out, rest...)
		}
		out = append(out, rest[0])
		rest = rest[1:]
		if len(cmd.Subcommands) == 0 {
			if cmd.SkipFlagParsing {
				return append(out, rest...)
			}
			var fl, pos []string
			for i := 0; i < len(rest); i++ {
				a := rest[i]
				if a == "--" {
					pos = append(pos, rest[i:]...)
					break
				}
				if len(a) > 1 && strings.HasPrefix(a, "-") {
					fl = append(fl, a)
					if takesValue(cmd.Flags, a) && i+1 < len(rest) {
						fl = append(fl, rest[i+1])
						i++
					}
					continue
				}
				pos = append(pos, a)
			}
			return append(append(out, fl...), pos...)
		}
		flags, cmds = cmd.Flags, cmd.Subcommands
	}
}

// takesValue reports whether arg ("-x", "--name", not "--name=v") is one of
// flags that consumes the next argument as its value.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// netNB connects to the Northbound database given by --nb (or its default),
// within --timeout.
func netNB(c *cli.Context) (client.Client, error) {
	ctx, cancel := callContext(c)
	defer cancel()
	return dbconn.ConnectNB(ctx, dbconn.ResolveNB(c.String("nb")))
}

// dash is s, or "-" when s is empty (a table cell).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// onNB connects to the Northbound database (--nb), runs f with a context
// bounded by --timeout, and closes the connection.
func onNB(c *cli.Context, f func(ctx context.Context, nb client.Client) error) error {
	nb, err := netNB(c)
	if err != nil {
		return err
	}
	defer nb.Close()
	ctx, cancel := callContext(c)
	defer cancel()
	return f(ctx, nb)
}

// textOutput is the -o value of a textOutputFlag command: text or json.
func textOutput(c *cli.Context) (string, error) {
	format := c.String("output")
	if format != "text" && format != "json" {
		return "", usagef("--output %q: allowed are text, json", format)
	}
	return format, nil
}

// clusterDBs are the NB and SB connections of a command that reads both:
// those of --nb and --sb, or those of the lab named by --lab.
type clusterDBs struct {
	lab    *lab.Lab // nil without --lab
	nb, sb client.Client
	sbEP   string
}

// connectClusterDBs connects to NB and SB (the --lab lab's when given);
// Close the result.
func connectClusterDBs(ctx context.Context, c *cli.Context) (*clusterDBs, error) {
	d := &clusterDBs{}
	nbEP, sbEP := dbconn.ResolveNB(c.String("nb")), dbconn.ResolveSB(c.String("sb"))
	if name := c.String("lab"); name != "" {
		l, err := lab.Load(name)
		if err != nil {
			return nil, err
		}
		d.lab = l
		nbEP, sbEP = l.NB, l.SB
	}
	d.sbEP = sbEP
	var err error
	if d.nb, err = dbconn.ConnectNB(ctx, nbEP); err != nil {
		return nil, err
	}
	if d.sb, err = dbconn.ConnectSB(ctx, sbEP); err != nil {
		d.nb.Close()
		return nil, err
	}
	return d, nil
}

// Close closes both connections.
func (d *clusterDBs) Close() {
	d.sb.Close()
	d.nb.Close()
}
