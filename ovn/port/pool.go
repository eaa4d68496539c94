package port

// A pool of ready ports per (network, node): Logical_Switch_Ports made in
// the background with their address already pinned (ovn-northd's IPAM,
// then "MAC IP" static like any container port), port_security,
// options:requested-chassis = the node and options:iface-id-ver = a random
// token, and already in the network's port group. ovn-northd has made their
// Port_Binding long before a container needs one, so CNI ADD claims one
// with one guarded NB transaction and never waits for ovn-northd.
//
// Rows:
//   - pool port: external_ids owner, kind=pool-port, network, node,
//     created and ovlmgr.io/pool = filling (inserted, address not yet
//     pinned) or ready. No container keys: `port list`, DEL and GC of
//     container ports (kind=port) never see it.
//   - the network's Logical_Switch carries one external_ids key per ready
//     pool port, ovlmgr.io/pool/<node>/<port> = "<token> <MAC> <IPv4>
//     [<IPv6>]" ("<token> <MAC> <IPv6>" on IPv6-only networks): ADD reads it with the switch it reads anyway, so finding a
//     pool port reads nothing more. It is a hint: the claim's wait decides.
//
// A claim is [wait: the port is still a ready pool port of this node and
// network with these addresses, update its external_ids to the container's
// owner keys, delete its hint key] plus whatever the caller adds (its DNS
// records): two claimers can never both commit, and a claimer killed at any
// point leaves either a pool port or a port that belongs to its container.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
)

// Pool keys and values.
const (
	// KindPool is the owner kind of an unclaimed pool port.
	KindPool = "pool-port"
	// KeyPool is a pool port's state: PoolFilling or PoolReady.
	KeyPool     = "ovlmgr.io/pool"
	PoolFilling = "filling"
	PoolReady   = "ready"
	// KeyPoolSize sets the pool size: on a network's Logical_Switch
	// external_ids (per network) or the node's Open_vSwitch external_ids
	// (per node, wins). 0 turns the pool off.
	KeyPoolSize = "ovlmgr.io/pool-size"
	// HintPrefix starts the switch's external_ids key of a ready pool port:
	// HintPrefix + node + "/" + port name.
	HintPrefix = "ovlmgr.io/pool/"
	// DefaultPoolSize is the pool size per network and node when neither
	// sets KeyPoolSize: enough for a burst of parallel ADDs on a node (the
	// refill after each ADD keeps it full), small enough that idle pools of
	// many networks and nodes hold few addresses.
	DefaultPoolSize = 4
	// MaxPoolSize bounds KeyPoolSize.
	MaxPoolSize = 64
	// FillGrace is how old a filling pool port must be before it counts as
	// the leftover of a refill that died between insert and pin.
	FillGrace = time.Minute
)

// ErrPoolTaken: the pool port was claimed (or removed) by someone else
// before this claim; try another.
var ErrPoolTaken = errors.New("pool port already taken")

// PoolPort is a pool port as the claimer knows it.
type PoolPort struct {
	Name    string     `json:"name"`
	UUID    string     `json:"uuid,omitempty"`
	Network string     `json:"network"`
	Node    string     `json:"node"`
	State   string     `json:"state"`
	Token   string     `json:"-"`
	MAC     string     `json:"mac,omitempty"`
	IP      netip.Addr `json:"ip,omitzero"`
	IPv6    netip.Addr `json:"ipv6,omitzero"`
	Created time.Time  `json:"created"`
}

// addresses is the pool port's "MAC [IPv4] [IPv6]" (addresses and
// port_security): both on dual-stack networks, IPv6 alone on IPv6-only ones.
func (pp *PoolPort) addresses() string {
	a := pp.MAC
	if pp.IP.IsValid() {
		a += " " + pp.IP.String()
	}
	if pp.IPv6.IsValid() {
		a += " " + pp.IPv6.String()
	}
	return a
}

// Usable reports whether pp has an address a container can get: IPv4, or
// IPv6 on an IPv6-only network.
func (pp *PoolPort) Usable() bool { return pp.IP.IsValid() || pp.IPv6.IsValid() }

func hintKey(node, name string) string { return HintPrefix + node + "/" + name }

