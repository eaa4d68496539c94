package control

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// facts is what the node policy knows of the NB beyond a transaction: who
// holds which address on which network, which port group and router belong
// to which network. The service derives it from its own monitor of a few
// columns (view); every decision taken on it is turned into wait guards on
// exactly the values relied on, so a stale view can refuse a write but
// never let a wrong one through. A network's ports are read from the view
// when a decision first needs them (load): a decision costs the ports of
// the networks it names, not the NB's.
type facts struct {
	networks map[string]*netFact // ovlmgr networks by name
	switches map[string]string   // switch UUID → network name
	groups   map[string]*groupFact
	routers  map[string]*routerFact // by UUID

	// lsp are the view's ports (read-only rows), routerOfLRP maps a
	// router port's name to its router's UUID.
	lsp         map[string]*nbdb.LogicalSwitchPort
	routerOfLRP map[string]string
	// nets are the ports of the networks loaded for this decision.
	nets map[string]*netPorts
	// kept, when set (facts of the view), keeps each network's ports
	// between decisions: a load derives again only the ports whose rows
	// changed. The decision holds it (hold) while it reads them.
	kept *portIndex
}

// portIndex is what the view keeps of its networks' ports between
// decisions (by switch UUID), so that a decision costs the ports that
// changed since the last one instead of all ports of the networks it
// names (3,000 a network: several ms and most of the service's CPU).
// It holds nothing the view's rows do not: each entry is derived from
// them and checked against them at every load.
type portIndex struct {
	mu   sync.Mutex
	nets map[string]*netPorts
}

// netPorts are one network's ports as the policy sees them, derived from
// rows: the view's cache replaces a row when it changes (never changes
// one in place), so an unchanged row pointer is an unchanged port.
type netPorts struct {
	rows   map[string]*nbdb.LogicalSwitchPort // by UUID, what ports came from
	ports  map[string]*portFact               // by UUID
	byName map[string]*portFact
	byIP   map[netip.Addr][]*portFact
	byMAC  map[string][]*portFact // lowercase MAC of an addresses entry
	// routerPorts are the router-type ports' router-port option (the
	// router port's name), by UUID.
	routerPorts map[string]string
	macsOf      map[string][]string // a port's byMAC keys, by UUID
	mark        map[string]uint64
	gen         uint64
}

func newNetPorts() *netPorts {
	return &netPorts{rows: map[string]*nbdb.LogicalSwitchPort{}, ports: map[string]*portFact{}, byName: map[string]*portFact{},
		byIP: map[netip.Addr][]*portFact{}, byMAC: map[string][]*portFact{}, routerPorts: map[string]string{}, macsOf: map[string][]string{}, mark: map[string]uint64{}}
}

// refresh brings np up to the ports of network (the switch's ports
// column, rows by UUID): ports whose row is new or changed are derived
// again, ports gone are dropped.
func (np *netPorts) refresh(network string, ports []string, rows map[string]*nbdb.LogicalSwitchPort) {
	np.gen++
	for _, u := range ports {
		row := rows[u]
		if row == nil {
			continue
		}
		if np.rows[u] != row {
			np.drop(u)
			np.add(network, row)
		}
		np.mark[u] = np.gen
	}
	for u := range np.rows {
		if np.mark[u] != np.gen {
			np.drop(u)
		}
	}
}

func (np *netPorts) add(network string, p *nbdb.LogicalSwitchPort) {
	np.rows[p.UUID] = p
	if p.Type == "router" {
		np.routerPorts[p.UUID] = p.Options["router-port"]
		return
	}
	dyn := ""
	if p.DynamicAddresses != nil {
		dyn = *p.DynamicAddresses
	}
	entries := append(append([]string{}, p.Addresses...), dyn)
	pf := &portFact{UUID: p.UUID, Name: p.Name, Chassis: p.Options[requestedChassis], Network: network,
		Addresses: p.Addresses, Dynamic: p.DynamicAddresses}
	for _, a := range addrsOf(entries...) {
		if !containsAddr(pf.IPs, a) {
			pf.IPs = append(pf.IPs, a)
		}
	}
	np.ports[p.UUID] = pf
	np.byName[p.Name] = pf
	for _, a := range pf.IPs {
		np.byIP[a] = append(np.byIP[a], pf)
	}
	var macs []string
	for _, e := range entries {
		if fl := strings.Fields(e); len(fl) > 0 && !slices.Contains(macs, strings.ToLower(fl[0])) {
			macs = append(macs, strings.ToLower(fl[0]))
		}
	}
	for _, m := range macs {
		np.byMAC[m] = append(np.byMAC[m], pf)
	}
	np.macsOf[p.UUID] = macs
}

