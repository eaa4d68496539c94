// Package chassis lists the nodes (OVN chassis) registered in the
// Southbound database, and forgets a node that is gone for good (Forget).
package chassis

import (
	"context"
	"fmt"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Encap is one tunnel endpoint of a chassis.
type Encap struct {
	Type string `json:"type"`
	IP   string `json:"ip"`
}

// Chassis is one node as SB sees it.
type Chassis struct {
	Name     string  `json:"name"`
	Hostname string  `json:"hostname"`
	Encaps   []Encap `json:"encaps"`
	// Connected: the chassis' ovn-controller has a Chassis_Private row and has
	// caught up with the latest SB configuration (nb_cfg). A chassis whose
	// ovn-controller stopped without `exit` keeps its rows; it shows as
	// disconnected once the configuration moves on (any `--wait=hv` change).
	Connected bool `json:"connected"`
	// Ports counts the Port_Binding rows bound to this chassis.
	Ports int `json:"ports"`
}

// List returns every chassis in SB, sorted by name, read in one transaction.
func List(ctx context.Context, sb client.Client) ([]Chassis, error) {
	tx := dbops.NewTx(sb)
	chQ := dbops.Query[sbdb.Chassis](tx, nil)
	encQ := dbops.Query[sbdb.Encap](tx, nil)
	privQ := dbops.Query[sbdb.ChassisPrivate](tx, nil)
	globalQ := dbops.Query[sbdb.SBGlobal](tx, nil)
	// Only _uuid and chassis of Port_Binding, to keep the count cheap
	// (_uuid too: ovsdb-server returns distinct projected rows).
	pbQ := dbops.Query(tx, nil, func(pb *sbdb.PortBinding) []any { return []any{&pb.UUID, &pb.Chassis} })
	if err := tx.Transact(ctx); err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	chs, err := chQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	encs, err := encQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	privs, err := privQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	globals, err := globalQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	pbs, err := pbQ.Rows()
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	nbCfg := 0
	if len(globals) > 0 {
		nbCfg = globals[0].NbCfg
	}
	encByUUID := map[string]*sbdb.Encap{}
	for _, e := range encs {
		encByUUID[e.UUID] = e
	}
	privByName := map[string]*sbdb.ChassisPrivate{}
	for _, p := range privs {
		privByName[p.Name] = p
	}
	ports := map[string]int{}
	for _, pb := range pbs {
		if pb.Chassis != nil && *pb.Chassis != "" {
			ports[*pb.Chassis]++
		}
	}
	out := make([]Chassis, 0, len(chs))
	for _, c := range chs {
		ch := Chassis{Name: c.Name, Hostname: c.Hostname, Ports: ports[c.UUID], Encaps: []Encap{}}
		for _, u := range c.Encaps {
			if e := encByUUID[u]; e != nil {
				ch.Encaps = append(ch.Encaps, Encap{Type: e.Type, IP: e.IP})
			}
		}
		sort.Slice(ch.Encaps, func(i, j int) bool { return ch.Encaps[i].IP < ch.Encaps[j].IP })
		if p := privByName[c.Name]; p != nil && p.Chassis != nil && *p.Chassis == c.UUID && p.NbCfg >= nbCfg {
			ch.Connected = true
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