// PoolSize is the pool size for a node and network: the node's
// KeyPoolSize, else the network's, else DefaultPoolSize; bounded to
// 0..MaxPoolSize.
func PoolSize(nodeIDs, networkIDs map[string]string) int {
	for _, ids := range []map[string]string{nodeIDs, networkIDs} {
		if v, ok := ids[KeyPoolSize]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return max(0, min(n, MaxPoolSize))
			}
		}
	}
	return DefaultPoolSize
}

// PoolHints returns node's ready pool ports of a network from its switch's
// external_ids (see the package comment), in a random order so that
// parallel claimers on one node mostly try different ports first.
func PoolHints(networkIDs map[string]string, network, node string) []*PoolPort {
	prefix := HintPrefix + node + "/"
	var out []*PoolPort
	for k, v := range networkIDs {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.Contains(name, "/") {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 3 {
			continue
		}
		pp := &PoolPort{Name: name, Network: network, Node: node, State: PoolReady, Token: f[0], MAC: f[1]}
		for _, x := range f[2:] {
			if a, err := netip.ParseAddr(x); err == nil {
				if a.Is4() {
					pp.IP = a
				} else {
					pp.IPv6 = a
				}
			}
		}
		if pp.Usable() {
			out = append(out, pp)
		}
	}
	var b [1]byte
	for i := len(out) - 1; i > 0; i-- {
		_, _ = rand.Read(b[:])
		j := int(b[0]) % (i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// claimedIDs are the owner external_ids of a container port: only what
// `port list`, DEL's ownership check and GC read (ovn-northd copies every
// key into the SB Port_Binding on each recompute).
func claimedIDs(s Spec) map[string]string {
	ids := map[string]string{
		owner.KeyOwner:     owner.Owner,
		owner.KeyKind:      owner.KindPort,
		owner.KeyContainer: s.Container,
		owner.KeyIfName:    s.IfName,
		owner.KeyNode:      s.Node,
		owner.KeyNetwork:   s.Network,
		KeyCreated:         strconv.FormatInt(time.Now().Unix(), 10),
	}
	for k, v := range s.Labels {
		ids[owner.LabelPrefix+k] = v
	}
	return ids
}

func poolSelector(network, node string) map[string]string {
	sel := owner.Selector(KindPool)
	if network != "" {
		sel[owner.KeyNetwork] = network
	}
	if node != "" {
		sel[owner.KeyNode] = node
	}
	return sel
}

// ClaimGuard is the index, in ClaimOps, of the wait that fails (with
// ErrPoolTaken meaning) when the pool port is no longer available.
const ClaimGuard = 0

// ClaimOps returns the claim of pool port pp for the container interface
// of s (Network, Node, Container, IfName, Labels): the guard, the owner
// keys, and the removal of its hint. The caller appends its own operations
// (e.g. DNS records) and runs them in one transaction; a failed wait at
// ClaimGuard means ErrPoolTaken.
//
// A pool port of another node (pp.Node != s.Node: the subnet is full and
// only other nodes' pools hold addresses) is moved to s.Node with the claim
// (options:requested-chassis): ovn-controller there binds it once
// ovn-northd has carried that to the Port_Binding, as on the slow path.
func ClaimOps(s Spec, pp *PoolPort) []ovsdb.Operation {
	sel := poolSelector(s.Network, pp.Node)
	sel[KeyPool] = PoolReady
	where := []ovsdb.Condition{dbops.NameIs(pp.Name), dbops.Includes(sel)}
	guard := dbops.Exists(nbdb.LogicalSwitchPortTable, append(where,
		dbops.Equal("addresses", dbops.StrSet(pp.addresses())),
		dbops.Equal("options", dbops.StrMap(map[string]string{OptRequestedChassis: pp.Node, OptIfaceIDVer: pp.Token}))),
		"name", pp.Name)
	ids := claimedIDs(s)
	if pp.MAC != "" {
		// As Create records it: the in-use check of requested MACs
		// (macGuards) selects on it.
		ids[KeyMAC] = pp.MAC
	}
	row := ovsdb.Row{"external_ids": dbops.StrMap(ids)}
	if pp.Node != s.Node {
		row["options"] = dbops.StrMap(map[string]string{OptRequestedChassis: s.Node, OptIfaceIDVer: pp.Token})
	}
	return []ovsdb.Operation{
		guard,
		dbops.Update(nbdb.LogicalSwitchPortTable, where, row),
		dbops.DelKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(s.Network), dbops.Includes(owner.Selector(owner.KindNetwork))},
			"external_ids", hintKey(pp.Node, pp.Name)),
	}
}

// Claim runs the claim of pool port pp for the container interface of s
// (ClaimOps) followed by extra, in one transaction, and returns
// Transact's error (a failed wait at ClaimGuard: the port was taken). A
// reply lost in a leader change (dbconn.ErrConnectionLost) is resolved by
// reading the port on the reconnected client: owned by this container
// interface means the transaction committed (nil); otherwise it did not,
// and it is sent again (its guard then tells whether the port is still to
// be had). So a claim is applied once whatever the cluster does.
func Claim(ctx context.Context, nb client.Client, s Spec, pp *PoolPort, extra ...ovsdb.Operation) error {
	ops := append(ClaimOps(s, pp), extra...)
	resent := false
	for {
		_, err := dbconn.Transact(ctx, nb, ops...)
		lost := errors.Is(err, dbconn.ErrConnectionLost)
		// After a lost reply the first transaction may commit later than
		// the read below: a resend that finds the port taken asks again.
		if !lost && !(resent && dbconn.FailedWait(err, ClaimGuard)) {
			return err
		}
		var mine bool
		rerr := dbconn.Retry(ctx, func(bool) error { // a read lost the same way is read again
			var err error
			mine, err = claimedBy(ctx, nb, s, pp.Name)
			return err
		})
		if rerr != nil {
			return fmt.Errorf("%w (and reading whether it was applied: %v)", err, rerr)
		}
		if mine {
			return nil
		}
		if !lost || ctx.Err() != nil {
			return err
		}
		resent = true
	}
}

// claimedBy reports whether port name belongs to the container interface of s.
func claimedBy(ctx context.Context, nb client.Client, s Spec, name string) (bool, error) {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(name)},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.ExternalIDs} })
	if err != nil {
		return false, err
	}
	for _, p := range rows {
		ids := p.ExternalIDs
		if ids[owner.KeyKind] == owner.KindPort && ids[owner.KeyContainer] == s.Container && ids[owner.KeyIfName] == s.IfName && ids[owner.KeyNetwork] == s.Network {
			return true, nil
		}
	}
	return false, nil
}

