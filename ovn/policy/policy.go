// Package policy manages network policies and network isolation with OVN
// port groups and ACLs. Every network has a Port_Group (PortGroupName)
// holding its container ports; a policy is one to-lport ACL on the target
// network's port group, so it filters traffic arriving at that network's
// containers. CIDR sources live in an Address_Set per policy; network
// sources use the address set OVN derives from the source network's port
// group ("$<group>_ip4", "$<group>_ip6"), so only real, port-secured
// addresses match. Policies match both families: a network source is its
// IPv4 and IPv6 addresses, CIDRs of either family go to one address set per
// family (AddressSetName, AddressSetName6), icmp is ICMPv4 and ICMPv6. IPv6
// neighbour discovery passes OVN's ACL stage ahead of any ACL, so it keeps
// working under default-deny.
//
// Precedence: higher user priority first; at equal priority deny wins over
// allow (ACL priority = 1000 + 2*priority + 1 for deny, + 0 for allow).
// Isolation default-deny adds, below every policy (ACL priority 900), a
// drop of all IP traffic to the network's ports and an allow-related of
// all IP traffic from them, so replies to the network's own connections
// come back. Allows are allow-related (stateful): replies pass untouched.
package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Owner kinds and external_ids keys of the rows this package writes.
const (
	KindPortGroup = "port-group" // a network's Port_Group
	KindIsolation = "isolation"  // the ACLs of a default-deny network
	// KeyIsolation holds a network's isolation mode on its Port_Group and
	// Logical_Switch.
	KeyIsolation = "ovlmgr.io/isolation"

	keyAction   = "ovlmgr.io/action"
	keyFrom     = "ovlmgr.io/from"
	keyProto    = "ovlmgr.io/proto"
	keyPort     = "ovlmgr.io/port"
	keyPriority = "ovlmgr.io/priority"
	// keyFromNet + NET marks a policy that uses network NET as a source.
	keyFromNet = "ovlmgr.io/from-net."
)

// Isolation modes.
const (
	DefaultAllow = "default-allow"
	DefaultDeny  = "default-deny"
)

// Actions.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Priority bounds of policies and the ACL priorities they map to.
const (
	MinPriority       = 0
	MaxPriority       = 1000
	DefaultPriority   = 100
	aclBase           = 1000
	isolationPriority = 900
)

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrNotOwned = errors.New("not managed by ovlmgr")
	ErrInUse    = errors.New("in use")
)

// ACLPriority maps a user priority to the OVN ACL priority: higher user
// priority first, and deny before allow at equal user priority.
func ACLPriority(priority int, action string) int {
	p := aclBase + 2*priority
	if action == Deny {
		p++
	}
	return p
}

// ValidateIsolation checks an isolation mode ("" counts as default-allow).
func ValidateIsolation(mode string) error {
	switch mode {
	case "", DefaultAllow, DefaultDeny:
		return nil
	}
	return names.Bad("isolation", mode, "allowed are %s, %s", DefaultDeny, DefaultAllow)
}

// Spec is a policy as the user gives it.
type Spec struct {
	Name    string `json:"name" yaml:"name"`
	Network string `json:"network" yaml:"network"` // target: the policy filters traffic to this network's containers
	Action  string `json:"action" yaml:"action"`   // allow or deny
	// From lists sources: network names, IPv4 CIDRs or addresses, or "any".
	// Empty means any.
	From     []string `json:"from" yaml:"from"`
	Proto    string   `json:"proto,omitempty" yaml:"proto,omitempty"` // "", tcp, udp or icmp
	Port     string   `json:"port,omitempty" yaml:"port,omitempty"`   // "N" or "N-M" (tcp/udp only)
	Priority int      `json:"priority" yaml:"priority"`
	Log      bool     `json:"log" yaml:"log"`
}

// Policy is a policy as stored, with what OVN evaluates.
type Policy struct {
	Spec `yaml:",inline"`
	// Order is the evaluation position among its network's policies
	// (1 = evaluated first; the first match decides).
	Order       int    `json:"order" yaml:"order"`
	ACLPriority int    `json:"aclPriority" yaml:"aclPriority"`
	Match       string `json:"match" yaml:"match"`
	UUID        string `json:"uuid" yaml:"uuid"`
	// Warnings, from Create only: source networks (--from) with no path to
	// the target network (not on one router with it).
	Warnings []string `json:"warnings,omitempty" yaml:"warnings,omitempty"`
}

// source is a parsed From entry.
type source struct {
	any     bool
	network string
	cidr    netip.Prefix
}

