// Package router manages ovlmgr routers: one OVN Logical_Router per router
// (a tenant). Attaching a network adds a Logical_Router_Port "ROUTER-NET"
// carrying the network's gateway address and a Logical_Switch_Port
// "NET-ROUTER" of type router on the network's switch. Networks on one
// router reach each other; networks on different routers share nothing.
package router

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// KindRouterPort is the owner kind of the two ports of an attachment (the
// Logical_Router_Port and the switch's router-type Logical_Switch_Port).
const KindRouterPort = "router-port"

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrAttached = errors.New("networks attached")
	ErrNotOwned = errors.New("not managed by ovlmgr")
	// ErrPortNameClash: an attachment's port names are taken by another
	// port (OVN needs logical port names unique across switches and routers).
	ErrPortNameClash = errors.New("port name clash")
)

// ValidateName checks a router name (names.Validate): the CNI network-name
// rule [A-Za-z0-9][A-Za-z0-9_.-]*, at most 63 characters.
func ValidateName(name string) error { return names.Validate("router name", name) }

// Router is a router as read from NB.
type Router struct {
	Name     string            `json:"name" yaml:"name"`
	UUID     string            `json:"uuid" yaml:"uuid"`
	Labels   map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Networks []Attachment      `json:"networks" yaml:"networks"`
}

// Attachment is one network attached to a router.
type Attachment struct {
	Router     string `json:"-" yaml:"-"`
	Network    string `json:"network" yaml:"network"`
	RouterPort string `json:"routerPort" yaml:"routerPort"` // Logical_Router_Port name
	SwitchPort string `json:"switchPort" yaml:"switchPort"` // Logical_Switch_Port name (type router)
	Gateway    string `json:"gateway" yaml:"gateway"`       // gateway IP/prefix on the router port
	MAC        string `json:"mac" yaml:"mac"`
}

// Net is what attaching needs to know about a network.
type Net struct {
	Name    string
	Subnet  netip.Prefix // invalid on an IPv6-only network
	Gateway netip.Addr
	// Subnet6 and Gateway6 are the IPv6 /64 and its gateway (::1), invalid
	// on an IPv4-only network.
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
}

// networks is the router port's networks column: the IPv4 gateway and
// the IPv6 gateway, each with its subnet's length.
func (n Net) networks() []string {
	var out []string
	if n.Subnet.IsValid() {
		out = append(out, fmt.Sprintf("%s/%d", n.Gateway, n.Subnet.Bits()))
	}
	if n.Subnet6.IsValid() {
		out = append(out, fmt.Sprintf("%s/%d", n.Gateway6, n.Subnet6.Bits()))
	}
	return out
}

// PortNames returns the router port and switch port names of an attachment.
func PortNames(router, network string) (lrp, lsp string) {
	return router + "-" + network, network + "-" + router
}

