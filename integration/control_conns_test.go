package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/control"
)

// checkNodeConnLimit: a node holds at most control.DefaultMaxNodeConns
// connections to the control service at once (each is an NB connection
// too); the next is answered with "resources exhausted" naming the node,
// another node is served meanwhile, and once one closes the node is served
// again.
func checkNodeConnLimit(t *testing.T, l *lab.Lab, n1, n2 *lab.Node) {
	t.Helper()
	ep := strings.TrimPrefix(strings.Split(l.TLS.ControlNB, ",")[0], "ssl:")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refusedAt := -1
	for i := 0; i < control.DefaultMaxNodeConns+5 && refusedAt < 0; i++ {
		c := dialAs(t, n1, ep)
		dbs, refusal := listDBs(t, c)
		if refusal == "" {
			if !strings.Contains(dbs, "OVN_Northbound") {
				t.Fatalf("connection %d of n1: list_dbs %s; want OVN_Northbound", i+1, dbs)
			}
			held = append(held, c)
			continue
		}
		c.Close()
		refusedAt = i
		if !strings.Contains(refusal, "resources exhausted") || !strings.Contains(refusal, "node "+n1.SystemID) {
			t.Errorf("refusal of n1's connection %d: %q; want resources exhausted, naming node %s", i+1, refusal, n1.SystemID)
		}
	}
	// n1's own daemons may hold a few (a pool refill under way).
	if refusedAt < control.DefaultMaxNodeConns-4 || refusedAt > control.DefaultMaxNodeConns {
		t.Fatalf("n1's connections: first refused after %d open (-1: none refused); want %d (a few less when n1 had some open)", refusedAt, control.DefaultMaxNodeConns)
	}
	c2 := dialAs(t, n2, ep)
	if dbs, refusal := listDBs(t, c2); refusal != "" || !strings.Contains(dbs, "OVN_Northbound") {
		t.Errorf("n2 while n1 is at its limit: list_dbs %s, refusal %q; want served", dbs, refusal)
	}
	c2.Close()
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialAs(t, n1, ep)
		dbs, refusal := listDBs(t, c)
		c.Close()
		if refusal == "" && strings.Contains(dbs, "OVN_Northbound") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 after closing one of its connections: list_dbs %s, refusal %q; want served", dbs, refusal)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dialAs opens a TLS connection to the control service at ep (IP:PORT)
// from n's namespace with n's certificate.
func dialAs(t *testing.T, n *lab.Node, ep string) net.Conn {
	t.Helper()
	cfg := tlsFor(t, n.TLSFiles())
	var c *tls.Conn
	err := n.Do(func() error {
		var err error
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ep, cfg)
		return err
	})
	if err != nil {
		t.Fatalf("connect %s as %s: %v", ep, n.SystemID, err)
	}
	return c
}

// listDBs sends list_dbs on c and returns its result (JSON), or the error
// the service answered with.
func listDBs(t *testing.T, c net.Conn) (result, refusal string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(c, `{"id":"ld","method":"list_dbs","params":[]}`); err != nil {
		t.Fatalf("send list_dbs: %v", err)
	}
	dec := json.NewDecoder(c)
	for {
		var m struct {
			ID     any             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  any             `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("reply to list_dbs: %v", err)
		}
		if m.ID != "ld" {
			continue
		}
		if m.Error != nil {
			return "", fmt.Sprint(m.Error)
		}
		return string(m.Result), ""
	}
}