// Validate checks s without the database and normalises From, Proto and
// Port. Every error names the field, the value and what is allowed.
func (s *Spec) Validate() ([]source, error) {
	if err := names.Validate("policy name", s.Name); err != nil {
		return nil, err
	}
	if s.Network == "" {
		return nil, &names.FieldError{Field: "network", Problem: ": the target network is required"}
	}
	if err := names.Validate("network", s.Network); err != nil {
		return nil, err
	}
	switch s.Action {
	case Allow, Deny:
	default:
		return nil, names.Bad("action", s.Action, "give exactly one of {allow} or {deny}")
	}
	if s.Priority < MinPriority || s.Priority > MaxPriority {
		return nil, names.Bad("priority", s.Priority, "allowed is %d..%d (higher is evaluated first)", MinPriority, MaxPriority)
	}
	s.Proto = strings.ToLower(s.Proto)
	switch s.Proto {
	case "", "tcp", "udp", "icmp":
	default:
		return nil, names.Bad("proto", s.Proto, "allowed are tcp, udp, icmp")
	}
	if s.Port != "" {
		if s.Proto != "tcp" && s.Proto != "udp" {
			return nil, &names.FieldError{Field: "port", Value: s.Port, Problem: "needs {proto} tcp or udp"}
		}
		lo, hi, err := parsePorts(s.Port)
		if err != nil {
			return nil, err
		}
		if lo == hi {
			s.Port = strconv.Itoa(lo)
		} else {
			s.Port = fmt.Sprintf("%d-%d", lo, hi)
		}
	}
	var srcs []source
	seen := map[string]bool{}
	var from []string
	for _, f := range s.From {
		f = strings.TrimSpace(f)
		var src source
		switch {
		case f == "any":
			src.any = true
		case strings.Contains(f, "/") || strings.Contains(f, ":") || isAddr(f):
			p, err := parseCIDR(f)
			if err != nil {
				return nil, err
			}
			src.cidr = p
			f = p.String()
		case names.Valid(f):
			src.network = f
		default:
			return nil, names.Bad("from", f, "allowed are a network name, a CIDR (198.18.0.0/24, fd00:198:18::/64) or address of either family, or any")
		}
		if seen[f] {
			continue
		}
		seen[f] = true
		from = append(from, f)
		srcs = append(srcs, src)
	}
	if len(srcs) > 1 {
		for _, src := range srcs {
			if src.any {
				return nil, &names.FieldError{Field: "from", Value: "any", Problem: "cannot be combined with other sources"}
			}
		}
	}
	if len(srcs) == 0 {
		srcs = []source{{any: true}}
		from = []string{"any"}
	}
	s.From = from
	return srcs, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func parseCIDR(f string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(f, "/") {
		var err error
		p, err = netip.ParsePrefix(f)
		if err != nil {
			return p, names.Bad("from", f, "invalid CIDR (want e.g. 198.18.0.0/24)")
		}
	} else {
		a, err := netip.ParseAddr(f)
		if err != nil {
			return p, names.Bad("from", f, "invalid address")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return p, names.Bad("from", f, "an IPv4-mapped IPv6 address; write the IPv4 address")
	}
	if p.Addr().Zone() != "" {
		return p, names.Bad("from", f, "a zoned address; want a CIDR or address without %%zone")
	}
	if p.Masked() != p {
		return p, names.Bad("from", f, "host bits set; did you mean %v?", p.Masked())
	}
	return p, nil
}

func parsePorts(s string) (int, int, error) {
	lo, hi, rng := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return 0, 0, names.Bad("port", s, "want a port 1..65535 or a range N-M")
	}
	if !rng {
		return a, a, nil
	}
	b, err := strconv.Atoi(hi)
	if err != nil || b < 1 || b > 65535 || b < a {
		return 0, 0, names.Bad("port", s, "want a port 1..65535 or a range N-M with N <= M")
	}
	return a, b, nil
}

// buildMatch returns the ACL match of a validated spec.
func buildMatch(s *Spec, srcs []source) string {
	parts := []string{"outport == @" + PortGroupName(s.Network), "ip"}
	var alts []string
	has4, has6 := false, false
	for _, src := range srcs {
		switch {
		case src.any:
		case src.network != "":
			pg := PortGroupName(src.network)
			alts = append(alts, "ip4.src == $"+pg+"_ip4", "ip6.src == $"+pg+"_ip6")
		case src.cidr.Addr().Is4():
			has4 = true
		default:
			has6 = true
		}
	}
	if has4 {
		alts = append(alts, "ip4.src == $"+AddressSetName(s.Name))
	}
	if has6 {
		alts = append(alts, "ip6.src == $"+AddressSetName6(s.Name))
	}
	switch len(alts) {
	case 0:
	case 1:
		parts = append(parts, alts[0])
	default:
		parts = append(parts, "("+strings.Join(alts, " || ")+")")
	}
	switch s.Proto {
	case "icmp":
		parts = append(parts, "(icmp4 || icmp6)")
	case "tcp", "udp":
		parts = append(parts, s.Proto)
		if s.Port != "" {
			lo, hi, _ := parsePorts(s.Port)
			if lo == hi {
				parts = append(parts, fmt.Sprintf("%s.dst == %d", s.Proto, lo))
			} else {
				parts = append(parts, fmt.Sprintf("%s.dst >= %d && %s.dst <= %d", s.Proto, lo, s.Proto, hi))
			}
		}
	}
	return strings.Join(parts, " && ")
}

// netInfo is what we read about a network.
type netInfo struct {
	ls *nbdb.LogicalSwitch
	pg *nbdb.PortGroup // nil when the network has no port group yet
}

// readNetwork reads our network name and its port group.
func readNetwork(ctx context.Context, c client.Client, name string) (*netInfo, error) {
	tx := dbops.NewTx(c)
	lsq := dbops.Query[nbdb.LogicalSwitch](tx, []ovsdb.Condition{dbops.NameIs(name)})
	// Not its acls or ports: they grow with policies and containers.
	pgq := dbops.Query[nbdb.PortGroup](tx, []ovsdb.Condition{dbops.NameIs(PortGroupName(name))},
		func(pg *nbdb.PortGroup) []any { return []any{&pg.UUID, &pg.Name, &pg.ExternalIDs} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read network %q: %w", name, err)
	}
	lss, err := lsq.Rows()
	if err != nil {
		return nil, err
	}
	pgs, err := pgq.Rows()
	if err != nil {
		return nil, err
	}
	ni := &netInfo{}
	for _, ls := range lss {
		if owner.Owned(ls.ExternalIDs, owner.KindNetwork) {
			ni.ls = ls
		}
	}
	if ni.ls == nil {
		if len(lss) > 0 {
			return nil, fmt.Errorf("network %q: Logical_Switch exists but is %w", name, ErrNotOwned)
		}
		return nil, fmt.Errorf("network %q: %w", name, ErrNotFound)
	}
	if len(pgs) > 0 {
		if !owner.Owned(pgs[0].ExternalIDs, KindPortGroup) {
			return nil, fmt.Errorf("network %q: Port_Group %q exists but is %w", name, PortGroupName(name), ErrNotOwned)
		}
		ni.pg = pgs[0]
	}
	return ni, nil
}

// networkGuard fails the transaction unless our network still exists.
func networkGuard(name string) ovsdb.Operation {
	return dbops.Exists(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(name), dbops.Owned(owner.KindNetwork, nil)}, "name", name)
}

// pgWhere selects our port group of network.
func pgWhere(network string) []ovsdb.Condition {
	return []ovsdb.Condition{dbops.NameIs(PortGroupName(network)), dbops.Owned(KindPortGroup, nil)}
}

// newPortGroupOps inserts network's port group with ports (UUIDs).
func newPortGroupOps(c client.Client, network, mode string, ports []string) ([]ovsdb.Operation, error) {
	ids := owner.IDs(KindPortGroup, network, map[string]string{owner.KeyNetwork: network})
	if mode != "" {
		ids[KeyIsolation] = mode
	}
	pg := &nbdb.PortGroup{Name: PortGroupName(network), Ports: ports, ExternalIDs: ids}
	return c.Create(pg)
}

// ensurePortGroupOps returns the operations that create ni's port group
// holding every container port of the switch when it has none (networks
// created before port groups existed), guarded against concurrent port
// changes. It returns nil when the group exists.
func ensurePortGroupOps(ctx context.Context, c client.Client, ni *netInfo) ([]ovsdb.Operation, error) {
	if ni.pg != nil {
		return nil, nil
	}
	var ports []string
	if len(ni.ls.Ports) > 0 {
		lsps, err := dbops.SelectRows(ctx, c, []ovsdb.Condition{dbops.Equal("type", "")},
			func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID} })
		if err != nil {
			return nil, fmt.Errorf("read ports of network %q: %w", ni.ls.Name, err)
		}
		in := map[string]bool{}
		for _, u := range ni.ls.Ports {
			in[u] = true
		}
		for _, p := range lsps {
			if in[p.UUID] {
				ports = append(ports, p.UUID)
			}
		}
	}
	ins, err := newPortGroupOps(c, ni.ls.Name, ni.ls.ExternalIDs[KeyIsolation], ports)
	if err != nil {
		return nil, err
	}
	guard, err := dbops.StillOp(c, ni.ls, &ni.ls.Ports)
	if err != nil {
		return nil, err
	}
	ni.pg = &nbdb.PortGroup{Name: PortGroupName(ni.ls.Name)}
	return append([]ovsdb.Operation{guard}, ins...), nil
}

