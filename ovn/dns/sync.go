package dns

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// Topology is how ovlmgr networks are joined by Logical_Routers, read from
// OVN's own rows (router-type switch ports and router ports), so it does not
// depend on how a router was attached.
type Topology struct {
	// Switches maps network name to its switch (without ports).
	Switches map[string]*nbdb.LogicalSwitch
	// Routers maps network name to the names of the Logical_Routers it is on.
	Routers map[string][]string
	// RouterUUID maps router name to its UUID.
	RouterUUID map[string]string
	// RouterRows maps router name to its row (name, ports, load_balancer).
	RouterRows map[string]*nbdb.LogicalRouter
	// DNS maps network name to its DNS rows' UUIDs by shard ("" for a
	// shard without its row; absent for a network without any).
	DNS map[string][]string
	// unkeyed are DNS rows without KeyShard (shard 0 of networks made
	// before records were sharded); Sync gives them the key.
	unkeyed []*nbdb.DNS
	// Responders maps network name to its nameserver placeholder port.
	Responders map[string]*nbdb.LogicalSwitchPort
}

// Peers returns the networks sharing a router with network (itself excluded), sorted.
func (t *Topology) Peers(network string) []string {
	set := map[string]bool{}
	for _, r := range t.Routers[network] {
		for n, rs := range t.Routers {
			for _, r2 := range rs {
				if r2 == r && n != network {
					set[n] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadTopology reads every ovlmgr network, its DNS row and the routers it is
// attached to, in two transactions whose size grows with networks and router
// attachments, never with container ports.
func ReadTopology(ctx context.Context, nb client.Client) (*Topology, error) {
	tx := dbops.NewTx(nb)
	swq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindNetwork))}, switchFields)
	dnsq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindDNS))}, dnsIDFields)
	lrq := dbops.Query(tx, nil, func(r *nbdb.LogicalRouter) []any { return []any{&r.UUID, &r.Name, &r.Ports, &r.LoadBalancer} })
	lrpq := dbops.Query(tx, nil, func(p *nbdb.LogicalRouterPort) []any { return []any{&p.UUID, &p.Name} })
	lspq := dbops.Query(tx, []ovsdb.Condition{dbops.Equal("type", "router")},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID, &p.Name, &p.Options} })
	respq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindDNS))},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID, &p.Name, &p.Addresses, &p.ExternalIDs} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read network topology: %w", err)
	}
	sws, err := swq.Rows()
	if err != nil {
		return nil, err
	}
	dnss, err := dnsq.Rows()
	if err != nil {
		return nil, err
	}
	lrs, err := lrq.Rows()
	if err != nil {
		return nil, err
	}
	lrps, err := lrpq.Rows()
	if err != nil {
		return nil, err
	}
	lsps, err := lspq.Rows()
	if err != nil {
		return nil, err
	}
	resp, err := respq.Rows()
	if err != nil {
		return nil, err
	}
	t := &Topology{Switches: map[string]*nbdb.LogicalSwitch{}, Routers: map[string][]string{},
		RouterUUID: map[string]string{}, RouterRows: map[string]*nbdb.LogicalRouter{}, DNS: map[string][]string{},
		Responders: map[string]*nbdb.LogicalSwitchPort{}}
	for _, p := range resp {
		if owner.Owned(p.ExternalIDs, owner.KindDNS) {
			t.Responders[p.ExternalIDs[owner.KeyNetwork]] = p
		}
	}
	bySwitchUUID := map[string]string{}
	for _, s := range sws {
		if owner.Owned(s.ExternalIDs, owner.KindNetwork) {
			t.Switches[s.Name] = s
			bySwitchUUID[s.UUID] = s.Name
		}
	}
	sort.Slice(dnss, func(i, j int) bool { return dnss[i].UUID < dnss[j].UUID })
	for _, d := range dnss {
		if owner.Owned(d.ExternalIDs, owner.KindDNS) {
			n, i := d.ExternalIDs[owner.KeyName], shardOfRow(d.ExternalIDs)
			if i < 0 {
				continue
			}
			if t.DNS[n] == nil {
				t.DNS[n] = make([]string, Shards)
			}
			if t.DNS[n][i] == "" {
				t.DNS[n][i] = d.UUID
				if _, ok := d.ExternalIDs[KeyShard]; !ok {
					t.unkeyed = append(t.unkeyed, d)
				}
			}
		}
	}
	lrpName := map[string]string{}
	for _, p := range lrps {
		lrpName[p.UUID] = p.Name
	}
	routerOfLRP := map[string]string{}
	for _, r := range lrs {
		t.RouterUUID[r.Name] = r.UUID
		t.RouterRows[r.Name] = r
		for _, p := range r.Ports {
			if n, ok := lrpName[p]; ok {
				routerOfLRP[n] = r.Name
			}
		}
	}
	// Router-type switch ports peered with a router port: find their switch.
	type attachment struct {
		router string
		sw     *dbops.Result[nbdb.LogicalSwitch] // the switch holding the router-type port
	}
	var attach []attachment
	tx = dbops.NewTx(nb)
	for _, p := range lsps {
		r, ok := routerOfLRP[p.Options["router-port"]]
		if !ok {
			continue
		}
		attach = append(attach, attachment{r, dbops.Query(tx, []ovsdb.Condition{dbops.Contains("ports", dbops.UUIDSet(p.UUID))},
			func(s *nbdb.LogicalSwitch) []any { return []any{&s.UUID} })})
	}
	if len(attach) > 0 {
		if err := tx.Transact(ctx); err != nil {
			return nil, fmt.Errorf("read router attachments: %w", err)
		}
		for _, a := range attach {
			for _, u := range a.sw.UUIDs() {
				if n, ok := bySwitchUUID[u]; ok && !contains(t.Routers[n], a.router) {
					t.Routers[n] = append(t.Routers[n], a.router)
				}
			}
		}
	}
	return t, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Sync makes every ovlmgr network have its DNS rows (one per shard) and