// Claimed is the container port a successful ClaimOps transaction made of pp.
func Claimed(s Spec, pp *PoolPort) *Port {
	return &Port{Name: pp.Name, Network: s.Network, Node: s.Node, Container: s.Container, IfName: s.IfName,
		MAC: pp.MAC, IP: pp.IP, IPv6: pp.IPv6, Labels: s.Labels, IfaceIDVer: pp.Token}
}

// ListPool returns the pool ports (filling and ready) of network and node
// ("" matches all), sorted by name. A select on external_ids: for refill,
// GC and listing, never on ADD's path.
func ListPool(ctx context.Context, nb client.Client, network, node string) ([]*PoolPort, error) {
	rows, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(poolSelector(network, node))},
		func(p *nbdb.LogicalSwitchPort) []any {
			return []any{&p.UUID, &p.Name, &p.Addresses, &p.Options, &p.ExternalIDs}
		})
	if err != nil {
		return nil, fmt.Errorf("list pool ports: %w", err)
	}
	out := make([]*PoolPort, 0, len(rows))
	for _, l := range rows {
		pp := &PoolPort{Name: l.Name, UUID: l.UUID, Network: l.ExternalIDs[owner.KeyNetwork], Node: l.ExternalIDs[owner.KeyNode],
			State: l.ExternalIDs[KeyPool], Token: l.Options[OptIfaceIDVer], Created: createdAt(l.ExternalIDs)}
		if pp.State == PoolReady {
			p := fromRow(l)
			pp.MAC, pp.IP, pp.IPv6 = p.MAC, p.IP, p.IPv6
		}
		out = append(out, pp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// deletePoolPort removes an unclaimed pool port and its hint in one
// transaction, guarded: a port claimed meanwhile is left alone (nil).
func deletePoolPort(ctx context.Context, nb client.Client, pp *PoolPort) error {
	where := []ovsdb.Condition{dbops.UUIDIs(pp.UUID), dbops.Includes(owner.Selector(KindPool))}
	ops := []ovsdb.Operation{
		dbops.Exists(nbdb.LogicalSwitchPortTable, where, "name", pp.Name),
		dbops.DelRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.Contains("ports", dbops.UUIDSet(pp.UUID))}, "ports", pp.UUID),
		dbops.DelKeys(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(pp.Network)}, "external_ids", hintKey(pp.Node, pp.Name)),
	}
	_, err := dbconn.Transact(ctx, nb, ops...)
	if dbconn.FailedWait(err, 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete pool port %s (network %s, node %s): %w", pp.Name, pp.Network, pp.Node, err)
	}
	return nil
}

