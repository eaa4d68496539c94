// Package dns keeps container and service names in OVN's DNS tables.
//
// Every network (an ovlmgr Logical_Switch) gets Shards owned NB `DNS` rows
// holding its records: "<name>.<network>.<domain>" → addresses (A, and AAAA
// when dual stack) and "<reversed address>.in-addr.arpa" → name (PTR). A
// record lives in the row numbered ShardOf(its key), so a name has exactly
// one place (clash checks stay map inserts) and each per-container change
// mutates a few keys of rows holding 1/Shards of the network's records:
// ovsdb-server's cost of a map mutation grows with the map's size, so one
// row for all names would make ADD and DEL slower with every container.
// The switch's dns_records references its own rows and the rows of every
// network on the same Logical_Router, so networks of one router resolve
// each other's names and different routers (tenants) do not.
// ovn-controller answers the queries on each node; no DNS server runs.
//
// Name clashes: the first holder of a name keeps it. A container asking for a
// name held by another address gets its container-ID name
// (IDName, "<first 12 chars of the ID>.<network>.<domain>") instead, and
// Register reports the clash in Registration.Clash. A service whose name is
// held is refused.
package dns

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// ErrNetworkNotFound is returned (wrapped) for a network that does not exist.
var ErrNetworkNotFound = errors.New("network not found")

// ErrNameTaken is returned (wrapped) when a name belongs to another address.
var ErrNameTaken = errors.New("name already in use")

// Network is what the DNS code knows of a network.
type Network struct {
	Name       string
	Domain     string // DefaultDomain unless set
	SwitchUUID string
	// DNSUUID is its first DNS row (shard 0), "" when it has none yet.
	DNSUUID string
	// ByShard are its DNS rows by shard (see ShardOf); complete when every
	// entry is set.
	ByShard []string
	// Switch is the network's Logical_Switch (without its ports column).
	Switch *nbdb.LogicalSwitch
}

// Shards is how many DNS rows hold one network's records.
const Shards = 16

// KeyShard numbers a network's DNS rows (external_ids, "0" to Shards-1). A
// row without it is shard 0 of a network made before records were sharded;
// Sync gives it the key.
const KeyShard = "ovlmgr.io/dns-shard"

// ShardOf is the shard holding the record with this key (a name or a
// reversed address).
func ShardOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % Shards)
}

// shardOfRow is a DNS row's shard number from its external_ids, -1 when
// the number is not one of ours.
func shardOfRow(ids map[string]string) int {
	v, ok := ids[KeyShard]
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || i >= Shards {
		return -1
	}
	return i
}

// complete reports whether every shard has its row.
func (n *Network) complete() bool {
	if len(n.ByShard) != Shards {
		return false
	}
	for _, u := range n.ByShard {
		if u == "" {
			return false
		}
	}
	return true
}

// ShardWhere selects the network's DNS row holding key (by its
// external_ids: no row UUID needed).
func ShardWhere(network, key string) []ovsdb.Condition {
	return []ovsdb.Condition{dbops.Includes(shardIDs(network, ShardOf(key)))}
}

// where selects the row holding key.
func (n *Network) where(key string) []ovsdb.Condition { return ShardWhere(n.Name, key) }

// Zone returns "<network>.<domain>".
func (n *Network) Zone() string { return Zone(n.Name, n.Domain) }

// Search is the resolv.conf search list of a container on the network:
// "<network>.<domain>" then "<domain>".
func (n *Network) Search() []string { return []string{n.Zone(), n.Domain} }

