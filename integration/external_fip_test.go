package integration

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/fip"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/router"
)

// publishConfList is a conflist whose plugin takes the portMappings
// capability (as `ovlmgr cni config` writes it).
func publishConfList(t testing.TB, net string) *libcni.NetworkConfigList {
	return confList(t, net, "1.0.0", map[string]interface{}{"capabilities": map[string]bool{"ips": true, "mac": true, "portMappings": true}})
}

// withMappings sets the runtime's portMappings capability argument, as
// podman and the CRI do.
func withMappings(c *container, m ...map[string]interface{}) *container {
	c.conf.CapabilityArgs = map[string]interface{}{"portMappings": m}
	return c
}

func mapping(host, ctr int, proto, hostIP string) map[string]interface{} {
	return map[string]interface{}{"hostPort": host, "containerPort": ctr, "protocol": proto, "hostIP": hostIP}
}

// publishedLBs reads our published-port load balancers (all, or those of port lsp).
func publishedLBs(t testing.TB, nb client.Client, lsp string) []*nbdb.LoadBalancer {
	t.Helper()
	sel := map[string]string{}
	if lsp != "" {
		sel[owner.KeyPort] = lsp
	}
	rows, err := dbops.SelectRows[nbdb.LoadBalancer](context.Background(), nb, []ovsdb.Condition{dbops.Owned(owner.KindPublished, sel)})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// portOf is the NB port name of container id (pool-claimed ports are not
// named from the container).
func portOf(t testing.TB, nb client.Client, id string) string {
	t.Helper()
	ps, err := ovnport.List(context.Background(), nb, ovnport.Filter{Container: id})
	if err != nil || len(ps) != 1 {
		t.Fatalf("port of container %s: %v %v", id, ps, err)
	}
	return ps[0].Name
}

// extRouter makes router name with a gateway on the lab's gateway nodes
// (external address extIP on the lab's external network) and network net
// on it; all removed at test end.
func extRouter(t testing.TB, l *lab.Lab, nb, sb client.Client, name, net, subnet, extIP string) {
	t.Helper()
	extRouterSpec(t, l, nb, sb, name, network.Spec{Name: net, Subnet: subnet}, extIP)
}

// extRouterSpec is extRouter with the network's whole spec (its Router is set here).
func extRouterSpec(t testing.TB, l *lab.Lab, nb, sb client.Client, name string, ns network.Spec, extIP string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := router.Create(ctx, nb, name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = network.DeleteRouter(ctx, nb, name, true)
	})
	ns.Router = name
	specNetwork(t, nb, ns)
	if l.External == nil {
		t.Fatalf("lab %s has no external network (gateways %v)", l.Name, l.Gateways)
	}
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: name, ExternalNet: netip.MustParsePrefix(lab.ExternalCIDR),
		ExternalIP: netip.MustParseAddr(extIP), NextHop: netip.MustParseAddr(lab.ExternalHostIP), Nodes: l.Gateways}); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Get(ctx, nb, name)
	if err != nil {
		t.Fatal(err)
	}
	waitFirstGateway(t, ctx, l, sb, g)
}