// PoolSpec names one pool: the network (with its subnet and gateway, for
// messages) and the node.
type PoolSpec struct {
	Network string
	Subnet  netip.Prefix
	Gateway netip.Addr
	Node    string
	// NoGrow keeps the pool from taking more addresses (it is only
	// trimmed): the caller found the subnet nearly full.
	NoGrow bool
}

// FillResult is what FillPool did.
type FillResult struct {
	Made    int // pool ports made
	Removed int // pool ports removed (beyond the size, or dead refills)
	Ready   int // ready pool ports now
}

// FillPool brings the pool of s to size ready ports: it removes filling
// ports older than FillGrace (a refill that died), removes ports beyond
// size, and makes the missing ones one at a time, each insert guarded by a
// wait that the pool's rows are those it counted (so concurrent refills
// never overfill: the loser counts again). Each new port waits for
// ovn-northd's address, then is pinned and marked ready together with its
// hint on the switch. ctx bounds it all. Safe to run concurrently and to
// kill at any point: GC and the next FillPool clean up.
func FillPool(ctx context.Context, nb client.Client, s PoolSpec, size int) (FillResult, error) {
	var res FillResult
	if s.Network == "" || s.Node == "" {
		return res, errors.New("fill pool: network and node are required")
	}
	for attempt := 0; attempt < 4*MaxPoolSize; attempt++ {
		have, err := ListPool(ctx, nb, s.Network, s.Node)
		if err != nil {
			return res, err
		}
		var live []*PoolPort
		for _, pp := range have {
			if pp.State != PoolReady && time.Since(pp.Created) > FillGrace {
				if err := deletePoolPort(ctx, nb, pp); err != nil {
					return res, err
				}
				res.Removed++
				continue
			}
			live = append(live, pp)
		}
		if len(live) > size {
			// Ready ports go last-made first; filling ones are younger.
			for _, pp := range live[size:] {
				if err := deletePoolPort(ctx, nb, pp); err != nil {
					return res, err
				}
				res.Removed++
			}
			continue
		}
		res.Ready = 0
		for _, pp := range live {
			if pp.State == PoolReady {
				res.Ready++
			}
		}
		if len(live) == size || s.NoGrow {
			return res, syncHints(ctx, nb, s)
		}
		uuids := make([]string, 0, len(have))
		for _, pp := range have {
			uuids = append(uuids, pp.UUID)
		}
		err = makePoolPort(ctx, nb, s, uuids)
		switch {
		case errors.Is(err, errRetry):
			continue
		case err != nil:
			return res, err
		}
		res.Made++
	}
	return res, fmt.Errorf("fill pool of network %q on node %s: too many concurrent changes", s.Network, s.Node)
}

