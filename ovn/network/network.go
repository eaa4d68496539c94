// Package network manages ovlmgr networks: each is an OVN Logical_Switch
// named like the network, with other_config:subnet / exclude_ips (and
// ipv6_prefix for dual stack) for ovn-northd's IPAM, and ovlmgr's owner keys,
// gateway, MTU and labels in external_ids. See docs/networks.md.
package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// External_ids keys of a network's Logical_Switch besides the owner keys.
const (
	KeyMTU = "ovlmgr.io/mtu"
	// KeyGateway6 is the router's IPv6 address on the network (the /64's ::1).
	KeyGateway6 = dns.KeyGateway6
	// KeyIPv6 indexes the network's /64 in its scope (scope token of the
	// prefix): the create transaction waits for no other switch to hold it.
	KeyIPv6 = "ovlmgr.io/ipv6"
)

// other_config keys read by ovn-northd's IPAM.
const (
	ConfigSubnet     = "subnet"
	ConfigExcludeIPs = "exclude_ips"
	ConfigIPv6Prefix = "ipv6_prefix"
)

// ErrNotFound is returned (wrapped) for a network name that does not exist
// or whose Logical_Switch is not ovlmgr's.
var ErrNotFound = errors.New("no such network")

// ErrExists is returned (wrapped) when creating a name that is taken.
var ErrExists = errors.New("already exists")

// Spec describes a network to create.
type Spec struct {
	Name string
	// Subnet is the IPv4 subnet, a.b.c.d/8 to /30, host bits clear; ""
	// for an IPv6-only network (IPv6Subnet set).
	Subnet string
	// Gateway defaults to the first host address of Subnet. It is excluded
	// from OVN's IPAM; routers will give it to their port on this network.
	Gateway string
	// Exclude lists addresses ("IP") and ranges ("IP..IP") inside Subnet that
	// OVN's IPAM must not hand out.
	Exclude []string
	// MTU is the containers' MTU, 576 to 9000; 0 = derive from the node.
	MTU    int
	Labels map[string]string
	// IPv6Subnet is the IPv6 subnet, only a /64: with Subnet for dual
	// stack, alone for an IPv6-only network. Its ::1 is the gateway.
	IPv6Subnet string
	// MayExist accepts an existing network with an identical spec.
	MayExist bool
	// Router attaches the network to this router at creation; its subnet
	// then only has to be unique among that router's networks.
	Router string
	// Isolation is default-allow (or "") or default-deny; see ovn/policy.
	Isolation string
	// Domain is the DNS domain of the network's names
	// (<name>.<network>.<domain>); "" means dns.DefaultDomain ("ovl").
	Domain string
	// ContainerNames is "on" (or "") or "off": with off, containers get
	// no DNS names, so ADD and DEL never change the network's DNS rows
	// (in OVN 23.03 each change makes every ovn-controller with the
	// network recompute all its logical flows; docs/services.md).
	ContainerNames string
}

// Network is an ovlmgr network as read from the Northbound database.
type Network struct {
	UUID       string            `json:"uuid" yaml:"uuid"`
	Name       string            `json:"name" yaml:"name"`
	Subnet     string            `json:"subnet" yaml:"subnet"`
	Gateway    string            `json:"gateway" yaml:"gateway"`
	Exclude    []string          `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	MTU        int               `json:"mtu,omitempty" yaml:"mtu,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	IPv6Prefix string            `json:"ipv6Prefix,omitempty" yaml:"ipv6Prefix,omitempty"`
	// Gateway6 is the IPv6 gateway (the /64's ::1) when IPv6Prefix is set.
	Gateway6 string `json:"gateway6,omitempty" yaml:"gateway6,omitempty"`
	// Router is the router the network is attached to; "" for none.
	Router string `json:"router,omitempty" yaml:"router,omitempty"`
	// Domain is the DNS domain of the network's names.
	Domain string `json:"domain" yaml:"domain"`
	// Isolation is default-allow or default-deny (see ovn/policy).
	Isolation string `json:"isolation" yaml:"isolation"`
	// ContainerNames is "on" or "off" (Spec.ContainerNames).
	ContainerNames string `json:"containerNames" yaml:"containerNames"`
	// Ports counts the network's container ports (Logical_Switch_Ports with
	// owner kind "port" on this switch).
	Ports int `json:"ports" yaml:"ports"`
	// Free approximates the addresses left for new containers: usable hosts
	// minus the gateway, excluded addresses and Ports. Statically requested
	// addresses outside the ports we count are not subtracted. Addresses
	// held by unclaimed pool ports (Pooled) count as free: the next ADD on
	// their node gets them.
	Free int `json:"free" yaml:"free"`
	// Pooled counts the network's unclaimed pool ports (ready or being
	// made, on all nodes): part of Free, usable only by ADDs on their node.
	Pooled int `json:"pooled" yaml:"pooled"`
}

