package policy_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

func TestPortGroupName(t *testing.T) {
	ovnName := regexp.MustCompile(`^[a-zA-Z_.][a-zA-Z_.0-9]*$`)
	cases := map[string]string{
		"web":       "ovl_web",
		"front-end": "ovl_front_2dend",
		"a_b":       "ovl_a_5fb",
		"v1.2":      "ovl_v1.2",
		"9lives":    "ovl_9lives",
	}
	for in, want := range cases {
		if got := policy.PortGroupName(in); got != want {
			t.Errorf("PortGroupName(%q) = %q, want %q", in, got, want)
		}
	}
	// Distinct names never share a group, and every group name is valid in OVN.
	seen := map[string]string{}
	for _, n := range []string{"a-b", "a_b", "a-_b", "a_-b", "a__b", "a--b", "a_2db", "a_5fb", "a.b", "ab"} {
		g := policy.PortGroupName(n)
		if !ovnName.MatchString(g) || !ovnName.MatchString(g+"_ip4") {
			t.Errorf("PortGroupName(%q) = %q: not a valid OVN name", n, g)
		}
		if o, dup := seen[g]; dup {
			t.Errorf("PortGroupName(%q) = PortGroupName(%q) = %q", n, o, g)
		}
		seen[g] = n
	}
}

func TestValidate(t *testing.T) {
	ok := policy.Spec{Name: "p", Network: "web", Action: policy.Allow, From: []string{"198.18.0.5", "app", "app", "198.18.4.0/24"}, Proto: "TCP", Port: "8000-8080", Priority: 5}
	if _, err := ok.Validate(); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	if strings.Join(ok.From, ",") != "198.18.0.5/32,app,198.18.4.0/24" || ok.Proto != "tcp" {
		t.Errorf("normalised spec = %+v", ok)
	}
	bad := []struct {
		mod  func(s *policy.Spec)
		want string
	}{
		{func(s *policy.Spec) { s.Port = "0" }, `port "0": want a port 1..65535`},
		{func(s *policy.Spec) { s.Port = "70000" }, `port "70000"`},
		{func(s *policy.Spec) { s.Port = "90-80" }, "N <= M"},
		{func(s *policy.Spec) { s.Port = "http" }, `port "http"`},
		{func(s *policy.Spec) { s.Proto = ""; s.Port = "80" }, "port 80: needs proto tcp or udp"},
		{func(s *policy.Spec) { s.Proto = "icmp"; s.Port = "80" }, "needs proto tcp or udp"},
		{func(s *policy.Spec) { s.Proto = "sctp" }, `proto "sctp": allowed are tcp, udp, icmp`},
		{func(s *policy.Spec) { s.Action = "" }, "exactly one of allow or deny"},
		{func(s *policy.Spec) { s.From = []string{"198.18.0.0/33"} }, `from "198.18.0.0/33": invalid CIDR`},
		{func(s *policy.Spec) { s.From = []string{"198.18.0.1/24"} }, "host bits set; did you mean 198.18.0.0/24"},
		{func(s *policy.Spec) { s.From = []string{"fd00::1/64"} }, "host bits set; did you mean fd00::/64"},
		{func(s *policy.Spec) { s.From = []string{"::ffff:198.18.0.1"} }, "IPv4-mapped"},
		{func(s *policy.Spec) { s.From = []string{"any", "web"} }, "from any: cannot be combined"},
		{func(s *policy.Spec) { s.From = []string{"-x"} }, `from "-x"`},
		{func(s *policy.Spec) { s.Priority = 1001 }, "priority 1001: allowed is 0..1000"},
		{func(s *policy.Spec) { s.Priority = -1 }, "priority -1"},
		{func(s *policy.Spec) { s.Network = "" }, "network: the target network is required"},
		{func(s *policy.Spec) { s.Name = "a b" }, `policy name "a b"`},
		{func(s *policy.Spec) { s.Name = strings.Repeat("x", 64) }, "at most 63"},
	}
	for _, b := range bad {
		s := policy.Spec{Name: "p", Network: "web", Action: policy.Allow, Proto: "tcp", Port: "80"}
		b.mod(&s)
		if _, err := s.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Validate(%+v) error = %v; want it to contain %q", s, err, b.want)
		}
	}
}

