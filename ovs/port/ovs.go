// Package port is the node side of a container port: the host veth (its
// deterministic name, creation and removal with the container side set up
// inside the container's network namespace) and its Port/Interface in br-int
// of the local Open_vSwitch database, including the wait for ovn-controller's
// external_ids:ovn-installed="true" as an event on that one Interface row.
package port

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/watch"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// Interface external_ids keys read by ovn-controller.
const (
	KeyIfaceID      = "iface-id"
	KeyIfaceIDVer   = "iface-id-ver"
	KeyAttachedMAC  = "attached-mac"
	KeyOVNInstalled = "ovn-installed"
	// KeyCNIConfig on an Interface is the name of the CNI network
	// configuration the container was added with: a runtime's GC is
	// about that configuration's attachments only.
	KeyCNIConfig = "ovlmgr.io/cni-config"
	// DefaultBridge is OVN's integration bridge.
	DefaultBridge = vsdb.IntegrationBridge
)

// ErrNotOwned marks an OVS port of our name that ovlmgr did not create.
var ErrNotOwned = errors.New("not an ovlmgr port")

// HostIfName returns the host-side veth name of a container interface:
// "ovl" + 12 hex digits of owner.InterfaceHash, 15 bytes, the Linux limit.
func HostIfName(containerID, ifName string) string {
	return "ovl" + owner.InterfaceHash(containerID, ifName)[:12]
}

// PlugSpec describes the OVS port to add.
type PlugSpec struct {
	// Bridge defaults to br-int.
	Bridge string
	// Name is the host-side interface (and OVS port) name.
	Name string
	// IfaceID is the Logical_Switch_Port name; IfaceIDVer the container ID.
	IfaceID    string
	IfaceIDVer string
	MAC        string
	// Container, IfName and Network are stored as owner external_ids.
	Container string
	IfName    string
	Network   string
	// Config is the CNI network configuration's name (optional).
	Config string
}

// Iface is our OVS interface as read from the local database.
type Iface struct {
	UUID       string
	Name       string
	IfaceID    string
	IfaceIDVer string
	Container  string
	IfName     string
	Network    string
	// Config is the CNI network configuration's name ("": none recorded).
	Config string
	Ofport int
	// Ifindex is the kernel's index of the device ovs-vswitchd opened for
	// it (0: none recorded).
	Ifindex   int
	Installed bool
	Error     string
}

// ifaceColumns are the Interface columns ifaceFrom reads: a select of
// only these leaves out the statistics and status ovs-vswitchd keeps in
// every row.
func ifaceColumns(r *vswitchd.Interface) []any {
	return []any{&r.UUID, &r.Name, &r.ExternalIDs, &r.Ofport, &r.Ifindex, &r.Error}
}

func ifaceFrom(r *vswitchd.Interface) *Iface {
	i := &Iface{UUID: r.UUID, Name: r.Name, IfaceID: r.ExternalIDs[KeyIfaceID], IfaceIDVer: r.ExternalIDs[KeyIfaceIDVer],
		Container: r.ExternalIDs[owner.KeyContainer], IfName: r.ExternalIDs[owner.KeyIfName],
		Network: r.ExternalIDs[owner.KeyNetwork], Config: r.ExternalIDs[KeyCNIConfig],
		Installed: r.ExternalIDs[KeyOVNInstalled] == "true", Ofport: -1}
	if r.Ofport != nil {
		i.Ofport = *r.Ofport
	}
	if r.Ifindex != nil {
		i.Ifindex = *r.Ifindex
	}
	if r.Error != nil {
		i.Error = *r.Error
	}
	return i
}

