package integration

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// TestIPv6BadInput runs the ovlmgr binary against the shared lab's NB with
// IPv6 mistakes: an IPv6 subnet that is not a /64, a /64 another network
// holds, a gateway on an IPv6-only network, an IPv4 VIP with IPv6
// backends and an IPv6 VIP with a container name whose container has no
// IPv6 address. Each exits non-zero naming the flag, the value and what is
// allowed; nothing is written (the switches and load balancers are the same
// before and after).
func TestIPv6BadInput(t *testing.T) {
	l := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nb := cniNB(t, l)
	held := segName("b6h")
	specNetwork(t, nb, network.Spec{Name: held, Subnet: "198.19.67.0/24", IPv6Subnet: "fd00:198:19:67::/64"})
	r := segName("b6r")
	segRouter(t, nb, r)
	v4net := segName("b6v")
	specNetwork(t, nb, network.Spec{Name: v4net, Subnet: "198.19.68.0/24", Router: r})
	old := newContainer(t, newRuntime(t, l.Nodes[0]), confList(t, v4net, "1.0.0", map[string]interface{}{
		"capabilities": map[string]bool{"ips": true, "mac": true, "aliases": true}}))
	old.conf.CapabilityArgs = map[string]interface{}{"aliases": []string{"old4"}}
	old.mustAdd(t, ctx)

	count := func() (int, int) {
		var ls []nbdb.LogicalSwitch
		var lbs []nbdb.LoadBalancer
		if err := dbconn.Select(ctx, nb, &nbdb.LogicalSwitch{}, &ls); err != nil {
			t.Fatal(err)
		}
		if err := dbconn.Select(ctx, nb, &nbdb.LoadBalancer{}, &lbs); err != nil {
			t.Fatal(err)
		}
		return len(ls), len(lbs)
	}
	sw0, lb0 := count()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"net", "create", "b6a", "--subnet6", "fd00:198:19:69::/56"}, []string{`--subnet "fd00:198:19:69::/56"`, "must be a /64", "got /56"}},
		{[]string{"net", "create", "b6a", "--subnet", "198.19.69.0/24", "--subnet", "fd00:198:19:67::/64"}, []string{`--subnet "fd00:198:19:67::/64"`, `network "` + held + `"`, "distinct"}},
		{[]string{"net", "create", "b6a", "--subnet6", "fd00:198:19:69::/64", "--gateway", "fd00:198:19:69::fe"}, []string{`--gateway "fd00:198:19:69::fe"`, "IPv6-only", "fd00:198:19:69::1"}},
		{[]string{"service", "create", "mix", "--net", v4net, "--vip", "198.19.68.200:80", "--backend", "[fd00:198:19:68::5]:80"}, []string{"fd00:198:19:68::5", "not of the VIP's family", "one family"}},
		{[]string{"service", "create", "mix", "--net", v4net, "--vip", "[fd00:198:19:fe::68]:80", "--backend", "old4:80"}, []string{`container "old4" has no IPv6 address`, "the VIP is IPv6"}},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, ovlmgrBin(t), append([]string{"--nb", l.NB}, tc.args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("ovlmgr %v: %v; want a failure (stdout %q)", tc.args, err, stdout.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("ovlmgr %v: stderr %q; want it to contain %q", tc.args, stderr.String(), w)
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("ovlmgr %v: stdout %q; want nothing on error", tc.args, stdout.String())
		}
	}
	if sw, lb := count(); sw != sw0 || lb != lb0 {
		t.Errorf("after bad input: %d switches, %d load balancers; had %d, %d (nothing may be written)", sw, lb, sw0, lb0)
	}
}
