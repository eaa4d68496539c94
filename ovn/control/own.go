package control

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// The rules here decide on the service's view of the NB (facts): which
// addresses are the node's own ports' on which network. Each fact used is
// pinned by a guard (holds), so the decision and the write are atomic.

// needsFacts reports whether ops write tables whose rules use facts.
func needsFacts(ops []op) bool {
	for _, o := range ops {
		switch o.str("op") {
		case "insert", "update", "mutate", "delete":
			switch o.str("table") {
			case "DNS", "Load_Balancer", "Port_Group", "Logical_Router", "Address_Set":
				return true
			case "Logical_Switch":
				// DNS rows, and ports joining a network (which must be an
				// ovlmgr network's switch).
				if mutates(o, "dns_records", "") || mutates(o, "ports", "insert") {
					return true
				}
			case "Logical_Switch_Port":
				if row, _ := o["row"].(map[string]any); row != nil && setsAddrs(row) {
					return true
				}
			}
		}
	}
	return false
}

// mine returns the node's port holding ip on network, refusing when
// there is none; the port is pinned.
func (c *checker) mine(i int, network string, ip netip.Addr, what string) (*portFact, *Denied) {
	if c.facts == nil {
		return nil, c.denyOwn(i, "%s: the control service has no view of the NB", what)
	}
	pf, other := c.facts.own(network, ip, c.node)
	if pf == nil && other != nil && c.takeovers[other.Name] {
		c.stillPool(other, i)
		return other, nil
	}
	if pf == nil {
		return nil, c.denyOwn(i, "%s: %s is not the address of a port bound to %s on network %q", what, ip, c.node, network)
	}
	c.holds(pf, i, ip)
	return pf, nil
}

// removable refuses to remove what names or uses ip on network when ip is
// another node's live port's address; the node's own port is pinned.
func (c *checker) removable(i int, network string, ip netip.Addr, what string) *Denied {
	if c.facts == nil {
		return c.denyOwn(i, "%s: the control service has no view of the NB", what)
	}
	pf, other := c.facts.own(network, ip, c.node)
	if other != nil && c.takeovers[other.Name] {
		c.stillPool(other, i)
		other = nil
	}
	if other != nil {
		holder := "no node"
		if other.Chassis != "" {
			holder = "node " + other.Chassis
		}
		return c.denyOwn(i, "%s: %s is the address of port %s of %s on network %q", what, ip, other.Name, holder, network)
	}
	if pf != nil {
		c.holds(pf, i, ip)
	}
	return nil
}

// setsAddrs reports whether a port's row sets its addresses or port security.
func setsAddrs(row map[string]any) bool {
	_, a := row["addresses"]
	_, ps := row["port_security"]
	return a || ps
}

// portColumns limits what a node writes in a Logical_Switch_Port to what
// a container port of ovlmgr carries: name, addresses, port_security,
// options requested-chassis and iface-id-ver, external_ids (no type: a
// localnet or router port would bridge a tenant's network elsewhere), and
// addresses in the forms ovlmgr writes (nodeAddress).
func (c *checker) portColumns(i int, o op) *Denied {
	cols := []string{"addresses", "port_security", "options", "external_ids"}
	switch o.str("op") {
	case "insert":
		cols = append(cols, "name")
	case "mutate":
		cols = []string{"external_ids"}
	case "delete":
		return nil
	}
	if !onlyColumns(o, cols...) {
		return c.deny(i, "%s a port's columns beyond %s", verb(o.str("op")), strings.Join(cols, ", "))
	}
	row, _ := o["row"].(map[string]any)
	if v, set := row["options"]; set {
		if !isMap(v) {
			return c.deny(i, "set port options %v", v)
		}
		for k := range mapOf(v) {
			if k != requestedChassis && k != ovnport.OptIfaceIDVer {
				return c.deny(i, "set port option %q (a node sets %s and %s)", k, requestedChassis, ovnport.OptIfaceIDVer)
			}
		}
	}
	for _, col := range []string{"addresses", "port_security"} {
		v, set := row[col]
		if !set {
			continue
		}
		es := setOf(v)
		if len(es) > 1 || es == nil && !isSet(v) {
			return c.deny(i, "set port %s %v (one entry)", col, v)
		}
		for _, e := range es {
			if err := nodeAddress(col, e); err != nil {
				return c.deny(i, "set port %s %q: %v", col, e, err)
			}
		}
	}
	return nil
}