// MAC returns the router port MAC for an attachment: the IPv4 gateway's
// derived MAC (port.MACFromIP: 0a:58 followed by the address, the MAC a
// network's nameserver placeholder also answers with), or a hash of the
// names for IPv6.
func MAC(router string, n Net) string {
	if n.Gateway.Is4() {
		return port.MACFromIP(n.Gateway).String()
	}
	if n.Gateway6.Is6() {
		// IPv6-only: the MAC of the network's nameserver placeholder (ovn/dns).
		return port.MACFromIP6(n.Gateway6).String()
	}
	h := fnv.New32a()
	h.Write([]byte(router + "/" + n.Name))
	s := h.Sum32()
	return fmt.Sprintf("0a:59:%02x:%02x:%02x:%02x", byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

// Create creates router name with user labels. A create whose reply was
// lost in a leader change runs again (dbconn.Retry); an ovlmgr router of
// that name with the same labels is then its own result: success.
func Create(ctx context.Context, c client.Client, name string, labels map[string]string) (*Router, error) {
	var r *Router
	err := dbconn.Retry(ctx, func(again bool) error {
		var err error
		r, err = create(ctx, c, name, labels)
		if again && errors.Is(err, ErrExists) {
			if got, gerr := Get(ctx, c, name); gerr == nil && fmt.Sprint(got.Labels) == fmt.Sprint(nonNil(labels)) {
				r, err = got, nil
			}
		}
		return err
	})
	return r, err
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func create(ctx context.Context, c client.Client, name string, labels map[string]string) (*Router, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("create router: %w", err)
	}
	ids := owner.IDs(owner.KindRouter, name, nil)
	for k, v := range labels {
		if k == "" {
			return nil, fmt.Errorf("create router %q: empty label key", name)
		}
		ids[owner.LabelPrefix+k] = v
	}
	lr := &nbdb.LogicalRouter{UUID: "newlr", Name: name, ExternalIDs: ids}
	guard, err := dbconn.Absent(c, lr, &lr.Name)
	if err != nil {
		return nil, fmt.Errorf("create router %q: %w", name, err)
	}
	ins, err := c.Create(lr)
	if err != nil {
		return nil, fmt.Errorf("create router %q: %w", name, err)
	}
	res, err := dbconn.Transact(ctx, c, append([]ovsdb.Operation{guard}, ins...)...)
	if dbconn.FailedWait(err, 0) {
		return nil, fmt.Errorf("create router %q: %w (a Logical_Router with this name is in NB)", name, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create router %q: %w", name, err)
	}
	return &Router{Name: name, UUID: res[1].UUID.GoUUID, Labels: owner.Labels(ids), Networks: []Attachment{}}, nil
}

// Get reads router name and its attachments.
func Get(ctx context.Context, c client.Client, name string) (*Router, error) {
	lr, err := getLR(ctx, c, name)
	if err != nil {
		return nil, err
	}
	atts, err := attachments(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return toRouter(lr, atts), nil
}

func toRouter(lr *nbdb.LogicalRouter, atts []Attachment) *Router {
	if atts == nil {
		atts = []Attachment{}
	}
	return &Router{Name: lr.Name, UUID: lr.UUID, Labels: owner.Labels(lr.ExternalIDs), Networks: atts}
}

// getLR reads our Logical_Router name.
func getLR(ctx context.Context, c client.Client, name string) (*nbdb.LogicalRouter, error) {
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, c, []ovsdb.Condition{dbops.NameIs(name)})
	if err != nil {
		return nil, fmt.Errorf("read router %q: %w", name, err)
	}
	if len(lrs) == 0 {
		return nil, fmt.Errorf("router %q: %w", name, ErrNotFound)
	}
	for _, lr := range lrs {
		if owner.Owned(lr.ExternalIDs, owner.KindRouter) {
			return lr, nil
		}
	}
	return nil, fmt.Errorf("router %q: Logical_Router exists but is %w", name, ErrNotOwned)
}

// attachments lists the router ports of router (all when router is "").
func attachments(ctx context.Context, c client.Client, router string) ([]Attachment, error) {
	extra := map[string]string{}
	if router != "" {
		extra[owner.KeyRouter] = router
	}
	lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, c, []ovsdb.Condition{dbops.Owned(KindRouterPort, extra)})
	if err != nil {
		return nil, fmt.Errorf("read router ports: %w", err)
	}
	out := []Attachment{}
	for _, p := range lrps {
		a := Attachment{Router: p.ExternalIDs[owner.KeyRouter], Network: p.ExternalIDs[owner.KeyNetwork], RouterPort: p.Name, MAC: p.MAC}
		_, a.SwitchPort = PortNames(a.Router, a.Network)
		if len(p.Networks) > 0 {
			a.Gateway = p.Networks[0]
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Network < out[j].Network })
	return out, nil
}

// List reads every router we own with its attachments, sorted by name.
func List(ctx context.Context, c client.Client) ([]*Router, error) {
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, c, []ovsdb.Condition{dbops.Owned(owner.KindRouter, nil)})
	if err != nil {
		return nil, fmt.Errorf("list routers: %w", err)
	}
	all, err := attachments(ctx, c, "")
	if err != nil {
		return nil, fmt.Errorf("list routers: %w", err)
	}
	out := make([]*Router, 0, len(lrs))
	for _, lr := range lrs {
		var atts []Attachment
		for _, a := range all {
			if a.Router == lr.Name {
				atts = append(atts, a)
			}
		}
		out = append(out, toRouter(lr, atts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete deletes router name. While networks are attached it refuses
// (ErrAttached, naming them) unless force, which detaches them in the same
// transaction, with the operations detach returns for each network. Only
// network.DeleteRouter calls it: detaching also moves a network back to the
// global overlap scope, which the network package owns.
func Delete(ctx context.Context, c client.Client, name string, force bool, detach func(network string) ([]ovsdb.Operation, error)) error {
	lr, err := getLR(ctx, c, name)
	if err != nil {
		return fmt.Errorf("delete router: %w", err)
	}
	atts, err := attachments(ctx, c, name)
	if err != nil {
		return fmt.Errorf("delete router %q: %w", name, err)
	}
	if len(atts) > 0 && !force {
		var nets []string
		for _, a := range atts {
			nets = append(nets, a.Network)
		}
		return fmt.Errorf("delete router %q: %w: %s", name, ErrAttached, strings.Join(nets, ", "))
	}
	// Guard: no attach/detach happened since we read.
	guard, err := dbops.StillOp(c, lr, &lr.Ports)
	if err != nil {
		return fmt.Errorf("delete router %q: %w", name, err)
	}
	ops := []ovsdb.Operation{guard}
	for _, a := range atts {
		more, err := detach(a.Network)
		if err != nil {
			return fmt.Errorf("delete router %q: %w", name, err)
		}
		ops = append(ops, more...)
	}
	ops = append(ops, deleteGatewayOps(name)...)
	ops = append(ops, dbops.Delete(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.UUIDIs(lr.UUID)}))
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		if dbconn.FailedWait(err, 0) {
			return fmt.Errorf("delete router %q: its networks changed while deleting; retry", name)
		}
		return fmt.Errorf("delete router %q: %w", name, err)
	}
	if len(atts) > 0 {
		if err := service.Sync(ctx, c); err != nil {
			return fmt.Errorf("delete router %q: %w", name, err)
		}
	}
	return nil
}

// AttachOps returns the operations that attach network n to router: a
// router port with n's gateway, the switch's router-type port, and
// ovlmgr.io/router=ROUTER in the switch's external_ids. The switch is
// addressed by name, so the operations may follow its insert in one
// transaction (net create --router). They fail if router is not ours, if
// n's subnet overlaps a network already on router, or (through a guard)
// if the router's ports change before they run. The caller checks that n
// is ours and not attached elsewhere.
func AttachOps(ctx context.Context, c client.Client, router string, n Net) ([]ovsdb.Operation, error) {
	if n.Subnet.IsValid() && (!n.Gateway.IsValid() || !n.Subnet.Contains(n.Gateway)) {
		return nil, fmt.Errorf("attach network %q to router %q: gateway %v is not inside subnet %v", n.Name, router, n.Gateway, n.Subnet)
	}
	if n.Subnet6.IsValid() && !n.Subnet6.Contains(n.Gateway6) {
		return nil, fmt.Errorf("attach network %q to router %q: IPv6 gateway %v is not inside %v", n.Name, router, n.Gateway6, n.Subnet6)
	}
	if !n.Subnet.IsValid() && !n.Subnet6.IsValid() {
		return nil, fmt.Errorf("attach network %q to router %q: the network has no subnet", n.Name, router)
	}
	lr, err := getLR(ctx, c, router)
	if err != nil {
		return nil, fmt.Errorf("attach network %q: %w", n.Name, err)
	}
	// Overlap: only networks sharing this router matter.
	lss, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, c, []ovsdb.Condition{dbops.Owned(owner.KindNetwork, map[string]string{owner.KeyRouter: router})})
	if err != nil {
		return nil, fmt.Errorf("attach network %q to router %q: %w", n.Name, router, err)
	}
	others := map[string]netip.Prefix{}
	for _, ls := range lss {
		if ls.Name == n.Name {
			continue
		}
		if a, err := netip.ParseAddr(ls.OtherConfig["ipv6_prefix"]); err == nil && n.Subnet6.IsValid() && netip.PrefixFrom(a, 64) == n.Subnet6 {
			return nil, fmt.Errorf("attach network %q to router %q: IPv6 subnet %v is also network %q's on that router; networks on one router need distinct subnets", n.Name, router, n.Subnet6, ls.Name)
		}
		p, err := netip.ParsePrefix(ls.OtherConfig["subnet"])
		if err == nil && n.Subnet.IsValid() && p.Overlaps(n.Subnet) {
			return nil, fmt.Errorf("attach network %q to router %q: subnet %v overlaps network %q (%v) on that router; networks on one router need distinct subnets", n.Name, router, n.Subnet, ls.Name, p)
		}
		if err == nil {
			others[ls.Name] = p.Masked()
		}
	}
	// A router linked to other sites (OVN-IC) must not take a subnet one of
	// them brings: ovn-ic's learned routes say which.
	if err := learnedOverlap(ctx, c, lr, n); err != nil {
		return nil, fmt.Errorf("attach network %q to router %q: %w", n.Name, router, err)
	}
	// A service VIP must not land, unreserved, in a subnet the router joins.
	if err := service.CheckAttach(ctx, c, n.Name, n.Subnet.Masked(), others); err != nil {
		return nil, fmt.Errorf("attach network %q to router %q: %w", n.Name, router, err)
	}
	lrpName, lspName := PortNames(router, n.Name)
	if err := checkPortNames(ctx, c, router, n.Name, lrpName, lspName); err != nil {
		return nil, err
	}
	ids := owner.IDs(KindRouterPort, lrpName, map[string]string{owner.KeyRouter: router, owner.KeyNetwork: n.Name})
	lrp := &nbdb.LogicalRouterPort{UUID: "newlrp", Name: lrpName, MAC: MAC(router, n),
		Networks: n.networks(), ExternalIDs: ids}
	lspIDs := owner.IDs(KindRouterPort, lspName, map[string]string{owner.KeyRouter: router, owner.KeyNetwork: n.Name})
	lsp := &nbdb.LogicalSwitchPort{UUID: "newrlsp", Name: lspName, Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": lrpName}, ExternalIDs: lspIDs}
	lrpGuard, err := dbconn.Absent(c, lrp, &lrp.Name)
	if err != nil {
		return nil, err
	}
	lspGuard, err := dbconn.Absent(c, lsp, &lsp.Name)
	if err != nil {
		return nil, err
	}
	// Neither name may appear in the other table meanwhile either.
	asLSP, asLRP := &nbdb.LogicalSwitchPort{Name: lrpName}, &nbdb.LogicalRouterPort{Name: lspName}
	crossLSP, err := dbconn.Absent(c, asLSP, &asLSP.Name)
	if err != nil {
		return nil, err
	}
	crossLRP, err := dbconn.Absent(c, asLRP, &asLRP.Name)
	if err != nil {
		return nil, err
	}
	insLRP, err := c.Create(lrp)
	if err != nil {
		return nil, err
	}
	insLSP, err := c.Create(lsp)
	if err != nil {
		return nil, err
	}
	lrGuard, err := dbops.StillOp(c, lr, &lr.Ports)
	if err != nil {
		return nil, err
	}
	ops := []ovsdb.Operation{lrGuard, lrpGuard, lspGuard, crossLSP, crossLRP}
	ops = append(ops, insLRP...)
	ops = append(ops, insLSP...)
	ops = append(ops,
		dbops.AddRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.UUIDIs(lr.UUID)}, "ports", lrp.UUID),
		dbops.AddRefs(nbdb.LogicalSwitchTable, ourSwitch(n.Name), "ports", lsp.UUID),
		dbops.SetKeys(nbdb.LogicalSwitchTable, ourSwitch(n.Name), "external_ids", map[string]string{owner.KeyRouter: router}),
	)
	// With a gateway, the network is SNATed to its external IP (unless excluded).
	snat, err := attachSNATOps(ctx, c, lr, n)
	if err != nil {
		return nil, fmt.Errorf("attach network %q to router %q: %w", n.Name, router, err)
	}
	return append(ops, snat...), nil
}

// checkPortNames fails with ErrPortNameClash when the attachment's router
// port and switch port names are equal (a router and a network of one
// name) or already name a port of another attachment or of anything else,
// in either table: OVN's Port_Binding names logical switch and router ports
// alike, and ovn-northd drops a duplicate.
func checkPortNames(ctx context.Context, c client.Client, router, network, lrpName, lspName string) error {
	if lrpName == lspName {
		return fmt.Errorf("attach network %q to router %q: both its ports would be named %q: %w; give the router and the network different names", network, router, lrpName, ErrPortNameClash)
	}
	names := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: lrpName}}
	names2 := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: lspName}}
	type held struct{ table, name string }
	var taken []held
	for _, where := range [][]ovsdb.Condition{names, names2} {
		lsps, err := dbops.SelectRows[nbdb.LogicalSwitchPort](ctx, c, where)
		if err != nil {
			return fmt.Errorf("attach network %q to router %q: %w", network, router, err)
		}
		for _, p := range lsps {
			if p.ExternalIDs[owner.KeyRouter] != router || p.ExternalIDs[owner.KeyNetwork] != network || p.Name != lspName {
				taken = append(taken, held{"switch port", p.Name})
			}
		}
		lrps, err := dbops.SelectRows[nbdb.LogicalRouterPort](ctx, c, where)
		if err != nil {
			return fmt.Errorf("attach network %q to router %q: %w", network, router, err)
		}
		for _, p := range lrps {
			if p.ExternalIDs[owner.KeyRouter] != router || p.ExternalIDs[owner.KeyNetwork] != network || p.Name != lrpName {
				taken = append(taken, held{"router port", p.Name})
			}
		}
	}
	if len(taken) > 0 {
		h := taken[0]
		return fmt.Errorf("attach network %q to router %q: port name %q is already a %s of another attachment: %w; rename the router or the network", network, router, h.name, h.table, ErrPortNameClash)
	}
	return nil
}

