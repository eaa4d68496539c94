package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// KeyWrittenBy is the external_ids key the control service stamps on every
// NB row a client inserts (and on every external_ids it sets): "node:NAME"
// or "admin:NAME", from the client's certificate.
const KeyWrittenBy = owner.KeyWrittenBy

// requestedChassis is the LSP option that binds a port to a chassis.
const requestedChassis = "requested-chassis"

// Denied is a transaction the policy refuses: which operation and why.
type Denied struct {
	Index  int
	Reason string
}

func (d *Denied) Error() string { return d.Reason }

// op is one OVSDB operation as JSON (RFC 7047 5.2), kept generic: the
// service forwards what it does not need to understand unchanged.
type op map[string]any

func (o op) str(k string) string { s, _ := o[k].(string); return s }

// nodePolicy is what a node may write in the NB: container ports bound to
// itself (Logical_Switch_Port rows whose options:requested-chassis is the
// node), their membership in existing switches, and the bookkeeping an ADD
// or DEL does next to them (DNS records, pool hints in the switch's
// external_ids, service backends). Everything else (networks, routers,
// policies, ACLs, NB_Global, other nodes' ports) is refused.
type nodePolicy struct {
	node string
	// facts is the service's view of the NB (view.go); nil refuses every
	// write that needs it.
	facts *facts
}

// chassisIs is the condition "options:requested-chassis is the node" as
// OVSDB JSON.
func (p nodePolicy) excludesNode() []any {
	return []any{"options", "excludes", []any{"map", []any{[]any{requestedChassis, p.node}}}}
}

// guard fails the transaction (a wait with timeout 0 whose rows must be
// none) when where matches a port that is not bound to the node.
func (p nodePolicy) guard(where []any) op {
	w := append(append([]any{}, where...), p.excludesNode())
	return op{"op": "wait", "table": nbdb.LogicalSwitchPortTable, "timeout": 0, "where": w,
		"columns": []any{"name"}, "until": "==", "rows": []any{}}
}

// ownGuard fails the transaction when where matches a row of table (a
// published port's load balancer, a floating IP's NAT) that is not marked
// as the node's (external_ids ovlmgr.io/node).
func (p nodePolicy) ownGuard(table string, where []any) op {
	w := append(append([]any{}, where...), []any{"external_ids", "excludes", []any{"map", []any{[]any{owner.KeyNode, p.node}}}})
	return op{"op": "wait", "table": table, "timeout": 0, "where": w, "columns": []any{"_uuid"}, "until": "==", "rows": []any{}}
}

func byUUID(u string) []any { return []any{[]any{"_uuid", "==", []any{"uuid", u}}} }

// guard is a wait that protects operation at of a transaction; why is
// the permission error when it fails.
type guard struct {
	op  op
	at  int
	why string
}

// check returns the guards to run before ops (they fail when an operation
// would touch another node's port, or when what the check relied on has
// changed) or why ops are refused. It stamps inserted rows with
// KeyWrittenBy.
func (p nodePolicy) check(ops []op) (guards []guard, err *Denied) {
	c := &checker{nodePolicy: p, ops: ops, pins: map[string]*pin{}}
	c.prepare()
	for i, o := range ops {
		if d := c.checkOp(i, o); d != nil {
			return nil, d
		}
	}
	c.pinGuards()
	return c.guards, nil
}

// checker is one transaction's check.
type checker struct {
	nodePolicy
	ops    []op
	guards []guard
	// pins are the node's ports the decisions relied on (holds), by UUID,
	// in order.
	pins     map[string]*pin
	pinOrder []string
	// inserted maps the uuid-name of a row inserted in the transaction to
	// its operation; portNet maps a port inserted in the transaction to the
	// network whose switch it joins in the transaction.
	inserted map[string]op
	portNet  map[string]string
	// joins counts the switch mutations each inserted port joins.
	joins map[string]int
	// takeovers are the pool ports of other nodes the transaction moves
	// to this node (readyPoolOnly), by name.
	takeovers map[string]bool
	// poolPinned are the taken-over ports already guarded (stillPool),
	// poolNamed those guarded by name (readyPoolExists).
	poolPinned, poolNamed map[string]bool
}

