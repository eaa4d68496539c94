package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

func TestNames(t *testing.T) {
	cases := []struct {
		aliases    []string
		pod, id    string
		want       string
		wantIDName string
	}{
		{[]string{"Web_1"}, "pod", "0123456789abcdef", "web-1", "0123456789ab"},
		{nil, "my-pod", "0123456789abcdef", "my-pod", "0123456789ab"},
		{[]string{"--"}, "", "ABCDEF0123456789", "abcdef012345", "abcdef012345"},
		{nil, "", "short", "short", "short"},
	}
	for _, c := range cases {
		if got := dns.HostName(c.aliases, c.pod, c.id); got != c.want {
			t.Errorf("HostName(%v, %q, %q) = %q, want %q", c.aliases, c.pod, c.id, got, c.want)
		}
		if got := dns.IDName(c.id); got != c.wantIDName {
			t.Errorf("IDName(%q) = %q, want %q", c.id, got, c.wantIDName)
		}
	}
	if got := dns.ReverseName(net.ParseIP("198.18.3.4")); got != "4.3.18.198.in-addr.arpa" {
		t.Errorf("ReverseName v4 = %q", got)
	}
	if got := dns.ReverseName(net.ParseIP("2001:db8::1")); got != "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" {
		t.Errorf("ReverseName v6 = %q", got)
	}
	if got := dns.FQDN("db", "Backend", "corp.test"); got != "db.backend.corp.test" {
		t.Errorf("FQDN = %q", got)
	}
	for in, want := range map[string]string{"": "ovl", "Corp.Test.": "corp.test", "a-b.c": "a-b.c"} {
		if got, err := dns.NormalizeDomain(in); err != nil || got != want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"-a", "a..b", "a_b", "x.-y", strings.Repeat("a", 64)} {
		if _, err := dns.NormalizeDomain(bad); err == nil || !strings.Contains(err.Error(), "allowed are") {
			t.Errorf("NormalizeDomain(%q) error = %v; want a clear error", bad, err)
		}
	}
	for _, bad := range []string{"", "a.b", "UP", "-x", "x_y"} {
		if err := dns.ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) = nil; want error", bad)
		}
	}
}

type env struct {
	srv *ovsdbtest.Server
	nb  client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	nb, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	return &env{srv: srv, nb: nb}
}

