// Package control is the ovlmgr control service: the only way a node
// writes the Northbound database. The NB has no access control of its own
// (every client it accepts may write every table), so nodes get no NB
// credentials at all; they talk to this service instead, over mutual TLS
// with their node certificate (ovn/ovsdb/pki). The service speaks the OVSDB
// protocol (RFC 7047) on both sides: a node's libovsdb client connects to it
// exactly as to the NB, so the CNI plugin's fast path is unchanged, and
// every connection is relayed to the NB on a connection of its own.
//
// What passes: every read (select, monitor, _Server), and transactions whose
// writes the node policy allows (policy.go): container ports bound to the
// node (options:requested-chassis = the certificate's common name), their
// membership in existing networks, and the bookkeeping next to them. A
// refused transaction is answered with an OVSDB "permission error" naming
// the operation and never reaches the NB. Writes to existing ports are
// guarded inside the same transaction (a wait that fails when the rows
// touched include a port of another node), so the check and the write are
// atomic. Inserted rows are stamped with KeyWrittenBy.
//
// DNS records, service backends, policy group membership and published
// ports are allowed only for the node's own ports' addresses on their own
// network (own.go): the service decides on its view of the NB (view.go, a
// monitor of a few columns on a connection of its own) and pins every port
// it relied on with a guard, so a stale view can refuse but not let a
// wrong write through.
//
// The service keeps no state beyond its connections and that view (with
// the networks' ports derived from it, kept between decisions and checked
// against its rows at each: view.go's portIndex): any number of instances
// serve the same NB, and a restarted one only drops the connections it had
// (clients reconnect to another endpoint).
package control

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure Serve.
type Options struct {
	// Listen is "ssl:IP:PORT" (or "pssl:PORT:IP", OVS style).
	Listen string
	// NB is the upstream NB endpoint list (unix:PATH, ssl:IP:PORT, tcp:IP:PORT).
	NB string
	// Cert is the service's identity (a control certificate): presented to
	// clients and, for ssl: upstreams, to the NB.
	Cert tls.Certificate
	// NodeCA verifies node clients; ControlCA verifies admin clients and
	// the NB's certificate.
	NodeCA, ControlCA []*x509.Certificate
	// Log receives one line per refused transaction and per connection error.
	Log *log.Logger
	// Ready, when set, is closed once the listener is open.
	Ready chan<- struct{}
	// MaxNodeConns bounds the connections one node (one node certificate
	// name) has open at once; 0 is DefaultMaxNodeConns. Each connection
	// is an NB connection too: one node cannot load the NB without end.
	MaxNodeConns int

	nodePool, controlPool *x509.CertPool
	view                  *view
	conns                 *nodeConns
}

// DefaultMaxNodeConns is Options.MaxNodeConns' default: far above what a
// node uses (a connection per CNI verb under way, its CNI server's, a pool
// refill's, an operator's command), far below what loads the NB.
const DefaultMaxNodeConns = 64

// nodeConns counts each node's open connections.
type nodeConns struct {
	mu  sync.Mutex
	n   map[string]int
	max int
}

// take counts a new connection of node, or says false when node has
// max open already.
func (c *nodeConns) take(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[node] >= c.max {
		return false
	}
	c.n[node]++
	return true
}

// give uncounts a connection of node that take counted.
func (c *nodeConns) give(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[node]--; c.n[node] <= 0 {
		delete(c.n, node)
	}
}

// nbName is the NB's database name.
const nbName = "OVN_Northbound"

// Identity is who a client is, from its verified certificate.
type Identity struct {
	// Node is set for a node certificate (node CA): its chassis name.
	Node string
	// Admin is set for a control CA certificate (an admin or a service).
	Admin string
}

func (id Identity) String() string {
	if id.Node != "" {
		return "node:" + id.Node
	}
	return "admin:" + id.Admin
}