// row builds the Logical_Switch for a validated plan in scope.
func (p *plan) row(scope Scope) *nbdb.LogicalSwitch {
	ids := owner.IDs(owner.KindNetwork, p.name, nil)
	cfg := map[string]string{}
	if p.v4() {
		ids = owner.IDs(owner.KindNetwork, p.name, coverIDs(scope, p.subnet))
		ids[owner.KeyGateway] = p.gateway.String()
		cfg[ConfigSubnet], cfg[ConfigExcludeIPs] = p.subnet.String(), p.excludeIPs()
	}
	if p.ipv6.IsValid() {
		ids[KeyGateway6] = p.gateway6.String()
		ids[KeyIPv6] = scope.token(p.ipv6)
		cfg[ConfigIPv6Prefix] = p.ipv6.Addr().String()
	}
	ids[dns.KeyDomain] = p.domain
	if !p.names {
		ids[dns.KeyContainerNames] = dns.ContainerNamesOff
	}
	if p.mtu != 0 {
		ids[KeyMTU] = strconv.Itoa(p.mtu)
	}
	for k, v := range p.labels {
		ids[owner.LabelPrefix+k] = v
	}
	return &nbdb.LogicalSwitch{
		UUID:        switchUUID(scope, p.key()),
		Name:        p.name,
		OtherConfig: cfg,
		ExternalIDs: ids,
	}
}

// sameSpec reports whether an existing switch has exactly the row want.
func sameSpec(have, want *nbdb.LogicalSwitch) bool {
	for _, k := range []string{ConfigSubnet, ConfigExcludeIPs, ConfigIPv6Prefix} {
		if have.OtherConfig[k] != want.OtherConfig[k] {
			return false
		}
	}
	return maps.Equal(have.ExternalIDs, want.ExternalIDs)
}

// fromRow converts one of our switches; ports is its container port count.
func fromRow(ls *nbdb.LogicalSwitch, ports int) Network {
	n := Network{
		UUID:    ls.UUID,
		Name:    ls.Name,
		Subnet:  ls.OtherConfig[ConfigSubnet],
		Gateway: ls.ExternalIDs[owner.KeyGateway],
		Labels:  owner.Labels(ls.ExternalIDs),
		Router:  ls.ExternalIDs[owner.KeyRouter],
		Domain:  ls.ExternalIDs[dns.KeyDomain],
		Ports:   ports,
	}
	if n.Domain == "" {
		n.Domain = dns.DefaultDomain
	}
	n.Isolation = isolation(ls)
	n.ContainerNames = "on"
	if ls.ExternalIDs[dns.KeyContainerNames] == dns.ContainerNamesOff {
		n.ContainerNames = dns.ContainerNamesOff
	}
	if len(n.Labels) == 0 {
		n.Labels = nil
	}
	n.MTU, _ = strconv.Atoi(ls.ExternalIDs[KeyMTU])
	if v6 := ls.OtherConfig[ConfigIPv6Prefix]; v6 != "" {
		n.IPv6Prefix = strings.TrimSuffix(v6, "/64") + "/64"
		n.Gateway6 = ls.ExternalIDs[KeyGateway6]
		if pfx, err := netip.ParsePrefix(n.IPv6Prefix); err == nil && n.Gateway6 == "" {
			n.Gateway6 = Gateway6(pfx).String()
		}
	}
	sub, err1 := netip.ParsePrefix(n.Subnet)
	gw, err2 := netip.ParseAddr(n.Gateway)
	excl := parseExcludeIPs(ls.OtherConfig[ConfigExcludeIPs])
	for _, r := range excl {
		if r.from == gw && r.to == gw {
			continue
		}
		n.Exclude = append(n.Exclude, r.String())
	}
	if err1 == nil && err2 == nil && sub.Addr().Is4() && sub.Bits() <= 30 {
		n.Free = free(sub, gw, excl, ports)
	}
	return n
}

// Validate checks s without touching the database; the error (one line,
// naming the field, the value and what is allowed) is the one Create returns.
func Validate(s Spec) error {
	if _, err := validate(s); err != nil {
		return fmt.Errorf("create network %q: %w", s.Name, err)
	}
	return nil
}

