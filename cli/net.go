package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// netCommand is `ovlmgr net`: overlay networks (OVN logical switches).
func netCommand() *cli.Command {
	return &cli.Command{
		Name:  "net",
		Usage: "create, list, show and delete overlay networks",
		Description: `A network is an OVN logical switch with a subnet; OVN's IPAM gives each container
an address from it. Subnets of ovlmgr networks must not overlap.

Example:
   ovlmgr net create web --subnet 198.19.0.0/24 --label team=shop
   ovlmgr net list
   ovlmgr net show web -o yaml
   ovlmgr net delete web`,
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a network",
				ArgsUsage: "NAME",
				Description: `NAME: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 63 characters.
The gateway (default: the subnet's first host) and --exclude addresses are kept out of IPAM; the IPv6
gateway is the /64's ::1 (see docs/networks.md#ipv6).

Example:
   ovlmgr net create web --subnet 198.19.0.0/24
   ovlmgr net create db --subnet 198.19.1.0/24 --subnet fd00:198:19:1::/64 --gateway 198.19.1.254 \
       --exclude 198.19.1.10 --exclude 198.19.1.100..198.19.1.149 --mtu 1400 --label tier=data --may-exist
   ovlmgr net create v6 --subnet6 fd00:198:19:6::/64      # IPv6-only: EUI-64 addresses, gateway ::1`,
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "subnet", Usage: "IPv4 CIDR /8 to /30 and/or IPv6 /64 (repeat for dual stack; an IPv6 /64 alone: IPv6-only)"},
					&cli.StringSliceFlag{Name: "subnet6", Usage: "IPv6 /64 (same as an IPv6 --subnet)"},
					&cli.StringFlag{Name: "gateway", Usage: "gateway address inside the subnet (default: first host)"},
					&cli.StringSliceFlag{Name: "exclude", Usage: "IP or IP..IP inside the subnet that IPAM must not hand out (repeatable)"},
					&cli.IntFlag{Name: "mtu", Usage: fmt.Sprintf("container MTU, %d to %d", network.MinMTU, network.MaxMTU), DefaultText: "node MTU minus Geneve overhead"},
					&cli.StringSliceFlag{Name: "label", Usage: "key=value label (repeatable)"},
					&cli.BoolFlag{Name: "may-exist", Usage: "succeed if the network exists with an identical spec"},
					&cli.StringFlag{Name: "router", Usage: "attach to this router (subnets must then be unique on the router only)"},
					&cli.StringFlag{Name: "isolation", Usage: "default-allow (default) or default-deny (nothing gets in until a policy allows it)"},
					&cli.StringFlag{Name: "container-names", Usage: "on (default): each container gets a DNS name; off: none (service names stay), so ADD and DEL never change DNS rows, which in OVN 23.03 makes every node with the network recompute all its flows (docs/services.md)"},
					&cli.StringFlag{Name: "domain", Usage: "DNS domain: containers resolve as NAME.NETWORK.DOMAIN (default: ovl)"},
					outputFlag(),
				},
				Action: netCreate,
			},
			netUpdateCommand(),
			{
				Name:        "list",
				Usage:       "list networks",
				Description: "Example:\n   ovlmgr net list\n   ovlmgr net list -o json",
				Flags:       []cli.Flag{outputFlag()},
				Action:      netList,
			},
			{
				Name:        "show",
				Usage:       "show one network",
				ArgsUsage:   "NAME",
				Description: "Example:\n   ovlmgr net show web\n   ovlmgr net show web -o yaml",
				Flags:       []cli.Flag{outputFlag()},
				Action:      netShow,
			},
			{
				Name:      "delete",
				Usage:     "delete a network",
				ArgsUsage: "NAME",
				Description: `Refuses while containers are attached (listing their ports) unless --force,
which deletes those ports too, in the same transaction.

Example:
   ovlmgr net delete web
   ovlmgr net delete web --force`,
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "also delete the network's container ports"}},
				Action: netDelete,
			},
		},
	}
}