// ListenAddr turns "ssl:IP:PORT" or "pssl:PORT:IP" into host:port.
func ListenAddr(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "ssl:"):
		return strings.TrimPrefix(s, "ssl:"), nil
	case strings.HasPrefix(s, "pssl:"):
		port, ip, _ := strings.Cut(strings.TrimPrefix(s, "pssl:"), ":")
		return net.JoinHostPort(ip, port), nil
	}
	return "", fmt.Errorf("listen %q: want ssl:IP:PORT or pssl:PORT[:IP]", s)
}

// Serve accepts clients until ctx ends.
func Serve(ctx context.Context, o Options) error {
	addr, err := ListenAddr(o.Listen)
	if err != nil {
		return err
	}
	if len(o.NodeCA) == 0 || len(o.ControlCA) == 0 {
		return errors.New("control service: both the node CA and the control CA are required")
	}
	if o.Log == nil {
		o.Log = log.New(io.Discard, "", 0)
	}
	nodeCA, controlCA, clientCAs := x509.NewCertPool(), x509.NewCertPool(), x509.NewCertPool()
	for _, c := range o.NodeCA {
		nodeCA.AddCert(c)
		clientCAs.AddCert(c)
	}
	for _, c := range o.ControlCA {
		controlCA.AddCert(c)
		clientCAs.AddCert(c)
	}
	o.nodePool, o.controlPool = nodeCA, controlCA
	if o.MaxNodeConns < 0 {
		return fmt.Errorf("control service: connections a node (MaxNodeConns) %d: want 1 or more, or 0 for the default %d", o.MaxNodeConns, DefaultMaxNodeConns)
	}
	if o.MaxNodeConns == 0 {
		o.MaxNodeConns = DefaultMaxNodeConns
	}
	o.conns = &nodeConns{n: map[string]int{}, max: o.MaxNodeConns}
	// The NB as the node policy needs it (view.go): the service's own
	// connection, monitoring a few columns.
	o.view = startView(ctx, o, o.Log)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{o.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	}
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("control service: listen %s: %w", addr, err)
	}
	if o.Ready != nil {
		close(o.Ready)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("control service: accept: %w", err)
		}
		go func() {
			if err := serveConn(ctx, o, c.(*tls.Conn)); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				o.Log.Printf("%s: %v", c.RemoteAddr(), err)
			}
		}()
	}
}

// identify returns who the client is: the CA its chain ends in decides
// (a node CA certificate is a node whatever its other fields say).
func identify(o Options, cs tls.ConnectionState) (Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: o.nodePool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		return Identity{Node: leaf.Subject.CommonName}, nil
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: o.controlPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		return Identity{Admin: leaf.Subject.CommonName}, nil
	}
	return Identity{}, errors.New("client certificate from no known CA")
}

// message is a JSON-RPC message (RFC 7047 4): requests, responses and
// notifications in either direction.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// conn relays one client to its own NB connection.
type conn struct {
	o        Options
	id       Identity
	client   net.Conn
	upstream net.Conn
	// writes to the client (relayed responses and our own answers) are
	// whole messages.
	wmu sync.Mutex
	cw  *bufio.Writer
	// pending maps a rewritten transact's id to how many guards precede
	// its operations and how many operations the client sent.
	pmu     sync.Mutex
	pending map[string]pendingTx
	seq     uint64
}

type pendingTx struct {
	// id is the client's id of the request; the NB saw the service's own
	// (conn.seq), which it echoes byte for byte.
	id          json.RawMessage
	guards, ops int
	// at[i] is the operation guard i protects, why[i] what its failure
	// refuses.
	at  []int
	why []string
}