// Create creates network s.Name as one transaction guarded by wait
// operations: no switch of that name may exist (ours or not) and no ovlmgr
// network in the same scope may overlap the subnet, so concurrent creates
// have one winner. An existing network of that name is an error wrapping
// ErrExists unless s.MayExist and its spec is identical; then it is returned.
//
// A create whose reply is lost (dbconn.ErrConnectionLost: the NB leader
// died or stepped down meanwhile) runs again on the new leader; from then
// on an existing network with an identical spec is this create's own
// result and reported as success (as with MayExist), so a retried create
// never makes a second network and never reports a network it made as a
// failure.
func Create(ctx context.Context, nb client.Client, s Spec) (*Network, error) {
	var n *Network
	err := dbconn.Retry(ctx, func(again bool) error {
		ss := s
		ss.MayExist = s.MayExist || again
		var err error
		n, err = create(ctx, nb, ss)
		return err
	})
	return n, err
}

func create(ctx context.Context, nb client.Client, s Spec) (*Network, error) {
	p, err := validate(s)
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", s.Name, err)
	}
	scope := Scope{Router: s.Router}
	ls := p.row(scope)
	addRouting(ls, s)
	m := &nbdb.LogicalSwitch{Name: p.name}
	guard, err := dbconn.Absent(nb, m, &m.Name)
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", s.Name, err)
	}
	ins, err := nb.Create(ls)
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", s.Name, err)
	}
	stale := false
	v6refused := func(other string) error {
		return fmt.Errorf("create network %q: %w", s.Name, names.Says("ipv6 subnet", s.IPv6Subnet, "is the IPv6 subnet of %s; IPv6 subnets must be distinct in the %s", other, scope))
	}
	for attempt := 0; ; attempt++ {
		var overlap, marks, v6guard []ovsdb.Operation
		if p.ipv6.IsValid() {
			var other *nbdb.LogicalSwitch
			if v6guard, other, err = ipv6Guards(ctx, nb, scope, p.ipv6, ""); err != nil {
				return nil, fmt.Errorf("create network %q: %w", s.Name, err)
			} else if other != nil {
				// A network from before the IPv6 index key holds the /64.
				return nil, v6refused(fmt.Sprintf("network %q", other.Name))
			}
		}
		if p.v4() {
			overlap = overlapGuards(scope, p.subnet, stale)
			if marks, err = markOps(ctx, nb, scope, p.subnet); err != nil {
				return nil, fmt.Errorf("create network %q: %w", s.Name, err)
			}
		}
		extra, err := createExtras(ctx, nb, s, p)
		if err != nil {
			return nil, fmt.Errorf("create network %q: %w", s.Name, err)
		}
		// [name guard, overlap guards (the last: networks inside), IPv6 guard, switch, markers, extras]
		ops := append(append(append([]ovsdb.Operation{guard}, overlap...), v6guard...), ins...)
		marksAt := len(ops)
		ops = append(append(ops, marks...), extra...)
		_, err = dbconn.Transact(ctx, nb, ops...)
		switch {
		case err == nil:
			if s.Router != "" {
				// DNS rows and services follow the router's networks.
				if err := service.Sync(ctx, nb); err != nil {
					return nil, fmt.Errorf("create network %q: %w", s.Name, err)
				}
			} else if err := dns.EnsureAlone(ctx, nb, s.Name); err != nil {
				// The network's DNS rows (and name responder) exist before
				// the first container: nodes, which may write only their
				// own ports (docs/security.md), never have to create them.
				return nil, fmt.Errorf("create network %q: %w", s.Name, err)
			}
			n := fromRow(ls, 0)
			return &n, nil
		case dbconn.FailedWait(err, 0):
			return existing(ctx, nb, s, ls)
		case failedIn(err, marksAt, len(marks)) && attempt < maxRetries:
			// A concurrent create or delete changed a marker: read again.
			continue
		case failedIn(err, 1+len(overlap)+1, len(v6guard)-1) && attempt < maxRetries:
			// An unindexed network with this /64 changed meanwhile: read again.
			continue
		case failedIn(err, 1+len(overlap), len(v6guard)):
			other := "another ovlmgr network"
			if o, ferr := findIPv6(ctx, nb, scope, p.ipv6); ferr == nil && o != nil {
				other = fmt.Sprintf("network %q", o.Name)
			}
			return nil, v6refused(other)
		case !failedIn(err, 1, len(overlap)):
			return nil, fmt.Errorf("create network %q: %w", s.Name, err)
		}
		other, ferr := findOverlap(ctx, nb, scope, p.subnet)
		switch {
		case ferr == nil && other != nil:
			return nil, fmt.Errorf("create network %q: %w", s.Name, names.Says("subnet", s.Subnet, "overlaps network %q (%s); subnets must not overlap in the %s",
				other.Name, other.OtherConfig[ConfigSubnet], scope))
		case ferr == nil && failedIn(err, len(overlap), 1) && !stale:
			// The marker for networks inside the subnet outlived them.
			stale = true
		case attempt >= maxRetries || ferr != nil:
			return nil, fmt.Errorf("create network %q: %w", s.Name, names.Says("subnet", s.Subnet, "overlaps another ovlmgr network (it changed while checking: retry)"))
		}
	}
}

