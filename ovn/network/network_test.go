package network_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// switchNamed reads the one Logical_Switch called name.
func switchNamed(t *testing.T, c client.Client, name string) *nbdb.LogicalSwitch {
	t.Helper()
	lss, err := dbops.SelectRows[nbdb.LogicalSwitch](context.Background(), c, []ovsdb.Condition{dbops.NameIs(name)})
	if err != nil || len(lss) != 1 {
		t.Fatalf("switch %s: %d rows, %v", name, len(lss), err)
	}
	return lss[0]
}

func connect(t testing.TB, srv *ovsdbtest.Server) client.Client {
	t.Helper()
	c, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func switches(t *testing.T, c client.Client) []*nbdb.LogicalSwitch {
	t.Helper()
	var rows []*nbdb.LogicalSwitch
	if err := dbconn.Select(context.Background(), c, &nbdb.LogicalSwitch{}, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"web", "a", "Web-1.prod_x", strings.Repeat("a", 63), "0abc"} {
		if err := network.ValidateName("name", ok); err != nil {
			t.Errorf("ValidateName(%q) = %v; want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "-web", ".web", "_web", "we b", "web/1", "wéb", strings.Repeat("a", 64), "web;rm"} {
		err := network.ValidateName("name", bad)
		if err == nil {
			t.Errorf("ValidateName(%q) = nil; want an error", bad)
			continue
		}
		if bad != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ValidateName(%q) = %v; want it to quote the value", bad, err)
		}
	}
}

// TestCreateRejects checks every rule on the spec: one-line errors naming
// the field, the value and what is allowed, and nothing written.
func TestCreateRejects(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	cases := []struct {
		spec network.Spec
		want []string
	}{
		{network.Spec{Name: "-web", Subnet: "198.19.0.0/24"}, []string{`name "-web"`, "[A-Za-z0-9]"}},
		{network.Spec{Name: strings.Repeat("w", 64), Subnet: "198.19.0.0/24"}, []string{"at most 63"}},
		{network.Spec{Name: "web"}, []string{"subnet is required", "/8 to /30", "IPv6 /64"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/33"}, []string{`subnet "198.19.0.0/33"`, "not a valid IPv4 CIDR", "/8 to /30"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0"}, []string{`subnet "198.19.0.0"`, "not a valid IPv4 CIDR"}},
		{network.Spec{Name: "web", Subnet: "198.0.0.0/7"}, []string{`subnet "198.0.0.0/7"`, "/7 out of range", "/8 to /30"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/31"}, []string{"/31 out of range"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.5/24"}, []string{`subnet "198.19.0.5/24"`, "host bits set", "198.19.0.0/24"}},
		{network.Spec{Name: "web", Subnet: "fd00::/64"}, []string{`subnet "fd00::/64"`, "not IPv4", "ipv6 subnet"}},
		{network.Spec{Name: "web", IPv6Subnet: "fd00::/56"}, []string{`ipv6 subnet "fd00::/56"`, "must be a /64", "got /56"}},
		{network.Spec{Name: "web", IPv6Subnet: "fd00:198:19::/64", Gateway: "fd00:198:19::fe"}, []string{`gateway "fd00:198:19::fe"`, "IPv6-only", "fd00:198:19::1"}},
		{network.Spec{Name: "web", IPv6Subnet: "fd00:198:19::/64", Exclude: []string{"fd00:198:19::5"}}, []string{`exclude "fd00:198:19::5"`, "IPv6-only"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "fd00::/48"}, []string{`ipv6 subnet "fd00::/48"`, "must be a /64"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "fd00::1/64"}, []string{"host bits set", "fd00::/64"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "198.19.1.0/24"}, []string{"not a valid IPv6 CIDR", "/64"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.1.1"}, []string{`gateway "198.19.1.1"`, "inside 198.19.0.0/24", "198.19.0.1 to 198.19.0.254"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.0.0"}, []string{`gateway "198.19.0.0"`, "not the network or broadcast"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.0.255"}, []string{`gateway "198.19.0.255"`}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "gw"}, []string{`gateway "gw"`, "not an IPv4 address"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.1.5"}}, []string{`exclude "198.19.1.5"`, "outside the subnet", "inside 198.19.0.0/24"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.0.9..198.19.0.5"}}, []string{`exclude "198.19.0.9..198.19.0.5"`, "end before its start"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.0.5-198.19.0.9"}}, []string{"not an IPv4 address or range", "IP..IP"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", MTU: 100}, []string{"mtu 100", "576 to 9000"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", MTU: 9001}, []string{"mtu 9001"}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Labels: map[string]string{"bad key": "v"}}, []string{`label "bad key=v"`}},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", ContainerNames: "no"}, []string{`container names "no"`, "want on or off"}},
	}
	for _, tc := range cases {
		_, err := network.Create(ctx, c, tc.spec)
		if err == nil {
			t.Errorf("Create(%+v) succeeded; want an error", tc.spec)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, fmt.Sprintf("create network %q: ", tc.spec.Name)) {
			t.Errorf("Create(%+v) error %q: want one line starting with the object", tc.spec, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Create(%+v) error %q: want it to contain %q", tc.spec, msg, w)
			}
		}
	}
	if rows := switches(t, c); len(rows) != 0 {
		t.Fatalf("NB has %d switches after only bad creates; want none", len(rows))
	}
}

