package main

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// encryptCommand is `ovlmgr encrypt on|off|status`: IPsec for every tunnel
// of the deployment (NB_Global ipsec).
func encryptCommand() *cli.Command {
	set := func(on bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			if err := needArgs(c, 0, "no arguments"); err != nil {
				return err
			}
			return onNB(c, func(ctx context.Context, nb client.Client) error {
				if err := encrypt.Set(ctx, nb, on); err != nil {
					return err
				}
				state := "off"
				if on {
					state = "on: every node needs openvswitch-ipsec (ovs-monitor-ipsec), strongSwan and its certificate, and the kernel datapath"
				}
				fmt.Fprintf(c.App.Writer, "encryption %s\n", state)
				return nil
			})
		}
	}
	return &cli.Command{
		Name:  "encrypt",
		Usage: "encrypt every Geneve tunnel of the deployment with IPsec (NB_Global ipsec), or show which cannot be",
		Description: `OVN sets up IPsec on every tunnel; ovs-monitor-ipsec on each node does the encryption
through the kernel. Nodes with the userspace datapath (the lab) cannot encrypt: status and
ovlmgr diagnose name them. See docs/sites.md.`,
		Subcommands: []*cli.Command{
			{Name: "on", Usage: "turn IPsec on for every tunnel", Action: set(true)},
			{Name: "off", Usage: "turn IPsec off", Action: set(false)},
			{Name: "status", Usage: "on or off, and the chassis whose tunnels should be encrypted and are not (exit 1 when any)", Action: encryptStatus},
		},
	}
}

func encryptStatus(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		on, err := encrypt.Enabled(ctx, nb)
		if err != nil {
			return err
		}
		if !on {
			fmt.Fprintln(c.App.Writer, "encryption off")
			return nil
		}
		sb, err := dbconn.ConnectSB(ctx, dbconn.ResolveSB(c.String("sb")))
		if err != nil {
			return err
		}
		defer sb.Close()
		fs, err := encrypt.Unencrypted(ctx, nb, sb)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, "encryption on")
		for _, f := range fs {
			fmt.Fprintf(c.App.Writer, "  not encrypted: chassis %s: %s\n", f.Chassis, f.Why)
		}
		if len(fs) > 0 {
			return fmt.Errorf("encrypt status: %d chassis should encrypt their tunnels and do not", len(fs))
		}
		return nil
	})
}