// nodeAddress checks an addresses or port_security entry a node writes:
// "dynamic" or "MAC dynamic" (addresses only), or "MAC IP..." with the
// MAC and every address in canonical form. Anything else OVN might read
// differently from this service (an address with leading zeros, which
// OVN's parser takes for another address; a prefix in port_security,
// which lets a whole subnet through; "unknown" or "router") is refused.
func nodeAddress(col, e string) error {
	f := strings.Fields(e)
	if col == "addresses" && len(f) == 1 && f[0] == "dynamic" {
		return nil
	}
	if len(f) < 2 {
		return fmt.Errorf(`want "MAC IP..."`)
	}
	mac, err := net.ParseMAC(f[0])
	if err != nil || len(mac) != 6 || !strings.EqualFold(mac.String(), f[0]) {
		return fmt.Errorf("MAC %q: want six colon-separated hex bytes", f[0])
	}
	if err := ovnport.CheckMAC(mac); err != nil {
		return err
	}
	if col == "addresses" && len(f) == 2 && f[1] == "dynamic" {
		return nil
	}
	for _, a := range f[1:] {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" || ip.Is4In6() || ip.String() != a {
			return fmt.Errorf("address %q: want an IPv4 or IPv6 address in canonical form, no prefix", a)
		}
	}
	return nil
}

// portAddrs refuses a port (self: its UUID, "" for a new one) on network
// whose addresses or port security name an address another node's port
// holds there, or the network's gateway, or whose MAC another port or a
// router port of the network has: taking over another container's
// address. A new port joining no switch in its transaction is removed by
// the NB (ports are not root rows): nothing to check.
func (c *checker) portAddrs(i int, o op, network, self string) *Denied {
	row, _ := o["row"].(map[string]any)
	var ips []netip.Addr
	var macs []string
	for _, col := range []string{"addresses", "port_security"} {
		for _, e := range setOf(row[col]) {
			ips = append(ips, addrsOf(e)...)
			if f := strings.Fields(e); len(f) > 0 && f[0] != "dynamic" && !slices.Contains(macs, strings.ToLower(f[0])) {
				macs = append(macs, strings.ToLower(f[0]))
			}
		}
	}
	if len(ips)+len(macs) == 0 || network == "" {
		return nil
	}
	if c.facts == nil {
		return c.denyOwn(i, "set port addresses %v: the control service has no view of the NB", ips)
	}
	n := c.facts.network(network)
	if n == nil {
		return nil // not an ovlmgr network: no addresses of ours there
	}
	for _, m := range macs {
		if holder := c.facts.macHolder(network, m, self); holder != "" {
			return c.denyOwn(i, "give a port MAC %s, held by %s on network %q", m, holder, network)
		}
	}
	for _, ip := range ips {
		if containsAddr(n.Gateways, ip) {
			return c.denyOwn(i, "give a port the gateway address %s of network %q", ip, network)
		}
		for _, p := range c.facts.holders(network, ip) {
			if p.Chassis != c.node && p.UUID != self {
				holder := "no node"
				if p.Chassis != "" {
					holder = "node " + p.Chassis
				}
				return c.denyOwn(i, "give a port address %s, held by port %s of %s on network %q", ip, p.Name, holder, network)
			}
		}
	}
	return nil
}

// updateAddrs checks an update of a port's addresses: of one port, named
// by UUID or name.
func (c *checker) updateAddrs(i int, o op, where []any) *Denied {
	row, _ := o["row"].(map[string]any)
	if len(setOf(row["addresses"]))+len(setOf(row["port_security"])) == 0 {
		return nil // cleared: no address, no MAC
	}
	if c.facts == nil {
		return c.denyOwn(i, "set port addresses: the control service has no view of the NB")
	}
	var pf *portFact
	if u := whereUUID(where); u != "" {
		pf = c.facts.port(u)
	} else if n := whereEq(where, "name"); n != "" {
		pf = c.facts.portNamed(n)
	}
	if pf == nil {
		return c.denyOwn(i, "set addresses of ports selected by %v (one port of a network, by _uuid or name)", where)
	}
	return c.portAddrs(i, o, pf.Network, pf.UUID)
}

