package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

func readLBs(ctx context.Context, nb client.Client, conds ...ovsdb.Condition) ([]*nbdb.LoadBalancer, error) {
	lbs, err := dbops.SelectRows[nbdb.LoadBalancer](ctx, nb, conds)
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	out := lbs[:0]
	for _, lb := range lbs {
		if owner.Owned(lb.ExternalIDs, owner.KindService) {
			out = append(out, lb)
		}
	}
	return out, nil
}

func getLB(ctx context.Context, nb client.Client, network, name string) (*nbdb.LoadBalancer, error) {
	lbs, err := readLBs(ctx, nb, dbops.NameIs(LBName(network, name)))
	if err != nil {
		return nil, err
	}
	if len(lbs) == 0 {
		return nil, fmt.Errorf("service %q in network %q: %w", name, network, ErrNotFound)
	}
	return lbs[0], nil
}

func toService(lb *nbdb.LoadBalancer) *Service {
	ids := lb.ExternalIDs
	s := &Service{UUID: lb.UUID, Name: ids[owner.KeyName], Network: ids[owner.KeyNetwork], VIP: ids[KeyVIP], FQDN: ids[KeyDNSName],
		HCSource: ids[KeyHCSource]}
	for _, b := range lb.Vips {
		for _, ap := range parseAddrPorts(b) {
			s.Backends = append(s.Backends, ap.String())
		}
	}
	sort.Strings(s.Backends)
	if s.Backends == nil {
		s.Backends = []string{}
	}
	for _, ap := range parseAddrPorts(ids[KeyBackends]) {
		s.Static = append(s.Static, ap.String())
	}
	if sel := ids[KeySelector]; sel != "" {
		s.Selector, _ = ParseSelector([]string{sel})
		s.TargetPort, _ = strconv.Atoi(ids[KeyTargetPort])
	}
	s.HealthCheck, _ = ParseHealthCheck(ids[KeyHealthCheck])
	return s
}

// Get returns the service name of network, with the switches and routers
// its Load_Balancer is attached to.
func Get(ctx context.Context, nb client.Client, network, name string) (*Service, error) {
	lb, err := getLB(ctx, nb, network, name)
	if err != nil {
		return nil, err
	}
	s := toService(lb)
	tx := dbops.NewTx(nb)
	swq := dbops.Query(tx, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))},
		func(s *nbdb.LogicalSwitch) []any { return []any{&s.Name} })
	lrq := dbops.Query(tx, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))},
		func(r *nbdb.LogicalRouter) []any { return []any{&r.Name} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("service %q: read attachments: %w", name, err)
	}
	sws, err := swq.Rows()
	if err != nil {
		return nil, err
	}
	lrs, err := lrq.Rows()
	if err != nil {
		return nil, err
	}
	for _, r := range sws {
		s.Switches = append(s.Switches, r.Name)
	}
	for _, r := range lrs {
		s.Routers = append(s.Routers, r.Name)
	}
	sort.Strings(s.Switches)
	sort.Strings(s.Routers)
	return s, nil
}

