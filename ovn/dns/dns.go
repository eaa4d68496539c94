// Package dns keeps container and service names in OVN's DNS tables.
//
// Every network (an ovlmgr Logical_Switch) gets one owned NB `DNS` row holding
// its records: "<name>.<network>.<domain>" → addresses (A, and AAAA when dual
// stack) and "<reversed address>.in-addr.arpa" → name (PTR). The switch's
// dns_records references its own row and the rows of every network on the same
// Logical_Router, so networks of one router resolve each other's names and
// different routers (tenants) do not. ovn-controller answers the queries on
// each node; no DNS server runs.
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
	"net"
	"sort"
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
	DNSUUID    string // its DNS row
	// Switch is the network's Logical_Switch (without its ports column).
	Switch *nbdb.LogicalSwitch
}

// Zone returns "<network>.<domain>".
func (n *Network) Zone() string { return Zone(n.Name, n.Domain) }

// Search is the resolv.conf search list of a container on the network:
// "<network>.<domain>" then "<domain>".
func (n *Network) Search() []string { return []string{n.Zone(), n.Domain} }

// Ensure returns the network with its DNS row, creating the row (and
// attaching it to the switches of its router's networks) when missing.
func Ensure(ctx context.Context, nb client.Client, network string) (*Network, error) {
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if n.DNSUUID != "" {
		return n, nil
	}
	if err := Sync(ctx, nb); err != nil {
		return nil, err
	}
	n, err = lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if n.DNSUUID == "" {
		return nil, fmt.Errorf("network %q: DNS row missing after sync", network)
	}
	return n, nil
}

// lookup reads the network's switch (owned, kind network) and its DNS row.
func lookup(ctx context.Context, nb client.Client, network string) (*Network, error) {
	tx := dbops.NewTx(nb)
	swq := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(network)}, switchFields)
	dnsq := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(dnsIDs(network))}, dnsIDFields)
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("network %q: read switch and DNS row: %w", network, err)
	}
	sws, err := swq.Rows()
	if err != nil {
		return nil, err
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
	rows, err := dnsq.Rows()
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		sort.Slice(rows, func(i, j int) bool { return rows[i].UUID < rows[j].UUID })
		n.DNSUUID = rows[0].UUID
	}
	return n, nil
}

// switchFields are the columns of a network's switch DNS reads (not its
// ports: they grow with containers).
func switchFields(s *nbdb.LogicalSwitch) []any {
	return []any{&s.UUID, &s.Name, &s.ExternalIDs, &s.OtherConfig, &s.DNSRecords, &s.LoadBalancer}
}

// dnsIDFields are the columns identifying a DNS row (not its records).
func dnsIDFields(d *nbdb.DNS) []any { return []any{&d.UUID, &d.ExternalIDs} }

// Get returns the network (its DNS row may be missing: DNSUUID "").
func Get(ctx context.Context, nb client.Client, network string) (*Network, error) {
	return lookup(ctx, nb, network)
}

func dnsIDs(network string) map[string]string {
	return owner.IDs(owner.KindDNS, network, map[string]string{owner.KeyNetwork: network})
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
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("register DNS name on network %q: %w", h.Network, err)
	}
	n, err := Ensure(ctx, nb, h.Network)
	if err != nil {
		return nil, fmt.Errorf("register DNS name %q: %w", name, err)
	}
	reg := &Registration{Domain: n.Domain, Search: n.Search(), Nameservers: []string{}}
	if gw := n.Switch.ExternalIDs[owner.KeyGateway]; gw != "" {
		reg.Nameservers = append(reg.Nameservers, gw)
	}
	fqdn := FQDN(name, n.Name, n.Domain)
	err = addRecords(ctx, nb, n.DNSUUID, fqdn, h.IPs)
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
	if err2 := addRecords(ctx, nb, n.DNSUUID, alt, h.IPs); err2 != nil {
		return nil, fmt.Errorf("register DNS name %q (fallback for clashing %q): %w", alt, fqdn, err2)
	}
	reg.FQDN, reg.Clash = alt, fqdn
	return reg, nil
}

// AddOps returns operations that add fqdn → ips and the PTR records to the
// DNS row dnsUUID, and fail the transaction on their wait operation (at
// AddOpsGuard relative to the first) when fqdn is held by other addresses.
func AddOps(dnsUUID, fqdn string, ips []net.IP) []ovsdb.Operation {
	val := addrValue(ips)
	add := map[string]string{fqdn: val}
	var revs []string
	for _, ip := range ips {
		r := ReverseName(ip)
		revs = append(revs, r)
		add[r] = fqdn
	}
	return []ovsdb.Operation{
		// Stale PTRs of these addresses (left by a container that died) go first.
		dbops.DelKeys(nbdb.DNSTable, dbops.ByUUID(dnsUUID), "records", revs...),
		// Map insert never overwrites: a held name keeps its value...
		dbops.AddPairs(nbdb.DNSTable, dbops.ByUUID(dnsUUID), "records", add),
		// ...and this wait then fails the whole transaction.
		dbops.Matches(nbdb.DNSTable, dnsUUID, dbops.Contains("records", dbops.StrMap(map[string]string{fqdn: val}))),
	}
}