// Plug adds the port and its interface to the bridge in one transaction.
// A leftover OVS port of the same name that is ours (an earlier, interrupted
// ADD of the same container interface) is replaced in that transaction; one
// that is not ours is refused. It returns the new Interface's UUID: a fresh
// row, so a sticky ovn-installed flag of an old row can never be mistaken
// for this one's.
func Plug(ctx context.Context, ovs client.Client, s PlugSpec) (string, error) {
	if s.Bridge == "" {
		s.Bridge = DefaultBridge
	}
	what := fmt.Sprintf("plug %s into %s", s.Name, s.Bridge)
	br, old, err := lookup(ctx, ovs, s.Bridge, s.Name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if br == nil {
		return "", fmt.Errorf("%s: bridge %s not found (has `ovlmgr node join` run on this node?)", what, s.Bridge)
	}
	var ops []ovsdb.Operation
	if old != nil {
		if !owner.Owned(old.ExternalIDs, "") {
			return "", fmt.Errorf("%s: OVS port %s exists: %w", what, s.Name, ErrNotOwned)
		}
		del, err := delPortOps(ovs, old.UUID)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		ops = append(ops, del...)
	}
	ids := map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: owner.KindPort,
		owner.KeyContainer: s.Container, owner.KeyIfName: s.IfName, owner.KeyNetwork: s.Network}
	iids := map[string]string{KeyIfaceID: s.IfaceID, KeyIfaceIDVer: s.IfaceIDVer}
	if s.MAC != "" {
		iids[KeyAttachedMAC] = s.MAC
	}
	if s.Config != "" {
		iids[KeyCNIConfig] = s.Config
	}
	for k, v := range ids {
		iids[k] = v
	}
	iface := &vswitchd.Interface{UUID: "newiface", Name: s.Name, ExternalIDs: iids}
	p := &vswitchd.Port{UUID: "newport", Name: s.Name, Interfaces: []string{iface.UUID}, ExternalIDs: ids}
	// Guard: no other port of this name appeared since we looked.
	probe := &vswitchd.Port{Name: s.Name}
	guard, err := dbconn.Absent(ovs, probe, &probe.Name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	tx := dbops.NewTx(ovs)
	if old == nil {
		tx.Add(guard)
	}
	tx.Add(ops...)
	ifaceIns := tx.Create(iface)
	tx.Create(p)
	b := &vswitchd.Bridge{UUID: br.UUID}
	tx.AddAPI(ovs.Where(b).Mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{p.UUID}}))
	if err := tx.Transact(ctx); err != nil {
		if old == nil && dbconn.FailedWait(err, 0) {
			return "", fmt.Errorf("%s: an OVS port of that name was created concurrently", what)
		}
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if u := ifaceIns.UUID(); u != "" {
		return u, nil
	}
	return "", fmt.Errorf("%s: no interface UUID in the reply", what)
}

// lookup reads the bridge and the port named name in one round trip.
func lookup(ctx context.Context, ovs client.Client, bridge, name string) (*vswitchd.Bridge, *vswitchd.Port, error) {
	tx := dbops.NewTx(ovs)
	bq := dbops.Query(tx, []ovsdb.Condition{dbops.NameIs(bridge)}, func(b *vswitchd.Bridge) []any { return []any{&b.UUID, &b.Name} })
	pq := dbops.Query[vswitchd.Port](tx, []ovsdb.Condition{dbops.NameIs(name)})
	if err := tx.Transact(ctx); err != nil {
		return nil, nil, err
	}
	brs, err := bq.Rows()
	if err != nil {
		return nil, nil, err
	}
	ps, err := pq.Rows()
	if err != nil {
		return nil, nil, err
	}
	var br *vswitchd.Bridge
	var pt *vswitchd.Port
	if len(brs) > 0 {
		br = brs[0]
	}
	if len(ps) > 0 {
		pt = ps[0]
	}
	return br, pt, nil
}

// delPortOps removes port uuid from whichever bridge holds it; its
// interfaces go with it (garbage collected by ovsdb-server).
func delPortOps(ovs client.Client, uuid string) ([]ovsdb.Operation, error) {
	b := &vswitchd.Bridge{}
	return ovs.WhereAll(b, model.Condition{Field: &b.Ports, Function: ovsdb.ConditionIncludes, Value: []string{uuid}}).
		Mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{uuid}})
}

