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
	ports      map[string]*portFact // by UUID, of loaded networks
	portByName map[string]*portFact
	// byIP holds, per loaded network, the ports holding an address.
	byIP     map[string]map[netip.Addr][]*portFact
	networks map[string]*netFact // ovlmgr networks by name
	switches map[string]string   // switch UUID → network name
	groups   map[string]*groupFact
	routers  map[string]*routerFact // by UUID

	// lsp are the view's ports (read-only rows), routerOfLRP maps a
	// router port's name to its router's UUID.
	lsp         map[string]*nbdb.LogicalSwitchPort
	routerOfLRP map[string]string
	loaded      map[string]bool
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
	for _, u := range n.ports {
		p := f.ports[u]
		if p == nil || p.UUID == self {
			continue
		}
		entries := append([]string{}, p.Addresses...)
		if p.Dynamic != nil {
			entries = append(entries, *p.Dynamic)
		}
		for _, e := range entries {
			if fl := strings.Fields(e); len(fl) > 0 && strings.EqualFold(fl[0], mac) {
				return "port " + p.Name
			}
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
	f.load(network)
	for _, p := range f.byIP[network][ip.Unmap()] {
		if p.Chassis == node {
			mine = p
		} else if other == nil {
			other = p
		}
	}
	return mine, other
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
	if p := f.ports[uuid]; p != nil {
		return p
	}
	for _, n := range f.networks {
		if !f.loaded[n.Name] && slices.Contains(n.ports, uuid) {
			f.load(n.Name)
			return f.ports[uuid]
		}
	}
	return nil
}

// portNamed returns a port of an ovlmgr network by name.
func (f *facts) portNamed(name string) *portFact {
	if p := f.portByName[name]; p != nil {
		return p
	}
	for u, p := range f.lsp {
		if p.Name == name {
			return f.port(u)
		}
	}
	return nil
}

// load reads the ports of a network from the view, once.
func (f *facts) load(network string) {
	n := f.networks[network]
	if n == nil || f.loaded[network] {
		return
	}
	f.loaded[network] = true
	for _, u := range n.ports {
		p := f.lsp[u]
		if p == nil {
			continue
		}
		if p.Type == "router" {
			if r, ok := f.routerOfLRP[p.Options["router-port"]]; ok {
				n.Routers = append(n.Routers, r)
			}
			continue
		}
		dyn := ""
		if p.DynamicAddresses != nil {
			dyn = *p.DynamicAddresses
		}
		pf := &portFact{UUID: p.UUID, Name: p.Name, Chassis: p.Options[requestedChassis], Network: network,
			Addresses: p.Addresses, Dynamic: p.DynamicAddresses}
		for _, a := range addrsOf(append(append([]string{}, p.Addresses...), dyn)...) {
			if !containsAddr(pf.IPs, a) {
				pf.IPs = append(pf.IPs, a)
			}
		}
		f.ports[p.UUID] = pf
		f.portByName[p.Name] = pf
		if f.byIP[network] == nil {
			f.byIP[network] = map[netip.Addr][]*portFact{}
		}
		for _, a := range pf.IPs {
			f.byIP[network][a] = append(f.byIP[network][a], pf)
		}
	}
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
	f := &facts{ports: map[string]*portFact{}, portByName: map[string]*portFact{}, byIP: map[string]map[netip.Addr][]*portFact{},
		networks: map[string]*netFact{}, switches: map[string]string{}, groups: map[string]*groupFact{}, routers: map[string]*routerFact{},
		lsp: make(map[string]*nbdb.LogicalSwitchPort, len(lsps)), routerOfLRP: map[string]string{}, loaded: map[string]bool{}}
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
}

// startView connects the service's own NB client (its control
// certificate, the upstream endpoints) and monitors what facts need; it
// keeps trying in the background until ctx ends.
func startView(ctx context.Context, o Options, logger *log.Logger) *view {
	v := &view{err: fmt.Errorf("not connected to the NB yet")}
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
