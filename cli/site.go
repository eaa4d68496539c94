package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/site"
)

// siteCommand is `ovlmgr site`: linking OVN deployments through OVN-IC.
func siteCommand() *cli.Command {
	icFlags := []cli.Flag{
		&cli.StringFlag{Name: "ic-nb", Usage: "global OVN_IC_Northbound endpoint(s)", EnvVars: []string{dbconn.EnvICNB}},
		&cli.StringFlag{Name: "ic-sb", Usage: "global OVN_IC_Southbound endpoint(s)", EnvVars: []string{dbconn.EnvICSB}},
	}
	return &cli.Command{
		Name:  "site",
		Usage: "link OVN deployments (sites) through OVN Interconnection: global IC databases, transit switches, routes",
		Description: `Each site is a complete OVN deployment (its own NB, SB, ovn-northd) that runs an ovn-ic
connected to its NB/SB and to the global IC-NB/IC-SB. --nb is this site's Northbound;
--ic-nb/--ic-sb (or OVLMGR_IC_NB/OVLMGR_IC_SB) the global databases; with ssl: endpoints the
global --ca-cert/--cert/--private-key (OVLMGR_CA_CERT/OVLMGR_CERT/OVLMGR_PRIVATE_KEY), as for
every database. See docs/sites.md and docs/security.md ("TLS between sites").

Example:
   ovlmgr site init                                # IC_NB_Global/IC_SB_Global rows (once)
   ovlmgr site join east                           # this deployment is availability zone "east"
   ovlmgr lab exec n1 -- ovlmgr node join ... --ic-gateway   # (or node ic-gateway) its gateway chassis
   ovn-ic --ovnnb-db=... --ovnsb-db=... --ic-nb-db=ssl:... --ic-sb-db=ssl:... -p KEY -c CERT -C CA   # one per site
   ovlmgr site list                                # sites and their gateways
   ovlmgr site link blue --transit ts1 --ip 198.18.254.1/24 --nodes n1
   ovlmgr site routes blue                         # what ovn-ic learned from the other sites
   ovlmgr site sync                                # copy DNS names of linked routers' networks across sites`,
		Subcommands: []*cli.Command{
			{Name: "init", Usage: "create the global rows of the IC databases (idempotent)", Flags: icFlags, Action: siteInit},
			{Name: "join", Usage: "name this deployment's availability zone and turn on route exchange", ArgsUsage: "NAME", Action: siteJoin,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "encrypt", Usage: "also encrypt every tunnel of this site with IPsec, the gateways' included (as ovlmgr encrypt on)"}}},
			{Name: "list", Usage: "sites registered in IC-SB and their gateways", Flags: append(icFlags, outputFlag()), Action: siteList},
			{
				Name: "link", Usage: "put a router on a transit switch (created when missing) so its networks reach the other sites'", ArgsUsage: "ROUTER",
				Flags: append(icFlags,
					&cli.StringFlag{Name: "transit", Usage: "transit switch name (required)"},
					&cli.StringFlag{Name: "ip", Usage: "the router's address on the transit switch with its prefix, e.g. 198.18.254.1/24 (required)"},
					&cli.StringFlag{Name: "nodes", Usage: "this site's interconnection gateway nodes, comma separated, first = active (required)"},
				),
				Action: siteLink,
			},
			{Name: "unlink", Usage: "take a router off a transit switch", ArgsUsage: "ROUTER",
				Flags: append(icFlags, &cli.StringFlag{Name: "transit", Usage: "transit switch name (required)"}), Action: siteUnlink},
			{Name: "links", Usage: "this site's routers on transit switches", Flags: []cli.Flag{outputFlag()}, Action: siteLinks},
			{Name: "routes", Usage: "routes a router learned from other sites", ArgsUsage: "ROUTER", Action: siteRoutes},
			{Name: "sync", Usage: "publish this site's names of linked routers' networks and import the other sites' (DNS across sites)",
				Flags: icFlags, Action: siteSync},
		},
	}
}

func icEndpoint(c *cli.Context, flag string) (string, error) {
	v := c.String(flag)
	if v == "" {
		return "", usagef("--%s is required (or %s)", flag, map[string]string{"ic-nb": dbconn.EnvICNB, "ic-sb": dbconn.EnvICSB}[flag])
	}
	return v, nil
}

// onIC connects to the IC databases asked for (nb, icnb, icsb) and runs f.
func onIC(c *cli.Context, wantNB, wantICNB, wantICSB bool, f func(ctx context.Context, nb, icnb, icsb client.Client) error) error {
	ctx, cancel := callContext(c)
	defer cancel()
	var nb, icnb, icsb client.Client
	var err error
	if wantICNB {
		ep, err := icEndpoint(c, "ic-nb")
		if err != nil {
			return err
		}
		if icnb, err = dbconn.ConnectICNB(ctx, ep); err != nil {
			return err
		}
		defer icnb.Close()
	}
	if wantICSB {
		ep, err := icEndpoint(c, "ic-sb")
		if err != nil {
			return err
		}
		if icsb, err = dbconn.ConnectICSB(ctx, ep); err != nil {
			return err
		}
		defer icsb.Close()
	}
	if wantNB {
		if nb, err = dbconn.ConnectNB(ctx, dbconn.ResolveNB(c.String("nb"))); err != nil {
			return err
		}
		defer nb.Close()
	}
	return f(ctx, nb, icnb, icsb)
}

