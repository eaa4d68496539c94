package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// rpcPeer speaks raw JSON-RPC on one connection.
type rpcPeer struct {
	t   *testing.T
	c   net.Conn
	dec *json.Decoder
}

func (p *rpcPeer) send(s string) {
	p.t.Helper()
	_ = p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(p.c, s); err != nil {
		p.t.Fatalf("send %s: %v", s, err)
	}
}

// reply reads the next message whose id is id (skipping the NB's own
// requests and notifications); nil when the connection closed.
func (p *rpcPeer) reply(id string) map[string]any {
	p.t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := p.dec.Decode(&m); err != nil {
			if err == io.EOF || strings.Contains(err.Error(), "closed") {
				return nil
			}
			p.t.Fatalf("read the reply to %s: %v", id, err)
		}
		if b, _ := json.Marshal(m["id"]); string(b) == id && m["method"] == nil {
			return m
		}
	}
}

// relayN1 relays a client of node n1 to its own connection to srv: the
// client's end (closed at the test's end) and relay's result.
func relayN1(t *testing.T, srv *ovsdbtest.Server) (*rpcPeer, <-chan error) {
	t.Helper()
	up, err := net.Dial("unix", srv.Socket)
	if err != nil {
		t.Fatal(err)
	}
	client, peer := net.Pipe()
	t.Cleanup(func() { client.Close() })
	done := make(chan error, 1)
	go func() { done <- relay(Options{Log: log.New(io.Discard, "", 0)}, Identity{Node: "n1"}, peer, up) }()
	return &rpcPeer{t: t, c: client, dec: json.NewDecoder(bufio.NewReader(client))}, done
}

// nbSwitches lists the Logical_Switch names in the NB, read straight from
// its socket (not through the relay).
func nbSwitches(t *testing.T, srv *ovsdbtest.Server) []string {
	t.Helper()
	c, err := net.Dial("unix", srv.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &rpcPeer{t: t, c: c, dec: json.NewDecoder(bufio.NewReader(c))}
	p.send(`{"id":"sel","method":"transact","params":["OVN_Northbound",{"op":"select","table":"Logical_Switch","where":[],"columns":["name"]}]}`)
	r := p.reply(`"sel"`)
	var out []string
	res, _ := r["result"].([]any)
	var rows []any
	if len(res) == 1 {
		m, _ := res[0].(map[string]any)
		rows, _ = m["rows"].([]any)
	}
	if rows == nil {
		t.Fatalf("select switches: %v", r)
	}
	for _, row := range rows {
		out = append(out, row.(map[string]any)["name"].(string))
	}
	if len(out) > 0 {
		// Clean for the next case.
		p.send(`{"id":"del","method":"transact","params":["OVN_Northbound",{"op":"delete","table":"Logical_Switch","where":[]}]}`)
		p.reply(`"del"`)
	}
	return out
}

// TestRelayFraming: what a node sends reaches the NB only as the service
// decoded and checked it. Before, a request was checked only when its bytes
// held `"transact"` and decoded cleanly, and passed on as sent otherwise:
// an escaped method name (`trans\u0061ct`, which ovsdb-server decodes) or a
// duplicate "method" member (Go's decode fails, ovsdb-server takes the
// last) carried any write past the node policy, and "convert" (a schema
// change) was relayed unchecked. Against a real NB ovsdb-server.
func TestRelayFraming(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	evil := `["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{"name":"evil"}}]`
	for _, tc := range []struct {
		name, msg, id string
		// closed: the service ends the connection; else the reply must
		// carry an error (refused) or not.
		closed, refused bool
	}{
		{"escaped method", `{"id":1,"method":"trans\u0061ct","params":` + evil + `}`, "1", false, true},
		{"duplicate method member", `{"id":2,"method":0,"method":"transact","params":` + evil + `}`, "2", true, false},
		{"lock", `{"id":4,"method":"lock","params":["ovn_northd"]}`, "4", false, true},
		{"plain write", `{"id":5,"method":"transact","params":` + evil + `}`, "5", false, true},
		{"read", `{"id":6,"method":"transact","params":["OVN_Northbound",{"op":"select","table":"Logical_Switch","where":[]}]}`, "6", false, false},
		{"echo", `{"id":7,"method":"echo","params":["x"]}`, "7", false, false},
		{"request with a result", `{"id":8,"method":"echo","params":[],"result":{}}`, "8", false, true},
		{"convert", `{"id":3,"method":"convert","params":["OVN_Northbound",{"name":"OVN_Northbound","version":"1.0.0","tables":{}}]}`, "3", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, done := relayN1(t, srv)
			p.send(tc.msg)
			r := p.reply(tc.id)
			switch {
			case tc.closed && r != nil:
				t.Errorf("answered %v, want the connection closed", r)
			case !tc.closed && r == nil:
				t.Errorf("connection closed, want an answer")
			case r != nil:
				res, _ := json.Marshal(r)
				refused := r["error"] != nil || strings.Contains(string(res), `"error":"permission error"`)
				if refused != tc.refused {
					t.Errorf("answer %s: refused %v, want %v", res, refused, tc.refused)
				}
			}
			p.c.Close()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the relay did not end when its client closed")
			}
			if sw := nbSwitches(t, srv); len(sw) != 0 {
				t.Errorf("the NB has switches %v after %s from a node", sw, tc.name)
			}
		})
	}
	// The schema is the one the server started with.
	c, err := net.Dial("unix", srv.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &rpcPeer{t: t, c: c, dec: json.NewDecoder(bufio.NewReader(c))}
	p.send(`{"id":"s","method":"get_schema","params":["OVN_Northbound"]}`)
	r := p.reply(`"s"`)
	if tables, _ := r["result"].(map[string]any)["tables"].(map[string]any); tables["ACL"] == nil {
		t.Errorf("the NB schema lost table ACL: %v", r)
	}
}