const ownRule = " (a node writes names, service backends, policy groups, published ports and port addresses only for its own containers: ports bound to it, on their own network, with addresses no other node's port holds)"

func (c *checker) deny(i int, format string, args ...any) *Denied {
	return &Denied{Index: i, Reason: fmt.Sprintf("ovlmgr control: node %s may not ", c.node) + fmt.Sprintf(format, args...) +
		fmt.Sprintf(" (a node writes only container ports bound to itself, requested-chassis=%s, on existing networks)", c.node)}
}

// denyOwn refuses on the view's facts.
func (c *checker) denyOwn(i int, format string, args ...any) *Denied {
	return &Denied{Index: i, Reason: fmt.Sprintf("ovlmgr control: node %s may not ", c.node) + fmt.Sprintf(format, args...) + ownRule}
}

func (c *checker) add(g op, at int, why string) { c.guards = append(c.guards, guard{g, at, why}) }

const whyOther = "change a port bound to another node (or not bound to it: requested-chassis must be %s)"

func (c *checker) notOthers(where []any, at int) {
	c.add(c.guard(where), at, fmt.Sprintf(whyOther, c.node))
}

// prepare indexes the transaction's inserts and the switches its new ports join.
func (c *checker) prepare() {
	c.inserted, c.portNet, c.takeovers, c.joins = map[string]op{}, map[string]string{}, map[string]bool{}, map[string]int{}
	for _, o := range c.ops {
		if o.str("op") == "insert" && o.str("uuid-name") != "" {
			c.inserted[o.str("uuid-name")] = o
		}
		if o.str("op") == "update" && o.str("table") == nbdb.LogicalSwitchPortTable {
			where := list(o["where"])
			if rc, ok := mapValue(o["row"], "options", requestedChassis); ok && rc == c.node && readyPoolOnly(where) {
				for _, cond := range where {
					if cl := list(cond); len(cl) == 3 && cl[0] == "name" && cl[1] == "==" {
						c.takeovers[fmt.Sprint(cl[2])] = true
					}
				}
			}
		}
	}
	for _, o := range c.ops {
		if o.str("op") != "mutate" || o.str("table") != nbdb.LogicalSwitchTable {
			continue
		}
		n := c.whereNetwork(list(o["where"]))
		for _, m := range list(o["mutations"]) {
			if mm := list(m); len(mm) == 3 && mm[0] == "ports" && mm[1] == "insert" {
				for _, u := range uuids(mm[2]) {
					if u[0] == "named-uuid" {
						c.portNet[u[1]] = n
						c.joins[u[1]]++
					}
				}
			}
		}
	}
}

// whereNetwork is the network a switch where selects by name or UUID, ""
// when it names none.
func (c *checker) whereNetwork(where []any) string {
	if n := whereEq(where, "name"); n != "" {
		return n
	}
	if u := whereUUID(where); u != "" && c.facts != nil {
		return c.facts.switches[u]
	}
	return ""
}

// whereEq returns the value of a condition [col, "==", string].
func whereEq(where []any, col string) string {
	for _, w := range where {
		if c := list(w); len(c) == 3 && c[0] == col && c[1] == "==" {
			if s, ok := c[2].(string); ok {
				return s
			}
		}
	}
	return ""
}

// whereUUID returns the UUID of a condition [_uuid, "==", ["uuid", U]].
func whereUUID(where []any) string {
	for _, w := range where {
		if c := list(w); len(c) == 3 && c[0] == "_uuid" && c[1] == "==" {
			if u := uuids(c[2]); len(u) == 1 && u[0][0] == "uuid" {
				return u[0][1]
			}
		}
	}
	return ""
}

// pin is a port of the node that decisions relied on, and the addresses
// they relied on it holding.
type pin struct {
	pf  *portFact
	ips []netip.Addr
	at  int
}

// holds pins a port of the node (pinGuards): it must still exist, be
// bound to the node and hold ips as the check saw them.
func (c *checker) holds(pf *portFact, at int, ips ...netip.Addr) {
	p := c.pins[pf.UUID]
	if p == nil {
		p = &pin{pf: pf, at: at}
		c.pins[pf.UUID] = p
		c.pinOrder = append(c.pinOrder, pf.UUID)
	}
	p.ips = append(p.ips, ips...)
}

