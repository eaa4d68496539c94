// Package vsdb connects to a node's local Open_vSwitch database through
// libovsdb and reads its single root row.
package vsdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// Connect opens a client to the Open_vSwitch database at endpoint (for
// example dbconn.DefaultOVS()). No tables are monitored.
func Connect(ctx context.Context, endpoint string) (client.Client, error) {
	m, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("Open_vSwitch model: %w", err)
	}
	return dbconn.Connect(ctx, m, endpoint, dbconn.Options{What: "Open_vSwitch"})
}

// ErrNoRoot means the Open_vSwitch table has no row yet.
// IntegrationBridge is the bridge ovn-controller programs (br-int): node
// join creates it, ports attach to it, traces run on it.
const IntegrationBridge = "br-int"

var ErrNoRoot = errors.New("the Open_vSwitch table has no row (initialise it with `ovs-vsctl --no-wait init` or start ovs-vswitchd's service)")

// Root returns the single Open_vSwitch row, or ErrNoRoot.
func Root(ctx context.Context, c client.Client) (*vswitchd.OpenvSwitch, error) {
	var rows []*vswitchd.OpenvSwitch
	if err := dbconn.Select(ctx, c, &vswitchd.OpenvSwitch{}, &rows); err != nil {
		return nil, fmt.Errorf("read Open_vSwitch row: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNoRoot
	}
	return rows[0], nil
}

// Init creates the Open_vSwitch root row when it is missing (what
// `ovs-vsctl --no-wait init` does) and returns the row.
func Init(ctx context.Context, c client.Client) (*vswitchd.OpenvSwitch, error) {
	root, err := Root(ctx, c)
	if err == nil || !errors.Is(err, ErrNoRoot) {
		return root, err
	}
	ops, err := c.Create(&vswitchd.OpenvSwitch{})
	if err != nil {
		return nil, fmt.Errorf("init Open_vSwitch row: %w", err)
	}
	// The table holds at most one row: a concurrent init makes ours fail,
	// and the row is there either way.
	_, txErr := dbconn.Transact(ctx, c, ops...)
	root, err = Root(ctx, c)
	if err != nil {
		if txErr != nil {
			return nil, fmt.Errorf("init Open_vSwitch row: %w", txErr)
		}
		return nil, err
	}
	return root, nil
}

// Bridge returns the bridge named name, or nil when there is none.
func Bridge(ctx context.Context, c client.Client, name string) (*vswitchd.Bridge, error) {
	br := &vswitchd.Bridge{Name: name}
	var rows []*vswitchd.Bridge
	if err := dbconn.Select(ctx, c, br, &rows, model.Condition{Field: &br.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		return nil, fmt.Errorf("read bridge %q: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// Interfaces returns the interfaces whose type is typ (every interface when typ is "").
func Interfaces(ctx context.Context, c client.Client, typ string) ([]*vswitchd.Interface, error) {
	ifc := &vswitchd.Interface{Type: typ}
	var conds []model.Condition
	if typ != "" {
		conds = append(conds, model.Condition{Field: &ifc.Type, Function: ovsdb.ConditionEqual, Value: typ})
	}
	var rows []*vswitchd.Interface
	if err := dbconn.Select(ctx, c, ifc, &rows, conds...); err != nil {
		return nil, fmt.Errorf("read interfaces: %w", err)
	}
	return rows, nil
}

// BridgeSpec describes a bridge for BridgeOps.
type BridgeSpec struct {
	Name, Datapath, FailMode string
	OtherConfig, ExternalIDs map[string]string
	// MTU, when set, is requested on the bridge's internal interface.
	MTU int
	// Ports are extra system ports (existing kernel interfaces) to attach.
	Ports []string
	// Prefix prefixes the named UUIDs of the inserts, so that two bridges
	// can be created in one transaction.
	Prefix string
}

// BridgeOps returns the operations that create a bridge with its internal
// port (and the given system ports) and add it to the Open_vSwitch row. The
// first op is a wait that fails when a bridge of that name exists.
func BridgeOps(c client.Client, rootUUID string, s BridgeSpec) ([]ovsdb.Operation, error) {
	b := &vswitchd.Bridge{Name: s.Name}
	guard, err := dbconn.Absent(c, b, &b.Name)
	if err != nil {
		return nil, err
	}
	ops := []ovsdb.Operation{guard}
	var portUUIDs []string
	addPort := func(i int, port, typ string, mtu int) error {
		ifc := &vswitchd.Interface{UUID: fmt.Sprintf("%siface%d", s.Prefix, i), Name: port, Type: typ}
		if mtu > 0 {
			ifc.MTURequest = &mtu
		}
		p := &vswitchd.Port{UUID: fmt.Sprintf("%sport%d", s.Prefix, i), Name: port, Interfaces: []string{ifc.UUID}}
		cops, err := c.Create(ifc, p)
		if err != nil {
			return err
		}
		ops = append(ops, cops...)
		portUUIDs = append(portUUIDs, p.UUID)
		return nil
	}
	if err := addPort(0, s.Name, "internal", s.MTU); err != nil {
		return nil, err
	}
	for i, p := range s.Ports {
		if err := addPort(i+1, p, "", 0); err != nil {
			return nil, err
		}
	}
	br := &vswitchd.Bridge{UUID: s.Prefix + "bridge", Name: s.Name, DatapathType: s.Datapath, Ports: portUUIDs,
		OtherConfig: s.OtherConfig, ExternalIDs: s.ExternalIDs}
	if s.FailMode != "" {
		fm := s.FailMode
		br.FailMode = &fm
	}
	cops, err := c.Create(br)
	if err != nil {
		return nil, err
	}
	ops = append(ops, cops...)
	r := &vswitchd.OpenvSwitch{UUID: rootUUID}
	mops, err := c.Where(r).Mutate(r, model.Mutation{Field: &r.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	if err != nil {
		return nil, err
	}
	return append(ops, mops...), nil
}