// Ensure returns the network with its DNS rows, creating missing rows (and
// attaching them to the switches of its router's networks).
func Ensure(ctx context.Context, nb client.Client, network string) (*Network, error) {
	n, err := Get(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if n.complete() {
		return n, nil
	}
	nb = dbops.Fresh(nb) // the rows Sync writes, read back from the server
	if err := Sync(ctx, nb); err != nil {
		return nil, err
	}
	n, err = Get(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if !n.complete() {
		return nil, fmt.Errorf("network %q: DNS rows missing after sync", network)
	}
	return n, nil
}

// lookup reads the network's switch (owned, kind network), not its DNS
// rows: the per-container operations address those by their shard's
// external_ids (ShardWhere), so they never read them (reading a row costs
// more than a whole mutation of a few keys).
func lookup(ctx context.Context, nb client.Client, network string) (*Network, error) {
	sws, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(network)}, switchFields)
	if err != nil {
		return nil, fmt.Errorf("network %q: read switch: %w", network, err)
	}
	var sw *nbdb.LogicalSwitch
	for _, s := range sws {
		if owner.Owned(s.ExternalIDs, owner.KindNetwork) {
			sw = s
		}
	}
	if sw == nil {
		return nil, fmt.Errorf("network %q: %w", network, ErrNetworkNotFound)
	}
	n := &Network{Name: network, Domain: DefaultDomain, SwitchUUID: sw.UUID, Switch: sw}
	if d := sw.ExternalIDs[KeyDomain]; d != "" {
		n.Domain = d
	}
	return n, nil
}

// readRows fills n.ByShard and n.DNSUUID from the network's DNS rows.
func readRows(ctx context.Context, nb client.Client, n *Network) error {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(dnsIDs(n.Name))}, dnsIDFields)
	if err != nil {
		return fmt.Errorf("network %q: read DNS rows: %w", n.Name, err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].UUID < rows[j].UUID })
	n.ByShard = make([]string, Shards)
	for _, r := range rows {
		if i := shardOfRow(r.ExternalIDs); i >= 0 && n.ByShard[i] == "" {
			n.ByShard[i] = r.UUID
		}
	}
	n.DNSUUID = n.ByShard[0]
	return nil
}

// switchFields are the columns of a network's switch DNS reads (not its
// ports: they grow with containers).
func switchFields(s *nbdb.LogicalSwitch) []any {
	return []any{&s.UUID, &s.Name, &s.ExternalIDs, &s.OtherConfig, &s.DNSRecords, &s.LoadBalancer}
}

// dnsIDFields are the columns identifying a DNS row (not its records).
func dnsIDFields(d *nbdb.DNS) []any { return []any{&d.UUID, &d.ExternalIDs} }

// Get returns the network and its DNS rows (which may be missing:
// DNSUUID "").
func Get(ctx context.Context, nb client.Client, network string) (*Network, error) {
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if err := readRows(ctx, nb, n); err != nil {
		return nil, err
	}
	return n, nil
}

func dnsIDs(network string) map[string]string {
	return owner.IDs(owner.KindDNS, network, map[string]string{owner.KeyNetwork: network})
}

// shardIDs are the external_ids of the network's DNS row number i.
func shardIDs(network string, i int) map[string]string {
	ids := dnsIDs(network)
	ids[KeyShard] = strconv.Itoa(i)
	return ids
}

// Host is one container interface's name and addresses.
type Host struct {
	Network string
	// Name is the short name wanted (see HostName); empty means IDName(ContainerID).
	Name string
	// ContainerID gives the fallback name on a clash.
	ContainerID string
	IPs         []net.IP
}

// Registration is what Register stored.
type Registration struct {
	FQDN string // the name the container resolves under
	// Clash, when not empty, is the wanted name that another address already
	// held; FQDN is then the container-ID name.
	Clash  string
	Domain string
	// Nameservers and Search are the CNI result's `dns`: the network's
	// gateway (ovn-controller answers queries sent to it) and
	// "<network>.<domain>", "<domain>".
	Nameservers []string
	Search      []string
}

// Register adds A/AAAA and PTR records for h in one transaction. Safe to
// repeat, so a transaction whose reply was lost in a leader change is
// run again (dbconn.Retry). On a name clash the container-ID name is used
// and reported.
func Register(ctx context.Context, nb client.Client, h Host) (*Registration, error) {
	var reg *Registration
	err := dbconn.Retry(ctx, func(bool) error {
		var err error
		reg, err = register(ctx, nb, h)
		return err
	})
	return reg, err
}

