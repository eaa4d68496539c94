package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// routerGatewayCommand is `ovlmgr router gateway`: a router's way out.
func routerGatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "give a router a gateway to the external network (SNAT, HA gateway nodes), show or remove it",
		Description: `The router gets a distributed gateway port on the external network, active on the first
of --nodes and standby on the others (OVN Gateway_Chassis priorities, BFD failover), a
default route to --next-hop, and SNAT of every attached network to --ip (except those given
with --no-snat). Gateway nodes need the external network: ovlmgr node join --external-iface.
With --external-net6, --ip6 and --next-hop6 the gateway is dual-stack: a default route ::/0
too, and every network with an IPv6 /64 is SNATed to --ip6 (NAT66); with the IPv6 flags
alone it is IPv6-only. See docs/external.md.

Example:
   ovlmgr router gateway set blue --external-net 198.18.100.0/24 --ip 198.18.100.10 \
       --next-hop 198.18.100.1 --nodes n1,n2
   ovlmgr router gateway set blue --external-net 198.18.100.0/24 --ip 198.18.100.10 \
       --next-hop 198.18.100.1 --external-net6 fd00:198:18:100::/64 --ip6 fd00:198:18:100::10 \
       --next-hop6 fd00:198:18:100::1 --nodes n1,n2
   ovlmgr router gateway show blue
   ovlmgr router gateway unset blue`,
		Subcommands: []*cli.Command{
			{
				Name: "set", Usage: "set (or replace) a router's gateway", ArgsUsage: "ROUTER",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "external-net", Usage: "external network IPv4 CIDR (required unless the gateway is IPv6-only)"},
					&cli.StringFlag{Name: "ip", Usage: "the router's address on the external network, the SNAT source (with --external-net)"},
					&cli.StringFlag{Name: "next-hop", Usage: "the external router, inside --external-net (with --external-net)"},
					&cli.StringFlag{Name: "external-net6", Usage: "IPv6 external network CIDR, /48 to /126 (dual-stack gateway; with --ip6 and --next-hop6)"},
					&cli.StringFlag{Name: "ip6", Usage: "the router's IPv6 address on --external-net6, the NAT66 source of networks with IPv6"},
					&cli.StringFlag{Name: "next-hop6", Usage: "the external router's IPv6 address, inside --external-net6"},
					&cli.StringFlag{Name: "nodes", Usage: "gateway nodes, comma separated, first = active (required)"},
					&cli.StringFlag{Name: "physnet", Value: gateway.DefaultPhysnet, Usage: "physical network name gateway nodes map (ovn-bridge-mappings)"},
					&cli.StringSliceFlag{Name: "no-snat", Usage: "network routed without SNAT (repeatable)"},
					outputFlag(),
				},
				Action: routerGatewaySet,
			},
			{Name: "unset", Usage: "remove a router's gateway", ArgsUsage: "ROUTER", Action: routerGatewayUnset},
			{Name: "show", Usage: "show a router's gateway: nodes, the active one, NAT rules", ArgsUsage: "ROUTER",
				Flags: []cli.Flag{outputFlag()}, Action: routerGatewayShow},
		},
	}
}

func routerGatewaySet(c *cli.Context) error {
	// The IPv4 flags are required unless the IPv6 side is given (an
	// IPv6-only gateway) and no IPv4 flag is.
	required := []string{"nodes"}
	if !c.IsSet("external-net6") || c.IsSet("external-net") || c.IsSet("ip") || c.IsSet("next-hop") {
		required = []string{"external-net", "ip", "next-hop", "nodes"}
	}
	if err := needArgsFlags(c, 1, "ROUTER", required...); err != nil {
		return err
	}
	s := gateway.Spec{Router: c.Args().First(), Physnet: c.String("physnet"), NoSNAT: c.StringSlice("no-snat")}
	var err error
	if v := c.String("external-net"); v != "" {
		if s.ExternalNet, err = netip.ParsePrefix(v); err != nil {
			return usagef("%w", names.Bad("--external-net", v, "not a CIDR (want e.g. 198.18.100.0/24)"))
		}
	}
	if v := c.String("ip"); v != "" {
		if s.ExternalIP, err = netip.ParseAddr(v); err != nil {
			return usagef("%w", names.Bad("--ip", v, "not an IP address"))
		}
	}
	if v := c.String("next-hop"); v != "" {
		if s.NextHop, err = netip.ParseAddr(v); err != nil {
			return usagef("%w", names.Bad("--next-hop", v, "not an IP address"))
		}
	}
	// The IPv4 flags take IPv4 values; IPv6 has flags of its own (as net
	// create's --subnet6).
	for _, f := range []struct {
		flag, flag6 string
		is6         bool
	}{{"external-net", "external-net6", s.ExternalNet.Addr().Is6()}, {"ip", "ip6", s.ExternalIP.Is6()}, {"next-hop", "next-hop6", s.NextHop.Is6()}} {
		if f.is6 {
			return usagef("%w", names.Bad("--"+f.flag, c.String(f.flag), "an IPv6 value; give the IPv6 side with --%s", f.flag6))
		}
	}
	if v := c.String("external-net6"); v != "" {
		if s.ExternalNet6, err = netip.ParsePrefix(v); err != nil {
			return usagef("%w", names.Bad("--external-net6", v, "not a CIDR (want e.g. fd00:198:18:100::/64)"))
		}
	}
	if v := c.String("ip6"); v != "" {
		if s.ExternalIP6, err = netip.ParseAddr(v); err != nil {
			return usagef("%w", names.Bad("--ip6", v, "not an IP address"))
		}
	}
	if v := c.String("next-hop6"); v != "" {
		if s.NextHop6, err = netip.ParseAddr(v); err != nil {
			return usagef("%w", names.Bad("--next-hop6", v, "not an IP address"))
		}
	}
	for _, n := range strings.Split(c.String("nodes"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			s.Nodes = append(s.Nodes, n)
		}
	}
	return onNBSB(c, func(ctx context.Context, nb, sb client.Client) error {
		g, err := gateway.Set(ctx, nb, sb, s)
		if err != nil {
			return err
		}
		return printOut(c, g, func(w io.Writer) {
			if g.ExternalIP.IsValid() {
				fmt.Fprintf(w, "router %s gateway %s on %s (nodes %s, next hop %s)\n", g.Router, g.ExternalIP, g.ExternalNet, strings.Join(g.Nodes, ","), g.NextHop)
			}
			if g.ExternalIP6.IsValid() {
				fmt.Fprintf(w, "router %s gateway %s on %s (nodes %s, next hop %s)\n", g.Router, g.ExternalIP6, g.ExternalNet6, strings.Join(g.Nodes, ","), g.NextHop6)
			}
		})
	})
}

