package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// nameWhere selects the ACL of policy name.
func nameWhere(name string) []ovsdb.Condition {
	return []ovsdb.Condition{dbops.Owned(owner.KindPolicy, map[string]string{owner.KeyName: name})}
}

// Create validates s, checks that its target and source networks exist and
// are ours, and writes the policy in one transaction: an ACL on the target
// network's port group, plus an Address_Set when s has CIDR sources. Port
// groups missing on older networks are created with their current ports.
// Nothing is written when any check fails.
//
// A create whose reply is lost (dbconn.ErrConnectionLost) runs again on the
// new leader; from then on a policy of that name with the same target,
// action and priority is this create's own result and reported as success.
func Create(ctx context.Context, c client.Client, s Spec) (*Policy, error) {
	var p *Policy
	err := dbconn.Retry(ctx, func(again bool) error {
		var err error
		p, err = create(ctx, c, s, false)
		if again && errors.Is(err, ErrExists) {
			if got, gerr := Get(ctx, c, s.Name); gerr == nil && got.Network == s.Network && got.Action == s.Action && got.Priority == s.Priority {
				p, err = got, nil
			}
		}
		return err
	})
	return p, err
}

// LogMeter names the NB Meter that rate-limits the log lines of policies
// created with --log to LogRate packets per second (traffic is not
// affected, only how much of it is logged). It is created on first use.
const (
	LogMeter = "ovlmgr-acl-log"
	LogRate  = 100
)