// every network's switch reference exactly its own rows plus those of the
// networks sharing a router with it (references to rows ovlmgr does not own are kept). Call it
// after attaching a network to a router or detaching it. Concurrent changes
// are detected with wait guards and the sync is redone.
func Sync(ctx context.Context, nb client.Client) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		var retry bool
		retry, err = syncOnce(ctx, nb)
		if err == nil && !retry {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("sync DNS rows: NB kept changing, gave up after 8 attempts")
}

func syncOnce(ctx context.Context, nb client.Client) (retry bool, err error) {
	t, err := ReadTopology(ctx, nb)
	if err != nil {
		return false, fmt.Errorf("sync DNS rows: %w", err)
	}
	var ops []ovsdb.Operation
	var buildErr error
	add := func(o []ovsdb.Operation, err error) {
		if err != nil && buildErr == nil {
			buildErr = err
		}
		ops = append(ops, o...)
	}
	var guards []int
	rowsOf := map[string][]string{} // network → DNS uuids or named uuids, by shard
	names := make([]string, 0, len(t.Switches))
	for n := range t.Switches {
		names = append(names, n)
	}
	sort.Strings(names)
	// A network made before records were sharded has one row, without
	// KeyShard, holding all its records: it becomes shard 0 and its other
	// records move to their shards, in this transaction.
	moving := map[string]map[int]map[string]string{} // network → shard → records
	unkeyedOf := map[string]*nbdb.DNS{}
	for _, d := range t.unkeyed {
		recs, err := records(ctx, nb, dbops.ByUUID(d.UUID))
		if err != nil {
			return false, fmt.Errorf("sync DNS rows: %w", err)
		}
		n := d.ExternalIDs[owner.KeyName]
		unkeyedOf[n] = d
		moving[n] = map[int]map[string]string{}
		for k, v := range recs {
			if i := ShardOf(k); i != 0 {
				if moving[n][i] == nil {
					moving[n][i] = map[string]string{}
				}
				moving[n][i][k] = v
			}
		}
	}
	for i, n := range names {
		rowsOf[n] = make([]string, Shards)
		for k := 0; k < Shards; k++ {
			if have := t.DNS[n]; have != nil && have[k] != "" {
				rowsOf[n][k] = have[k]
				if m := moving[n][k]; len(m) > 0 {
					add([]ovsdb.Operation{dbops.AddPairs(nbdb.DNSTable, dbops.ByUUID(have[k]), "records", m)}, nil)
				}
				continue
			}
			named := fmt.Sprintf("dns%d_%d", i, k)
			rowsOf[n][k] = named
			ids := shardIDs(n, k)
			// Only one creator wins: every other one fails this wait and retries.
			guards = append(guards, len(ops))
			probe := &nbdb.DNS{ExternalIDs: ids}
			absent, err := dbconn.Absent(nb, probe, &probe.ExternalIDs)
			add([]ovsdb.Operation{absent}, err)
			recs := moving[n][k]
			if recs == nil {
				recs = map[string]string{}
			}
			add(nb.Create(&nbdb.DNS{UUID: named, ExternalIDs: ids, Records: recs}))
		}
	}
	for n, d := range unkeyedOf {
		// Guarded: a concurrent sync migrating the same row makes this one retry.
		guards = append(guards, len(ops))
		guard, err := dbops.StillOp(nb, d, &d.ExternalIDs)
		add([]ovsdb.Operation{guard}, err)
		add(nb.Where(d).Mutate(d, model.Mutation{Field: &d.ExternalIDs, Mutator: ovsdb.MutateOperationInsert,
			Value: map[string]string{KeyShard: "0"}}))
		for _, m := range moving[n] {
			add([]ovsdb.Operation{dbops.DelPairs(nbdb.DNSTable, dbops.ByUUID(d.UUID), "records", m)}, nil)
		}
	}
	ours := map[string]bool{}
	for _, us := range t.DNS {
		for _, u := range us {
			ours[u] = true
		}
	}
	for _, n := range names {
		sw := t.Switches[n]
		want := map[string]bool{}
		for _, u := range rowsOf[n] {
			want[u] = true
		}
		for _, p := range t.Peers(n) {
			for _, u := range rowsOf[p] {
				want[u] = true
			}
		}
		for _, u := range sw.DNSRecords {
			if !ours[u] {
				want[u] = true // not ours: keep
			}
		}
		if sameSet(want, sw.DNSRecords) {
			continue
		}
		guards = append(guards, len(ops))
		guard, err := dbops.StillOp(nb, sw, &sw.DNSRecords)
		add([]ovsdb.Operation{guard}, err)
		list := make([]string, 0, len(want))
		for u := range want {
			list = append(list, u)
		}
		sort.Strings(list)
		upd := &nbdb.LogicalSwitch{UUID: sw.UUID, DNSRecords: list}
		add(nb.Where(upd).Update(upd, &upd.DNSRecords))
	}
	// Nameserver placeholders: see ResponderName.
	for i, n := range names {
		sw := t.Switches[n]
		want := responderAddress(sw)
		if len(t.Routers[n]) > 0 {
			want = ""
		}
		have := t.Responders[n]
		switch {
		case want == "" && have != nil:
			ls := &nbdb.LogicalSwitch{UUID: sw.UUID}
			add(nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{have.UUID}}))
		case want != "" && have == nil:
			named := fmt.Sprintf("resp%d", i)
			name := ResponderName(n)
			guards = append(guards, len(ops))
			lsp := &nbdb.LogicalSwitchPort{UUID: named, Name: name, Addresses: []string{want},
				ExternalIDs: owner.IDs(owner.KindDNS, name, map[string]string{owner.KeyNetwork: n})}
			absent, err := dbconn.Absent(nb, lsp, &lsp.Name)
			add([]ovsdb.Operation{absent}, err)
			add(nb.Create(lsp))
			ls := &nbdb.LogicalSwitch{UUID: sw.UUID}
			add(nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{named}}))
		case want != "" && have != nil && (len(have.Addresses) != 1 || have.Addresses[0] != want):
			upd := &nbdb.LogicalSwitchPort{UUID: have.UUID, Addresses: []string{want}}
			add(nb.Where(upd).Update(upd, &upd.Addresses))
		}
	}
	if buildErr != nil {
		return false, fmt.Errorf("sync DNS rows: %w", buildErr)
	}
	if len(ops) == 0 {
		return false, nil
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		for _, g := range guards {
			if dbconn.FailedWait(err, g) {
				return true, nil
			}
		}
		return false, fmt.Errorf("sync DNS rows: %w", err)
	}
	return false, nil
}

