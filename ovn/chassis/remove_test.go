package chassis

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// committed counts the write transactions in a standalone database file:
// ovsdb-server appends one record per committed transaction.
func committed(t *testing.T, s *ovsdbtest.Server) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("OVSDB JSON "))
}

// TestRemoveNamedPortOneTransaction: a container port goes with its DNS
// names (an alias's A record and its PTR) in one NB transaction, so a
// removal never stops between them; nothing of either is left, and a
// second removal writes nothing.
func TestRemoveNamedPortOneTransaction(t *testing.T) {
	s := ovsdbtest.StartNB(t)
	ctx := context.Background()
	nb, err := dbconn.ConnectNB(ctx, s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, err := network.Create(ctx, nb, network.Spec{Name: "web", Subnet: "198.19.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.19.0.10")
	p, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "web", Subnet: netip.MustParsePrefix("198.19.0.0/24"),
		Gateway: netip.MustParseAddr("198.19.0.1"), Node: "n1", Container: "c0ffee0123456789", IfName: "eth0", IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	c := service.Container{Network: "web", Port: p.Name, ContainerID: "c0ffee0123456789", Aliases: []string{"api"}, IPs: p.IPs()}
	if _, err := service.ContainerAdded(ctx, nb, c); err != nil {
		t.Fatal(err)
	}
	recs, err := dns.Records(ctx, nb, "web")
	if err != nil || recs["api.web.ovl"] != ip.String() {
		t.Fatalf("before: records %v (%v), want api.web.ovl = %s", recs, err, ip)
	}

	before := committed(t, s)
	if err := RemoveNamedPort(ctx, nb, p, c.Aliases, ""); err != nil {
		t.Fatal(err)
	}
	if n := committed(t, s) - before; n != 1 {
		t.Errorf("the port and its names went in %d transactions, want 1", n)
	}
	if _, err := ovnport.Get(ctx, nb, p.Name); !errors.Is(err, ovnport.ErrNotFound) {
		t.Errorf("port %s after removal: %v, want not found", p.Name, err)
	}
	recs, err = dns.Records(ctx, nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range recs {
		if k == "api.web.ovl" || k == dns.ReverseName(ip.AsSlice()) {
			t.Errorf("record %s = %q left after removal", k, v)
		}
	}
	// Again: nothing left to do, nothing written.
	before = committed(t, s)
	if err := RemoveNamedPort(ctx, nb, p, c.Aliases, ""); err != nil {
		t.Fatal(err)
	}
	if n := committed(t, s) - before; n != 0 {
		t.Errorf("a second removal wrote %d transactions, want 0", n)
	}
}
