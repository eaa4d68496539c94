package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovn-kubernetes/libovsdb/ovsdb/serverdb"

	"github.com/ovlmgr/ovlmgr/ovn/health"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Areas of the central checks.
const (
	AreaCluster = "cluster"
	AreaChassis = "chassis"
	AreaPorts   = "ports"
)

// Options configure Cluster.
type Options struct {
	// NB and SB are the database endpoint lists (comma separated).
	NB, SB string
	// Sync bumps NB_Global nb_cfg (what `ovn-nbctl --wait=hv sync` does)
	// and waits for ovn-northd and every chassis to catch up: the only way
	// to prove from the databases that these daemons are alive. Off by
	// default, since it writes to NB_Global, a row ovlmgr does not own.
	Sync bool
	// SyncTimeout bounds the wait of Sync (default 5s).
	SyncTimeout time.Duration
	// NBCtl and SBCtl are the control sockets of a clustered database's
	// members (optional, in endpoint order): with them the cluster checks
	// also read election timers and recent leader changes (cluster/status).
	NBCtl, SBCtl []string
}

// Chassis is what the central checks learned about one chassis; the node
// checks compare the node against it.
type Chassis struct {
	Name           string   `json:"name"`
	Hostname       string   `json:"hostname"`
	EncapIPs       []string `json:"encapIPs"`
	TransportZones []string `json:"transportZones,omitempty"`
	// Claimed: an ovn-controller has a Chassis_Private row for it.
	Claimed bool `json:"claimed"`
	// CaughtUp: its ovn-controller has seen the latest configuration.
	CaughtUp bool `json:"caughtUp"`
}

// State is what Cluster read, for the node checks.
type State struct {
	Chassis []Chassis `json:"chassis"`
	// SBUnreachable, when set, says why the SB could not be read: Chassis is
	// then unknown (not empty), and node checks that need it say so.
	SBUnreachable string `json:"sbUnreachable,omitempty"`
}

// ByName returns the chassis called name, or nil.
func (s *State) ByName(name string) *Chassis {
	if s == nil {
		return nil
	}
	for i := range s.Chassis {
		if s.Chassis[i].Name == name {
			return &s.Chassis[i]
		}
	}
	return nil
}

// Cluster runs the central checks: NB and SB reachable (and which member
// leads when clustered), ovn-northd caught up, every chassis claimed and
// caught up, no stale chassis, no chassis sharing an encap IP, every
// ovlmgr port bound, no address used twice on a network. It never fails as
// a whole: problems are checks with status fail.
func Cluster(ctx context.Context, o Options) (*Report, *State) {
	r := &Report{}
	st := &State{}
	nb, nbCs := connectDB(ctx, "NB", "OVN_Northbound", o.NB, dbconn.ConnectNB)
	r.Add(nbCs...)
	r.Add(raftChecks(ctx, "NB", "OVN_Northbound", o.NB, o.NBCtl)...)
	if nb != nil {
		defer nb.Close()
	}
	sb, sbCs := connectDB(ctx, "SB", "OVN_Southbound", o.SB, dbconn.ConnectSB)
	r.Add(sbCs...)
	r.Add(raftChecks(ctx, "SB", "OVN_Southbound", o.SB, o.SBCtl)...)
	if sb != nil {
		defer sb.Close()
	}
	// Each check reads the database it is about: with the NB down, the SB
	// still tells chassis and northd's lock; with the SB down, nothing
	// about chassis is claimed.
	if sb == nil {
		st.SBUnreachable = unreachable("SB", o.SB, sbCs)
		r.Add(Failf(AreaCluster, "northd", "fix SB reachability first", "not checked: %s", st.SBUnreachable))
		r.Add(Failf(AreaChassis, "chassis", "fix SB reachability first", "not checked: %s", st.SBUnreachable))
		if nb != nil {
			r.Add(Failf(AreaPorts, "ports", "fix SB reachability first", "bindings not checked: %s", st.SBUnreachable))
		}
		return r, st
	}
	var sbCfg int
	if nb == nil {
		why := unreachable("NB", o.NB, nbCs)
		cs, lockErr := northdLock(ctx, o.SB)
		if len(cs) == 0 {
			held := "holds its SB lock; whether it is caught up"
			if lockErr != nil { // lock not probed (ssl:)
				held = "ovn-northd"
			}
			cs = []Check{Warnf(AreaCluster, "northd", "fix NB reachability first",
				"%s is not checked: %s", held, why)}
		}
		r.Add(cs...)
		sbCfg = sbNbCfg(ctx, sb)
		cs, st.Chassis = chassisChecks(ctx, sb, sbCfg)
		r.Add(cs...)
		r.Add(Failf(AreaPorts, "ports", "fix NB reachability first", "not checked: %s", why))
		return r, st
	}
	sbCfg, cs := northd(ctx, nb, sb, o)
	r.Add(cs...)
	cs, st.Chassis = chassisChecks(ctx, sb, sbCfg)
	r.Add(cs...)
	r.Add(portChecks(ctx, nb, sb)...)
	r.Add(externalChecks(ctx, nb, sb)...)
	r.Add(ipsecChecks(ctx, nb, sb)...)
	return r, st
}