func register(ctx context.Context, nb client.Client, h Host) (*Registration, error) {
	if len(h.IPs) == 0 {
		return nil, fmt.Errorf("register DNS name on network %q: no addresses", h.Network)
	}
	name := h.Name
	if name == "" {
		name = IDName(h.ContainerID)
	}
	n, err := lookup(ctx, nb, h.Network)
	if err != nil {
		return nil, fmt.Errorf("register DNS name %q: %w", name, err)
	}
	reg := &Registration{Domain: n.Domain, Search: n.Search(), Nameservers: []string{}}
	if gw := n.Switch.ExternalIDs[owner.KeyGateway]; gw != "" {
		reg.Nameservers = append(reg.Nameservers, gw)
	}
	if gw6 := n.Switch.ExternalIDs[KeyGateway6]; gw6 != "" {
		reg.Nameservers = append(reg.Nameservers, gw6)
	}
	if !n.ContainerNames() {
		return reg, nil // the network's nameservers and search list, no name
	}
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("register DNS name on network %q: %w", h.Network, err)
	}
	fqdn := FQDN(name, n.Name, n.Domain)
	err = addRecords(ctx, nb, n, fqdn, h.IPs)
	if err == nil {
		reg.FQDN = fqdn
		return reg, nil
	}
	if !errors.Is(err, ErrNameTaken) {
		return nil, fmt.Errorf("register DNS name %q: %w", fqdn, err)
	}
	idName := IDName(h.ContainerID)
	if idName == "" || idName == name {
		return nil, fmt.Errorf("register DNS name %q: %w", fqdn, err)
	}
	alt := FQDN(idName, n.Name, n.Domain)
	if err2 := addRecords(ctx, nb, n, alt, h.IPs); err2 != nil {
		return nil, fmt.Errorf("register DNS name %q (fallback for clashing %q): %w", alt, fqdn, err2)
	}
	reg.FQDN, reg.Clash = alt, fqdn
	return reg, nil
}

// AddOps returns operations that add fqdn → ips and the PTR records to the
// network's DNS rows, and fail the transaction on their wait operation, at
// index guard relative to the first, when fqdn is held by other addresses
// (or the row that would hold it is missing: see Ensure). They mutate only
// these keys, in the rows addressed by ShardWhere.
func AddOps(n *Network, fqdn string, ips []net.IP) (ops []ovsdb.Operation, guard int) {
	val := addrValue(ips)
	ptrs := map[int]map[string]string{} // shard → reversed address → fqdn
	for _, ip := range ips {
		r := ReverseName(ip)
		k := ShardOf(r)
		if ptrs[k] == nil {
			ptrs[k] = map[string]string{}
		}
		ptrs[k][r] = fqdn
	}
	shards := make([]int, 0, len(ptrs))
	for k := range ptrs {
		shards = append(shards, k)
	}
	sort.Ints(shards)
	where := func(k int) []ovsdb.Condition { return []ovsdb.Condition{dbops.Includes(shardIDs(n.Name, k))} }
	for _, k := range shards {
		// Stale PTRs of these addresses (left by a container that died) go first.
		ops = append(ops, dbops.DelKeys(nbdb.DNSTable, where(k), "records", keys(ptrs[k])...))
	}
	// Map insert never overwrites: a held name keeps its value...
	ops = append(ops, dbops.AddPairs(nbdb.DNSTable, n.where(fqdn), "records", map[string]string{fqdn: val}))
	for _, k := range shards {
		ops = append(ops, dbops.AddPairs(nbdb.DNSTable, where(k), "records", ptrs[k]))
	}
	// ...and this wait then fails the whole transaction.
	guard = len(ops)
	ops = append(ops, holds(n.Name, fqdn, val))
	return ops, guard
}