// JoinOps returns the operation that adds the container port lsp (a UUID,
// or the named UUID of a port inserted earlier in the same transaction) to
// network's port group. Put it in the transaction that creates the port.
// Leaving needs nothing: Port_Group.ports holds weak references, so
// deleting the port removes it from the group.
func JoinOps(network, lsp string) []ovsdb.Operation {
	return []ovsdb.Operation{dbops.AddRefs(nbdb.PortGroupTable, pgWhere(network), "ports", lsp)}
}

var (
	sevWarning = nbdb.ACLSeverityWarning
	meterName  = LogMeter
)

// isolationACLs returns the ACLs of mode for network (none for default-allow).
func isolationACLs(network, mode string) []*nbdb.ACL {
	if mode != DefaultDeny {
		return nil
	}
	pg := PortGroupName(network)
	ids := func(dir string) map[string]string {
		return owner.IDs(KindIsolation, network, map[string]string{owner.KeyNetwork: network, KeyIsolation: mode, "ovlmgr.io/direction": dir})
	}
	name := network
	if len(name) > 50 {
		name = name[:50]
	}
	name += "-default-deny"
	return []*nbdb.ACL{
		// The drop logs (rate-limited by LogMeter): denied connections show
		// in `ovlmgr events` as "denied by default-deny of network N".
		{UUID: "isoin", Name: &name, Direction: nbdb.ACLDirectionToLport, Priority: isolationPriority,
			Match: "outport == @" + pg + " && ip", Action: nbdb.ACLActionDrop, ExternalIDs: ids("to-lport"),
			Log: true, Severity: &sevWarning, Meter: &meterName},
		{UUID: "isoout", Name: &name, Direction: nbdb.ACLDirectionFromLport, Priority: isolationPriority,
			Match: "inport == @" + pg + " && ip", Action: nbdb.ACLActionAllowRelated, ExternalIDs: ids("from-lport")},
	}
}