func TestCreateGetListDelete(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	n, err := network.Create(ctx, c, network.Spec{
		Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.0.10", "198.19.0.20..198.19.0.29"},
		MTU: 1400, Labels: map[string]string{"team": "a"}, IPv6Subnet: "fd00:198:19::/64",
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway != "198.19.0.1" || n.Subnet != "198.19.0.0/24" || n.UUID == "" {
		t.Fatalf("created %+v; want gateway defaulting to the first host", n)
	}
	// The row as OVN's IPAM and ovn-nbctl see it.
	show := srv.Run(t, "ovn-nbctl", "show")
	if !strings.Contains(show, "(web)") {
		t.Errorf("ovn-nbctl show = %q; want the switch named web", show)
	}
	web := switchNamed(t, c, "web")
	for key, want := range map[string]string{
		"other_config:subnet":                   "198.19.0.0/24",
		"other_config:exclude_ips":              "198.19.0.1 198.19.0.10 198.19.0.20..198.19.0.29",
		"other_config:ipv6_prefix":              "fd00:198:19::",
		"external_ids:\"ovlmgr.io/owner\"":      "ovlmgr",
		"external_ids:\"ovlmgr.io/kind\"":       "network",
		"external_ids:\"ovlmgr.io/gateway\"":    "198.19.0.1",
		"external_ids:\"ovlmgr.io/mtu\"":        "1400",
		"external_ids:\"ovlmgr.io/label.team\"": "a",
	} {
		col, k, _ := strings.Cut(key, ":")
		got := map[string]map[string]string{"other_config": web.OtherConfig, "external_ids": web.ExternalIDs}[col][strings.Trim(k, `"`)]
		if got != want {
			t.Errorf("%s = %q; want %q", key, got, want)
		}
	}
	g, err := network.Get(ctx, c, "web")
	if err != nil {
		t.Fatal(err)
	}
	// 254 hosts - gateway - 1 - 10 excluded
	if g.Free != 242 || g.Ports != 0 || g.MTU != 1400 || g.Labels["team"] != "a" || g.IPv6Prefix != "fd00:198:19::/64" ||
		strings.Join(g.Exclude, " ") != "198.19.0.10 198.19.0.20..198.19.0.29" || g.UUID != n.UUID {
		t.Errorf("Get = %+v", g)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "db", Subnet: "198.19.1.0/28", Gateway: "198.19.1.14"}); err != nil {
		t.Fatal(err)
	}
	l, err := network.List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[0].Name != "db" || l[1].Name != "web" || l[0].Gateway != "198.19.1.14" || l[0].Free != 13 {
		t.Fatalf("List = %+v; want db (13 free) and web, sorted", l)
	}
	if err := network.Delete(ctx, c, "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Get(ctx, c, "web"); !errors.Is(err, network.ErrNotFound) {
		t.Fatalf("Get after delete: %v; want ErrNotFound", err)
	}
	if err := network.Delete(ctx, c, "web", false); !errors.Is(err, network.ErrNotFound) {
		t.Fatalf("second Delete: %v; want ErrNotFound", err)
	}
	// The subnet is free again.
	if _, err := network.Create(ctx, c, network.Spec{Name: "web2", Subnet: "198.19.0.0/24"}); err != nil {
		t.Fatalf("re-create on a freed subnet: %v", err)
	}
}

func TestExistsAndMayExist(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	spec := network.Spec{Name: "web", Subnet: "198.19.0.0/24", Labels: map[string]string{"a": "b"}}
	first, err := network.Create(ctx, c, spec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = network.Create(ctx, c, spec)
	if !errors.Is(err, network.ErrExists) || !strings.Contains(err.Error(), "network web already exists") {
		t.Fatalf("second create: %v; want \"network web already exists\"", err)
	}
	spec.MayExist = true
	again, err := network.Create(ctx, c, spec)
	if err != nil || again.UUID != first.UUID {
		t.Fatalf("may-exist identical: %+v, %v; want the existing network", again, err)
	}
	spec.Gateway = "198.19.0.1" // the default spelled out is the same spec
	if _, err := network.Create(ctx, c, spec); err != nil {
		t.Fatalf("may-exist with the default gateway spelled out: %v", err)
	}
	for _, diff := range []network.Spec{
		{Name: "web", Subnet: "198.19.0.0/24", MayExist: true},                                                 // labels differ
		{Name: "web", Subnet: "198.19.0.0/24", Labels: map[string]string{"a": "b"}, MTU: 1400, MayExist: true}, // MTU
		{Name: "web", Subnet: "198.19.4.0/24", Labels: map[string]string{"a": "b"}, MayExist: true},            // subnet
	} {
		_, err := network.Create(ctx, c, diff)
		if !errors.Is(err, network.ErrExists) || !strings.Contains(err.Error(), "different spec") {
			t.Errorf("may-exist with %+v: %v; want already exists with a different spec", diff, err)
		}
	}
	if n := len(switches(t, c)); n != 1 {
		t.Fatalf("%d switches; want 1", n)
	}
}

// TestForeignSwitch: a Logical_Switch someone else made is never touched.
func TestForeignSwitch(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	foreign := &nbdb.LogicalSwitch{Name: "web", OtherConfig: map[string]string{"subnet": "198.19.0.0/24"}}
	if err := dbops.NewTx(c).AddAPI(c.Create(foreign)).Transact(ctx); err != nil {
		t.Fatal(err)
	}
	before := switchNamed(t, c, "web")
	for _, may := range []bool{false, true} {
		_, err := network.Create(ctx, c, network.Spec{Name: "web", Subnet: "198.19.0.0/24", MayExist: may})
		if err == nil || !strings.Contains(err.Error(), "does not manage") {
			t.Errorf("create over a foreign switch (may-exist %v): %v; want a refusal", may, err)
		}
	}
	if _, err := network.Get(ctx, c, "web"); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("Get foreign: %v; want ErrNotFound", err)
	}
	if _, err := network.Lookup(ctx, c, "web"); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("Lookup foreign: %v; want ErrNotFound", err)
	}
	if err := network.Delete(ctx, c, "web", true); !errors.Is(err, network.ErrNotFound) || !strings.Contains(err.Error(), "not managed by ovlmgr") {
		t.Errorf("Delete foreign: %v; want a refusal", err)
	}
	if l, err := network.List(ctx, c); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v; want no networks", l, err)
	}
	// A foreign switch's subnet does not count for overlap (only ovlmgr networks do).
	if _, err := network.Create(ctx, c, network.Spec{Name: "other", Subnet: "198.19.0.0/24"}); err != nil {
		t.Errorf("create next to a foreign switch with the same subnet: %v", err)
	}
	if after := switchNamed(t, c, "web"); !reflect.DeepEqual(before, after) {
		t.Errorf("foreign switch changed:\nbefore %+v\nafter %+v", before, after)
	}
}

