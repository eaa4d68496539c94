// Command ovlmgr manages container overlay networks on OVN: networks,
// routers, policies, services and nodes, plus a one-machine lab.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code:
// 0 ok, 1 error, 2 usage, 3 trace verdict DROPPED (see docs/troubleshooting.md).
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(interspersed(app, args))
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	fmt.Fprintf(stderr, "ovlmgr: %s\n", withFlagHints(err))
	var st interface{ ExitStatus() int }
	if errors.As(err, &st) {
		return st.ExitStatus()
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "ovlmgr",
		Usage: "container overlay networks on OVN",
		Description: `ovlmgr writes overlay networks, routers, policies and services into the OVN
Northbound database; OVN turns them into flows and Geneve tunnels on every node.

Example:
   ovlmgr lab up --nodes 3          # a 3-node OVN lab in network namespaces
   eval "$(ovlmgr lab env)"         # point ovlmgr at the lab's NB database
   ovlmgr net create web --subnet 198.19.0.0/24
   ovlmgr net list`,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nb", Usage: "OVN Northbound endpoints, comma separated (unix:PATH, tcp:IP:PORT)", EnvVars: []string{"OVLMGR_NB"}},
			&cli.StringFlag{Name: "sb", Usage: "OVN Southbound endpoints, comma separated", EnvVars: []string{"OVLMGR_SB"}},
			&cli.DurationFlag{Name: "timeout", Value: defaultTimeout, Usage: "bound on each database call"},
			&cli.StringFlag{Name: "ca-cert", Usage: "CA certificate that signed the servers, for ssl: endpoints", EnvVars: []string{dbconn.EnvCACert}},
			&cli.StringFlag{Name: "cert", Usage: "this client's certificate, for ssl: endpoints", EnvVars: []string{dbconn.EnvCert}},
			&cli.StringFlag{Name: "private-key", Usage: "this client's private key, for ssl: endpoints", EnvVars: []string{dbconn.EnvPrivateKey}},
		},
		Before: func(c *cli.Context) error {
			dbconn.SetTLSFiles(dbconn.TLSFiles{CA: c.String("ca-cert"), Cert: c.String("cert"), Key: c.String("private-key")})
			return nil
		},
		Commands:             commands(),
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() prints errors and picks exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "ovlmgr: unknown command %q (see ovlmgr --help)\n", name)
			os.Exit(2)
		},
	}
}
