package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	publishpkg "github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// secureLab brings up a TLS lab (lab up --tls) with the control service
// and takes it down at test end.
func secureLab(t testing.TB, prefix string, nodes int) *lab.Lab {
	t.Helper()
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Nodes: nodes, Name: uniqueName(prefix), Gateways: []string{"none"}, TLS: true,
		ControlBin: filepath.Join(cniPluginDir(t), "ovlmgr")})
	if err != nil {
		t.Fatalf("TLS lab: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			t.Errorf("TLS lab down: %v", err)
		}
	})
	return l
}

// tlsFor loads files into a client config.
func tlsFor(t testing.TB, f dbconn.TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// connectFrom connects a database at ep from node's namespace with cfg
// (nil: plain TCP).
func connectFrom(ctx context.Context, n *lab.Node, m model.ClientDBModel, ep string, cfg *tls.Config) (client.Client, error) {
	var c client.Client
	err := n.Do(func() error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var err error
		c, err = dbconn.Connect(cctx, m, ep, dbconn.Options{TLS: cfg})
		return err
	})
	return c, err
}

func models(t testing.TB) (nb, sb model.ClientDBModel) {
	t.Helper()
	nb, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	sb, err = sbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	return nb, sb
}

// TestSecureRefused: on a TLS lab, from a node's namespace, the NB and SB
// refuse plain TCP, a certificate of another CA (presented by a client that
// trusts the lab's servers), and the NB refuses the node's own certificate;
// the admin certificate opens both and the node's opens the SB and the
// control service.
func TestSecureRefused(t *testing.T) {
	l := secureLab(t, "sr", 1)
	n1 := l.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nbm, sbm := models(t)
	nbSSL, sbSSL := "ssl:"+lab.CentralIP+":6641", "ssl:"+lab.CentralIP+":6642"
	ctlSSL := strings.Split(l.TLS.ControlNB, ",")[0]

	// A second PKI: same names, another CA.
	rogue := t.TempDir()
	if err := pki.Init(rogue, 0, false); err != nil {
		t.Fatal(err)
	}
	rogueCfg := func(role pki.Role, name string) *tls.Config {
		f, _, err := pki.IssueTo(rogue, filepath.Join(rogue, name), pki.Request{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		// Trusts the lab's servers: only the server can refuse.
		return &tls.Config{RootCAs: tlsFor(t, l.AdminTLS()).RootCAs, Certificates: []tls.Certificate{pair}}
	}
	admin, node := tlsFor(t, l.AdminTLS()), tlsFor(t, n1.TLSFiles())

	for _, tc := range []struct {
		what string
		m    model.ClientDBModel
		ep   string
		cfg  *tls.Config
		ok   bool
	}{
		{"plain TCP to NB", nbm, "tcp:" + lab.CentralIP + ":6641", nil, false},
		{"plain TCP to SB", sbm, "tcp:" + lab.CentralIP + ":6642", nil, false},
		{"another CA's admin to NB", nbm, nbSSL, rogueCfg(pki.RoleAdmin, "admin"), false},
		{"another CA's node to SB", sbm, sbSSL, rogueCfg(pki.RoleNode, n1.SystemID), false},
		{"another CA's node to the control service", nbm, ctlSSL, rogueCfg(pki.RoleNode, "n1x"), false},
		{"the node's own certificate to NB", nbm, nbSSL, node, false},
		{"admin to NB", nbm, nbSSL, admin, true},
		{"admin to SB", sbm, sbSSL, admin, true},
		{"node to SB", sbm, sbSSL, node, true},
		{"node to the control service", nbm, ctlSSL, node, true},
	} {
		c, err := connectFrom(ctx, n1, tc.m, tc.ep, tc.cfg)
		if err == nil {
			// A refused TLS client may connect and lose the connection on
			// its first call: read something.
			var rows []*nbdb.NBGlobal
			if tc.m.Name() == nbm.Name() {
				err = dbconn.Select(ctx, c, &nbdb.NBGlobal{}, &rows)
			} else {
				var ch []*sbdb.Chassis
				err = dbconn.Select(ctx, c, &sbdb.Chassis{}, &ch)
			}
			c.Close()
		}
		judgeConnect(t, tc.what, tc.ok, err)
	}
}

// TestSecureNodeIdentity: with node n1's credentials, from n1's namespace,
// through the control service: a container on n1 comes up (CNI ADD) and its
// port says who wrote it; deleting n2's port, creating a network, deleting
// a policy and changing NB_Global all fail with a permission error and
// change nothing; in the SB, n1 may change its own Chassis row and not n2's.
func TestSecureNodeIdentity(t *testing.T) {
	l := secureLab(t, "si", 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := cniNB(t, l) // the unix socket: the admin's local access
	net := "secweb"
	cniNetwork(t, admin, net, "198.19.40.0/24")
	if _, err := policy.Create(ctx, admin, policy.Spec{Name: "sec-allow", Network: net, Action: "allow", From: []string{"any"}, Proto: "tcp", Port: "80"}); err != nil {
		t.Fatal(err)
	}

	// A container on each node, through the plugin, which finds the
	// control service and its certificate in the node's Open_vSwitch db.
	c1 := newContainer(t, newRuntime(t, n1), confList(t, net, "1.1.0", nil))
	c1.mustAdd(t, ctx)
	c2 := newContainer(t, newRuntime(t, n2), confList(t, net, "1.1.0", nil))
	c2.mustAdd(t, ctx)
	p1, err := containerPort(ctx, admin, n1.SystemID, net, c1.id, c1.ifName)
	if err != nil {
		t.Fatal(err)
	}
	if got := p1.WrittenBy; got != "node:"+n1.SystemID {
		t.Errorf("n1's port %s written-by %q, want node:%s", p1.Name, got, n1.SystemID)
	}
	p2, err := containerPort(ctx, admin, n2.SystemID, net, c2.id, c2.ifName)
	if err != nil {
		t.Fatal(err)
	}
	// A runtime that passes no OVLMGR_* variables (a real node's): the
	// plugin takes the certificate from the node's Open_vSwitch SSL row.
	c3 := newContainer(t, newRuntime(t, n1), nil)
	noEnv := []string{dbconn.EnvCACert + "=", dbconn.EnvCert + "=", dbconn.EnvPrivateKey + "=", "CNI_CONTAINERID=" + c3.id,
		"CNI_NETNS=" + c3.ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + cniPluginDir(t)}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ovlmgr-cni","network":%q}`, net, net)
	if _, code, msg := rawPlugin(t, ctx, n1, append([]string{"CNI_COMMAND=ADD"}, noEnv...), conf); code != 0 {
		t.Fatalf("ADD with the node's SSL row only: code %d: %s", code, msg)
	}
	if p3, err := containerPort(ctx, admin, n1.SystemID, net, c3.id, "eth0"); err != nil || p3.WrittenBy != "node:"+n1.SystemID {
		t.Errorf("port of the SSL-row ADD: %+v, %v; want written-by node:%s", p3, err, n1.SystemID)
	}
	if _, code, msg := rawPlugin(t, ctx, n1, append([]string{"CNI_COMMAND=DEL"}, noEnv...), conf); code != 0 {
		t.Fatalf("DEL with the node's SSL row only: code %d: %s", code, msg)
	}

	nbm, sbm := models(t)
	asN1, err := connectFrom(ctx, n1, nbm, l.TLS.ControlNB, tlsFor(t, n1.TLSFiles()))
	if err != nil {
		t.Fatal(err)
	}
	defer asN1.Close()
	refused := func(what string, err error) {
		t.Helper()
		d, ok := dbconn.IsPermission(err)
		if !ok {
			t.Errorf("%s as n1: %v, want a permission error", what, err)
			return
		}
		if !strings.Contains(d, "node "+n1.SystemID) {
			t.Errorf("%s as n1: permission error %q does not name the node", what, d)
		}
		t.Logf("%s as n1: %v", what, err)
	}
	refused("delete n2's port", ovnport.Delete(ctx, asN1, p2.Name))
	if _, err := ovnport.Get(ctx, admin, p2.Name); err != nil {
		t.Errorf("n2's port after n1's delete: %v", err)
	}
	_, err = network.Create(ctx, asN1, network.Spec{Name: "secevil", Subnet: "198.19.41.0/24"})
	refused("create a network", err)
	if _, err := network.Get(ctx, admin, "secevil"); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("network created by n1: %v", err)
	}
	refused("delete a policy", policy.Delete(ctx, asN1, "sec-allow"))
	if _, err := policy.Get(ctx, admin, "sec-allow"); err != nil {
		t.Errorf("policy after n1's delete: %v", err)
	}
	var globals []*nbdb.NBGlobal
	if err := dbconn.Select(ctx, asN1, &nbdb.NBGlobal{}, &globals); err != nil || len(globals) != 1 {
		t.Fatalf("read NB_Global as n1: %v (%d rows)", err, len(globals))
	}
	g := globals[0]
	evil := &nbdb.NBGlobal{UUID: g.UUID, Options: map[string]string{"mac_prefix": "02:00:00"}}
	ops, err := asN1.Where(evil).Update(evil, &evil.Options)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dbconn.Transact(ctx, asN1, ops...)
	refused("change NB_Global", err)
	var after []*nbdb.NBGlobal
	if err := dbconn.Select(ctx, admin, &nbdb.NBGlobal{}, &after); err != nil || len(after) != 1 || fmt.Sprint(after[0].Options) != fmt.Sprint(g.Options) {
		t.Errorf("NB_Global options after n1's update: %v (before %v), err %v", after, g.Options, err)
	}

	// SB: OVN's RBAC (role ovn-controller) with n1's certificate.
	sbN1, err := connectFrom(ctx, n1, sbm, l.SBTCP, tlsFor(t, n1.TLSFiles()))
	if err != nil {
		t.Fatal(err)
	}
	defer sbN1.Close()
	chassis := func(name string) *sbdb.Chassis {
		var rows []*sbdb.Chassis
		m := &sbdb.Chassis{}
		if err := dbconn.Select(ctx, sbN1, m, &rows, model.Condition{Field: &m.Name, Function: "==", Value: name}); err != nil || len(rows) != 1 {
			t.Fatalf("chassis %s: %v (%d rows)", name, err, len(rows))
		}
		return rows[0]
	}
	mark := func(ch *sbdb.Chassis) error {
		ids := map[string]string{}
		for k, v := range ch.ExternalIDs {
			ids[k] = v
		}
		ids["ovlmgr-test"] = "written-by-n1"
		upd := &sbdb.Chassis{UUID: ch.UUID, ExternalIDs: ids}
		ops, err := sbN1.Where(upd).Update(upd, &upd.ExternalIDs)
		if err != nil {
			return err
		}
		_, err = dbconn.Transact(ctx, sbN1, ops...)
		return err
	}
	if err := mark(chassis(n1.SystemID)); err != nil {
		t.Errorf("n1 writes its own Chassis row: %v", err)
	}
	err = mark(chassis(n2.SystemID))
	if _, ok := dbconn.IsPermission(err); !ok {
		t.Errorf("n1 writes n2's Chassis row: %v, want a permission error", err)
	} else {
		t.Logf("n1 writes n2's Chassis row: %v", err)
	}
	if v := chassis(n2.SystemID).ExternalIDs["ovlmgr-test"]; v != "" {
		t.Errorf("n2's Chassis row has n1's mark %q", v)
	}
	// The control service logs what it refused.
	log, _ := os.ReadFile(filepath.Join(l.CentralDir, "ovlmgr-control1.stderr"))
	log2, _ := os.ReadFile(filepath.Join(l.CentralDir, "ovlmgr-control2.stderr"))
	if !strings.Contains(string(log)+string(log2), "node:"+n1.SystemID+": refused") {
		t.Errorf("control service logs name no refusal:\n%s%s", log, log2)
	}
}

// TestSecureControlFailover: the control service runs as two stateless
// instances; with either one killed, CNI ADD and DEL on a node still work
// through the other, and a restarted instance serves again.
func TestSecureControlFailover(t *testing.T) {
	l := secureLab(t, "sf", 1)
	n1 := l.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	net := "secfo"
	cniNetwork(t, nb, net, "198.19.42.0/24")
	rt := newRuntime(t, n1)
	for _, down := range []string{"ovlmgr-control1", "ovlmgr-control2"} {
		if err := l.Kill(ctx, lab.Central, down); err != nil {
			t.Fatal(err)
		}
		c := newContainer(t, rt, confList(t, net, "1.1.0", nil))
		if err := c.add(ctx); err != nil {
			t.Fatalf("ADD with %s down: %v\nplugin log:\n%s", down, err, rt.exec.stderr.String())
		}
		if err := c.del(ctx); err != nil {
			t.Fatalf("DEL with %s down: %v", down, err)
		}
		if err := l.Restart(ctx, lab.Central, down, lab.RestartOptions{}); err != nil {
			t.Fatalf("restart %s: %v", down, err)
		}
	}
	assertNetworkEmpty(t, l, nb, net)
}

// TestSecureNodeResidual: two tenants (networks on routers of their own),
// a container of each, n1's on tenant A and n2's on tenant B. With n1's
// credentials, from n1's namespace, through the control service, n1 may
// not: name tenant B's container after its own address, delete or replace
// B's container's DNS record, add its own address to B's service or remove
// B's backend, put its port into B's policy group or its address into B's
// address set, attach a published port to B's router, or give a port of
// its own n2's container's address or a gateway's; each is a permission
// error naming n1, and the NB (read as admin) is unchanged. The same writes
// for n1's own container on its own network pass.
func TestSecureNodeResidual(t *testing.T) {
	l := secureLab(t, "sr", 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := cniNB(t, l)
	for _, r := range []string{"srr1", "srr2"} {
		if _, err := router.Create(ctx, admin, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	netA, netB := "sra", "srb"
	specNetwork(t, admin, network.Spec{Name: netA, Subnet: "198.19.60.0/24", Router: "srr1"})
	specNetwork(t, admin, network.Spec{Name: netB, Subnet: "198.19.61.0/24", Router: "srr2"})
	sel := map[string]string{"app": "sr"}
	for _, s := range []service.Spec{{Name: "web", Network: netA, VIP: "198.19.62.1:80", Selector: sel, TargetPort: 80},
		{Name: "web", Network: netB, VIP: "198.19.62.2:80", Selector: sel, TargetPort: 80}} {
		if _, err := service.Create(ctx, admin, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := policy.Create(ctx, admin, policy.Spec{Name: "srb-cidr", Network: netB, Action: "allow", From: []string{"198.18.200.0/24"}, Proto: "tcp", Port: "80"}); err != nil {
		t.Fatal(err)
	}
	capab := map[string]interface{}{"capabilities": map[string]bool{"ips": true, "mac": true, "labels": true}}
	c1 := newContainer(t, newRuntime(t, n1), confList(t, netA, "1.1.0", capab))
	c1.conf.CapabilityArgs = map[string]interface{}{"labels": sel}
	c1.mustAdd(t, ctx)
	c2 := newContainer(t, newRuntime(t, n2), confList(t, netB, "1.1.0", capab))
	c2.conf.CapabilityArgs = map[string]interface{}{"labels": sel}
	c2.mustAdd(t, ctx)
	p1, err := containerPort(ctx, admin, n1.SystemID, netA, c1.id, c1.ifName)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := containerPort(ctx, admin, n2.SystemID, netB, c2.id, c2.ifName)
	if err != nil {
		t.Fatal(err)
	}
	ip1, ip2 := p1.IP.String(), p2.IP.String()
	recsB, err := dns.Records(ctx, admin, netB)
	if err != nil {
		t.Fatal(err)
	}
	name2 := ""
	for k, v := range recsB {
		if v == ip2 {
			name2 = k
		}
	}
	if name2 == "" {
		t.Fatalf("no DNS name of n2's container (%s) in %v", ip2, recsB)
	}
	if s, err := service.Get(ctx, admin, netB, "web"); err != nil || fmt.Sprint(s.Backends) != "["+ip2+":80]" {
		t.Fatalf("service web of %s: %+v, %v; want n2's container as its backend", netB, s, err)
	}

	nbm, _ := models(t)
	asN1, err := connectFrom(ctx, n1, nbm, l.TLS.ControlNB, tlsFor(t, n1.TLSFiles()))
	if err != nil {
		t.Fatal(err)
	}
	defer asN1.Close()
	// state is what the attacks must not change, read as the admin (of
	// port groups, whether n1's port is in: pool refills in the
	// background add and remove pool ports).
	state := func() string {
		t.Helper()
		var pgs []*nbdb.PortGroup
		if err := dbconn.Select(ctx, admin, &nbdb.PortGroup{}, &pgs); err != nil {
			t.Fatal(err)
		}
		var in []string
		for _, g := range pgs {
			in = append(in, fmt.Sprintf("%s has n1's port: %v", g.Name, slices.Contains(g.Ports, p1.UUID)))
		}
		sort.Strings(in)
		return "DNS:\n" + rowLines[nbdb.DNS](ctx, t, admin) + "LB:\n" + rowLines[nbdb.LoadBalancer](ctx, t, admin) +
			"PG:\n" + strings.Join(in, "\n") + "\nAS:\n" + rowLines[nbdb.AddressSet](ctx, t, admin) +
			"LR:\n" + rowLines[nbdb.LogicalRouter](ctx, t, admin)
	}
	tx := func(ops ...ovsdb.Operation) error {
		_, err := dbconn.Transact(ctx, asN1, ops...)
		return err
	}
	var before string
	refused := func(what string, err error) {
		t.Helper()
		d, ok := dbconn.IsPermission(err)
		switch {
		case !ok:
			t.Errorf("%s as n1: %v, want a permission error", what, err)
		case !strings.Contains(d, "node "+n1.SystemID):
			t.Errorf("%s as n1: permission error %q does not name the node", what, d)
		default:
			t.Logf("%s as n1: %s", what, d)
		}
		if after := state(); after != before {
			t.Errorf("%s as n1 changed the NB:\n%s", what, lineDiff(before, after))
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s as n1 (its own container): %v", what, err)
		}
	}
	pgA, pgB := []ovsdb.Condition{dbops.NameIs(policy.PortGroupName(netA))}, []ovsdb.Condition{dbops.NameIs(policy.PortGroupName(netB))}
	rtr := func(name string) string {
		r, err := router.Get(ctx, admin, name)
		if err != nil {
			t.Fatal(err)
		}
		return r.UUID
	}
	// A gateway on srr1 (NB rows only: this lab has no external
	// network): published ports answer on its external address.
	if _, err := gateway.Set(ctx, admin, cniSB(t, l), gateway.Spec{Router: "srr1", Nodes: []string{n1.SystemID},
		ExternalNet: netip.MustParsePrefix("198.18.100.0/24"), ExternalIP: netip.MustParseAddr("198.18.100.61"), NextHop: netip.MustParseAddr("198.18.100.1")}); err != nil {
		t.Fatal(err)
	}
	// A published port of n1's container on router.
	publish := func(routerName, vip string) []ovsdb.Operation {
		lb := &nbdb.LoadBalancer{UUID: "srpub", Name: "published:" + vip + "/tcp", Vips: map[string]string{vip: ip1 + ":80"},
			ExternalIDs: owner.IDs(owner.KindPublished, vip+"/tcp", map[string]string{owner.KeyPort: p1.Name, owner.KeyNode: n1.SystemID,
				owner.KeyNetwork: netA, owner.KeyRouter: routerName})}
		ops, err := asN1.Create(lb)
		if err != nil {
			t.Fatal(err)
		}
		return append(ops, dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(rtr(routerName)), "load_balancer", "srpub"))
	}

	before = state()
	// 1. DNS: tenant B's names.
	refused("name n2's container after n1's address", tx(
		dbops.DelPairs(nbdb.DNSTable, dns.ShardWhere(netB, name2), "records", map[string]string{name2: ip2}),
		dbops.AddPairs(nbdb.DNSTable, dns.ShardWhere(netB, name2), "records", map[string]string{name2: ip1})))
	refused("delete n2's container's DNS record", tx(dbops.DelPairs(nbdb.DNSTable, dns.ShardWhere(netB, name2), "records", map[string]string{name2: ip2})))
	refused("delete n2's container's DNS name by key", tx(dbops.DelKeys(nbdb.DNSTable, dns.ShardWhere(netB, name2), "records", name2)))
	evil := "evil." + netB + ".ovl"
	refused("publish a name on tenant B for n1's address", tx(dbops.AddPairs(nbdb.DNSTable, dns.ShardWhere(netB, evil), "records", map[string]string{evil: ip1})))
	// 2. Service backends of tenant B.
	refused("add n1's address to tenant B's service", service.SyncPort(ctx, asN1, service.Port{Network: netB, Name: p1.Name, IP: p1.IP.AsSlice(), Labels: sel}, true))
	refused("remove n2's backend from tenant B's service", service.SyncPort(ctx, asN1, service.Port{Network: netB, IP: p2.IP.AsSlice()}, false))
	// 3. Policy groups and address sets of tenant B.
	refused("add n1's port to tenant B's port group", tx(dbops.AddRefs(nbdb.PortGroupTable, pgB, "ports", p1.UUID)))
	set := &nbdb.AddressSet{Name: policy.AddressSetName("srb-cidr")}
	if ops, err := asN1.WhereAll(set, model.Condition{Field: &set.Name, Function: ovsdb.ConditionEqual, Value: set.Name}).
		Mutate(set, model.Mutation{Field: &set.Addresses, Mutator: ovsdb.MutateOperationInsert, Value: []string{ip1}}); err != nil {
		t.Fatal(err)
	} else {
		refused("add n1's address to tenant B's address set", tx(ops...))
	}
	// 4. A published port of n1's container on tenant B's router.
	refused("attach a published port to tenant B's router", tx(publish("srr2", "198.19.61.1:18080")...))
	refused("attach a published port to n1's router for tenant B's router", tx(append(publish("srr1", "198.19.60.1:18080")[:1],
		dbops.AddRefs(nbdb.LogicalRouterTable, dbops.ByUUID(rtr("srr2")), "load_balancer", "srpub"))...))
	// 5. Another container's address, or the gateway's, on n1's own port.
	evilPort := &nbdb.LogicalSwitchPort{UUID: "srevil", Name: "srevil", Addresses: []string{"0a:58:c6:13:3d:63 " + ip2},
		PortSecurity: []string{"0a:58:c6:13:3d:63 " + ip2}, Options: map[string]string{"requested-chassis": n1.SystemID}}
	ins, err := asN1.Create(evilPort)
	if err != nil {
		t.Fatal(err)
	}
	refused("create a port on tenant B with n2's container's address", tx(append(ins,
		dbops.AddRefs(nbdb.LogicalSwitchTable, []ovsdb.Condition{dbops.NameIs(netB)}, "ports", "srevil"))...))
	if _, err := ovnport.Get(ctx, admin, "srevil"); err == nil {
		t.Errorf("port srevil with n2's container's address exists")
	}
	gw := &nbdb.LogicalSwitchPort{UUID: p1.UUID, Addresses: []string{p1.MAC + " 198.19.60.1"}, PortSecurity: []string{p1.MAC + " 198.19.60.1"}}
	if ops, err := asN1.Where(gw).Update(gw, &gw.Addresses, &gw.PortSecurity); err != nil {
		t.Fatal(err)
	} else {
		refused("give n1's port its network's gateway address", tx(ops...))
	}
	if p, err := ovnport.Get(ctx, admin, p1.Name); err != nil || p.IP != p1.IP {
		t.Errorf("n1's port after the refused update: %+v, %v; want address %s", p, err, p1.IP)
	}

	// The same for n1's own container, on its own network.
	alias := "alias." + netA + ".ovl"
	allowed("name its container", tx(dbops.AddPairs(nbdb.DNSTable, dns.ShardWhere(netA, alias), "records", map[string]string{alias: ip1})))
	if ips, err := dns.Resolve(ctx, admin, netA, alias); err != nil || fmt.Sprint(ips) != "["+ip1+"]" {
		t.Errorf("%s after n1 named its container: %v, %v", alias, ips, err)
	}
	allowed("remove its container's name", tx(dbops.DelPairs(nbdb.DNSTable, dns.ShardWhere(netA, alias), "records", map[string]string{alias: ip1})))
	allowed("leave its service", service.SyncPort(ctx, asN1, service.Port{Network: netA, IP: p1.IP.AsSlice()}, false))
	allowed("join its service", service.SyncPort(ctx, asN1, service.Port{Network: netA, Name: p1.Name, IP: p1.IP.AsSlice(), Labels: sel}, true))
	if s, err := service.Get(ctx, admin, netA, "web"); err != nil || fmt.Sprint(s.Backends) != "["+ip1+":80]" {
		t.Errorf("service web of %s: %+v, %v; want n1's container as its backend", netA, s, err)
	}
	allowed("put its port into its network's port group", tx(dbops.AddRefs(nbdb.PortGroupTable, pgA, "ports", p1.UUID)))
	// Not on a router's address on its networks (198.19.60.1 is network
	// A's gateway on srr1, where its containers ask for DNS).
	refused("publish its container on its network's gateway address", tx(publish("srr1", "198.19.60.1:18080")...))
	allowed("publish its container on its router", tx(publish("srr1", "198.18.100.61:18080")...))
	// One load balancer per address, port and protocol: a second, without
	// the product's own guard, or under another name, is refused by the
	// service (allowed before: two answered on one address and port).
	before = state()
	refused("publish the same address and port again", tx(publish("srr1", "198.18.100.61:18080")...))
	again := publish("srr1", "198.18.100.61:18080")
	again[0].Row["name"] = "mine"
	refused("publish the same address and port under another name", tx(again...))
	if _, err := publishpkg.ReleasePort(ctx, asN1, p1.Name); err != nil {
		t.Errorf("release n1's published port: %v", err)
	}
	// And the container still goes away cleanly.
	if err := c1.del(ctx); err != nil {
		t.Errorf("DEL of n1's container: %v", err)
	}
	if recs, err := dns.Records(ctx, admin, netA); err != nil || strings.Contains(fmt.Sprint(recs), ip1) {
		t.Errorf("records of %s after DEL: %v, %v; want none of %s", netA, recs, err, ip1)
	}

	checkNodeConnLimit(t, l, n1, n2)
}

// rowLines reads every row of T's table, one sorted line per row.
func rowLines[T any](ctx context.Context, t *testing.T, c client.Client) string {
	t.Helper()
	var rows []*T
	if err := dbconn.Select(ctx, c, new(T), &rows); err != nil {
		t.Fatalf("read %T as admin: %v", new(T), err)
	}
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		b, err := json.Marshal(r) // pointers by value
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// lineDiff shows the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ia, ib := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !ib[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ia[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// judgeConnect fails the test when a connection that should be accepted
// got err, or one that should be refused got none.
func judgeConnect(t *testing.T, what string, ok bool, err error) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Errorf("%s: %v, want accepted", what, err)
	case !ok && err == nil:
		t.Errorf("%s: accepted, want refused", what)
	default:
		t.Logf("%s: %v", what, err)
	}
}