func TestOverlap(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	if _, err := network.Create(ctx, c, network.Spec{Name: "mid", Subnet: "198.18.16.0/20"}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"198.18.16.0/20", "198.18.0.0/16", "198.0.0.0/8", "198.18.20.0/24", "198.18.31.252/30", "198.18.16.0/21"} {
		_, err := network.Create(ctx, c, network.Spec{Name: "x", Subnet: sub})
		want := fmt.Sprintf(`subnet %q overlaps network "mid" (198.18.16.0/20)`, sub)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("create %s: %v; want %q", sub, err, want)
		}
	}
	for i, sub := range []string{"198.18.0.0/20", "198.18.32.0/19", "198.19.0.0/16", "198.18.64.0/30"} {
		if _, err := network.Create(ctx, c, network.Spec{Name: fmt.Sprintf("ok%d", i), Subnet: sub}); err != nil {
			t.Errorf("create disjoint %s: %v", sub, err)
		}
	}
	// After deleting mid, a subnet inside it and then its supernet's sibling work.
	if err := network.Delete(ctx, c, "mid", false); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "in", Subnet: "198.18.20.0/24"}); err != nil {
		t.Fatalf("create inside a deleted network's subnet: %v", err)
	}
	if n := len(switches(t, c)); n != 5 {
		t.Fatalf("%d switches; want 5", n)
	}
}