// syncHints makes the switch's hints of node say exactly which ready pool
// ports exist (a hint of a port that is gone or claimed goes; a ready port
// without one gets it). Nothing is written when they agree.
func syncHints(ctx context.Context, nb client.Client, s PoolSpec) error {
	// The switch is read before the pool and the write is guarded on its
	// external_ids: a hint another fill or a claim wrote meanwhile makes
	// this pass read again instead of undoing it from a stale list.
	for attempt := 0; attempt < 8; attempt++ {
		sws, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(s.Network), dbops.Includes(owner.Selector(owner.KindNetwork))},
			func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.UUID, &ls.ExternalIDs} })
		if err != nil || len(sws) == 0 {
			return err
		}
		live, err := ListPool(ctx, nb, s.Network, s.Node)
		if err != nil {
			return err
		}
		want := map[string]string{}
		for _, pp := range live {
			if pp.State == PoolReady {
				want[hintKey(s.Node, pp.Name)] = pp.Token + " " + pp.addresses()
			}
		}
		sw := sws[0]
		var del []string
		add := map[string]string{}
		prefix := HintPrefix + s.Node + "/"
		for k, v := range sw.ExternalIDs {
			if strings.HasPrefix(k, prefix) && want[k] != v {
				del = append(del, k)
			}
		}
		for k, v := range want {
			if sw.ExternalIDs[k] != v {
				add[k] = v
			}
		}
		if len(del) == 0 && len(add) == 0 {
			return nil
		}
		guard, err := dbops.StillOp(nb, sw, &sw.ExternalIDs)
		if err != nil {
			return err
		}
		where := dbops.ByUUID(sw.UUID)
		ops := []ovsdb.Operation{guard}
		if len(del) > 0 {
			ops = append(ops, dbops.DelKeys(nbdb.LogicalSwitchTable, where, "external_ids", del...))
		}
		if len(add) > 0 {
			ops = append(ops, dbops.AddPairs(nbdb.LogicalSwitchTable, where, "external_ids", add))
		}
		_, err = dbconn.Transact(ctx, nb, ops...)
		if dbconn.FailedWait(err, 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pool hints of network %q on node %s: %w", s.Network, s.Node, err)
		}
		return nil
	}
	return fmt.Errorf("pool hints of network %q on node %s: the switch kept changing", s.Network, s.Node)
}

func randHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// makePoolPort inserts one pool port (guarded: the pool's rows are still
// exactly have, else errRetry), waits for ovn-northd's address and pins it
// with port_security, state ready and the hint, in one transaction.
func makePoolPort(ctx context.Context, nb client.Client, s PoolSpec, have []string) error {
	name := NamePrefix + randHex(16)
	token := randHex(16)
	ids := owner.IDs(KindPool, name, map[string]string{
		owner.KeyNode:    s.Node,
		owner.KeyNetwork: s.Network,
		KeyCreated:       strconv.FormatInt(time.Now().Unix(), 10),
		KeyPool:          PoolFilling,
	})
	delete(ids, owner.KeyName)
	lsp := &nbdb.LogicalSwitchPort{
		UUID:        "newport",
		Name:        name,
		Addresses:   []string{"dynamic"},
		Options:     map[string]string{OptRequestedChassis: s.Node, OptIfaceIDVer: token},
		ExternalIDs: ids,
	}
	what := fmt.Sprintf("make pool port %s of network %q on node %s", name, s.Network, s.Node)
	w, err := watch.Start(ctx, nb, dynamicTables(name))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer w.Close()
	rows := make([]ovsdb.Row, 0, len(have))
	for _, u := range have {
		rows = append(rows, ovsdb.Row{"_uuid": ovsdb.UUID{GoUUID: u}})
	}
	timeout := 0
	poolWhere := []ovsdb.Condition{dbops.Includes(poolSelector(s.Network, s.Node))}
	unchanged := ovsdb.Operation{Op: ovsdb.OperationWait, Table: nbdb.LogicalSwitchPortTable, Timeout: &timeout,
		Where: poolWhere, Columns: []string{"_uuid"}, Until: string(ovsdb.WaitConditionEqual), Rows: rows}
	if len(rows) == 0 {
		// An empty "rows" is not sent: "no pool port" instead (all have type "").
		unchanged = dbops.None(nbdb.LogicalSwitchPortTable, poolWhere, "type", "")
	}
	spec := Spec{Network: s.Network, Subnet: s.Subnet, Gateway: s.Gateway, Node: s.Node}
	if err := insert(ctx, nb, spec, lsp, unchanged); err != nil {
		if errors.Is(err, errRetry) || errors.Is(err, ErrExists) {
			return errRetry
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	uuid, ip, ip6, err := waitDynamic(ctx, w, name, spec)
	w.Close()
	if err != nil {
		return undonePool(ctx, nb, &PoolPort{Name: name, Network: s.Network, Node: s.Node}, fmt.Errorf("%s: %w", what, err))
	}
	// The addresses as the slow path (Create) pins them: on dual-stack
	// the MAC derived from the IPv4 address and the EUI-64 IPv6 address of
	// that MAC; on IPv6-only networks northd's MAC and its EUI-64 address.
	pp := &PoolPort{Name: name, UUID: uuid, Network: s.Network, Node: s.Node, Token: token, IP: ip}
	if ip.IsValid() {
		mac := MACFromIP(ip)
		pp.MAC = mac.String()
		if ip6.IsValid() {
			pp.IPv6 = eui64(ip6, mac)
		}
	} else {
		pp.MAC, pp.IPv6 = macFromIP6(ip6).String(), ip6
	}
	a := pp.addresses()
	ready := map[string]string{}
	for k, v := range ids {
		ready[k] = v
	}
	ready[KeyPool] = PoolReady
	ready[KeyMAC] = pp.MAC
	where := []ovsdb.Condition{dbops.UUIDIs(uuid), dbops.Includes(map[string]string{owner.KeyKind: KindPool})}
	ops := []ovsdb.Operation{
		dbops.Exists(nbdb.LogicalSwitchPortTable, where, "name", name),
		dbops.Update(nbdb.LogicalSwitchPortTable, where, ovsdb.Row{
			"addresses": dbops.StrSet(a), "port_security": dbops.StrSet(a), "external_ids": dbops.StrMap(ready)}),
		dbops.AddPairs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(s.Network), dbops.Includes(owner.Selector(owner.KindNetwork))},
			"external_ids", map[string]string{hintKey(s.Node, name): token + " " + a}),
	}
	if err := dbconn.Retry(ctx, func(bool) error { _, err := dbconn.Transact(ctx, nb, ops...); return err }); err != nil {
		return undonePool(ctx, nb, pp, fmt.Errorf("%s: pin addresses %q: %w", what, a, err))
	}
	return nil
}

