package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
)

// labCommand is `ovlmgr lab`: a multi-node OVN deployment on this machine.
func labCommand() *cli.Command {
	nameFlag := &cli.StringFlag{Name: "name", Value: lab.DefaultName, Usage: "lab name: prefixes its namespaces (1-8 of a-z 0-9)", EnvVars: []string{"OVLMGR_LAB"}}
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "lab directory (default " + lab.DefaultRoot + "/NAME)"}
	load := func(c *cli.Context) (*lab.Lab, error) {
		if d := c.String("dir"); d != "" {
			if !strings.Contains(d, "/") {
				d = "./" + d
			}
			return lab.Load(d)
		}
		return lab.Load(c.String("name"))
	}
	return &cli.Command{
		Name:  "lab",
		Usage: "run a multi-node OVN lab in network namespaces on this machine",
		Description: `A central namespace (OVN NB + SB databases, ovn-northd) and N node namespaces
(ovsdb-server, ovs-vswitchd with the userspace datapath, ovn-controller) on an
underlay bridge (198.18.0.0/24). Daemons keep running after the command exits.
NB and SB listen on TLS only: lab up makes the CAs, admin and per-node
certificates, and nodes write the NB through the control service (run by
this ovlmgr); lab env exports the admin certificate. --insecure makes them
plain TCP, which any node namespace can rewrite (debugging only).

   ovlmgr lab up --nodes 3
   eval "$(ovlmgr lab env)"
   ovlmgr node list
   ovlmgr lab exec n1 -- ovs-vsctl show
   ovlmgr lab restart n1 ovn-controller
   ovlmgr lab down`,
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "bring a lab up (or reuse it when it is already up and healthy)",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "nodes", Value: lab.DefaultNodes, Usage: "number of nodes (1-50)"},
					nameFlag, dirFlag,
					&cli.IntFlag{Name: "underlay-mtu", Value: lab.DefaultMTU, Usage: "underlay MTU; overlay MTU is 58 less"},
					&cli.IntFlag{Name: "central", Value: 1, Usage: "central members: 1 (standalone NB/SB) or 3, 5 (RAFT clusters, one ovn-northd each; see docs/ha.md)"},
					&cli.BoolFlag{Name: "insecure", Usage: "NB and SB on plain TCP without authentication, for debugging: any process in a node namespace can rewrite the whole overlay (default: TLS only, a control and a node CA, admin and per-node certificates, SB RBAC for chassis, nodes write the NB through the control service; see docs/security.md)", EnvVars: []string{lab.EnvInsecure}},
					&cli.BoolFlag{Name: "tls", Hidden: true, Usage: "TLS lab (the default; kept for scripts)"},
					&cli.StringFlag{Name: "gateways", Usage: "nodes plugged into the external network 198.18.100.0/24 (outside host 198.18.100.1), comma separated, or none (default n1,n2; n1 with one node; see docs/external.md)"},
					&cli.IntFlag{Name: "underlays", Value: 1, Usage: "routed underlay subnets 198.18.U.0/24 joined by a router namespace (nodes split in order; see docs/sites.md)"},
					&cli.IntFlag{Name: "wan-mtu", Usage: "MTU of the router's links to underlays 2 and up (default the underlay MTU; with --underlays)"},
					&cli.BoolFlag{Name: "underlay-ipv6", Usage: "Geneve tunnels over IPv6: nodes get fd00:198:18::N/64 on br-phy as ovn-encap-ip (databases stay on 198.18.0.0/24; container MTU = underlay MTU - 78)"},
					&cli.IntFlag{Name: "sites", Usage: "2 to 5 complete OVN deployments (sites NAME1, NAME2, ...; --nodes each) linked by OVN-IC: global IC-NB/IC-SB, an ovn-ic per site, n1 the gateway (see docs/sites.md)"},
					&cli.DurationFlag{Name: "wan-delay", Usage: "one-way delay (netem) on the router's links to underlays 2 and up, e.g. 10ms (with --underlays)"},
					&cli.BoolFlag{Name: "cni-server", Usage: "run each node's CNI server (ovlmgr-cni serve, the ovlmgr-cni beside this ovlmgr or on $PATH) once the node has joined: ADD and DEL from runtimes go to it (docs/cni.md)"},
				},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					if c.Bool("tls") && c.Bool("insecure") {
						return fmt.Errorf("lab up: --tls and --insecure together: choose one (TLS is the default)")
					}
					ctx, cancel := context.WithTimeout(c.Context, 3*time.Minute)
					defer cancel()
					if c.Int("sites") > 0 {
						if c.Bool("cni-server") {
							return fmt.Errorf("lab up: --cni-server with --sites: not supported (start `ovlmgr-cni serve` on a site's nodes by hand)")
						}
						return labUpSites(c, ctx)
					}
					var gateways []string
					if c.IsSet("gateways") {
						gateways = strings.Split(c.String("gateways"), ",")
					}
					var cniServer string
					if c.Bool("cni-server") {
						var err error
						if cniServer, err = lab.CNIPluginBin(filepath.Dir(selfExe())); err != nil {
							return fmt.Errorf("lab up: --cni-server: %w", err)
						}
					}
					l, err := lab.Up(ctx, lab.Options{Nodes: c.Int("nodes"), Name: c.String("name"), Dir: c.String("dir"),
						UnderlayMTU: c.Int("underlay-mtu"), Log: progressLog(c.App.ErrWriter), Central: c.Int("central"), TLS: c.Bool("tls"), Insecure: c.Bool("insecure"), ControlBin: selfExe(), Gateways: gateways,
						Underlays: c.Int("underlays"), WANMTU: c.Int("wan-mtu"), WANDelay: c.Duration("wan-delay"), UnderlayIPv6: c.Bool("underlay-ipv6"), CNIServerBin: cniServer})
					if err != nil {
						return err
					}
					fmt.Fprint(c.App.Writer, l.Env())
					if l.TLS == nil {
						insecureWarning(c, l)
					}
					nameArg := ""
					if l.Name != lab.DefaultName {
						nameArg = " --name " + l.Name
					}
					fmt.Fprintf(c.App.ErrWriter, `
# Next:
#   eval "$(ovlmgr lab env%s)"    # point ovlmgr at this lab
#   ovlmgr node list    # %d connected chassis
#   ovlmgr lab exec%s n1 -- ovs-vsctl show
#   ovlmgr lab status%s
#   ovlmgr lab down%s
`, nameArg, len(l.Nodes), nameArg, nameArg, nameArg)
					if x := l.External; x != nil {
						fmt.Fprintf(c.App.ErrWriter, "#   external network %s and %s (outside host %s, %s) on %s: docs/external.md\n"+
							"#   ovlmgr router gateway set R --external-net %s --ip %s --next-hop %s \\\n"+
							"#       --external-net6 %s --ip6 %s --next-hop6 %s --nodes %s\n"+
							"#   ovlmgr lab exec%s outside -- ping -c1 %s    # the outside host reaches the router\n",
							x.CIDR, x.CIDR6, x.HostIP, x.HostIP6, strings.Join(l.Gateways, ","), x.CIDR, lab.ExampleExternalIP, x.HostIP,
							x.CIDR6, lab.ExampleExternalIP6, x.HostIP6, strings.Join(l.Gateways, ","), nameArg, lab.ExampleExternalIP)
					}
					return nil
				},
			},
			{
				Name:  "env",
				Usage: "print the environment that points ovlmgr at the lab (eval \"$(ovlmgr lab env)\")",
				Flags: []cli.Flag{nameFlag, dirFlag},
				Action: func(c *cli.Context) error {
					if c.String("dir") == "" {
						// A multi-site lab: the IC databases; each site by --dir.
						if ss, err := lab.LoadSites(c.String("name")); err != nil || ss != nil {
							if err != nil {
								return err
							}
							fmt.Fprint(c.App.Writer, ss.ICEnv())
							for _, l := range ss.Labs {
								fmt.Fprintf(c.App.Writer, "# site %s: eval \"$(ovlmgr lab env --dir %s)\"\n", l.Name, l.Dir)
							}
							return nil
						}
					}
					l, err := load(c)
					if err != nil {
						return err
					}
					fmt.Fprint(c.App.Writer, l.Env())
					return nil
				},
			},
			{
				Name:  "status",
				Usage: "show the lab's daemons, chassis and tunnels; exit 1 when unhealthy",
				Flags: []cli.Flag{nameFlag, dirFlag, outputFlag()},
				Action: func(c *cli.Context) error {
					if c.String("dir") == "" {
						if ss, err := lab.LoadSites(c.String("name")); err != nil || ss != nil {
							if err != nil {
								return err
							}
							return labSitesStatus(c, ss)
						}
					}
					l, err := load(c)
					if err != nil {
						return err
					}
					ctx, cancel := callContext(c)
					defer cancel()
					st, err := l.Status(ctx)
					if err != nil {
						return err
					}
					if err := printOut(c, st, func(w io.Writer) { statusTable(w, st) }); err != nil {
						return err
					}
					if !st.Healthy() {
						return fmt.Errorf("lab %s is not healthy: %s", l.Name, strings.Join(st.Problems, "; "))
					}
					return nil
				},
			},
			{
				Name:      "exec",
				Usage:     "run a command in a node's namespace with its OVS/OVN environment and private dirs (/var/lib/cni, /etc/cni/net.d, runtime state)",
				ArgsUsage: "NODE -- COMMAND [ARGS...]   (NODE outside: the outside host of the external network, 198.18.100.1)",
				Flags:     []cli.Flag{nameFlag, dirFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() < 2 {
						return usagef("lab exec: want NODE -- COMMAND [ARGS...] (e.g. ovlmgr lab exec n1 -- ovs-vsctl show)")
					}
					args := c.Args().Slice()
					if args[1] == "--" {
						args = append(args[:1], args[2:]...)
					}
					if len(args) < 2 {
						return usagef("lab exec: missing COMMAND after %s", args[0])
					}
					l, err := load(c)
					if err != nil {
						return err
					}
					if args[0] == "outside" && l.External != nil {
						return l.External.Exec(args[1], args[2:]...)
					}
					n, err := l.Node(args[0])
					if err != nil {
						return err
					}
					return n.Exec(args[1], args[2:]...)
				},
			},
			{
				Name:      "restart",
				Usage:     "stop a daemon of the lab (SIGTERM, or SIGKILL with --kill) and start it again with the lab's command line",
				ArgsUsage: "NODE DAEMON",
				Description: `NODE is central (DAEMON nb, sb or northd; in a clustered lab also member k's
nbK, sbK, northdK, and nb-leader, sb-leader, northd-active for the current
holder) or a node n1, n2, ... (DAEMON ovsdb-server, ovs-vswitchd or ovn-controller). Returns once the lab is healthy
again. A daemon that is not running (see lab kill) is just started.

   ovlmgr lab restart central northd
   ovlmgr lab restart --kill --down-for 10s n1 ovs-vswitchd`,
				Flags: []cli.Flag{nameFlag, dirFlag,
					&cli.BoolFlag{Name: "kill", Usage: "stop with SIGKILL (no clean shutdown) instead of SIGTERM"},
					&cli.DurationFlag{Name: "down-for", Usage: "keep the daemon stopped this long before starting it (e.g. 10s)"},
				},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 2, "NODE DAEMON"); err != nil {
						return err
					}
					if c.Duration("down-for") < 0 {
						return usagef("lab restart: --down-for %v: must not be negative", c.Duration("down-for"))
					}
					l, err := load(c)
					if err != nil {
						return err
					}
					l.SetLog(c.App.ErrWriter)
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("down-for")+2*time.Minute)
					defer cancel()
					return l.Restart(ctx, c.Args().Get(0), c.Args().Get(1), lab.RestartOptions{Kill: c.Bool("kill"), DownFor: c.Duration("down-for")})
				},
			},
			{
				Name:      "kill",
				Usage:     "stop a daemon of the lab with SIGKILL and leave it down (lab restart starts it again)",
				ArgsUsage: "NODE DAEMON",
				Flags:     []cli.Flag{nameFlag, dirFlag},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 2, "NODE DAEMON"); err != nil {
						return err
					}
					l, err := load(c)
					if err != nil {
						return err
					}
					l.SetLog(c.App.ErrWriter)
					ctx, cancel := callContext(c)
					defer cancel()
					return l.Kill(ctx, c.Args().Get(0), c.Args().Get(1))
				},
			},
			{
				Name:  "down",
				Usage: "stop the lab's daemons and delete its namespaces and directory (idempotent)",
				Flags: []cli.Flag{nameFlag, dirFlag},
				Action: func(c *cli.Context) error {
					if c.String("dir") == "" {
						// A multi-site lab (lab up --sites) goes as a whole.
						if ss, err := lab.LoadSites(c.String("name")); err != nil || ss != nil {
							if err != nil {
								return err
							}
							ss.SetLog(c.App.ErrWriter)
							return ss.Down(c.Context)
						}
					}
					l, err := load(c)
					if err != nil {
						if strings.HasPrefix(err.Error(), "no lab at") {
							fmt.Fprintf(c.App.ErrWriter, "%v: nothing to do\n", err)
							return nil
						}
						return err
					}
					l.SetLog(c.App.ErrWriter)
					return l.Down(c.Context)
				},
			},
		},
	}
}

