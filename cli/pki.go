package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
)

// pkiCommand is `ovlmgr pki`: the control plane's certificate authorities
// and certificates (docs/security.md).
func pkiCommand() *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", Value: "/etc/ovlmgr/pki", Usage: "directory of the CAs (control-ca.pem, node-ca.pem and their keys)"}
	return &cli.Command{
		Name:  "pki",
		Usage: "certificate authorities and certificates for TLS between ovlmgr, OVN and the nodes",
		Description: `Two CAs: the control CA signs servers, admins and the control service; the node CA signs
one certificate per node, named after its chassis. The NB trusts the control CA only, so no node
certificate opens the NB. Rotate a certificate by issuing it again (a new key; daemons re-read
changed files). Revoke a node by rotating the node CA (pki init --force --only node) and issuing
the other nodes again: ovsdb-server checks no revocation lists. See docs/security.md.

   ovlmgr pki init --dir /etc/ovlmgr/pki
   ovlmgr pki issue --dir /etc/ovlmgr/pki --role server --name central --ip 198.18.0.1 --out /etc/ovn
   ovlmgr pki issue --dir /etc/ovlmgr/pki --role node --name n1 --out /etc/ovlmgr/n1
   ovlmgr pki issue --dir /etc/ovlmgr/pki --role admin --name alice --out ~/.ovlmgr
   ovlmgr pki show /etc/ovlmgr/n1/n1.pem`,
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "create the control and node CAs",
				Flags: []cli.Flag{dirFlag,
					&cli.DurationFlag{Name: "validity", Value: pki.DefaultCAValidity, Usage: "how long the CAs are valid"},
					&cli.BoolFlag{Name: "force", Usage: "replace existing CAs (rotation: every certificate they signed must be issued again)"},
					&cli.StringFlag{Name: "only", Usage: "create or replace one CA only: control or node"},
				},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					dir := c.String("dir")
					switch only := c.String("only"); only {
					case "":
						if err := pki.Init(dir, c.Duration("validity"), c.Bool("force")); err != nil {
							return err
						}
					case pki.ControlCA, pki.NodeCA:
						if _, err := pki.InitCA(dir, only, c.Duration("validity"), c.Bool("force")); err != nil {
							return err
						}
					default:
						return usagef("pki init: --only %q: allowed control, node", only)
					}
					fmt.Fprintf(c.App.Writer, "CAs in %s: %s, %s\n", dir, pki.CAFile(dir, pki.ControlCA), pki.CAFile(dir, pki.NodeCA))
					return nil
				},
			},
			{
				Name:  "issue",
				Usage: "issue (or rotate: issue again) a certificate and its key",
				Flags: []cli.Flag{dirFlag,
					&cli.StringFlag{Name: "role", Usage: "admin, control, server or node (required)"},
					&cli.StringFlag{Name: "name", Usage: "common name: the node's chassis name for a node, a person or service otherwise (required)"},
					&cli.StringSliceFlag{Name: "ip", Usage: "IP address clients dial (servers; repeat)"},
					&cli.StringSliceFlag{Name: "dns", Usage: "DNS name clients dial (servers; repeat)"},
					&cli.DurationFlag{Name: "validity", Value: pki.DefaultValidity, Usage: "how long the certificate is valid (at most the CA's remaining life)"},
					&cli.StringFlag{Name: "out", Usage: "directory for NAME.pem, NAME-key.pem (mode 0600) and ca.pem (required)"},
				},
				Action: func(c *cli.Context) error {
					if err := needArgsFlags(c, 0, "no arguments", "role", "name", "out"); err != nil {
						return err
					}
					role, err := pki.ParseRole(c.String("role"))
					if err != nil {
						return usagef("pki issue: --%v", err)
					}
					ips, err := pki.ParseIPs(c.StringSlice("ip"))
					if err != nil {
						return usagef("pki issue: --%v", err)
					}
					f, is, err := pki.IssueTo(c.String("dir"), c.String("out"), pki.Request{Name: c.String("name"), Role: role,
						IPs: ips, DNSNames: c.StringSlice("dns"), Validity: c.Duration("validity")})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s %s (serial %s) valid until %s\n  --ca-cert %s --cert %s --private-key %s\n",
						role, c.String("name"), is.Cert.SerialNumber.Text(16), is.Cert.NotAfter.UTC().Format(time.RFC3339), f.CA, f.Cert, f.Key)
					return nil
				},
			},
			{
				Name:      "show",
				Usage:     "what a certificate says: name, role, issuer, expiry",
				ArgsUsage: "CERT.pem",
				Flags:     []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "a certificate file"); err != nil {
						return err
					}
					cert, err := pki.ReadCert(c.Args().First())
					if err != nil {
						return err
					}
					in := pki.Describe(cert)
					return printOut(c, in, func(w io.Writer) {
						row(w, "NAME", "ROLE", "ISSUER", "EXPIRES", "IPS")
						row(w, in.Name, dash(in.Role), in.Issuer, in.NotAfter.Format(time.RFC3339), dash(strings.Join(in.IPs, ",")))
					})
				},
			},
		},
	}
}
