package control

import (
	"encoding/json"
	"fmt"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"net/netip"
	"strings"
	"testing"
)

func ops(t *testing.T, js string) []op {
	t.Helper()
	_, o, err := decodeOps(json.RawMessage(`["OVN_Northbound",` + js + `]`))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestNodePolicy: what node n1 may write, what it may not, and the guards
// that keep writes to existing ports on n1's ports.
func TestNodePolicy(t *testing.T) {
	p := nodePolicy{node: "n1", facts: fixture()}
	lsp := func(rc string) string {
		return `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"p","row":{"name":"x","options":["map",[["requested-chassis","` + rc + `"]]]}}`
	}
	for _, tc := range []struct {
		name   string
		ops    string
		deny   string // substring of the reason; "" = allowed
		guards int
	}{
		{"own port and its switch", lsp("n1") + `,{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","p"]]]}`, "", 0},
		{"port for n2", lsp("n2"), `requested-chassis "n2"`, 0},
		{"port without chassis", `{"op":"insert","table":"Logical_Switch_Port","row":{"name":"x"}}`, "requested-chassis", 0},
		{"reads", `{"op":"select","table":"NB_Global","where":[]}`, "", 0},
		{"network create", `{"op":"insert","table":"Logical_Switch","row":{"name":"evil"}}`, "Logical_Switch", 0},
		{"NB_Global", `{"op":"update","table":"NB_Global","where":[],"row":{"options":["map",[]]}}`, "NB_Global", 0},
		{"ACL", `{"op":"delete","table":"ACL","where":[]}`, "ACL", 0},
		{"switch rename", `{"op":"update","table":"Logical_Switch","where":[],"row":{"name":"x"}}`, "Logical_Switch", 0},
		{"adopt an existing port", `{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["uuid","0000"]]]}`, "existing port", 0},
		{"port delete is guarded", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["ports","delete",["set",[["uuid","a"],["uuid","b"]]]]]}`, "", 2},
		{"port update is guarded", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","x"]],"row":{"external_ids":["map",[["a","b"]]]}}`, "", 1},
		{"port moved to n2", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","x"]],"row":{"options":["map",[["requested-chassis","n2"]]]}}`, "move a port", 0},
		{"chassis mutated", `{"op":"mutate","table":"Logical_Switch_Port","where":[],"mutations":[["options","insert",["map",[["requested-chassis","n2"]]]]]}`, "requested-chassis", 0},
		{"own pool hint", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete","ovlmgr.io/pool/n1/ovl-1"]]}`, "", 0},
		{"other node's pool hint", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete","ovlmgr.io/pool/n2/ovl-1"]]}`, "external_ids", 0},
		// The subnet is full: n1 claims a ready pool port of n2 (ovn/port ClaimOps), dropping n2's hint of that port only.
		{"other node's ready pool port taken over", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","ovl-1"],["external_ids","includes",["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]]],"row":{"options":["map",[["requested-chassis","n1"]]]}}` +
			`,{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete",["set",["ovlmgr.io/pool/n2/ovl-1"]]]]}`, "", 1},
		{"other node's pool hint of another port", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","ovl-1"],["external_ids","includes",["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]]],"row":{"options":["map",[["requested-chassis","n1"]]]}}` +
			`,{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete","ovlmgr.io/pool/n2/ovl-2"]]}`, "external_ids", 0},
		{"port moved without the pool condition is guarded", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","ovl-1"]],"row":{"options":["map",[["requested-chassis","n1"]]]}}`, "", 1},
		{"nb_cfg bump", `{"op":"mutate","table":"NB_Global","where":[],"mutations":[["nb_cfg","+=",1]]}`, "", 0},
		{"nb_cfg set", `{"op":"mutate","table":"NB_Global","where":[],"mutations":[["nb_cfg","+=",1],["options","insert",["map",[["a","b"]]]]]}`, "NB_Global", 0},
		{"router", `{"op":"insert","table":"Logical_Router","row":{}}`, "a router", 0},
		{"router rename", `{"op":"update","table":"Logical_Router","where":[],"row":{"name":"x"}}`, "a router", 0},
		{"router static route", `{"op":"mutate","table":"Logical_Router","where":[],"mutations":[["static_routes","insert",["named-uuid","r"]]]}`, "static_routes", 0},
		{"own published port", published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80") +
			`,{"op":"mutate","table":"Logical_Router","where":[["_uuid","==",["uuid","r1"]]],"mutations":[["load_balancer","insert",["named-uuid","lb"]]]}`, "", 2},
		{"published port of n2", `{"op":"insert","table":"Load_Balancer","row":{"external_ids":["map",[["ovlmgr.io/kind","published-port"],["ovlmgr.io/node","n2"],["ovlmgr.io/port","ovl-1"]]]}}`, "published port", 0},
		{"service load balancer", `{"op":"insert","table":"Load_Balancer","row":{"external_ids":["map",[["ovlmgr.io/kind","service"]]]}}`, "published port", 0},
		{"published port removal is guarded", `{"op":"mutate","table":"Logical_Router","where":[],"mutations":[["load_balancer","delete",["uuid","a"]]]},` +
			`{"op":"delete","table":"Load_Balancer","where":[["_uuid","==",["uuid","a"]]]}`, "", 2},
		{"floating IP removal is guarded", `{"op":"mutate","table":"Logical_Router","where":[],"mutations":[["nat","delete",["uuid","a"]]]}`, "", 1},
		{"floating IP create", `{"op":"insert","table":"NAT","row":{}}`, "NAT", 0},
	} {
		o := ops(t, tc.ops)
		g, d := p.check(o)
		switch {
		case tc.deny == "" && d != nil:
			t.Errorf("%s: refused: %s", tc.name, d.Reason)
		case tc.deny != "" && d == nil:
			t.Errorf("%s: allowed, want refused (%s)", tc.name, tc.deny)
		case d != nil && !strings.Contains(d.Reason, tc.deny):
			t.Errorf("%s: reason %q lacks %q", tc.name, d.Reason, tc.deny)
		case d == nil && len(g) != tc.guards:
			t.Errorf("%s: %d guards, want %d", tc.name, len(g), tc.guards)
		}
	}
	o := ops(t, lsp("n1"))
	if _, d := p.check(o); d != nil {
		t.Fatal(d)
	}
	if v, _ := mapValue(o[0]["row"], "external_ids", KeyWrittenBy); v != "node:n1" {
		t.Errorf("inserted port written-by %q, want node:n1", v)
	}
}