func (np *netPorts) drop(u string) {
	if _, ok := np.rows[u]; !ok {
		return
	}
	delete(np.rows, u)
	delete(np.mark, u)
	delete(np.routerPorts, u)
	pf := np.ports[u]
	if pf == nil {
		return
	}
	delete(np.ports, u)
	if np.byName[pf.Name] == pf {
		delete(np.byName, pf.Name)
	}
	for _, a := range pf.IPs {
		unlist(np.byIP, a, pf)
	}
	for _, m := range np.macsOf[u] {
		unlist(np.byMAC, m, pf)
	}
	delete(np.macsOf, u)
}

// unlist removes pf from m's list at k, and k when its list is empty.
func unlist[K comparable](m map[K][]*portFact, k K, pf *portFact) {
	if l := slices.DeleteFunc(m[k], func(x *portFact) bool { return x == pf }); len(l) > 0 {
		m[k] = l
	} else {
		delete(m, k)
	}
}

// hold locks the ports the view keeps for the decision taking f (a no-op
// for facts not from the view) and drops those of networks gone; the
// decision calls the returned func when done.
func (f *facts) hold() (release func()) {
	if f == nil || f.kept == nil {
		return func() {}
	}
	f.kept.mu.Lock()
	for u := range f.kept.nets {
		if _, ok := f.switches[u]; !ok {
			delete(f.kept.nets, u)
		}
	}
	return f.kept.mu.Unlock
}

// portFact is a Logical_Switch_Port as the policy sees it.
type portFact struct {
	UUID, Name string
	Chassis    string // options:requested-chassis
	Network    string // the ovlmgr network whose switch holds it
	IPs        []netip.Addr
	// Addresses and Dynamic are the columns IPs come from, as read: the
	// guards compare them.
	Addresses []string
	Dynamic   *string
}

type netFact struct {
	UUID, Name string
	Domain     string
	// Routers are the UUIDs of the routers the network is attached to
	// (set by load).
	Routers []string
	// Gateways are its gateway addresses (external_ids).
	Gateways []netip.Addr
	ports    []string
}

type groupFact struct {
	Name, Network, Kind string
}

type routerFact struct {
	UUID, Name string
	// External are the addresses of its gateway port (gateway.PortName:
	// where published ports answer), MACs the MACs of all its ports.
	External []netip.Addr
	MACs     []string
}

// macHolder names the port of network other than self whose addresses
// carry mac, or the router port of a router the network is attached to
// with that MAC; "" when none.
func (f *facts) macHolder(network, mac, self string) string {
	n := f.network(network)
	if n == nil {
		return ""
	}
	for _, p := range f.nets[network].byMAC[strings.ToLower(mac)] {
		if p.UUID != self {
			return "port " + p.Name
		}
	}
	for _, r := range n.Routers {
		if rf := f.routers[r]; rf != nil {
			for _, m := range rf.MACs {
				if strings.EqualFold(m, mac) {
					return "a port of router " + rf.Name
				}
			}
		}
	}
	return ""
}

// own returns the port of network holding ip bound to node, and another
// port (of another node, or unbound) holding ip there.
func (f *facts) own(network string, ip netip.Addr, node string) (mine *portFact, other *portFact) {
	if f == nil {
		return nil, nil
	}
	for _, p := range f.holders(network, ip) {
		if p.Chassis == node {
			mine = p
		} else if other == nil {
			other = p
		}
	}
	return mine, other
}

// holders are the ports of network whose addresses carry ip.
func (f *facts) holders(network string, ip netip.Addr) []*portFact {
	f.load(network)
	if np := f.nets[network]; np != nil {
		return np.byIP[ip.Unmap()]
	}
	return nil
}