// CreateNetworkOps returns the operations that create network's port
// group (empty) and, for default-deny, its isolation ACLs. Put them in the
// transaction that inserts the network's Logical_Switch. A default-deny
// network's drop logs through LogMeter: call EnsureLogMeter first.
func CreateNetworkOps(c client.Client, network, mode string) ([]ovsdb.Operation, error) {
	if err := ValidateIsolation(mode); err != nil {
		return nil, err
	}
	if mode == "" {
		mode = DefaultAllow
	}
	ops, err := newPortGroupOps(c, network, mode, nil)
	if err != nil {
		return nil, err
	}
	more, err := aclInsertOps(c, network, isolationACLs(network, mode))
	if err != nil {
		return nil, err
	}
	return append(ops, more...), nil
}

// aclInsertOps inserts acls and links them to network's port group.
func aclInsertOps(c client.Client, network string, acls []*nbdb.ACL) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	var uuids []string
	for _, a := range acls {
		ins, err := c.Create(a)
		if err != nil {
			return nil, err
		}
		ops = append(ops, ins...)
		uuids = append(uuids, a.UUID)
	}
	if len(uuids) > 0 {
		ops = append(ops, dbops.AddRefs(nbdb.PortGroupTable, pgWhere(network), "acls", uuids...))
	}
	return ops, nil
}

