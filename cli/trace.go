package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/nodetrace"
)

// traceCommand is `ovlmgr trace FROM TO`: why does A (not) reach B.
func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "trace a packet from a container to a container or IP and explain the verdict",
		ArgsUsage: "FROM TO",
		Description: `FROM and TO are container names, container ID prefixes, port names or IPs.
Runs OVN's logical trace (ovn-trace against SB) for a first packet and prints
delivered/dropped, the hops, and the reason as an ovlmgr object (a policy, port
security, a missing route, an unbound destination).

   ovlmgr trace web-1 db-1 --proto tcp --port 5432
   ovlmgr trace web-1 198.19.2.10 --src-ip 198.19.1.9     # forged source
   ovlmgr trace web-1 db-1 --on-node                      # plus ofproto/trace on this node
   ovlmgr trace web-1 198.18.100.1 --proto tcp --port 443  # out through the router's gateway (SNAT or floating IP)
   ovlmgr trace external 198.18.100.10 --proto tcp --port 8080   # from outside: a published port or floating IP
   ovlmgr trace --lab ovl web-1 db-1 --on-node            # in a local lab: on the source's lab node

Exit status: 0 DELIVERED, 3 DROPPED, 1 the trace could not run, 2 bad usage.
With --exit-code: 0 DELIVERED, 1 DROPPED, 2 the trace could not run or bad usage.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "proto", Value: "icmp", Usage: "icmp, tcp or udp"},
			&cli.IntFlag{Name: "port", Usage: "destination port (tcp/udp; default 80)"},
			&cli.StringFlag{Name: "src-ip", Usage: "forge the source IP (see what port security does)"},
			&cli.StringFlag{Name: "src-mac", Usage: "forge the source MAC"},
			&cli.BoolFlag{Name: "ipv6", Aliases: []string{"6"}, Usage: "trace an IPv6 packet between the ends' IPv6 addresses (implied by an IPv6 TO or --src-ip, and on IPv6-only networks)"},
			&cli.BoolFlag{Name: "detail", Usage: "add ovn-trace's raw output"},
			&cli.BoolFlag{Name: "on-node", Usage: "also trace through the source node's OVS (ofproto/trace; run it on that node, or give --lab)"},
			&cli.StringFlag{Name: "lab", Usage: "trace in a local lab by name (its databases; --on-node picks the source's lab node)"},
			&cli.BoolFlag{Name: "exit-code", Usage: "exit 0 DELIVERED, 1 DROPPED, 2 error (for scripts)"},
			textOutputFlag(),
		},
		Action: func(c *cli.Context) error {
			err := runTrace(c)
			if c.Bool("exit-code") {
				return scriptExit(err)
			}
			return err
		},
	}
}

// scriptExit maps trace's outcome to --exit-code's statuses: DROPPED 1,
// any error 2 (printed as usual), DELIVERED 0.
func scriptExit(err error) error {
	var ec exitCode
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ec) && ec == exitDropped:
		return exitCode(1)
	}
	return statusError{err: err, status: 2}
}

// statusError is an error printed as usual that exits with status.
type statusError struct {
	err    error
	status int
}

func (e statusError) Error() string   { return e.err.Error() }
func (e statusError) Unwrap() error   { return e.err }
func (e statusError) ExitStatus() int { return e.status }

// runTrace is trace's action: resolve, trace, print, and the verdict's
// exit code (exitDropped).
func runTrace(c *cli.Context) error {
	if err := needArgs(c, 2, "FROM TO"); err != nil {
		return err
	}
	format, err := textOutput(c)
	if err != nil {
		return err
	}
	req := trace.Request{From: c.Args().Get(0), To: c.Args().Get(1), Proto: c.String("proto"), Port: c.Int("port"), SrcMAC: c.String("src-mac"), IPv6: c.Bool("ipv6")}
	if s := c.String("src-ip"); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return usagef("--src-ip %q: not an IP address", s)
		}
		req.SrcIP = ip
	}
	if err := req.Validate(); err != nil {
		return usagef("%w", err)
	}
	ctx, cancel := callContext(c)
	defer cancel()
	dbs, err := connectClusterDBs(ctx, c)
	if err != nil {
		return err
	}
	defer dbs.Close()
	l, nb, sb, sbEP := dbs.lab, dbs.nb, dbs.sb, dbs.sbEP
	res, err := trace.Trace(ctx, nb, sb, sbEP, req)
	if err != nil {
		return err
	}
	var phys *nodetrace.Physical
	if c.Bool("on-node") {
		var a nodetrace.NodeAccess
		if l != nil {
			n, err := l.Node(res.From.BoundOn)
			if err != nil {
				return fmt.Errorf("--on-node: source %s: %w", res.From.Label(), err)
			}
			a = nodetrace.NodeAccess{OVS: n.OVS, RunDir: n.Dir}
		}
		if phys, err = nodetrace.OnNode(ctx, sb, res, a); err != nil {
			return err
		}
	}
	if format == "json" {
		out := struct {
			*trace.Result
			Physical *nodetrace.Physical `json:"physical,omitempty"`
			Raw      string              `json:"raw,omitempty"`
		}{Result: res, Physical: phys}
		if c.Bool("detail") {
			out.Raw = res.Raw()
		} else {
			out.Logical = nil
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return verdictExit(res)
	}
	writeTrace(c.App.Writer, res, phys, c.Bool("detail"))
	return verdictExit(res)
}

// verdictExit makes a DROPPED verdict exit with code 3, so scripts can
// branch on it; DELIVERED exits 0.
func verdictExit(r *trace.Result) error {
	if r.Verdict == trace.Dropped {
		return exitDropped
	}
	return nil
}

func endpointText(e *trace.Endpoint) string {
	if e.Port == "" && !e.IP.IsValid() {
		return e.Input // "external"
	}
	var attrs []string
	attrs = append(attrs, e.IP.String())
	if e.Network != "" {
		attrs = append(attrs, "network "+e.Network)
	}
	if e.BoundOn != "" {
		attrs = append(attrs, "node "+e.BoundOn)
	} else if e.Port != "" {
		attrs = append(attrs, "not bound")
	}
	if e.Port == "" {
		return e.IP.String()
	}
	return fmt.Sprintf("%s (%s)", e.Label(), strings.Join(attrs, ", "))
}

func writeTrace(w io.Writer, r *trace.Result, p *nodetrace.Physical, detail bool) {
	what := r.Proto
	if r.Port != 0 {
		what = fmt.Sprintf("%s/%d", r.Proto, r.Port)
	}
	fmt.Fprintf(w, "%s -> %s, %s\n", endpointText(r.From), endpointText(r.To), what)
	fmt.Fprintf(w, "  path: %s\n", strings.Join(r.Hops, " -> "))
	if r.External != "" {
		fmt.Fprintf(w, "  external: %s\n", r.External)
	}
	if r.Verdict == trace.Delivered {
		fmt.Fprintf(w, "  DELIVERED")
		if r.Reason != "" {
			fmt.Fprintf(w, ": %s", r.Reason)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "  DROPPED: %s\n", r.Reason)
	}
	if p != nil {
		fmt.Fprintf(w, "  on node %s: %s\n", p.Node, p.Summary)
	}
	if detail {
		fmt.Fprintf(w, "\nmicroflow: %s\n\n%s\n", r.Microflow, strings.TrimRight(r.Raw(), "\n"))
		if p != nil {
			fmt.Fprintf(w, "\n%s\n", strings.TrimRight(p.Raw, "\n"))
		}
	}
}