func getLS(ctx context.Context, c client.Client, name string) (*nbdb.LogicalSwitch, error) {
	lss, err := dbops.SelectRows[nbdb.LogicalSwitch](ctx, c, []ovsdb.Condition{dbops.NameIs(name)})
	if err != nil {
		return nil, fmt.Errorf("read network %q: %w", name, err)
	}
	for _, ls := range lss {
		if owner.Owned(ls.ExternalIDs, owner.KindNetwork) {
			return ls, nil
		}
	}
	if len(lss) > 0 {
		return nil, fmt.Errorf("network %q: Logical_Switch exists but is %w", name, ErrNotOwned)
	}
	return nil, fmt.Errorf("network %q: %w", name, ErrNotFound)
}

// DetachOps returns the operations that detach network (addressed by
// name) from the router it is on, or nil when it is on none. Put them in
// the transaction that deletes the network so no router port is left.
func DetachOps(ctx context.Context, c client.Client, network string) ([]ovsdb.Operation, error) {
	ls, err := getLS(ctx, c, network)
	if err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	r := ls.ExternalIDs[owner.KeyRouter]
	if r == "" {
		return nil, nil
	}
	ports, err := portUUIDs(ctx, c, r, network)
	if err != nil {
		return nil, fmt.Errorf("detach network %q from router %q: %w", network, r, err)
	}
	snat, err := detachSNATOps(ctx, c, r, network)
	if err != nil {
		return nil, fmt.Errorf("detach network %q from router %q: %w", network, r, err)
	}
	return append(detachOps(r, network, ports[network]), snat...), nil
}