// List returns the services of network, or of every network when network is "".
func List(ctx context.Context, nb client.Client, network string) ([]*Service, error) {
	sel := owner.Selector(owner.KindService)
	if network != "" {
		sel = svcSelector(network)
	}
	lbs, err := readLBs(ctx, nb, dbops.Includes(sel))
	if err != nil {
		return nil, err
	}
	out := make([]*Service, 0, len(lbs))
	for _, lb := range lbs {
		out = append(out, toService(lb))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Delete removes the service: its Load_Balancer (and health check) from every
// switch and router, its DNS name and its IPAM reservations, in one transaction.
// Retried after a lost reply (dbconn.ErrConnectionLost), finding no
// service means the lost transaction committed: success.
func Delete(ctx context.Context, nb client.Client, network, name string) error {
	return dbconn.Retry(ctx, func(again bool) error {
		err := deleteService(ctx, nb, network, name)
		if again && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}

func deleteService(ctx context.Context, nb client.Client, network, name string) error {
	for attempt := 0; ; attempt++ {
		err := deleteOnce(ctx, nb, network, name)
		if errors.Is(err, errRetry) && attempt < 20 {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete service %q in network %q: %w", name, network, err)
		}
		return nil
	}
}

func deleteOnce(ctx context.Context, nb client.Client, network, name string) error {
	lb, err := getLB(ctx, nb, network, name)
	if err != nil {
		return err
	}
	ops, err := DeleteOps(ctx, nb, lb)
	if err != nil {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		if failedWaitIn(err, 0, len(ops)) {
			return errRetry
		}
		return err
	}
	return nil
}

// DeleteOps returns the operations deleting the service lb and releasing
// its VIP from the IPAM of every network that reserved it (KeyReservedIn).
// The first is a wait guard on the network switch's other_config; each other
// network released is guarded the same way.
func DeleteOps(ctx context.Context, nb client.Client, lb *nbdb.LoadBalancer) ([]ovsdb.Operation, error) {
	network := lb.ExternalIDs[owner.KeyNetwork]
	vip, _ := ParseVIP(lb.ExternalIDs[KeyVIP])
	tx := dbops.NewTx(nb)
	attSw, attLR := attachedQueries(tx, lb.UUID)
	homeq := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(network)},
		func(s *nbdb.LogicalSwitch) []any { return []any{&s.UUID, &s.OtherConfig, &s.ExternalIDs} })
	othersq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindService))},
		func(lb *nbdb.LoadBalancer) []any { return []any{&lb.UUID, &lb.ExternalIDs} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read attachments: %w", err)
	}
	// Other networks whose IPAM reserves the VIP (see KeyReservedIn).
	var peerNets []string
	for _, n := range reservedIn(lb) {
		if n != network {
			peerNets = append(peerNets, n)
		}
	}
	var peerSws []*nbdb.LogicalSwitch
	if len(peerNets) > 0 && vip.Addr.IsValid() {
		ptx := dbops.NewTx(nb)
		var sel []*dbops.Result[nbdb.LogicalSwitch]
		for _, n := range peerNets {
			sel = append(sel, dbops.Query(ptx, []ovsdb.Condition{dbops.NameIs(n)},
				func(s *nbdb.LogicalSwitch) []any { return []any{&s.UUID, &s.Name, &s.OtherConfig, &s.ExternalIDs} }))
		}
		if err := ptx.Transact(ctx); err != nil {
			return nil, fmt.Errorf("read networks %s reserving the VIP: %w", strings.Join(peerNets, ", "), err)
		}
		for _, q := range sel {
			rows, err := q.Rows()
			if err != nil {
				return nil, err
			}
			for _, sw := range rows {
				if owner.Owned(sw.ExternalIDs, owner.KindNetwork) {
					peerSws = append(peerSws, sw)
				}
			}
		}
	}
	var ops []ovsdb.Operation
	sws, err := homeq.Rows()
	if err != nil {
		return nil, err
	}
	var home *nbdb.LogicalSwitch
	for _, s := range sws {
		if owner.Owned(s.ExternalIDs, owner.KindNetwork) {
			home = s
		}
	}
	if home != nil {
		ops = append(ops, dbops.Matches(nbdb.LogicalSwitchTable, home.UUID, dbops.Equal("other_config", dbops.StrMap(home.OtherConfig))))
	} else {
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationComment, Comment: strPtr("network gone")})
	}
	more, err := detachOps(nb, lb.UUID, attSw, attLR)
	if err != nil {
		return nil, err
	}
	ops = append(ops, more...)
	ops = append(ops, dbops.Delete(nbdb.LoadBalancerTable, dbops.ByUUID(lb.UUID)))
	others, err := othersq.Rows()
	if err != nil {
		return nil, err
	}
	for _, sw := range peerSws {
		if stillReserved(others, lb, sw.Name, vip.Addr) {
			continue
		}
		if ex, changed := removeExcluded(sw.OtherConfig["exclude_ips"], []netip.Addr{vip.Addr}); changed {
			ops = append(ops, dbops.Matches(nbdb.LogicalSwitchTable, sw.UUID, dbops.Equal("other_config", dbops.StrMap(sw.OtherConfig))),
				dbops.DelKeys(nbdb.LogicalSwitchTable, dbops.ByUUID(sw.UUID), "other_config", "exclude_ips"))
			if ex != "" {
				ops = append(ops, dbops.AddPairs(nbdb.LogicalSwitchTable, dbops.ByUUID(sw.UUID), "other_config", map[string]string{"exclude_ips": ex}))
			}
		}
	}
	if home != nil {
		// Release the VIP (unless another service reserves the same address
		// here) and, when no other service of the network uses it, the probe source.
		var release []netip.Addr
		if vip.Addr.IsValid() && !stillReserved(others, lb, network, vip.Addr) {
			release = append(release, vip.Addr)
		}
		if src, err := netip.ParseAddr(lb.ExternalIDs[KeyHCSource]); err == nil {
			shared := false
			for _, o := range others {
				if o.UUID != lb.UUID && o.ExternalIDs[KeyHCSource] == src.String() {
					shared = true
				}
			}
			if !shared {
				release = append(release, src)
			}
		}
		if ex, changed := removeExcluded(home.OtherConfig["exclude_ips"], release); changed {
			ops = append(ops, dbops.DelKeys(nbdb.LogicalSwitchTable, dbops.ByUUID(home.UUID), "other_config", "exclude_ips"))
			if ex != "" {
				ops = append(ops, dbops.AddPairs(nbdb.LogicalSwitchTable, dbops.ByUUID(home.UUID), "other_config", map[string]string{"exclude_ips": ex}))
			}
		}
		if fqdn := lb.ExternalIDs[KeyDNSName]; fqdn != "" && vip.Addr.IsValid() {
			if n, err := dns.Get(ctx, nb, network); err == nil && n.DNSUUID != "" {
				ip := net.IP(vip.Addr.AsSlice())
				ops = append(ops, dns.RemoveOps(n, map[string]string{fqdn: ip.String(), dns.ReverseName(ip): fqdn})...)
			}
		}
	}
	return ops, nil
}