func routerGatewayUnset(c *cli.Context) error {
	if err := needArgs(c, 1, "ROUTER"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if err := gateway.Unset(ctx, nb, c.Args().First()); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "router %s gateway removed\n", c.Args().First())
		return nil
	})
}

// gatewayView is a gateway with the node that holds it now.
type gatewayView struct {
	gateway.Gateway `yaml:",inline"`
	// Active is the node where the chassisredirect port is bound now ("" when none).
	Active string `json:"active" yaml:"active"`
	// ActiveError says why Active is unknown (SB unreachable).
	ActiveError string `json:"activeError,omitempty" yaml:"activeError,omitempty"`
}

// readGateway reads router r's gateway and, from SB (best effort), its
// active node.
func readGateway(ctx context.Context, c *cli.Context, nb client.Client, r string) (*gatewayView, error) {
	g, err := gateway.Get(ctx, nb, r)
	if err != nil {
		return nil, err
	}
	v := &gatewayView{Gateway: *g}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sb, err := dbconn.ConnectSB(sctx, dbconn.ResolveSB(c.String("sb")))
	if err == nil {
		defer sb.Close()
		v.Active, err = gateway.Active(sctx, sb, g)
	}
	if err != nil {
		v.ActiveError = err.Error()
	}
	return v, nil
}

// gatewayRows prints a gateway's table rows (router show, gateway show).
func gatewayRows(w io.Writer, v *gatewayView) {
	active := v.Active
	switch {
	case v.ActiveError != "":
		active = "unknown (" + v.ActiveError + ")"
	case active == "":
		active = "none yet (bound once a gateway node's ovn-controller claims it; are they running?)"
	}
	var nodes []string
	for i, n := range v.Nodes {
		role := "standby"
		if n == v.Active {
			role = "active"
		}
		nodes = append(nodes, fmt.Sprintf("%s (priority %d, %s)", n, v.Priorities[i], role))
	}
	if v.ExternalIP.IsValid() {
		row(w, "EXTERNAL NET", v.ExternalNet.String())
		row(w, "EXTERNAL IP", v.ExternalIP.String())
		row(w, "NEXT HOP", v.NextHop.String())
	}
	if v.ExternalIP6.IsValid() {
		row(w, "EXTERNAL NET6", v.ExternalNet6.String())
		row(w, "EXTERNAL IP6", v.ExternalIP6.String())
		row(w, "NEXT HOP6", v.NextHop6.String())
	}
	row(w, "GATEWAY NODES", strings.Join(nodes, ", "))
	row(w, "ACTIVE", active)
	row(w, "PORT", v.Port+" (switch "+v.Switch+", physnet "+v.Physnet+")")
	if len(v.NoSNAT) > 0 {
		row(w, "NO SNAT", strings.Join(v.NoSNAT, ","))
	}
	row(w, "")
	row(w, "NAT", "TYPE", "LOGICAL", "EXTERNAL")
	for _, s := range v.SNAT {
		row(w, s.Network, "snat", s.LogicalIP, s.ExternalIP)
	}
}

func routerGatewayShow(c *cli.Context) error {
	if err := needArgs(c, 1, "ROUTER"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		v, err := readGateway(ctx, c, nb, c.Args().First())
		if err != nil {
			return err
		}
		return printOut(c, v, func(w io.Writer) {
			row(w, "ROUTER", v.Router)
			gatewayRows(w, v)
		})
	})
}

// onNBSB is onNB with a Southbound connection (--sb) too.
func onNBSB(c *cli.Context, f func(ctx context.Context, nb, sb client.Client) error) error {
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		sb, err := dbconn.ConnectSB(ctx, dbconn.ResolveSB(c.String("sb")))
		if err != nil {
			return err
		}
		defer sb.Close()
		return f(ctx, nb, sb)
	})
}
