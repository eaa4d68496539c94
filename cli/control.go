package main

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/control"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// controlCommand is `ovlmgr control`: the service through which nodes
// write the NB (docs/security.md).
func controlCommand() *cli.Command {
	return &cli.Command{
		Name:  "control",
		Usage: "the control service: nodes write the Northbound database only through it, each only its own container ports",
		Subcommands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve nodes over mutual TLS, relaying to the NB what their certificate allows",
			Description: `Speaks the OVSDB protocol: point a node's Northbound endpoint (node join --nb) at it.
A node certificate (node CA, common name = chassis) may write only container ports with
requested-chassis = that chassis on existing networks; anything else is answered with an
OVSDB permission error and never reaches the NB. Admin certificates (control CA) pass.
Stateless: run two or more instances and list them all in the node's --nb.

   ovlmgr --nb unix:/var/run/ovn/ovnnb_db.sock --ca-cert control-ca.pem \
       --cert control.pem --private-key control-key.pem \
       control serve --listen ssl:198.18.0.1:6645 --node-ca node-ca.pem`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Usage: "ssl:IP:PORT to serve nodes on (required)"},
				&cli.StringFlag{Name: "node-ca", Usage: "CA certificate of the nodes (required); the global --ca-cert is the control CA"},
				&cli.StringFlag{Name: "pidfile", Usage: "write this process's PID to this file"},
				&cli.IntFlag{Name: "max-node-connections", Value: control.DefaultMaxNodeConns, Usage: "connections one node may have open at once (each is also an NB connection); more are refused"},
			},
			Action: func(c *cli.Context) error {
				if err := needArgsFlags(c, 0, "no arguments", "listen", "node-ca"); err != nil {
					return err
				}
				f := dbconn.TLSFilesFromEnv()
				if f.CA == "" || f.Cert == "" || f.Key == "" {
					return usagef("control serve: --ca-cert (the control CA), --cert and --private-key (the service's control certificate) are required")
				}
				pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
				if err != nil {
					return fmt.Errorf("control serve: --cert %s / --private-key %s: %w", f.Cert, f.Key, err)
				}
				ctlCA, err := control.ReadCAs(f.CA)
				if err != nil {
					return fmt.Errorf("control serve: --ca-cert: %w", err)
				}
				nodeCA, err := control.ReadCAs(c.String("node-ca"))
				if err != nil {
					return fmt.Errorf("control serve: --node-ca: %w", err)
				}
				if n := c.Int("max-node-connections"); n < 1 {
					return usagef("control serve: --max-node-connections %d: want 1 or more", n)
				}
				ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
				defer stop()
				ready := make(chan struct{})
				if p := c.String("pidfile"); p != "" {
					// Written once the listener is open: a supervisor (the lab)
					// waits for it.
					go func() {
						<-ready
						_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
					}()
					defer os.Remove(p)
				}
				return control.Serve(ctx, control.Options{Listen: c.String("listen"), NB: dbconn.ResolveNB(c.String("nb")),
					Cert: pair, NodeCA: nodeCA, ControlCA: ctlCA, Ready: ready, MaxNodeConns: c.Int("max-node-connections"), Log: log.New(c.App.ErrWriter, "ovlmgr control: ", log.LstdFlags)})
			},
		}},
	}
}

// selfExe is this binary's path (the lab runs the control service with it).
func selfExe() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}