// maxRetries bounds the retries of a transaction that lost a race on subnet markers.
const maxRetries = 10

// existing handles a create whose name is taken.
func existing(ctx context.Context, nb client.Client, s Spec, want *nbdb.LogicalSwitch) (*Network, error) {
	rows, err := byName(ctx, nb, s.Name)
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", s.Name, err)
	}
	var ours *nbdb.LogicalSwitch
	for _, ls := range rows {
		if owner.Owned(ls.ExternalIDs, owner.KindNetwork) {
			ours = ls
		}
	}
	switch {
	case len(rows) == 0:
		return nil, fmt.Errorf("create network %q: the name was taken and released while creating: retry", s.Name)
	case ours == nil || len(rows) > 1:
		return nil, fmt.Errorf("create network %q: a Logical_Switch named %q exists that ovlmgr does not manage; choose another name (ovlmgr never touches it)", s.Name, s.Name)
	case s.MayExist && sameSpec(ours, want):
		return Get(ctx, nb, s.Name)
	case s.MayExist:
		return nil, fmt.Errorf("create network %q: %w", s.Name, &names.FieldError{Err: ErrExists,
			Problem: fmt.Sprintf("network %s %v with a different spec (subnet %s); {may exist} accepts only an identical spec", s.Name, ErrExists, ours.OtherConfig[ConfigSubnet])})
	default:
		return nil, fmt.Errorf("create network %q: %w", s.Name, &names.FieldError{Err: ErrExists,
			Problem: fmt.Sprintf("network %s %v (subnet %s; {may exist} accepts an identical spec)", s.Name, ErrExists, ours.OtherConfig[ConfigSubnet])})
	}
}

// byName selects every Logical_Switch named name (ours or not).
func byName(ctx context.Context, nb client.Client, name string) ([]*nbdb.LogicalSwitch, error) {
	var rows []*nbdb.LogicalSwitch
	m := &nbdb.LogicalSwitch{}
	if err := dbconn.Select(ctx, nb, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return nil, err
	}
	return rows, nil
}

// portSelector matches our container ports, on network name if not "".
// ownedSwitch is the network switch among rows (Logical_Switch rows of one
// name), or nil when none is ours.
func ownedSwitch(rows []*nbdb.LogicalSwitch) *nbdb.LogicalSwitch {
	var ls *nbdb.LogicalSwitch
	for _, r := range rows {
		if owner.Owned(r.ExternalIDs, owner.KindNetwork) {
			ls = r
		}
	}
	return ls
}

// poolSelector matches unclaimed pool ports (ovn/port's pool), on network
// name if not "".
func poolSelector(name string) ovsdb.Condition {
	sel := owner.Selector(port.KindPool)
	if name != "" {
		sel[owner.KeyNetwork] = name
	}
	return dbops.Includes(sel)
}

func portSelector(name string) ovsdb.Condition {
	sel := owner.Selector(owner.KindPort)
	if name != "" {
		sel[owner.KeyNetwork] = name
	}
	return dbops.Includes(sel)
}