// TestRelayPanicEndsOneConnection: a defect that panics on a client's
// input closes that client's connection, not the service.
func TestRelayPanicEndsOneConnection(t *testing.T) {
	err := recovered(func() error { panic("a defect") })
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("recovered: %v, want an internal error", err)
	}
}

// TestRelayNodeMessageBound: a node's message over maxNodeMessage closes
// its connection; nothing of it reaches the NB.
func TestRelayNodeMessageBound(t *testing.T) {
	p, done := relayN1(t, ovsdbtest.StartNB(t))
	client := p.c
	go func() {
		// An endless string: the relay must stop reading it.
		_, _ = io.WriteString(client, `{"id":1,"method":"echo","params":["`)
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 2*maxNodeMessage/len(chunk); i++ {
			if _, err := io.WriteString(client, chunk); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errTooLarge) {
			t.Errorf("relay ended with %v, want %v", err, errTooLarge)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay kept reading a message past its bound")
	}
}

// TestRelayRewrittenReplyID: the reply to a transaction the service added
// guards to comes back under the client's id with the guards' results
// removed, whatever the id's spelling. Before, the service matched the
// NB's reply by the client's raw id bytes: an escaped id ("\u0061", which
// the NB answers as "a") left the reply unfixed (one result too many) and
// its entry in memory for good.
func TestRelayRewrittenReplyID(t *testing.T) {
	p, _ := relayN1(t, ovsdbtest.StartNB(t))
	// A delete of ports by name: guarded (no port of another node).
	del := `["OVN_Northbound",{"op":"delete","table":"Logical_Switch_Port","where":[["name","==","x"]]}]`
	for _, id := range []string{`"\u0061"`, `7`, `"b"`} {
		p.send(`{"id":` + id + `,"method":"transact","params":` + del + `}`)
		want := id
		if id == `"\u0061"` {
			want = `"a"`
		}
		r := p.reply(want)
		if r == nil {
			t.Fatalf("no reply to id %s", id)
		}
		if res, _ := r["result"].([]any); len(res) != 1 {
			t.Errorf("reply to id %s: %v; want one result (the guard's removed)", id, r)
		}
	}
}

// TestRelayCancelGuarded: a client's cancel of its guarded transaction
// (sent to the NB under the service's id) reaches that transaction: the NB
// answers it "canceled", under the client's id. Before, the cancel named an
// id the NB did not know and the transaction stayed blocked (and its entry
// in the service's memory stayed).
func TestRelayCancelGuarded(t *testing.T) {
	p, _ := relayN1(t, ovsdbtest.StartNB(t))
	// A change-aware session (as libovsdb's) gets an answer to a cancelled
	// transaction; without, ovsdb-server drops it silently.
	p.send(`{"id":"dca","method":"set_db_change_aware","params":[true]}`)
	if r := p.reply(`"dca"`); r == nil || r["error"] != nil {
		t.Fatalf("set_db_change_aware: %v", r)
	}
	// Guarded (a delete of ports by name), and blocked: it waits, without
	// a timeout, for a switch that never comes.
	p.send(`{"id":"block","method":"transact","params":["OVN_Northbound",` +
		`{"op":"wait","table":"Logical_Switch","where":[["name","==","never"]],"columns":["name"],"until":"==","rows":[{"name":"never"}]},` +
		`{"op":"delete","table":"Logical_Switch_Port","where":[["name","==","x"]]}]}`)
	p.send(`{"id":null,"method":"cancel","params":["block"]}`)
	r := p.reply(`"block"`)
	if r == nil {
		t.Fatal("connection closed before the reply to the cancelled transaction")
	}
	if e := fmt.Sprint(r["error"]); !strings.Contains(e, "canceled") {
		t.Errorf("reply to the cancelled transaction: %v; want the NB's error \"canceled\"", r)
	}
}

// TestRelayTakeoverHintGuard: a node drops another node's pool hint only
// with a takeover of that hint's port while it is a ready pool port, as
// the real NB judges it. Before, a takeover update that matched no port
// unlocked deleting any node's hint of that name.
func TestRelayTakeoverHintGuard(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	direct, err := net.Dial("unix", srv.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	d := &rpcPeer{t: t, c: direct, dec: json.NewDecoder(bufio.NewReader(direct))}
	ready := `["map",[["ovlmgr.io/owner","ovlmgr"],["ovlmgr.io/kind","pool-port"],["ovlmgr.io/pool","ready"]]]`
	d.send(`{"id":"mk","method":"transact","params":["OVN_Northbound",` +
		`{"op":"insert","table":"Logical_Switch_Port","uuid-name":"pp","row":{"name":"pp1","options":["map",[["requested-chassis","n2"]]],"external_ids":` + ready + `}},` +
		`{"op":"insert","table":"Logical_Switch","row":{"name":"web","ports":["named-uuid","pp"],"external_ids":["map",[["ovlmgr.io/pool/n2/pp1","t m a"],["ovlmgr.io/pool/n2/gone","t m b"]]]}}]}`)
	if r := d.reply(`"mk"`); fmt.Sprint(r["result"]) == "" || strings.Contains(fmt.Sprint(r["result"]), "error") {
		t.Fatalf("make the NB rows: %v", r)
	}
	p, _ := relayN1(t, srv)
	takeover := func(id, port string) map[string]any {
		p.send(`{"id":"` + id + `","method":"transact","params":["OVN_Northbound",` +
			`{"op":"update","table":"Logical_Switch_Port","where":[["name","==","` + port + `"],["external_ids","includes",` + ready + `]],"row":{"options":["map",[["requested-chassis","n1"]]]}},` +
			`{"op":"mutate","table":"Logical_Switch","where":[["name","==","web"]],"mutations":[["external_ids","delete",["set",["ovlmgr.io/pool/n2/` + port + `"]]]]}]}`)
		return p.reply(`"` + id + `"`)
	}
	if r := takeover("fake", "gone"); !strings.Contains(fmt.Sprint(r), "permission error") {
		t.Errorf("takeover of no port, dropping n2's hint: %v; want a permission error", r)
	}
	if r := takeover("real", "pp1"); strings.Contains(fmt.Sprint(r), "error:map") || strings.Contains(fmt.Sprint(r), "permission") {
		t.Errorf("takeover of n2's ready pool port: %v; want it committed", r)
	}
	d.send(`{"id":"rd","method":"transact","params":["OVN_Northbound",{"op":"select","table":"Logical_Switch","where":[],"columns":["external_ids"]}]}`)
	ids := fmt.Sprint(d.reply(`"rd"`)["result"])
	if !strings.Contains(ids, "ovlmgr.io/pool/n2/gone") || strings.Contains(ids, "ovlmgr.io/pool/n2/pp1") {
		t.Errorf("switch external_ids after both: %s; want n2's hint of gone kept, of pp1 dropped", ids)
	}
}