// unreachable is "NB unreachable at ENDPOINT: why" from connectDB's failed check.
func unreachable(what, endpoints string, cs []Check) string {
	for _, c := range cs {
		if c.Status == Fail {
			return c.Detail
		}
	}
	return fmt.Sprintf("%s unreachable at %s", what, endpoints)
}

// northdLock fails when nobody holds ovn-northd's lock on the SB (northd is
// not running, or not connected to the SB); it reads only the SB.
// The error is nil when somebody holds the lock.
func northdLock(ctx context.Context, sbEndpoints string) ([]Check, error) {
	err := health.NorthdRunning(ctx, sbEndpoints)
	var ue *health.UnavailableError
	if errors.As(err, &ue) && ue.Component == health.CompNorthd {
		return []Check{Failf(AreaCluster, "northd", "start ovn-northd (or check its --ovnsb-db and its log)", "%v", err)}, err
	}
	return nil, err
}

// sbNbCfg is SB_Global's nb_cfg (what chassis must have reached), 0 if unread.
func sbNbCfg(ctx context.Context, sb client.Client) int {
	var sg []*sbdb.SBGlobal
	if err := dbconn.Select(ctx, sb, &sbdb.SBGlobal{}, &sg); err != nil || len(sg) == 0 {
		return 0
	}
	return sg[0].NbCfg
}

