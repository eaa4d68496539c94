package service

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// KeyReservedIn lists the networks (comma separated) whose IPAM reserves the
// service's VIP (exclude_ips): every network reachable through the
// service's routers whose subnet holds the VIP. Delete releases it there.
const KeyReservedIn = "ovlmgr.io/vip-reserved-in"

// home is a network whose subnet holds a VIP: the VIP must be free there and
// is reserved there while the service exists.
type home struct {
	network string
	sw      *nbdb.LogicalSwitch // _uuid, ports, other_config, external_ids
	ports   []*nbdb.LogicalSwitchPort
}

// vipHomes returns the networks among network and its router peers whose
// subnet contains vip, each with its switch and container ports (read in one
// transaction). The own network comes from st; peers are read.
func vipHomes(ctx context.Context, nb client.Client, st *state, network string, vip netip.Addr) ([]*home, error) {
	var out []*home
	if sub := subnetOf(st.sw); sub.IsValid() && sub.Contains(vip) {
		out = append(out, &home{network: network, sw: st.sw, ports: st.ports})
	}
	var peers []string
	for _, p := range st.topo.Peers(network) {
		sw := st.topo.Switches[p]
		if sw == nil {
			continue
		}
		if sub := subnetOf(sw); sub.IsValid() && sub.Contains(vip) {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		return out, nil
	}
	tx := dbops.NewTx(nb)
	type peerRead struct {
		sw    *dbops.Result[nbdb.LogicalSwitch]
		ports *dbops.Result[nbdb.LogicalSwitchPort]
	}
	var reads []peerRead
	for _, p := range peers {
		reads = append(reads, peerRead{
			sw: dbops.Query(tx, dbops.ByUUID(st.topo.Switches[p].UUID), func(s *nbdb.LogicalSwitch) []any {
				return []any{&s.UUID, &s.Name, &s.Ports, &s.OtherConfig, &s.ExternalIDs}
			}),
			ports: dbops.Query(tx, []ovsdb.Condition{dbops.Includes(map[string]string{owner.KeyNetwork: p})}, portFields),
		})
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read networks %s holding the VIP: %w", strings.Join(peers, ", "), err)
	}
	for i, p := range peers {
		h := &home{network: p}
		sws, err := reads[i].sw.Rows()
		if err != nil {
			return nil, err
		}
		if len(sws) != 1 {
			return nil, errRetry // deleted meanwhile
		}
		h.sw = sws[0]
		if h.ports, err = reads[i].ports.Rows(); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// checkFree refuses vip when it is an address of network h: its gateway, its
// network or broadcast address, a container's address or a health-check
// probe source.
func (h *home) checkFree(vip VIP, lbs []*nbdb.LoadBalancer) error {
	sub := subnetOf(h.sw)
	if gw, err := netip.ParseAddr(h.sw.ExternalIDs[owner.KeyGateway]); err == nil && gw == vip.Addr {
		return names.Bad("vip", vip, "%w: the gateway of network %q", ErrVIPInUse, h.network)
	}
	if vip.Addr == sub.Addr() || (vip.Addr.Is4() && vip.Addr == lastAddr(sub)) {
		return names.Bad("vip", vip, "the network or broadcast address of network %q (%s) cannot be a VIP", h.network, sub)
	}
	for _, p := range h.ports {
		for _, a := range portAddrs(p) {
			if a == vip.Addr {
				return names.Bad("vip", vip, "%w: address of container %s (port %s) on network %q", ErrVIPInUse,
					short(p.ExternalIDs[owner.KeyContainer]), p.Name, h.network)
			}
		}
	}
	for _, lb := range lbs {
		if lb.ExternalIDs[KeyHCSource] == vip.Addr.String() && lb.ExternalIDs[owner.KeyNetwork] == h.network {
			return names.Bad("vip", vip, "%w: health-check source of service %q on network %q", ErrVIPInUse, lb.ExternalIDs[owner.KeyName], h.network)
		}
	}
	return nil
}

// guards are wait operations that fail the create transaction when h
// changed since it was read (a port joined or got an address from IPAM, its
// exclude_ips changed).
func (h *home) guards() []ovsdb.Operation {
	ops := []ovsdb.Operation{dbops.Matches(nbdb.LogicalSwitchTable, h.sw.UUID,
		dbops.Equal("ports", dbops.UUIDSet(h.sw.Ports...)), dbops.Equal("other_config", dbops.StrMap(h.sw.OtherConfig)))}
	for _, p := range h.ports {
		if p.DynamicAddresses == nil && hasDynamic(p.Addresses) {
			ops = append(ops, dbops.Matches(nbdb.LogicalSwitchPortTable, p.UUID, dbops.Equal("dynamic_addresses", ovsdb.OvsSet{GoSet: []interface{}{}})))
		}
	}
	return ops
}

// allServices reads the external_ids of every ovlmgr service (any network).
func allServices(ctx context.Context, nb client.Client) ([]*nbdb.LoadBalancer, error) {
	lbs, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindService))},
		func(lb *nbdb.LoadBalancer) []any { return []any{&lb.UUID, &lb.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return lbs, nil
}

// reservedIn returns the networks whose IPAM reserves lb's VIP. Services
// made before KeyReservedIn reserved it in their own network only.
func reservedIn(lb *nbdb.LoadBalancer) []string {
	v, ok := lb.ExternalIDs[KeyReservedIn]
	if !ok {
		return []string{lb.ExternalIDs[owner.KeyNetwork]}
	}
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// vipAddr is the address of lb's VIP (invalid if unparsable).
func vipAddr(lb *nbdb.LoadBalancer) netip.Addr {
	v, err := ParseVIP(lb.ExternalIDs[KeyVIP])
	if err != nil {
		return netip.Addr{}
	}
	return v.Addr
}

// stillReserved reports whether a service other than lb reserves addr in network.
func stillReserved(lbs []*nbdb.LoadBalancer, lb *nbdb.LoadBalancer, network string, addr netip.Addr) bool {
	for _, o := range lbs {
		if o.UUID == lb.UUID || vipAddr(o) != addr {
			continue
		}
		for _, n := range reservedIn(o) {
			if n == network {
				return true
			}
		}
	}
	return false
}

func homeNames(hs []*home) string {
	var names []string
	for _, h := range hs {
		names = append(names, h.network)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// CheckAttach refuses to put network (subnet) on a router whose other
// networks are others (name -> subnet) when a service VIP would then lie
// inside a subnet reachable through the router without being reserved
// there: a VIP of a service of one of others inside subnet, or a VIP of
// network's own services inside one of others' subnets. (VIPs are reserved
// when the service is created; see KeyReservedIn.)
func CheckAttach(ctx context.Context, nb client.Client, network string, subnet netip.Prefix, others map[string]netip.Prefix) error {
	lbs, err := allServices(ctx, nb)
	if err != nil {
		return err
	}
	sort.Slice(lbs, func(i, j int) bool { return lbs[i].ExternalIDs[owner.KeyName] < lbs[j].ExternalIDs[owner.KeyName] })
	for _, lb := range lbs {
		v := vipAddr(lb)
		n := lb.ExternalIDs[owner.KeyNetwork]
		if !v.IsValid() {
			continue
		}
		if _, ok := others[n]; ok && subnet.Contains(v) {
			return fmt.Errorf("%w: service %q of network %q has VIP %s inside %q's subnet %s; delete the service (or recreate it with a VIP outside) first",
				ErrVIPInUse, lb.ExternalIDs[owner.KeyName], n, v, network, subnet)
		}
		if n != network {
			continue
		}
		for o, p := range others {
			if p.Contains(v) {
				return fmt.Errorf("%w: service %q of network %q has VIP %s inside network %q's subnet %s on that router; delete the service (or recreate it with a VIP outside) first",
					ErrVIPInUse, lb.ExternalIDs[owner.KeyName], n, v, o, p)
			}
		}
	}
	return nil
}