func TestPriorityOrder(t *testing.T) {
	if !(policy.ACLPriority(100, policy.Deny) > policy.ACLPriority(100, policy.Allow) &&
		policy.ACLPriority(101, policy.Allow) > policy.ACLPriority(100, policy.Deny) &&
		policy.ACLPriority(policy.MinPriority, policy.Allow) > 900 && policy.ACLPriority(policy.MaxPriority, policy.Deny) <= 32767) {
		t.Fatal("ACL priority mapping breaks the documented precedence")
	}
}

func TestCreateListDelete(t *testing.T) {
	_, c := nb(t)
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	addNetwork(t, c, "app", "198.18.2.0/24", policy.DefaultDeny)
	if _, err := policy.Create(ctx, c, policy.Spec{Name: "p1", Network: "app", Action: policy.Allow, From: []string{"web", "198.18.9.0/24"}, Proto: "tcp", Port: "8080", Priority: 10, Log: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Create(ctx, c, policy.Spec{Name: "p2", Network: "app", Action: policy.Deny, Proto: "udp", Priority: 10}); err != nil {
		t.Fatal(err)
	}
	p3, err := policy.Create(ctx, c, policy.Spec{Name: "p3", Network: "app", Action: policy.Allow, Priority: 20})
	if err != nil {
		t.Fatal(err)
	}
	// The UUID Create reports is the one of the ACL it made.
	got, err := policy.Get(ctx, c, "p3")
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID == "" || got.UUID != p3.UUID {
		t.Fatalf("Get p3: UUID %q; Create said %q", got.UUID, p3.UUID)
	}
	ps, err := policy.List(ctx, c, "app")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, p := range ps {
		order = append(order, p.Name)
	}
	if strings.Join(order, ",") != "p3,p2,p1" || ps[0].Order != 1 || ps[2].Order != 3 {
		t.Fatalf("effective order = %v, want p3 (prio 20), p2 (deny 10), p1 (allow 10)", order)
	}
	p1, err := policy.Get(ctx, c, "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := "outport == @ovl_app && ip && (ip4.src == $ovl_web_ip4 || ip6.src == $ovl_web_ip6 || ip4.src == $ovlpol_p1) && tcp && tcp.dst == 8080"
	if p1.Match != want || !p1.Log || p1.Order != 3 || strings.Join(p1.From, ",") != "web,198.18.9.0/24" || p1.Port != "8080" {
		t.Errorf("p1 = %+v; want match %q", p1, want)
	}
	var acls []*nbdb.ACL
	if err := dbconn.Select(ctx, c, &nbdb.ACL{}, &acls); err != nil {
		t.Fatal(err)
	}
	for _, a := range acls {
		if a.ExternalIDs[owner.KeyName] == "p1" && (a.Name == nil || *a.Name != "p1" || a.Severity == nil || a.Action != nbdb.ACLActionAllowRelated ||
			a.Meter == nil || *a.Meter != policy.LogMeter) {
			t.Errorf("p1 ACL = %+v: want name p1, log severity and meter, allow-related", a)
		}
	}
	if n := count[nbdb.Meter](t, c, dbops.NameIs(policy.LogMeter)); n != 1 {
		t.Errorf("log meters = %d, want 1", n)
	}
	if n := count[nbdb.AddressSet](t, c, dbops.NameIs("ovlpol_p1")); n != 1 {
		t.Errorf("address sets of p1 = %d, want 1", n)
	}

	// Duplicate name, even on another network.
	before := rowCounts(t, c)
	_, err = policy.Create(ctx, c, policy.Spec{Name: "p1", Network: "web", Action: policy.Allow})
	if !errors.Is(err, policy.ErrExists) {
		t.Errorf("duplicate create error = %v, want ErrExists", err)
	}
	if after := rowCounts(t, c); after != before {
		t.Errorf("failed create wrote rows: %s -> %s", before, after)
	}

	// A network used as a source cannot be deleted before its policies.
	if _, err := policy.DeleteNetworkOps(ctx, c, "web"); !errors.Is(err, policy.ErrInUse) || !strings.Contains(err.Error(), "p1 (on network app)") {
		t.Errorf("DeleteNetworkOps(web) error = %v, want ErrInUse naming p1", err)
	}

	if err := policy.Delete(ctx, c, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Get(ctx, c, "p1"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	if n := count[nbdb.AddressSet](t, c); n != 0 {
		t.Errorf("address sets after delete = %d, want 0", n)
	}
	if err := policy.Delete(ctx, c, "p1"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}

	// Deleting network app takes its port group, isolation and policies.
	ops, err := policy.DeleteNetworkOps(ctx, c, "app")
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, dbops.Delete(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs("app")}))
	if _, err := dbconn.Transact(ctx, c, ops...); err != nil {
		t.Fatal(err)
	}
	if n := count[nbdb.ACL](t, c); n != 0 {
		t.Errorf("ACLs left after deleting the network: %d", n)
	}
	if n := count[nbdb.PortGroup](t, c); n != 1 {
		t.Errorf("port groups left = %d, want 1 (web)", n)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	srv, c := nb(t)
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	// A switch we do not own.
	srv.Run(t, "ovn-nbctl", "ls-add", "foreign")
	cases := []struct {
		s    policy.Spec
		want error
		msg  string
	}{
		{policy.Spec{Name: "x", Network: "nosuch", Action: policy.Allow}, policy.ErrNotFound, `network nosuch: network "nosuch": not found`},
		{policy.Spec{Name: "x", Network: "foreign", Action: policy.Allow}, policy.ErrNotOwned, "not managed by ovlmgr"},
		{policy.Spec{Name: "x", Network: "web", Action: policy.Allow, From: []string{"nosuch"}}, policy.ErrNotFound, "from nosuch"},
		{policy.Spec{Name: "x", Network: "web", Action: policy.Allow, From: []string{"foreign"}}, policy.ErrNotOwned, "from foreign"},
		{policy.Spec{Name: "x", Network: "web", Action: policy.Allow, From: []string{"198.18.0.0/33"}}, nil, "invalid CIDR"},
		{policy.Spec{Name: "x", Network: "web", Action: policy.Allow, Proto: "tcp", Port: "0"}, nil, `port "0"`},
		{policy.Spec{Name: "x", Network: "web", Action: policy.Allow, Proto: "tcp", Port: "70000"}, nil, `port "70000"`},
		{policy.Spec{Name: "x", Network: "web", Action: ""}, nil, "allow or deny"},
	}
	before := rowCounts(t, c)
	for _, tc := range cases {
		_, err := policy.Create(ctx, c, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Create(%+v) error = %v; want %q", tc.s, err, tc.msg)
		}
	}
	if err := policy.SetIsolation(ctx, c, "foreign", policy.DefaultDeny); !errors.Is(err, policy.ErrNotOwned) {
		t.Errorf("SetIsolation(foreign) = %v, want ErrNotOwned", err)
	}
	if err := policy.SetIsolation(ctx, c, "web", "deny-all"); err == nil || !strings.Contains(err.Error(), "allowed are default-deny, default-allow") {
		t.Errorf("SetIsolation(bad mode) = %v", err)
	}
	if after := rowCounts(t, c); after != before {
		t.Errorf("bad input wrote rows: %s -> %s", before, after)
	}
}

func TestPortGroupMembership(t *testing.T) {
	_, c := nb(t)
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	u := addPort(t, c, "web", "c1", "0a:00:00:00:00:01", "198.18.1.5")
	pgPorts := func() []string {
		var pgs []*nbdb.PortGroup
		if err := dbconn.Select(ctx, c, &nbdb.PortGroup{}, &pgs); err != nil || len(pgs) != 1 {
			t.Fatalf("port groups: %v %v", pgs, err)
		}
		return pgs[0].Ports
	}
	if p := pgPorts(); len(p) != 1 || p[0] != u {
		t.Fatalf("port group ports = %v, want [%s]", p, u)
	}
	// Deleting the port (as CNI DEL does) drops it from the group: weak reference.
	if _, err := dbconn.Transact(ctx, c, dbops.DelRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs("web")}, "ports", u)); err != nil {
		t.Fatal(err)
	}
	if p := pgPorts(); len(p) != 0 {
		t.Fatalf("port group ports after port delete = %v, want none", p)
	}
}

func TestLegacyNetworkGetsPortGroup(t *testing.T) {
	_, c := nb(t)
	ctx := context.Background()
	// A network created before port groups: switch and a port, no group.
	ls := &nbdb.LogicalSwitch{UUID: "ls", Name: "old", ExternalIDs: owner.IDs(owner.KindNetwork, "old", nil), OtherConfig: map[string]string{"subnet": "198.18.5.0/24"}}
	lsp := &nbdb.LogicalSwitchPort{UUID: "p", Name: "old-c1", Addresses: []string{"0a:00:00:00:05:05 198.18.5.5"}}
	rp := &nbdb.LogicalSwitchPort{UUID: "rp", Name: "old-r", Type: "router", Addresses: []string{"router"}}
	ls.Ports = []string{"p", "rp"}
	tx := dbops.NewTx(c)
	lspIns := tx.Create(lsp)
	tx.Create(rp)
	tx.Create(ls)
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := policy.SetIsolation(ctx, c, "old", policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	if err := policy.SetIsolation(ctx, c, "old", policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	var pgs []*nbdb.PortGroup
	if err := dbconn.Select(ctx, c, &nbdb.PortGroup{}, &pgs); err != nil || len(pgs) != 1 {
		t.Fatalf("port groups: %v %v", pgs, err)
	}
	if len(pgs[0].Ports) != 1 || pgs[0].Ports[0] != lspIns.UUID() {
		t.Errorf("legacy port group ports = %v, want only the container port %s", pgs[0].Ports, lspIns.UUID())
	}
	if len(pgs[0].ACLs) != 2 || count[nbdb.ACL](t, c) != 2 {
		t.Errorf("default-deny twice: %d ACLs on the group, %d in NB; want 2", len(pgs[0].ACLs), count[nbdb.ACL](t, c))
	}
	if m, err := policy.Isolation(ctx, c, "old"); err != nil || m != policy.DefaultDeny {
		t.Errorf("Isolation = %q, %v", m, err)
	}
	if err := policy.SetIsolation(ctx, c, "old", policy.DefaultAllow); err != nil {
		t.Fatal(err)
	}
	if n := count[nbdb.ACL](t, c); n != 0 {
		t.Errorf("ACLs after default-allow = %d, want 0", n)
	}
}

// TestConcurrentCreateSameName: two clients create one policy name at once
// (on different networks): exactly one wins and one ACL exists.
func TestConcurrentCreateSameName(t *testing.T) {
	srv, c := nb(t)
	c2, err := dbconn.ConnectNB(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	addNetwork(t, c, "app", "198.18.2.0/24", "")
	for round := 0; round < 10; round++ {
		name := "p" + string(rune('a'+round))
		errs := make(chan error, 2)
		for i, cl := range []client.Client{c, c2} {
			go func(net string, cl client.Client) {
				_, err := policy.Create(ctx, cl, policy.Spec{Name: name, Network: net, Action: policy.Allow, From: []string{"198.18.9.0/24"}})
				errs <- err
			}([]string{"web", "app"}[i], cl)
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("round %d: %v, %v; want exactly one success", round, e1, e2)
		}
		if n := count[nbdb.ACL](t, c, dbops.Owned(owner.KindPolicy, map[string]string{owner.KeyName: name})); n != 1 {
			t.Fatalf("round %d: %d ACLs named %s", round, n, name)
		}
	}
}
