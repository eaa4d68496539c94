package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// portCommand is `ovlmgr port`: container ports (list) and attaching
// hand-made network namespaces with the same code as CNI ADD/DEL.
func portCommand() *cli.Command {
	return &cli.Command{
		Name:  "port",
		Usage: "list container ports; attach or detach a network namespace on this node",
		Description: `A port is a container interface on a network: an OVN logical switch port named from
the container ID and interface name, a veth and its port in br-int on the node.

Example:
   ovlmgr port list --net web
   ovlmgr port attach web --netns /run/netns/c1 --name c1 --label app=shop -o json
   ovlmgr port detach c1 --netns /run/netns/c1`,
		Subcommands: []*cli.Command{
			{
				Name:        "list",
				Usage:       "list container ports",
				Description: "UP is OVN's Logical_Switch_Port up (bound on its node, flows installed). INSTALLED is the\nnode's own ovn-installed flag, shown for ports of the node this runs on (its Open_vSwitch db).\n\nExample:\n   ovlmgr port list --net web --node n1 -o json",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "net", Usage: "only ports of this network"},
					&cli.StringFlag{Name: "node", Usage: "only ports on this node (its system-id)"},
					outputFlag(),
				},
				Action: portList,
			},
			{
				Name:      "attach",
				Usage:     "put a network namespace on a network (what CNI ADD does), on the node this runs on",
				ArgsUsage: "NET",
				Description: `Runs in the node's network namespace with its environment (OVS_RUNDIR, ...), like
the CNI plugin. NB comes from --nb / OVLMGR_NB or the node's Open_vSwitch external_ids:ovlmgr.io/nb.
--name is the container ID (default: derived from the netns path) and the DNS name.

Example:
   ovlmgr port attach web --netns /run/netns/c1 --name c1
   ovlmgr port attach web --netns /run/netns/c2 --ifname eth1 --ip 198.19.0.50 --label app=db -o json`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "netns", Usage: "network namespace path (required)"},
					&cli.StringFlag{Name: "ifname", Value: "eth0", Usage: "interface name inside the namespace"},
					&cli.StringSliceFlag{Name: "ip", Usage: "requested address, IPv4 and/or IPv6 (repeat or comma list, one per family; default: OVN IPAM)"},
					&cli.StringFlag{Name: "name", Usage: "container name/ID (default: from the netns path)"},
					&cli.StringSliceFlag{Name: "label", Usage: "key=value label on the port (repeatable; service selectors match these)"},
					&cli.DurationFlag{Name: "ready-timeout", Value: attach.DefaultReadyTimeout, Usage: "wait this long for the address and ovn-installed"},
					outputFlag(),
				},
				Action: portAttach,
			},
			{
				Name:      "detach",
				Usage:     "remove what attach made (what CNI DEL does)",
				ArgsUsage: "NAME",
				Description: `NAME is the --name given to attach (or the container ID it printed).

Example:
   ovlmgr port detach c1 --netns /run/netns/c1`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "netns", Usage: "network namespace path (may be gone)"},
					&cli.StringFlag{Name: "ifname", Value: "eth0", Usage: "interface name inside the namespace"},
				},
				Action: portDetach,
			},
		},
	}
}

func portList(c *cli.Context) error {
	if err := needArgs(c, 0, "no arguments"); err != nil {
		return err
	}
	return onNB(c, func(ctx context.Context, nb client.Client) error {
		ps, err := ovnport.List(ctx, nb, ovnport.Filter{Network: c.String("net"), Node: c.String("node")})
		if err != nil {
			return err
		}
		pubs, err := publish.List(ctx, nb, publish.Filter{Network: c.String("net")})
		if err != nil {
			return err
		}
		byPort := map[string][]publish.Published{}
		for _, p := range pubs {
			byPort[p.Port] = append(byPort[p.Port], p)
		}
		local := localInstalled(c)
		out := make([]listedPort, 0, len(ps))
		for _, p := range ps {
			lp := listedPort{Port: p, Published: byPort[p.Name]}
			if inst, ok := local[p.Name]; ok {
				lp.Installed = &inst
			}
			out = append(out, lp)
		}
		return printOut(c, out, func(w io.Writer) {
			row(w, "NAME", "NETWORK", "NODE", "CONTAINER", "IFNAME", "IP", "MAC", "UP", "INSTALLED", "PUBLISHED")
			for _, p := range out {
				ip := "-"
				if p.IP.IsValid() {
					ip = p.IP.String()
				}
				inst := "-"
				if p.Installed != nil {
					inst = fmt.Sprint(*p.Installed)
				}
				var pub []string
				for _, x := range p.Published {
					pub = append(pub, fmt.Sprintf("%s->%d/%s", netip.AddrPortFrom(x.Address, uint16(x.HostPort)), x.ContainerPort, x.Protocol))
				}
				row(w, p.Name, p.Network, dash(p.Node), dash(shortID(p.Container)), p.IfName, ip, dash(p.MAC), fmt.Sprint(p.Up), inst, dash(strings.Join(pub, ",")))
			}
		})
	})
}