// dns checks a DNS write: a new (empty) row, or records of one network's
// rows (selected by their external_ids) naming the node's own addresses.
func (c *checker) dns(i int, o op, where []any) *Denied {
	switch o.str("op") {
	case "insert":
		// The network's DNS rows made by the first ADD (dns.Sync): empty,
		// one per shard of a network. A second row of a shard would hold
		// names beside the shard's own, where the node could register a
		// name another container holds.
		if len(mapOf(list(mapCol(o["row"], "records")))) > 0 || !onlyColumns(o, "records", "external_ids") {
			return c.denyOwn(i, "create a DNS row with records")
		}
		ids, _ := mapCol(o["row"], "external_ids").([]any)
		network, shard := mapOf(ids)[owner.KeyNetwork], mapOf(ids)[dns.KeyShard]
		if k, err := strconv.Atoi(shard); network == "" || err != nil || k < 0 || k >= dns.Shards || strconv.Itoa(k) != shard {
			return c.denyOwn(i, "create a DNS row for network %q shard %q (a network's DNS rows are its shards 0-%d)", network, shard, dns.Shards-1)
		}
		c.add(op{"op": "wait", "table": nbdb.DNSTable, "timeout": 0,
			"where":   []any{[]any{"external_ids", "includes", []any{"map", []any{[]any{owner.KeyNetwork, network}, []any{dns.KeyShard, shard}}}}},
			"columns": []any{"_uuid"}, "until": "==", "rows": []any{}},
			i, fmt.Sprintf("create a second DNS row for shard %s of network %q", shard, network))
		stamp(o, "node:"+c.node)
		return nil
	case "mutate":
	default:
		return c.denyOwn(i, "%s DNS rows (container names are added and removed with mutations of records)", verb(o.str("op")))
	}
	network, shard := "", ""
	for _, w := range where {
		if cond := list(w); len(cond) == 3 && cond[0] == "external_ids" && cond[1] == "includes" {
			network, shard = mapOf(cond[2])[owner.KeyNetwork], mapOf(cond[2])[dns.KeyShard]
		}
	}
	if network == "" {
		return c.denyOwn(i, "change DNS rows not selected by their network (external_ids includes %s)", owner.KeyNetwork)
	}
	if c.facts == nil {
		return c.denyOwn(i, "change DNS records of network %q: the control service has no view of the NB", network)
	}
	n := c.facts.network(network)
	if n == nil {
		return c.denyOwn(i, "change DNS records of network %q, which the control service does not know", network)
	}
	for _, m := range list(o["mutations"]) {
		mm := list(m)
		if len(mm) != 3 || mm[0] != "records" {
			return c.denyOwn(i, "change DNS column %v", m)
		}
		switch {
		case mm[1] == "insert" && isMap(mm[2]):
			for _, kv := range pairs(mm[2]) {
				// Into the row of the record's shard only (dns.ShardOf),
				// lower case as dns writes them: a record's one place,
				// where a map insert never replaces a name another
				// container holds.
				if want := strconv.Itoa(dns.ShardOf(kv[0])); shard != want || kv[0] != strings.ToLower(kv[0]) {
					return c.denyOwn(i, "add DNS record %s=%q to the row of shard %q (it belongs, in lower case, in shard %s)", kv[0], kv[1], shard, want)
				}
				ips, d := c.recordAddrs(i, n, kv[0], kv[1], true)
				if d != nil {
					return d
				}
				for _, ip := range ips {
					if _, d := c.mine(i, network, ip, fmt.Sprintf("add DNS record %s=%q", kv[0], kv[1])); d != nil {
						return d
					}
				}
			}
		case mm[1] == "delete" && isMap(mm[2]):
			for _, kv := range pairs(mm[2]) {
				ips, d := c.recordAddrs(i, n, kv[0], kv[1], false)
				if d != nil {
					return d
				}
				for _, ip := range ips {
					if d := c.removable(i, network, ip, fmt.Sprintf("remove DNS record %s=%q", kv[0], kv[1])); d != nil {
						return d
					}
				}
			}
		case mm[1] == "delete":
			// Keys: only PTRs (stale ones of the node's addresses).
			for _, k := range setOf(mm[2]) {
				ip, ok := parseReverse(k)
				if !ok {
					return c.denyOwn(i, "remove DNS name %q whatever its value (remove exactly the pair)", k)
				}
				if d := c.removable(i, network, ip, fmt.Sprintf("remove DNS record %s", k)); d != nil {
					return d
				}
			}
		default:
			return c.denyOwn(i, "change DNS records with %v", mm[1])
		}
	}
	return nil
}