func serveConn(ctx context.Context, o Options, c *tls.Conn) error {
	defer c.Close()
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	id, err := identify(o, c.ConnectionState())
	if err != nil {
		return err
	}
	if id.Node != "" {
		if !o.conns.take(id.Node) {
			return refuse(c, fmt.Sprintf("node %s has %d connections to the control service open, the most a node may have (control serve --max-node-connections)", id.Node, o.MaxNodeConns))
		}
		defer o.conns.give(id.Node)
	}
	up, err := dialNB(ctx, o)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	defer up.Close()
	return relay(o, id, c, up)
}

// refuse answers the client's first request with an OVSDB "resources
// exhausted" error saying why (a string, as JSON-RPC clients read it) and
// returns that as an error; the caller closes the connection.
func refuse(c net.Conn, why string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var m message
	if err := json.NewDecoder(io.LimitReader(c, maxNodeMessage)).Decode(&m); err == nil && m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" {
		b, _ := json.Marshal(map[string]any{"id": m.ID, "result": nil, "error": "resources exhausted: " + why})
		_, _ = c.Write(b)
	}
	return errors.New("refused: " + why)
}

// relay passes one client's messages (client) to its NB connection (up)
// and the NB's back, checking what the client sends, until either side
// closes.
func relay(o Options, id Identity, client, up net.Conn) error {
	cn := &conn{o: o, id: id, client: client, upstream: up, cw: bufio.NewWriter(client), pending: map[string]pendingTx{}}
	errc := make(chan error, 2)
	go func() { errc <- recovered(cn.fromNB) }()
	go func() { errc <- recovered(cn.fromClient) }()
	err := <-errc
	// The other direction ends on the closed connections.
	client.Close()
	up.Close()
	return err
}

// recovered runs f; a panic (a defect the client's input reached) ends
// only this client's connection, with the panic as its error, not the
// service.
func recovered(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error, connection closed: %v", r)
		}
	}()
	return f()
}

// dialNB opens a connection to the NB: with several endpoints (a RAFT
// cluster) to its leader, because clients check through this connection
// that they talk to the leader (libovsdb's leader-only mode); to the first
// that answers when none says it leads.
func dialNB(ctx context.Context, o Options) (net.Conn, error) {
	eps := strings.Split(o.NB, ",")
	if len(eps) == 1 {
		return dialOne(ctx, o, strings.TrimSpace(eps[0]))
	}
	var fallback net.Conn
	var errs []error
	for _, ep := range eps {
		c, err := dialOne(ctx, o, strings.TrimSpace(ep))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if isLeader(c) {
			if fallback != nil {
				fallback.Close()
			}
			return c, nil
		}
		if fallback == nil {
			fallback = c
		} else {
			c.Close()
		}
	}
	if fallback != nil {
		return fallback, nil
	}
	return nil, fmt.Errorf("connect to the NB %s: %w", o.NB, errors.Join(errs...))
}

// isLeader asks the server on c whether it is the NB's leader (or a
// standalone server): _Server's Database row.
func isLeader(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	q := `{"id":"ovlmgr-control-leader","method":"transact","params":["_Server",{"op":"select","table":"Database",` +
		`"where":[["name","==","` + nbName + `"]],"columns":["leader","model"]}]}`
	if _, err := io.WriteString(c, q); err != nil {
		return false
	}
	var reply struct {
		Result []struct {
			Rows []struct {
				Leader bool   `json:"leader"`
				Model  string `json:"model"`
			} `json:"rows"`
		} `json:"result"`
	}
	// One reply, and nothing else is sent before the next request: reading
	// it byte-exactly is not needed.
	if err := json.NewDecoder(c).Decode(&reply); err != nil {
		return false
	}
	for _, res := range reply.Result {
		for _, r := range res.Rows {
			return r.Leader || r.Model == "standalone"
		}
	}
	return false
}