// undonePool removes a pool port whose making failed; err is returned
// (joined with the delete's failure, if any: GC removes it later).
func undonePool(ctx context.Context, nb client.Client, pp *PoolPort, err error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), UndoBudget)
	defer cancel()
	if pp.UUID == "" {
		rows, serr := dbops.SelectRows(cctx, nb, []ovsdb.Condition{dbops.NameIs(pp.Name)},
			func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID} })
		if serr != nil {
			return fmt.Errorf("%w, and the pool port stays (GC removes it): %w", err, serr)
		}
		if len(rows) == 0 {
			return err
		}
		pp.UUID = rows[0].UUID
	}
	if derr := deletePoolPort(cctx, nb, pp); derr != nil {
		return fmt.Errorf("%w, and %w", err, derr)
	}
	return err
}

// DeletePool removes the unclaimed pool ports of network and node (""
// matches all) with their hints, e.g. when a node leaves. It returns what
// it removed.
func DeletePool(ctx context.Context, nb client.Client, network, node string) ([]*PoolPort, error) {
	have, err := ListPool(ctx, nb, network, node)
	if err != nil {
		return nil, err
	}
	var out []*PoolPort
	var errs []error
	for _, pp := range have {
		if err := deletePoolPort(ctx, nb, pp); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, pp)
	}
	return out, errors.Join(errs...)
}

// TrimPool is node GC's part for pools: on node, it removes filling pool
// ports older than FillGrace (a refill that died between insert and pin)
// and ready ones beyond each network's pool size (PoolSize of nodeIDs and
// the network's switch), with their hints. dryRun only reports.
func TrimPool(ctx context.Context, nb client.Client, node string, nodeIDs map[string]string, dryRun bool) ([]*PoolPort, error) {
	have, err := ListPool(ctx, nb, "", node)
	if err != nil {
		return nil, err
	}
	byNet := map[string][]*PoolPort{}
	for _, pp := range have {
		byNet[pp.Network] = append(byNet[pp.Network], pp)
	}
	var out []*PoolPort
	var errs []error
	for network, pps := range byNet {
		sws, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.NameIs(network), dbops.Includes(owner.Selector(owner.KindNetwork))},
			func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.ExternalIDs} })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var netIDs map[string]string
		if len(sws) > 0 {
			netIDs = sws[0].ExternalIDs
		}
		size := PoolSize(nodeIDs, netIDs)
		kept := 0
		for _, pp := range pps {
			switch {
			case pp.State != PoolReady && time.Since(pp.Created) > FillGrace:
			case pp.State == PoolReady && kept >= size:
			default:
				kept++
				continue
			}
			if !dryRun {
				if err := deletePoolPort(ctx, nb, pp); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			out = append(out, pp)
		}
	}
	return out, errors.Join(errs...)
}
