package main

import (
	"context"
	"flag"
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

// trailingArgs is withTrailingFlags, then needArgs(n, usage) and
// needFlags(flags...) on the result.
func trailingArgs(c *cli.Context, n int, usage string, flags ...string) (*cli.Context, error) {
	c, err := withTrailingFlags(c)
	if err != nil {
		return nil, err
	}
	if err := needArgs(c, n, usage); err != nil {
		return nil, err
	}
	if err := needFlags(c, flags...); err != nil {
		return nil, err
	}
	return c, nil
}

// withTrailingFlags returns a context in which flags given after the
// positional arguments ("service create api --net web") count too: urfave/cli
// v2 stops parsing flags at the first positional argument.
func withTrailingFlags(c *cli.Context) (*cli.Context, error) {
	args := c.Args().Slice()
	if len(args) <= 1 {
		return c, nil
	}
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
	}
	// Flags parsed before the arguments keep their values.
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		switch f.(type) {
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				_ = set.Set(name, v)
			}
		case *cli.IntFlag:
			_ = set.Set(name, fmt.Sprint(c.Int(name)))
		case *cli.BoolFlag:
			_ = set.Set(name, fmt.Sprint(c.Bool(name)))
		default:
			_ = set.Set(name, c.String(name))
		}
	}
	var flagArgs, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if fl := set.Lookup(name); fl != nil {
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
		}
		if i+1 < len(args) {
			flagArgs = append(flagArgs, args[i+1])
			i++
		}
	}
	if err := set.Parse(append(append(flagArgs, "--"), pos...)); err != nil {
		return nil, usagef("%s: %v (see ovlmgr %s --help)", c.Command.FullName(), err, c.Command.FullName())
	}
	nc := cli.NewContext(c.App, set, c.Lineage()[1])
	nc.Command = c.Command
	return nc, nil
}

// needFlags returns a usage error naming the first empty one of names.
func needFlags(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.String(n) == "" {
			return usagef("%s: --%s is required (see ovlmgr %s --help)", c.Command.FullName(), n, c.Command.FullName())
		}
	}
	return nil
}

func serviceCreate(c *cli.Context) error {
	c, err := trailingArgs(c, 1, "NAME", "net", "vip")
	if err != nil {
		return err
	}
	sel, err := service.ParseSelector(c.StringSlice("selector"))
	if err != nil {
		return usagef("%v", err)
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
	c, err := trailingArgs(c, 0, "no arguments")
	if err != nil {
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
	c, err := trailingArgs(c, 1, "NAME", "net")
	if err != nil {
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
	c, err := trailingArgs(c, 1, "NAME", "net")
	if err != nil {
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
