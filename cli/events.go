package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/events"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// eventsCommand is `ovlmgr events`: what happens in the overlay.
func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "show what happens: containers attached/detached, ports up/down, nodes joining/leaving, policy verdicts",
		Description: `Port, binding and node events come from NB and SB monitors (live only: the
databases keep no history). Policy verdicts come from the nodes' ovn-controller
logs (acl_log lines of ACLs with logging on: every deny and default-deny drop,
and allows created with --log): with --lab from the lab nodes' log files, on a
real deployment from each node's exporter (--agent, ` + "`ovlmgr exporter --node`" + `
serves /acl-log). Without --follow it prints the verdicts the logs hold and exits.

   ovlmgr events --lab ovl --follow
   ovlmgr events --follow --agent http://10.0.0.11:9477 --agent http://10.0.0.12:9477
   ovlmgr events --lab ovl --policy deny-db          # verdicts of one policy so far`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "net", Usage: "only events of this network"},
			&cli.StringFlag{Name: "policy", Usage: "only verdicts of this policy ((default-deny) for isolation drops)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing events as they happen (until interrupted)"},
			&cli.StringFlag{Name: "lab", Usage: "a local lab by name: its databases and its nodes' ovn-controller logs"},
			&cli.StringSliceFlag{Name: "agent", Usage: "a node exporter's URL (ovlmgr exporter --node) to read that node's ACL log from; repeat per node"},
			textOutputFlag(),
		},
		Action: runEvents,
	}
}

func runEvents(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("events takes no arguments (got %q)", c.Args().First())
	}
	format, err := textOutput(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbEP, sbEP := dbconn.ResolveNB(c.String("nb")), dbconn.ResolveSB(c.String("sb"))
	var sources []events.LogSource
	if name := c.String("lab"); name != "" {
		l, err := lab.Load(name)
		if err != nil {
			return err
		}
		nbEP, sbEP = l.NB, l.SB
		for _, n := range l.Nodes {
			sources = append(sources, events.FileSource{Node: n.Name, Path: filepath.Join(n.Dir, "ovn-controller.log")})
		}
	}
	for _, u := range c.StringSlice("agent") {
		sources = append(sources, events.HTTPSource{URL: u})
	}
	filter := events.Filter{Network: c.String("net"), Policy: c.String("policy")}
	print := func(e events.Event) {
		if format == "json" {
			b, _ := json.Marshal(e)
			fmt.Fprintln(c.App.Writer, string(b))
			return
		}
		fmt.Fprintln(c.App.Writer, e.String())
	}
	cctx, cancel := dbconn.WithDefaultTimeout(ctx)
	nb, err := dbconn.ConnectNB(cctx, nbEP)
	cancel()
	if err != nil {
		return err
	}
	defer nb.Close()
	if !c.Bool("follow") {
		evs, err := events.History(ctx, nb, sources, filter)
		for _, e := range evs {
			print(e)
		}
		return err
	}
	cctx, cancel = dbconn.WithDefaultTimeout(ctx)
	sb, err := dbconn.ConnectSB(cctx, sbEP)
	cancel()
	if err != nil {
		return err
	}
	defer sb.Close()
	ready := make(chan struct{})
	go func() {
		select {
		case <-ready:
			fmt.Fprintln(c.App.ErrWriter, "ovlmgr events: following (interrupt to stop)")
		case <-ctx.Done():
		}
	}()
	return events.Follow(ctx, events.Options{NB: nb, SB: sb, Sources: sources, Filter: filter}, print, ready)
}
