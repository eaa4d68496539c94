package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/names"
)

// fipCommand is `ovlmgr fip`: floating IPs.
func fipCommand() *cli.Command {
	return &cli.Command{
		Name:  "fip",
		Usage: "create, list and delete floating IPs (an external address for one container)",
		Description: `A floating IP is an address of a router's external network that belongs to one
container interface, in both directions: connections to it reach the container, and the
container's own traffic to the outside leaves from it (instead of the router's address).
The container's network must be on a router with a gateway (ovlmgr router gateway set).

An IPv6 floating IP (an address of the gateway's --external-net6) goes to the container's
IPv6 address; a container interface can hold one floating IP of each family.

It is distributed (the container's node answers for it) when that node has the external
network, else centralized on the router's active gateway node. It goes away with the
container's port (CNI DEL).

Example:
   ovlmgr fip create 198.18.100.20 --container 3f9c2a1b
   ovlmgr fip list
   ovlmgr fip delete 198.18.100.20`,
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "give a container a floating IP", ArgsUsage: "IP",
				Description: `IP: a free host address of the router's external network (IPv4), or of its
IPv6 external network (the container then needs an IPv6 address on that network).
--container: a container ID or a prefix of 4+ characters, as ovlmgr port list shows it;
--net picks the interface of a container on several networks.

Example:
   ovlmgr fip create 198.18.100.20 --container 3f9c2a1b --net web`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "container", Usage: "container ID or ID prefix (required)"},
					&cli.StringFlag{Name: "net", Usage: "the container's network, when it has several"},
					outputFlag(),
				},
				Action: fipCreate,
			},
			{Name: "list", Usage: "list floating IPs", Flags: []cli.Flag{outputFlag()}, Action: fipList,
				Description: "MODE is distributed (on the container's node) or centralized (on the gateway).\n\nExample:\n   ovlmgr fip list -o json"},
			{Name: "delete", Usage: "delete a floating IP", ArgsUsage: "IP", Action: fipDelete,
				Description: "Example:\n   ovlmgr fip delete 198.18.100.20"},
		},
	}
}

// fipArg parses the IP argument.
func fipArg(c *cli.Context) (netip.Addr, error) {
	s := c.Args().First()
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Is4In6() {
		return netip.Addr{}, usageError{names.Bad("ip", s, "want an IPv4 or IPv6 address such as 198.18.100.20 or fd00:198:18:100::20")}
	}
	return ip, nil
}

func fipCreate(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "IP", "container"); err != nil {
		return err
	}
	ip, err := fipArg(c)
	if err != nil {
		return err
	}
	ctx, cancel := callContext(c)
	defer cancel()
	dbs, err := connectClusterDBs(ctx, c)
	if err != nil {
		return err
	}
	defer dbs.Close()
	f, err := fip.Create(ctx, dbs.nb, dbs.sb, fip.Spec{IP: ip, Container: c.String("container"), Network: c.String("net")})
	if err != nil {
		return err
	}
	return printOut(c, f, func(w io.Writer) {
		fmt.Fprintf(w, "floating IP %s -> container %.12s (%s %s, network %s) on router %s: %s\n",
			f.IP, f.Container, f.IfName, f.LogicalIP, f.Network, f.Router, where(f))
	})
}

// where says where a floating IP's NAT happens.
func where(f *fip.FIP) string {
	if f.Mode == fip.Distributed {
		return "distributed on node " + f.Node
	}
	return "centralized on the router's gateway"
}

func fipList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		fs, err := fip.List(ctx, nb)
		if err != nil {
			return err
		}
		return printOut(c, fs, func(w io.Writer) {
			row(w, "IP", "CONTAINER", "IFNAME", "NETWORK", "CONTAINER IP", "ROUTER", "MODE", "NODE")
			for _, f := range fs {
				row(w, f.IP.String(), dash(shortID(f.Container)), f.IfName, f.Network, f.LogicalIP.String(), f.Router, f.Mode, dash(f.Node))
			}
		})
	})
}

func fipDelete(c *cli.Context) error {
	if err := needArgs(c, 1, "IP"); err != nil {
		return err
	}
	ip, err := fipArg(c)
	if err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if err := fip.Delete(ctx, nb, ip); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "floating IP %s deleted\n", ip)
		return nil
	})
}