func strPtr(s string) *string { return &s }

// Port is a container port as SyncPort needs it.
type Port struct {
	Network string
	Name    string // Logical_Switch_Port name (for health-check mappings)
	IP      net.IP
	Labels  map[string]string
}

// SyncPort updates the backends of the network's services for a container
// port: at ADD (present true) the port becomes a backend of every service
// whose selector its labels match; at DEL (present false) its address leaves
// every service of the network (selected or static). One guarded
// read-modify-write transaction, redone on concurrent change. It reads only
// the network's services, never all ports.
//
// Syncing is idempotent: after a reply lost in a leader change it runs
// again (dbconn.Retry).
func SyncPort(ctx context.Context, nb client.Client, p Port, present bool) error {
	return dbconn.Retry(ctx, func(bool) error { return syncPort(ctx, nb, p, present) })
}

func syncPort(ctx context.Context, nb client.Client, p Port, present bool) error {
	a, ok := netip.AddrFromSlice(p.IP)
	if !ok {
		return fmt.Errorf("sync services of network %q: port %s: bad address %v", p.Network, p.Name, p.IP)
	}
	a = a.Unmap()
	for attempt := 0; ; attempt++ {
		err := syncPortOnce(ctx, nb, p, a, present)
		if errors.Is(err, errRetry) && attempt < 50 {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync services of network %q for port %s (%s): %w", p.Network, p.Name, a, err)
		}
		return nil
	}
}

