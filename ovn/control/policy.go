package control

import (
	"encoding/json"
	"fmt"
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

// guard is a wait that protects operation at of a transaction.
type guard struct {
	op op
	at int
}

// check returns the guards to run before ops (they fail when an operation
// would touch another node's port) or why ops are refused. It stamps
// inserted rows with KeyWrittenBy.
func (p nodePolicy) check(ops []op) (guards []guard, err *Denied) {
	deny := func(i int, format string, args ...any) (_ []guard, _ *Denied) {
		return nil, &Denied{Index: i, Reason: fmt.Sprintf("ovlmgr control: node %s may not ", p.node) + fmt.Sprintf(format, args...) +
			fmt.Sprintf(" (a node writes only container ports bound to itself, requested-chassis=%s, on existing networks)", p.node)}
	}
	for i, o := range ops {
		kind, table := o.str("op"), o.str("table")
		switch kind {
		case "select", "wait", "comment", "assert", "abort":
			continue
		case "insert", "update", "mutate", "delete":
		default:
			return deny(i, "run operation %q", kind)
		}
		where, _ := o["where"].([]any)
		switch table {
		case nbdb.LogicalSwitchPortTable:
			switch kind {
			case "insert":
				if rc, ok := mapValue(o["row"], "options", requestedChassis); !ok || rc != p.node {
					return deny(i, "create a port with requested-chassis %q", rc)
				}
			case "update":
				if row, _ := o["row"].(map[string]any); row != nil {
					if _, set := row["options"]; set {
						if rc, ok := mapValue(row, "options", requestedChassis); !ok || rc != p.node {
							return deny(i, "move a port to requested-chassis %q", rc)
						}
					}
				}
				guards = append(guards, guard{p.guard(where), i})
			case "mutate":
				for _, m := range list(o["mutations"]) {
					mm := list(m)
					if len(mm) == 3 && mm[0] == "options" && strings.Contains(fmt.Sprint(mm[2]), requestedChassis) {
						return deny(i, "change a port's requested-chassis")
					}
				}
				guards = append(guards, guard{p.guard(where), i})
			case "delete":
				guards = append(guards, guard{p.guard(where), i})
			}
			stamp(o, "node:"+p.node)
		case nbdb.LogicalSwitchTable:
			if kind != "mutate" {
				return deny(i, "%s a network (Logical_Switch)", verb(kind))
			}
			for _, m := range list(o["mutations"]) {
				mm := list(m)
				if len(mm) != 3 {
					return deny(i, "mutate a network with %v", m)
				}
				col, mut := fmt.Sprint(mm[0]), fmt.Sprint(mm[1])
				switch {
				case col == "ports" && mut == "insert":
					// Only ports created in this transaction (named UUIDs),
					// which the insert rule above binds to the node.
					for _, u := range uuids(mm[2]) {
						if u[0] != "named-uuid" {
							return deny(i, "add an existing port %s to a network", u[1])
						}
					}
				case col == "ports" && mut == "delete":
					for _, u := range uuids(mm[2]) {
						if u[0] != "uuid" {
							return deny(i, "remove port %v from a network", u)
						}
						guards = append(guards, guard{p.guard([]any{[]any{"_uuid", "==", []any{"uuid", u[1]}}}), i})
					}
				case col == "dns_records" && mut == "insert":
					// The network's DNS row, created by the first ADD.
					for _, u := range uuids(mm[2]) {
						if u[0] != "named-uuid" {
							return deny(i, "add an existing DNS row %s to a network", u[1])
						}
					}
				case col == "load_balancer" && mut == "delete":
					// A published port's load balancer going with its port.
					for _, u := range uuids(mm[2]) {
						if u[0] != "uuid" {
							return deny(i, "remove load balancer %v from a network", u)
						}
						guards = append(guards, guard{p.ownGuard(nbdb.LoadBalancerTable, byUUID(u[1])), i})
					}
				case col == "external_ids" && hintsOnly(mm[2], p.node):
					// The node's own pool hints (ovn/port pool).
				default:
					return deny(i, "change column %s of a network (Logical_Switch)", col)
				}
			}
		case nbdb.PortGroupTable, nbdb.AddressSetTable:
			// Policy membership: a new port joins its network's group, a
			// deleted one leaves it.
			if kind != "mutate" {
				return deny(i, "%s rows of table %s", verb(kind), table)
			}
			for _, m := range list(o["mutations"]) {
				mm := list(m)
				if len(mm) != 3 {
					return deny(i, "mutate %s with %v", table, m)
				}
				col, mut := fmt.Sprint(mm[0]), fmt.Sprint(mm[1])
				switch {
				case table == nbdb.PortGroupTable && col == "ports" && mut == "insert":
					for _, u := range uuids(mm[2]) {
						if u[0] != "named-uuid" {
							guards = append(guards, guard{p.guard([]any{[]any{"_uuid", "==", []any{"uuid", u[1]}}}), i})
						}
					}
				case table == nbdb.PortGroupTable && col == "ports" && mut == "delete":
					for _, u := range uuids(mm[2]) {
						if u[0] != "uuid" {
							return deny(i, "remove port %v from a port group", u)
						}
						guards = append(guards, guard{p.guard([]any{[]any{"_uuid", "==", []any{"uuid", u[1]}}}), i})
					}
				case table == nbdb.AddressSetTable && col == "addresses":
				default:
					return deny(i, "change column %s of %s", col, table)
				}
			}
		case nbdb.NBGlobalTable:
			// The health probe's round trip (ovn/health.RoundTrip, what
			// `ovn-nbctl --wait=sb sync` does): nb_cfg += 1 and nothing else.
			muts := list(o["mutations"])
			if kind != "mutate" || len(muts) != 1 || fmt.Sprint(list(muts[0])) != "[nb_cfg += 1]" {
				return deny(i, "%s rows of table %s", verb(kind), table)
			}
		case nbdb.DNSTable:
			// Container names: records of the network's DNS row (created
			// by the first ADD on the network).
			if (kind != "mutate" && kind != "insert" && kind != "update") || !onlyColumns(o, "records", "external_ids") {
				return deny(i, "%s DNS rows beyond container records", verb(kind))
			}
			stamp(o, "node:"+p.node)
		case nbdb.LoadBalancerTable:
			switch kind {
			case "insert":
				// A published port (CNI portMappings) of the node's own
				// container port.
				kindOf, _ := mapValue(o["row"], "external_ids", owner.KeyKind)
				nodeOf, _ := mapValue(o["row"], "external_ids", owner.KeyNode)
				port, _ := mapValue(o["row"], "external_ids", owner.KeyPort)
				if kindOf != owner.KindPublished || nodeOf != p.node || port == "" {
					return deny(i, "create a load balancer other than a published port of its own container")
				}
				guards = append(guards, guard{p.guard([]any{[]any{"name", "==", port}}), i})
			case "delete":
				guards = append(guards, guard{p.ownGuard(table, where), i})
			default:
				// Service backends follow containers (ovn/service).
				if !onlyColumns(o, "vips", "ip_port_mappings", "external_ids") {
					return deny(i, "change a load balancer beyond its backends")
				}
			}
			stamp(o, "node:"+p.node)
		case nbdb.LogicalRouterTable:
			// A published port's load balancer joins or leaves the router;
			// a floating IP of the node's container goes with it.
			if kind != "mutate" {
				return deny(i, "%s a router", verb(kind))
			}
			for _, m := range list(o["mutations"]) {
				mm := list(m)
				if len(mm) != 3 {
					return deny(i, "mutate a router with %v", m)
				}
				col, mut := fmt.Sprint(mm[0]), fmt.Sprint(mm[1])
				for _, u := range uuids(mm[2]) {
					switch {
					case col == "load_balancer" && mut == "insert" && u[0] == "named-uuid":
					case col == "load_balancer" && mut == "delete" && u[0] == "uuid":
						guards = append(guards, guard{p.ownGuard(nbdb.LoadBalancerTable, byUUID(u[1])), i})
					case col == "nat" && mut == "delete" && u[0] == "uuid":
						guards = append(guards, guard{p.ownGuard(nbdb.NATTable, byUUID(u[1])), i})
					default:
						return deny(i, "change column %s of a router", col)
					}
				}
			}
		case nbdb.NATTable:
			if kind != "delete" {
				return deny(i, "%s NAT rows", verb(kind))
			}
			guards = append(guards, guard{p.ownGuard(table, where), i})
		default:
			return deny(i, "%s rows of table %s", verb(kind), table)
		}
	}
	return guards, nil
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
// names the node's pool hints.
func hintsOnly(v any, node string) bool {
	prefix := ovnport.HintPrefix + node + "/"
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