// Get reads network name without a cache: one round trip selecting the
// switch by name (not its ports column) and counting its container ports
// and unclaimed pool ports (Logical_Switch_Ports with owner kind "port" or
// "pool-port" and ovlmgr.io/network=name) by their names, the one short
// column that is unique (a select returns distinct rows). At 3,000 ports
// that is a quarter of the time the ports' UUIDs and the switch's ports
// column took, read after every CNI ADD by the pool's refill. It wraps
// ErrNotFound when there is no such ovlmgr network.
func Get(ctx context.Context, nb client.Client, name string) (*Network, error) {
	tx := dbops.NewTx(nb)
	sw := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(name)}, switchColumns)
	ports := dbops.Query(tx, []ovsdb.Condition{portSelector(name)}, portName)
	pooled := dbops.Query(tx, []ovsdb.Condition{poolSelector(name)}, portName)
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("get network %q: %w", name, err)
	}
	rows, err := sw.Rows()
	if err != nil {
		return nil, fmt.Errorf("get network %q: %w", name, err)
	}
	ls := ownedSwitch(rows)
	if ls == nil {
		if len(rows) > 0 {
			return nil, fmt.Errorf("network %q: %w (a Logical_Switch of that name exists but ovlmgr does not manage it)", name, ErrNotFound)
		}
		return nil, fmt.Errorf("network %q: %w (see ovlmgr net list)", name, ErrNotFound)
	}
	n := fromRow(ls, ports.Len())
	n.Pooled = pooled.Len()
	return &n, nil
}

// switchColumns are the columns fromRow reads: not the switch's ports,
// which grow with the containers.
func switchColumns(s *nbdb.LogicalSwitch) []any {
	return []any{&s.UUID, &s.Name, &s.ExternalIDs, &s.OtherConfig}
}

// portName trims a port select to the name column (for counting).
func portName(p *nbdb.LogicalSwitchPort) []any { return []any{&p.Name} }

// portUUID trims a port select to the _uuid column.
func portUUID(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID} }

func uuidSet(uuids []string) map[string]bool {
	out := make(map[string]bool, len(uuids))
	for _, u := range uuids {
		out[u] = true
	}
	return out
}

func countPorts(ls *nbdb.LogicalSwitch, ours map[string]bool) int {
	n := 0
	for _, u := range ls.Ports {
		if ours[u] {
			n++
		}
	}
	return n
}

// List returns every ovlmgr network, sorted by name, in one round trip.
func List(ctx context.Context, nb client.Client) ([]Network, error) {
	tx := dbops.NewTx(nb)
	sw := dbops.Query[nbdb.LogicalSwitch](tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindNetwork))})
	portQ := dbops.Query(tx, []ovsdb.Condition{portSelector("")}, portUUID)
	poolQ := dbops.Query(tx, []ovsdb.Condition{poolSelector("")}, portUUID)
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	rows, err := sw.Rows()
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	ports, pooled := uuidSet(portQ.UUIDs()), uuidSet(poolQ.UUIDs())
	out := make([]Network, 0, len(rows))
	for _, ls := range rows {
		n := fromRow(ls, countPorts(ls, ports))
		n.Pooled = countPorts(ls, pooled)
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PortsInUseError is returned by Delete without force when the network still
// has container ports; Ports lists their names.
type PortsInUseError struct {
	Network string
	Ports   []string
}

func (e *PortsInUseError) Error() string {
	const show = 10
	names := e.Ports
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return fmt.Sprintf("delete network %q: %d container port(s) still attached: %s%s",
		e.Network, len(e.Ports), strings.Join(names, ", "), more)
}

// Delete deletes network name. It refuses, with a *PortsInUseError listing
// them, while container ports (owner kind "port") are attached, unless force:
// then they are deleted in the same transaction. It refuses switches we do
// not own and switches carrying ports ovlmgr did not create. The transaction
// waits for the switch's port list to be what was read, so a port added
// meanwhile makes it fail instead of vanishing unseen.
//
// A delete whose reply is lost runs again on the new leader; finding no
// network then means the lost transaction committed: success.
func Delete(ctx context.Context, nb client.Client, name string, force bool) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := deleteNetwork(ctx, nb, name, force)
		// A pool refill may add or remove a pool port meanwhile: read
		// the ports again (container ports are checked anew each time).
		for i := 0; i < maxRetries && errors.Is(err, errPortsChanged); i++ {
			err = deleteNetwork(ctx, nb, name, force)
		}
		if again && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}

// errPortsChanged: the switch's ports changed between Delete's read and
// its transaction.
var errPortsChanged = errors.New("its ports changed (or it was deleted) while deleting: retry")

