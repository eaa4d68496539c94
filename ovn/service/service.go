// Package service manages load-balanced services: one OVN Load_Balancer per
// service (VIP:port/proto → backends) attached to its network's switch and to
// the switches of the networks on the same router, a DNS name
// "<service>.<network>.<domain>" for the VIP, and optional health checks.
//
// Backends are given as addresses or container names (resolved to their
// addresses once, at create time) and/or chosen by a label selector. There
// is no daemon: the CNI plugin calls SyncPort at container ADD and DEL, and
// Create resolves the selector against the ports that exist.
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
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// External_ids keys on a service's Load_Balancer.
const (
	KeyVIP         = owner.KeyVIP             // "IP:PORT/proto"
	KeyBackends    = "ovlmgr.io/backends"     // static backends "IP:PORT,..."
	KeySelector    = "ovlmgr.io/selector"     // "k=v,k2=v2"
	KeyTargetPort  = "ovlmgr.io/target-port"  // port of selected backends
	KeyHealthCheck = "ovlmgr.io/health-check" // "interval,timeout"
	KeyHCSource    = "ovlmgr.io/hc-source"    // source address of health probes
	KeyDNSName     = "ovlmgr.io/dns-name"     // the service's FQDN
)

// Errors callers test with errors.Is.
var (
	ErrNotFound        = errors.New("service not found")
	ErrExists          = errors.New("service already exists")
	ErrVIPInUse        = errors.New("VIP in use")
	ErrBackendNotFound = errors.New("backend not found")
	// ErrNoRouter: OVN reaches a VIP only through a router port (its ARP
	// answer for an in-subnet VIP, the gateway for a routed one).
	ErrNoRouter = errors.New("network is on no router")
)

// Spec is what `service create` asks for.
type Spec struct {
	Name     string
	Network  string
	VIP      string   // "IP:PORT[/tcp|udp]"
	Backends []string // "CONTAINER_OR_IP:PORT"
	// Selector picks container ports by label; they serve on TargetPort
	// (default: the VIP's port).
	Selector    map[string]string
	TargetPort  int
	HealthCheck string // "interval,timeout" seconds, optional
}

// Service is a service as stored in NB.
type Service struct {
	UUID        string            `json:"uuid"`
	Name        string            `json:"name"`
	Network     string            `json:"network"`
	VIP         string            `json:"vip"`
	FQDN        string            `json:"fqdn,omitempty"`
	Backends    []string          `json:"backends"`
	Static      []string          `json:"static_backends,omitempty"`
	Selector    map[string]string `json:"selector,omitempty"`
	TargetPort  int               `json:"target_port,omitempty"`
	HealthCheck *HealthCheck      `json:"health_check,omitempty"`
	HCSource    string            `json:"health_check_source,omitempty"`
	Switches    []string          `json:"switches,omitempty"`
	Routers     []string          `json:"routers,omitempty"`
}

// LBName is the Load_Balancer name of service name on network.
func LBName(network, name string) string { return network + "/" + name }

// AttachToRouter controls whether a service's Load_Balancer is also attached
// to the Logical_Router(s) of its network (which makes OVN answer ARP for a
// VIP inside a routed subnet).
const AttachToRouter = true

func lbIDs(s *Spec, vip VIP, static []netip.AddrPort, tp int, hc *HealthCheck, hcSrc netip.Addr, fqdn string) map[string]string {
	ids := owner.IDs(owner.KindService, s.Name, map[string]string{
		owner.KeyNetwork: s.Network,
		KeyVIP:           vip.String(),
		KeyDNSName:       fqdn,
	})
	if len(static) > 0 {
		ids[KeyBackends] = formatAddrPorts(static)
	}
	if len(s.Selector) > 0 {
		ids[KeySelector] = formatSelector(s.Selector)
		ids[KeyTargetPort] = strconv.Itoa(tp)
	}
	if hc != nil {
		ids[KeyHealthCheck] = hc.String()
		ids[KeyHCSource] = hcSrc.String()
	}
	return ids
}

