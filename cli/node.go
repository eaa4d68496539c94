package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
)

// nodeCommand is `ovlmgr node`: join this machine to OVN, leave, list chassis.
func nodeCommand() *cli.Command {
	ovsFlag := &cli.StringFlag{Name: "ovs", Usage: "local Open_vSwitch db endpoint (default unix:$OVS_RUNDIR/db.sock, OVS_RUNDIR defaulting to /var/run/openvswitch)"}
	return &cli.Command{
		Name:  "node",
		Usage: "join this machine to OVN, leave, and list nodes (chassis)",
		Subcommands: []*cli.Command{
			{
				Name:  "join",
				Usage: "write this node's OVN settings to the local Open_vSwitch db and create br-int",
				Description: `Sets Open_vSwitch external_ids system-id, hostname, ovn-remote, ovn-encap-type=geneve,
ovn-encap-ip, ovn-bridge=br-int, ovn-bridge-datapath-type (and ovlmgr.io/nb for the CNI
plugin) and creates br-int. Start ovn-controller afterwards. With --external-iface the node
can be a gateway node: bridge br-ex holding that interface and ovn-bridge-mappings
external:br-ex (see docs/external.md). With the global --ca-cert, --cert and --private-key (the
node's certificate from ovlmgr pki issue --role node, named after its system-id) they are set
in the Open_vSwitch SSL row, which ovn-controller and the CNI plugin use for ssl: endpoints.

   ovlmgr node join --sb tcp:198.18.0.1:6642 --nb tcp:198.18.0.1:6641 --encap-ip 198.18.0.11
   ovlmgr node join --sb tcp:198.18.0.1:6642 --encap-ip 198.18.0.11 --external-iface eth1`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "sb", Usage: "OVN Southbound endpoint(s) for ovn-controller (required)"},
					&cli.StringFlag{Name: "nb", Usage: "OVN Northbound endpoint(s), recorded for ovlmgr tools on this node"},
					&cli.StringFlag{Name: "encap-ip", Usage: "this node's Geneve tunnel IP; must be on a local interface (required)"},
					&cli.BoolFlag{Name: "ic-gateway", Usage: "make this node an interconnection gateway of its site (ovn-is-interconn=true; see docs/sites.md)"},
					&cli.IntFlag{Name: "path-mtu", Usage: "largest outer packet that crosses from this node to every other node, when a routed or WAN underlay is smaller than the encap link; lowers the deployment's underlay path MTU in the NB (needs --nb; see docs/sites.md)"},
					&cli.StringFlag{Name: "system-id", Usage: "chassis name (default: the existing system-id, else the hostname)"},
					&cli.StringFlag{Name: "hostname", Usage: "chassis hostname (default: this machine's hostname)"},
					&cli.StringFlag{Name: "datapath", Value: "system", Usage: "br-int datapath type: system or netdev (userspace)"},
					&cli.BoolFlag{Name: "force", Usage: "replace another ovn-remote already set (and another bridge mapped to --physnet)"},
					&cli.StringFlag{Name: "external-iface", Usage: "make this a gateway node: the interface on the external network, put in --external-bridge"},
					&cli.StringFlag{Name: "external-bridge", Value: node.DefaultExternalBridge, Usage: "OVS bridge for --external-iface (created with br-int's datapath unless it exists)"},
					&cli.StringFlag{Name: "physnet", Value: node.DefaultPhysnet, Usage: "physical network name mapped to --external-bridge (ovn-bridge-mappings)"},
					ovsFlag,
				},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					if c.String("sb") == "" {
						return usagef("node join: --sb is required (e.g. --sb tcp:198.18.0.1:6642)")
					}
					if c.String("encap-ip") == "" {
						return usagef("node join: --encap-ip is required (this node's tunnel IP)")
					}
					ctx, cancel := callContext(c)
					defer cancel()
					var ext *node.External
					if c.IsSet("external-iface") {
						ext = &node.External{Interface: c.String("external-iface"), Bridge: c.String("external-bridge"), Physnet: c.String("physnet")}
					}
					res, err := node.Join(ctx, node.JoinOptions{
						OVS: c.String("ovs"), SB: c.String("sb"), NB: c.String("nb"), EncapIP: c.String("encap-ip"),
						SystemID: c.String("system-id"), Hostname: c.String("hostname"), Datapath: c.String("datapath"), Force: c.Bool("force"),
						TLS:      dbconn.TLSFilesFromEnv(),
						External: ext, PathMTU: c.Int("path-mtu"), ICGateway: c.Bool("ic-gateway"),
					})
					if errors.Is(err, node.ErrPathMTUAdminOnly) {
						return fmt.Errorf("%w; have an admin run `ovlmgr underlay path-mtu %d`, then join without --path-mtu", err, c.Int("path-mtu"))
					}
					if err != nil {
						return err
					}
					what := "joined"
					if !res.Changed {
						what = "already joined"
					}
					fmt.Fprintf(c.App.Writer, "node %s (hostname %s, encap geneve %s) %s\n", res.SystemID, res.Hostname, res.EncapIP, what)
					for _, w := range res.Warnings {
						fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
					}
					return nil
				},
			},
			{
				Name:  "leave",
				Usage: "undo join: remove the settings join wrote, br-int if join created it, and this node's pool ports in NB",
				Flags: []cli.Flag{ovsFlag, &cli.BoolFlag{Name: "force", Usage: "delete br-int even with ports still on it; leave even when NB cannot be reached to remove the pool ports"}},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					ctx, cancel := callContext(c)
					defer cancel()
					// Pool ports go through --nb / OVLMGR_NB, else the NB join recorded.
					nbEP := ""
					if c.String("nb") != "" || os.Getenv(dbconn.EnvNB) != "" {
						nbEP = dbconn.ResolveNB(c.String("nb"))
					} else if info, err := node.Local(ctx, c.String("ovs")); err == nil {
						nbEP = info.NB
					}
					if err := node.Leave(ctx, node.LeaveOptions{OVS: c.String("ovs"), Force: c.Bool("force"), NB: nbEP}); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, "left")
					return nil
				},
			},
			{
				Name:  "gc",
				Usage: "remove this node's container-port leftovers (OVS ports and veths without NB port, NB ports without OVS port)",
				Description: `Run on a node. Removes OVS ports and host veths of containers whose NB port no longer
exists (e.g. after net delete --force), and NB ports bound to this node whose OVS interface
and host veth are gone (e.g. a CNI DEL that ran while the NB was unreachable), together with
their DNS names and service backends. NB ports younger than --grace are left alone: an ADD
may be under way. Idempotent: a second run removes nothing.

   ovlmgr node gc
   ovlmgr node gc --dry-run -o json`,
				Flags: []cli.Flag{ovsFlag,
					&cli.DurationFlag{Name: "grace", Value: nodegc.DefaultGrace, Usage: "leave NB ports created less than this long ago (an ADD may be under way); 0s: no grace"},
					&cli.BoolFlag{Name: "dry-run", Usage: "report what would be removed, remove nothing"},
					outputFlag()},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					if c.Duration("grace") < 0 {
						return usagef("node gc: --grace %s: want a duration >= 0 such as 2m", c.Duration("grace"))
					}
					grace := c.Duration("grace")
					if grace == 0 {
						grace = -1 // no grace
					}
					nbEP := ""
					if c.String("nb") != "" || os.Getenv(dbconn.EnvNB) != "" {
						nbEP = dbconn.ResolveNB(c.String("nb"))
					}
					ctx, cancel := callContext(c)
					defer cancel()
					removed, err := nodegc.Run(ctx, nodegc.RunOptions{OVS: c.String("ovs"), NB: nbEP, Grace: grace, DryRun: c.Bool("dry-run")})
					if removed == nil {
						removed = []nodegc.Removed{}
					}
					if perr := printOut(c, removed, func(w io.Writer) {
						verb := "removed"
						if c.Bool("dry-run") {
							verb = "would remove"
						}
						for _, r := range removed {
							switch r.What {
							case "ovs-port":
								fmt.Fprintf(w, "%s OVS port and veth %s (container %s, ifname %s, network %s): NB port %s does not exist\n", verb, r.Name, r.Container, r.IfName, r.Network, r.Port)
							case "pool-port":
								fmt.Fprintf(w, "%s pool port %s (network %s): beyond the pool size or left half-made\n", verb, r.Name, r.Network)
							default:
								fmt.Fprintf(w, "%s NB port %s (container %s, ifname %s, network %s): no OVS interface or veth on this node\n", verb, r.Name, r.Container, r.IfName, r.Network)
							}
						}
						if len(removed) == 0 {
							fmt.Fprintln(w, "nothing to remove")
						}
					}); perr != nil {
						return perr
					}
					return err
				},
			},
			{
				Name:      "forget",
				Usage:     "remove a node that is gone for good from OVN: its container ports, pool ports and SB chassis",
				ArgsUsage: "NODE",
				Description: `Run by an admin (NB and SB) for a node that will not come back: a lost machine, or one
that left with node leave --force while containers were on it. Removes every container port
bound to NODE (its system-id) with its DNS names, service backends, published ports and
floating IPs, its unclaimed pool ports, and its SB Chassis and Chassis_Private rows. A node
that still shows as connected (ovlmgr node list) is refused unless --force. Idempotent.

   ovlmgr node forget n3 --dry-run
   ovlmgr node forget n3`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Usage: "forget the node even though it shows as connected"},
					&cli.BoolFlag{Name: "dry-run", Usage: "report what would be removed, remove nothing"},
					&cli.StringFlag{Name: "lab", Usage: "a local lab by name: its databases"},
					outputFlag()},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "NODE (the node's system-id, see ovlmgr node list)"); err != nil {
						return err
					}
					ctx, cancel := callContext(c)
					defer cancel()
					d, err := connectClusterDBs(ctx, c)
					if err != nil {
						return err
					}
					defer d.Close()
					f, err := chassis.Forget(ctx, d.nb, d.sb, c.Args().First(), chassis.ForgetOptions{Force: c.Bool("force"), DryRun: c.Bool("dry-run")})
					if errors.Is(err, chassis.ErrConnected) {
						return fmt.Errorf("%w (--force to forget it anyway)", err)
					}
					if f == nil {
						return err
					}
					if perr := printOut(c, f, func(w io.Writer) {
						verb := "removed"
						if c.Bool("dry-run") {
							verb = "would remove"
						}
						for _, p := range f.Ports {
							fmt.Fprintf(w, "%s port %s (container %s, ifname %s, network %s, %s)\n", verb, p.Name, p.Container, p.IfName, p.Network, p.IP)
						}
						fmt.Fprintf(w, "%s %d pool port(s)\n", verb, f.PoolPorts)
						if f.Chassis {
							fmt.Fprintf(w, "%s SB chassis %s\n", verb, f.Node)
						}
					}); perr != nil {
						return perr
					}
					return err
				},
			},
			{
				Name:  "list",
				Usage: "list every chassis in the Southbound db",
				Flags: []cli.Flag{outputFlag()},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					ctx, cancel := callContext(c)
					defer cancel()
					sb, err := dbconn.ConnectSB(ctx, dbconn.ResolveSB(c.String("sb")))
					if err != nil {
						return err
					}
					defer sb.Close()
					chs, err := chassis.List(ctx, sb)
					if err != nil {
						return err
					}
					return printOut(c, chs, func(w io.Writer) { chassisTable(w, chs) })
				},
			},
		},
	}
}

func chassisTable(w io.Writer, chs []chassis.Chassis) {
	row(w, "NAME", "HOSTNAME", "ENCAP", "CONNECTED", "PORTS")
	for _, ch := range chs {
		var enc []string
		for _, e := range ch.Encaps {
			enc = append(enc, e.Type+":"+e.IP)
		}
		row(w, ch.Name, ch.Hostname, strings.Join(enc, ","), strconv.FormatBool(ch.Connected), strconv.Itoa(ch.Ports))
	}
}