func syncPortOnce(ctx context.Context, nb client.Client, p Port, a netip.Addr, present bool) error {
	lbs, err := readLBs(ctx, nb, dbops.Includes(svcSelector(p.Network)))
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	for _, lb := range lbs {
		vip, err := ParseVIP(lb.ExternalIDs[KeyVIP])
		if err != nil {
			continue
		}
		static := parseAddrPorts(lb.ExternalIDs[KeyBackends])
		current := parseAddrPorts(lb.Vips[vip.Key()])
		sel, _ := ParseSelector([]string{lb.ExternalIDs[KeySelector]})
		tp, _ := strconv.Atoi(lb.ExternalIDs[KeyTargetPort])
		want := netip.AddrPortFrom(a, uint16(tp))
		newStatic, newCur := static, current
		mappings := copyMap(lb.IPPortMappings)
		if present {
			if !matches(p.Labels, sel) || a.Is4() != vip.Addr.Is4() || tp == 0 {
				// Not (or no longer) selected: drop a selected entry, keep static ones.
				newCur = without(current, a, static)
			} else {
				newCur = append(append([]netip.AddrPort{}, current...), want)
				if src, err := netip.ParseAddr(lb.ExternalIDs[KeyHCSource]); err == nil && p.Name != "" && src.Is4() == a.Is4() {
					mappings[MappingKey(a)] = MappingValue(p.Name, src)
				}
			}
		} else {
			newStatic = without(static, a, nil)
			newCur = without(current, a, nil)
			delete(mappings, a.String())
			delete(mappings, MappingKey(a))
		}
		if formatAddrPorts(newCur) == formatAddrPorts(current) && formatAddrPorts(newStatic) == formatAddrPorts(static) &&
			len(mappings) == len(lb.IPPortMappings) && fmtMap(mappings) == fmtMap(lb.IPPortMappings) {
			continue
		}
		ids := copyMap(lb.ExternalIDs)
		if len(newStatic) > 0 {
			ids[KeyBackends] = formatAddrPorts(newStatic)
		} else {
			delete(ids, KeyBackends)
		}
		vips := copyMap(lb.Vips)
		vips[vip.Key()] = formatAddrPorts(newCur)
		guard, err := dbops.StillOp(nb, lb, &lb.Vips, &lb.ExternalIDs, &lb.IPPortMappings)
		if err != nil {
			return err
		}
		upd := &nbdb.LoadBalancer{UUID: lb.UUID, Vips: vips, ExternalIDs: ids, IPPortMappings: mappings}
		set, err := nb.Where(upd).Update(upd, &upd.Vips, &upd.ExternalIDs, &upd.IPPortMappings)
		if err != nil {
			return err
		}
		ops = append(ops, guard)
		ops = append(ops, set...)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		for i := 0; i < len(ops); i += 2 {
			if dbconn.FailedWait(err, i) {
				return errRetry
			}
		}
		return err
	}
	return nil
}