// state is what Create and Delete read in one transaction.
type state struct {
	net   *dns.Network
	sw    *nbdb.LogicalSwitch // with ports
	ports []*nbdb.LogicalSwitchPort
	lbs   []*nbdb.LoadBalancer // our services of the network
	topo  *dns.Topology
	lrpIP map[netip.Addr]string // router port addresses on the network's routers
}

func readState(ctx context.Context, nb client.Client, network string) (*state, error) {
	n, err := dns.Ensure(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	topo, err := dns.ReadTopology(ctx, nb)
	if err != nil {
		return nil, err
	}
	tx := dbops.NewTx(nb)
	swq := dbops.Query(tx, dbops.ByUUID(n.SwitchUUID), func(s *nbdb.LogicalSwitch) []any {
		return []any{&s.UUID, &s.Name, &s.Ports, &s.OtherConfig, &s.LoadBalancer, &s.ExternalIDs}
	})
	portq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(map[string]string{owner.KeyNetwork: network})}, portFields)
	lbq := dbops.Query[nbdb.LoadBalancer](tx, []ovsdb.Condition{dbops.Includes(svcSelector(network))})
	var lrps []string
	for _, r := range topo.Routers[network] {
		lrps = append(lrps, topo.RouterRows[r].Ports...)
	}
	var lrpqs []*dbops.Result[nbdb.LogicalRouterPort]
	for _, u := range lrps {
		lrpqs = append(lrpqs, dbops.Query(tx, dbops.ByUUID(u), func(p *nbdb.LogicalRouterPort) []any { return []any{&p.UUID, &p.Name, &p.Networks} }))
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read network %q: %w", network, err)
	}
	st := &state{net: n, topo: topo, lrpIP: map[netip.Addr]string{}}
	sws, err := swq.Rows()
	if err != nil {
		return nil, err
	}
	if len(sws) != 1 {
		return nil, fmt.Errorf("network %q: %w", network, dns.ErrNetworkNotFound)
	}
	st.sw = sws[0]
	if st.ports, err = portq.Rows(); err != nil {
		return nil, err
	}
	if st.lbs, err = lbq.Rows(); err != nil {
		return nil, err
	}
	for _, q := range lrpqs {
		rows, err := q.Rows()
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			for _, cidr := range r.Networks {
				if p, err := netip.ParsePrefix(cidr); err == nil {
					st.lrpIP[p.Addr()] = r.Name
				}
			}
		}
	}
	return st, nil
}

func svcSelector(network string) map[string]string {
	s := owner.Selector(owner.KindService)
	s[owner.KeyNetwork] = network
	return s
}

// portAddrs returns the addresses of a switch port (static or assigned by IPAM).
func portAddrs(p *nbdb.LogicalSwitchPort) []netip.Addr {
	var out []netip.Addr
	fields := []string{}
	for _, a := range p.Addresses {
		fields = append(fields, strings.Fields(a)...)
	}
	if p.DynamicAddresses != nil {
		fields = append(fields, strings.Fields(*p.DynamicAddresses)...)
	}
	seen := map[netip.Addr]bool{}
	for _, f := range fields {
		if a, err := netip.ParseAddr(f); err == nil && !seen[a.Unmap()] {
			seen[a.Unmap()] = true
			out = append(out, a.Unmap())
		}
	}
	return out
}

func subnetOf(sw *nbdb.LogicalSwitch) netip.Prefix {
	p, _ := netip.ParsePrefix(sw.OtherConfig["subnet"])
	return p.Masked()
}

// subnet6Of is the network's IPv6 /64 (other_config:ipv6_prefix), or the
// zero Prefix.
func subnet6Of(sw *nbdb.LogicalSwitch) netip.Prefix {
	v := strings.TrimSuffix(sw.OtherConfig["ipv6_prefix"], "/64")
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Is4In6() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, 64).Masked()
}

