// Package site links OVN deployments (sites) through OVN Interconnection
// (OVN-IC): the global IC-NB and IC-SB databases, a site's availability
// zone name and route exchange in its NB_Global, transit switches, and a
// router's port on a transit switch with its gateway chassis. ovn-ic (one
// per site) does the rest: it creates each transit switch in every site's
// NB, the remote ports of other sites, and the routes learned from them.
// See docs/sites.md.
package site

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/icnbdb"
	"github.com/ovlmgr/ovlmgr/ovn/icsbdb"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// Keys OVN-IC reads and writes (ovn-ic(8), ovn-nb(5)).
const (
	// OptRouteAdv and OptRouteLearn in NB_Global options make ovn-ic
	// advertise a site's router subnets and learn the other sites'.
	OptRouteAdv   = "ic-route-adv"
	OptRouteLearn = "ic-route-learn"
	// KeyInterconnTS marks the Logical_Switch ovn-ic made for a transit switch.
	KeyInterconnTS = "interconn-ts"
	// KeyLearnedRoute marks a Logical_Router_Static_Route ovn-ic learned.
	KeyLearnedRoute = "ic-learned-route"
	// KeySubnets, suffixed with "<site>/<router>", lists on a Transit_Switch
	// (IC-NB external_ids) the subnets a site's linked router brings, so
	// every site can refuse overlaps before any route is exchanged.
	KeySubnets = "ovlmgr.io/subnets/"
)

// Errors callers branch on.
var (
	// ErrNotJoined: the local NB has no availability zone name (site join).
	ErrNotJoined = errors.New("this deployment has not joined a site: run `ovlmgr site join NAME` first")
	// ErrOverlap: a subnet overlaps one another site brings to linked
	// routers (at link time, and at network create/attach time through
	// the routes ovn-ic learned: router.ErrSiteOverlap).
	ErrOverlap = router.ErrSiteOverlap
	// ErrNoTransit: ovn-ic did not create the transit switch in this site's NB.
	ErrNoTransit = errors.New("ovn-ic has not created the transit switch in this site (is ovn-ic running for this site?)")
	// ErrNotLinked: the router has no port on that transit switch.
	ErrNotLinked = errors.New("not linked")
)

var allRows = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}

// Init creates the global rows of the IC databases (IC_NB_Global,
// IC_SB_Global) when missing; ovn-ic needs them. It is idempotent.
func Init(ctx context.Context, icnb, icsb client.Client) error {
	n, err := dbops.Count[icnbdb.ICNBGlobal](ctx, icnb, allRows)
	if err != nil {
		return fmt.Errorf("site init: read IC-NB: %w", err)
	}
	if n == 0 {
		tx := dbops.NewTx(icnb)
		tx.Create(&icnbdb.ICNBGlobal{ExternalIDs: owner.IDs(KindSite, "global", nil)})
		if err := tx.Transact(ctx); err != nil {
			return fmt.Errorf("site init: create IC_NB_Global: %w", err)
		}
	}
	n, err = dbops.Count[icsbdb.ICSBGlobal](ctx, icsb, allRows)
	if err != nil {
		return fmt.Errorf("site init: read IC-SB: %w", err)
	}
	if n == 0 {
		tx := dbops.NewTx(icsb)
		tx.Create(&icsbdb.ICSBGlobal{ExternalIDs: owner.IDs(KindSite, "global", nil)})
		if err := tx.Transact(ctx); err != nil {
			return fmt.Errorf("site init: create IC_SB_Global: %w", err)
		}
	}
	return nil
}

// KindSite marks rows of the site feature; KindLink a router's port (and
// its switch port and gateway chassis) on a transit switch; KindTransit
// a Transit_Switch ovlmgr created in IC-NB.
const (
	KindSite    = "site"
	KindLink    = "site-link"
	KindTransit = "transit-switch"
)

// ValidateName checks a site (availability zone) or transit switch name.
func ValidateName(field, name string) error { return names.Validate(field, name) }

func readGlobal(ctx context.Context, nb client.Client) (*nbdb.NBGlobal, error) {
	gs, err := dbops.SelectRows[nbdb.NBGlobal](ctx, nb, allRows)
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, errors.New("NB_Global has no row: has ovn-northd ever connected to this Northbound database?")
	}
	return gs[0], nil
}