// network creates an ovlmgr-owned switch the way ovn/network does.
func (e *env) network(t *testing.T, name, domain string) {
	t.Helper()
	args := []string{"ls-add", name, "--", "set", "logical_switch", name,
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=network`,
		fmt.Sprintf(`external_ids:"ovlmgr.io/name"=%s`, name), `external_ids:"ovlmgr.io/gateway"="198.18.0.1"`, "other_config:subnet=198.18.0.0/24"}
	if domain != "" {
		args = append(args, fmt.Sprintf(`external_ids:"ovlmgr.io/domain"=%q`, domain))
	}
	e.srv.Run(t, "ovn-nbctl", args...)
}

// attach puts network on router r (creating r) the way OVN wires it.
func (e *env) attach(t *testing.T, r, network string, n int) {
	t.Helper()
	e.srv.Run(t, "ovn-nbctl", "--may-exist", "lr-add", r)
	lrp := r + "-" + network
	e.srv.Run(t, "ovn-nbctl", "lrp-add", r, lrp, fmt.Sprintf("02:00:00:00:00:%02x", n), fmt.Sprintf("198.18.%d.1/24", n))
	lsp := network + "-" + r
	e.srv.Run(t, "ovn-nbctl", "lsp-add", network, lsp, "--", "lsp-set-type", lsp, "router",
		"--", "lsp-set-addresses", lsp, "router", "--", "lsp-set-options", lsp, "router-port="+lrp)
}

func (e *env) detach(t *testing.T, r, network string) {
	e.srv.Run(t, "ovn-nbctl", "lsp-del", network+"-"+r, "--", "lrp-del", r+"-"+network)
}

func (e *env) dnsRows(t *testing.T) []*nbdb.DNS {
	t.Helper()
	var rows []*nbdb.DNS
	if err := dbconn.Select(context.Background(), e.nb, &nbdb.DNS{}, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func (e *env) switchDNS(t *testing.T, name string) []string {
	t.Helper()
	m := &nbdb.LogicalSwitch{}
	var rows []*nbdb.LogicalSwitch
	if err := dbconn.Select(context.Background(), e.nb, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("switch %s: %d rows", name, len(rows))
	}
	out := rows[0].DNSRecords
	sort.Strings(out)
	return out
}

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, x := range s {
		out = append(out, net.ParseIP(x))
	}
	return out
}

func TestRegisterUnregister(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	h := dns.Host{Network: "web", Name: "a", ContainerID: "c0ffee0123456789", IPs: ips("198.18.0.10")}
	for i := 0; i < 2; i++ { // repeatable
		reg, err := dns.Register(ctx, e.nb, h)
		if err != nil {
			t.Fatal(err)
		}
		if reg.FQDN != "a.web.ovl" || reg.Clash != "" || strings.Join(reg.Search, " ") != "web.ovl ovl" {
			t.Fatalf("registration = %+v", reg)
		}
	}
	recs, err := dns.Records(ctx, e.nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.web.ovl": "198.18.0.10", "10.0.18.198.in-addr.arpa": "a.web.ovl"}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("records = %v, want %v", recs, want)
	}
	rows := e.dnsRows(t)
	var uuids []string
	for _, r := range rows {
		uuids = append(uuids, r.UUID)
	}
	sort.Strings(uuids)
	if len(rows) != dns.Shards || fmt.Sprint(e.switchDNS(t, "web")) != fmt.Sprint(uuids) {
		t.Fatalf("DNS rows %v; switch refs %v", rows, e.switchDNS(t, "web"))
	}
	got, err := dns.Resolve(ctx, e.nb, "web", "a")
	if err != nil || len(got) != 1 || !got[0].Equal(net.ParseIP("198.18.0.10")) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	for i := 0; i < 2; i++ {
		if err := dns.Unregister(ctx, e.nb, "web", h.IPs); err != nil {
			t.Fatal(err)
		}
	}
	if recs, _ := dns.Records(ctx, e.nb, "web"); len(recs) != 0 {
		t.Fatalf("records after unregister = %v", recs)
	}
	if err := dns.Unregister(ctx, e.nb, "gone", h.IPs); err != nil {
		t.Fatalf("unregister on a missing network = %v; want nil (DEL is repeatable)", err)
	}
}

func TestDualStackAndDomain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "db", "corp.test")
	reg, err := dns.Register(ctx, e.nb, dns.Host{Network: "db", Name: "pg", IPs: ips("198.18.0.5", "2001:db8::5")})
	if err != nil {
		t.Fatal(err)
	}
	if reg.FQDN != "pg.db.corp.test" || reg.Domain != "corp.test" {
		t.Fatalf("registration = %+v", reg)
	}
	recs, _ := dns.Records(ctx, e.nb, "db")
	if recs["pg.db.corp.test"] != "198.18.0.5 2001:db8::5" || recs[dns.ReverseName(net.ParseIP("2001:db8::5"))] != "pg.db.corp.test" ||
		recs["5.0.18.198.in-addr.arpa"] != "pg.db.corp.test" {
		t.Fatalf("records = %v", recs)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.srv.Run(t, "ovn-nbctl", "ls-add", "foreign") // not ours
	_, err := dns.Register(ctx, e.nb, dns.Host{Network: "foreign", Name: "a", IPs: ips("198.18.0.1")})
	if !errors.Is(err, dns.ErrNetworkNotFound) || !strings.Contains(err.Error(), `network "foreign"`) {
		t.Fatalf("register on a switch we do not own: %v", err)
	}
	_, err = dns.Register(ctx, e.nb, dns.Host{Network: "nope", Name: "a", IPs: ips("198.18.0.1")})
	if !errors.Is(err, dns.ErrNetworkNotFound) {
		t.Fatalf("register on unknown network: %v", err)
	}
	e.network(t, "web", "")
	if _, err = dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "a.b", IPs: ips("198.18.0.1")}); err == nil || !strings.Contains(err.Error(), "one DNS label") {
		t.Fatalf("bad name: %v", err)
	}
	if _, err = dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "a"}); err == nil || !strings.Contains(err.Error(), "no addresses") {
		t.Fatalf("no addresses: %v", err)
	}
	if rows := e.dnsRows(t); len(rows) != 0 {
		t.Fatalf("bad input wrote DNS rows: %v", rows)
	}
}

func TestClashFirstKeepsName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "db", ContainerID: "1111111111110000", IPs: ips("198.18.0.2")}); err != nil {
		t.Fatal(err)
	}
	reg, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "db", ContainerID: "2222222222220000", IPs: ips("198.18.0.3")})
	if err != nil {
		t.Fatal(err)
	}
	if reg.FQDN != "222222222222.web.ovl" || reg.Clash != "db.web.ovl" {
		t.Fatalf("clash registration = %+v", reg)
	}
	recs, _ := dns.Records(ctx, e.nb, "web")
	if recs["db.web.ovl"] != "198.18.0.2" || recs["222222222222.web.ovl"] != "198.18.0.3" || recs["3.0.18.198.in-addr.arpa"] != "222222222222.web.ovl" {
		t.Fatalf("records = %v", recs)
	}
	// Removing the loser leaves the winner's records alone.
	if err := dns.Unregister(ctx, e.nb, "web", ips("198.18.0.3")); err != nil {
		t.Fatal(err)
	}
	recs, _ = dns.Records(ctx, e.nb, "web")
	if len(recs) != 2 || recs["db.web.ovl"] != "198.18.0.2" {
		t.Fatalf("records = %v", recs)
	}
}

func TestConcurrentSameName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	const n = 6
	regs := make([]*dns.Registration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			regs[i], errs[i] = dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "same",
				ContainerID: fmt.Sprintf("%012d", i), IPs: ips(fmt.Sprintf("198.18.0.%d", 10+i))})
		}(i)
	}
	wg.Wait()
	winners := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if regs[i].FQDN == "same.web.ovl" {
			winners++
		} else if regs[i].Clash != "same.web.ovl" {
			t.Errorf("loser %d: %+v", i, regs[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d containers got the name; want exactly 1", winners)
	}
	if rows := e.dnsRows(t); len(rows) != dns.Shards {
		t.Fatalf("%d DNS rows for one network; want %d", len(rows), dns.Shards)
	}
}

func TestRouterPeers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"web", "db", "other"} {
		e.network(t, n, "")
	}
	e.attach(t, "r1", "web", 1)
	e.attach(t, "r1", "db", 2)
	e.attach(t, "r2", "other", 3)
	if err := dns.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	topo, err := dns.ReadTopology(ctx, e.nb)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.DNS) != 3 {
		t.Fatalf("DNS rows = %v; want one per network", topo.DNS)
	}
	web, db, other := sorted(topo.DNS["web"]), sorted(topo.DNS["db"]), sorted(topo.DNS["other"])
	both := sorted(append(append([]string{}, web...), db...))
	if got := e.switchDNS(t, "web"); fmt.Sprint(got) != fmt.Sprint(both) {
		t.Fatalf("web refs %v; want %v (itself and db, same router)", got, both)
	}
	if got := e.switchDNS(t, "other"); fmt.Sprint(got) != fmt.Sprint(other) {
		t.Fatalf("other refs %v; want only its own (other tenant)", got)
	}
	// Networks on a router need no nameserver placeholder; one without gets it.
	e.network(t, "flat", "")
	if err := dns.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	resp := func() string {
		return strings.TrimSpace(e.srv.Run(t, "ovn-nbctl", "--bare", "--columns=name,addresses", "find", "logical_switch_port",
			`external_ids:"ovlmgr.io/kind"=dns`))
	}
	if got := resp(); got != "ovldns:flat\n0a:58:c6:12:00:01 198.18.0.1" && got != "ovldns:flat\n\"0a:58:c6:12:00:01 198.18.0.1\"" {
		t.Fatalf("placeholder ports = %q; want only ovldns:flat owning the gateway", got)
	}
	if got := strings.TrimSpace(e.srv.Run(t, "ovn-nbctl", "lsp-get-ls", "ovldns:flat")); !strings.Contains(got, "(flat)") {
		t.Fatalf("placeholder on switch %q", got)
	}
	e.attach(t, "r2", "flat", 4)
	if err := dns.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	if got := resp(); got != "" {
		t.Fatalf("placeholder left after attaching a router: %q", got)
	}
	// db's names resolve from web: ovn-controller looks in every row the switch references.
	if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "db", Name: "pg", IPs: ips("198.18.2.10")}); err != nil {
		t.Fatal(err)
	}
	e.detach(t, "r1", "db")
	if err := dns.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	if got := e.switchDNS(t, "web"); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Fatalf("web refs after detaching db: %v; want only its own", got)
	}
	// Deleting a network's DNS row drops every reference.
	e.attach(t, "r1", "db", 2)
	if err := dns.Sync(ctx, e.nb); err != nil {
		t.Fatal(err)
	}
	ops, err := dns.DeleteOps(ctx, e.nb, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbconn.Transact(ctx, e.nb, ops...); err != nil {
		t.Fatal(err)
	}
	if got := e.switchDNS(t, "web"); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Fatalf("web refs after deleting db's row: %v", got)
	}
	if rows := e.dnsRows(t); len(rows) != 3*dns.Shards {
		t.Fatalf("DNS rows after delete: %d; want %d", len(rows), 3*dns.Shards)
	}
}

func sorted(s []string) []string {
	s = append([]string{}, s...)
	sort.Strings(s)
	return s
}

func startNB(tb testing.TB) *ovsdbtest.Server { return ovsdbtest.StartNB(tb) }

func TestUnregisterHost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	a := dns.Host{Network: "web", Name: "db", ContainerID: "aaaaaaaaaaaa0000", IPs: ips("198.18.0.2")}
	b := dns.Host{Network: "web", Name: "db", ContainerID: "bbbbbbbbbbbb0000", IPs: ips("198.18.0.3")} // clashes: gets its ID name
	c := dns.Host{Network: "web", Name: "cache", ContainerID: "cccccccccccc0000", IPs: ips("198.18.0.4")}
	for _, h := range []dns.Host{a, b, c} {
		if _, err := dns.Register(ctx, e.nb, h); err != nil {
			t.Fatal(err)
		}
	}
	// The clash loser, found under its ID name.
	if err := dns.UnregisterHost(ctx, e.nb, b); err != nil {
		t.Fatal(err)
	}
	// A DEL whose name hint is wrong falls back to reading the row.
	wrong := c
	wrong.Name = "not-what-add-used"
	if err := dns.UnregisterHost(ctx, e.nb, wrong); err != nil {
		t.Fatal(err)
	}
	recs, _ := dns.Records(ctx, e.nb, "web")
	want := map[string]string{"db.web.ovl": "198.18.0.2", "2.0.18.198.in-addr.arpa": "db.web.ovl"}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("records = %v; want only a's %v", recs, want)
	}
	for i := 0; i < 2; i++ {
		if err := dns.UnregisterHost(ctx, e.nb, a); err != nil {
			t.Fatal(err)
		}
	}
	if recs, _ := dns.Records(ctx, e.nb, "web"); len(recs) != 0 {
		t.Fatalf("records left: %v", recs)
	}
	if err := dns.UnregisterHost(ctx, e.nb, dns.Host{Network: "gone", Name: "x", IPs: ips("198.18.0.9")}); err != nil {
		t.Fatalf("missing network: %v", err)
	}
}

// TestConcurrentDifferentNames: containers registering and unregistering
// different names on one network at the same time never lose each other's
// records (each change mutates its own keys; a read-modify-write of the
// records map would drop a concurrent writer's names).
func TestConcurrentDifferentNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	const workers, rounds = 8, 12
	host := func(w, r int) dns.Host {
		return dns.Host{Network: "web", Name: fmt.Sprintf("w%d-r%d", w, r), ContainerID: fmt.Sprintf("%012d", w*100+r),
			IPs: ips(fmt.Sprintf("198.18.%d.%d", 1+w, 1+r))}
	}
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for r := 0; r < rounds; r++ {
				h := host(w, r)
				if _, err := dns.Register(ctx, e.nb, h); err != nil {
					errs <- err
					return
				}
				// Every other round's container goes again, alternately by
				// its naming inputs (DEL) and by address only (GC, undo).
				if r%2 == 1 {
					var err error
					if r%4 == 1 {
						err = dns.UnregisterHost(ctx, e.nb, h)
					} else {
						err = dns.Unregister(ctx, e.nb, "web", h.IPs)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	recs, err := dns.Records(ctx, e.nb, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for w := 0; w < workers; w++ {
		for r := 0; r < rounds; r += 2 {
			h := host(w, r)
			fqdn := dns.FQDN(h.Name, "web", dns.DefaultDomain)
			want[fqdn] = h.IPs[0].String()
			want[dns.ReverseName(h.IPs[0])] = fqdn
		}
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		for k, v := range want {
			if recs[k] != v {
				t.Errorf("record %s = %q; want %q", k, recs[k], v)
			}
		}
		for k, v := range recs {
			if _, ok := want[k]; !ok {
				t.Errorf("record %s = %q left", k, v)
			}
		}
	}
}

// TestLegacyRowMigrates: a network whose names are in one DNS row without
// the shard key (made before records were sharded) gets its shard rows on
// the next registration, with every old record moved to its shard: old
// names still resolve, clash and unregister.
func TestLegacyRowMigrates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network(t, "web", "")
	old := map[string]string{}
	for i := 1; i <= 40; i++ {
		ip := net.ParseIP(fmt.Sprintf("198.18.0.%d", 10+i))
		f := dns.FQDN(fmt.Sprintf("old%d", i), "web", dns.DefaultDomain)
		old[f], old[dns.ReverseName(ip)] = ip.String(), f
	}
	var recs []string
	for k, v := range old {
		recs = append(recs, fmt.Sprintf("%q=%q", k, v))
	}
	uuid := strings.TrimSpace(e.srv.Run(t, "ovn-nbctl", "create", "dns",
		`external_ids:"ovlmgr.io/owner"=ovlmgr`, `external_ids:"ovlmgr.io/kind"=dns`, `external_ids:"ovlmgr.io/name"=web`,
		`external_ids:"ovlmgr.io/network"=web`, "records={"+strings.Join(recs, ",")+"}"))
	e.srv.Run(t, "ovn-nbctl", "set", "logical_switch", "web", "dns_records="+uuid)
	if _, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "new", IPs: ips("198.18.0.99")}); err != nil {
		t.Fatal(err)
	}
	rows := e.dnsRows(t)
	if len(rows) != dns.Shards {
		t.Fatalf("%d DNS rows; want %d", len(rows), dns.Shards)
	}
	for _, r := range rows {
		for k := range r.Records {
			if want := fmt.Sprint(dns.ShardOf(k)); r.ExternalIDs[dns.KeyShard] != want {
				t.Errorf("record %s in shard %s; want %s", k, r.ExternalIDs[dns.KeyShard], want)
			}
		}
	}
	if len(e.switchDNS(t, "web")) != dns.Shards {
		t.Fatalf("switch refs %v; want the %d rows", e.switchDNS(t, "web"), dns.Shards)
	}
	if got, err := dns.Resolve(ctx, e.nb, "web", "old7"); err != nil || fmt.Sprint(got) != "[198.18.0.17]" {
		t.Fatalf("Resolve old7 = %v, %v", got, err)
	}
	if reg, err := dns.Register(ctx, e.nb, dns.Host{Network: "web", Name: "old7", ContainerID: "ddddddddddddd", IPs: ips("198.18.0.98")}); err != nil || reg.Clash == "" {
		t.Fatalf("Register old7 again = %+v, %v; want a clash", reg, err)
	}
	if err := dns.Unregister(ctx, e.nb, "web", ips("198.18.0.17")); err != nil {
		t.Fatal(err)
	}
	if got, _ := dns.Resolve(ctx, e.nb, "web", "old7"); got != nil {
		t.Fatalf("old7 still resolves to %v", got)
	}
}