func deleteNetwork(ctx context.Context, nb client.Client, name string, force bool) error {
	rows, err := byName(ctx, nb, name)
	if err != nil {
		return fmt.Errorf("delete network %q: %w", name, err)
	}
	ls := ownedSwitch(rows)
	if ls == nil {
		if len(rows) > 0 {
			return fmt.Errorf("delete network %q: %w: the Logical_Switch %q is not managed by ovlmgr; refusing to touch it", name, ErrNotFound, name)
		}
		return fmt.Errorf("delete network %q: %w", name, ErrNotFound)
	}
	// Read the switch's ports by UUID (index lookups) in one round trip.
	tx := dbops.NewTx(nb)
	var sel []*dbops.Result[nbdb.LogicalSwitchPort]
	for _, u := range ls.Ports {
		sel = append(sel, dbops.Query(tx, dbops.ByUUID(u), func(p *nbdb.LogicalSwitchPort) []any {
			return []any{&p.UUID, &p.Name, &p.ExternalIDs}
		}))
	}
	var containers, foreign, other []string
	var containerUUIDs, poolUUIDs []string
	if len(sel) > 0 {
		if err := tx.Transact(ctx); err != nil {
			return fmt.Errorf("delete network %q: read ports: %w", name, err)
		}
		for _, q := range sel {
			ps, err := q.Rows()
			if err != nil {
				return fmt.Errorf("delete network %q: %w", name, err)
			}
			for _, p := range ps {
				switch {
				case owner.Owned(p.ExternalIDs, owner.KindPort):
					containers = append(containers, p.Name)
					containerUUIDs = append(containerUUIDs, p.UUID)
				case owner.Owned(p.ExternalIDs, port.KindPool):
					// Unclaimed pool ports go with the network (deleted
					// below, in the same transaction); they are no containers.
					poolUUIDs = append(poolUUIDs, p.UUID)
				case owner.Owned(p.ExternalIDs, router.KindRouterPort):
					// Detached below, in the same transaction.
				case owner.Owned(p.ExternalIDs, owner.KindDNS):
					// The nameserver port (ovn/dns), removed below too.
				case !owner.Owned(p.ExternalIDs, ""):
					foreign = append(foreign, p.Name)
				default:
					desc := p.Name + " (" + p.ExternalIDs[owner.KeyKind]
					if r := p.ExternalIDs[owner.KeyRouter]; r != "" {
						desc += " of router " + r
					}
					other = append(other, desc+")")
				}
			}
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return fmt.Errorf("delete network %q: the switch has port(s) ovlmgr did not create: %s; remove them first (ovlmgr never deletes rows it does not own)",
			name, strings.Join(foreign, ", "))
	}
	if len(other) > 0 {
		sort.Strings(other)
		return fmt.Errorf("delete network %q: still attached: %s; detach it first (e.g. from its router)", name, strings.Join(other, ", "))
	}
	if len(containers) > 0 && !force {
		sort.Strings(containers)
		return &PortsInUseError{Network: name, Ports: containers}
	}
	// [ports unchanged guard, container port deletes, extras, switch delete, unmarks]
	guard, err := dbops.StillOp(nb, ls, &ls.Ports)
	if err != nil {
		return fmt.Errorf("delete network %q: %w", name, err)
	}
	ops := []ovsdb.Operation{guard}
	for _, u := range append(containerUUIDs, poolUUIDs...) {
		ops = append(ops, dbops.Delete(nbdb.LogicalSwitchPortTable, dbops.ByUUID(u)))
	}
	extra, err := deleteExtras(ctx, nb, name)
	if err != nil {
		return fmt.Errorf("delete network %q: %w", name, err)
	}
	ops = append(ops, extra...)
	ops = append(ops, dbops.Delete(nbdb.LogicalSwitchTable, dbops.ByUUID(ls.UUID)))
	sub, serr := netip.ParsePrefix(ls.OtherConfig[ConfigSubnet])
	for attempt := 0; ; attempt++ {
		// Subnet markers no other network of the scope needs go too.
		var unmarks []ovsdb.Operation
		if serr == nil {
			if unmarks, err = unmarkOps(ctx, nb, Scope{Router: ls.ExternalIDs[owner.KeyRouter]}, sub, ls.UUID); err != nil {
				return fmt.Errorf("delete network %q: %w", name, err)
			}
		}
		_, err := dbconn.Transact(ctx, nb, append(ops, unmarks...)...)
		switch {
		case err == nil:
			return nil
		case dbconn.FailedWait(err, 0):
			return fmt.Errorf("delete network %q: %w", name, errPortsChanged)
		case failedIn(err, len(ops), len(unmarks)) && attempt < maxRetries:
			// A network was created inside one of the subnet's supernets.
			continue
		}
		return fmt.Errorf("delete network %q: %w", name, err)
	}
}