// connectDB connects to a database and reports its reachability, and for
// each member of a cluster its role.
func connectDB(ctx context.Context, what, dbName, endpoints string, connect func(context.Context, string) (client.Client, error)) (client.Client, []Check) {
	name := strings.ToLower(what)
	eps, err := dbconn.ParseEndpoints(endpoints)
	if err != nil {
		return nil, []Check{Failf(AreaCluster, name, fmt.Sprintf("give a valid --%s endpoint (or $OVLMGR_%s)", name, what), "%s endpoint: %v", what, err)}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var roles []string
	leader := ""
	var down []string
	for _, ep := range eps {
		db, err := serverStatus(cctx, ep, dbName)
		if err != nil {
			down = append(down, ep)
			roles = append(roles, ep+" unreachable")
			continue
		}
		switch {
		case db.Model != serverdb.DatabaseModelClustered:
			roles = append(roles, ep+" "+db.Model)
			if leader == "" {
				leader = ep
			}
		case !db.Connected:
			down = append(down, ep)
			roles = append(roles, ep+" disconnected from its cluster")
		case db.Leader:
			leader = ep
			roles = append(roles, ep+" leader")
		default:
			roles = append(roles, ep+" follower")
		}
	}
	c, err := connect(cctx, endpoints)
	if err != nil {
		if len(eps) > 1 {
			return nil, []Check{Failf(AreaCluster, name, "restore quorum: start the cluster members that are down",
				"%s has no reachable leader: %s", what, strings.Join(roles, ", "))}
		}
		return nil, []Check{Failf(AreaCluster, name,
			fmt.Sprintf("start the %s ovsdb-server or point --%s (or $OVLMGR_%s) at it", what, name, what),
			"%s unreachable at %s: %v", what, endpoints, err)}
	}
	detail := fmt.Sprintf("%s reachable: %s", what, strings.Join(roles, ", "))
	if len(eps) > 1 && leader == "" {
		return c, []Check{Failf(AreaCluster, name, "restore quorum: start the missing cluster members", "%s cluster has no leader among %s", what, strings.Join(roles, ", "))}
	}
	if len(down) > 0 {
		return c, []Check{Warnf(AreaCluster, name, "start or reconnect "+strings.Join(down, ", "), "%s", detail)}
	}
	return c, []Check{Okf(AreaCluster, name, "%s", detail)}
}

// serverStatus reads the _Server row of database name at one endpoint.
func serverStatus(ctx context.Context, ep, name string) (*serverdb.Database, error) {
	m, err := serverdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	c, err := dbconn.Connect(ctx, m, ep, dbconn.Options{What: "_Server"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d := &serverdb.Database{Name: name}
	var rows []*serverdb.Database
	if err := dbconn.Select(ctx, c, d, &rows, model.Condition{Field: &d.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s serves no database %s", ep, name)
	}
	return rows[0], nil
}

// readGlobals reads NB_Global (nb) and SB_Global's nb_cfg (sb).
func readGlobals(ctx context.Context, nb, sb client.Client) (*nbdb.NBGlobal, int, error) {
	var ng []*nbdb.NBGlobal
	if err := dbconn.Select(ctx, nb, &nbdb.NBGlobal{}, &ng); err != nil {
		return nil, 0, err
	}
	if len(ng) == 0 {
		return nil, 0, fmt.Errorf("NB_Global has no row")
	}
	var sg []*sbdb.SBGlobal
	if err := dbconn.Select(ctx, sb, &sbdb.SBGlobal{}, &sg); err != nil {
		return nil, 0, err
	}
	cfg := 0
	if len(sg) > 0 {
		cfg = sg[0].NbCfg
	}
	return ng[0], cfg, nil
}

// northd checks that ovn-northd has translated NB into SB. It returns the
// SB nb_cfg the chassis must have reached.
func northd(ctx context.Context, nb, sb client.Client, o Options) (int, []Check) {
	const fix = "start ovn-northd (or check its --ovnnb-db/--ovnsb-db and its log)"
	g, sbCfg, err := readGlobals(ctx, nb, sb)
	if err != nil {
		return 0, []Check{Failf(AreaCluster, "northd", fix, "read NB_Global/SB_Global: %v", err)}
	}
	if cs, _ := northdLock(ctx, o.SB); cs != nil {
		return sbCfg, cs
	}
	if o.Sync {
		timeout := o.SyncTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		want := g.NbCfg + 1
		bump := dbops.NewTx(nb).AddAPI(nb.Where(g).Mutate(g, model.Mutation{Field: &g.NbCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1}))
		if err := bump.Transact(ctx); err != nil {
			return sbCfg, []Check{Failf(AreaCluster, "northd", "check NB write access", "bump NB_Global nb_cfg: %v", err)}
		}
		start := time.Now()
		deadline := start.Add(timeout)
		for {
			g, sbCfg, err = readGlobals(ctx, nb, sb)
			if err == nil && g.SbCfg >= want {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return sbCfg, []Check{Failf(AreaCluster, "northd", fix,
					"ovn-northd did not answer within %v (nb_cfg %d, sb_cfg %d): it is not running or not connected to both databases", timeout, want, g.SbCfg)}
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		// Give the chassis the rest of the time to follow.
		for g.HvCfg < want && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			if g2, c2, err := readGlobals(ctx, nb, sb); err == nil {
				g, sbCfg = g2, c2
			}
		}
		return sbCfg, []Check{Okf(AreaCluster, "northd", "ovn-northd active: NB change %d reached SB in %v", want, took.Round(time.Millisecond))}
	}
	if g.SbCfg < g.NbCfg {
		// A change may be in flight: look again once.
		time.Sleep(200 * time.Millisecond)
		if g2, c2, err := readGlobals(ctx, nb, sb); err == nil {
			g, sbCfg = g2, c2
		}
		if g.SbCfg < g.NbCfg {
			return sbCfg, []Check{Failf(AreaCluster, "northd", fix, "ovn-northd is behind: NB nb_cfg %d, sb_cfg %d", g.NbCfg, g.SbCfg)}
		}
	}
	var want, have int
	for _, count := range []func(context.Context, client.Client, []ovsdb.Condition) (int, error){
		dbops.Count[nbdb.LogicalSwitch], dbops.Count[nbdb.LogicalRouter],
	} {
		n, err := count(ctx, nb, nil)
		if err != nil {
			return sbCfg, []Check{Failf(AreaCluster, "northd", fix, "%v", err)}
		}
		want += n
	}
	have, err = dbops.Count[sbdb.DatapathBinding](ctx, sb, nil)
	if err != nil {
		return sbCfg, []Check{Failf(AreaCluster, "northd", fix, "%v", err)}
	}
	if have != want {
		time.Sleep(200 * time.Millisecond)
		have, _ = dbops.Count[sbdb.DatapathBinding](ctx, sb, nil)
		if have != want {
			return sbCfg, []Check{Failf(AreaCluster, "northd", fix,
				"ovn-northd is not caught up: NB has %d switches and routers, SB %d datapaths", want, have)}
		}
	}
	return sbCfg, []Check{Okf(AreaCluster, "northd", "caught up: nb_cfg %d, sb_cfg %d, hv_cfg %d; %d datapaths (use --sync to prove it is alive)", g.NbCfg, g.SbCfg, g.HvCfg, have)}
}

// chassisChecks checks every chassis: claimed by an ovn-controller (else
// stale), caught up with nb_cfg sbCfg, and no encap IP shared.
func chassisChecks(ctx context.Context, sb client.Client, sbCfg int) ([]Check, []Chassis) {
	var chs []*sbdb.Chassis
	var encs []*sbdb.Encap
	var privs []*sbdb.ChassisPrivate
	for _, q := range []struct {
		m   model.Model
		out interface{}
	}{{&sbdb.Chassis{}, &chs}, {&sbdb.Encap{}, &encs}, {&sbdb.ChassisPrivate{}, &privs}} {
		if err := dbconn.Select(ctx, sb, q.m, q.out); err != nil {
			return []Check{Failf(AreaChassis, "chassis", "check SB", "read chassis: %v", err)}, nil
		}
	}
	if len(chs) == 0 {
		return []Check{Warnf(AreaChassis, "chassis", "join nodes (`ovlmgr node join`) and start ovn-controller on them", "no chassis registered in SB")}, nil
	}
	encByUUID := map[string]*sbdb.Encap{}
	for _, e := range encs {
		encByUUID[e.UUID] = e
	}
	privByName := map[string]*sbdb.ChassisPrivate{}
	for _, p := range privs {
		privByName[p.Name] = p
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i].Name < chs[j].Name })
	var checks []Check
	var out []Chassis
	byIP := map[string][]string{}
	for _, c := range chs {
		ch := Chassis{Name: c.Name, Hostname: c.Hostname, TransportZones: c.TransportZones}
		for _, u := range c.Encaps {
			if e := encByUUID[u]; e != nil {
				ch.EncapIPs = append(ch.EncapIPs, e.IP)
				byIP[e.IP] = append(byIP[e.IP], c.Name)
			}
		}
		sort.Strings(ch.EncapIPs)
		name := "chassis " + c.Name
		p := privByName[c.Name]
		ch.Claimed = p != nil && p.Chassis != nil && *p.Chassis == c.UUID
		ch.CaughtUp = ch.Claimed && p.NbCfg >= sbCfg
		switch {
		case !ch.Claimed:
			checks = append(checks, Failf(AreaChassis, name,
				fmt.Sprintf("if node %s is gone: `ovn-sbctl chassis-del %s`; else start its ovn-controller", c.Name, c.Name),
				"stale: no ovn-controller has claimed chassis %s (encap %s): no Chassis_Private row", c.Name, strings.Join(ch.EncapIPs, ",")))
		case !ch.CaughtUp:
			checks = append(checks, Failf(AreaChassis, name,
				fmt.Sprintf("start ovn-controller on %s (or check its connection to SB)", c.Hostname),
				"ovn-controller on %s is not responding: it has seen configuration %d, current is %d", c.Hostname, p.NbCfg, sbCfg))
		default:
			checks = append(checks, Okf(AreaChassis, name, "connected and caught up (nb_cfg %d), hostname %s, encap %s", p.NbCfg, c.Hostname, strings.Join(ch.EncapIPs, ",")))
		}
		out = append(out, ch)
	}
	ips := make([]string, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	dup := false
	for _, ip := range ips {
		if names := byIP[ip]; len(names) > 1 {
			dup = true
			checks = append(checks, Failf(AreaChassis, "encap "+ip,
				"give every node its own ovn-encap-ip and system-id (`ovlmgr node join --encap-ip`), then delete the stale chassis",
				"chassis %s share encap IP %s: one node registered under two system-ids, or two nodes with one IP", strings.Join(names, " and "), ip))
		}
	}
	if !dup {
		checks = append(checks, Okf(AreaChassis, "encap IPs", "%d chassis, every encap IP unique", len(chs)))
	}
	return checks, out
}

// portChecks checks our container ports: bound to a chassis, and no IP or
// MAC used twice on one network.
func portChecks(ctx context.Context, nb, sb client.Client) []Check {
	lsp := &nbdb.LogicalSwitchPort{}
	var lsps []*nbdb.LogicalSwitchPort
	if err := dbconn.Select(ctx, nb, lsp, &lsps, model.Condition{Field: &lsp.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: owner.Selector(owner.KindPort)}); err != nil {
		return []Check{Failf(AreaPorts, "ports", "check NB", "read ports: %v", err)}
	}
	tx := dbops.NewTx(sb)
	pbQ := dbops.Query(tx, nil, func(pb *sbdb.PortBinding) []any { return []any{&pb.UUID, &pb.LogicalPort, &pb.Chassis} })
	chQ := dbops.Query(tx, nil, func(ch *sbdb.Chassis) []any { return []any{&ch.UUID, &ch.Name} })
	if err := tx.Transact(ctx); err != nil {
		return []Check{Failf(AreaPorts, "ports", "check SB", "read port bindings: %v", err)}
	}
	pbs, err := pbQ.Rows()
	if err != nil {
		return []Check{Failf(AreaPorts, "ports", "check SB", "%v", err)}
	}
	chs, err := chQ.Rows()
	if err != nil {
		return []Check{Failf(AreaPorts, "ports", "check SB", "%v", err)}
	}
	chName := map[string]string{}
	for _, c := range chs {
		chName[c.UUID] = c.Name
	}
	boundTo := map[string]string{}
	inSB := map[string]bool{}
	for _, pb := range pbs {
		inSB[pb.LogicalPort] = true
		if pb.Chassis != nil {
			boundTo[pb.LogicalPort] = chName[*pb.Chassis]
		}
	}
	sort.Slice(lsps, func(i, j int) bool { return lsps[i].Name < lsps[j].Name })
	var checks []Check
	unbound := 0
	type key struct{ net, addr string }
	users := map[key][]string{}
	for _, p := range lsps {
		ids := p.ExternalIDs
		who := Describe(p)
		node := ids[owner.KeyNode]
		switch b, ok := boundTo[p.Name]; {
		case !inSB[p.Name]:
			unbound++
			checks = append(checks, Failf(AreaPorts, "port "+p.Name, "check ovn-northd (see northd above)", "%s has no Port_Binding in SB yet", who))
		case !ok:
			unbound++
			checks = append(checks, Failf(AreaPorts, "port "+p.Name,
				fmt.Sprintf("on node %s: check the container's OVS port (iface-id %s) and ovn-controller, or remove the container (CNI DEL); a port whose container is gone: `ovlmgr node gc` on %s", node, p.Name, node),
				"%s is not bound on any node", who))
		case node != "" && b != node:
			checks = append(checks, Warnf(AreaPorts, "port "+p.Name, fmt.Sprintf("remove the stray OVS port on %s", b),
				"%s is bound on %s, not on its node %s", who, b, node))
		}
		net := ids[owner.KeyNetwork]
		for _, a := range portAddrs(p) {
			users[key{net, a}] = append(users[key{net, a}], p.Name)
		}
	}
	if unbound == 0 {
		checks = append(checks, Okf(AreaPorts, "bindings", "%d container ports, all bound", len(lsps)))
	}
	keys := make([]key, 0, len(users))
	for k := range users {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].net+keys[i].addr < keys[j].net+keys[j].addr })
	dups := 0
	for _, k := range keys {
		if ps := users[k]; len(ps) > 1 {
			dups++
			checks = append(checks, Failf(AreaPorts, "address "+k.addr,
				"delete one of the containers (its CNI DEL) and re-add it to get a fresh address",
				"%s is used by %d ports on network %s: %s", k.addr, len(ps), k.net, strings.Join(ps, ", ")))
		}
	}
	if dups == 0 {
		checks = append(checks, Okf(AreaPorts, "addresses", "no IP or MAC used twice on a network"))
	}
	return append(checks, routerMACChecks(ctx, nb, lsps)...)
}

// routerMACChecks flags container ports whose MAC is a router port's MAC:
// frames to the gateway would reach the container, or the reverse.
func routerMACChecks(ctx context.Context, nb client.Client, lsps []*nbdb.LogicalSwitchPort) []Check {
	lrps, err := dbops.SelectRows(ctx, nb, nil, func(r *nbdb.LogicalRouterPort) []any { return []any{&r.Name, &r.MAC} })
	if err != nil {
		return []Check{Failf(AreaPorts, "router MACs", "check NB", "read router ports: %v", err)}
	}
	routerMAC := map[string]string{}
	for _, r := range lrps {
		if hw, err := net.ParseMAC(r.MAC); err == nil {
			routerMAC[hw.String()] = r.Name
		}
	}
	var checks []Check
	for _, p := range lsps {
		for _, a := range portAddrs(p) {
			hw, err := net.ParseMAC(a)
			if err != nil {
				continue
			}
			if r, ok := routerMAC[hw.String()]; ok {
				checks = append(checks, Failf(AreaPorts, "mac "+hw.String(),
					"delete the container (its CNI DEL) and re-add it without that MAC: ovlmgr refuses router MACs now",
					"%s has MAC %s, the MAC of router port %s", Describe(p), hw, r))
			}
		}
	}
	if len(checks) == 0 {
		checks = append(checks, Okf(AreaPorts, "router MACs", "no container uses a router port's MAC"))
	}
	return checks
}

// portAddrs returns the MACs and IPs of a port (static and dynamic), each once.
func portAddrs(p *nbdb.LogicalSwitchPort) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		for _, f := range strings.Fields(s) {
			if f == "dynamic" || f == "unknown" || f == "router" {
				continue
			}
			if a, err := netip.ParseAddr(f); err == nil {
				f = a.String()
			}
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	for _, a := range p.Addresses {
		add(a)
	}
	if p.DynamicAddresses != nil {
		add(*p.DynamicAddresses)
	}
	return out
}

// Describe names a container port in ovlmgr terms: "container 3f2a9c1b0e77
// (eth0) on network web".
func Describe(p *nbdb.LogicalSwitchPort) string {
	ids := p.ExternalIDs
	c := ids[owner.KeyContainer]
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		return "port " + p.Name
	}
	s := "container " + c
	if f := ids[owner.KeyIfName]; f != "" {
		s += " (" + f + ")"
	}
	if n := ids[owner.KeyNetwork]; n != "" {
		s += " on network " + n
	}
	return s
}