// waitFirstGateway waits (within ctx) until g's chassisredirect port is
// bound to the lab's first gateway, which the tests name: until the
// gateways' BFD sessions are up, a lower-priority gateway may hold it for
// a moment.
func waitFirstGateway(t testing.TB, ctx context.Context, l *lab.Lab, sb client.Client, g *gateway.Gateway) {
	t.Helper()
	for {
		got, err := gateway.Active(ctx, sb, g)
		if err == nil && got == l.Gateways[0] {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("router %s: active gateway %q (%v), want %s (the first gateway)", g.Router, got, err, l.Gateways[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCNIPublishedPorts: ADD with portMappings publishes the container
// port on the router's external address (a load balancer on the router);
// the same host port for another container is a clear CNI error (105)
// that leaves nothing behind, a hostIP other than the external address is
// refused (7), and DEL removes the published port.
func TestCNIPublishedPorts(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	extRouter(t, l, nb, cniSB(t, l), "rpub", "pubnet", "198.19.40.0/24", "198.18.100.40")
	list := publishConfList(t, "pubnet")
	rt := newRuntime(t, l.Nodes[1])
	a := withMappings(newContainer(t, rt, list), mapping(8080, 80, "tcp", ""), mapping(5353, 53, "udp", ""))
	if err := a.add(ctx); err != nil {
		t.Fatalf("ADD with portMappings: %v\n%s", err, rt.exec.stderr.String())
	}
	lspA := portOf(t, nb, a.id)
	lbs := publishedLBs(t, nb, lspA)
	vips := map[string]string{}
	for _, lb := range lbs {
		for k, v := range lb.Vips {
			vips[k+"/"+*lb.Protocol] = v
		}
	}
	if len(lbs) != 2 || vips["198.18.100.40:8080/tcp"] != a.ip().String()+":80" || vips["198.18.100.40:5353/udp"] != a.ip().String()+":53" {
		t.Fatalf("published load balancers: %v", vips)
	}
	// CHECK sees them; a published port removed behind the plugin's back fails it.
	if err := rt.cni.CheckNetworkList(ctx, list, a.conf); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	// The router carries them.
	lrs, err := dbops.SelectRows[nbdb.LogicalRouter](ctx, nb, []ovsdb.Condition{dbops.NameIs("rpub")})
	if err != nil || len(lrs) != 1 || len(lrs[0].LoadBalancer) != 2 {
		t.Fatalf("router rpub load balancers: %+v %v", lrs, err)
	}

	saved := lbs[0]
	if _, err := dbconn.Transact(ctx, nb, dbops.DelRefs(nbdb.LogicalRouterTable, []ovsdb.Condition{dbops.NameIs("rpub")}, "load_balancer", saved.UUID),
		dbops.Delete(nbdb.LoadBalancerTable, dbops.ByUUID(saved.UUID))); err != nil {
		t.Fatal(err)
	}
	if err := rt.cni.CheckNetworkList(ctx, list, a.conf); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("CHECK without a published port: %v", err)
	}
	if _, err := publish.Publish(ctx, nb, publish.Spec{Network: "pubnet", Port: lspA, Container: a.id, IfName: "eth0", Node: l.Nodes[1].SystemID,
		IP: netip.MustParseAddr(a.ip().String()), Mappings: []publish.Mapping{{HostPort: atoi(saved.ExternalIDs[publish.KeyHostPort]), ContainerPort: atoi(saved.ExternalIDs[publish.KeyContainerPort]),
			Protocol: saved.ExternalIDs[publish.KeyProtocol]}}}); err != nil {
		t.Fatal(err)
	}
	// Another container, the same host port: code 105 naming the holder; nothing written.
	b := withMappings(newContainer(t, rt, list), mapping(8080, 8080, "tcp", ""))
	err = b.add(ctx)
	if cniCode(err) != 105 || !strings.Contains(err.Error(), "198.18.100.40:8080/tcp is published already, by container "+a.id[:12]) {
		t.Fatalf("conflicting hostPort: code %d: %v", cniCode(err), err)
	}
	assertGone(t, nb, l.Nodes[1], b.id, "eth0")
	if b.hasLink() {
		t.Errorf("refused ADD left eth0 in the container")
	}
	// A hostIP that is not the published address: code 7, nothing written.
	c := withMappings(newContainer(t, rt, list), mapping(9090, 90, "tcp", "127.0.0.1"))
	err = c.add(ctx)
	if cniCode(err) != 7 || !strings.Contains(err.Error(), "hostIP 127.0.0.1: published ports answer on router \"rpub\"'s external address 198.18.100.40 only") {
		t.Fatalf("foreign hostIP: code %d: %v", cniCode(err), err)
	}
	assertGone(t, nb, l.Nodes[1], c.id, "eth0")
	if n := len(publishedLBs(t, nb, "")); n != 2 {
		t.Fatalf("%d published ports after two refused ADDs; want 2", n)
	}
	// DEL removes the published ports; the host port is free again.
	if err := a.del(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(publishedLBs(t, nb, lspA)); n != 0 {
		t.Fatalf("%d published ports of %s after DEL", n, a.id)
	}
	b2 := withMappings(newContainer(t, rt, list), mapping(8080, 80, "tcp", "198.18.100.40"))
	b2.mustAdd(t, ctx)
	ps, err := publish.List(ctx, nb, publish.Filter{Network: "pubnet"})
	if err != nil || len(ps) != 1 || ps[0].Backend.String() != b2.ip().String() || ps[0].Address != netip.MustParseAddr("198.18.100.40") {
		t.Fatalf("after DEL, 8080 for another container: %+v %v", ps, err)
	}
}

// TestDiagnoseExternal makes two faults real: a gateway node without the
// external network (n3 maps no physical network) and a floating IP whose
// container port was removed behind ovlmgr's back; diagnose fails the
// first and warns about the second, each with its fix.
func TestDiagnoseExternal(t *testing.T) {
	l := sharedLab(t)
	nb, sb := cniNB(t, l), cniSB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if l.IsGateway(l.Nodes[2].Name) {
		t.Fatalf("n3 is a gateway node: %v", l.Gateways)
	}
	extRouter(t, l, nb, sb, "rdiag", "diagnet", "198.19.43.0/24", "198.18.100.45")
	if _, err := gateway.Set(ctx, nb, sb, gateway.Spec{Router: "rdiag", ExternalNet: netip.MustParsePrefix(lab.ExternalCIDR),
		ExternalIP: netip.MustParseAddr("198.18.100.45"), NextHop: netip.MustParseAddr(lab.ExternalHostIP),
		Nodes: []string{l.Gateways[0], l.Nodes[2].SystemID}}); err != nil {
		t.Fatal(err)
	}
	p, err := ovnport.Create(ctx, nb, ovnport.Spec{Network: "diagnet", Node: l.Nodes[2].SystemID, Container: "diag-orphan", IfName: "eth0",
		IP: netip.MustParseAddr("198.19.43.9"), Subnet: netip.MustParsePrefix("198.19.43.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fip.Create(ctx, nb, sb, fip.Spec{IP: netip.MustParseAddr("198.18.100.46"), Container: "diag-orphan"}); err != nil {
		t.Fatal(err)
	}
	if err := ovnport.Delete(ctx, nb, p.Name); err != nil { // not DEL: the floating IP stays
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fip.Delete(context.Background(), nb, netip.MustParseAddr("198.18.100.46")) })
	rep, _ := diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	c := rep.Find("router rdiag bridge mappings")
	if c == nil || c.Status != diagnose.Fail || !strings.Contains(c.Detail, "gateway node(s) "+l.Nodes[2].SystemID+" have no ovn-bridge-mappings entry") || c.Fix == "" {
		t.Errorf("bridge mapping check: %+v", c)
	}
	c = rep.Find("floating IP 198.18.100.46")
	if c == nil || c.Status != diagnose.Warn || c.Fix != "ovlmgr fip delete 198.18.100.46" {
		t.Errorf("orphan floating IP check: %+v", c)
	}
	if err := fip.Delete(ctx, nb, netip.MustParseAddr("198.18.100.46")); err != nil {
		t.Fatal(err)
	}
	rep, _ = diagnose.Cluster(ctx, diagnose.Options{NB: l.NB, SB: l.SB})
	if c := rep.Find("floating IP 198.18.100.46"); c != nil {
		t.Errorf("after fip delete: %+v", c)
	}
}