func statusTable(w io.Writer, st *lab.Status) {
	row(w, "NODE", "DAEMON", "PID", "ALIVE")
	for _, d := range st.Daemons {
		pid := "-"
		if d.PID > 0 {
			pid = strconv.Itoa(d.PID)
		}
		row(w, d.Node, d.Name, pid, strconv.FormatBool(d.Alive))
	}
	if len(st.Members) > 0 {
		row(w)
		row(w, "DB", "MEMBER", "ADDRESS", "ROLE", "TERM", "INDEX", "CONNECTED", "ELECTION-TIMER-MS")
		for _, m := range st.Members {
			role := m.Role
			if !m.Alive {
				role = "down"
			}
			row(w, m.DB, m.Daemon, m.Address, role, strconv.Itoa(m.Term), strconv.Itoa(m.Index), strconv.FormatBool(m.Connected), strconv.Itoa(m.ElectionTimer))
		}
		row(w)
		row(w, "NORTHD", "ALIVE", "STATE")
		for _, n := range st.Northds {
			row(w, n.Daemon, strconv.FormatBool(n.Alive), n.State)
		}
	}
	row(w)
	chassisTable(w, st.Chassis)
	row(w)
	row(w, "NODE", "TUNNEL-TO", "REMOTE-IP", "EGRESS")
	for _, t := range st.Tunnels {
		row(w, t.Node, t.RemoteNode, t.RemoteIP, t.Egress)
	}
	if len(st.Problems) > 0 {
		row(w)
		row(w, "PROBLEMS")
		for _, p := range st.Problems {
			row(w, p)
		}
	} else {
		row(w)
		row(w, "healthy")
	}
}