// MappingKey is backend a's key in Load_Balancer ip_port_mappings: the
// address, IPv6 in brackets ("[fd00::5]"), as ovn-nb(5) wants.
func MappingKey(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// MappingValue is the ip_port_mappings value "PORT:SOURCE" for a backend on
// logical switch port lsp probed from src, IPv6 src in brackets
// ("lsp:[fd00::ffff:ffff:ffff:fffe]").
func MappingValue(lsp string, src netip.Addr) string {
	return lsp + ":" + MappingKey(src)
}

// Create validates s against the network and creates the service in one
// transaction: Load_Balancer (+ health check), attachment to the network's
// switch, its router peers' switches and routers, the VIP reserved from the
// network's IPAM (exclude_ips) when inside the subnet, and the DNS name.
// Bad input writes nothing.
//
// A create whose reply is lost (dbconn.ErrConnectionLost) runs again on the
// new leader; from then on a service of that name in that network with the
// same VIP is this create's own result and reported as success.
func Create(ctx context.Context, nb client.Client, s Spec) (*Service, error) {
	var out *Service
	err := dbconn.Retry(ctx, func(again bool) error {
		var err error
		out, err = createService(ctx, nb, s)
		if again && errors.Is(err, ErrExists) {
			if got, gerr := Get(ctx, nb, s.Network, s.Name); gerr == nil && (got.VIP == s.VIP || strings.HasPrefix(got.VIP, s.VIP+"/")) {
				out, err = got, nil
			}
		}
		return err
	})
	return out, err
}

func createService(ctx context.Context, nb client.Client, s Spec) (*Service, error) {
	what := fmt.Sprintf("create service %q in network %q", s.Name, s.Network)
	if err := dns.ValidateName(s.Name); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	vip, err := ParseVIP(s.VIP)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	hc, err := ParseHealthCheck(s.HealthCheck)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	tp := s.TargetPort
	if tp == 0 {
		tp = vip.Port
	}
	if tp < 1 || tp > 65535 {
		return nil, fmt.Errorf("%s: %w", what, names.Bad("target port", tp, "allowed are 1-65535"))
	}
	var refs []BackendRef
	for _, b := range s.Backends {
		r, err := ParseBackend(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		refs = append(refs, r)
	}
	if len(refs) == 0 && len(s.Selector) == 0 {
		return nil, fmt.Errorf("%s: %w", what, &names.FieldError{Problem: "no backends: give {backend} CONTAINER_OR_IP:PORT and/or {selector} label=value"})
	}
	for attempt := 0; ; attempt++ {
		svc, err := create(ctx, nb, s, vip, refs, tp, hc)
		if errors.Is(err, errRetry) && attempt < 20 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return svc, nil
	}
}

var errRetry = errors.New("concurrent change, retry")

func create(ctx context.Context, nb client.Client, s Spec, vip VIP, refs []BackendRef, tp int, hc *HealthCheck) (*Service, error) {
	st, err := readState(ctx, nb, s.Network)
	if err != nil {
		return nil, err
	}
	for _, lb := range st.lbs {
		if lb.ExternalIDs[owner.KeyName] == s.Name {
			return nil, ErrExists
		}
	}
	if len(st.topo.Routers[s.Network]) == 0 {
		return nil, fmt.Errorf("%w: OVN reaches a service VIP only through a router (attach one first: ovlmgr router create R; ovlmgr router attach R %s)",
			ErrNoRouter, s.Network)
	}
	subnet := subnetOf(st.sw)
	// The VIP must not be anyone's address.
	if gw, err := netip.ParseAddr(st.sw.ExternalIDs[owner.KeyGateway]); err == nil && gw == vip.Addr {
		return nil, names.Bad("vip", vip, "%w: the gateway of network %q", ErrVIPInUse, s.Network)
	}
	for _, p := range st.ports {
		for _, a := range portAddrs(p) {
			if a == vip.Addr {
				return nil, names.Bad("vip", vip, "%w: address of container port %s (container %s)", ErrVIPInUse, p.Name, p.ExternalIDs[owner.KeyContainer])
			}
		}
	}
	if name, ok := st.lrpIP[vip.Addr]; ok {
		return nil, names.Bad("vip", vip, "%w: address of router port %s (the gateway)", ErrVIPInUse, name)
	}
	if subnet.IsValid() && subnet.Contains(vip.Addr) && (vip.Addr == subnet.Addr() || (vip.Addr.Is4() && vip.Addr == lastAddr(subnet))) {
		return nil, names.Bad("vip", vip, "the subnet's network or broadcast address %s cannot be a VIP", subnet)
	}
	// The VIP must be a free address in every network reachable through the
	// same routers whose subnet holds it; it is reserved there (below).
	homes, err := vipHomes(ctx, nb, st, s.Network, vip.Addr)
	if err != nil {
		return nil, err
	}
	all, err := allServices(ctx, nb)
	if err != nil {
		return nil, err
	}
	for _, h := range homes {
		if err := h.checkFree(vip, all); err != nil {
			return nil, err
		}
	}
	reach := map[string]bool{s.Network: true}
	for _, p := range st.topo.Peers(s.Network) {
		reach[p] = true
	}
	for _, lb := range all {
		other, err := ParseVIP(lb.ExternalIDs[KeyVIP])
		if n := lb.ExternalIDs[owner.KeyNetwork]; err == nil && reach[n] && n != s.Network &&
			other.Addr == vip.Addr && other.Port == vip.Port && other.Protocol == vip.Protocol {
			return nil, names.Bad("vip", vip, "%w by service %q of network %q (on the same router)", ErrVIPInUse, lb.ExternalIDs[owner.KeyName], n)
		}
	}
	for _, lb := range st.lbs {
		other, err := ParseVIP(lb.ExternalIDs[KeyVIP])
		if err == nil && other.Addr == vip.Addr && other.Port == vip.Port && other.Protocol == vip.Protocol {
			return nil, names.Bad("vip", vip, "%w by service %q", ErrVIPInUse, lb.ExternalIDs[owner.KeyName])
		}
		if src := lb.ExternalIDs[KeyHCSource]; src == vip.Addr.String() {
			return nil, names.Bad("vip", vip, "%w: health-check source of service %q", ErrVIPInUse, lb.ExternalIDs[owner.KeyName])
		}
	}
	// Backends.
	recs, err := dns.Records(ctx, nb, s.Network)
	if err != nil {
		return nil, err
	}
	var static []netip.AddrPort
	for _, r := range refs {
		a, err := resolveBackend(r, st, recs, vip.Addr.Is4())
		if err != nil {
			return nil, err
		}
		if a.Is4() != vip.Addr.Is4() {
			return nil, names.Bad("backend", names.Shown(r.Host), "address %s is not of the VIP's family (%s); a service balances within one family: give backends of the VIP's family, or make a second service with a VIP of the other family", a, vip.Addr)
		}
		if a == vip.Addr {
			return nil, names.Bad("backend", names.Shown(r.Host), "the VIP itself cannot be a backend")
		}
		static = append(static, netip.AddrPortFrom(a, uint16(r.Port)))
	}
	backends := append([]netip.AddrPort{}, static...)
	portOf := map[netip.Addr]string{}
	for _, p := range st.ports {
		for _, a := range portAddrs(p) {
			portOf[a] = p.Name
			if len(s.Selector) > 0 && matches(owner.Labels(p.ExternalIDs), s.Selector) && a.Is4() == vip.Addr.Is4() {
				backends = append(backends, netip.AddrPortFrom(a, uint16(tp)))
			}
		}
	}
	// Health checks need a source address in the subnet no one else uses.
	var hcSrc netip.Addr
	mappings := map[string]string{}
	if hc != nil {
		hcNet := subnet
		if vip.Addr.Is6() {
			hcNet = subnet6Of(st.sw)
		}
		if !hcNet.IsValid() {
			fam := "IPv4"
			if vip.Addr.Is6() {
				fam = "IPv6"
			}
			return nil, names.About("health check", "for %s VIP %s: network %q has no %s subnet for the probes' source address", fam, vip.Addr, s.Network, fam)
		}
		hcSrc, err = healthSource(st, hcNet, vip.Addr)
		if err != nil {
			return nil, err
		}
		for _, b := range backends {
			lsp, ok := portOf[b.Addr()]
			if !ok {
				return nil, names.About("health check", "backend %s is not a container port on network %q; health checks need container backends", b, s.Network)
			}
			mappings[MappingKey(b.Addr())] = MappingValue(lsp, hcSrc)
		}
	}
	fqdn := dns.FQDN(s.Name, st.net.Name, st.net.Domain)
	ids := lbIDs(&s, vip, static, tp, hc, hcSrc, fqdn)
	ids[KeyReservedIn] = homeNames(homes)

	// One transaction.
	lbName := LBName(s.Network, s.Name)
	ops := []ovsdb.Operation{
		dbops.None(nbdb.LoadBalancerTable, []ovsdb.Condition{dbops.NameIs(lbName)}, "name", lbName),
		dbops.Matches(nbdb.LogicalSwitchTable, st.sw.UUID, dbops.Equal("ports", dbops.UUIDSet(st.sw.Ports...)), dbops.Equal("other_config", dbops.StrMap(st.sw.OtherConfig)),
			dbops.Equal("load_balancer", dbops.UUIDSet(st.sw.LoadBalancer...))),
	}
	// Ports still waiting for ovn-northd's IPAM: if one gets an address
	// before this commits, redo the checks (it could be the VIP).
	for _, p := range st.ports {
		if p.DynamicAddresses == nil && hasDynamic(p.Addresses) {
			ops = append(ops, dbops.Matches(nbdb.LogicalSwitchPortTable, p.UUID, dbops.Equal("dynamic_addresses", ovsdb.OvsSet{GoSet: []interface{}{}})))
		}
	}
	for _, h := range homes {
		if h.network != s.Network {
			ops = append(ops, h.guards()...)
		}
	}
	guards := len(ops)
	proto := nbdb.LoadBalancerProtocol(vip.Protocol)
	lbm := &nbdb.LoadBalancer{UUID: "newlb", Name: lbName, Protocol: &proto, ExternalIDs: ids,
		Vips: map[string]string{vip.Key(): formatAddrPorts(backends)}}
	var models []model.Model
	if hc != nil {
		hcm := &nbdb.LoadBalancerHealthCheck{UUID: "newhc", Vip: vip.Key(),
			ExternalIDs: owner.IDs(owner.KindService, s.Name, map[string]string{owner.KeyNetwork: s.Network}),
			Options: map[string]string{"interval": strconv.Itoa(hc.Interval), "timeout": strconv.Itoa(hc.Timeout),
				"success_count": "1", "failure_count": "2"}}
		models = append(models, hcm)
		lbm.HealthCheck = []string{hcm.UUID}
		lbm.IPPortMappings = mappings
	}
	models = append(models, lbm)
	ins, err := nb.Create(models...)
	if err != nil {
		return nil, err
	}
	ops = append(ops, ins...)
	for _, sw := range attachSwitches(st.topo, s.Network) {
		ls := &nbdb.LogicalSwitch{UUID: sw}
		mut, err := nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.LoadBalancer, Mutator: ovsdb.MutateOperationInsert, Value: []string{lbm.UUID}})
		if err != nil {
			return nil, err
		}
		ops = append(ops, mut...)
	}
	for _, r := range attachRouters(st.topo, s.Network) {
		lr := &nbdb.LogicalRouter{UUID: r}
		mut, err := nb.Where(lr).Mutate(lr, model.Mutation{Field: &lr.LoadBalancer, Mutator: ovsdb.MutateOperationInsert, Value: []string{lbm.UUID}})
		if err != nil {
			return nil, err
		}
		ops = append(ops, mut...)
	}
	// Reserve the VIP from OVN's IPAM in every network holding it, and the
	// probe source in the service's own network.
	var reserve []netip.Addr
	if subnet.IsValid() && subnet.Contains(vip.Addr) {
		reserve = append(reserve, vip.Addr)
	}
	if hcSrc.Is4() {
		// exclude_ips is IPv4 only; northd's IPv6 addresses are EUI-64
		// ones, which the IPv6 source (see healthSource) never is.
		reserve = append(reserve, hcSrc)
	}
	if ex, changed := addExcluded(st.sw.OtherConfig["exclude_ips"], reserve); changed {
		ops = append(ops, dbops.SetKeys(nbdb.LogicalSwitchTable, dbops.ByUUID(st.sw.UUID), "other_config", map[string]string{"exclude_ips": ex}))
	}
	for _, h := range homes {
		if h.network == s.Network {
			continue
		}
		if ex, changed := addExcluded(h.sw.OtherConfig["exclude_ips"], []netip.Addr{vip.Addr}); changed {
			ops = append(ops, dbops.SetKeys(nbdb.LogicalSwitchTable, dbops.ByUUID(h.sw.UUID), "other_config", map[string]string{"exclude_ips": ex}))
		}
	}
	dnsOps, dnsGuard := dns.AddOps(st.net, fqdn, []net.IP{net.IP(vip.Addr.AsSlice())})
	dnsAt := len(ops)
	ops = append(ops, dnsOps...)
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		switch {
		case dbconn.FailedWait(err, 0):
			return nil, ErrExists
		case failedWaitIn(err, 1, guards):
			return nil, errRetry
		case dbconn.FailedWait(err, dnsAt+dnsGuard):
			return nil, fmt.Errorf("DNS name %s: %w by %v", fqdn, dns.ErrNameTaken, dns.ParseValue(recs[fqdn]))
		}
		return nil, err
	}
	return Get(ctx, nb, s.Network, s.Name)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - uint(i%8))
	}
	r := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		r = r.Unmap()
	}
	return r
}