// recordAddrs returns the addresses a record names: a PTR's reversed
// address, a name's value. A new record must be in the network's zone.
func (c *checker) recordAddrs(i int, n *netFact, k, v string, adding bool) ([]netip.Addr, *Denied) {
	if ip, ok := parseReverse(k); ok {
		if adding && !inZone(v, n.zone()) {
			return nil, c.denyOwn(i, "add DNS record %s=%q: the name is not in zone %s of network %q", k, v, n.zone(), n.Name)
		}
		return []netip.Addr{ip}, nil
	}
	if adding && !inZone(k, n.zone()) {
		return nil, c.denyOwn(i, "add DNS record %s=%q: the name is not in zone %s of network %q", k, v, n.zone(), n.Name)
	}
	var ips []netip.Addr
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			if adding {
				return nil, c.denyOwn(i, "add DNS record %s=%q: %q is not an address", k, v, f)
			}
			continue
		}
		ips = append(ips, a.Unmap())
	}
	if adding && len(ips) == 0 {
		return nil, c.denyOwn(i, "add DNS record %s=%q without an address", k, v)
	}
	return ips, nil
}

func inZone(name, zone string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return strings.HasSuffix(name, "."+zone) && len(name) > len(zone)+1
}

// parseReverse reads "4.3.2.1.in-addr.arpa" or a nibble ip6.arpa name.
func parseReverse(k string) (netip.Addr, bool) {
	k = strings.ToLower(strings.TrimSuffix(k, "."))
	switch {
	case strings.HasSuffix(k, ".in-addr.arpa"):
		l := strings.Split(strings.TrimSuffix(k, ".in-addr.arpa"), ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(l[3] + "." + l[2] + "." + l[1] + "." + l[0])
		return a, err == nil
	case strings.HasSuffix(k, ".ip6.arpa"):
		l := strings.Split(strings.TrimSuffix(k, ".ip6.arpa"), ".")
		if len(l) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for j := 31; j >= 0; j-- {
			b.WriteString(l[j])
			if j%4 == 0 && j > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

// portGroup checks a Port_Group write: the node's ports join the group of
// the network they are on, and only its ports leave a group.
func (c *checker) portGroup(i int, o op, where []any) *Denied {
	if o.str("op") != "mutate" {
		return c.denyOwn(i, "%s port groups", verb(o.str("op")))
	}
	for _, m := range list(o["mutations"]) {
		mm := list(m)
		if len(mm) != 3 || mm[0] != "ports" {
			return c.denyOwn(i, "change port group column %v", m)
		}
		switch mm[1] {
		case "delete":
			for _, u := range uuids(mm[2]) {
				if u[0] != "uuid" {
					return c.deny(i, "remove port %v from a port group", u)
				}
				c.notOthers(byUUID(u[1]), i)
			}
		case "insert":
			name := whereEq(where, "name")
			var g *groupFact
			if c.facts != nil {
				g = c.facts.groups[name]
			}
			if g == nil || g.Kind != policy.KindPortGroup || g.Network == "" {
				return c.denyOwn(i, "add ports to port group %q, which is no network's policy group", name)
			}
			for _, u := range uuids(mm[2]) {
				switch u[0] {
				case "named-uuid":
					if _, ok := c.inserted[u[1]]; !ok || c.portNet[u[1]] != g.Network {
						return c.denyOwn(i, "add port %s to port group %q of network %q: the port does not join that network's switch in the transaction", u[1], name, g.Network)
					}
				case "uuid":
					pf := c.facts.port(u[1])
					if pf == nil || pf.Chassis != c.node || pf.Network != g.Network {
						return c.denyOwn(i, "add port %s to port group %q: not a port bound to %s on network %q", u[1], name, c.node, g.Network)
					}
					c.holds(pf, i)
				default:
					return c.deny(i, "add %v to a port group", u)
				}
			}
		default:
			return c.denyOwn(i, "change port group ports with %v", mm[1])
		}
	}
	return nil
}

// published checks a published port's load balancer: of the node's own
// container port, on the port's network, answering on an address of a
// router of that network and sending to the port's address.
func (c *checker) published(i int, o op) *Denied {
	row := o["row"]
	kindOf, _ := mapValue(row, "external_ids", owner.KeyKind)
	nodeOf, _ := mapValue(row, "external_ids", owner.KeyNode)
	port, _ := mapValue(row, "external_ids", owner.KeyPort)
	netOf, _ := mapValue(row, "external_ids", owner.KeyNetwork)
	routerOf, _ := mapValue(row, "external_ids", owner.KeyRouter)
	if kindOf != owner.KindPublished || nodeOf != c.node || port == "" {
		return c.deny(i, "create a load balancer other than a published port of its own container")
	}
	var pf *portFact
	if c.facts != nil {
		pf = c.facts.portNamed(port)
	}
	if pf == nil || pf.Chassis != c.node || pf.Network != netOf {
		return c.denyOwn(i, "publish port %s on network %q: not a port bound to %s on that network", port, netOf, c.node)
	}
	c.holds(pf, i)
	var rf *routerFact
	for _, r := range c.facts.network(pf.Network).Routers {
		if x := c.facts.routers[r]; x != nil && x.Name == routerOf {
			rf = x
		}
	}
	if rf == nil {
		return c.denyOwn(i, "publish port %s on router %q: network %q is not attached to it", port, routerOf, pf.Network)
	}
	vips := pairs(mapCol(row, "vips"))
	if len(vips) != 1 {
		return c.denyOwn(i, "publish a load balancer with %d VIPs (one address:port a load balancer)", len(vips))
	}
	for k, v := range mapOf(mapCol(row, "vips")) {
		vip, err := netip.ParseAddrPort(k)
		if err != nil || !containsAddr(rf.External, vip.Addr().Unmap()) {
			return c.denyOwn(i, "publish %s: not an external address of router %q (its gateway port %s)", k, rf.Name, gateway.PortName(rf.Name))
		}
		// One load balancer per address:port/protocol, named after it
		// (ovn/publish): none of that name may exist but those the
		// transaction removes (the node's own, ownGuard). Two would
		// answer on one address and port with different backends.
		proto := "tcp"
		if ps := setOf(mapCol(row, "protocol")); len(ps) == 1 {
			proto = ps[0]
		}
		name := publish.LBName(vip.Addr(), int(vip.Port()), proto)
		if got, _ := mapCol(row, "name").(string); got != name {
			return c.denyOwn(i, "publish %s/%s in a load balancer named %q (it is %q)", k, proto, got, name)
		}
		where := []any{[]any{"name", "==", name}}
		for _, d := range c.ops {
			// A delete of exactly one row by UUID: its ownGuard fails
			// unless that row is the node's, so the row it leaves out
			// is the node's own, gone in this transaction.
			dw := list(d["where"])
			if u := whereUUID(dw); d.str("op") == "delete" && d.str("table") == nbdb.LoadBalancerTable && u != "" && len(dw) == 1 {
				where = append(where, []any{"_uuid", "!=", []any{"uuid", u}})
			}
		}
		c.add(op{"op": "wait", "table": nbdb.LoadBalancerTable, "timeout": 0, "where": where, "columns": []any{"name"}, "until": "==", "rows": []any{}},
			i, fmt.Sprintf("publish %s/%s, which another container publishes", k, proto))
		for _, b := range strings.Split(v, ",") {
			be, err := netip.ParseAddrPort(strings.TrimSpace(b))
			if err != nil || !containsAddr(pf.IPs, be.Addr().Unmap()) {
				return c.denyOwn(i, "publish %s to %q: not the address of port %s", k, v, port)
			}
			c.holds(pf, i, be.Addr().Unmap())
		}
	}
	return nil
}

// routerJoin checks that the load balancer lb (inserted in the
// transaction) joins the router it was published for.
func (c *checker) routerJoin(i int, where []any, lb string) *Denied {
	ins, ok := c.inserted[lb]
	if !ok || ins.str("table") != "Load_Balancer" {
		return c.deny(i, "add load balancer %s, not created in the transaction, to a router", lb)
	}
	routerOf, _ := mapValue(ins["row"], "external_ids", owner.KeyRouter)
	var rf *routerFact
	if c.facts != nil {
		if u := whereUUID(where); u != "" {
			rf = c.facts.routers[u]
		}
	}
	if rf == nil || rf.Name != routerOf {
		return c.denyOwn(i, "attach published port %s to router %v: it is published on router %q", lb, where, routerOf)
	}
	return nil
}

// backends checks a service load balancer's update: it must follow a wait
// on the current values of every column it sets (service.SyncPort does),
// and change only backends whose address is the node's own port's on the
// service's network (added) or not another node's (removed).
func (c *checker) backends(i int, o op, where []any) *Denied {
	if !onlyColumns(o, "vips", "ip_port_mappings", "external_ids") {
		return c.denyOwn(i, "change a load balancer beyond its backends")
	}
	u := whereUUID(where)
	if u == "" || len(where) != 1 {
		return c.denyOwn(i, "update load balancers selected by %v (one, by _uuid)", where)
	}
	row, _ := o["row"].(map[string]any)
	var old map[string]any
	for j := 0; j < i; j++ {
		w := c.ops[j]
		if w.str("op") != "wait" || w.str("table") != "Load_Balancer" || w.str("until") != "==" || whereUUID(list(w["where"])) != u || len(list(w["where"])) != 1 {
			continue
		}
		rs := list(w["rows"])
		if len(rs) != 1 {
			continue
		}
		r, _ := rs[0].(map[string]any)
		cols := map[string]bool{}
		for _, col := range list(w["columns"]) {
			cols[fmt.Sprint(col)] = true
		}
		all := true
		for col := range row {
			all = all && cols[col] && r[col] != nil
		}
		if all && r != nil && cols["external_ids"] && r["external_ids"] != nil {
			old = r
		}
	}
	for j := i + 1; j < len(c.ops); j++ {
		if w := c.ops[j]; w.str("table") == "Load_Balancer" && w.str("op") != "wait" && w.str("op") != "select" {
			return c.denyOwn(i, "write load balancer %s twice in a transaction", u)
		}
	}
	if old == nil {
		return c.denyOwn(i, "update load balancer %s without a wait on the current values of what it sets", u)
	}
	ids := mapOf(old["external_ids"])
	if !owner.Owned(ids, owner.KindService) || ids[owner.KeyNetwork] == "" {
		return c.denyOwn(i, "change backends of load balancer %s, which is not a service", u)
	}
	network := ids[owner.KeyNetwork]
	added, removed := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	diffList := func(was, is string) *Denied {
		a, b := addrPorts(was), addrPorts(is)
		if a == nil || b == nil {
			return c.denyOwn(i, "set service %s backends %q", ids[owner.KeyName], is)
		}
		for x := range b {
			if !a[x] {
				added[x.Addr().Unmap()] = true
			}
		}
		for x := range a {
			if !b[x] {
				removed[x.Addr().Unmap()] = true
			}
		}
		return nil
	}
	if v, set := row["vips"]; set {
		was, is := mapOf(old["vips"]), mapOf(v)
		if !slices.Equal(sortedKeys(was), sortedKeys(is)) {
			return c.denyOwn(i, "change the VIPs of service %s (%v to %v)", ids[owner.KeyName], sortedKeys(was), sortedKeys(is))
		}
		for k := range is {
			if d := diffList(was[k], is[k]); d != nil {
				return d
			}
		}
	}
	if v, set := row["external_ids"]; set {
		is := mapOf(v)
		for _, k := range union(ids, is) {
			if k == KeyWrittenBy || ids[k] == is[k] {
				continue
			}
			if k != service.KeyBackends {
				return c.denyOwn(i, "change %s of service %s", k, ids[owner.KeyName])
			}
			if d := diffList(ids[k], is[k]); d != nil {
				return d
			}
		}
	}
	var mappings []string // added or changed ip_port_mappings
	if v, set := row["ip_port_mappings"]; set {
		was, is := mapOf(old["ip_port_mappings"]), mapOf(v)
		for _, k := range union(was, is) {
			if was[k] == is[k] {
				continue
			}
			a, err := netip.ParseAddr(strings.Trim(k, "[]"))
			if err != nil {
				return c.denyOwn(i, "set health check mapping %s of service %s", k, ids[owner.KeyName])
			}
			if _, ok := is[k]; ok {
				added[a.Unmap()] = true
				mappings = append(mappings, k)
			} else {
				removed[a.Unmap()] = true
			}
		}
	}
	what := "change backends of service " + ids[owner.KeyName]
	holder := map[netip.Addr]*portFact{}
	for _, a := range sortedAddrs(added) {
		pf, d := c.mine(i, network, a, what)
		if d != nil {
			return d
		}
		holder[a] = pf
	}
	for _, a := range sortedAddrs(removed) {
		if !added[a] {
			if d := c.removable(i, network, a, what); d != nil {
				return d
			}
		}
	}
	// A health check mapping names the backend's own port.
	for _, k := range mappings {
		a, _ := netip.ParseAddr(strings.Trim(k, "[]"))
		// The port mine found for the address: the node's own, or a pool
		// port the transaction takes over.
		pf := holder[a.Unmap()]
		if v := mapOf(row["ip_port_mappings"])[k]; pf == nil || !strings.HasPrefix(v, pf.Name+":") {
			return c.denyOwn(i, "map backend %s of service %s to %q: not its port %s", k, ids[owner.KeyName], v, pf.Name)
		}
	}
	return nil
}

// addrPorts parses a backend list "IP:PORT,[IP6]:PORT" (nil when bad).
func addrPorts(s string) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			return nil
		}
		out[ap] = true
	}
	return out
}

func allIn(l, in []netip.Addr) bool {
	for _, a := range l {
		if !containsAddr(in, a) {
			return false
		}
	}
	return true
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func union(a, b map[string]string) []string {
	m := map[string]string{}
	for k := range a {
		m[k] = ""
	}
	for k := range b {
		m[k] = ""
	}
	return sortedKeys(m)
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// mapCol returns column col of an OVSDB row.
func mapCol(row any, col string) any {
	r, _ := row.(map[string]any)
	return r[col]
}

func isMap(v any) bool { l := list(v); return len(l) == 2 && l[0] == "map" }

func isSet(v any) bool { l := list(v); return len(l) == 2 && l[0] == "set" }

// mutates reports whether o mutates column col with mutator kind ("": any).
func mutates(o op, col, kind string) bool {
	for _, m := range list(o["mutations"]) {
		if mm := list(m); len(mm) == 3 && mm[0] == col && (kind == "" || mm[1] == kind) {
			return true
		}
	}
	return false
}

// pairs returns the [key, value] string pairs of an OVSDB map.
func pairs(v any) [][2]string {
	l := list(v)
	if len(l) != 2 || l[0] != "map" {
		return nil
	}
	var out [][2]string
	for _, kv := range list(l[1]) {
		if p := list(kv); len(p) == 2 {
			out = append(out, [2]string{fmt.Sprint(p[0]), fmt.Sprint(p[1])})
		}
	}
	return out
}

// mapOf returns an OVSDB map of strings as a Go map.
func mapOf(v any) map[string]string {
	out := map[string]string{}
	for _, kv := range pairs(v) {
		out[kv[0]] = kv[1]
	}
	return out
}

// setOf returns the strings of an OVSDB set or atom.
func setOf(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	l := list(v)
	if len(l) == 2 && l[0] == "set" {
		var out []string
		for _, e := range list(l[1]) {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// stillPool guards a port the transaction takes over from another node's
// pool (readyPoolOnly): it must still be a ready pool port holding the
// addresses the decision saw, or the whole transaction fails.
func (c *checker) stillPool(pf *portFact, at int) {
	if c.poolPinned == nil {
		c.poolPinned = map[string]bool{}
	}
	if c.poolPinned[pf.UUID] {
		return
	}
	c.poolPinned[pf.UUID] = true
	addrs := make([]any, 0, len(pf.Addresses))
	for _, a := range pf.Addresses {
		addrs = append(addrs, a)
	}
	sel := []any{"map", []any{[]any{owner.KeyOwner, owner.Owner}, []any{owner.KeyKind, ovnport.KindPool}, []any{ovnport.KeyPool, ovnport.PoolReady}}}
	w := op{"op": "wait", "table": nbdb.LogicalSwitchPortTable, "timeout": 0,
		"where":   []any{[]any{"_uuid", "==", []any{"uuid", pf.UUID}}, []any{"external_ids", "includes", sel}},
		"columns": []any{"addresses"}, "until": "==", "rows": []any{map[string]any{"addresses": []any{"set", addrs}}}}
	c.add(w, at, fmt.Sprintf("take over pool port %s, which is no longer a ready pool port with addresses %v", pf.Name, pf.Addresses))
}