// Join names this deployment's availability zone (NB_Global name) and turns
// on route advertising and learning (NB_Global options ic-route-adv,
// ic-route-learn). ovn-ic, started afterwards for this site with
// --ovnnb-db/--ovnsb-db/--ic-nb-db/--ic-sb-db, registers the zone in IC-SB.
// Joining again under another name is refused (the zone's ports and routes
// in IC-SB carry its name).
func Join(ctx context.Context, nb client.Client, name string) error {
	if err := ValidateName("site name", name); err != nil {
		return fmt.Errorf("site join: %w", err)
	}
	g, err := readGlobal(ctx, nb)
	if err != nil {
		return fmt.Errorf("site join %s: %w", name, err)
	}
	if g.Name != "" && g.Name != name {
		return fmt.Errorf("site join %s: %w", name, names.Says("site name", name, "this deployment is already site %q: leave it first", g.Name))
	}
	tx := dbops.NewTx(nb)
	upd := &nbdb.NBGlobal{UUID: g.UUID, Name: name}
	tx.AddAPI(nb.Where(upd).Update(upd, &upd.Name))
	dbops.Typed[nbdb.NBGlobal](tx).SetKeys(dbops.ByUUID(g.UUID), "options", map[string]string{OptRouteAdv: "true", OptRouteLearn: "true"})
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("site join %s: %w", name, err)
	}
	return nil
}

// Local returns this deployment's site name ("" when it has not joined).
func Local(ctx context.Context, nb client.Client) (string, error) {
	g, err := readGlobal(ctx, nb)
	if err != nil {
		return "", fmt.Errorf("read site name: %w", err)
	}
	return g.Name, nil
}

// Gateway is a site's interconnection gateway chassis as IC-SB lists it.
type Gateway struct {
	Name     string   `json:"name"`
	Hostname string   `json:"hostname"`
	Encaps   []string `json:"encaps"` // "geneve:198.18.11.11"
}

// Site is one availability zone in IC-SB.
type Site struct {
	Name     string    `json:"name"`
	Local    bool      `json:"local"`
	Gateways []Gateway `json:"gateways"`
}