// healthSource picks the probe source address of the network for the VIP's
// family: the one other services of that family already use, else the
// highest free host address of subnet (the IPv4 subnet, or the IPv6 /64).
// In a /64 that is PREFIX:ffff:ffff:ffff:fffe: below the all-ones address,
// outside RFC 2526's reserved anycast IDs (fdff:ffff:ffff:ff80-ff) and never
// an EUI-64 address of northd's IPAM (those have ff:fe in the middle).
func healthSource(st *state, subnet netip.Prefix, vip netip.Addr) (netip.Addr, error) {
	for _, lb := range st.lbs {
		if a, err := netip.ParseAddr(lb.ExternalIDs[KeyHCSource]); err == nil && a.Is4() == vip.Is4() {
			return a, nil
		}
	}
	used := map[netip.Addr]bool{vip: true}
	for _, p := range st.ports {
		for _, a := range portAddrs(p) {
			used[a] = true
		}
	}
	for a := range st.lrpIP {
		used[a] = true
	}
	for _, lb := range st.lbs {
		if v, err := ParseVIP(lb.ExternalIDs[KeyVIP]); err == nil {
			used[v.Addr] = true
		}
	}
	ex := st.sw.OtherConfig["exclude_ips"]
	for a, n := lastAddr(subnet).Prev(), 0; subnet.Contains(a) && a != subnet.Addr() && n < 4096; a, n = a.Prev(), n+1 {
		if !used[a] && !port.InExcludeIPs(ex, a) {
			return a, nil
		}
	}
	return netip.Addr{}, names.About("health check", "no free address in %s for the health probes' source", subnet)
}

