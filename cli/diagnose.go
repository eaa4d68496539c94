package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/nodediag"
)

// textOutputFlag is -o for commands whose default output is prose (a new
// one per command, as outputFlag).
func textOutputFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "output format: text or json"}
}

// diagnoseCommand is `ovlmgr diagnose`: a checklist of the deployment.
func diagnoseCommand() *cli.Command {
	return &cli.Command{
		Name:  "diagnose",
		Usage: "check the deployment: databases, ovn-northd, chassis, ports, and a node's tunnels, MTU and offloads",
		Description: `Prints a checklist, one line per check: ok, warn or fail, with a one-line fix.
Exits 1 when a check fails.

   ovlmgr diagnose                      # NB, SB, ovn-northd, chassis, ports
   ovlmgr diagnose --sync               # also prove northd and every ovn-controller answer
   ovlmgr diagnose --node n1            # plus this node's checks (run it on n1)
   ovlmgr diagnose --lab ovl            # every node of a local lab
   ovlmgr lab exec n1 -- ovlmgr diagnose --node n1
   ovlmgr diagnose mtu web-1 db-1       # largest packet that really crosses`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "also run the node checks of this node (this machine; with --lab, that lab node)"},
			&cli.StringFlag{Name: "lab", Usage: "diagnose a local lab by name: its databases and (without --node) all its nodes"},
			&cli.BoolFlag{Name: "sync", Usage: "bump NB_Global nb_cfg and wait for ovn-northd and every chassis (writes to NB_Global)"},
			&cli.DurationFlag{Name: "sync-timeout", Value: 5 * time.Second, Usage: "how long --sync waits for ovn-northd and the chassis"},
			textOutputFlag(),
		},
		Subcommands: []*cli.Command{diagnoseMTUCommand()},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, "no arguments"); err != nil {
				return err
			}
			format, err := textOutput(c)
			if err != nil {
				return err
			}
			ctx, cancel := callContext(c)
			defer cancel()
			o := diagnose.Options{NB: dbconn.ResolveNB(c.String("nb")), SB: dbconn.ResolveSB(c.String("sb")), Sync: c.Bool("sync"), SyncTimeout: c.Duration("sync-timeout")}
			var targets []nodediag.Target
			if name := c.String("lab"); name != "" {
				l, err := lab.Load(name)
				if err != nil {
					return err
				}
				o.NB, o.SB = l.NB, l.SB
				o.NBCtl, o.SBCtl = l.ControlSockets("nb"), l.ControlSockets("sb")
				for _, n := range l.Nodes {
					if c.String("node") == "" || c.String("node") == n.Name {
						targets = append(targets, nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath, NB: l.NB})
					}
				}
				if len(targets) == 0 {
					_, err := l.Node(c.String("node"))
					return err
				}
			} else if c.String("node") != "" {
				targets = append(targets, nodediag.Target{NB: o.NB})
			}
			r, st := diagnose.Cluster(ctx, o)
			for _, t := range targets {
				cs := nodediag.Check(ctx, t, st)
				if n := c.String("node"); n != "" && c.String("lab") == "" && len(cs) > 0 && cs[0].Area != "node "+n {
					r.Add(diagnose.Warnf(cs[0].Area, "node name", "run diagnose --node on that node (or give --lab)",
						"--node %s, but this machine is %s: the checks below are of this machine", n, strings.TrimPrefix(cs[0].Area, "node ")))
				}
				r.Add(cs...)
			}
			if format == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				r.WriteText(c.App.Writer)
			}
			if fails := r.Failed(diagnose.Fail); len(fails) > 0 {
				return fmt.Errorf("diagnose: %d check(s) failed, first: %s: %s", len(fails), fails[0].Name, fails[0].Detail)
			}
			return nil
		},
	}
}

// diagnoseMTUCommand is `ovlmgr diagnose mtu FROM TO`.
func diagnoseMTUCommand() *cli.Command {
	return &cli.Command{
		Name:      "mtu",
		Usage:     "find the largest packet that really crosses from one container to another (DF probes) and compare it with the MTU",
		ArgsUsage: "FROM TO",
		Description: `Sends DF-marked ICMP echo requests from inside FROM (sized by binary search up
to its interface MTU) and reports the largest one answered. Run it on FROM's node,
or give --lab to pick that lab node.

   ovlmgr diagnose mtu web-1 db-1
   ovlmgr diagnose mtu --lab ovl web-1 198.19.2.10`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "lab", Usage: "the local lab FROM's node is in"},
			textOutputFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "FROM TO"); err != nil {
				return err
			}
			format, err := textOutput(c)
			if err != nil {
				return err
			}
			ctx, cancel := callContext(c)
			defer cancel()
			var t nodediag.Target
			dbs, err := connectClusterDBs(ctx, c)
			if err != nil {
				return err
			}
			defer dbs.Close()
			l, nb, sb := dbs.lab, dbs.nb, dbs.sb
			from, to := c.Args().Get(0), c.Args().Get(1)
			if l != nil {
				f, _, err := trace.Resolve(ctx, nb, sb, from, to)
				if err != nil {
					return err
				}
				n, err := l.Node(f.BoundOn)
				if err != nil {
					return fmt.Errorf("diagnose mtu: %s: %w", f.Label(), err)
				}
				t = nodediag.Target{OVS: n.OVS, RunDir: n.Dir, OVNRunDir: n.Dir, NetNS: n.NetNSPath}
			}
			rep, err := nodediag.PathMTU(ctx, t, nb, sb, from, to)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				r := &diagnose.Report{}
				r.Add(rep.Check)
				r.WriteText(c.App.Writer)
			}
			if rep.Check.Status == diagnose.Fail {
				return fmt.Errorf("diagnose mtu: %s", rep.Check.Detail)
			}
			return nil
		},
	}
}