func siteInit(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onIC(c, false, true, true, func(ctx context.Context, _, icnb, icsb client.Client) error {
		if err := site.Init(ctx, icnb, icsb); err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, "IC databases ready")
		return nil
	})
}

func siteJoin(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if err := site.Join(ctx, nb, c.Args().First()); err != nil {
			return err
		}
		if c.Bool("encrypt") {
			if err := encrypt.Set(ctx, nb, true); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.App.Writer, "site %s: joined (NB_Global name, ic-route-adv, ic-route-learn); start this site's ovn-ic if it is not running\n", c.Args().First())
		return nil
	})
}

func siteList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onIC(c, true, false, true, func(ctx context.Context, nb, _, icsb client.Client) error {
		local, err := site.Local(ctx, nb)
		if err != nil {
			return err
		}
		sites, err := site.List(ctx, icsb, local)
		if err != nil {
			return err
		}
		return printOut(c, sites, func(w io.Writer) {
			row(w, "SITE", "LOCAL", "GATEWAY", "HOSTNAME", "ENCAPS")
			for _, s := range sites {
				loc := ""
				if s.Local {
					loc = "*"
				}
				if len(s.Gateways) == 0 {
					row(w, s.Name, dash(loc), "-", "-", "-")
				}
				for _, g := range s.Gateways {
					row(w, s.Name, dash(loc), g.Name, dash(g.Hostname), dash(strings.Join(g.Encaps, ",")))
				}
			}
		})
	})
}

func siteLink(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "ROUTER", "transit", "ip", "nodes"); err != nil {
		return err
	}
	ip, err := netip.ParsePrefix(c.String("ip"))
	if err != nil {
		return usagef("--ip %q: want ADDRESS/PREFIX, e.g. 198.18.254.1/24", c.String("ip"))
	}
	spec := site.LinkSpec{Router: c.Args().First(), Transit: c.String("transit"), IP: ip, Nodes: strings.Split(c.String("nodes"), ",")}
	return onIC(c, true, true, false, func(ctx context.Context, nb, icnb, _ client.Client) error {
		l, err := site.LinkRouter(ctx, nb, icnb, spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "router %s linked to transit switch %s as %s (gateway nodes %s); ovn-ic exchanges routes now\n", l.Router, l.Transit, l.IP, strings.Join(l.Nodes, ","))
		return nil
	})
}

func siteUnlink(c *cli.Context) error {
	if err := needArgsFlags(c, 1, "ROUTER", "transit"); err != nil {
		return err
	}
	return onIC(c, true, true, false, func(ctx context.Context, nb, icnb, _ client.Client) error {
		if err := site.Unlink(ctx, nb, icnb, c.Args().First(), c.String("transit")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "router %s unlinked from %s\n", c.Args().First(), c.String("transit"))
		return nil
	})
}

func siteLinks(c *cli.Context) error {
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		links, err := site.Links(ctx, nb)
		if err != nil {
			return err
		}
		return printOut(c, links, func(w io.Writer) {
			row(w, "ROUTER", "TRANSIT", "IP", "NODES")
			for _, l := range links {
				row(w, l.Router, l.Transit, dash(l.IP), dash(strings.Join(l.Nodes, ",")))
			}
		})
	})
}

func siteRoutes(c *cli.Context) error {
	if err := needArgs(c, 1, "ROUTER"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		rs, err := site.LearnedRoutes(ctx, nb, c.Args().First())
		if err != nil {
			return err
		}
		row(c.App.Writer, "PREFIX", "NEXT-HOP")
		for p, nh := range rs {
			row(c.App.Writer, p, nh)
		}
		return nil
	})
}

func siteSync(c *cli.Context) error {
	return onIC(c, true, true, false, func(ctx context.Context, nb, icnb, _ client.Client) error {
		res, err := site.SyncDNS(ctx, nb, icnb)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "published %d name(s) of site %s; imported %d name(s) of other sites into %d network(s)\n", res.Published, res.Site, res.Imported, res.Networks)
		return nil
	})
}

// resolveRemoteFrom turns --from SITE/NETWORK entries of a policy into the
// subnets that site published (IC-NB, --ic-nb).
func resolveRemoteFrom(c *cli.Context, s *policy.Spec) error {
	need := false
	for _, f := range s.From {
		if site.IsRemoteNetwork(f) {
			need = true
		}
	}
	if !need {
		return nil
	}
	ep := c.String("ic-nb")
	if ep == "" {
		return usagef("create policy %q: --from SITE/NETWORK needs --ic-nb (or %s): the global database where sites publish their networks", s.Name, dbconn.EnvICNB)
	}
	ctx, cancel := callContext(c)
	defer cancel()
	icnb, err := dbconn.ConnectICNB(ctx, ep)
	if err != nil {
		return err
	}
	defer icnb.Close()
	from, err := site.ResolveFrom(ctx, icnb, s.From)
	if err != nil {
		return fmt.Errorf("create policy %q: %w", s.Name, err)
	}
	s.From = from
	return nil
}
