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

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// policyCommand is `ovlmgr policy`: network policies as OVN ACLs.
func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "create, list, show and delete network policies",
		Description: `A policy filters traffic arriving at the containers of one network (--net). The
first matching policy decides: higher --priority first, and at equal priority deny
before allow. Traffic no policy matches follows the network's isolation: allowed
(default-allow) or dropped (default-deny; set with net create|update --isolation).
Allows are stateful: replies to allowed traffic pass without extra policies.

Example:
   ovlmgr net update app --isolation default-deny
   ovlmgr policy create web-to-app --net app --allow --from web --proto tcp --port 8080
   ovlmgr policy create no-ssh --net web --deny --from 198.19.9.0/24 --proto tcp --port 22 --log
   ovlmgr policy list --net app`,
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a policy", ArgsUsage: "NAME",
				Description: `NAME: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 63 characters, unique.
--from takes a network name (its containers' addresses), an IPv4 CIDR or address, or
any; repeat it for several sources. --port needs --proto tcp or udp; N or N-M.
--log logs matches in ovn-controller's log as acl_log ... name="NAME".
A --from network with no path to --net (not on the same router) is accepted with a
warning on stderr: nothing from it arrives to match until both are on one router.

Example:
   ovlmgr policy create web-to-app --net app --allow --from web --proto tcp --port 8080
   ovlmgr policy create ops --net app --allow --from 198.19.9.0/24 --from ops --proto tcp --port 9000-9100 --priority 200`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "net", Usage: "target network: the policy filters traffic to its containers (required)"},
					&cli.BoolFlag{Name: "allow", Usage: "allow matching traffic"},
					&cli.BoolFlag{Name: "deny", Usage: "drop matching traffic"},
					&cli.StringSliceFlag{Name: "from", Usage: "source: network, SITE/NETWORK of another site, IPv4 CIDR/address or any (repeatable; default any)"},
					&cli.StringFlag{Name: "proto", Usage: "tcp, udp or icmp (default: all IPv4)"},
					&cli.StringFlag{Name: "port", Usage: "destination port N or range N-M (tcp/udp)"},
					&cli.IntFlag{Name: "priority", Value: policy.DefaultPriority, Usage: fmt.Sprintf("%d..%d, higher is evaluated first", policy.MinPriority, policy.MaxPriority)},
					&cli.BoolFlag{Name: "log", Usage: "log matching packets in ovn-controller's log under the policy name"},
					&cli.StringFlag{Name: "ic-nb", Usage: "global OVN_IC_Northbound, to resolve --from SITE/NETWORK (a network of another site; docs/sites.md)", EnvVars: []string{dbconn.EnvICNB}},
					outputFlag(),
				},
				Action: policyCreate,
			},
			{
				Name: "list", Usage: "list policies in effective order", Action: policyList,
				Description: "ORDER is the evaluation position within the network; the network's isolation\ndecides what no policy matches.\n\nExample:\n   ovlmgr policy list\n   ovlmgr policy list --net app -o json",
				Flags:       []cli.Flag{&cli.StringFlag{Name: "net", Usage: "only policies on this network"}, outputFlag()},
			},
			{Name: "show", Usage: "show one policy", ArgsUsage: "NAME", Flags: []cli.Flag{outputFlag()}, Action: policyShow,
				Description: "Example:\n   ovlmgr policy show web-to-app"},
			{Name: "delete", Usage: "delete a policy", ArgsUsage: "NAME", Action: policyDelete,
				Description: "Example:\n   ovlmgr policy delete web-to-app"},
		},
	}
}

// netUpdateCommand is `ovlmgr net update`: change a network's isolation.
func netUpdateCommand() *cli.Command {
	return &cli.Command{
		Name: "update", Usage: "change a network's isolation", ArgsUsage: "NAME",
		Description: `default-deny drops all IP traffic to the network's containers that no policy
allows (their own connections and the replies still work); default-allow lets
everything in that no deny policy blocks.

Example:
   ovlmgr net update app --isolation default-deny`,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "isolation", Usage: "default-allow or default-deny (required)"}},
		Action: netUpdate,
	}
}