// pinGuards adds a wait per pinned port: its addresses as read, and its
// dynamic_addresses only when an address relied on came from there
// (ovn-northd rewrites them once an ADD has pinned the port's addresses).
func (c *checker) pinGuards() {
	for _, u := range c.pinOrder {
		p := c.pins[u]
		pf := p.pf
		addrs := make([]any, 0, len(pf.Addresses))
		for _, a := range pf.Addresses {
			addrs = append(addrs, a)
		}
		cols, row := []any{"addresses"}, map[string]any{"addresses": []any{"set", addrs}}
		if !allIn(p.ips, addrsOf(pf.Addresses...)) {
			dyn := any([]any{"set", []any{}})
			if pf.Dynamic != nil {
				dyn = *pf.Dynamic
			}
			cols, row["dynamic_addresses"] = append(cols, "dynamic_addresses"), dyn
		}
		w := op{"op": "wait", "table": nbdb.LogicalSwitchPortTable, "timeout": 0,
			"where":   []any{[]any{"_uuid", "==", []any{"uuid", pf.UUID}}, []any{"options", "includes", []any{"map", []any{[]any{requestedChassis, c.node}}}}},
			"columns": cols, "until": "==", "rows": []any{row}}
		c.add(w, p.at, fmt.Sprintf("rely on port %s (%v), which changed meanwhile or is not bound to %s", pf.Name, p.ips, c.node))
	}
}