// dialOne connects one NB endpoint.
func dialOne(ctx context.Context, o Options, ep string) (net.Conn, error) {
	var errs []error
	{
		var d net.Dialer
		d.Timeout = 5 * time.Second
		var c net.Conn
		var err error
		switch {
		case strings.HasPrefix(ep, "unix:"):
			c, err = d.DialContext(ctx, "unix", strings.TrimPrefix(ep, "unix:"))
		case strings.HasPrefix(ep, "tcp:"):
			c, err = d.DialContext(ctx, "tcp", strings.TrimPrefix(ep, "tcp:"))
		case strings.HasPrefix(ep, "ssl:"):
			td := tls.Dialer{NetDialer: &d, Config: &tls.Config{Certificates: []tls.Certificate{o.Cert}, RootCAs: o.controlPool, MinVersion: tls.VersionTLS12}}
			c, err = td.DialContext(ctx, "tcp", strings.TrimPrefix(ep, "ssl:"))
		default:
			err = fmt.Errorf("NB endpoint %q: want unix:PATH, tcp:IP:PORT or ssl:IP:PORT", ep)
		}
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to the NB %s: %w", ep, errors.Join(errs...))
}

func (cn *conn) toClient(b []byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if _, err := cn.cw.Write(b); err != nil {
		return err
	}
	return cn.cw.Flush()
}

// fromNB relays the NB's messages, fixing the results of rewritten
// transactions.
func (cn *conn) fromNB() error {
	dec := json.NewDecoder(bufio.NewReader(cn.upstream))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		cn.pmu.Lock()
		waiting := len(cn.pending) > 0
		cn.pmu.Unlock()
		var m message
		// Only a reply to a rewritten transaction is parsed: the schema
		// and monitor updates pass as they came.
		if waiting && json.Unmarshal(raw, &m) == nil && m.Method == "" && len(m.ID) > 0 {
			cn.pmu.Lock()
			p, ok := cn.pending[string(m.ID)]
			delete(cn.pending, string(m.ID))
			cn.pmu.Unlock()
			if ok {
				m.ID = p.id
				raw = cn.fixResult(m, p)
			}
		}
		if err := cn.toClient(raw); err != nil {
			return err
		}
	}
}

// fixResult removes the guards' results; a failed guard becomes a
// permission error.
func (cn *conn) fixResult(m message, p pendingTx) json.RawMessage {
	var res []json.RawMessage
	if err := json.Unmarshal(m.Result, &res); err != nil || len(res) < p.guards {
		b, _ := json.Marshal(m)
		return b
	}
	for i := 0; i < p.guards; i++ {
		var r struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(res[i], &r) == nil && r.Error != "" {
			reason := fmt.Sprintf("ovlmgr control: node %s may not %s", cn.id.Node, p.why[i])
			cn.o.Log.Printf("%s: refused: %s", cn.id, reason)
			return permissionResponse(m.ID, p.ops, p.at[i], reason)
		}
	}
	m.Result, _ = json.Marshal(res[p.guards:])
	b, _ := json.Marshal(struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}{m.ID, m.Result, json.RawMessage("null")})
	return b
}

// permissionResponse answers a transaction of n operations with an OVSDB
// permission error (RFC 7047: an extra result element is the error of the
// whole transaction).
// at is the refused operation's index (its result carries the error), or
// -1 for the whole transaction.
func permissionResponse(id json.RawMessage, n, at int, details string) json.RawMessage {
	res := make([]any, 0, n+1)
	perm := map[string]string{"error": "permission error", "details": details}
	for i := 0; i < n; i++ {
		if i == at {
			res = append(res, perm)
		} else {
			res = append(res, map[string]any{})
		}
	}
	if at < 0 || at >= n {
		res = append(res, perm)
	}
	b, _ := json.Marshal(map[string]any{"id": id, "result": res, "error": nil})
	return b
}

// maxNodeMessage bounds one message of a node (its largest, a pool
// refill or a claim with its DNS records, is a few KB): a node cannot make
// the service buffer without end.
const maxNodeMessage = 4 << 20

// errTooLarge is a client message over its bound.
var errTooLarge = errors.New("message too large")

