package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

const defaultTimeout = 10 * time.Second

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...interface{}) error {
	return usageError{fmt.Errorf(format, args...)}
}

// needArgs checks the count of positional arguments.
func needArgs(c *cli.Context, n int, names string) error {
	if c.NArg() != n {
		return usagef("%s: want %s, got %d argument(s) (see ovlmgr %s --help)", c.Command.FullName(), names, c.NArg(), c.Command.FullName())
	}
	return nil
}

// callContext bounds a command's database work by the global --timeout.
func callContext(c *cli.Context) (context.Context, context.CancelFunc) {
	d := c.Duration("timeout")
	if d <= 0 {
		d = defaultTimeout
	}
	return context.WithTimeout(c.Context, d)
}

// outputFlag is the -o flag shared by list/show commands.
var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table, json or yaml"}

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
