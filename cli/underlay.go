package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovs/mtu"
)

// underlayCommand is `ovlmgr underlay show|path-mtu`: what the NB records
// about the deployment's underlay that sets container MTUs.
func underlayCommand() *cli.Command {
	return &cli.Command{
		Name:  "underlay",
		Usage: "the deployment's underlay as the NB records it: path MTU and encryption, and the container MTU they give",
		Description: `A container MTU derived from its node is the smaller of the node's encap link MTU and the
recorded underlay path MTU, minus Geneve (58 over IPv4, 78 over IPv6) and, while tunnels are
encrypted (ovlmgr encrypt on), ESP (46). Nodes record a smaller path at node join --path-mtu
where they may write the NB; behind the control service only an admin may: ovlmgr underlay
path-mtu. See docs/sites.md.`,
		Subcommands: []*cli.Command{
			{Name: "show", Usage: "recorded path MTU, encryption, and the container MTU over each underlay family", Flags: []cli.Flag{outputFlag()}, Action: underlayShow},
			{
				Name: "path-mtu", Usage: "record the largest outer packet that crosses between any two nodes (only lowers unless --raise)", ArgsUsage: "MTU",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "raise", Usage: "also raise a smaller recorded value (after a WAN upgrade; containers keep their MTU until re-attached)"}},
				Action: underlayPathMTU,
			},
		},
	}
}

// underlayView is `underlay show`'s output.
type underlayView struct {
	PathMTU   int  `json:"pathMTU" yaml:"pathMTU"`
	Encrypted bool `json:"encrypted" yaml:"encrypted"`
	// ContainerMTU4/6: a container's MTU over an IPv4/IPv6 underlay at the
	// recorded path MTU (0 when none is recorded: it depends on each
	// node's link).
	ContainerMTU4 int `json:"containerMTU4,omitempty" yaml:"containerMTU4,omitempty"`
	ContainerMTU6 int `json:"containerMTU6,omitempty" yaml:"containerMTU6,omitempty"`
}

func underlayShow(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		u, err := network.ReadUnderlay(ctx, nb)
		if err != nil {
			return err
		}
		v := underlayView{PathMTU: u.PathMTU, Encrypted: u.Encrypted}
		if u.PathMTU > 0 {
			v.ContainerMTU4 = mtu.Container(u.PathMTU, netip.IPv4Unspecified(), u.Encrypted)
			v.ContainerMTU6 = mtu.Container(u.PathMTU, netip.IPv6Unspecified(), u.Encrypted)
		}
		return printOut(c, v, func(w io.Writer) {
			path, cmtu := "none (every path carries the nodes' link MTU)", "the node's encap link MTU"
			if v.PathMTU > 0 {
				path, cmtu = strconv.Itoa(v.PathMTU), fmt.Sprintf("%d over an IPv4 underlay, %d over IPv6", v.ContainerMTU4, v.ContainerMTU6)
			}
			over := "Geneve 58 (IPv4 underlay) / 78 (IPv6)"
			enc := "off"
			if v.Encrypted {
				enc, over = "on (IPsec)", over+" + ESP 46"
			}
			if v.PathMTU > 0 {
				cmtu += " (or less on a smaller link)"
			} else {
				cmtu += " minus the overhead"
			}
			for _, kv := range [][2]string{{"PATH MTU", path}, {"ENCRYPTION", enc}, {"OVERHEAD", over}, {"CONTAINER MTU", cmtu}} {
				row(w, kv[0], kv[1])
			}
		})
	})
}

func underlayPathMTU(c *cli.Context) error {
	if err := needArgs(c, 1, "MTU"); err != nil {
		return err
	}
	m, err := strconv.Atoi(c.Args().First())
	if err != nil {
		return usagef("underlay path-mtu: MTU %q: not a number (want %d to %d)", c.Args().First(), network.MinPathMTU, network.MaxPathMTU)
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if c.Bool("raise") {
			if err := network.SetPathMTU(ctx, nb, m); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "underlay path MTU %d\n", m)
			return nil
		}
		now, err := network.LowerPathMTU(ctx, nb, m)
		if err != nil {
			return err
		}
		if now != m {
			fmt.Fprintf(c.App.Writer, "underlay path MTU %d kept (smaller than %d; --raise to raise it)\n", now, m)
			return nil
		}
		fmt.Fprintf(c.App.Writer, "underlay path MTU %d\n", m)
		return nil
	})
}