// capReader fails once more than max bytes are read since reset.
type capReader struct {
	r      io.Reader
	n, max int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.max > 0 && c.n >= c.max {
		return 0, fmt.Errorf("%w (over %d bytes)", errTooLarge, c.max)
	}
	if c.max > 0 && int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// fromClient relays the client's messages, checking transactions.
func (cn *conn) fromClient() error {
	cr := &capReader{r: cn.client}
	if cn.id.Node != "" {
		cr.max = maxNodeMessage
	}
	dec := json.NewDecoder(bufio.NewReader(cr))
	uw := bufio.NewWriter(cn.upstream)
	for {
		var raw json.RawMessage
		cr.n = 0
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, errTooLarge) {
				cn.o.Log.Printf("%s: refused: %v", cn.id, err)
			}
			return err
		}
		m, err := clientMessage(raw)
		if err != nil {
			cn.o.Log.Printf("%s: refused: %v", cn.id, err)
			if m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" {
				// A request with a method we do not relay: an error answer,
				// as ovsdb-server gives for an unknown method.
				b, _ := json.Marshal(map[string]any{"id": m.ID, "result": nil, "error": "ovlmgr control: " + err.Error()})
				if err := cn.toClient(b); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if m.Method == "transact" {
			out, reply := cn.transact(m)
			if reply != nil {
				if err := cn.toClient(reply); err != nil {
					return err
				}
				continue
			}
			raw = out
		} else {
			if m.Method == "cancel" {
				m.Params = cn.cancelParams(m.Params)
			}
			raw = m.encode()
		}
		if _, err := uw.Write(raw); err != nil {
			return err
		}
		if err := uw.Flush(); err != nil {
			return err
		}
	}
}

// cancelParams is a cancel's params as the NB must read them: a guarded
// transaction went to the NB under the service's id (transact), so the
// client's id it names becomes that one. Anything else passes unchanged.
func (cn *conn) cancelParams(params json.RawMessage) json.RawMessage {
	var ps []json.RawMessage
	if err := json.Unmarshal(params, &ps); err != nil || len(ps) != 1 {
		return params
	}
	want := canonJSON(ps[0])
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	for up, p := range cn.pending {
		if canonJSON(p.id) == want {
			b, _ := json.Marshal([]json.RawMessage{json.RawMessage(up)})
			return b
		}
	}
	return params
}

// canonJSON is r re-encoded, so two spellings of one JSON value compare
// equal.
func canonJSON(r json.RawMessage) string {
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		return string(r)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// relayedMethods are the requests a client may send through the service:
// what an OVSDB client reads and writes with (RFC 7047, OVS' extensions).
// Anything else, such as "convert" (a schema change, which ovsdb-server
// treats as a write) or the lock methods, never reaches the NB.
var relayedMethods = map[string]bool{
	"transact": true, "cancel": true, "echo": true, "list_dbs": true, "get_schema": true, "get_server_id": true,
	"monitor": true, "monitor_cond": true, "monitor_cond_since": true, "monitor_cond_change": true, "monitor_cancel": true,
	"set_db_change_aware": true,
}

// errMessage is a client message the service does not relay.
var errMessage = errors.New("message not relayed")

// clientMessage reads one JSON-RPC message of a client strictly: the
// service forwards the message as it decoded it (encode), never the
// client's bytes, so what the NB reads is what the policy checked (no
// escaped method name or duplicate member can make the two differ). A
// request must name a relayed method; a response (an answer to the NB's
// echo) passes.
func clientMessage(raw json.RawMessage) (message, error) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return message{}, fmt.Errorf("%w: not a JSON-RPC message: %v", errMessage, err)
	}
	if len(m.ID) == 0 {
		m.ID = json.RawMessage("null")
	}
	switch {
	case m.Method != "" && (m.Result != nil || m.Error != nil):
		return m, fmt.Errorf("%w: a request with a result or an error", errMessage)
	case m.Method != "" && !relayedMethods[m.Method]:
		return m, fmt.Errorf("%w: method %q (relayed: transact, monitors, get_schema, list_dbs, echo and other reads)", errMessage, m.Method)
	case m.Method == "" && m.Params != nil:
		return m, fmt.Errorf("%w: params without a method", errMessage)
	case m.Method == "" && string(m.ID) == "null":
		return m, fmt.Errorf("%w: neither a request nor a response", errMessage)
	}
	return m, nil
}