// fixture: networks web (router r1) and db (router r2); on web, n1's port
// p1 (198.18.1.10) and n2's p2 (198.18.1.11); on db, n1's p3
// (198.18.2.10); their policy port groups.
func fixture() *facts {
	own := map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "network"}
	lsp := func(u, rc, addr string) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: u, Name: u, Addresses: []string{addr}, Options: map[string]string{"requested-chassis": rc}}
	}
	rp := func(u, lrp string) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: u, Name: u, Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": lrp}}
	}
	pg := func(net string) *nbdb.PortGroup {
		return &nbdb.PortGroup{Name: "ovl_" + net, ExternalIDs: map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "port-group", "ovlmgr.io/network": net}}
	}
	return build(
		[]*nbdb.LogicalSwitchPort{lsp("p1", "n1", "0a:58:c6:12:01:0a 198.18.1.10"), lsp("p2", "n2", "0a:58:c6:12:01:0b 198.18.1.11"),
			lsp("p3", "n1", "0a:58:c6:12:02:0a 198.18.2.10"), rp("rp1", "lrp-web"), rp("rp2", "lrp-db")},
		[]*nbdb.LogicalSwitch{{UUID: "sw-web", Name: "web", Ports: []string{"p1", "p2", "rp1"},
			ExternalIDs: map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "network", "ovlmgr.io/gateway": "198.18.1.1"}},
			{UUID: "sw-db", Name: "db", Ports: []string{"p3", "rp2"}, ExternalIDs: own}, {UUID: "sw-ext", Name: "ext"}},
		[]*nbdb.PortGroup{pg("web"), pg("db")},
		[]*nbdb.LogicalRouter{{UUID: "r1", Name: "t1", Ports: []string{"lrp1", "gw1"}}, {UUID: "r2", Name: "t2", Ports: []string{"lrp2", "gw2"}}},
		[]*nbdb.LogicalRouterPort{{UUID: "lrp1", Name: "lrp-web", MAC: "02:00:00:00:01:01", Networks: []string{"198.18.1.1/24"}}, {UUID: "gw1", Name: "t1:gw", Networks: []string{"198.19.0.5/24"}},
			{UUID: "lrp2", Name: "lrp-db", Networks: []string{"198.18.2.1/24"}}, {UUID: "gw2", Name: "t2:gw", Networks: []string{"198.19.0.6/24"}}})
}

// published is a published port's load balancer insert (uuid-name lb).
func published(node, port, network, router, vip, backend string) string {
	return `{"op":"insert","table":"Load_Balancer","uuid-name":"lb","row":{"name":"published:` + vip + `/tcp","protocol":"tcp","vips":["map",[["` + vip + `","` + backend + `"]]],"external_ids":["map",[` +
		`["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","published-port"],["ovlmgr.io/node","` + node + `"],["ovlmgr.io/port","` + port + `"],` +
		`["ovlmgr.io/network","` + network + `"],["ovlmgr.io/router","` + router + `"]]]}}`
}

