package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// serviceCommand is `ovlmgr service`: load-balanced services (OVN Load_Balancers) with DNS names.
func serviceCommand() *cli.Command {
	netFlag := &cli.StringFlag{Name: "net", Usage: "network of the service"}
	return &cli.Command{
		Name:  "service",
		Usage: "create, list, show and delete load-balanced services",
		Description: `A service is a virtual IP (VIP:PORT/proto) that OVN balances over backends in the
datapath, with a DNS name <service>.<network>.<domain> that resolves to the VIP.

Example:
   ovlmgr service create api --net web --vip 198.18.200.1:80 --selector app=api --target-port 8080
   ovlmgr service create db --net web --vip 198.18.200.2:5432 --backend pg-1:5432 --backend 198.18.0.9:5432 --health-check 5,2`,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a service",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					netFlag,
					&cli.StringFlag{Name: "vip", Usage: "virtual address IP:PORT[/tcp|udp] (tcp by default); may lie outside the subnet when the network is on a router"},
					&cli.StringSliceFlag{Name: "backend", Usage: "backend CONTAINER_OR_IP:PORT (container name, ID or address; repeatable)"},
					&cli.StringSliceFlag{Name: "selector", Usage: "label=value: containers with these labels are backends as they come and go (repeatable)"},
					&cli.IntFlag{Name: "target-port", Usage: "port of selected backends (default: the VIP's port)"},
					&cli.StringFlag{Name: "health-check", Usage: "INTERVAL,TIMEOUT in seconds: probe backends, drop failing ones"},
					outputFlag(),
				},
				Action: serviceCreate,
			},
			{
				Name:   "list",
				Usage:  "list services",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "net", Usage: "only services of this network"}, outputFlag()},
				Action: serviceList,
			},
			{
				Name:      "show",
				Usage:     "show one service",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{netFlag, outputFlag()},
				Action:    serviceShow,
			},
			{
				Name:      "delete",
				Usage:     "delete a service",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{netFlag},
				Action:    serviceDelete,
			},
		},
	}
}

func serviceCreate(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "NAME", "net", "vip"); err != nil {
		return err
	}
	sel, err := service.ParseSelector(c.StringSlice("selector"))
	if err != nil {
		return usagef("%w", err)
	}
	spec := service.Spec{Name: c.Args().First(), Network: c.String("net"), VIP: c.String("vip"),
		Backends: c.StringSlice("backend"), Selector: sel, TargetPort: c.Int("target-port"), HealthCheck: c.String("health-check")}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		s, err := service.Create(ctx, nb, spec)
		if err != nil {
			return err
		}
		return printService(c, s)
	})
}

func serviceList(c *cli.Context) error {
	if err := needArgsFlags(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		list, err := service.List(ctx, nb, c.String("net"))
		if err != nil {
			return err
		}
		return printOut(c, list, func(w io.Writer) {
			row(w, "NAME", "NETWORK", "VIP", "DNS", "BACKENDS", "SELECTOR")
			for _, s := range list {
				row(w, s.Name, s.Network, s.VIP, s.FQDN, dash(strings.Join(s.Backends, ",")), dash(svcSelector(s.Selector)))
			}
		})
	})
}

func serviceShow(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "NAME", "net"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		s, err := service.Get(ctx, nb, c.String("net"), c.Args().First())
		if err != nil {
			return err
		}
		return printService(c, s)
	})
}

func serviceDelete(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "NAME", "net"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if err := service.Delete(ctx, nb, c.String("net"), c.Args().First()); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "deleted service %q in network %q\n", c.Args().First(), c.String("net"))
		return nil
	})
}

func printService(c *cli.Context, s *service.Service) error {
	return printOut(c, s, func(w io.Writer) {
		row(w, "name:", s.Name)
		row(w, "network:", s.Network)
		row(w, "vip:", s.VIP)
		row(w, "dns:", s.FQDN)
		row(w, "backends:", dash(strings.Join(s.Backends, " ")))
		row(w, "static:", dash(strings.Join(s.Static, " ")))
		row(w, "selector:", dash(svcSelector(s.Selector)))
		if s.TargetPort != 0 {
			row(w, "target port:", fmt.Sprint(s.TargetPort))
		}
		if s.HealthCheck != nil {
			row(w, "health check:", fmt.Sprintf("every %ds, timeout %ds, probes from %s", s.HealthCheck.Interval, s.HealthCheck.Timeout, s.HCSource))
		}
		row(w, "switches:", dash(strings.Join(s.Switches, " ")))
		row(w, "routers:", dash(strings.Join(s.Routers, " ")))
	})
}

func svcSelector(sel map[string]string) string {
	ks := make([]string, 0, len(sel))
	for k, v := range sel {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}