// Unplug removes the OVS port name (ours only). A missing port is not an error.
func Unplug(ctx context.Context, ovs client.Client, name string) error {
	p := &vswitchd.Port{Name: name}
	var ps []*vswitchd.Port
	if err := dbconn.Select(ctx, ovs, p, &ps, model.Condition{Field: &p.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return fmt.Errorf("unplug %s: %w", name, err)
	}
	for _, old := range ps {
		if !owner.Owned(old.ExternalIDs, "") {
			return fmt.Errorf("unplug %s: %w (refusing to touch it)", name, ErrNotOwned)
		}
		ops, err := delPortOps(ovs, old.UUID)
		if err != nil {
			return fmt.Errorf("unplug %s: %w", name, err)
		}
		if _, err := dbconn.Transact(ctx, ovs, ops...); err != nil {
			return fmt.Errorf("unplug %s: %w", name, err)
		}
	}
	return nil
}

// UnplugIface removes the OVS port name (ours only) if it still holds the
// interface ifaceUUID, and reports whether it did: a port plugged again
// under the same name since ifaceUUID was read (an ADD of the same container
// interface) is left alone. For removals decided on an earlier read (the
// sweep of orphaned ports runs beside ADDs).
func UnplugIface(ctx context.Context, ovs client.Client, name, ifaceUUID string) (bool, error) {
	what := fmt.Sprintf("unplug %s (interface %s)", name, ifaceUUID)
	rows, err := dbops.SelectRows(ctx, ovs, []ovsdb.Condition{dbops.NameIs(name)},
		func(p *vswitchd.Port) []any { return []any{&p.UUID, &p.Interfaces, &p.ExternalIDs} })
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	for _, p := range rows {
		if len(p.Interfaces) != 1 || p.Interfaces[0] != ifaceUUID {
			continue
		}
		if !owner.Owned(p.ExternalIDs, "") {
			return false, fmt.Errorf("%s: %w (refusing to touch it)", what, ErrNotOwned)
		}
		del, err := delPortOps(ovs, p.UUID)
		if err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		// Still that port with that interface when the removal commits.
		guard := dbops.Exists(vswitchd.PortTable, []ovsdb.Condition{dbops.UUIDIs(p.UUID),
			dbops.Equal("interfaces", dbops.UUIDSet(ifaceUUID))}, "name", name)
		if _, err := dbconn.Transact(ctx, ovs, append([]ovsdb.Operation{guard}, del...)...); err != nil {
			if dbconn.FailedWait(err, 0) {
				return false, nil
			}
			return false, fmt.Errorf("%s: %w", what, err)
		}
		return true, nil
	}
	return false, nil
}

// Get returns the interface named name, or nil when there is none.
func Get(ctx context.Context, ovs client.Client, name string) (*Iface, error) {
	rows, err := dbops.SelectRows(ctx, ovs, []ovsdb.Condition{dbops.NameIs(name)}, ifaceColumns)
	if err != nil {
		return nil, fmt.Errorf("read interface %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return ifaceFrom(rows[0]), nil
}

// List returns our container interfaces in the local database, by name.
func List(ctx context.Context, ovs client.Client) ([]*Iface, error) {
	rows, err := dbops.SelectRows(ctx, ovs, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindPort))}, ifaceColumns)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]*Iface, 0, len(rows))
	for _, r := range rows {
		out = append(out, ifaceFrom(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NotReadyError says which step did not happen before the deadline.
type NotReadyError struct {
	Name   string
	Waited time.Duration
	// Attached is false when ovs-vswitchd never gave the interface an OpenFlow port.
	Attached bool
	Reason   string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("interface %s not ready after %s: %s", e.Name, e.Waited.Round(time.Millisecond), e.Reason)
}

// InstallWatch watches one Interface row for ovn-installed (see WatchInstalled).
type InstallWatch struct {
	w    *watch.Watch
	name string
}

// WatchInstalled starts a conditional monitor of the Interface named name.
// Start it before Plug creates the row, then Wait: ovn-controller's write
// of ovn-installed then reaches the watch as a plain update. Close it when done.
func WatchInstalled(ctx context.Context, ovs client.Client, name string) (*InstallWatch, error) {
	m := &vswitchd.Interface{Name: name}
	w, err := watch.Start(ctx, ovs, []watch.Table{{
		Model:  m,
		Cond:   []model.Condition{{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}},
		Fields: []interface{}{&m.Name, &m.ExternalIDs, &m.Ofport, &m.Error},
	}})
	if err != nil {
		return nil, fmt.Errorf("watch interface %s: %w", name, err)
	}
	return &InstallWatch{w: w, name: name}, nil
}

// Close stops the watch; it may be called more than once.
func (iw *InstallWatch) Close() { iw.w.Close() }

// WaitInstalled waits, as an event on a conditional monitor of that one
// Interface row, until the interface with UUID uuid (the row Plug created)
// carries external_ids:ovn-installed="true". When ctx ends first it returns
// a *NotReadyError saying whether ovs-vswitchd attached the interface.
func WaitInstalled(ctx context.Context, ovs client.Client, name, uuid string) error {
	iw, err := WatchInstalled(ctx, ovs, name)
	if err != nil {
		return err
	}
	defer iw.Close()
	return iw.Wait(ctx, uuid)
}

// Wait is WaitInstalled on a watch started before the interface was plugged.
func (iw *InstallWatch) Wait(ctx context.Context, uuid string) error {
	start := time.Now()
	name := iw.name
	var last *vswitchd.Interface
	err := iw.w.Wait(ctx, func(tc *cache.TableCache) (bool, error) {
		r := tc.Table(vswitchd.InterfaceTable).Row(uuid)
		if r == nil {
			if last != nil {
				return false, fmt.Errorf("interface %s was removed while waiting for ovn-installed", name)
			}
			return false, nil
		}
		last = r.(*vswitchd.Interface)
		return last.ExternalIDs[KeyOVNInstalled] == "true", nil
	})
	if err == nil || ctx.Err() == nil {
		return err
	}
	e := &NotReadyError{Name: name, Waited: time.Since(start)}
	switch {
	case last == nil:
		e.Reason = "its Interface row never showed up in the local Open_vSwitch db"
	case last.Ofport == nil || *last.Ofport <= 0:
		e.Reason = "ovs-vswitchd did not attach it to the bridge (no OpenFlow port; is ovs-vswitchd running?)"
		if last.Error != nil && *last.Error != "" {
			e.Reason += ": " + *last.Error
		}
	default:
		e.Attached = true
		e.Reason = "attached, but ovn-controller did not set ovn-installed (port not claimed by this chassis, or flows not installed)"
	}
	return e
}