// holds is a wait guard: the transaction fails unless the network's row
// for key holds the record key → val. (The row is matched by its
// external_ids, which are exactly shardIDs: Sync makes them so.)
func holds(network, key, val string) ovsdb.Operation {
	ids := shardIDs(network, ShardOf(key))
	return dbops.Exists(nbdb.DNSTable, []ovsdb.Condition{dbops.Includes(ids), dbops.Contains("records", dbops.StrMap(map[string]string{key: val}))},
		"external_ids", dbops.StrMap(ids))
}

// addRecords adds the records; when the guard fails it makes sure the
// network's DNS rows exist (Ensure) and tries once more before reporting
// the name as taken.
func addRecords(ctx context.Context, nb client.Client, n *Network, fqdn string, ips []net.IP) error {
	for attempt := 0; ; attempt++ {
		ops, guard := AddOps(n, fqdn, ips)
		_, err := dbconn.Transact(ctx, nb, ops...)
		if !dbconn.FailedWait(err, guard) {
			return err
		}
		if attempt > 0 {
			return nameTaken(ctx, nb, n, fqdn)
		}
		// The name is held, or its row is missing (a new network): make
		// sure the rows exist and try once more.
		if _, err := Ensure(ctx, nb, n.Name); err != nil {
			return err
		}
	}
}

func nameTaken(ctx context.Context, nb client.Client, n *Network, fqdn string) error {
	held := ""
	if recs, err := records(ctx, nb, n.where(fqdn)); err == nil {
		held = recs[fqdn]
	}
	return fmt.Errorf("%w by %s", ErrNameTaken, held)
}

// RemoveOps returns operations deleting exactly the given records from the
// network's DNS rows (pairs whose value changed meanwhile are kept).
func RemoveOps(n *Network, recs map[string]string) []ovsdb.Operation {
	if len(recs) == 0 {
		return nil
	}
	by := map[int]map[string]string{}
	for k, v := range recs {
		i := ShardOf(k)
		if by[i] == nil {
			by[i] = map[string]string{}
		}
		by[i][k] = v
	}
	shards := make([]int, 0, len(by))
	for i := range by {
		shards = append(shards, i)
	}
	sort.Ints(shards)
	ops := make([]ovsdb.Operation, 0, len(shards))
	for _, i := range shards {
		ops = append(ops, dbops.DelPairs(nbdb.DNSTable, []ovsdb.Condition{dbops.Includes(shardIDs(n.Name, i))}, "records", by[i]))
	}
	return ops
}

// Unregister removes every record of the network naming or reversing ips
// (the container's A/AAAA and PTR records, under whichever name it got).
// A missing network or record is not an error: DEL must be repeatable (and
// is repeated after a reply lost in a leader change, dbconn.Retry).
func Unregister(ctx context.Context, nb client.Client, network string, ips []net.IP) error {
	return dbconn.Retry(ctx, func(bool) error { return unregister(ctx, nb, network, ips) })
}

func unregister(ctx context.Context, nb client.Client, network string, ips []net.IP) error {
	n, del, err := unregisterRecords(ctx, nb, network, ips)
	if err != nil || len(del) == 0 {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, RemoveOps(n, del)...); err != nil {
		return fmt.Errorf("remove DNS records %v on network %q: %w", keys(del), network, err)
	}
	return nil
}

// unregisterRecords reads the records Unregister removes (nil for a
// network that does not exist).
func unregisterRecords(ctx context.Context, nb client.Client, network string, ips []net.IP) (*Network, map[string]string, error) {
	n, err := lookup(ctx, nb, network)
	if errors.Is(err, ErrNetworkNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("remove DNS records: %w", err)
	}
	if len(ips) == 0 || !n.ContainerNames() {
		return n, nil, nil
	}
	del, err := ptrRecords(ctx, nb, n, ips)
	if err != nil {
		return nil, nil, fmt.Errorf("remove DNS records on network %q: %w", network, err)
	}
	if del == nil {
		// An address without its PTR: look at every record.
		recs, err := records(ctx, nb, []ovsdb.Condition{dbops.Includes(dnsIDs(n.Name))})
		if err != nil {
			return nil, nil, fmt.Errorf("remove DNS records on network %q: %w", network, err)
		}
		del = HostRecords(recs, ips)
	}
	return n, del, nil
}

