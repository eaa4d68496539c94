package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovs/cniconf"
)

// cniCommand is `ovlmgr cni`: helpers for container runtimes.
func cniCommand() *cli.Command {
	return &cli.Command{
		Name:  "cni",
		Usage: "CNI helpers for container runtimes",
		Subcommands: []*cli.Command{
			{
				Name:      "config",
				Usage:     "write a ready conflist for a network",
				ArgsUsage: "NET",
				Description: `Checks that the network exists in NB, then prints the conflist, or writes it to
DIR/10-ovlmgr-NET.conflist with --out (e.g. /etc/cni/net.d). The plugin binary ovlmgr-cni must
be in the runtime's CNI_PATH; it reads NB and the node from the node's Open_vSwitch db.
The conflist's cniVersion is 1.0.0 (what podman 4.x and containerd 1.6/1.7 read) unless
--cni-version asks for another version the plugin speaks (0.3.0 0.3.1 0.4.0 1.0.0 1.1.0).

Example:
   ovlmgr cni config web
   ovlmgr cni config web --out /etc/cni/net.d
   ovlmgr cni config web --cni-version 1.1.0`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "out", Usage: "directory to write NET's conflist into"},
					&cli.IntFlag{Name: "mtu", Usage: "container MTU in the config (default: network's, else node's minus 58)"},
					&cli.StringFlag{Name: "cni-version", Value: cniconf.DefaultConfListVersion, Usage: "cniVersion of the conflist: " + strings.Join(cniconf.SupportedVersions(), ", ")},
				},
				Action: cniConfig,
			},
		},
	}
}

func cniConfig(c *cli.Context) error {
	if err := needArgs(c, 1, "NET"); err != nil {
		return err
	}
	name := c.Args().First()
	if err := network.ValidateName("NET", name); err != nil {
		return usageError{err}
	}
	if m := c.Int("mtu"); m != 0 && (m < 576 || m > 9000) {
		return usagef("--mtu %d: want 576 to 9000", m)
	}
	ver := c.String("cni-version")
	if !slices.Contains(cniconf.SupportedVersions(), ver) {
		return usagef("--cni-version %q: want one of %s", ver, strings.Join(cniconf.SupportedVersions(), ", "))
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		if _, err := network.Get(ctx, nb, name); err != nil {
			return fmt.Errorf("cni config %s: %w", name, err)
		}
		b, err := cniconf.ConfList(name, ver, c.Int("mtu"))
		if err != nil {
			return err
		}
		dir := c.String("out")
		if dir == "" {
			_, err := c.App.Writer.Write(b)
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cni config %s: %w", name, err)
		}
		path := filepath.Join(dir, "10-ovlmgr-"+name+".conflist")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("cni config %s: %w", name, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("cni config %s: %w", name, err)
		}
		fmt.Fprintln(c.App.Writer, path)
		return nil
	})
}