func sameSet(want map[string]bool, have []string) bool {
	if len(want) != len(have) {
		return false
	}
	for _, u := range have {
		if !want[u] {
			return false
		}
	}
	return true
}

// DeleteOps returns operations removing the network's DNS rows, their
// references from every switch and its nameserver placeholder port (call in
// the network's delete transaction).
func DeleteOps(ctx context.Context, nb client.Client, network string) ([]ovsdb.Operation, error) {
	// Only the rows of this network: its nameserver port (by name, an index)
	// and its DNS rows; switches lose references to them through mutations
	// whose conditions ovsdb-server evaluates (nothing else is read).
	tx := dbops.NewTx(nb)
	respq := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(ResponderName(network))},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID, &p.ExternalIDs} })
	dnsq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(dnsIDs(network))}, func(d *nbdb.DNS) []any { return []any{&d.UUID} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read DNS rows of network %q: %w", network, err)
	}
	resp, err := respq.Rows()
	if err != nil {
		return nil, err
	}
	rows, err := dnsq.Rows()
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	sw := []ovsdb.Condition{dbops.NameIs(network), dbops.Includes(owner.Selector(owner.KindNetwork))}
	for _, p := range resp {
		if owner.Owned(p.ExternalIDs, owner.KindDNS) && p.ExternalIDs[owner.KeyNetwork] == network {
			ops = append(ops, dbops.DelRefs(nbdb.LogicalSwitchTable, sw, "ports", p.UUID))
		}
	}
	for _, d := range rows {
		ops = append(ops,
			dbops.DelRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{{Column: "dns_records", Function: ovsdb.ConditionIncludes,
				Value: dbops.UUIDSet(d.UUID)}}, "dns_records", d.UUID),
			dbops.Delete(nbdb.DNSTable, dbops.ByUUID(d.UUID)))
	}
	return ops, nil
}