// UnregisterHost removes h's records like Unregister, without reading the
// network's whole DNS row when it can: it probes, with selects that return
// only a row UUID, which of the names h can have got (h.Name, then its
// container-ID name) each address's PTR points to, and deletes exactly
// those pairs. Only when no candidate matches does it fall back to
// Unregister. Its cost then does not grow with the network's names.
// Repeated after a reply lost in a leader change (dbconn.Retry).
func UnregisterHost(ctx context.Context, nb client.Client, h Host) error {
	return dbconn.Retry(ctx, func(bool) error { return unregisterHost(ctx, nb, h) })
}

func unregisterHost(ctx context.Context, nb client.Client, h Host) error {
	ops, err := UnregisterHostOps(ctx, nb, h)
	if err != nil || len(ops) == 0 {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		return fmt.Errorf("remove DNS records of %v on network %q: %w", h.IPs, h.Network, err)
	}
	return nil
}

// UnregisterHostOps reads what UnregisterHost removes and returns the
// operations that remove it (exact key/value deletes, repeatable), for a
// caller that removes more in the same transaction: DEL removes the
// container's port with its names (chassis.RemoveNamedPort).
func UnregisterHostOps(ctx context.Context, nb client.Client, h Host) ([]ovsdb.Operation, error) {
	if len(h.IPs) == 0 {
		return nil, nil
	}
	n, err := lookup(ctx, nb, h.Network)
	if errors.Is(err, ErrNetworkNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remove DNS records: %w", err)
	}
	if !n.ContainerNames() {
		return nil, nil
	}
	var cands []string
	for _, name := range []string{h.Name, IDName(h.ContainerID)} {
		if name != "" && ValidateName(name) == nil {
			cands = append(cands, FQDN(name, n.Name, n.Domain))
		}
	}
	type probe struct {
		ip   net.IP
		fqdn string
		q    *dbops.Result[nbdb.DNS] // the DNS row if it holds the PTR ip → fqdn
	}
	var probes []probe
	tx := dbops.NewTx(nb)
	for _, ip := range h.IPs {
		for _, f := range cands {
			probes = append(probes, probe{ip, f, dbops.Query(tx, append(n.where(ReverseName(ip)),
				dbops.Contains("records", dbops.StrMap(map[string]string{ReverseName(ip): f}))),
				func(d *nbdb.DNS) []any { return []any{&d.UUID} })})
		}
	}
	del := map[string]string{}
	found := map[string]bool{}
	if tx.Len() > 0 {
		if err := tx.Transact(ctx); err != nil {
			return nil, fmt.Errorf("remove DNS records on network %q: %w", h.Network, err)
		}
		val := addrValue(h.IPs)
		for _, p := range probes {
			if p.q.Len() == 0 || found[p.ip.String()] {
				continue
			}
			found[p.ip.String()] = true
			del[ReverseName(p.ip)] = p.fqdn
			del[p.fqdn] = val
		}
	}
	if len(found) < len(h.IPs) {
		// No candidate name holds an address's PTR (an alias the caller
		// does not know): the records of the addresses, read.
		if n, del, err = unregisterRecords(ctx, nb, h.Network, h.IPs); err != nil || n == nil {
			return nil, err
		}
	}
	return RemoveOps(n, del), nil
}