func (c *checker) checkOp(i int, o op) *Denied {
	kind, table := o.str("op"), o.str("table")
	switch kind {
	case "select", "wait", "comment", "assert", "abort":
		return nil
	case "insert", "update", "mutate", "delete":
	default:
		return c.deny(i, "run operation %q", kind)
	}
	where, _ := o["where"].([]any)
	switch table {
	case nbdb.LogicalSwitchPortTable:
		if d := c.portColumns(i, o); d != nil {
			return d
		}
		switch kind {
		case "insert":
			if rc, ok := mapValue(o["row"], "options", requestedChassis); !ok || rc != c.node {
				return c.deny(i, "create a port with requested-chassis %q", rc)
			}
			if n := c.joins[o.str("uuid-name")]; n > 1 {
				return c.deny(i, "add port %s to %d networks (a port joins one switch)", o.str("uuid-name"), n)
			}
			if d := c.portAddrs(i, o, c.portNet[o.str("uuid-name")], ""); d != nil {
				return d
			}
		case "update":
			takeover := false
			if row, _ := o["row"].(map[string]any); row != nil {
				if _, set := row["options"]; set {
					if rc, ok := mapValue(row, "options", requestedChassis); !ok || rc != c.node {
						return c.deny(i, "move a port to requested-chassis %q", rc)
					}
					// A ready pool port of another node, moved to this
					// one: the ADD that finds the subnet full takes an
					// address no container holds (ovn/port ClaimOps),
					// one port by name, changing its owner keys only.
					takeover = readyPoolOnly(where)
					if takeover && (whereEq(where, "name") == "" || !onlyColumns(o, "options", "external_ids")) {
						return c.deny(i, "take over pool ports selected by %v (one ready pool port, by name, its options and external_ids only)", where)
					}
				}
				if setsAddrs(row) {
					if d := c.updateAddrs(i, o, where); d != nil {
						return d
					}
				}
			}
			if !takeover {
				c.notOthers(where, i)
			}
		case "mutate":
			// external_ids only (portColumns): requested-chassis,
			// addresses and port_security change by update, checked.
			c.notOthers(where, i)
		case "delete":
			c.notOthers(where, i)
		}
		stamp(o, "node:"+c.node)
	case nbdb.LogicalSwitchTable:
		if kind != "mutate" {
			return c.deny(i, "%s a network (Logical_Switch)", verb(kind))
		}
		for _, m := range list(o["mutations"]) {
			mm := list(m)
			if len(mm) != 3 {
				return c.deny(i, "mutate a network with %v", m)
			}
			col, mut := fmt.Sprint(mm[0]), fmt.Sprint(mm[1])
			switch {
			case col == "ports" && mut == "insert":
				// Only ports created in this transaction (named UUIDs),
				// which the insert rule above binds to the node, and
				// only into the switch of an ovlmgr network named by
				// name or UUID (a where matching several switches, or a
				// router's or gateway's switch, would carry the port
				// where no address check looked).
				n := c.whereNetwork(where)
				if n == "" || c.facts == nil || c.facts.networks[n] == nil {
					return c.deny(i, "add ports to switches selected by %v (the switch of one ovlmgr network, by name or _uuid)", where)
				}
				for _, u := range uuids(mm[2]) {
					if u[0] != "named-uuid" {
						return c.deny(i, "add an existing port %s to a network", u[1])
					}
				}
			case col == "ports" && mut == "delete":
				for _, u := range uuids(mm[2]) {
					if u[0] != "uuid" {
						return c.deny(i, "remove port %v from a network", u)
					}
					c.notOthers(byUUID(u[1]), i)
				}
			case col == "dns_records" && mut == "insert":
				// The network's DNS rows, created in the transaction
				// (empty: see the DNS rule) for that network.
				n := c.whereNetwork(where)
				for _, u := range uuids(mm[2]) {
					if u[0] != "named-uuid" {
						return c.deny(i, "add an existing DNS row %s to a network", u[1])
					}
					ins := c.inserted[u[1]]
					if of, _ := mapValue(ins["row"], "external_ids", owner.KeyNetwork); ins.str("table") != nbdb.DNSTable || n == "" || of != n {
						return c.denyOwn(i, "add DNS row %s (of network %q) to the switch of network %q", u[1], of, n)
					}
				}
			case col == "load_balancer" && mut == "delete":
				// A published port's load balancer going with its port.
				for _, u := range uuids(mm[2]) {
					if u[0] != "uuid" {
						return c.deny(i, "remove load balancer %v from a network", u)
					}
					c.add(c.ownGuard(nbdb.LoadBalancerTable, byUUID(u[1])), i, fmt.Sprintf("remove a load balancer not marked as %s's", c.node))
				}
			case col == "external_ids" && hintsOnly(mm[2], ovnport.HintPrefix+c.node+"/"):
				// The node's own pool hints (ovn/port pool).
			case col == "external_ids" && mut == "delete" && c.hintsOfTakeovers(mm[2]):
				// Another node's pool hints, of the ports this
				// transaction moves to this node (the takeover above),
				// each guarded: the port is a ready pool port when the
				// transaction runs (a takeover matching nothing would
				// otherwise let any node's hints go).
				for _, name := range c.hintPorts(mm[2]) {
					c.readyPoolExists(name, i)
				}
			default:
				return c.deny(i, "change column %s of a network (Logical_Switch)", col)
			}
		}
	case nbdb.PortGroupTable:
		return c.portGroup(i, o, where)
	case nbdb.AddressSetTable:
		// No node path writes address sets (policies' CIDR sources are
		// the admin's; a network's addresses are its port group's).
		return c.denyOwn(i, "%s address set rows (Address_Set)", verb(kind))
	case nbdb.NBGlobalTable:
		// The health probe's round trip (ovn/health.RoundTrip, what
		// `ovn-nbctl --wait=sb sync` does): nb_cfg += 1 and nothing else.
		muts := list(o["mutations"])
		if kind != "mutate" || len(muts) != 1 || fmt.Sprint(list(muts[0])) != "[nb_cfg += 1]" {
			return c.deny(i, "%s rows of table %s", verb(kind), table)
		}
	case nbdb.DNSTable:
		return c.dns(i, o, where)
	case nbdb.LoadBalancerTable:
		switch kind {
		case "insert":
			if d := c.published(i, o); d != nil {
				return d
			}
		case "delete":
			c.add(c.ownGuard(table, where), i, fmt.Sprintf("remove a load balancer not marked as %s's", c.node))
		case "update":
			if d := c.backends(i, o, where); d != nil {
				return d
			}
		default:
			return c.deny(i, "%s a load balancer (service backends change by update, guarded by a wait on their current values)", verb(kind))
		}
		stamp(o, "node:"+c.node)
	case nbdb.LogicalRouterTable:
		// A published port's load balancer joins or leaves the router;
		// a floating IP of the node's container goes with it.
		if kind != "mutate" {
			return c.deny(i, "%s a router", verb(kind))
		}
		for _, m := range list(o["mutations"]) {
			mm := list(m)
			if len(mm) != 3 {
				return c.deny(i, "mutate a router with %v", m)
			}
			col, mut := fmt.Sprint(mm[0]), fmt.Sprint(mm[1])
			for _, u := range uuids(mm[2]) {
				switch {
				case col == "load_balancer" && mut == "insert" && u[0] == "named-uuid":
					if d := c.routerJoin(i, where, u[1]); d != nil {
						return d
					}
				case col == "load_balancer" && mut == "delete" && u[0] == "uuid":
					c.add(c.ownGuard(nbdb.LoadBalancerTable, byUUID(u[1])), i, fmt.Sprintf("remove a load balancer not marked as %s's", c.node))
				case col == "nat" && mut == "delete" && u[0] == "uuid":
					c.add(c.ownGuard(nbdb.NATTable, byUUID(u[1])), i, fmt.Sprintf("remove a NAT row not marked as %s's", c.node))
				default:
					return c.deny(i, "change column %s of a router", col)
				}
			}
		}
	case nbdb.NATTable:
		if kind != "delete" {
			return c.deny(i, "%s NAT rows", verb(kind))
		}
		c.add(c.ownGuard(table, where), i, fmt.Sprintf("remove a NAT row not marked as %s's", c.node))
	default:
		return c.deny(i, "%s rows of table %s", verb(kind), table)
	}
	return nil
}

