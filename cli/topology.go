package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/topology"
	"github.com/ovlmgr/ovlmgr/ovn/topology/render"
)

// topologyCommand is `ovlmgr topology`: the whole overlay at a glance.
func topologyCommand() *cli.Command {
	labFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "lab", Usage: "a local lab by name (its databases, plus each node's tunnel interfaces)"}
	}
	return &cli.Command{
		Name:  "topology",
		Usage: "show routers, networks, containers by node, services, policies and tunnels",
		Description: `Reads NB and SB once and draws the overlay:

   ovlmgr topology                       # text outline
   ovlmgr topology -o dot | dot -Tpng    # Graphviz DOT
   ovlmgr topology -o svg > topo.svg     # SVG, laid out by ovlmgr itself
   ovlmgr topology -o html > topo.html   # one self-contained page (opens offline)
   ovlmgr topology serve --listen 127.0.0.1:8080   # the page, live (NB/SB monitors)

See docs/observability.md.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text, dot, svg, html or json"},
			labFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, "no arguments"); err != nil {
				return err
			}
			format := c.String("output")
			switch format {
			case "text", "dot", "svg", "html", "json":
			default:
				return usagef("--output %q: allowed are text, dot, svg, html, json", format)
			}
			ctx, cancel := callContext(c)
			defer cancel()
			g, err := readTopology(ctx, c)
			if err != nil {
				return err
			}
			w := c.App.Writer
			switch format {
			case "dot":
				return render.DOT(w, g)
			case "svg":
				return render.SVG(w, g)
			case "html":
				return render.HTML(w, g, render.HTMLOptions{})
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(g)
			}
			return render.Text(w, g)
		},
		Subcommands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve the topology page over HTTP, refreshed live from NB/SB monitors",
			Description: `The page (/) follows changes through server-sent events (/events); also
/topology.svg, /topology.dot, /topology.json and /topology.txt. Stop with Ctrl-C.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "HTTP address (host:port)"},
				labFlag(),
			},
			Action: func(c *cli.Context) error {
				if err := needArgs(c, 0, "no arguments"); err != nil {
					return err
				}
				nbEP, sbEP := dbconn.ResolveNB(c.String("nb")), dbconn.ResolveSB(c.String("sb"))
				var l *lab.Lab
				if name := c.String("lab"); name != "" {
					var err error
					if l, err = lab.Load(name); err != nil {
						return err
					}
					nbEP, sbEP = l.NB, l.SB
				}
				ln, err := net.Listen("tcp", c.String("listen"))
				if err != nil {
					return usagef("--listen %q: %w", c.String("listen"), err)
				}
				srv := render.NewServer()
				hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
				fmt.Fprintf(c.App.ErrWriter, "serving the topology on http://%s/\n", ln.Addr())
				run, stop := context.WithCancel(c.Context)
				defer stop()
				followErr := make(chan error, 1)
				go func() {
					err := topology.Follow(run, nbEP, sbEP, 200*time.Millisecond, func(g *topology.Graph, err error) {
						if err == nil && l != nil {
							_ = l.NodeTunnels(run, g)
						}
						srv.Update(g, err)
					})
					followErr <- err
					stop()
				}()
				go func() {
					<-run.Done()
					hs.Close()
				}()
				if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				if err := <-followErr; !errors.Is(err, context.Canceled) {
					return err
				}
				return nil
			},
		}},
	}
}

// readTopology reads the graph from the NB and SB of --nb/--sb or --lab
// and, in a lab, each node's tunnel view. An unreachable SB (or node) is
// not an error: the graph says what it lacks (SBError, Warnings).
func readTopology(ctx context.Context, c *cli.Context) (*topology.Graph, error) {
	nbEP, sbEP := dbconn.ResolveNB(c.String("nb")), dbconn.ResolveSB(c.String("sb"))
	var l *lab.Lab
	if name := c.String("lab"); name != "" {
		var err error
		if l, err = lab.Load(name); err != nil {
			return nil, err
		}
		nbEP, sbEP = l.NB, l.SB
	}
	nb, err := dbconn.ConnectNB(ctx, nbEP)
	if err != nil {
		return nil, err
	}
	defer nb.Close()
	sctx, scancel := context.WithTimeout(ctx, sbConnectTimeout)
	sb, sbErr := dbconn.ConnectSB(sctx, sbEP)
	scancel()
	if sbErr == nil {
		defer sb.Close()
	}
	g, err := topology.Read(ctx, nb, sb)
	if err != nil {
		return nil, err
	}
	if sbErr != nil {
		g.SBError = sbErr.Error()
	}
	if l != nil {
		if err := l.NodeTunnels(ctx, g); err != nil {
			g.Warnings = append(g.Warnings, err.Error())
		}
	}
	return g, nil
}

// sbConnectTimeout bounds connecting to the SB: without it the picture
// still has everything the NB knows.
const sbConnectTimeout = 3 * time.Second