// HostRecords picks from recs the records of the addresses ips: names whose
// value lists one of them, and their PTRs.
func HostRecords(recs map[string]string, ips []net.IP) map[string]string {
	want := map[string]bool{}
	for _, ip := range ips {
		want[ip.String()] = true
	}
	out := map[string]string{}
	for k, v := range recs {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
			if ip := net.ParseIP(f); ip != nil && want[ip.String()] {
				out[k] = v
			}
		}
	}
	for _, ip := range ips {
		r := ReverseName(ip)
		if v, ok := recs[r]; ok {
			out[r] = v
		}
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ptrRecords finds the records of ips through their PTRs, reading only the
// rows that hold them: each address's PTR and the name it points to, when
// that name's value lists the address. nil when an address has no PTR.
func ptrRecords(ctx context.Context, nb client.Client, n *Network, ips []net.IP) (map[string]string, error) {
	var where [][]ovsdb.Condition
	for _, ip := range ips {
		where = append(where, n.where(ReverseName(ip)))
	}
	ptrs, err := records(ctx, nb, where...)
	if err != nil {
		return nil, err
	}
	del := map[string]string{}
	var names []string
	for _, ip := range ips {
		r := ReverseName(ip)
		f, ok := ptrs[r]
		if !ok {
			return nil, nil
		}
		del[r] = f
		if len(names) == 0 || names[len(names)-1] != f {
			names = append(names, f)
		}
	}
	// The usual case: the name the PTRs point to holds exactly these
	// addresses; a UUID-only probe says so without reading its row.
	val := addrValue(ips)
	if len(names) == 1 {
		f := names[0]
		tx := dbops.NewTx(nb)
		q := dbops.Query(tx, append(n.where(f), dbops.Contains("records", dbops.StrMap(map[string]string{f: val}))),
			func(d *nbdb.DNS) []any { return []any{&d.UUID} })
		if err := tx.Transact(ctx); err != nil {
			return nil, err
		}
		if q.Len() > 0 {
			del[f] = val
			return del, nil
		}
	}
	where = where[:0]
	for _, f := range names {
		where = append(where, n.where(f))
	}
	recs, err := records(ctx, nb, where...)
	if err != nil {
		return nil, err
	}
	for k, v := range HostRecords(recs, ips) {
		if _, isPTR := del[k]; !isPTR {
			del[k] = v
		}
	}
	return del, nil
}

// records reads the records of the DNS rows matching each where, merged
// (each key lives in one row).
func records(ctx context.Context, nb client.Client, where ...[]ovsdb.Condition) (map[string]string, error) {
	seen := map[string]bool{}
	tx := dbops.NewTx(nb)
	var qs []*dbops.Result[nbdb.DNS]
	for _, w := range where {
		if k := fmt.Sprint(w); !seen[k] {
			seen[k] = true
			qs = append(qs, dbops.Query(tx, w, func(d *nbdb.DNS) []any { return []any{&d.UUID, &d.Records} }))
		}
	}
	out := map[string]string{}
	if len(qs) == 0 {
		return out, nil
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("read DNS rows: %w", err)
	}
	for _, q := range qs {
		rows, err := q.Rows()
		if err != nil {
			return nil, fmt.Errorf("read DNS rows: %w", err)
		}
		for _, r := range rows {
			for k, v := range r.Records {
				out[k] = v
			}
		}
	}
	return out, nil
}

// Records returns the network's own records (name or reversed address →
// value). Empty when the network has no DNS row yet.
func Records(ctx context.Context, nb client.Client, network string) (map[string]string, error) {
	if _, err := lookup(ctx, nb, network); err != nil {
		return nil, err
	}
	return records(ctx, nb, []ovsdb.Condition{dbops.Includes(dnsIDs(network))})
}

// Resolve returns the addresses of a short name or FQDN in the network's
// records, nil when absent.
func Resolve(ctx context.Context, nb client.Client, network, name string) ([]net.IP, error) {
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	if !strings.HasSuffix(key, "."+n.Zone()) {
		key = FQDN(key, n.Name, n.Domain)
	}
	recs, err := records(ctx, nb, n.where(key))
	if err != nil {
		return nil, err
	}
	return ParseValue(recs[key]), nil
}

// ParseValue splits an OVN record value into addresses (non-addresses are
// skipped).
func ParseValue(v string) []net.IP {
	var out []net.IP
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		if ip := net.ParseIP(f); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}
