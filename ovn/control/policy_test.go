package control

import (
	"encoding/json"
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
	p := nodePolicy{node: "n1"}
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
		{"adopt an existing port", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["ports","insert",["uuid","0000"]]]}`, "existing port", 0},
		{"port delete is guarded", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["ports","delete",["set",[["uuid","a"],["uuid","b"]]]]]}`, "", 2},
		{"port update is guarded", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","x"]],"row":{"addresses":"y"}}`, "", 1},
		{"port moved to n2", `{"op":"update","table":"Logical_Switch_Port","where":[["name","==","x"]],"row":{"options":["map",[["requested-chassis","n2"]]]}}`, "move a port", 0},
		{"chassis mutated", `{"op":"mutate","table":"Logical_Switch_Port","where":[],"mutations":[["options","insert",["map",[["requested-chassis","n2"]]]]]}`, "requested-chassis", 0},
		{"own pool hint", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete","ovlmgr.io/pool/n1/ovl-1"]]}`, "", 0},
		{"other node's pool hint", `{"op":"mutate","table":"Logical_Switch","where":[],"mutations":[["external_ids","delete","ovlmgr.io/pool/n2/ovl-1"]]}`, "external_ids", 0},
		{"nb_cfg bump", `{"op":"mutate","table":"NB_Global","where":[],"mutations":[["nb_cfg","+=",1]]}`, "", 0},
		{"nb_cfg set", `{"op":"mutate","table":"NB_Global","where":[],"mutations":[["nb_cfg","+=",1],["options","insert",["map",[["a","b"]]]]]}`, "NB_Global", 0},
		{"router", `{"op":"insert","table":"Logical_Router","row":{}}`, "a router", 0},
		{"router rename", `{"op":"update","table":"Logical_Router","where":[],"row":{"name":"x"}}`, "a router", 0},
		{"router static route", `{"op":"mutate","table":"Logical_Router","where":[],"mutations":[["static_routes","insert",["named-uuid","r"]]]}`, "static_routes", 0},
		{"own published port", `{"op":"insert","table":"Load_Balancer","uuid-name":"lb","row":{"external_ids":["map",[["ovlmgr.io/kind","published-port"],["ovlmgr.io/node","n1"],["ovlmgr.io/port","ovl-1"]]]}},` +
			`{"op":"mutate","table":"Logical_Router","where":[],"mutations":[["load_balancer","insert",["named-uuid","lb"]]]}`, "", 1},
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