// network returns a network with its routers.
func (f *facts) network(name string) *netFact {
	if f.networks[name] == nil {
		return nil
	}
	f.load(name)
	return f.networks[name]
}

// port returns a port of an ovlmgr network by UUID.
func (f *facts) port(uuid string) *portFact {
	for _, np := range f.nets {
		if p := np.ports[uuid]; p != nil {
			return p
		}
	}
	for _, n := range f.networks {
		if f.nets[n.Name] == nil && slices.Contains(n.ports, uuid) {
			f.load(n.Name)
			return f.nets[n.Name].ports[uuid]
		}
	}
	return nil
}

// portNamed returns a port of an ovlmgr network by name.
func (f *facts) portNamed(name string) *portFact {
	for _, np := range f.nets {
		if p := np.byName[name]; p != nil {
			return p
		}
	}
	for u, p := range f.lsp {
		if p.Name == name {
			return f.port(u)
		}
	}
	return nil
}

// load reads the ports of a network from the view, once a decision:
// from what the view keeps of them (kept), brought up to date.
func (f *facts) load(network string) {
	n := f.networks[network]
	if n == nil || f.nets[network] != nil {
		return
	}
	var np *netPorts
	if f.kept != nil {
		if np = f.kept.nets[n.UUID]; np == nil {
			np = newNetPorts()
			f.kept.nets[n.UUID] = np
		}
	} else {
		np = newNetPorts()
	}
	np.refresh(network, n.ports, f.lsp)
	f.nets[network] = np
	n.Routers = nil
	for _, lrp := range np.routerPorts {
		if r, ok := f.routerOfLRP[lrp]; ok && !slices.Contains(n.Routers, r) {
			n.Routers = append(n.Routers, r)
		}
	}
	slices.Sort(n.Routers)
}

func (n *netFact) zone() string { return dns.Zone(n.Name, n.Domain) }

