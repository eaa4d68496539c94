package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// TestServiceVIPReservedAcrossRouter: on a router with networks a and b, a
// service of a cannot take the address of a container on b (refused naming
// the container); a VIP of a inside b's subnet is reserved in b's IPAM
// (exclude_ips) so that a CNI ADD on b requesting it is refused with code
// 103 naming the service; deleting the service releases it, and the same
// ADD then succeeds.
func TestServiceVIPReservedAcrossRouter(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	r := fmt.Sprintf("vipr%d", os.Getpid())
	if _, err := router.Create(ctx, nb, r, nil); err != nil {
		t.Fatal(err)
	}
	na := cniNetwork(t, nb, "vipa", "198.19.210.0/24")
	nbn := cniNetwork(t, nb, "vipb", "198.19.211.0/24")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = network.DeleteRouter(ctx, nb, r, true)
	})
	for _, n := range []*network.Network{na, nbn} {
		if err := network.Attach(ctx, nb, n.Name, r); err != nil {
			t.Fatal(err)
		}
	}
	rt := newRuntime(t, l.Nodes[0])
	victim := newContainer(t, rt, confList(t, "vipb", "1.0.0", nil))
	victim.mustAdd(t, ctx)
	victimIP := victim.ip().String()

	// 1. Hijack: a VIP of a on b's container address.
	_, err := service.Create(ctx, nb, service.Spec{Name: "hij", Network: "vipa", VIP: victimIP + ":5001", Backends: []string{"198.19.210.3:5001"}})
	if err == nil {
		t.Fatalf("service on vipa with the VIP %s of a container on vipb was accepted", victimIP)
	}
	if !strings.Contains(err.Error(), "container "+victim.id[:12]) || !strings.Contains(err.Error(), `"vipb"`) {
		t.Errorf("refusal %q should name container %s on network vipb", err, victim.id[:12])
	}
	if _, gerr := service.Get(ctx, nb, "vipa", "hij"); gerr == nil {
		t.Error("refused service exists")
	}

	// 2. A free address of b as a's VIP: reserved in b.
	const vip = "198.19.211.200"
	if _, err := service.Create(ctx, nb, service.Spec{Name: "in-b", Network: "vipa", VIP: vip + ":80", Backends: []string{"198.19.210.3:80"}}); err != nil {
		t.Fatal(err)
	}
	if ex := excludeIPs(t, ctx, nb, "vipb"); !strings.Contains(" "+ex+" ", " "+vip+" ") {
		t.Fatalf("vipb exclude_ips %q does not reserve the VIP %s", ex, vip)
	}
	req := newContainer(t, rt, confList(t, "vipb", "1.0.0", nil))
	req.conf.CapabilityArgs = map[string]interface{}{"ips": []string{vip + "/24"}}
	err = req.add(ctx)
	if err == nil {
		_ = req.del(ctx)
		t.Fatalf("ADD on vipb requesting the VIP %s of service in-b succeeded", vip)
	}
	if cniCode(err) != 103 || !strings.Contains(err.Error(), `service "in-b"`) {
		t.Errorf("ADD requesting the VIP: got code %d %q, want 103 naming service \"in-b\"", cniCode(err), err)
	}
	assertGone(t, nb, l.Nodes[0], req.id, req.ifName)

	// 3. Delete releases the reservation; the address can be had again.
	if err := service.Delete(ctx, nb, "vipa", "in-b"); err != nil {
		t.Fatal(err)
	}
	if ex := excludeIPs(t, ctx, nb, "vipb"); strings.Contains(" "+ex+" ", " "+vip+" ") {
		t.Fatalf("vipb exclude_ips %q still reserves %s after the service was deleted", ex, vip)
	}
	req2 := newContainer(t, rt, confList(t, "vipb", "1.0.0", nil))
	req2.conf.CapabilityArgs = map[string]interface{}{"ips": []string{vip + "/24"}}
	req2.mustAdd(t, ctx)
	if got := req2.ip().String(); got != vip {
		t.Errorf("ADD requesting %s got %s", vip, got)
	}

	// 4. A VIP outside every subnet on the router is a virtual address,
	// reserved nowhere; a network whose subnet holds it cannot join the
	// router while the service exists.
	nc := cniNetwork(t, nb, "vipc", "198.19.212.0/24")
	const virt = "198.19.212.5"
	if _, err := service.Create(ctx, nb, service.Spec{Name: "virt", Network: "vipa", VIP: virt + ":80", Backends: []string{"198.19.210.3:80"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vipa", "vipb", "vipc"} {
		if ex := excludeIPs(t, ctx, nb, n); strings.Contains(ex, virt) {
			t.Errorf("virtual VIP %s reserved in %s (exclude_ips %q)", virt, n, ex)
		}
	}
	err = network.Attach(ctx, nb, nc.Name, r)
	if err == nil || !errors.Is(err, service.ErrVIPInUse) || !strings.Contains(err.Error(), `service "virt"`) {
		t.Errorf("router attach of vipc holding VIP %s of service virt: %v; want refused naming the service", virt, err)
	}
}

// excludeIPs returns the other_config:exclude_ips of network name's switch.
func excludeIPs(t testing.TB, ctx context.Context, nb client.Client, name string) string {
	t.Helper()
	m := &nbdb.LogicalSwitch{Name: name}
	var rows []*nbdb.LogicalSwitch
	if err := dbconn.Select(ctx, nb, m, &rows, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}); err != nil || len(rows) != 1 {
		t.Fatalf("read switch %s: %v (%d rows)", name, err, len(rows))
	}
	return rows[0].OtherConfig["exclude_ips"]
}
