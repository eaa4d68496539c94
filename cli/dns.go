package main

import (
	"context"
	"io"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
)

// dnsCommand is `ovlmgr dns`: the names OVN answers.
func dnsCommand() *cli.Command {
	return &cli.Command{
		Name:  "dns",
		Usage: "list the DNS records OVN answers (container and service names, PTRs)",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list records of one network (--net) or of all",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "net", Usage: "only this network"}, outputFlag()},
				Action: dnsList,
			},
		},
	}
}

// dnsRecord is one row of `dns list`.
type dnsRecord struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

func dnsList(c *cli.Context) error {
	if err := needArgsFlags(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		nets := []string{c.String("net")}
		if nets[0] == "" {
			t, err := dns.ReadTopology(ctx, nb)
			if err != nil {
				return err
			}
			nets = nets[:0]
			for n := range t.Switches {
				nets = append(nets, n)
			}
			sort.Strings(nets)
		}
		out := []dnsRecord{}
		for _, n := range nets {
			recs, err := dns.Records(ctx, nb, n)
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(recs))
			for k := range recs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, dnsRecord{Network: n, Name: k, Value: recs[k]})
			}
		}
		return printOut(c, out, func(w io.Writer) {
			row(w, "NETWORK", "NAME", "VALUE")
			for _, r := range out {
				row(w, r.Network, r.Name, r.Value)
			}
		})
	})
}