// ResponderName is the name of a network's nameserver placeholder port.
//
// Containers use the gateway address as nameserver. On a network attached to
// a router the router port answers ARP for it; on a network without one
// nothing would, and the kernel would never send the query. So such a
// network gets an unbound Logical_Switch_Port owning "MAC gateway", for which
// OVN answers ARP; the MAC is the one the router port would get
// (port.MACFromIP of the gateway, as router.MAC), so containers' neighbour entries stay right when
// a router is attached later, and Sync removes the placeholder then. Queries
// are answered by ovn-controller before any forwarding; other traffic to the
// gateway is dropped as it would be with no ARP answer.
func ResponderName(network string) string { return "ovldns:" + network }

// On an IPv6 network the placeholder also owns the IPv6 gateway (the /64's
// ::1, KeyGateway6), for which OVN answers neighbour solicitations; an
// IPv6-only network's placeholder has the MAC its router port would get
// (port.MACFromIP6 of that gateway).
func responderAddress(sw *nbdb.LogicalSwitch) string {
	var mac string
	var ips []string
	if gw, err := netip.ParseAddr(sw.ExternalIDs[owner.KeyGateway]); err == nil && gw.Is4() {
		mac = port.MACFromIP(gw).String()
		ips = append(ips, gw.String())
	}
	if gw6, err := netip.ParseAddr(sw.ExternalIDs[KeyGateway6]); err == nil && gw6.Is6() {
		if mac == "" {
			mac = port.MACFromIP6(gw6).String()
		}
		ips = append(ips, gw6.String())
	}
	if mac == "" {
		return ""
	}
	return mac + " " + strings.Join(ips, " ")
}

// KeyGateway6 is a network switch's IPv6 gateway (its /64's ::1), in its
// external_ids: containers' IPv6 default route and nameserver.
const KeyGateway6 = "ovlmgr.io/gateway6"
