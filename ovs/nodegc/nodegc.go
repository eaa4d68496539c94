// Package nodegc removes a node's container-port leftovers that no single
// ADD or DEL can see: OVS ports and host veths whose OVN Northbound port is
// gone (after `ovlmgr net delete --force`, or a port deleted elsewhere), and
// NB ports bound to this node whose OVS interface and host veth are gone
// (a DEL that ran while the NB was unreachable). Run on the node, in the
// node's network namespace.
//
// Sweep is the cheap part the CNI plugin runs on every ADD, DEL and GC: it
// reads the node's own container interfaces from the local Open_vSwitch db
// and looks up only those few NB ports by name (indexed). Collect is what
// `ovlmgr node gc` runs: Sweep, then this node's NB ports (a select on the
// owner external_ids) checked against the local database.
package nodegc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	ovsnode "github.com/ovlmgr/ovlmgr/ovs/node"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// DefaultGrace is how old an NB port without OVS interface and veth must be
// before Collect removes it. An ADD creates the NB port first and plugs the
// OVS port last, within its ready timeout plus connect timeouts (40 s by
// default); a port younger than this may be in the middle of an ADD.
const DefaultGrace = 2 * time.Minute

// Removed is one leftover that was removed (or, with DryRun, would be).
type Removed struct {
	// What is "ovs-port" (OVS port and host veth without NB port) or
	// "nb-port" (NB port of this node without OVS interface and veth).
	What      string `json:"what"`
	Name      string `json:"name"`
	Port      string `json:"port"`
	Network   string `json:"network,omitempty"`
	Container string `json:"container,omitempty"`
	IfName    string `json:"ifname,omitempty"`
}

// Options tune Collect.
type Options struct {
	// Node is this node's system-id (NB ports bound to it are examined).
	Node string
	// Grace: NB ports created less than this long ago are left alone
	// (0 means DefaultGrace; negative means no grace at all).
	Grace time.Duration
	// DryRun reports without removing.
	DryRun bool
	// NodeIDs are the node's Open_vSwitch external_ids (its pool size).
	NodeIDs map[string]string
}

// Orphans returns this node's container interfaces (from the local
// Open_vSwitch db) whose NB port, named by their iface-id, does not exist.
// It costs one local select and one NB transaction of indexed selects, one
// per local interface.

// ErrNoNB: no Northbound endpoint was given and the node's Open_vSwitch db
// names none (node join records it).
var ErrNoNB = errors.New("no NB endpoint")

func Orphans(ctx context.Context, ovs, nb client.Client) ([]*ovsport.Iface, error) {
	ifaces, err := ovsport.List(ctx, ovs)
	if err != nil {
		return nil, err
	}
	type probe struct {
		iface *ovsport.Iface
		lsp   *dbops.Result[nbdb.LogicalSwitchPort] // its NB port, if any
	}
	var probes []probe
	tx := dbops.NewTx(nb)
	for _, i := range ifaces {
		if i.IfaceID == "" {
			continue
		}
		probes = append(probes, probe{i, dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(i.IfaceID)},
			func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID} })})
	}
	if len(probes) == 0 {
		return nil, nil
	}
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("look up the NB ports of %d local interfaces: %w", len(probes), err)
	}
	var out []*ovsport.Iface
	for _, p := range probes {
		if p.lsp.Len() == 0 {
			out = append(out, p.iface)
		}
	}
	return out, nil
}

// Sweep removes the OVS ports and host veths of Orphans (RemoveOrphans).
func Sweep(ctx context.Context, ovs, nb client.Client, dryRun bool) ([]Removed, error) {
	orphans, err := Orphans(ctx, ovs, nb)
	if err != nil {
		return nil, err
	}
	return RemoveOrphans(ctx, ovs, orphans, dryRun)
}