// List reads the sites registered in IC-SB (by their ovn-ic) and their
// gateways; local names this deployment's site (marked Local).
func List(ctx context.Context, icsb client.Client, local string) ([]Site, error) {
	tx := dbops.NewTx(icsb)
	azQ := dbops.Query[icsbdb.AvailabilityZone](tx, allRows)
	gwQ := dbops.Query[icsbdb.Gateway](tx, allRows)
	encQ := dbops.Query[icsbdb.Encap](tx, allRows)
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	azs, err := azQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	gws, err := gwQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	encs, err := encQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	enc := map[string]string{}
	for _, e := range encs {
		enc[e.UUID] = e.Type + ":" + e.IP
	}
	byUUID := map[string]*Site{}
	var out []*Site
	for _, az := range azs {
		s := &Site{Name: az.Name, Local: az.Name == local, Gateways: []Gateway{}}
		byUUID[az.UUID] = s
		out = append(out, s)
	}
	for _, g := range gws {
		s := byUUID[g.AvailabilityZone]
		if s == nil {
			continue
		}
		gw := Gateway{Name: g.Name, Hostname: g.Hostname, Encaps: []string{}}
		for _, u := range g.Encaps {
			gw.Encaps = append(gw.Encaps, enc[u])
		}
		sort.Strings(gw.Encaps)
		s.Gateways = append(s.Gateways, gw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	res := make([]Site, 0, len(out))
	for _, s := range out {
		sort.Slice(s.Gateways, func(i, j int) bool { return s.Gateways[i].Name < s.Gateways[j].Name })
		res = append(res, *s)
	}
	return res, nil
}

// LinkSpec links a router to a transit switch.
type LinkSpec struct {
	Router  string
	Transit string
	// IP is the router's address on the transit switch with its prefix
	// (one /24 or so shared by every site's router on that switch).
	IP netip.Prefix
	// Nodes are this site's interconnection gateway chassis for the port,
	// highest priority first (nodes joined with --ic-gateway).
	Nodes []string
	// Wait bounds each wait for ovn-ic: to create the transit switch in
	// this site's NB, and to give the switch port its tunnel key (default
	// 10 s each).
	Wait time.Duration
}

// Link is a router's port on a transit switch.
type Link struct {
	Router  string   `json:"router"`
	Transit string   `json:"transit"`
	IP      string   `json:"ip"`
	Nodes   []string `json:"nodes"`
	Port    string   `json:"port"` // Logical_Router_Port name
}

// PortNames returns the router port and switch port names of site's link
// of rtr to transit. The switch port's name is global: ovn-ic creates a
// remote port of that name in every other site's copy of the transit
// switch, so it carries the site's name.
func PortNames(site, rtr, transit string) (lrp, lsp string) {
	return rtr + "-" + transit, transit + "-" + site + "-" + rtr
}

// routerSubnets returns the IPv4 subnets of router's networks.
func routerSubnets(ctx context.Context, nb client.Client, rtr string) ([]netip.Prefix, error) {
	nets, err := routerNets(ctx, nb, rtr)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, n := range nets {
		out = append(out, n.subnet)
	}
	return out, nil
}

type namedNet struct {
	name   string
	subnet netip.Prefix
}

// routerNets returns router's networks with their IPv4 subnets.
func routerNets(ctx context.Context, nb client.Client, rtr string) ([]namedNet, error) {
	r, err := router.Get(ctx, nb, rtr)
	if err != nil {
		return nil, err
	}
	var out []namedNet
	for _, a := range r.Networks {
		if p, err := netip.ParsePrefix(a.Gateway); err == nil && p.Addr().Is4() {
			out = append(out, namedNet{a.Network, p.Masked()})
		}
	}
	return out, nil
}

// KeyNets, suffixed with "<site>/<router>", lists on a Transit_Switch the
// router's networks as NAME=SUBNET, comma separated: what lets a policy
// of another site name them (ResolveFrom).
const KeyNets = "ovlmgr.io/nets/"

func netsValue(nets []namedNet) string {
	parts := make([]string, len(nets))
	for i, n := range nets {
		parts[i] = n.name + "=" + n.subnet.String()
	}
	return strings.Join(parts, ",")
}

// RemoteNetworks returns the networks other sites published on transit
// switches, keyed "SITE/NETWORK".
func RemoteNetworks(ctx context.Context, icnb client.Client) (map[string]netip.Prefix, error) {
	tss, err := dbops.SelectRows[icnbdb.TransitSwitch](ctx, icnb, allRows)
	if err != nil {
		return nil, fmt.Errorf("read transit switches: %w", err)
	}
	out := map[string]netip.Prefix{}
	for _, ts := range tss {
		for k, v := range ts.ExternalIDs {
			key, ok := strings.CutPrefix(k, KeyNets)
			if !ok {
				continue
			}
			siteName, _, _ := strings.Cut(key, "/")
			for _, e := range strings.Split(v, ",") {
				name, sub, ok := strings.Cut(e, "=")
				if p, err := netip.ParsePrefix(sub); ok && err == nil {
					out[siteName+"/"+name] = p
				}
			}
		}
	}
	return out, nil
}

// IsRemoteNetwork reports whether a policy source names a network of
// another site (SITE/NETWORK) rather than a CIDR (ADDRESS/BITS, valid or not).
func IsRemoteNetwork(from string) bool {
	before, _, ok := strings.Cut(from, "/")
	if !ok {
		return false
	}
	_, err := netip.ParseAddr(before)
	return err != nil
}

// ResolveFrom replaces each policy source of the form SITE/NETWORK (a
// network of another site's linked router) by its subnet; other entries
// (local network names, CIDRs, any) are kept as they are.
func ResolveFrom(ctx context.Context, icnb client.Client, from []string) ([]string, error) {
	var remote map[string]netip.Prefix
	out := make([]string, 0, len(from))
	for _, f := range from {
		if !IsRemoteNetwork(f) {
			out = append(out, f)
			continue
		}
		if remote == nil {
			var err error
			if remote, err = RemoteNetworks(ctx, icnb); err != nil {
				return nil, err
			}
		}
		p, ok := remote[f]
		if !ok {
			known := make([]string, 0, len(remote))
			for k := range remote {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, names.Says("from", f, "is no network of another site's linked router (known: %s)", strings.Join(known, ", "))
		}
		out = append(out, p.String())
	}
	return out, nil
}

// Overlap is one conflict between a subnet here and one of another site.
type Overlap struct {
	Subnet      netip.Prefix
	OtherSite   string
	OtherRouter string
	OtherSubnet netip.Prefix
}

func (o Overlap) String() string {
	return fmt.Sprintf("%s overlaps %s of router %s in site %s", o.Subnet, o.OtherSubnet, o.OtherRouter, o.OtherSite)
}

// published reads the subnets other sites' linked routers published on
// every transit switch (or only on transit when set), keyed by
// "site/router"; entries of site self are left out.
func published(ctx context.Context, icnb client.Client, transit, self string) (map[string][]netip.Prefix, error) {
	where := allRows
	if transit != "" {
		where = []ovsdb.Condition{dbops.NameIs(transit)}
	}
	tss, err := dbops.SelectRows[icnbdb.TransitSwitch](ctx, icnb, where)
	if err != nil {
		return nil, fmt.Errorf("read transit switches: %w", err)
	}
	out := map[string][]netip.Prefix{}
	for _, ts := range tss {
		for k, v := range ts.ExternalIDs {
			key, ok := strings.CutPrefix(k, KeySubnets)
			if !ok || strings.HasPrefix(key, self+"/") {
				continue
			}
			for _, s := range strings.Split(v, ",") {
				if p, err := netip.ParsePrefix(s); err == nil {
					out[key] = append(out[key], p)
				}
			}
		}
	}
	return out, nil
}

// Overlaps returns the conflicts between subnets and the subnets other
// sites' linked routers published on any transit switch.
func Overlaps(ctx context.Context, icnb client.Client, self string, subnets []netip.Prefix) ([]Overlap, error) {
	pub, err := published(ctx, icnb, "", self)
	if err != nil {
		return nil, err
	}
	var out []Overlap
	keys := make([]string, 0, len(pub))
	for k := range pub {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, s := range subnets {
		for _, k := range keys {
			for _, o := range pub[k] {
				if s.Overlaps(o) {
					site, rtr, _ := strings.Cut(k, "/")
					out = append(out, Overlap{Subnet: s, OtherSite: site, OtherRouter: rtr, OtherSubnet: o})
				}
			}
		}
	}
	return out, nil
}

func overlapErr(os []Overlap) error {
	parts := make([]string, len(os))
	for i, o := range os {
		parts[i] = o.String()
	}
	return fmt.Errorf("%s: %w", strings.Join(parts, "; "), ErrOverlap)
}

// LinkRouter puts router on transit switch spec.Transit: it creates the
// Transit_Switch in IC-NB when missing, refuses when a subnet of the
// router overlaps one another site's linked router published, publishes
// the router's subnets on the transit switch, waits for ovn-ic to create
// the switch in this site's NB, adds the switch port, waits for ovn-ic to
// give it its tunnel key, and then adds the router port (address spec.IP,
// gateway chassis spec.Nodes). ovn-ic then advertises the router's subnets
// and learns the other sites' as static routes.
func LinkRouter(ctx context.Context, nb, icnb client.Client, spec LinkSpec) (*Link, error) {
	what := fmt.Sprintf("site link %s to %s", spec.Router, spec.Transit)
	if err := ValidateName("transit switch", spec.Transit); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !spec.IP.IsValid() || !spec.IP.Addr().Is4() || spec.IP.Bits() > 30 || spec.IP.Bits() < 8 {
		return nil, fmt.Errorf("%s: %w", what, names.Bad("transit ip", spec.IP, "want the router's IPv4 address on the transit switch with its prefix, /8 to /30 (e.g. 198.18.254.1/24)"))
	}
	if len(spec.Nodes) == 0 {
		return nil, fmt.Errorf("%s: %w", what, &names.FieldError{Field: "gateway nodes", Problem: "are required: this site's interconnection gateway chassis (nodes joined with --ic-gateway)"})
	}
	if spec.Wait <= 0 {
		spec.Wait = 10 * time.Second
	}
	self, err := Local(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if self == "" {
		return nil, fmt.Errorf("%s: %w", what, ErrNotJoined)
	}
	lr, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs(spec.Router), dbops.Includes(owner.Selector(owner.KindRouter))})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(lr) == 0 {
		return nil, fmt.Errorf("%s: router %q: %w", what, spec.Router, router.ErrNotFound)
	}
	subnets, err := routerSubnets(ctx, nb, spec.Router)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ov, err := Overlaps(ctx, icnb, self, append(subnets, spec.IP.Masked()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// The transit subnet itself is shared by design.
	var real []Overlap
	for _, o := range ov {
		if o.Subnet != spec.IP.Masked() || o.OtherSubnet != spec.IP.Masked() {
			real = append(real, o)
		}
	}
	if len(real) > 0 {
		return nil, fmt.Errorf("%s: %w", what, overlapErr(real))
	}
	nets, err := routerNets(ctx, nb, spec.Router)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := publish(ctx, icnb, spec.Transit, self, spec.Router, subnets, spec.IP.Masked(), nets); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ls, err := waitTransit(ctx, nb, spec.Transit, spec.Wait)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	lrpName, lspName := PortNames(self, spec.Router, spec.Transit)
	ids := func(name string, extra map[string]string) map[string]string {
		e := map[string]string{owner.KeyRouter: spec.Router, KeyTransit: spec.Transit}
		for k, v := range extra {
			e[k] = v
		}
		return owner.IDs(KindLink, name, e)
	}
	for _, n := range spec.Nodes {
		if err := names.Validate("gateway nodes", n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	// Two steps, so that no chassis ever computes flows with a transit
	// port tunnel key that changes later. ovn-ic gives this site's port on
	// the transit switch the key it allocates in IC-SB (the port's
	// options:requested-tnl-key), but only once the port exists; until
	// then ovn-northd gives it a key of its own. ovn-controller (OVN 23.03)
	// does not update the router side of the patch pair when its peer's
	// key changes: the gateway kept sending with the old key, which the
	// other site read as its own port, and dropped every packet until
	// ovn-controller recomputed (TestSites, about 1 run in 4). So: (1) the
	// switch port alone, whose router port does not exist yet; (2) once
	// ovn-ic has set its key, the router port and its gateway chassis.
	lsp := &nbdb.LogicalSwitchPort{UUID: "newiclsp", Name: lspName, Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": lrpName}, ExternalIDs: ids(lspName, nil)}
	tx := dbops.NewTx(nb)
	tx.Add(dbops.None(nbdb.LogicalRouterPortTable, []ovsdb.Condition{dbops.NameIs(lrpName)}, "name", lrpName))
	tx.Add(dbops.None(nbdb.LogicalSwitchPortTable, []ovsdb.Condition{dbops.NameIs(lspName)}, "name", lspName))
	made := tx.Create(lsp)
	tx.Add(dbops.AddRefs(nbdb.LogicalSwitchTable, dbops.ByUUID(ls.UUID), "ports", lsp.UUID))
	if err := tx.Transact(ctx); err != nil {
		if dbconn.FailedWait(err, 0) || dbconn.FailedWait(err, 1) {
			return nil, fmt.Errorf("%s: router %s is already on transit switch %s (port %s): unlink it first", what, spec.Router, spec.Transit, lrpName)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	lspUUID := made.UUID()
	if err := waitPortKey(ctx, nb, lspName, spec.Wait); err != nil {
		// Take the lone switch port back (guarded: only while no router
		// port was made for it), so that the link can be retried.
		undo := dbops.NewTx(nb)
		undo.Add(dbops.None(nbdb.LogicalRouterPortTable, []ovsdb.Condition{dbops.NameIs(lrpName)}, "name", lrpName))
		undo.Add(dbops.DelRefs(nbdb.LogicalSwitchTable, dbops.ByUUID(ls.UUID), "ports", lspUUID))
		if uerr := undo.Transact(context.WithoutCancel(ctx)); uerr != nil {
			err = fmt.Errorf("%w (and removing switch port %s again: %v)", err, lspName, uerr)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	tx = dbops.NewTx(nb)
	var gcUUIDs []string
	for i, n := range spec.Nodes {
		gc := &nbdb.GatewayChassis{UUID: "newicgc" + strconv.Itoa(i), Name: lrpName + "-" + n, ChassisName: n,
			Priority: (len(spec.Nodes) - i) * 10, ExternalIDs: ids(lrpName+"-"+n, map[string]string{owner.KeyNode: n})}
		tx.Create(gc)
		gcUUIDs = append(gcUUIDs, gc.UUID)
	}
	lrp := &nbdb.LogicalRouterPort{UUID: "newiclrp", Name: lrpName, MAC: port.MACFromIP(spec.IP.Addr()).String(),
		Networks: []string{spec.IP.String()}, GatewayChassis: gcUUIDs, ExternalIDs: ids(lrpName, nil)}
	tx.Add(dbops.None(nbdb.LogicalRouterPortTable, []ovsdb.Condition{dbops.NameIs(lrpName)}, "name", lrpName))
	tx.Create(lrp)
	tx.Add(dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(lr[0].UUID), "ports", lrp.UUID))
	if err := tx.Transact(ctx); err != nil {
		if dbconn.FailedWait(err, len(spec.Nodes)) {
			return nil, fmt.Errorf("%s: router %s is already on transit switch %s (port %s): unlink it first", what, spec.Router, spec.Transit, lrpName)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &Link{Router: spec.Router, Transit: spec.Transit, IP: spec.IP.String(), Nodes: spec.Nodes, Port: lrpName}, nil
}

// KeyTransit names the transit switch on a link's rows.
const KeyTransit = "ovlmgr.io/transit"

// publish creates the transit switch in IC-NB when missing and records
// the router's subnets on it under KeySubnets<site>/<router>.
func publish(ctx context.Context, icnb client.Client, transit, self, rtr string, subnets []netip.Prefix, transitNet netip.Prefix, nets []namedNet) error {
	tss, err := dbops.SelectRows[icnbdb.TransitSwitch](ctx, icnb, []ovsdb.Condition{dbops.NameIs(transit)})
	if err != nil {
		return fmt.Errorf("read transit switch %s: %w", transit, err)
	}
	strs := make([]string, 0, len(subnets))
	for _, s := range subnets {
		strs = append(strs, s.String())
	}
	kv := map[string]string{KeySubnets + self + "/" + rtr: strings.Join(strs, ","), KeyNets + self + "/" + rtr: netsValue(nets)}
	if transitNet.IsValid() {
		kv[KeyTransitNet] = transitNet.String()
	}
	tx := dbops.NewTx(icnb)
	if len(tss) == 0 {
		ids := owner.IDs(KindTransit, transit, nil)
		for k, v := range kv {
			ids[k] = v
		}
		tx.Add(dbops.None(icnbdb.TransitSwitchTable, []ovsdb.Condition{dbops.NameIs(transit)}, "name", transit))
		tx.Create(&icnbdb.TransitSwitch{Name: transit, ExternalIDs: ids})
	} else {
		dbops.Typed[icnbdb.TransitSwitch](tx).SetKeys(dbops.ByUUID(tss[0].UUID), "external_ids", kv)
	}
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("publish subnets on transit switch %s: %w", transit, err)
	}
	return nil
}

// KeyTransitNet records a transit switch's subnet (IC-NB external_ids).
const KeyTransitNet = "ovlmgr.io/transit-net"

// waitTransit waits for ovn-ic to create the transit switch's
// Logical_Switch (other_config:interconn-ts) in this site's NB.
func waitTransit(ctx context.Context, nb client.Client, transit string, wait time.Duration) (*nbdb.LogicalSwitch, error) {
	deadline := time.Now().Add(wait)
	for {
		lss, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, nb, []ovsdb.Condition{dbops.NameIs(transit)})
		if err != nil {
			return nil, err
		}
		for _, ls := range lss {
			if ls.OtherConfig[KeyInterconnTS] == transit {
				return ls, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("transit switch %s after %s: %w", transit, wait, ErrNoTransit)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// KeyRequestedTnlKey is the option ovn-ic sets on a site's transit switch
// port: the port's tunnel key, allocated in IC-SB.
const KeyRequestedTnlKey = "requested-tnl-key"

// ErrNoPortKey: ovn-ic did not give this site's transit switch port its
// tunnel key.
var ErrNoPortKey = errors.New("ovn-ic has not given the transit switch port its tunnel key (is ovn-ic running for this site, and connected to the IC-SB?)")

// waitPortKey waits for ovn-ic to set the transit switch port's tunnel key
// (options:requested-tnl-key).
func waitPortKey(ctx context.Context, nb client.Client, lsp string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		ps, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, nb, []ovsdb.Condition{dbops.NameIs(lsp)}, func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.Options} })
		if err != nil {
			return fmt.Errorf("read transit switch port %s: %w", lsp, err)
		}
		if len(ps) == 1 && ps[0].Options[KeyRequestedTnlKey] != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transit switch port %s after %s: %w", lsp, wait, ErrNoPortKey)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Links lists the routers' ports on transit switches.
func Links(ctx context.Context, nb client.Client) ([]Link, error) {
	lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, nb, []ovsdb.Condition{dbops.Owned(KindLink, nil)})
	if err != nil {
		return nil, fmt.Errorf("list site links: %w", err)
	}
	gcs, err := dbops.SelectRows[nbdb.GatewayChassis](ctx, nb, []ovsdb.Condition{dbops.Owned(KindLink, nil)})
	if err != nil {
		return nil, fmt.Errorf("list site links: %w", err)
	}
	prio := map[string]*nbdb.GatewayChassis{}
	for _, g := range gcs {
		prio[g.UUID] = g
	}
	out := []Link{}
	for _, p := range lrps {
		l := Link{Router: p.ExternalIDs[owner.KeyRouter], Transit: p.ExternalIDs[KeyTransit], Port: p.Name, Nodes: []string{}}
		if len(p.Networks) > 0 {
			l.IP = p.Networks[0]
		}
		var gs []*nbdb.GatewayChassis
		for _, u := range p.GatewayChassis {
			if g := prio[u]; g != nil {
				gs = append(gs, g)
			}
		}
		sort.Slice(gs, func(i, j int) bool { return gs[i].Priority > gs[j].Priority })
		for _, g := range gs {
			l.Nodes = append(l.Nodes, g.ChassisName)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Router+"/"+out[i].Transit < out[j].Router+"/"+out[j].Transit })
	return out, nil
}

// Unlink removes router's port from transit switch transit (the router
// port, its switch port and gateway chassis) and its published subnets.
func Unlink(ctx context.Context, nb, icnb client.Client, rtr, transit string) error {
	what := fmt.Sprintf("site unlink %s from %s", rtr, transit)
	self, err := Local(ctx, nb)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	lrpName, lspName := PortNames(self, rtr, transit)
	mine := func(name string) []ovsdb.Condition {
		return []ovsdb.Condition{dbops.NameIs(name), dbops.Includes(owner.Selector(KindLink))}
	}
	lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, nb, mine(lrpName))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(lrps) == 0 {
		return fmt.Errorf("%s: router %s is %w to transit switch %s", what, rtr, ErrNotLinked, transit)
	}
	lsps, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, nb, mine(lspName))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	tx := dbops.NewTx(nb)
	tx.Add(dbops.DelRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.NameIs(rtr)}, "ports", lrps[0].UUID))
	for _, p := range lsps {
		tx.Add(dbops.DelRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(transit)}, "ports", p.UUID))
	}
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	tx = dbops.NewTx(icnb)
	dbops.Typed[icnbdb.TransitSwitch](tx).DelKeys([]ovsdb.Condition{dbops.NameIs(transit)}, "external_ids",
		KeySubnets+self+"/"+rtr, KeyNets+self+"/"+rtr, KeyDNS+self+"/"+rtr)
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("%s: unpublish subnets: %w", what, err)
	}
	return nil
}

// LearnedRoutes returns the routes ovn-ic learned on router (prefix ->
// next hop).
func LearnedRoutes(ctx context.Context, nb client.Client, rtr string) (map[string]string, error) {
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs(rtr)})
	if err != nil {
		return nil, fmt.Errorf("learned routes of %s: %w", rtr, err)
	}
	out := map[string]string{}
	if len(lrs) == 0 {
		return out, nil
	}
	want := map[string]bool{}
	for _, u := range lrs[0].StaticRoutes {
		want[u] = true
	}
	rs, err := dbops.SelectRows[nbdb.LogicalRouterStaticRoute](ctx, nb, allRows)
	if err != nil {
		return nil, fmt.Errorf("learned routes of %s: %w", rtr, err)
	}
	for _, r := range rs {
		if want[r.UUID] {
			if _, ok := r.ExternalIDs[KeyLearnedRoute]; ok {
				// ovn-ic copies the advertising port's network
				// (198.19.2.1/24): show the subnet.
				p := r.IPPrefix
				if pp, err := netip.ParsePrefix(p); err == nil {
					p = pp.Masked().String()
				}
				out[p] = r.Nexthop
			}
		}
	}
	return out, nil
}