// IsolationOps returns the operations that set network's isolation mode:
// its isolation ACLs are replaced and the mode is recorded in external_ids
// of its port group and switch. The port group is created if missing.
func IsolationOps(ctx context.Context, c client.Client, network, mode string) ([]ovsdb.Operation, error) {
	if err := ValidateIsolation(mode); err != nil {
		return nil, fmt.Errorf("network %q: %w", network, err)
	}
	if mode == "" {
		mode = DefaultAllow
	}
	ni, err := readNetwork(ctx, c, network)
	if err != nil {
		return nil, err
	}
	if mode == DefaultDeny {
		if err := EnsureLogMeter(ctx, c); err != nil {
			return nil, err
		}
	}
	ops, err := ensurePortGroupOps(ctx, c, ni)
	if err != nil {
		return nil, err
	}
	// The isolation ACLs present now; a guard makes concurrent updates of
	// one network fail instead of stacking ACLs.
	where := []ovsdb.Condition{dbops.Owned(KindIsolation, map[string]string{owner.KeyNetwork: network})}
	old, err := dbops.SelectRows[nbdb.ACL](ctx, c, where)
	if err != nil {
		return nil, fmt.Errorf("read isolation of network %q: %w", network, err)
	}
	var oldUUIDs []string
	for _, a := range old {
		oldUUIDs = append(oldUUIDs, a.UUID)
	}
	if len(old) == 0 {
		ops = append(ops, dbops.None(nbdb.ACLTable, where, "priority", isolationPriority))
	} else {
		ops = append(ops, dbops.Exists(nbdb.ACLTable, append(where, dbops.UUIDIs(old[0].UUID)), "priority", old[0].Priority))
		ops = append(ops, dbops.DelRefs(nbdb.PortGroupTable, pgWhere(network), "acls", oldUUIDs...))
	}
	more, err := aclInsertOps(c, network, isolationACLs(network, mode))
	if err != nil {
		return nil, err
	}
	ops = append(ops, more...)
	ops = append(ops,
		dbops.SetKeys(nbdb.PortGroupTable, pgWhere(network), "external_ids", map[string]string{KeyIsolation: mode}),
		dbops.SetKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.UUIDIs(ni.ls.UUID)}, "external_ids", map[string]string{KeyIsolation: mode}))
	return ops, nil
}

// SetIsolation sets network's isolation mode in one transaction.
func SetIsolation(ctx context.Context, c client.Client, network, mode string) error {
	ops, err := IsolationOps(ctx, c, network, mode)
	if err != nil {
		return fmt.Errorf("set isolation of network %q: %w", network, err)
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		return fmt.Errorf("set isolation of network %q: %w (retry if the network changed meanwhile)", network, err)
	}
	return nil
}

// Isolation returns network's isolation mode (default-allow when unset).
func Isolation(ctx context.Context, c client.Client, network string) (string, error) {
	ni, err := readNetwork(ctx, c, network)
	if err != nil {
		return "", err
	}
	return isolationOf(ni), nil
}

func isolationOf(ni *netInfo) string {
	if ni.pg != nil && ni.pg.ExternalIDs[KeyIsolation] != "" {
		return ni.pg.ExternalIDs[KeyIsolation]
	}
	if m := ni.ls.ExternalIDs[KeyIsolation]; m != "" {
		return m
	}
	return DefaultAllow
}

// DeleteNetworkOps returns the operations that remove network's port
// group with all its ACLs (policies targeting it, isolation) and the
// address sets of those policies. Put them in the transaction that deletes
// the network. It refuses (ErrInUse) while policies on other networks use
// network as a source, and guards against such a policy appearing.
func DeleteNetworkOps(ctx context.Context, c client.Client, network string) ([]ovsdb.Operation, error) {
	refWhere := []ovsdb.Condition{
		dbops.Owned(owner.KindPolicy, map[string]string{keyFromNet + network: "network"}),
		dbops.Excludes(map[string]string{owner.KeyNetwork: network}),
	}
	refs, err := dbops.SelectRows[nbdb.ACL](ctx, c, refWhere)
	if err != nil {
		return nil, fmt.Errorf("read policies using network %q: %w", network, err)
	}
	if len(refs) > 0 {
		var users []string
		for _, a := range refs {
			users = append(users, fmt.Sprintf("%s (on network %s)", a.ExternalIDs[owner.KeyName], a.ExternalIDs[owner.KeyNetwork]))
		}
		sort.Strings(users)
		return nil, &names.FieldError{Err: ErrInUse,
			Problem: fmt.Sprintf("network %q is a source ({from}) of policies %s: %v; delete them first", network, strings.Join(users, ", "), ErrInUse)}
	}
	return []ovsdb.Operation{
		dbops.None(nbdb.ACLTable, refWhere, "direction", string(nbdb.ACLDirectionToLport)),
		dbops.Delete(nbdb.PortGroupTable, pgWhere(network)),
		dbops.Delete(nbdb.AddressSetTable, []ovsdb.Condition{dbops.Owned(owner.KindPolicy, map[string]string{owner.KeyNetwork: network})}),
	}, nil
}