// RemoveOrphans removes the OVS ports and host veths of orphans (as
// Orphans read them) that are still the ones read: a port or veth made
// again under the same name since (an ADD of the same container interface)
// stays. Errors are joined; what was removed is returned either way.
func RemoveOrphans(ctx context.Context, ovs client.Client, orphans []*ovsport.Iface, dryRun bool) ([]Removed, error) {
	var out []Removed
	var errs []error
	for _, i := range orphans {
		r := Removed{What: "ovs-port", Name: i.Name, Port: i.IfaceID, Network: i.Network, Container: i.Container, IfName: i.IfName}
		if !dryRun {
			// The port and veth as Orphans read them only: an ADD of the
			// same container interface may have made them again since (a
			// CNI server's sweep runs beside its ADDs).
			gone, err := ovsport.UnplugIface(ctx, ovs, i.Name, i.UUID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !gone {
				continue
			}
			if err := ovsport.DelHostLinkIndex(i.Name, i.Ifindex); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// Collect runs Sweep, then removes the NB ports bound to o.Node that have
// no OVS interface on this node (by iface-id) and no host veth, and were
// created at least o.Grace ago (ports without a creation time count as
// old), together with their DNS records and service backends. Idempotent.
func Collect(ctx context.Context, ovs, nb client.Client, o Options) ([]Removed, error) {
	if o.Node == "" {
		return nil, errors.New("node gc: node: empty (the node's Open_vSwitch external_ids:system-id)")
	}
	grace := o.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	out, serr := Sweep(ctx, ovs, nb, o.DryRun)
	ports, err := ovnport.List(ctx, nb, ovnport.Filter{Node: o.Node})
	if err != nil {
		return out, errors.Join(serr, err)
	}
	ifaces, err := ovsport.List(ctx, ovs)
	if err != nil {
		return out, errors.Join(serr, err)
	}
	plugged := map[string]bool{}
	for _, i := range ifaces {
		plugged[i.IfaceID] = true
	}
	var errs []error
	now := time.Now()
	for _, p := range ports {
		if plugged[p.Name] {
			continue
		}
		if ovsport.HostLinkExists(ovsport.HostIfName(p.Container, p.IfName)) {
			continue // an ADD between veth and plug, or a DEL under way
		}
		if AddMayBeUnderWay(p, grace, now) {
			continue
		}
		if !o.DryRun {
			if err := chassis.RemovePort(ctx, nb, p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		out = append(out, Removed{What: "nb-port", Name: p.Name, Port: p.Name, Network: p.Network, Container: p.Container, IfName: p.IfName})
	}
	// Pool ports of this node beyond the pool size, or left half-made by
	// a refill that died (ovn/port TrimPool).
	trimmed, err := ovnport.TrimPool(ctx, nb, o.Node, o.NodeIDs, o.DryRun)
	if err != nil {
		errs = append(errs, err)
	}
	for _, pp := range trimmed {
		out = append(out, Removed{What: "pool-port", Name: pp.Name, Port: pp.Name, Network: pp.Network})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].What > out[j].What })
	return out, errors.Join(append([]error{serr}, errs...)...)
}

// AddMayBeUnderWay says whether p, an NB port with no OVS interface on its
// node, may belong to an ADD under way: ADD claims the NB port first and
// plugs the OVS port later, within its readyTimeout and connect timeouts.
// True when the port was made or claimed less than grace ago; ports
// without a creation time (older versions) count as old, and grace <= 0
// means no grace.
func AddMayBeUnderWay(p *ovnport.Port, grace time.Duration, now time.Time) bool {
	return grace > 0 && !p.Created.IsZero() && now.Sub(p.Created) < grace
}

// RunOptions say where the node's databases are, for Run.
type RunOptions struct {
	// OVS is the node's Open_vSwitch db endpoint (default dbconn.DefaultOVS()).
	OVS string
	// NB is the Northbound endpoint; empty: the node's external_ids:ovlmgr.io/nb.
	NB     string
	Grace  time.Duration
	DryRun bool
}

// Run connects the node's Open_vSwitch db, reads its system-id (and NB
// endpoint unless given), connects the NB and runs Collect.
func Run(ctx context.Context, o RunOptions) ([]Removed, error) {
	ep := o.OVS
	if ep == "" {
		ep = dbconn.DefaultOVS()
	}
	ovs, err := vsdb.Connect(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("node gc: local Open_vSwitch db %s: %w", ep, err)
	}
	defer ovs.Close()
	root, err := vsdb.Root(ctx, ovs)
	if err != nil {
		return nil, fmt.Errorf("node gc: local Open_vSwitch db %s: %w", ep, err)
	}
	node := root.ExternalIDs["system-id"]
	if node == "" {
		return nil, fmt.Errorf("node gc: local Open_vSwitch db %s has no external_ids:system-id: this node has not joined OVN", ep)
	}
	nbEP := o.NB
	if nbEP == "" {
		nbEP = root.ExternalIDs[ovsnode.KeyNB]
	}
	if nbEP == "" {
		return nil, fmt.Errorf("node gc: %w: the local Open_vSwitch db %s has no external_ids:%s", ErrNoNB, ep, ovsnode.KeyNB)
	}
	nb, err := dbconn.ConnectNB(ctx, nbEP)
	if err != nil {
		return nil, fmt.Errorf("node gc: %w", err)
	}
	defer nb.Close()
	return Collect(ctx, ovs, nb, Options{Node: node, Grace: o.Grace, DryRun: o.DryRun, NodeIDs: root.ExternalIDs})
}