// insecureWarning says loudly, on stderr, that a plain lab's databases
// take writes from anyone on its underlay.
func insecureWarning(c *cli.Context, l *lab.Lab) {
	fmt.Fprintf(c.App.ErrWriter, "\n"+
		"WARNING: lab %s is INSECURE (--insecure): NB (%s) and SB (%s) listen on plain TCP without\n"+
		"WARNING: authentication or encryption; any process in any node namespace can read and rewrite the whole\n"+
		"WARNING: overlay. For debugging only: drop --insecure (and %s) for the TLS lab (docs/security.md).\n",
		l.Name, l.NBTCP, l.SBTCP, lab.EnvInsecure)
}

// labUpSites is `lab up --sites N`.
func labUpSites(c *cli.Context, ctx context.Context) error {
	nodes := 2
	if c.IsSet("nodes") {
		nodes = c.Int("nodes")
	}
	ss, err := lab.UpSites(ctx, lab.SitesOptions{Name: c.String("name"), Sites: c.Int("sites"), Nodes: nodes, Log: progressLog(c.App.ErrWriter),
		Insecure: c.Bool("insecure"), ControlBin: selfExe()})
	if err != nil {
		return err
	}
	fmt.Fprint(c.App.Writer, ss.ICEnv())
	insecure := false
	for _, l := range ss.Labs {
		if l.TLS == nil {
			insecureWarning(c, l)
			insecure = true
		}
	}
	if insecure {
		fmt.Fprintf(c.App.ErrWriter, "WARNING: the global IC-NB (%s) and IC-SB (%s) listen on plain TCP too: any site can rewrite\n"+
			"WARNING: every site's interconnection (transit switches, learned routes).\n", ss.ICNBTCP, ss.ICSBTCP)
	}
	fmt.Fprintf(c.App.ErrWriter, "\n# Next:\n")
	for _, l := range ss.Labs {
		fmt.Fprintf(c.App.ErrWriter, "#   site %s: eval \"$(ovlmgr lab env --dir %s)\"; ovlmgr lab exec --dir %s n1 -- ...\n", l.Name, l.Dir, l.Dir)
	}
	fmt.Fprintf(c.App.ErrWriter, "#   ovlmgr site list; ovlmgr site link ROUTER --transit ts1 --ip 198.18.254.K/24 --nodes n1 (docs/sites.md)\n#   ovlmgr lab down --name %s\n", ss.Name)
	return nil
}

// labSitesStatus is `lab status` of a multi-site lab: each site's table
// under its name, with its ovn-ic.
func labSitesStatus(c *cli.Context, ss *lab.Sites) error {
	ctx, cancel := callContext(c)
	defer cancel()
	sts, problems, err := ss.Status(ctx)
	if err != nil {
		return err
	}
	err = printOut(c, sts, func(w io.Writer) {
		for _, s := range sts {
			fmt.Fprintf(w, "site %s (ovn-ic alive: %v)\n", s.Site, s.OVNIC.Alive)
			statusTable(w, s.Status)
			fmt.Fprintln(w)
		}
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("lab %s is not healthy: %s", ss.Name, strings.Join(problems, "; "))
	}
	return nil
}