// attPorts holds the UUIDs of one attachment's two ports.
type attPorts struct{ lrp, lsp string }

// portUUIDs reads the port UUIDs of router's attachments, by network
// (only network's when network is not "").
func portUUIDs(ctx context.Context, c client.Client, router, network string) (map[string]attPorts, error) {
	sel := map[string]string{owner.KeyRouter: router}
	if network != "" {
		sel[owner.KeyNetwork] = network
	}
	where := []ovsdb.Condition{dbops.Owned(KindRouterPort, sel)}
	tx := dbops.NewTx(c)
	lrpQ := dbops.Query(tx, where, func(p *nbdb.LogicalRouterPort) []any { return []any{&p.UUID, &p.ExternalIDs} })
	lspQ := dbops.Query(tx, where, func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID, &p.ExternalIDs} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read router ports: %w", err)
	}
	lrps, err := lrpQ.Rows()
	if err != nil {
		return nil, err
	}
	lsps, err := lspQ.Rows()
	if err != nil {
		return nil, err
	}
	out := map[string]attPorts{}
	for _, p := range lrps {
		a := out[p.ExternalIDs[owner.KeyNetwork]]
		a.lrp = p.UUID
		out[p.ExternalIDs[owner.KeyNetwork]] = a
	}
	for _, p := range lsps {
		a := out[p.ExternalIDs[owner.KeyNetwork]]
		a.lsp = p.UUID
		out[p.ExternalIDs[owner.KeyNetwork]] = a
	}
	return out, nil
}

// detachOps removes an attachment's ports (non-root rows go with their last
// strong reference) and the switch's router key.
func detachOps(router, network string, p attPorts) []ovsdb.Operation {
	var ops []ovsdb.Operation
	if p.lrp != "" {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.NameIs(router), dbops.Owned(owner.KindRouter, nil)}, "ports", p.lrp))
	}
	if p.lsp != "" {
		ops = append(ops, dbops.DelRefs(nbdb.LogicalSwitchTable, ourSwitch(network), "ports", p.lsp))
	}
	return append(ops, dbops.DelKeys(nbdb.LogicalSwitchTable, ourSwitch(network), "external_ids", owner.KeyRouter))
}

// ourSwitch selects our switch of network name (never a foreign switch that
// happens to share the name).
func ourSwitch(name string) []ovsdb.Condition {
	return []ovsdb.Condition{dbops.NameIs(name), dbops.Owned(owner.KindNetwork, nil)}
}