func verb(kind string) string {
	switch kind {
	case "insert":
		return "create"
	case "update", "mutate":
		return "modify"
	}
	return kind
}

// onlyColumns reports whether an update's row or a mutate's mutations touch
// only cols.
func onlyColumns(o op, cols ...string) bool {
	ok := func(c string) bool {
		for _, x := range cols {
			if c == x {
				return true
			}
		}
		return false
	}
	if row, _ := o["row"].(map[string]any); row != nil {
		for c := range row {
			if !ok(c) {
				return false
			}
		}
	}
	for _, m := range list(o["mutations"]) {
		if mm := list(m); len(mm) != 3 || !ok(fmt.Sprint(mm[0])) {
			return false
		}
	}
	return true
}

// hintsOnly reports whether a mutation value (a map or a set of keys) only
// names pool hints whose keys start with prefix.
func hintsOnly(v any, prefix string) bool {
	l := list(v)
	var keys []string
	if k, ok := v.(string); ok {
		l = []any{"atom", k}
	}
	if len(l) != 2 {
		return false
	}
	switch l[0] {
	case "map":
		for _, kv := range list(l[1]) {
			if p := list(kv); len(p) == 2 {
				keys = append(keys, fmt.Sprint(p[0]))
			}
		}
	case "set":
		for _, k := range list(l[1]) {
			keys = append(keys, fmt.Sprint(k))
		}
	default:
		keys = []string{fmt.Sprint(l[1])}
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
	}
	return len(keys) > 0
}

// stamp sets KeyWrittenBy in an insert's or update's external_ids.
func stamp(o op, who string) {
	row, _ := o["row"].(map[string]any)
	if row == nil {
		return
	}
	kind := o.str("op")
	if _, set := row["external_ids"]; !set && kind != "insert" {
		return
	}
	var out []any
	if m := list(row["external_ids"]); len(m) == 2 && m[0] == "map" {
		for _, kv := range list(m[1]) {
			if p := list(kv); len(p) == 2 && p[0] != KeyWrittenBy {
				out = append(out, kv)
			}
		}
	}
	row["external_ids"] = []any{"map", append(out, []any{KeyWrittenBy, who})}
}

// mapValue returns key of the map column col of an OVSDB row.
func mapValue(row any, col, key string) (string, bool) {
	r, _ := row.(map[string]any)
	m := list(r[col])
	if len(m) != 2 || m[0] != "map" {
		return "", false
	}
	for _, kv := range list(m[1]) {
		if p := list(kv); len(p) == 2 && p[0] == key {
			s, ok := p[1].(string)
			return s, ok
		}
	}
	return "", false
}

