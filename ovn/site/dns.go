package site

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/icnbdb"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// OVN-IC carries routes, not names. SyncDNS carries them: a site publishes
// the DNS records of its linked routers' networks on each transit switch
// the router is on (IC-NB Transit_Switch external_ids
// ovlmgr.io/dns/<site>/<router>, a JSON object name -> addresses, as in a
// DNS row's records), and imports the records other sites published on
// the same transit switches into one DNS row per local linked router
// (kind site-dns), referenced by every network of that router. OVN then
// answers those names on the local networks exactly like local ones.
const (
	KeyDNS      = "ovlmgr.io/dns/"
	KindSiteDNS = "site-dns"
)

// SyncResult tells what SyncDNS did.
type SyncResult struct {
	Site      string `json:"site"`
	Published int    `json:"published"` // records published by this site
	Imported  int    `json:"imported"`  // records of other sites now answered here
	Networks  int    `json:"networks"`  // local networks answering them
}

// networkRecords reads the DNS records ovlmgr keeps for network (every
// shard, not the imported rows).
func networkRecords(ctx context.Context, nb client.Client, network string) (map[string]string, error) {
	rows, err := dbops.SelectRows[nbdb.DNS](ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindDNS, map[string]string{owner.KeyNetwork: network})})
	if err != nil {
		return nil, fmt.Errorf("read names of network %s: %w", network, err)
	}
	out := map[string]string{}
	for _, r := range rows {
		for k, v := range r.Records {
			out[k] = v
		}
	}
	return out, nil
}

// SyncDNS publishes this site's names of linked routers' networks and
// imports the other sites' (see the package comment on KeyDNS). It is
// idempotent; run it after names change (containers come and go) on
// every site, or periodically. Names imported from a site that unlinked
// its router go at the next sync.
func SyncDNS(ctx context.Context, nb, icnb client.Client) (*SyncResult, error) {
	self, err := Local(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("site sync: %w", err)
	}
	if self == "" {
		return nil, fmt.Errorf("site sync: %w", ErrNotJoined)
	}
	res := &SyncResult{Site: self}
	links, err := Links(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("site sync: %w", err)
	}
	byRouter := map[string][]string{} // router -> transit switches
	for _, l := range links {
		byRouter[l.Router] = append(byRouter[l.Router], l.Transit)
	}
	routers := make([]string, 0, len(byRouter))
	for r := range byRouter {
		routers = append(routers, r)
	}
	sort.Strings(routers)
	for _, rtr := range routers {
		r, err := router.Get(ctx, nb, rtr)
		if err != nil {
			return nil, fmt.Errorf("site sync: %w", err)
		}
		mine := map[string]string{}
		var nets []string
		for _, a := range r.Networks {
			nets = append(nets, a.Network)
			recs, err := networkRecords(ctx, nb, a.Network)
			if err != nil {
				return nil, fmt.Errorf("site sync: %w", err)
			}
			for k, v := range recs {
				mine[k] = v
			}
		}
		data, err := json.Marshal(mine)
		if err != nil {
			return nil, err
		}
		// Keep the published subnets and network names in step with the
		// router (networks attached since the link).
		rnets, err := routerNets(ctx, nb, rtr)
		if err != nil {
			return nil, fmt.Errorf("site sync: %w", err)
		}
		var subs []netip.Prefix
		for _, n := range rnets {
			subs = append(subs, n.subnet)
		}
		for _, ts := range byRouter[rtr] {
			if err := publish(ctx, icnb, ts, self, rtr, subs, netip.Prefix{}, rnets); err != nil {
				return nil, fmt.Errorf("site sync: %w", err)
			}
		}
		imported := map[string]string{}
		for _, ts := range byRouter[rtr] {
			tss, err := dbops.SelectRows[icnbdb.TransitSwitch](ctx, icnb, []ovsdb.Condition{dbops.NameIs(ts)})
			if err != nil {
				return nil, fmt.Errorf("site sync: read transit switch %s: %w", ts, err)
			}
			if len(tss) == 0 {
				continue
			}
			tx := dbops.NewTx(icnb)
			dbops.Typed[icnbdb.TransitSwitch](tx).SetKeys(dbops.ByUUID(tss[0].UUID), "external_ids", map[string]string{KeyDNS + self + "/" + rtr: string(data)})
			if err := tx.Transact(ctx); err != nil {
				return nil, fmt.Errorf("site sync: publish names on %s: %w", ts, err)
			}
			res.Published += len(mine)
			for k, v := range tss[0].ExternalIDs {
				rest, ok := strings.CutPrefix(k, KeyDNS)
				if !ok || strings.HasPrefix(rest, self+"/") {
					continue
				}
				var recs map[string]string
				if json.Unmarshal([]byte(v), &recs) != nil {
					continue
				}
				for name, addr := range recs {
					imported[name] = addr
				}
			}
		}
		if err := importRecords(ctx, nb, rtr, nets, imported); err != nil {
			return nil, fmt.Errorf("site sync: %w", err)
		}
		res.Imported += len(imported)
		res.Networks += len(nets)
	}
	return res, nil
}

// importRecords sets the records of router rtr's imported DNS row (made
// when missing) and references it from every network in nets.
func importRecords(ctx context.Context, nb client.Client, rtr string, nets []string, recs map[string]string) error {
	name := "site-dns-" + rtr
	rows, err := dbops.SelectRows[nbdb.DNS](ctx, nb, []ovsdb.Condition{dbops.Owned(KindSiteDNS, map[string]string{owner.KeyName: name})})
	if err != nil {
		return fmt.Errorf("read imported names of router %s: %w", rtr, err)
	}
	tx := dbops.NewTx(nb)
	uuid := ""
	if len(rows) == 0 {
		d := &nbdb.DNS{UUID: "newsitedns", Records: recs, ExternalIDs: owner.IDs(KindSiteDNS, name, map[string]string{owner.KeyRouter: rtr})}
		tx.Create(d)
		uuid = d.UUID
	} else {
		uuid = rows[0].UUID
		upd := &nbdb.DNS{UUID: uuid, Records: recs}
		tx.AddAPI(nb.Where(upd).Update(upd, &upd.Records))
	}
	for _, n := range nets {
		tx.Add(dbops.AddRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(n)}, "dns_records", uuid))
	}
	if err := tx.Transact(ctx); err != nil {
		return fmt.Errorf("import names for router %s: %w", rtr, err)
	}
	return nil
}