func netUpdate(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	name, mode := c.Args().First(), c.String("isolation")
	if mode == "" {
		return usagef("update network %q: --isolation is required (default-deny or default-allow)", name)
	}
	if err := policy.ValidateIsolation(mode); err != nil {
		return usagef("update network %q: %w", name, err)
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if err := policy.SetIsolation(ctx, nb, name, mode); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "network %s: isolation %s\n", name, mode)
		return nil
	})
}

func policyCreate(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	s := policy.Spec{Name: c.Args().First(), Network: c.String("net"), From: c.StringSlice("from"), Proto: c.String("proto"),
		Port: c.String("port"), Priority: c.Int("priority"), Log: c.Bool("log")}
	switch {
	case c.Bool("allow") && c.Bool("deny"):
		return usagef("create policy %q: --allow and --deny together: give exactly one", s.Name)
	case c.Bool("allow"):
		s.Action = policy.Allow
	case c.Bool("deny"):
		s.Action = policy.Deny
	}
	if err := resolveRemoteFrom(c, &s); err != nil {
		return err
	}
	if _, err := s.Validate(); err != nil {
		return usagef("create policy %q: %w", s.Name, err)
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		p, err := policy.Create(ctx, nb, s)
		if err != nil {
			return err
		}
		for _, w := range p.Warnings {
			fmt.Fprintf(c.App.ErrWriter, "ovlmgr: warning: policy %s: %s\n", p.Name, w)
		}
		return printOut(c, p, func(w io.Writer) {
			fmt.Fprintf(w, "policy %s created on network %s: %s\n", p.Name, p.Network, describe(p))
		})
	})
}

// describe summarises a policy in one line.
func describe(p *policy.Policy) string {
	what := "all IPv4"
	if p.Proto != "" {
		what = p.Proto
		if p.Port != "" {
			what += "/" + p.Port
		}
	}
	return fmt.Sprintf("%s %s from %s (priority %d)", p.Action, what, strings.Join(p.From, ","), p.Priority)
}

func policyList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		ps, err := policy.List(ctx, nb, c.String("net"))
		if err != nil {
			return err
		}
		iso, err := policy.Isolations(ctx, nb)
		if err != nil {
			return err
		}
		// Every network with a port group (or the one asked for), in name order:
		// its policies in evaluation order, then its isolation as the last line.
		byNet := map[string][]*policy.Policy{}
		for _, p := range ps {
			byNet[p.Network] = append(byNet[p.Network], p)
		}
		var nets []string
		for n := range iso {
			if _, has := byNet[n]; !has && (c.String("net") == "" || c.String("net") == n) {
				byNet[n] = nil
			}
		}
		for n := range byNet {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		return printOut(c, ps, func(w io.Writer) {
			row(w, "NETWORK", "ORDER", "NAME", "ACTION", "FROM", "PROTO", "PORT", "PRIORITY", "LOG")
			for _, n := range nets {
				for _, p := range byNet[n] {
					row(w, p.Network, strconv.Itoa(p.Order), p.Name, p.Action, strings.Join(p.From, ","), dash(p.Proto), dash(p.Port),
						strconv.Itoa(p.Priority), strconv.FormatBool(p.Log))
				}
				if m := iso[n]; m != "" {
					action := policy.Allow
					if m == policy.DefaultDeny {
						action = policy.Deny
					}
					row(w, n, strconv.Itoa(len(byNet[n])+1), "("+m+")", action, "any", "-", "-", "-", "-")
				}
			}
		})
	})
}

func policyShow(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		p, err := policy.Get(ctx, nb, c.Args().First())
		if err != nil {
			return err
		}
		return printOut(c, p, func(w io.Writer) {
			for _, kv := range [][2]string{
				{"NAME", p.Name}, {"NETWORK", p.Network}, {"ACTION", p.Action}, {"FROM", strings.Join(p.From, ",")},
				{"PROTO", dash(p.Proto)}, {"PORT", dash(p.Port)}, {"PRIORITY", strconv.Itoa(p.Priority)}, {"ORDER", strconv.Itoa(p.Order)},
				{"LOG", strconv.FormatBool(p.Log)}, {"ACL PRIORITY", strconv.Itoa(p.ACLPriority)}, {"MATCH", p.Match},
			} {
				row(w, kv[0], kv[1])
			}
		})
	})
}

func policyDelete(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		name := c.Args().First()
		if err := policy.Delete(ctx, nb, name); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "policy %s deleted\n", name)
		return nil
	})
}