// addrsOf parses the addresses of a port: "MAC IP..." entries, "router",
// "unknown" and "dynamic" give none.
func addrsOf(cols ...string) []netip.Addr {
	var out []netip.Addr
	for _, c := range cols {
		for _, f := range strings.Fields(c) {
			if i := strings.IndexByte(f, '/'); i > 0 {
				f = f[:i]
			}
			if a, err := netip.ParseAddr(f); err == nil {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// build derives facts from rows of the monitored tables (read-only: the
// view's own rows); networks' ports are read by load.
func build(lsps []*nbdb.LogicalSwitchPort, lss []*nbdb.LogicalSwitch, pgs []*nbdb.PortGroup, lrs []*nbdb.LogicalRouter, lrps []*nbdb.LogicalRouterPort) *facts {
	f := &facts{networks: map[string]*netFact{}, switches: map[string]string{}, groups: map[string]*groupFact{}, routers: map[string]*routerFact{},
		lsp: make(map[string]*nbdb.LogicalSwitchPort, len(lsps)), routerOfLRP: map[string]string{}, nets: map[string]*netPorts{}}
	for _, p := range lsps {
		f.lsp[p.UUID] = p
	}
	lrpByUUID := map[string]*nbdb.LogicalRouterPort{}
	for _, p := range lrps {
		lrpByUUID[p.UUID] = p
	}
	for _, r := range lrs {
		rf := &routerFact{UUID: r.UUID, Name: r.Name}
		for _, u := range r.Ports {
			if p := lrpByUUID[u]; p != nil {
				f.routerOfLRP[p.Name] = r.UUID
				if p.Name == gateway.PortName(r.Name) {
					rf.External = append(rf.External, addrsOf(p.Networks...)...)
				}
				rf.MACs = append(rf.MACs, p.MAC)
			}
		}
		f.routers[r.UUID] = rf
	}
	for _, s := range lss {
		if !owner.Owned(s.ExternalIDs, owner.KindNetwork) {
			continue
		}
		f.networks[s.Name] = &netFact{UUID: s.UUID, Name: s.Name, Domain: s.ExternalIDs[dns.KeyDomain], ports: s.Ports,
			Gateways: addrsOf(s.ExternalIDs[owner.KeyGateway], s.ExternalIDs[dns.KeyGateway6])}
		f.switches[s.UUID] = s.Name
	}
	for _, g := range pgs {
		f.groups[g.Name] = &groupFact{Name: g.Name, Network: g.ExternalIDs[owner.KeyNetwork], Kind: g.ExternalIDs[owner.KeyKind]}
		if !owner.Owned(g.ExternalIDs, policy.KindPortGroup) {
			f.groups[g.Name].Kind = ""
		}
	}
	return f
}

// view is the service's monitor of the NB: the columns facts come from.
// One per service instance; it holds nothing the NB does not.
type view struct {
	mu  sync.Mutex
	nb  client.Client
	err error
	// ports are the networks' ports kept between decisions (portIndex).
	ports portIndex
}

// startView connects the service's own NB client (its control
// certificate, the upstream endpoints) and monitors what facts need; it
// keeps trying in the background until ctx ends.
func startView(ctx context.Context, o Options, logger *log.Logger) *view {
	v := &view{err: fmt.Errorf("not connected to the NB yet"), ports: portIndex{nets: map[string]*netPorts{}}}
	go func() {
		for ctx.Err() == nil {
			c, err := openView(ctx, o)
			v.mu.Lock()
			v.nb, v.err = c, err
			v.mu.Unlock()
			if err == nil {
				go func() { <-ctx.Done(); c.Close() }()
				return
			}
			logger.Printf("NB view: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return v
}

func openView(ctx context.Context, o Options) (client.Client, error) {
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := &tls.Config{Certificates: []tls.Certificate{o.Cert}, RootCAs: o.controlPool, MinVersion: tls.VersionTLS12}
	c, err := dbconn.Connect(cctx, m, o.NB, dbconn.Options{What: "NB view", TLS: cfg})
	if err != nil {
		return nil, err
	}
	lsp, ls, pg, lr, lrp := &nbdb.LogicalSwitchPort{}, &nbdb.LogicalSwitch{}, &nbdb.PortGroup{}, &nbdb.LogicalRouter{}, &nbdb.LogicalRouterPort{}
	_, err = c.Monitor(cctx, c.NewMonitor(
		client.WithTable(lsp, &lsp.Name, &lsp.Type, &lsp.Addresses, &lsp.DynamicAddresses, &lsp.Options),
		client.WithTable(ls, &ls.Name, &ls.Ports, &ls.ExternalIDs),
		client.WithTable(pg, &pg.Name, &pg.ExternalIDs),
		client.WithTable(lr, &lr.Name, &lr.Ports),
		client.WithTable(lrp, &lrp.Name, &lrp.MAC, &lrp.Networks)))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return c, nil
}

// facts returns the current facts; with sync, after the view has caught
// up with every transaction the NB committed before (an echo on the
// view's connection: the server sends a session's pending updates before
// answering it, and the client applies updates as they come).
// A view that is still connecting, or reconnecting after a leader change,
// is waited for until ctx ends.
func (v *view) facts(ctx context.Context, sync bool) (*facts, error) {
	var c client.Client
	for {
		v.mu.Lock()
		nb, err := v.nb, v.err
		v.mu.Unlock()
		if err == nil && sync {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = nb.Echo(sctx)
			cancel()
		}
		if err == nil {
			c = nb
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("NB view: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	tc := c.Cache()
	if tc == nil {
		return nil, fmt.Errorf("NB view: no cache")
	}
	f := build(nil, rows[nbdb.LogicalSwitch](tc.Table(nbdb.LogicalSwitchTable).RowsShallow()),
		rows[nbdb.PortGroup](tc.Table(nbdb.PortGroupTable).RowsShallow()),
		rows[nbdb.LogicalRouter](tc.Table(nbdb.LogicalRouterTable).RowsShallow()),
		rows[nbdb.LogicalRouterPort](tc.Table(nbdb.LogicalRouterPortTable).RowsShallow()))
	for u, m := range tc.Table(nbdb.LogicalSwitchPortTable).RowsShallow() {
		if p, ok := m.(*nbdb.LogicalSwitchPort); ok {
			f.lsp[u] = p
		}
	}
	f.kept = &v.ports
	return f, nil
}

func rows[T any](m map[string]model.Model) []*T {
	out := make([]*T, 0, len(m))
	for _, r := range m {
		if t, ok := r.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}