// EnsureLogMeter creates the log meter unless it exists, in a transaction
// of its own (the meter is shared by every logged ACL and never removed).
// A concurrent creation is success.
func EnsureLogMeter(ctx context.Context, c client.Client) error {
	ops, err := logMeterOps(ctx, c)
	if err != nil || len(ops) == 0 {
		return err
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil && !dbconn.FailedWait(err, 0) {
		return fmt.Errorf("create meter %s: %w", LogMeter, err)
	}
	return nil
}

// logMeterOps returns the operations that create the log meter, or nil
// when it exists.
func logMeterOps(ctx context.Context, c client.Client) ([]ovsdb.Operation, error) {
	n, err := dbops.Count[nbdb.Meter](ctx, c, []ovsdb.Condition{dbops.NameIs(LogMeter)})
	if err != nil {
		return nil, fmt.Errorf("read meter %s: %w", LogMeter, err)
	}
	if n > 0 {
		return nil, nil
	}
	ids := owner.IDs("meter", LogMeter, nil)
	band := &nbdb.MeterBand{UUID: "logband", Action: nbdb.MeterBandActionDrop, Rate: LogRate, ExternalIDs: ids}
	m := &nbdb.Meter{Name: LogMeter, Unit: nbdb.MeterUnitPktps, Bands: []string{band.UUID}, ExternalIDs: ids}
	guard, err := dbconn.Absent(c, m, &m.Name)
	if err != nil {
		return nil, err
	}
	ops := []ovsdb.Operation{guard}
	for _, row := range []model.Model{band, m} {
		ins, err := c.Create(row)
		if err != nil {
			return nil, err
		}
		ops = append(ops, ins...)
	}
	return ops, nil
}

func create(ctx context.Context, c client.Client, s Spec, retried bool) (*Policy, error) {
	srcs, err := s.Validate()
	if err != nil {
		return nil, fmt.Errorf("create policy %q: %w", s.Name, err)
	}
	fail := func(err error) (*Policy, error) { return nil, fmt.Errorf("create policy %q: %w", s.Name, err) }

	// Guard 0: no policy of this name (policy ACLs are all to-lport).
	ops := []ovsdb.Operation{dbops.None(nbdb.ACLTable, nameWhere(s.Name), "direction", string(nbdb.ACLDirectionToLport))}
	nets := []string{s.Network}
	var cidrs, cidrs6 []string
	for _, src := range srcs {
		if src.network != "" && src.network != s.Network {
			nets = append(nets, src.network)
		}
		if src.cidr.IsValid() && src.cidr.Addr().Is4() {
			cidrs = append(cidrs, src.cidr.String())
		} else if src.cidr.IsValid() {
			cidrs6 = append(cidrs6, src.cidr.String())
		}
	}
	routerOf := map[string]string{}
	for i, n := range nets {
		ni, err := readNetwork(ctx, c, n)
		if err != nil {
			if i > 0 {
				return fail(names.Wrap("from", n, err))
			}
			return fail(names.Wrap("network", n, err))
		}
		routerOf[n] = ni.ls.ExternalIDs[owner.KeyRouter]
		ops = append(ops, networkGuard(n))
		more, err := ensurePortGroupOps(ctx, c, ni)
		if err != nil {
			return fail(err)
		}
		ops = append(ops, more...)
	}
	ids := owner.IDs(owner.KindPolicy, s.Name, map[string]string{
		owner.KeyNetwork: s.Network,
		keyAction:        s.Action,
		keyFrom:          strings.Join(s.From, ","),
		keyPriority:      strconv.Itoa(s.Priority),
	})
	if s.Proto != "" {
		ids[keyProto] = s.Proto
	}
	if s.Port != "" {
		ids[keyPort] = s.Port
	}
	for _, src := range srcs {
		if src.network != "" {
			ids[keyFromNet+src.network] = "network"
		}
	}
	for i, set := range [][]string{cidrs, cidrs6} {
		if len(set) == 0 {
			continue
		}
		asName := AddressSetName(s.Name)
		if i == 1 {
			asName = AddressSetName6(s.Name)
		}
		as := &nbdb.AddressSet{UUID: fmt.Sprintf("newas%d", i), Name: asName, Addresses: set,
			ExternalIDs: owner.IDs(owner.KindPolicy, s.Name, map[string]string{owner.KeyNetwork: s.Network})}
		guard, err := dbconn.Absent(c, as, &as.Name)
		if err != nil {
			return fail(err)
		}
		ins, err := c.Create(as)
		if err != nil {
			return fail(err)
		}
		ops = append(ops, guard)
		ops = append(ops, ins...)
	}
	name := s.Name
	acl := &nbdb.ACL{UUID: "newacl", Name: &name, Direction: nbdb.ACLDirectionToLport,
		Priority: ACLPriority(s.Priority, s.Action), Match: buildMatch(&s, srcs), ExternalIDs: ids, Log: s.Log}
	if s.Action == Allow {
		acl.Action = nbdb.ACLActionAllowRelated
	} else {
		acl.Action = nbdb.ACLActionDrop
	}
	// Denies always log (rate-limited by the meter): `ovlmgr events` and
	// the exporter's ACL hit counters see every policy that drops traffic.
	if s.Log || s.Action == Deny {
		sev := nbdb.ACLSeverityInfo
		if s.Action == Deny {
			sev = nbdb.ACLSeverityWarning
		}
		meter := LogMeter
		acl.Log, acl.Severity, acl.Meter = true, &sev, &meter
		more, err := logMeterOps(ctx, c)
		if err != nil {
			return fail(err)
		}
		ops = append(ops, more...)
	}
	more, err := aclInsertOps(c, s.Network, []*nbdb.ACL{acl})
	if err != nil {
		return fail(err)
	}
	ops = append(ops, more...)
	tx := dbops.NewTx(c)
	var aclIns *dbops.Op // the insert of the policy's ACL: its handle reads the new UUID
	for _, op := range ops {
		if op.Op == ovsdb.OperationInsert && op.UUIDName == acl.UUID {
			aclIns = tx.Op(op)
		} else {
			tx.Add(op)
		}
	}
	if err := tx.Transact(ctx); err != nil {
		var te *dbconn.TxError
		switch {
		case errors.As(err, &te) && te.Op != nil && te.Op.Op == ovsdb.OperationWait && te.Op.Table == nbdb.MeterTable && !retried:
			// Another create added the log meter meanwhile: now it exists.
			return create(ctx, c, s, true)
		case dbconn.FailedWait(err, 0):
			return fail(fmt.Errorf("a policy with this name %w (policy names are unique across networks)", ErrExists))
		case errors.As(err, &te) && te.Op != nil && te.Op.Op == ovsdb.OperationWait && te.Op.Table == nbdb.LogicalSwitchTable:
			return fail(fmt.Errorf("a network it names was deleted or changed meanwhile; retry"))
		case errors.As(err, &te) && te.Op != nil && te.Op.Op == ovsdb.OperationWait && te.Op.Table == nbdb.AddressSetTable:
			return fail(fmt.Errorf("Address_Set %q already exists in NB", AddressSetName(s.Name)))
		}
		return fail(err)
	}
	p := &Policy{Spec: s, ACLPriority: acl.Priority, Match: acl.Match, Warnings: reachWarnings(s.Network, nets[1:], routerOf)}
	if aclIns != nil {
		p.UUID = aclIns.UUID()
	}
	return p, nil
}

// fromACL rebuilds a policy from its ACL.
func fromACL(a *nbdb.ACL) *Policy {
	ids := a.ExternalIDs
	prio, _ := strconv.Atoi(ids[keyPriority])
	var from []string
	if ids[keyFrom] != "" {
		from = strings.Split(ids[keyFrom], ",")
	}
	return &Policy{Spec: Spec{Name: ids[owner.KeyName], Network: ids[owner.KeyNetwork], Action: ids[keyAction],
		From: from, Proto: ids[keyProto], Port: ids[keyPort], Priority: prio, Log: a.Log},
		ACLPriority: a.Priority, Match: a.Match, UUID: a.UUID}
}

// readPolicies reads policy ACLs matching extra (owner keys added).
func readPolicies(ctx context.Context, c client.Client, extra map[string]string) ([]*Policy, error) {
	acls, err := dbops.SelectRows[nbdb.ACL](ctx, c, []ovsdb.Condition{dbops.Owned(owner.KindPolicy, extra)})
	if err != nil {
		return nil, err
	}
	out := make([]*Policy, 0, len(acls))
	for _, a := range acls {
		out = append(out, fromACL(a))
	}
	return out, nil
}

// Order sorts policies the way OVN evaluates them: by network, then ACL
// priority (highest first), then name; and numbers them per network.
func Order(ps []*Policy) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Network != b.Network {
			return a.Network < b.Network
		}
		if a.ACLPriority != b.ACLPriority {
			return a.ACLPriority > b.ACLPriority
		}
		return a.Name < b.Name
	})
	n := 0
	for i, p := range ps {
		if i == 0 || ps[i-1].Network != p.Network {
			n = 0
		}
		n++
		p.Order = n
	}
}

