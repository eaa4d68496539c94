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
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/owner"
)

func readLBs(ctx context.Context, nb client.Client, conds ...ovsdb.Condition) ([]*nbdb.LoadBalancer, error) {
	res, err := dbconn.Transact(ctx, nb, dbops.Select(nbdb.LoadBalancerTable, conds))
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	var lbs []*nbdb.LoadBalancer
	if err := dbconn.DecodeRows(nb, nbdb.LoadBalancerTable, res[0].Rows, &lbs); err != nil {
		return nil, err
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
	res, err := dbconn.Transact(ctx, nb,
		dbops.Select(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "name"),
		dbops.Select(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "name"))
	if err != nil {
		return nil, fmt.Errorf("service %q: read attachments: %w", name, err)
	}
	for _, r := range res[0].Rows {
		if n, ok := r["name"].(string); ok {
			s.Switches = append(s.Switches, n)
		}
	}
	for _, r := range res[1].Rows {
		if n, ok := r["name"].(string); ok {
			s.Routers = append(s.Routers, n)
		}
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
func Delete(ctx context.Context, nb client.Client, network, name string) error {
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
	res, err := dbconn.Transact(ctx, nb,
		dbops.Select(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "_uuid"),
		dbops.Select(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "_uuid"),
		dbops.Select(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(network)}, "_uuid", "other_config", "external_ids"),
		dbops.Select(nbdb.LoadBalancerTable, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindService))}, "_uuid", "external_ids"))
	if err != nil {
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
		var sel []ovsdb.Operation
		for _, n := range peerNets {
			sel = append(sel, dbops.Select(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(n)}, "_uuid", "name", "other_config", "external_ids"))
		}
		pres, err := dbconn.Transact(ctx, nb, sel...)
		if err != nil {
			return nil, fmt.Errorf("read networks %s reserving the VIP: %w", strings.Join(peerNets, ", "), err)
		}
		for _, r := range pres {
			var rows []*nbdb.LogicalSwitch
			if err := dbconn.DecodeRows(nb, nbdb.LogicalSwitchTable, r.Rows, &rows); err != nil {
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
	var sws []*nbdb.LogicalSwitch
	if err := dbconn.DecodeRows(nb, nbdb.LogicalSwitchTable, res[2].Rows, &sws); err != nil {
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
	for i, table := range []string{nbdb.LogicalSwitchTable, nbdb.LogicalRouterTable} {
		for _, r := range res[i].Rows {
			if u, ok := r["_uuid"].(ovsdb.UUID); ok {
				ops = append(ops, dbops.DelRefs(table, dbops.ByUUID(u.GoUUID), "load_balancer", lb.UUID))
			}
		}
	}
	ops = append(ops, dbops.Delete(nbdb.LoadBalancerTable, dbops.ByUUID(lb.UUID)))
	var others []*nbdb.LoadBalancer
	if err := dbconn.DecodeRows(nb, nbdb.LoadBalancerTable, res[3].Rows, &others); err != nil {
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
				ops = append(ops, dns.RemoveOps(n.DNSUUID, map[string]string{fqdn: ip.String(), dns.ReverseName(ip): fqdn})...)
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
func SyncPort(ctx context.Context, nb client.Client, p Port, present bool) error {
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
				if src := lb.ExternalIDs[KeyHCSource]; src != "" && p.Name != "" {
					mappings[a.String()] = p.Name + ":" + src
				}
			}
		} else {
			newStatic = without(static, a, nil)
			newCur = without(current, a, nil)
			delete(mappings, a.String())
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
		ops = append(ops,
			dbops.Matches(nbdb.LoadBalancerTable, lb.UUID, dbops.Equal("vips", dbops.StrMap(lb.Vips)), dbops.Equal("external_ids", dbops.StrMap(lb.ExternalIDs)),
				dbops.Equal("ip_port_mappings", dbops.StrMap(lb.IPPortMappings))),
			dbops.Update(nbdb.LoadBalancerTable, dbops.ByUUID(lb.UUID),
				ovsdb.Row{"vips": dbops.StrMap(vips), "external_ids": dbops.StrMap(ids), "ip_port_mappings": dbops.StrMap(mappings)}))
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
		res, err := dbconn.Transact(ctx, nb,
			dbops.Select(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "_uuid"),
			dbops.Select(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.Contains("load_balancer", dbops.UUIDSet(lb.UUID))}, "_uuid"))
		if err != nil {
			return nil, err
		}
		for i, table := range []string{nbdb.LogicalSwitchTable, nbdb.LogicalRouterTable} {
			for _, r := range res[i].Rows {
				if u, ok := r["_uuid"].(ovsdb.UUID); ok {
					ops = append(ops, dbops.DelRefs(table, dbops.ByUUID(u.GoUUID), "load_balancer", lb.UUID))
				}
			}
		}
		ops = append(ops, dbops.Delete(nbdb.LoadBalancerTable, dbops.ByUUID(lb.UUID)))
	}
	return ops, nil
}
