package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// routerView is router show's output: the router and its gateway (nil when none).
type routerView struct {
	router.Router `yaml:",inline"`
	Gateway       *gatewayView `json:"gateway,omitempty" yaml:"gateway,omitempty"`
}

// routerCommand is `ovlmgr router`: tenants as OVN logical routers.
func routerCommand() *cli.Command {
	return &cli.Command{
		Name:  "router",
		Usage: "create, list, show and delete routers; attach and detach networks",
		Description: `A router is an OVN logical router: the networks attached to one router reach each
other (across nodes); networks on different routers share nothing, so a router is a
tenant. Subnets must be unique among one router's networks (and among unattached
networks), and may repeat across routers.

Example:
   ovlmgr router create blue
   ovlmgr net create web --subnet 198.19.0.0/24 --router blue
   ovlmgr router attach blue db
   ovlmgr router show blue
   ovlmgr router detach blue db
   ovlmgr router delete blue --force`,
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a router", ArgsUsage: "NAME",
				Description: "NAME: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 63 characters.\n\nExample:\n   ovlmgr router create blue --label tenant=blue",
				Flags:       []cli.Flag{&cli.StringSliceFlag{Name: "label", Usage: "key=value label (repeatable)"}, outputFlag()},
				Action:      routerCreate,
			},
			{Name: "list", Usage: "list routers", Flags: []cli.Flag{outputFlag()}, Action: routerList,
				Description: "Example:\n   ovlmgr router list -o json"},
			{Name: "show", Usage: "show a router and its networks", ArgsUsage: "NAME", Flags: []cli.Flag{outputFlag()}, Action: routerShow,
				Description: "Example:\n   ovlmgr router show blue"},
			{
				Name: "delete", Usage: "delete a router", ArgsUsage: "NAME",
				Description: "Refuses while networks are attached (naming them) unless --force, which detaches\nthem in the same transaction.\n\nExample:\n   ovlmgr router delete blue --force",
				Flags:       []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "detach attached networks, then delete"}},
				Action:      routerDelete,
			},
			{
				Name: "attach", Usage: "attach a network to a router", ArgsUsage: "ROUTER NET",
				Description: "The router gets a port with the network's gateway address.\n\nExample:\n   ovlmgr router attach blue db",
				Action:      routerAttach,
			},
			routerGatewayCommand(),
			{
				Name: "detach", Usage: "detach a network from its router", ArgsUsage: "ROUTER NET",
				Description: "Example:\n   ovlmgr router detach blue db",
				Action:      routerDetach,
			},
		},
	}
}

func routerCreate(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	name := c.Args().First()
	if err := router.ValidateName(name); err != nil {
		return usagef("create router: %w", err)
	}
	labels, err := parseLabels(c.StringSlice("label"))
	if err != nil {
		return usagef("create router %q: %w", name, err)
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		r, err := router.Create(ctx, nb, name, labels)
		if err != nil {
			return err
		}
		return printOut(c, r, func(w io.Writer) { fmt.Fprintf(w, "router %s created\n", r.Name) })
	})
}

func routerList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		rs, err := router.List(ctx, nb)
		if err != nil {
			return err
		}
		return printOut(c, rs, func(w io.Writer) {
			row(w, "NAME", "NETWORKS", "LABELS")
			for _, r := range rs {
				var nets []string
				for _, a := range r.Networks {
					nets = append(nets, a.Network)
				}
				row(w, r.Name, dash(strings.Join(nets, ",")), labelString(r.Labels))
			}
		})
	})
}

func routerShow(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		r, err := router.Get(ctx, nb, c.Args().First())
		if err != nil {
			return err
		}
		gw, err := readGateway(ctx, c, nb, r.Name)
		if err != nil && !errors.Is(err, gateway.ErrNoGateway) {
			return err
		}
		out := routerView{Router: *r, Gateway: gw}
		return printOut(c, out, func(w io.Writer) {
			row(w, "NAME", r.Name)
			row(w, "UUID", r.UUID)
			row(w, "LABELS", labelString(r.Labels))
			row(w, "NETWORKS", fmt.Sprint(len(r.Networks)))
			if len(r.Networks) > 0 {
				row(w, "")
				row(w, "NETWORK", "GATEWAY", "ROUTER PORT", "MAC")
				for _, a := range r.Networks {
					row(w, a.Network, a.Gateway, a.RouterPort, a.MAC)
				}
			}
			row(w, "")
			if gw == nil {
				row(w, "GATEWAY", "none (ovlmgr router gateway set "+r.Name+" ...)")
				return
			}
			gatewayRows(w, gw)
		})
	})
}

func routerDelete(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		name := c.Args().First()
		if err := network.DeleteRouter(ctx, nb, name, c.Bool("force")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "router %s deleted\n", name)
		return nil
	})
}

func routerAttach(c *cli.Context) error {
	if err := needArgs(c, 2, "ROUTER NET"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		r, n := c.Args().Get(0), c.Args().Get(1)
		if err := network.Attach(ctx, nb, n, r); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "network %s attached to router %s\n", n, r)
		return nil
	})
}

func routerDetach(c *cli.Context) error {
	if err := needArgs(c, 2, "ROUTER NET"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		r, n := c.Args().Get(0), c.Args().Get(1)
		if err := network.Detach(ctx, nb, n, r); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "network %s detached from router %s\n", n, r)
		return nil
	})
}
