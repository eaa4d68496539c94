// Package encrypt turns OVN's IPsec encryption of Geneve tunnels on and off
// for a deployment (NB_Global ipsec) and finds the chassis whose tunnels
// should be encrypted but cannot be. The encryption itself is done on
// each node by ovs-monitor-ipsec (Debian openvswitch-ipsec) driving
// strongSwan or Libreswan through the kernel's xfrm, with the chassis'
// certificate in the node's Open_vSwitch other_config; see docs/sites.md.
package encrypt

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

var allRows = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}

// ErrNoGlobal: the NB has no NB_Global row yet (ovn-northd never ran).
var ErrNoGlobal = errors.New("NB_Global has no row: has ovn-northd ever connected to this Northbound database?")

func global(ctx context.Context, nb client.Client) (*nbdb.NBGlobal, error) {
	gs, err := dbops.SelectRows[nbdb.NBGlobal](ctx, nb, allRows, func(g *nbdb.NBGlobal) []any { return []any{&g.UUID, &g.Ipsec} })
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, ErrNoGlobal
	}
	return gs[0], nil
}

// Set turns IPsec for every tunnel of the deployment on or off (NB_Global
// ipsec); ovn-northd and ovn-controller then set each tunnel's
// options:remote_name, which ovs-monitor-ipsec turns into IPsec policies.
func Set(ctx context.Context, nb client.Client, on bool) error {
	g, err := global(ctx, nb)
	if err != nil {
		return fmt.Errorf("set encryption %v: %w", on, err)
	}
	tx := dbops.NewTx(nb)
	upd := &nbdb.NBGlobal{UUID: g.UUID, Ipsec: on}
	tx.AddAPI(nb.Where(upd).Update(upd, &upd.Ipsec))
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("set encryption %v: %w", on, err)
	}
	return nil
}

// Enabled reports NB_Global ipsec.
func Enabled(ctx context.Context, nb client.Client) (bool, error) {
	g, err := global(ctx, nb)
	if err != nil {
		return false, fmt.Errorf("read encryption: %w", err)
	}
	return g.Ipsec, nil
}

// Finding is a chassis whose tunnels should be encrypted and are not.
type Finding struct {
	Chassis string `json:"chassis"`
	Why     string `json:"why"`
}

// Unencrypted returns, when encryption is on, the chassis whose tunnels
// cannot be encrypted as SB shows them: a userspace (netdev) datapath
// builds Geneve packets itself and sends them past the kernel's xfrm,
// where ovs-monitor-ipsec's policies live. Remote chassis (other sites)
// are left out. Nil when encryption is off.
func Unencrypted(ctx context.Context, nb, sb client.Client) ([]Finding, error) {
	on, err := Enabled(ctx, nb)
	if err != nil || !on {
		return nil, err
	}
	chs, err := dbops.SelectRows[sbdb.Chassis](ctx, sb, allRows, func(c *sbdb.Chassis) []any { return []any{&c.Name, &c.OtherConfig} })
	if err != nil {
		return nil, fmt.Errorf("read chassis: %w", err)
	}
	var out []Finding
	for _, c := range chs {
		if c.OtherConfig["is-remote"] == "true" {
			continue
		}
		if c.OtherConfig["datapath-type"] == "netdev" {
			out = append(out, Finding{Chassis: c.Name, Why: "userspace datapath (netdev): its Geneve packets never pass the kernel's IPsec (xfrm), so they leave unencrypted"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chassis < out[j].Chassis })
	return out, nil
}