// netSpec builds the Spec from flags; bad input is a usage error.
func netSpec(c *cli.Context) (network.Spec, error) {
	name := c.Args().First()
	s := network.Spec{Name: name, Gateway: c.String("gateway"), Exclude: c.StringSlice("exclude"), MTU: c.Int("mtu"), MayExist: c.Bool("may-exist"),
		Router: c.String("router"), Isolation: c.String("isolation"), Domain: c.String("domain"), ContainerNames: c.String("container-names")}
	var v4, v6 []string
	for _, sub := range append(c.StringSlice("subnet"), c.StringSlice("subnet6")...) {
		if strings.Contains(sub, ":") {
			v6 = append(v6, sub)
		} else {
			v4 = append(v4, sub)
		}
	}
	switch {
	case len(v4) > 1:
		return s, usagef("create network %q: --subnet %q: at most one IPv4 subnet (plus one IPv6 /64)", name, strings.Join(v4, ","))
	case len(v6) > 1:
		return s, usagef("create network %q: --subnet %q: at most one IPv6 /64 subnet", name, strings.Join(v6, ","))
	}
	if len(v4) == 1 {
		s.Subnet = v4[0]
	}
	if len(v6) == 1 {
		s.IPv6Subnet = v6[0] // alone: an IPv6-only network
	}
	labels, err := parseLabels(c.StringSlice("label"))
	if err != nil {
		return s, usagef("create network %q: %v", name, err)
	}
	s.Labels = labels
	if err := network.Validate(s); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

func netCreate(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	s, err := netSpec(c)
	if err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		n, err := network.Create(ctx, nb, s)
		if err != nil {
			return err
		}
		return printOut(c, n, func(w io.Writer) {
			fmt.Fprintf(w, "network %s: subnet %s, gateway %s\n", n.Name, subnets(*n), gateways(*n))
		})
	})
}

func netList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		nets, err := network.List(ctx, nb)
		if err != nil {
			return err
		}
		return printOut(c, nets, func(w io.Writer) {
			row(w, "NAME", "SUBNET", "GATEWAY", "PORTS", "FREE", "LABELS")
			for _, n := range nets {
				row(w, n.Name, subnets(n), gateways(n), strconv.Itoa(n.Ports), freeText(n), labelString(n.Labels))
			}
		})
	})
}

func netShow(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		n, err := network.Get(ctx, nb, c.Args().First())
		if err != nil {
			return err
		}
		return printOut(c, n, func(w io.Writer) {
			mtu := "node default"
			if n.MTU != 0 {
				mtu = strconv.Itoa(n.MTU)
			}
			for _, kv := range [][2]string{
				{"NAME", n.Name}, {"UUID", n.UUID}, {"SUBNET", subnets(*n)}, {"GATEWAY", gateways(*n)},
				{"EXCLUDE", dash(strings.Join(n.Exclude, " "))}, {"MTU", mtu}, {"ROUTER", dash(n.Router)}, {"ISOLATION", n.Isolation}, {"DOMAIN", n.Domain}, {"CONTAINER-NAMES", n.ContainerNames},
				{"PORTS", strconv.Itoa(n.Ports)}, {"FREE", freeText(*n)}, {"LABELS", labelString(n.Labels)},
			} {
				row(w, kv[0], kv[1])
			}
		})
	})
}

func netDelete(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		name := c.Args().First()
		if err := network.Delete(ctx, nb, name, c.Bool("force")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "network %s deleted\n", name)
		return nil
	})
}

// gateways is the network's gateway, and its IPv6 gateway (::1) when it
// has an IPv6 /64.
func gateways(n network.Network) string {
	switch {
	case n.Gateway6 == "":
		return n.Gateway
	case n.Gateway == "":
		return n.Gateway6
	}
	return n.Gateway + "," + n.Gateway6
}

// freeText is FREE as printed: an IPv6-only network's /64 has no count
// worth printing (Free stays 0 there), so "-" rather than a 0 that reads
// as full.
func freeText(n network.Network) string {
	if n.Subnet == "" && n.IPv6Prefix != "" {
		return "-"
	}
	return strconv.Itoa(n.Free)
}

func subnets(n network.Network) string {
	if n.Subnet == "" {
		return n.IPv6Prefix
	}
	if n.IPv6Prefix != "" {
		return n.Subnet + "," + n.IPv6Prefix
	}
	return n.Subnet
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	kv := make([]string, 0, len(l))
	for k, v := range l {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