// encode is m as the service sends it on: a request (id, method, params)
// or a response (id, result, error), nothing else.
func (m message) encode() json.RawMessage {
	var v any
	null := json.RawMessage("null")
	or := func(r json.RawMessage, d json.RawMessage) json.RawMessage {
		if len(r) == 0 {
			return d
		}
		return r
	}
	if m.Method != "" {
		v = struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}{m.ID, m.Method, or(m.Params, json.RawMessage("[]"))}
	} else {
		v = struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}{m.ID, or(m.Result, null), or(m.Error, null)}
	}
	b, _ := json.Marshal(v)
	return b
}

// transact checks a transaction: it returns the request to forward, or the
// // reply that refuses it.
func (cn *conn) transact(m message) (json.RawMessage, json.RawMessage) {
	db, ops, err := decodeOps(m.Params)
	if err != nil {
		return nil, permissionResponse(m.ID, 0, -1, "ovlmgr control: "+err.Error())
	}
	if db != nbName && db != "_Server" {
		return nil, permissionResponse(m.ID, len(ops), -1, fmt.Sprintf("ovlmgr control: database %q: only OVN_Northbound is served", db))
	}
	var guards []guard
	if cn.id.Node != "" {
		var d *Denied
		if guards, d = cn.checkNode(ops); d != nil {
			cn.o.Log.Printf("%s: refused: %s", cn.id, d.Reason)
			return nil, permissionResponse(m.ID, len(ops), d.Index, d.Reason)
		}
	} else {
		for _, o := range ops {
			if k := o.str("op"); k == "insert" || k == "update" {
				stamp(o, cn.id.String())
			}
		}
	}
	params := []any{db}
	var at []int
	var why []string
	for _, g := range guards {
		params = append(params, g.op)
		at = append(at, g.at)
		why = append(why, g.why)
	}
	for _, o := range ops {
		params = append(params, o)
	}
	m.Params, _ = json.Marshal(params)
	if len(guards) > 0 {
		// The NB answers under an id of the service's: the reply is found
		// whatever the client's id looked like (an id the NB re-encodes
		// differently would leave the entry, and the guards' results,
		// behind) and whatever other requests share it.
		cn.pmu.Lock()
		cn.seq++
		up := json.RawMessage(fmt.Sprintf(`"ovlmgr-control-%d"`, cn.seq))
		cn.pending[string(up)] = pendingTx{id: m.ID, guards: len(guards), ops: len(ops), at: at, why: why}
		cn.pmu.Unlock()
		m.ID = up
	}
	b, _ := json.Marshal(m)
	return b, nil
}

// checkNode runs the node policy on ops with the service's view of the NB,
// brought up to date first: the view then holds every transaction the NB
// committed before this one arrived (such as the port the node made or
// pinned a moment ago), so only a concurrent change can fail a guard.
func (cn *conn) checkNode(ops []op) ([]guard, *Denied) {
	p := nodePolicy{node: cn.id.Node}
	if needsFacts(ops) && cn.o.view != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f, err := cn.o.view.facts(ctx, true)
		if err != nil {
			cn.o.Log.Printf("%s: %v", cn.id, err)
		}
		p.facts = f
		defer f.hold()()
	}
	return p.check(ops)
}

// ReadCAs reads every certificate of a PEM file (a CA or a bundle).
func ReadCAs(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA certificates %s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate", file)
	}
	return out, nil
}
