package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/events"
	"github.com/ovlmgr/ovlmgr/ovn/metrics"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
	"github.com/ovlmgr/ovlmgr/ovs/nodemetrics"
)

// exporterCommand is `ovlmgr exporter`: Prometheus metrics over HTTP.
func exporterCommand() *cli.Command {
	return &cli.Command{
		Name:  "exporter",
		Usage: "serve Prometheus metrics: the cluster's (once per deployment) or, with --node, this node's",
		Description: `Without --node: the cluster metrics, read from NB and SB at each scrape
(networks, ports per network and node, free addresses, chassis up, NB/SB
reachability and RAFT role, northd lag). Run one per deployment.

With --node: this node's metrics (CNI ADD/DEL latency and errors by code, from
the plugin's counters file; ACL log hits per policy and verdict, from
ovn-controller's log; tunnels up) and the node's ACL log for ` + "`ovlmgr events --agent`" + `
at /acl-log. Run one on every node.

   ovlmgr exporter --listen :9476
   ovlmgr exporter --node --listen :9477
   ovlmgr exporter --lab ovl --listen 127.0.0.1:9476            # a local lab's cluster metrics
   ovlmgr exporter --lab ovl --lab-node n1 --listen 127.0.0.1:9477   # a lab node's metrics`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":9476", Usage: "address to serve /metrics on (host:port; port 0 picks one)"},
			&cli.BoolFlag{Name: "node", Usage: "export this node's metrics instead of the cluster's"},
			&cli.StringFlag{Name: "node-name", Usage: "the node's name in labels (default: its system-id)"},
			&cli.StringFlag{Name: "acl-log", Usage: "ovn-controller's log file (default $OVN_LOGDIR/ovn-controller.log, else /var/log/ovn/ovn-controller.log)"},
			&cli.StringFlag{Name: "cni-stats", Usage: "the plugin's counters file (default $OVLMGR_RUNDIR/cni-stats.v1, else /run/ovlmgr/cni-stats.v1)"},
			&cli.StringFlag{Name: "lab", Usage: "a local lab by name: its databases"},
			&cli.StringFlag{Name: "lab-node", Usage: "with --lab: export this lab node's metrics (implies --node)"},
		},
		Action: runExporter,
	}
}

func runExporter(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("exporter takes no arguments (got %q)", c.Args().First())
	}
	nodeMode := c.Bool("node") || c.String("lab-node") != ""
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbEP, sbEP := dbconn.ResolveNB(c.String("nb")), dbconn.ResolveSB(c.String("sb"))
	o := nodemetrics.Options{Node: c.String("node-name"), ACLLog: c.String("acl-log"), CNIStats: c.String("cni-stats")}
	if name := c.String("lab"); name != "" {
		l, err := lab.Load(name)
		if err != nil {
			return err
		}
		nbEP, sbEP = l.NB, l.SB
		if nodeMode {
			n, err := l.Node(c.String("lab-node"))
			if err != nil {
				return usagef("--lab %s --lab-node NODE: %v", name, err)
			}
			o = labNode(o, n)
		}
	}
	mux := http.NewServeMux()
	if nodeMode {
		nbFlag := ""
		if c.IsSet("nb") || c.String("lab") != "" {
			nbFlag = nbEP
		}
		col, nb, err := nodemetrics.ForThisNode(ctx, o, nbFlag)
		if err != nil {
			return err
		}
		defer col.Close()
		if nb != nil {
			defer nb.Close()
		}
		mux.Handle("/metrics", metrics.Handler(col))
		mux.Handle("/acl-log", events.ACLLogHandler(events.FileSource{Node: col.Node(), Path: col.ACLLog()}))
	} else {
		col := metrics.New(metrics.Options{NB: nbEP, SB: sbEP})
		defer col.Close()
		mux.Handle("/metrics", metrics.Handler(col))
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("exporter: --listen %s: %w", c.String("listen"), err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(c.App.ErrWriter, "ovlmgr exporter: serving http://%s/metrics\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("exporter: %w", err)
	}
	return nil
}

// labNode points a node exporter at a lab node's files and databases.
func labNode(o nodemetrics.Options, n *lab.Node) nodemetrics.Options {
	if o.Node == "" {
		o.Node = n.SystemID
	}
	if o.ACLLog == "" {
		o.ACLLog = n.Dir + "/ovn-controller.log"
	}
	if o.CNIStats == "" {
		o.CNIStats = n.Dir + "/" + cnistats.FileName
	}
	o.OVS = n.OVS
	return o
}