func addExcluded(list string, add []netip.Addr) (string, bool) {
	fields := strings.Fields(list)
	changed := false
	for _, a := range add {
		if !port.InExcludeIPs(list, a) {
			fields = append(fields, a.String())
			list = strings.Join(fields, " ")
			changed = true
		}
	}
	return strings.Join(fields, " "), changed
}

func removeExcluded(list string, rm []netip.Addr) (string, bool) {
	drop := map[string]bool{}
	for _, a := range rm {
		drop[a.String()] = true
	}
	var keep []string
	changed := false
	for _, f := range strings.Fields(list) {
		if drop[f] {
			changed = true
			continue
		}
		keep = append(keep, f)
	}
	return strings.Join(keep, " "), changed
}

func matches(labels, sel map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// resolveBackend finds a backend's address of the VIP's family (want4): a
// container name or ID resolves to that address of the container; a
// container without one is an error naming the family.
func resolveBackend(r BackendRef, st *state, recs map[string]string, want4 bool) (netip.Addr, error) {
	if r.Addr.IsValid() {
		return r.Addr, nil
	}
	family := "IPv6"
	if want4 {
		family = "IPv4"
	}
	pick := func(as []netip.Addr) (netip.Addr, bool) {
		for _, a := range as {
			if a.Is4() == want4 {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	// A name in the network's DNS records (container name or alias).
	if ips := dns.ParseValue(recs[dns.FQDN(r.Host, st.net.Name, st.net.Domain)]); len(ips) > 0 {
		var as []netip.Addr
		for _, ip := range ips {
			a, _ := netip.AddrFromSlice(ip)
			as = append(as, a.Unmap())
		}
		if a, ok := pick(as); ok {
			return a, nil
		}
		return netip.Addr{}, names.Bad("backend", names.Shown(fmt.Sprintf("%s:%d", r.Host, r.Port)), "container %q has no %s address (%s); the VIP is %s: backends must be of the VIP's family",
			r.Host, family, as[0], family)
	}
	// A container ID (or a unique prefix of at least 6 characters).
	var found []netip.Addr
	for _, p := range st.ports {
		id := p.ExternalIDs[owner.KeyContainer]
		if id == r.Host || (len(r.Host) >= 6 && strings.HasPrefix(id, r.Host)) {
			if a, ok := pick(portAddrs(p)); ok {
				found = append(found, a)
			} else if as := portAddrs(p); len(as) > 0 {
				return netip.Addr{}, names.Bad("backend", names.Shown(fmt.Sprintf("%s:%d", r.Host, r.Port)), "container %s has no %s address (%s); the VIP is %s: backends must be of the VIP's family",
					id, family, as[0], family)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return netip.Addr{}, names.Bad("backend", names.Shown(fmt.Sprintf("%s:%d", r.Host, r.Port)), "%w: no container named %q in network %q (give a container name, ID or an IP)",
			ErrBackendNotFound, r.Host, st.net.Name)
	default:
		return netip.Addr{}, names.Bad("backend", names.Shown(fmt.Sprintf("%s:%d", r.Host, r.Port)), "container ID prefix %q matches %d ports; give more characters", r.Host, len(found))
	}
}

// attachSwitches returns the switches a service of network is attached to:
// its own and those of every network sharing a router with it.
func attachSwitches(t *dns.Topology, network string) []string {
	out := []string{t.Switches[network].UUID}
	for _, p := range t.Peers(network) {
		out = append(out, t.Switches[p].UUID)
	}
	return out
}

func attachRouters(t *dns.Topology, network string) []string {
	if !AttachToRouter {
		return nil
	}
	var out []string
	for _, r := range t.Routers[network] {
		out = append(out, t.RouterUUID[r])
	}
	sort.Strings(out)
	return out
}

func hasDynamic(addrs []string) bool {
	for _, a := range addrs {
		if strings.Contains(a, "dynamic") {
			return true
		}
	}
	return false
}

// failedWaitIn reports whether err failed on a wait at index from..to-1.
func failedWaitIn(err error, from, to int) bool {
	for i := from; i < to; i++ {
		if dbconn.FailedWait(err, i) {
			return true
		}
	}
	return false
}

// portFields are the columns of a network's ports service checks read.
func portFields(p *nbdb.LogicalSwitchPort) []any {
	return []any{&p.UUID, &p.Name, &p.Addresses, &p.DynamicAddresses, &p.ExternalIDs, &p.Type}
}