// without drops the entries of address a, except those also in keep.
func without(list []netip.AddrPort, a netip.Addr, keep []netip.AddrPort) []netip.AddrPort {
	k := map[netip.AddrPort]bool{}
	for _, x := range keep {
		k[x] = true
	}
	var out []netip.AddrPort
	for _, x := range list {
		if x.Addr() != a || k[x] {
			out = append(out, x)
		}
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func fmtMap(m map[string]string) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k+"="+m[k])
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// Sync brings DNS rows (dns.Sync) and every service's attachments in line
// with the router topology: a service is attached to its network's switch,
// the switches of networks sharing a router with it, and those routers.
// Call it after attaching a network to a router or detaching it.
func Sync(ctx context.Context, nb client.Client) error {
	if err := dns.Sync(ctx, nb); err != nil {
		return err
	}
	t, err := dns.ReadTopology(ctx, nb)
	if err != nil {
		return err
	}
	lbs, err := readLBs(ctx, nb, dbops.Includes(owner.Selector(owner.KindService)))
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	for _, lb := range lbs {
		network := lb.ExternalIDs[owner.KeyNetwork]
		if _, ok := t.Switches[network]; !ok {
			continue
		}
		wantSw, wantR := attachSwitches(t, network), attachRouters(t, network)
		for _, sw := range t.Switches {
			ops = append(ops, attachOps(nbdb.LogicalSwitchTable, sw.UUID, sw.LoadBalancer, wantSw, lb.UUID)...)
		}
		for _, r := range t.RouterRows {
			ops = append(ops, attachOps(nbdb.LogicalRouterTable, r.UUID, r.LoadBalancer, wantR, lb.UUID)...)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return fmt.Errorf("sync service attachments: %w", err)
	}
	return nil
}

// attachOps returns the operation adding lb to, or removing it from, the
// load_balancer column (now has) of row uuid of table so that the row holds
// lb exactly when uuid is in want; none when it already does.
func attachOps(table, uuid string, has, want []string, lb string) []ovsdb.Operation {
	wanted, held := containsStr(want, uuid), containsStr(has, lb)
	switch {
	case wanted && !held:
		return []ovsdb.Operation{dbops.AddRefs(table, dbops.ByUUID(uuid), "load_balancer", lb)}
	case !wanted && held:
		return []ovsdb.Operation{dbops.DelRefs(table, dbops.ByUUID(uuid), "load_balancer", lb)}
	}
	return nil
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// DeleteNetworkOps returns operations deleting every service of network
// (for the network's delete transaction).
func DeleteNetworkOps(ctx context.Context, nb client.Client, network string) ([]ovsdb.Operation, error) {
	lbs, err := readLBs(ctx, nb, dbops.Includes(svcSelector(network)))
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	for _, lb := range lbs {
		tx := dbops.NewTx(nb)
		attSw, attLR := attachedQueries(tx, lb.UUID)
		if err := tx.Transact(ctx); err != nil {
			return nil, err
		}
		more, err := detachOps(nb, lb.UUID, attSw, attLR)
		if err != nil {
			return nil, err
		}
		ops = append(ops, more...)
		ops = append(ops, dbops.Delete(nbdb.LoadBalancerTable, dbops.ByUUID(lb.UUID)))
	}
	return ops, nil
}

// attachedQueries adds to tx the selects of the switches and routers that
// reference load balancer lbUUID (their UUIDs only).
func attachedQueries(tx *dbops.Tx, lbUUID string) (*dbops.Result[nbdb.LogicalSwitch], *dbops.Result[nbdb.LogicalRouter]) {
	where := []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lbUUID))}
	return dbops.Query(tx, where, func(s *nbdb.LogicalSwitch) []any { return []any{&s.UUID} }),
		dbops.Query(tx, where, func(r *nbdb.LogicalRouter) []any { return []any{&r.UUID} })
}

// detachOps removes load balancer lbUUID from the switches and routers the
// queries of attachedQueries found.
func detachOps(nb client.Client, lbUUID string, sws *dbops.Result[nbdb.LogicalSwitch], lrs *dbops.Result[nbdb.LogicalRouter]) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, u := range sws.UUIDs() {
		ls := &nbdb.LogicalSwitch{UUID: u}
		o, err := nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.LoadBalancer, Mutator: ovsdb.MutateOperationDelete, Value: []string{lbUUID}})
		if err != nil {
			return nil, err
		}
		ops = append(ops, o...)
	}
	for _, u := range lrs.UUIDs() {
		lr := &nbdb.LogicalRouter{UUID: u}
		o, err := nb.Where(lr).Mutate(lr, model.Mutation{Field: &lr.LoadBalancer, Mutator: ovsdb.MutateOperationDelete, Value: []string{lbUUID}})
		if err != nil {
			return nil, err
		}
		ops = append(ops, o...)
	}
	return ops, nil
}