// raceCreates runs one Create per client at the same moment and returns
// the errors.
func raceCreates(clients []client.Client, specs []network.Spec) []error {
	errs := make([]error, len(clients))
	var ready, start sync.WaitGroup
	ready.Add(len(clients))
	start.Add(1)
	var done sync.WaitGroup
	for i := range clients {
		done.Add(1)
		go func(i int) {
			defer done.Done()
			ready.Done()
			start.Wait()
			_, errs[i] = network.Create(context.Background(), clients[i], specs[i])
		}(i)
	}
	ready.Wait()
	start.Done()
	done.Wait()
	return errs
}

// TestConcurrentCreateSameName: separate connections (as separate processes
// would have) create one name at once; exactly one wins each round.
func TestConcurrentCreateSameName(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	clients := []client.Client{connect(t, srv), connect(t, srv), connect(t, srv)}
	for round := 0; round < 20; round++ {
		name := fmt.Sprintf("web%d", round)
		specs := make([]network.Spec, len(clients))
		for i := range specs {
			// Different subnets: only the name guard can stop the losers.
			specs[i] = network.Spec{Name: name, Subnet: fmt.Sprintf("198.18.%d.0/24", round*len(clients)+i)}
		}
		errs := raceCreates(clients, specs)
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, network.ErrExists) || !strings.Contains(err.Error(), "network "+name+" already exists"):
				t.Errorf("round %d: loser error %v; want already exists", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners; want exactly 1 (%v)", round, wins, errs)
		}
	}
	if n := len(switches(t, connect(t, srv))); n != 20 {
		t.Fatalf("%d switches; want 20", n)
	}
}

// TestConcurrentOverlap: different names, overlapping subnets, at once:
// exactly one wins.
func TestConcurrentOverlap(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	clients := []client.Client{connect(t, srv), connect(t, srv)}
	for round := 0; round < 20; round++ {
		// alternate: container vs contained, and identical subnets
		a := fmt.Sprintf("198.18.%d.0/24", round)
		b := fmt.Sprintf("198.18.%d.128/25", round)
		if round%2 == 1 {
			b = a
		}
		errs := raceCreates(clients, []network.Spec{
			{Name: fmt.Sprintf("a%d", round), Subnet: a},
			{Name: fmt.Sprintf("b%d", round), Subnet: b},
		})
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !strings.Contains(err.Error(), "overlaps") {
				t.Errorf("round %d: loser error %v; want overlaps", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners; want exactly 1 (%v)", round, wins, errs)
		}
	}
}

// addPort attaches a Logical_Switch_Port with ids to switch sw.
func addPort(t *testing.T, c client.Client, sw, name string, ids map[string]string) {
	t.Helper()
	ctx := context.Background()
	var rows []*nbdb.LogicalSwitch
	m := &nbdb.LogicalSwitch{}
	if err := dbconn.Select(ctx, c, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: sw}); err != nil || len(rows) != 1 {
		t.Fatalf("find switch %s: %v %d", sw, err, len(rows))
	}
	lsp := &nbdb.LogicalSwitchPort{UUID: "newport", Name: name, Addresses: []string{"0a:58:c6:13:00:05 dynamic"}, ExternalIDs: ids}
	ins, err := c.Create(lsp)
	if err != nil {
		t.Fatal(err)
	}
	ls := rows[0]
	tx := dbops.NewTx(c).Add(ins...)
	tx.AddAPI(c.Where(ls).Mutate(ls, model.Mutation{Field: &ls.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"newport"}}))
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
}