// Get reads policy name.
func Get(ctx context.Context, c client.Client, name string) (*Policy, error) {
	ps, err := readPolicies(ctx, c, map[string]string{owner.KeyName: name})
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", name, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("policy %q: %w", name, ErrNotFound)
	}
	// Its order among its network's policies.
	all, err := readPolicies(ctx, c, map[string]string{owner.KeyNetwork: ps[0].Network})
	if err != nil {
		return nil, fmt.Errorf("read policies of network %q: %w", ps[0].Network, err)
	}
	Order(all)
	for _, p := range all {
		if p.Name == name {
			return p, nil
		}
	}
	return ps[0], nil
}

// List reads the policies on network (all networks when ""), in effective
// evaluation order per network.
func List(ctx context.Context, c client.Client, network string) ([]*Policy, error) {
	extra := map[string]string{}
	if network != "" {
		extra[owner.KeyNetwork] = network
	}
	ps, err := readPolicies(ctx, c, extra)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	Order(ps)
	return ps, nil
}

// Isolations returns the isolation mode of every network with a port group.
func Isolations(ctx context.Context, c client.Client) (map[string]string, error) {
	pgs, err := dbops.SelectRows(ctx, c, []ovsdb.Condition{dbops.Owned(KindPortGroup, nil)},
		func(pg *nbdb.PortGroup) []any { return []any{&pg.Name, &pg.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("read port groups: %w", err)
	}
	out := map[string]string{}
	for _, pg := range pgs {
		m := pg.ExternalIDs[KeyIsolation]
		if m == "" {
			m = DefaultAllow
		}
		out[pg.ExternalIDs[owner.KeyNetwork]] = m
	}
	return out, nil
}

// Delete deletes policy name (its ACL and address set) in one transaction.
// Retried after a lost reply, finding no policy means the lost transaction
// committed: success.
func Delete(ctx context.Context, c client.Client, name string) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := deletePolicy(ctx, c, name)
		if again && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}

func deletePolicy(ctx context.Context, c client.Client, name string) error {
	ps, err := readPolicies(ctx, c, map[string]string{owner.KeyName: name})
	if err != nil {
		return fmt.Errorf("delete policy %q: %w", name, err)
	}
	if len(ps) == 0 {
		return fmt.Errorf("delete policy %q: %w", name, ErrNotFound)
	}
	var ops []ovsdb.Operation
	for _, p := range ps {
		// The ACL goes with its last strong reference (the port group).
		ops = append(ops, dbops.DelRefs(nbdb.PortGroupTable, pgWhere(p.Network), "acls", p.UUID))
	}
	for _, as := range []string{AddressSetName(name), AddressSetName6(name)} {
		ops = append(ops, dbops.Delete(nbdb.AddressSetTable, []ovsdb.Condition{dbops.NameIs(as), dbops.Owned(owner.KindPolicy, map[string]string{owner.KeyName: name})}))
	}
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		return fmt.Errorf("delete policy %q: %w", name, err)
	}
	return nil
}

// reachWarnings names the source networks that have no path to target: a
// network reaches another only through a router both are attached to (or
// by being the same network). Such a policy is accepted (the networks may
// be attached later) but matches nothing from them until then.
func reachWarnings(target string, sources []string, routerOf map[string]string) []string {
	var out []string
	on := func(n string) string {
		if r := routerOf[n]; r != "" {
			return "on router " + r
		}
		return "on no router"
	}
	for _, src := range sources {
		if r := routerOf[src]; r != "" && r == routerOf[target] {
			continue
		}
		out = append(out, fmt.Sprintf("--from %s: network %s is %s and network %s is %s: no path between them, so nothing from %s reaches %s to match until both are attached to one router",
			src, src, on(src), target, on(target), src, target))
	}
	return out
}
