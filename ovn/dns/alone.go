package dns

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// EnsureAlone makes the DNS rows and the name responder of a network on no
// router, reading and writing that network only (Ensure runs Sync, whose
// cost grows with the number of networks). net create calls it, so that no
// container ADD has to create them: nodes may write only their own ports
// (docs/security.md). A concurrent creator (a guard fails) falls back to
// Ensure.
func EnsureAlone(ctx context.Context, nb client.Client, network string) error {
	// The switch by name (indexed); its DNS rows are not read: a new
	// network has none.
	n, err := lookup(ctx, nb, network)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	var named []string
	add := func(o []ovsdb.Operation, e error) {
		if e != nil && err == nil {
			err = e
		}
		ops = append(ops, o...)
	}
	// Guarded on the switch's dns_records as read (by UUID: no table scan,
	// so create stays flat in the number of networks): a Sync that gave
	// the network rows meanwhile fails this, and Sync's own guard on the
	// same column fails if this commits first.
	add(func() ([]ovsdb.Operation, error) {
		o, e := dbops.StillOp(nb, n.Switch, &n.Switch.DNSRecords)
		return []ovsdb.Operation{o}, e
	}())
	for k := 0; k < Shards; k++ {
		u := fmt.Sprintf("dns%d", k)
		add(nb.Create(&nbdb.DNS{UUID: u, ExternalIDs: shardIDs(network, k), Records: map[string]string{}}))
		named = append(named, u)
	}
	ls := &nbdb.LogicalSwitch{UUID: n.SwitchUUID}
	add(nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.DNSRecords, Mutator: ovsdb.MutateOperationInsert, Value: named}))
	if want := responderAddress(n.Switch); want != "" {
		name := ResponderName(network)
		have, e := dbops.Count[nbdb.LogicalSwitchPort](ctx, nb, []ovsdb.Condition{dbops.NameIs(name)})
		if e != nil {
			return fmt.Errorf("network %q: DNS responder: %w", network, e)
		}
		if have == 0 {
			lsp := &nbdb.LogicalSwitchPort{UUID: "resp", Name: name, Addresses: []string{want},
				ExternalIDs: owner.IDs(owner.KindDNS, name, map[string]string{owner.KeyNetwork: network})}
			absent, e := dbconn.Absent(nb, lsp, &lsp.Name)
			add([]ovsdb.Operation{absent}, e)
			add(nb.Create(lsp))
			add(nb.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{lsp.UUID}}))
		}
	}
	if err != nil {
		return fmt.Errorf("network %q: DNS rows: %w", network, err)
	}
	if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
		// Someone else (a Sync, another create) got there first.
		if _, err := Ensure(ctx, nb, network); err != nil {
			return err
		}
	}
	return nil
}