// uuids returns the ["uuid"|"named-uuid", id] atoms of a set or atom.
func uuids(v any) [][2]string {
	l := list(v)
	if len(l) == 2 {
		if s, ok := l[0].(string); ok && (s == "uuid" || s == "named-uuid") {
			return [][2]string{{s, fmt.Sprint(l[1])}}
		}
		if l[0] == "set" {
			var out [][2]string
			for _, e := range list(l[1]) {
				out = append(out, uuids(e)...)
			}
			return out
		}
	}
	return [][2]string{{"?", fmt.Sprint(v)}}
}

func list(v any) []any { l, _ := v.([]any); return l }

// decodeOps reads a transact's params: the database name and the operations.
func decodeOps(params json.RawMessage) (string, []op, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(params, &raw); err != nil || len(raw) == 0 {
		return "", nil, fmt.Errorf("transact params: %v", err)
	}
	var db string
	if err := json.Unmarshal(raw[0], &db); err != nil {
		return "", nil, fmt.Errorf("transact database: %v", err)
	}
	ops := make([]op, 0, len(raw)-1)
	for _, r := range raw[1:] {
		d := json.NewDecoder(strings.NewReader(string(r)))
		d.UseNumber()
		var o op
		if err := d.Decode(&o); err != nil {
			return "", nil, fmt.Errorf("transact operation: %v", err)
		}
		ops = append(ops, o)
	}
	return db, ops, nil
}

// readyPoolOnly reports whether where selects only ready pool ports: one of
// its conditions is "external_ids includes" our owner, kind pool-port and
// state ready (what ovn/port ClaimOps writes).
func readyPoolOnly(where []any) bool {
	want := map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: ovnport.KindPool, ovnport.KeyPool: ovnport.PoolReady}
	for _, cond := range where {
		cl := list(cond)
		if len(cl) != 3 || cl[0] != "external_ids" || cl[1] != "includes" {
			continue
		}
		got := 0
		for k, v := range want {
			if mv, ok := mapValue(map[string]any{"m": cl[2]}, "m", k); ok && mv == v {
				got++
			}
		}
		if got == len(want) {
			return true
		}
	}
	return false
}

// hintsOfTakeovers reports whether a key-deleting mutation value names only
// pool hints (of any node) of ports the transaction takes over.
func (c *checker) hintsOfTakeovers(v any) bool {
	if !hintsOnly(v, ovnport.HintPrefix) {
		return false
	}
	names := c.hintPorts(v)
	for _, n := range names {
		if !c.takeovers[n] {
			return false
		}
	}
	return len(names) > 0
}

// hintPorts returns the port names of the pool hint keys a key-deleting
// mutation value names (nil when it is not a set of hint keys).
func (c *checker) hintPorts(v any) []string {
	l := list(v)
	keys := []string{}
	switch {
	case len(l) == 2 && l[0] == "set":
		for _, k := range list(l[1]) {
			keys = append(keys, fmt.Sprint(k))
		}
	case len(l) == 0:
		keys = append(keys, fmt.Sprint(v))
	default:
		return nil
	}
	var names []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, ovnport.HintPrefix)
		i := strings.Index(rest, "/")
		if i < 0 {
			return nil
		}
		names = append(names, rest[i+1:])
	}
	return names
}

// readyPoolExists guards operation at: port name is a ready pool port
// (of any node) when the transaction runs, once per port.
func (c *checker) readyPoolExists(name string, at int) {
	if c.poolNamed == nil {
		c.poolNamed = map[string]bool{}
	}
	if c.poolNamed[name] {
		return
	}
	c.poolNamed[name] = true
	sel := []any{"map", []any{[]any{owner.KeyOwner, owner.Owner}, []any{owner.KeyKind, ovnport.KindPool}, []any{ovnport.KeyPool, ovnport.PoolReady}}}
	w := op{"op": "wait", "table": nbdb.LogicalSwitchPortTable, "timeout": 0,
		"where":   []any{[]any{"name", "==", name}, []any{"external_ids", "includes", sel}},
		"columns": []any{"name"}, "until": "!=", "rows": []any{}}
	c.add(w, at, fmt.Sprintf("remove the pool hint of %s, which is no ready pool port", name))
}