// listedPort is a port with, for ports of the node this runs on, whether
// its OVS interface carries ovn-installed.
type listedPort struct {
	*ovnport.Port `yaml:",inline"`
	Installed     *bool `json:"installed,omitempty" yaml:"installed,omitempty"`
	// Published are the port's published ports (CNI portMappings).
	Published []publish.Published `json:"published,omitempty" yaml:"published,omitempty"`
}

// localInstalled maps port names to ovn-installed for the interfaces in the
// local Open_vSwitch db (empty when there is none here).
func localInstalled(c *cli.Context) map[string]bool {
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Second)
	defer cancel()
	out := map[string]bool{}
	ovs, err := vsdb.Connect(ctx, dbconn.DefaultOVS())
	if err != nil {
		return out
	}
	defer ovs.Close()
	ifs, err := ovsport.List(ctx, ovs)
	if err != nil {
		return out
	}
	for _, i := range ifs {
		out[i.IfaceID] = i.Installed
	}
	return out
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// nsContainerID derives a container ID from a netns path when --name is not given.
func nsContainerID(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	h := sha256.Sum256([]byte(abs))
	return "netns-" + hex.EncodeToString(h[:8])
}

func portAttach(c *cli.Context) error {
	if err := needArgs(c, 1, "NET"); err != nil {
		return err
	}
	nsPath := c.String("netns")
	if nsPath == "" {
		return usagef("%s: --netns PATH is required", commandPath(c))
	}
	labels, err := parseLabels(c.StringSlice("label"))
	if err != nil {
		return usageError{err}
	}
	req := attach.AttachRequest{Network: c.Args().First(), NB: c.String("nb"), NetNS: nsPath, IfName: c.String("ifname"),
		ContainerID: c.String("name"), ReadyTimeout: c.Duration("ready-timeout"), Labels: labels}
	if req.ContainerID == "" {
		req.ContainerID = nsContainerID(nsPath)
	} else {
		req.Aliases = []string{req.ContainerID}
	}
	for _, s := range c.StringSlice("ip") {
		ip, err := netip.ParseAddr(s)
		switch {
		case err != nil || ip.Zone() != "" || ip.Is4In6():
			return usagef("--ip %q: want an IPv4 address such as 198.19.0.50 or an IPv6 one such as fd00:198:19::50", s)
		case ip.Is4() && req.IP.IsValid(), ip.Is6() && req.IP6.IsValid():
			return usagef("--ip %q: at most one IPv4 and one IPv6 address", strings.Join(c.StringSlice("ip"), ","))
		case ip.Is4():
			req.IP = ip
		default:
			req.IP6 = ip
		}
	}
	if req.NB != "" {
		req.NB = dbconn.ResolveNB(req.NB)
	}
	a, err := attach.Attach(c.Context, req, nil)
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", nsPath, req.Network, attachHint(err))
	}
	for _, f := range a.Linger {
		_ = f.Close()
	}
	return printOut(c, a, func(w io.Writer) {
		var addrs, gws []string
		if a.Address.IsValid() {
			addrs, gws = append(addrs, a.Address.String()), append(gws, a.Gateway.String())
		}
		if a.Address6.IsValid() {
			addrs, gws = append(addrs, a.Address6.String()), append(gws, a.Gateway6.String())
		}
		fmt.Fprintf(w, "port %s: %s mac %s gateway %s mtu %d on node %s (container %s, %s in %s)\n",
			a.Port, strings.Join(addrs, ","), a.MAC, strings.Join(gws, ","), a.MTU, a.Node, a.ContainerID, a.IfName, a.NetNS)
	})
}

func portDetach(c *cli.Context) error {
	if err := needArgs(c, 1, "NAME"); err != nil {
		return err
	}
	err := attach.Detach(c.Context, attach.DetachRequest{NB: c.String("nb"), ContainerID: c.Args().First(), IfName: c.String("ifname"),
		NetNS: c.String("netns"), Timeout: 30 * time.Second}, nil)
	if err != nil {
		return fmt.Errorf("detach %s: %w", c.Args().First(), attachHint(err))
	}
	return nil
}

// attachHint adds to an error of ovs/attach what the user of port
// attach/detach can do about it: the flag at fault or the command to run.
func attachHint(err error) error {
	var ne *attach.NetNSError
	switch {
	case errors.As(err, &ne):
		return errors.New(ne.Describe("--netns"))
	case errors.Is(err, attach.ErrNoNB):
		return fmt.Errorf("%w (give --nb or OVLMGR_NB, or run ovlmgr node join --nb ...)", err)
	case errors.Is(err, attach.ErrNodeNotJoined):
		return fmt.Errorf("%w (run ovlmgr node join)", err)
	}
	return err
}