// TestNodePolicyOwn: names, service backends, policy groups and published
// ports only for the node's own ports, on their own network.
func TestNodePolicyOwn(t *testing.T) {
	p := nodePolicy{node: "n1", facts: fixture()}
	dnsWhere := func(net string, shard int) string {
		return fmt.Sprintf(`[["external_ids","includes",["map",[["ovlmgr.io/kind","dns"],["ovlmgr.io/network","%s"],["ovlmgr.io/dns-shard","%d"]]]]]`, net, shard)
	}
	// recs mutates the records of the row of the shard of val's first key
	// (as dns.AddOps does: one operation a shard).
	recs := func(net, mut, val string) string {
		var v []any
		if err := json.Unmarshal([]byte(val), &v); err != nil || len(v) != 2 {
			t.Fatalf("records %s: %v", val, err)
		}
		first := list(v[1])[0]
		if kv := list(first); len(kv) == 2 {
			first = kv[0]
		}
		return `{"op":"mutate","table":"DNS","where":` + dnsWhere(net, dns.ShardOf(fmt.Sprint(first))) + `,"mutations":[["records","` + mut + `",` + val + `]]}`
	}
	svc := `["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","service"],["ovlmgr.io/name","api"],["ovlmgr.io/network","web"]]]`
	lbUpdate := func(oldVIPs, newVIPs string) string {
		return `{"op":"wait","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"timeout":0,"until":"==","columns":["vips","external_ids","ip_port_mappings"],` +
			`"rows":[{"vips":["map",[["198.19.3.1:80","` + oldVIPs + `"]]],"external_ids":` + svc + `,"ip_port_mappings":["map",[]]}]},` +
			`{"op":"update","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"row":{"vips":["map",[` + newVIPs + `]],"external_ids":` + svc + `,"ip_port_mappings":["map",[]]}}`
	}
	newPort := `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","options":["map",[["requested-chassis","n1"]]]}},` +
		`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]},`
	join := func(pg, port string) string {
		return `{"op":"mutate","table":"Port_Group","where":[["name","==","` + pg + `"],["external_ids","includes",["map",[["ovlmgr.io/kind","port-group"]]]]],"mutations":[["ports","insert",` + port + `]]}`
	}
	portOn := func(addr string) string {
		return `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"0a:58:c6:12:01:99 ` + addr + `","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`
	}
	lrJoin := func(r string) string {
		return `,{"op":"mutate","table":"Logical_Router","where":[["_uuid","==",["uuid","` + r + `"]]],"mutations":[["load_balancer","insert",["named-uuid","lb"]]]}`
	}
	for _, tc := range []struct {
		name   string
		ops    string
		deny   string
		guards int
	}{
		{"own name and PTR", recs("web", "insert", `["map",[["a.web.ovl","198.18.1.10"]]]`) + "," + recs("web", "insert", `["map",[["10.1.18.198.in-addr.arpa","a.web.ovl"]]]`), "", 1},
		// A record goes into its shard's row only, in lower case: in another row it would stand beside the name another
		// container holds (allowed before).
		{"own name into another shard's row", strings.Replace(recs("web", "insert", `["map",[["a.web.ovl","198.18.1.10"]]]`),
			fmt.Sprintf(`"ovlmgr.io/dns-shard","%d"`, dns.ShardOf("a.web.ovl")), fmt.Sprintf(`"ovlmgr.io/dns-shard","%d"`, (dns.ShardOf("a.web.ovl")+1)%dns.Shards), 1), "belongs", 0},
		{"own name in upper case", recs("web", "insert", `["map",[["A.web.ovl","198.18.1.10"]]]`), "lower case", 0},
		{"name for n2's address", recs("web", "insert", `["map",[["evil.web.ovl","198.18.1.11"]]]`), "198.18.1.11 is not the address", 0},
		{"own address, other network's rows", recs("db", "insert", `["map",[["a.db.ovl","198.18.1.10"]]]`), "198.18.1.10 is not the address", 0},
		{"own address, name out of zone", recs("web", "insert", `["map",[["a.db.ovl","198.18.1.10"]]]`), "not in zone", 0},
		{"PTR of n2's address", recs("web", "insert", `["map",[["11.1.18.198.in-addr.arpa","evil.web.ovl"]]]`), "198.18.1.11", 0},
		{"remove n2's name", recs("web", "delete", `["map",[["b.web.ovl","198.18.1.11"]]]`), "port p2 of node n2", 0},
		// A ready pool port of n2 taken over with its name (the subnet is full): one guard that it is still a ready pool port.
		{"name for a pool port taken over", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","p2"],["external_ids","includes",["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]]],"row":{"options":["map",[["requested-chassis","n1"]]]}},` +
			recs("web", "insert", `["map",[["b.web.ovl","198.18.1.11"]]]`) + "," + recs("web", "insert", `["map",[["11.1.18.198.in-addr.arpa","b.web.ovl"]]]`), "", 1},
		{"name for n2's port moved without the pool condition", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","p2"]],"row":{"options":["map",[["requested-chassis","n1"]]]}},` +
			recs("web", "insert", `["map",[["b.web.ovl","198.18.1.11"]]]`), "198.18.1.11 is not the address", 0},
		{"remove own name", recs("web", "delete", `["map",[["a.web.ovl","198.18.1.10"]]]`), "", 1},
		{"remove a stale name", recs("web", "delete", `["map",[["old.web.ovl","198.18.1.99"]]]`), "", 0},
		{"remove a name by key", recs("web", "delete", `["set",["b.web.ovl"]]`), "whatever its value", 0},
		{"remove own stale PTR by key", recs("web", "delete", `["set",["10.1.18.198.in-addr.arpa"]]`), "", 1},
		{"records of rows not chosen by network", `{"op":"mutate","table":"DNS","where":[],"mutations":[["records","insert",["map",[["a.web.ovl","198.18.1.10"]]]]]}`, "selected by their network", 0},
		{"DNS row with records", `{"op":"insert","table":"DNS","row":{"records":["map",[["b.web.ovl","198.18.1.10"]]]}}`, "with records", 0},
		{"empty DNS row", `{"op":"insert","table":"DNS","row":{"external_ids":["map",[["ovlmgr.io/network","web"],["ovlmgr.io/dns-shard","3"]]]}}`, "", 1},
		{"DNS row of no shard", `{"op":"insert","table":"DNS","row":{"external_ids":["map",[["ovlmgr.io/network","web"],["ovlmgr.io/dns-shard","16"]]]}}`, "shards 0-15", 0},
		{"new DNS row on its network's switch", `{"op":"insert","table":"DNS","uuid-name":"d","row":{"external_ids":["map",[["ovlmgr.io/network","web"],["ovlmgr.io/dns-shard","3"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["_uuid","==",["uuid","sw-web"]]],"mutations":[["dns_records","insert",["named-uuid","d"]]]}`, "", 1},
		{"new DNS row on another network's switch", `{"op":"insert","table":"DNS","uuid-name":"d","row":{"external_ids":["map",[["ovlmgr.io/network","web"],["ovlmgr.io/dns-shard","3"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","db"]],"mutations":[["dns_records","insert",["named-uuid","d"]]]}`, "to the switch of network \"db\"", 0},
		{"DNS records replaced", `{"op":"update","table":"DNS","where":[],"row":{"records":["map",[]]}}`, "DNS rows", 0},
		{"own backend", lbUpdate("", `["198.19.3.1:80","198.18.1.10:80"]`), "", 1},
		{"backend of n2's address", lbUpdate("", `["198.19.3.1:80","198.18.1.11:80"]`), "198.18.1.11 is not the address", 0},
		{"own address of another network", lbUpdate("", `["198.19.3.1:80","198.18.2.10:80"]`), "198.18.2.10 is not the address", 0},
		{"remove n2's backend", lbUpdate("198.18.1.11:80", `["198.19.3.1:80",""]`), "port p2 of node n2", 0},
		{"replace n2's backend", lbUpdate("198.18.1.11:80", `["198.19.3.1:80","198.18.1.10:80"]`), "port p2 of node n2", 0},
		{"new VIP", lbUpdate("", `["198.19.3.1:80",""],["198.19.3.2:80","198.18.1.10:80"]`), "VIPs", 0},
		{"backends without a wait", `{"op":"update","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"row":{"vips":["map",[["198.19.3.1:80","198.18.1.10:80"]]]}}`, "without a wait", 0},
		{"backends mutated", `{"op":"mutate","table":"Load_Balancer","where":[],"mutations":[["vips","insert",["map",[["198.19.3.9:80","198.18.1.10:80"]]]]]}`, "load balancer", 0},
		{"protocol", `{"op":"update","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"row":{"protocol":"udp"}}`, "beyond its backends", 0},
		{"new port joins its network's group", newPort + join("ovl_web", `["named-uuid","np"]`), "", 0},
		{"new port joins another network's group", newPort + join("ovl_db", `["named-uuid","np"]`), "does not join that network", 0},
		{"own port joins its group", join("ovl_web", `["uuid","p1"]`), "", 1},
		{"own port joins another network's group", join("ovl_web", `["uuid","p3"]`), "not a port bound to n1 on network \"web\"", 0},
		{"n2's port joins", join("ovl_web", `["uuid","p2"]`), "not a port bound to n1", 0},
		{"group of no network", join("evil", `["uuid","p1"]`), "no network's policy group", 0},
		{"address set", `{"op":"mutate","table":"Address_Set","where":[],"mutations":[["addresses","insert","198.18.1.10"]]}`, "Address_Set", 0},
		{"new port, free address", portOn("198.18.1.20"), "", 0},
		{"new port with n2's address", portOn("198.18.1.11"), "held by port p2 of node n2", 0},
		{"new port with the gateway's address", portOn("198.18.1.1"), "gateway address", 0},
		// Holes a node could use before (each allowed then): addresses OVN reads
		// otherwise than Go, a MAC of another port, port types and options
		// beyond a container port's, switches chosen by other conditions.
		{"new port with n2's address in leading zeros", portOn("198.18.1.011"), "canonical form", 0},
		{"new port with n2's address IPv4-mapped", portOn("::ffff:198.18.1.11"), "canonical form", 0},
		{"port security over a subnet", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","port_security":"0a:58:c6:12:01:99 198.18.1.0/24","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "no prefix", 0},
		{"port addresses unknown", `{"op":"update","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","p1"]]],"row":{"addresses":["set",["0a:58:c6:12:01:0a 198.18.1.10","unknown"]]}}`, "one entry", 0},
		{"new port with n2's MAC", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"0a:58:c6:12:01:0b 198.18.1.50","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "held by port p2", 0},
		{"new port with n2's MAC, MAC dynamic", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"0A:58:C6:12:01:0B dynamic","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "held by port p2", 0},
		{"new port with a router port's MAC", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"02:00:00:00:01:01 198.18.1.50","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "router t1", 0},
		{"localnet port", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","type":"localnet","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "columns beyond", 0},
		{"port option", `{"op":"update","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","p1"]]],"row":{"options":["map",[["requested-chassis","n1"],["network_name","physnet"]]]}}`, "port option \"network_name\"", 0},
		{"new port into switches by includes", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"0a:58:c6:12:01:99 198.18.1.11","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","includes","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "switches selected by", 0},
		{"new port into every other switch", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","!=","x"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "switches selected by", 0},
		{"new port into two networks", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","addresses":"0a:58:c6:12:01:99 198.18.1.11","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","np"]]]},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","db"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "2 networks", 0},
		{"new port into a switch of no network", `{"op":"insert","table":"Logical_Switch_Port","uuid-name":"np","row":{"name":"x","options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","ext"]],"mutations":[["ports","insert",["named-uuid","np"]]]}`, "switches selected by", 0},
		{"pool ports taken over without a name", `{"op":"update","table":"Logical_Switch_Port","where":[["external_ids","includes",["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]]],"row":{"options":["map",[["requested-chassis","n1"]]]}}`, "take over pool ports", 0},
		// A second review's holes (each allowed before).
		{"own port's MAC changed to a router port's, no address", `{"op":"update","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","p1"]]],"row":{"addresses":"02:00:00:00:01:01 dynamic"}}`, "router t1", 0},
		{"own port's MAC changed to n2's, no address", `{"op":"update","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","p1"]]],"row":{"addresses":"0a:58:c6:12:01:0b dynamic"}}`, "held by port p2", 0},
		{"VIPs merged into one key", `{"op":"wait","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"timeout":0,"until":"==","columns":["vips","external_ids"],` +
			`"rows":[{"vips":["map",[["198.19.3.1:80","198.18.1.11:80"],["198.19.3.2:80",""]]],"external_ids":` + svc + `}]},` +
			`{"op":"update","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"row":{"vips":["map",[["198.19.3.1:80 198.19.3.2:80",""]]]}}`, "change the VIPs", 0},
		{"published on the network's gateway", published("n1", "p1", "web", "t1", "198.18.1.1:53", "198.18.1.10:53") + lrJoin("r1"), "not an external address", 0},
		// This one crashed the service (a nil port).
		{"health check mapping of a pool port taken over", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","p2"],["external_ids","includes",["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]]],"row":{"options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"wait","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"timeout":0,"until":"==","columns":["external_ids","ip_port_mappings"],"rows":[{"external_ids":` + svc + `,"ip_port_mappings":["map",[]]}]},` +
			`{"op":"update","table":"Load_Balancer","where":[["_uuid","==",["uuid","lb1"]]],"row":{"ip_port_mappings":["map",[["198.18.1.11","evil:198.18.1.1"]]]}}`, "not its port p2", 0},
		{"own port pinned", `{"op":"update","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","p1"]]],"row":{"addresses":"0a:58:c6:12:01:0a 198.18.1.10","port_security":"0a:58:c6:12:01:0a 198.18.1.10"}}`, "", 1},
		{"own port takes n2's address", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","p1"]],"row":{"port_security":"0a:58:c6:12:01:0a 198.18.1.11"}}`, "held by port p2", 0},
		{"port addresses mutated", `{"op":"mutate","table":"Logical_Switch_Port","where":[["name","==","p1"]],"mutations":[["addresses","insert","0a:58:c6:12:01:0a 198.18.1.11"]]}`, "beyond external_ids", 0},
		{"published on own router", published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80") + lrJoin("r1"), "", 2},
		// One load balancer per address, port and protocol: a second under another name, or one with two VIPs, would
		// answer on a published port of another container (allowed before).
		{"published under another name", strings.Replace(published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80"), `"published:198.19.0.5:8080/tcp"`, `"mine"`, 1) + lrJoin("r1"), "named \"mine\"", 0},
		{"published with two VIPs", strings.Replace(published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80"), `["198.19.0.5:8080","198.18.1.10:80"]`, `["198.19.0.5:8080","198.18.1.10:80"],["198.19.0.5:8081","198.18.1.10:80"]`, 1) + lrJoin("r1"), "2 VIPs", 0},
		{"published on another router", published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80") + lrJoin("r2"), "published on router", 0},
		{"published for another router", published("n1", "p1", "web", "t2", "198.19.0.6:8080", "198.18.1.10:80") + lrJoin("r2"), "not attached", 0},
		{"published on a foreign address", published("n1", "p1", "web", "t1", "198.19.0.6:8080", "198.18.1.10:80") + lrJoin("r1"), "not an external address of router", 0},
		{"published to n2's address", published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.11:80") + lrJoin("r1"), "not the address of port p1", 0},
		{"published for n2's port", published("n1", "p2", "web", "t1", "198.19.0.5:8080", "198.18.1.11:80") + lrJoin("r1"), "not a port bound to n1", 0},
	} {
		g, d := p.check(ops(t, tc.ops))
		switch {
		case tc.deny == "" && d != nil:
			t.Errorf("%s: refused: %s", tc.name, d.Reason)
		case tc.deny != "" && d == nil:
			t.Errorf("%s: allowed, want refused (%s)", tc.name, tc.deny)
		case d != nil && !strings.Contains(d.Reason, tc.deny):
			t.Errorf("%s: reason %q lacks %q", tc.name, d.Reason, tc.deny)
		case d == nil && len(g) != tc.guards:
			t.Errorf("%s: %d guards, want %d: %v", tc.name, len(g), tc.guards, g)
		}
	}
	// Without a view, what needs one is refused.
	if _, d := (nodePolicy{node: "n1"}).check(ops(t, recs("web", "insert", `["map",[["a.web.ovl","198.18.1.10"]]]`))); d == nil || !strings.Contains(d.Reason, "no view") {
		t.Errorf("DNS write without a view: %v, want refused", d)
	}
	for k, want := range map[string]string{"10.1.18.198.in-addr.arpa": "198.18.1.10",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa": "fd00::1", "a.web.ovl": "invalid IP"} {
		if a, _ := parseReverse(k); a.String() != want {
			t.Errorf("parseReverse(%s) = %v, want %s", k, a, want)
		}
	}
}

// BenchmarkFacts: the view's facts for one decision in an NB of 10,000
// ports on 100 networks (the ports of the one network it names are read).
func BenchmarkFacts(b *testing.B) {
	own := map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "network"}
	var lsps []*nbdb.LogicalSwitchPort
	var lss []*nbdb.LogicalSwitch
	for s := 0; s < 100; s++ {
		sw := &nbdb.LogicalSwitch{UUID: fmt.Sprintf("sw%d", s), Name: fmt.Sprintf("net%d", s), ExternalIDs: own}
		for p := 0; p < 100; p++ {
			u := fmt.Sprintf("p%d-%d", s, p)
			lsps = append(lsps, &nbdb.LogicalSwitchPort{UUID: u, Name: u, Addresses: []string{fmt.Sprintf("0a:58:c6:12:%02x:%02x 198.18.%d.%d", s, p, s, p+2)},
				Options: map[string]string{"requested-chassis": fmt.Sprintf("n%d", p%10)}})
			sw.Ports = append(sw.Ports, u)
		}
		lss = append(lss, sw)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if mine, _ := build(lsps, lss, nil, nil, nil).own("net5", netip.MustParseAddr("198.18.5.7"), "n5"); mine == nil {
			b.Fatal("no port")
		}
	}
}

// TestPinColumns: a port relied on is pinned on its addresses, and on its
// dynamic_addresses only when an address relied on came from there
// (ovn-northd rewrites them after an ADD pins the port's addresses).
func TestPinColumns(t *testing.T) {
	f := fixture()
	dyn := "0a:58:c6:12:01:0a 198.18.1.10 fd00::99"
	f.lsp["p1"].DynamicAddresses = &dyn
	p := nodePolicy{node: "n1", facts: f}
	for val, want := range map[string]string{"198.18.1.10": "[addresses]", "198.18.1.10 fd00::99": "[addresses dynamic_addresses]"} {
		g, d := p.check(ops(t, `{"op":"mutate","table":"DNS","where":[["external_ids","includes",["map",[["ovlmgr.io/network","web"],["ovlmgr.io/dns-shard","`+fmt.Sprint(dns.ShardOf("a.web.ovl"))+`"]]]]],`+
			`"mutations":[["records","insert",["map",[["a.web.ovl","`+val+`"]]]]]}`))
		if d != nil || len(g) != 1 {
			t.Fatalf("%s: %v, %v", val, g, d)
		}
		if got := fmt.Sprint(g[0].op["columns"]); got != want {
			t.Errorf("record %s: pinned columns %s, want %s", val, got, want)
		}
	}
}

// TestPublishedUniqueGuard: the wait that no other load balancer has a
// published port's name leaves out only load balancers the transaction
// deletes by UUID alone (whose ownGuard holds them to the node's). Before,
// a delete that also named a condition matching nothing (so its ownGuard
// passed) took another node's load balancer out of the wait.
func TestPublishedUniqueGuard(t *testing.T) {
	p := nodePolicy{node: "n1", facts: fixture()}
	pub := published("n1", "p1", "web", "t1", "198.19.0.5:8080", "198.18.1.10:80") +
		`,{"op":"mutate","table":"Logical_Router","where":[["_uuid","==",["uuid","r1"]]],"mutations":[["load_balancer","insert",["named-uuid","lb"]]]}`
	for _, tc := range []struct {
		name, del string
		without   bool // the wait leaves the deleted UUID out
	}{
		{"own stale one by UUID", `{"op":"delete","table":"Load_Balancer","where":[["_uuid","==",["uuid","mine"]]]}`, true},
		{"n2's by UUID and a name that matches nothing", `{"op":"delete","table":"Load_Balancer","where":[["_uuid","==",["uuid","n2lb"]],["name","==","no-such"]]}`, false},
	} {
		g, d := p.check(ops(t, tc.del+","+pub))
		if d != nil {
			t.Fatalf("%s: %s", tc.name, d.Reason)
		}
		found := false
		for _, x := range g {
			if w := fmt.Sprint(x.op["where"]); x.op["table"] == nbdb.LoadBalancerTable && strings.Contains(w, "published:198.19.0.5:8080/tcp") {
				found = true
				if got := strings.Contains(w, "!="); got != tc.without {
					t.Errorf("%s: the name guard's where %s leaves a row out: %v, want %v", tc.name, w, got, tc.without)
				}
			}
		}
		if !found {
			t.Errorf("%s: no guard on the published name in %v", tc.name, g)
		}
	}
}

// keptFacts builds facts over lsps and lss as the view does: with kept.
func keptFacts(kept *portIndex, lsps []*nbdb.LogicalSwitchPort, lss []*nbdb.LogicalSwitch) *facts {
	f := build(lsps, lss, nil, nil, nil)
	f.kept = kept
	return f
}

// TestKeptPortsFollowRows: the ports the view keeps between decisions
// answer as ports derived afresh do after rows change (an address, a
// port gone, a port new, a port that becomes a router port), and a
// network gone (or made again under its name) leaves nothing kept.
func TestKeptPortsFollowRows(t *testing.T) {
	own := map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "network"}
	lsp := func(u, node, addr string) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: u, Name: "n-" + u, Addresses: []string{addr}, Options: map[string]string{"requested-chassis": node}}
	}
	rows := map[string]*nbdb.LogicalSwitchPort{}
	for i := 1; i <= 5; i++ {
		u := fmt.Sprintf("p%d", i)
		rows[u] = lsp(u, fmt.Sprintf("n%d", i%2), fmt.Sprintf("0a:58:c6:12:01:%02x 198.18.1.%d", i, i))
	}
	sw := &nbdb.LogicalSwitch{UUID: "sw1", Name: "web", ExternalIDs: own, Ports: []string{"p1", "p2", "p3", "p4", "p5"}}
	list := func() []*nbdb.LogicalSwitchPort {
		var l []*nbdb.LogicalSwitchPort
		for _, p := range rows {
			l = append(l, p)
		}
		return l
	}
	kept := &portIndex{nets: map[string]*netPorts{}}
	// same compares what kept facts and fresh facts say about every
	// address, MAC and port of the round.
	same := func(round string) {
		t.Helper()
		k := keptFacts(kept, list(), []*nbdb.LogicalSwitch{sw})
		release := k.hold()
		defer release()
		fresh := build(list(), []*nbdb.LogicalSwitch{sw}, nil, nil, nil)
		for i := 1; i <= 7; i++ {
			ip := netip.MustParseAddr(fmt.Sprintf("198.18.1.%d", i))
			for _, node := range []string{"n0", "n1"} {
				km, ko := k.own("web", ip, node)
				fm, fo := fresh.own("web", ip, node)
				if name(km) != name(fm) || name(ko) != name(fo) {
					t.Errorf("%s: own(%s, %s) kept %s/%s, fresh %s/%s", round, ip, node, name(km), name(ko), name(fm), name(fo))
				}
			}
			mac := fmt.Sprintf("0A:58:C6:12:01:%02X", i)
			if kh, fh := k.macHolder("web", mac, ""), fresh.macHolder("web", mac, ""); kh != fh {
				t.Errorf("%s: macHolder(%s) kept %q, fresh %q", round, mac, kh, fh)
			}
			u := fmt.Sprintf("p%d", i)
			if kp, fp := k.port(u), fresh.port(u); name(kp) != name(fp) {
				t.Errorf("%s: port(%s) kept %s, fresh %s", round, u, name(kp), name(fp))
			}
			if kp, fp := k.portNamed("n-"+u), fresh.portNamed("n-"+u); name(kp) != name(fp) {
				t.Errorf("%s: portNamed(n-%s) kept %s, fresh %s", round, u, name(kp), name(fp))
			}
		}
	}
	same("first")
	rows["p1"] = lsp("p1", "n1", "0a:58:c6:12:01:07 198.18.1.7") // a new address and MAC
	delete(rows, "p2")                                           // gone with its switch entry
	rows["p6"] = lsp("p6", "n0", "0a:58:c6:12:01:06 198.18.1.6") // new
	rows["p3"] = &nbdb.LogicalSwitchPort{UUID: "p3", Name: "n-p3", Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": "lrp"}}
	sw = &nbdb.LogicalSwitch{UUID: "sw1", Name: "web", ExternalIDs: own, Ports: []string{"p1", "p3", "p4", "p5", "p6"}}
	same("after changes")
	if np := kept.nets["sw1"]; len(np.rows) != 5 || len(np.ports) != 4 || len(np.byIP) != 4 || len(np.byMAC) != 4 {
		t.Errorf("kept after changes: %d rows, %d ports, %d addresses, %d MACs; want 5, 4, 4, 4", len(np.rows), len(np.ports), len(np.byIP), len(np.byMAC))
	}
	sw = &nbdb.LogicalSwitch{UUID: "sw2", Name: "web", ExternalIDs: own, Ports: []string{"p4"}} // made again
	same("network made again")
	if _, ok := kept.nets["sw1"]; ok || len(kept.nets) != 1 {
		t.Errorf("kept networks after web was made again: %v; want only sw2", kept.nets)
	}
}

func name(p *portFact) string {
	if p == nil {
		return "-"
	}
	return p.Name
}

// BenchmarkFactsKept: a decision on a network of 3,000 ports, one of
// which changed since the decision before (a claim after a refill), with
// the ports the view keeps; BenchmarkFactsFresh derives them all.
func BenchmarkFactsKept(b *testing.B)  { benchFacts3000(b, true) }
func BenchmarkFactsFresh(b *testing.B) { benchFacts3000(b, false) }

func benchFacts3000(b *testing.B, keep bool) {
	own := map[string]string{"ovlmgr.io/owner": "ovlmgr", "ovlmgr.io/kind": "network"}
	lsps := make([]*nbdb.LogicalSwitchPort, 3000)
	sw := &nbdb.LogicalSwitch{UUID: "sw", Name: "web", ExternalIDs: own}
	for p := range lsps {
		u := fmt.Sprintf("p%d", p)
		lsps[p] = &nbdb.LogicalSwitchPort{UUID: u, Name: u, Addresses: []string{fmt.Sprintf("0a:58:c6:13:%02x:%02x 198.19.%d.%d", p/250, p%250+2, p/250, p%250+2)},
			Options: map[string]string{"requested-chassis": "n1"}}
		sw.Ports = append(sw.Ports, u)
	}
	kept := &portIndex{nets: map[string]*netPorts{}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := *lsps[i%3000]
		lsps[i%3000] = &c // the view's cache replaces a changed row
		f := build(lsps, []*nbdb.LogicalSwitch{sw}, nil, nil, nil)
		if keep {
			f.kept = kept
		}
		release := f.hold()
		if mine, _ := f.own("web", netip.MustParseAddr("198.19.5.7"), "n1"); mine == nil {
			b.Fatal("no port")
		}
		release()
	}
}