func portIDs(network string) map[string]string {
	return owner.IDs(owner.KindPort, "p", map[string]string{owner.KeyNetwork: network})
}

func TestDeleteWithPorts(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	for _, n := range []string{"web", "db"} {
		sub := map[string]string{"web": "198.19.0.0/24", "db": "198.19.1.0/24"}[n]
		if _, err := network.Create(ctx, c, network.Spec{Name: n, Subnet: sub}); err != nil {
			t.Fatal(err)
		}
	}
	addPort(t, c, "web", "c1_eth0", portIDs("web"))
	addPort(t, c, "web", "c2_eth0", portIDs("web"))
	addPort(t, c, "db", "c3_eth0", portIDs("db"))
	g, err := network.Get(ctx, c, "web")
	if err != nil || g.Ports != 2 || g.Free != 251 {
		t.Fatalf("Get web = %+v, %v; want 2 ports and 251 free", g, err)
	}
	if l, err := network.Lookup(ctx, c, "web"); err != nil || l.Ports != 0 || l.Free != 253 || l.UUID != g.UUID {
		t.Fatalf("Lookup web = %+v, %v; want no port count and 253 free", l, err)
	}
	if l, err := network.List(ctx, c); err != nil || l[0].Ports != 1 || l[1].Ports != 2 {
		t.Fatalf("List = %+v, %v; want db 1 port, web 2", l, err)
	}
	err = network.Delete(ctx, c, "web", false)
	var inUse *network.PortsInUseError
	if !errors.As(err, &inUse) || strings.Join(inUse.Ports, ",") != "c1_eth0,c2_eth0" || !strings.Contains(err.Error(), "c1_eth0, c2_eth0") {
		t.Fatalf("Delete without force: %v; want it to list c1_eth0, c2_eth0", err)
	}
	if _, err := network.Get(ctx, c, "web"); err != nil {
		t.Fatalf("web gone after a refused delete: %v", err)
	}
	if err := network.Delete(ctx, c, "web", true); err != nil {
		t.Fatalf("Delete --force: %v", err)
	}
	lsps, err := dbops.SelectRows(ctx, c, nil, func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.Name} })
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range lsps {
		out = append(out, p.Name)
	}
	if names := strings.Join(out, " "); strings.Contains(names, "c1_eth0") || strings.Contains(names, "c2_eth0") || !strings.Contains(names, "c3_eth0") {
		t.Fatalf("ports after forced delete: %s; want only c3_eth0", names)
	}
	// A port ovlmgr did not create blocks even a forced delete.
	addPort(t, c, "db", "someone-elses", map[string]string{"k": "v"})
	err = network.Delete(ctx, c, "db", true)
	if err == nil || !strings.Contains(err.Error(), "someone-elses") || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("Delete with a foreign port: %v; want a refusal naming it", err)
	}
	if _, err := network.Get(ctx, c, "db"); err != nil {
		t.Fatalf("db gone: %v", err)
	}
}

// TestContainerNames: a network records container names off on its switch
// and Get reports it; on is the default and leaves the switch as before.
func TestContainerNames(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	c := connect(t, srv)
	ctx := context.Background()
	for i, tc := range []struct{ name, spec, want string }{{"quiet", "off", "off"}, {"loud", "", "on"}, {"said", "on", "on"}} {
		subnet := fmt.Sprintf("198.19.%d.0/24", i)
		if _, err := network.Create(ctx, c, network.Spec{Name: tc.name, Subnet: subnet, ContainerNames: tc.spec}); err != nil {
			t.Fatal(err)
		}
		n, err := network.Get(ctx, c, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if n.ContainerNames != tc.want {
			t.Errorf("network %s made with container names %q: Get says %q, want %q", tc.name, tc.spec, n.ContainerNames, tc.want)
		}
		// The same spec again is the same network.
		if _, err := network.Create(ctx, c, network.Spec{Name: tc.name, Subnet: subnet, ContainerNames: tc.spec, MayExist: true}); err != nil {
			t.Errorf("network %s again with may exist: %v", tc.name, err)
		}
	}
	if _, err := network.Create(ctx, c, network.Spec{Name: "quiet", Subnet: "198.19.0.0/24", MayExist: true}); err == nil {
		t.Error("network quiet again with container names on was accepted; want a different-spec error")
	}
}
