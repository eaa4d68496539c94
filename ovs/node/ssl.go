package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// The node's TLS identity lives in its Open_vSwitch SSL row (the table
// ovn-controller reads for ssl: Southbound endpoints): paths of the CA
// certificate, the node's certificate and its private key. ovlmgr tools on
// the node (the CNI plugin) use the same row, so no key or path is ever in
// a CNI config file. The key file itself stays mode 0600 and root's.

// SetSSL points the node's Open_vSwitch SSL row at f (every file must exist
// and be readable). It creates the row when the root has none.
func SetSSL(ctx context.Context, ovs client.Client, f dbconn.TLSFiles) error {
	if _, err := f.Config(); err != nil {
		return fmt.Errorf("node TLS identity: %w", err)
	}
	root, err := vsdb.Root(ctx, ovs)
	if err != nil {
		return err
	}
	// Marked as join's: leave removes it (a row that was there before join
	// now holds join's paths, so it goes too).
	row := &vswitchd.SSL{CaCert: f.CA, Certificate: f.Cert, PrivateKey: f.Key,
		ExternalIDs: map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: KindSSL}}
	var ops []ovsdb.Operation
	if root.SSL != nil {
		row.UUID = *root.SSL
		ops, err = ovs.Where(row).Update(row, &row.CaCert, &row.Certificate, &row.PrivateKey, &row.ExternalIDs)
	} else {
		row.UUID = "newssl"
		var create []ovsdb.Operation
		if create, err = ovs.Create(row); err == nil {
			r := &vswitchd.OpenvSwitch{UUID: root.UUID, SSL: &row.UUID}
			var upd []ovsdb.Operation
			upd, err = ovs.Where(r).Update(r, &r.SSL)
			ops = append(create, upd...)
		}
	}
	if err != nil {
		return fmt.Errorf("set node TLS identity: %w", err)
	}
	if _, err := dbconn.Transact(ctx, ovs, ops...); err != nil {
		return fmt.Errorf("set node TLS identity in the Open_vSwitch SSL row: %w", err)
	}
	return nil
}

// ErrNoSSL: the node has no TLS identity (node join without --ca-cert,
// --cert, --private-key) but an endpoint is ssl:.
var ErrNoSSL = errors.New("the node has no TLS identity (Open_vSwitch SSL row): join it with --ca-cert, --cert and --private-key")

// SSLFiles returns the node's TLS identity from its Open_vSwitch SSL row
// (ErrNoSSL when there is none).
func SSLFiles(ctx context.Context, ovs client.Client, root *vswitchd.OpenvSwitch) (dbconn.TLSFiles, error) {
	if root.SSL == nil {
		return dbconn.TLSFiles{}, ErrNoSSL
	}
	rows, err := dbops.SelectRows[vswitchd.SSL](ctx, ovs, dbops.ByUUID(*root.SSL))
	if err != nil {
		return dbconn.TLSFiles{}, fmt.Errorf("read the node's TLS identity: %w", err)
	}
	if len(rows) == 0 {
		return dbconn.TLSFiles{}, ErrNoSSL
	}
	return dbconn.TLSFiles{CA: rows[0].CaCert, Cert: rows[0].Certificate, Key: rows[0].PrivateKey}, nil
}

// joinSB connects the SB for join's checks, with the node's identity when
// join was given one (else the process's, for ssl: endpoints).
func joinSB(ctx context.Context, o JoinOptions) (client.Client, error) {
	if o.TLS.Empty() {
		return dbconn.ConnectSB(ctx, o.SB)
	}
	cfg, err := o.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("node TLS identity: %w", err)
	}
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	return dbconn.Connect(ctx, m, o.SB, dbconn.Options{What: "SB", TLS: cfg})
}

// KindSSL is the ovlmgr.io/kind of the Open_vSwitch SSL row join set.
const KindSSL = "node-ssl"

// leaveSSLOps unsets the root's SSL row when join set it (the row, not a
// root table, goes with the reference): after leave no ovn-controller or
// plugin on this node presents the node's certificate.
func leaveSSLOps(ctx context.Context, ovs client.Client, root *vswitchd.OpenvSwitch) ([]ovsdb.Operation, error) {
	if root.SSL == nil {
		return nil, nil
	}
	row := &vswitchd.SSL{}
	var rows []vswitchd.SSL
	if err := dbconn.Select(ctx, ovs, row, &rows, model.Condition{Field: &row.UUID, Function: ovsdb.ConditionEqual, Value: *root.SSL}); err != nil {
		return nil, fmt.Errorf("read the SSL row: %w", err)
	}
	if len(rows) != 1 || !owner.Owned(rows[0].ExternalIDs, KindSSL) {
		return nil, nil
	}
	r := &vswitchd.OpenvSwitch{UUID: root.UUID}
	return ovs.Where(r).Update(r, &r.SSL)
}