// AddOpsGuard is the index, relative to the first operation of AddOps,
// of its name-clash wait.
const AddOpsGuard = 2

func addRecords(ctx context.Context, nb client.Client, dnsUUID, fqdn string, ips []net.IP) error {
	_, err := dbconn.Transact(ctx, nb, AddOps(dnsUUID, fqdn, ips)...)
	if dbconn.FailedWait(err, AddOpsGuard) {
		held := ""
		if recs, err := records(ctx, nb, dnsUUID); err == nil {
			held = recs[fqdn]
		}
		return fmt.Errorf("%w by %s", ErrNameTaken, held)
	}
	return err
}

// RemoveOps returns an operation deleting exactly the given records (pairs
// whose value changed meanwhile are kept).
func RemoveOps(dnsUUID string, recs map[string]string) []ovsdb.Operation {
	if len(recs) == 0 {
		return nil
	}
	return []ovsdb.Operation{dbops.DelPairs(nbdb.DNSTable, dbops.ByUUID(dnsUUID), "records", recs)}
}

// Unregister removes every record of the network naming or reversing ips
// (the container's A/AAAA and PTR records, under whichever name it got).
// A missing network or record is not an error: DEL must be repeatable (and
// is repeated after a reply lost in a leader change, dbconn.Retry).
func Unregister(ctx context.Context, nb client.Client, network string, ips []net.IP) error {
	return dbconn.Retry(ctx, func(bool) error { return unregister(ctx, nb, network, ips) })
}

func unregister(ctx context.Context, nb client.Client, network string, ips []net.IP) error {
	n, err := lookup(ctx, nb, network)
	if errors.Is(err, ErrNetworkNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove DNS records: %w", err)
	}
	if n.DNSUUID == "" || len(ips) == 0 {
		return nil
	}
	recs, err := records(ctx, nb, n.DNSUUID)
	if err != nil {
		return fmt.Errorf("remove DNS records on network %q: %w", network, err)
	}
	del := HostRecords(recs, ips)
	if _, err := dbconn.Transact(ctx, nb, RemoveOps(n.DNSUUID, del)...); err != nil {
		return fmt.Errorf("remove DNS records %v on network %q: %w", keys(del), network, err)
	}
	return nil
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
	if len(h.IPs) == 0 {
		return nil
	}
	n, err := lookup(ctx, nb, h.Network)
	if errors.Is(err, ErrNetworkNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove DNS records: %w", err)
	}
	if n.DNSUUID == "" {
		return nil
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
			probes = append(probes, probe{ip, f, dbops.Query(tx, append(dbops.ByUUID(n.DNSUUID),
				dbops.Contains("records", dbops.StrMap(map[string]string{ReverseName(ip): f}))),
				func(d *nbdb.DNS) []any { return []any{&d.UUID} })})
		}
	}
	del := map[string]string{}
	found := map[string]bool{}
	if tx.Len() > 0 {
		if err := tx.Transact(ctx); err != nil {
			return fmt.Errorf("remove DNS records on network %q: %w", h.Network, err)
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
		return Unregister(ctx, nb, h.Network, h.IPs)
	}
	if _, err := dbconn.Transact(ctx, nb, RemoveOps(n.DNSUUID, del)...); err != nil {
		return fmt.Errorf("remove DNS records %v on network %q: %w", keys(del), h.Network, err)
	}
	return nil
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

func records(ctx context.Context, nb client.Client, dnsUUID string) (map[string]string, error) {
	rows, err := dbops.SelectRows(ctx, nb, dbops.ByUUID(dnsUUID), func(d *nbdb.DNS) []any { return []any{&d.UUID, &d.Records} })
	if err != nil {
		return nil, fmt.Errorf("read DNS row: %w", err)
	}
	if len(rows) == 0 {
		return map[string]string{}, nil
	}
	if rows[0].Records == nil {
		return map[string]string{}, nil
	}
	return rows[0].Records, nil
}

// Records returns the network's own records (name or reversed address →
// value). Empty when the network has no DNS row yet.
func Records(ctx context.Context, nb client.Client, network string) (map[string]string, error) {
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if n.DNSUUID == "" {
		return map[string]string{}, nil
	}
	return records(ctx, nb, n.DNSUUID)
}

// Resolve returns the addresses of a short name or FQDN in the network's
// records, nil when absent.
func Resolve(ctx context.Context, nb client.Client, network, name string) ([]net.IP, error) {
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return nil, err
	}
	if n.DNSUUID == "" {
		return nil, nil
	}
	recs, err := records(ctx, nb, n.DNSUUID)
	if err != nil {
		return nil, err
	}
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	if !strings.HasSuffix(key, "."+n.Zone()) {
		key = FQDN(key, n.Name, n.Domain)
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
