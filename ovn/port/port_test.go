package port_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// startOVN starts NB, SB and ovn-northd (stopped by PID at test end) and
// returns an NB client and the NB server.
func startOVN(t *testing.T) (client.Client, *ovsdbtest.Server) {
	t.Helper()
	nbs, sbs := ovsdbtest.StartNB(t), ovsdbtest.StartSB(t)
	prereq.Bins(t, "ovn-northd")
	dir := t.TempDir()
	cmd := ovsdbtest.Cmd(t, "ovn-northd", "--ovnnb-db="+nbs.Endpoint, "--ovnsb-db="+sbs.Endpoint,
		"--pidfile="+filepath.Join(dir, "northd.pid"), "--unixctl="+filepath.Join(dir, "northd.ctl"),
		"--log-file="+filepath.Join(dir, "northd.log"), "-vconsole:off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	nb, err := dbconn.ConnectNB(context.Background(), nbs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	return nb, nbs
}

func addNet(t *testing.T, s *ovsdbtest.Server, name, cidr, gw string) {
	s.Run(t, "ovn-nbctl", "ls-add", name, "--", "set", "logical_switch", name,
		"other_config:subnet="+cidr, "other_config:exclude_ips="+gw)
}

func spec(net, cidr, gw, ctr string) port.Spec {
	return port.Spec{Network: net, Subnet: netip.MustParsePrefix(cidr), Gateway: netip.MustParseAddr(gw),
		Node: "node-1", Container: ctr, IfName: "eth0"}
}

func TestCreateDynamicExhaustDelete(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "web", "198.19.0.0/29", "198.19.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// /29 minus network, broadcast and gateway: 5 addresses; 6 parallel creates.
	var mu sync.Mutex
	got := map[netip.Addr]string{}
	var fails []error
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// One client per creator, as one plugin process per ADD: libovsdb
			// v0.8.0 can lose an update that arrives while a second monitor
			// on one client is being populated.
			own, cerr := dbconn.ConnectNB(ctx, nbs.Endpoint)
			if cerr != nil {
				t.Error(cerr)
				return
			}
			defer own.Close()
			p, err := port.Create(ctx, own, spec("web", "198.19.0.0/29", "198.19.0.1", "ctr"+string(rune('a'+i))))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, err)
				return
			}
			if prev, dup := got[p.IP]; dup {
				t.Errorf("address %s given to %s and %s", p.IP, prev, p.Name)
			}
			got[p.IP] = p.Name
		}(i)
	}
	wg.Wait()
	if len(got) != 5 || len(fails) != 1 {
		t.Fatalf("got %d ports %v and %d failures %v; want 5 and 1", len(got), got, len(fails), fails)
	}
	if !errors.Is(fails[0], port.ErrNoAddress) || !strings.Contains(fails[0].Error(), "no free address in web (198.19.0.0/29)") {
		t.Errorf("failure = %v; want no free address in web (198.19.0.0/29)", fails[0])
	}
	ports, err := port.List(ctx, nb, port.Filter{Network: "web"})
	if err != nil || len(ports) != 5 {
		t.Fatalf("List = %d ports, %v; want 5 (the failed one removed)", len(ports), err)
	}
	for _, p := range ports {
		want := "0a:"
		if !strings.HasPrefix(p.MAC, want) || p.Node != "node-1" || p.IfName != "eth0" {
			t.Errorf("port %+v: want MAC 0a:..., node node-1, ifname eth0", p)
		}
		row := nbs.Run(t, "ovn-nbctl", "--bare", "--columns=addresses,port_security,options", "list", "logical_switch_port", p.Name)
		if strings.Contains(row, "dynamic") || !strings.Contains(row, p.IP.String()) || !strings.Contains(row, "requested-chassis=node-1") {
			t.Errorf("port %s row %q: want pinned static address %s and requested-chassis", p.Name, row, p.IP)
		}
	}
	// Delete is idempotent and frees the address for a new port.
	name := ports[0].Name
	for i := 0; i < 2; i++ {
		if err := port.Delete(ctx, nb, name); err != nil {
			t.Fatalf("Delete #%d: %v", i, err)
		}
	}
	if _, err := port.Get(ctx, nb, name); !errors.Is(err, port.ErrNotFound) {
		t.Fatalf("Get after Delete = %v; want ErrNotFound", err)
	}
	p, err := port.Create(ctx, nb, spec("web", "198.19.0.0/29", "198.19.0.1", "late"))
	if err != nil || p.IP != ports[0].IP {
		t.Fatalf("Create after Delete = %+v, %v; want the freed address %s", p, err, ports[0].IP)
	}
}

func TestCreateStaticAndErrors(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "db", "198.19.1.0/24", "198.19.1.1")
	nbs.Run(t, "ovn-nbctl", "set", "logical_switch", "db", "other_config:exclude_ips=\"198.19.1.1 198.19.1.200..198.19.1.210\"")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := spec("db", "198.19.1.0/24", "198.19.1.1", "static1")
	s.IP = netip.MustParseAddr("198.19.1.50")
	p, err := port.Create(ctx, nb, s)
	if err != nil || p.IP != s.IP {
		t.Fatalf("static create = %+v, %v", p, err)
	}
	if _, err := port.Create(ctx, nb, s); !errors.Is(err, port.ErrExists) {
		t.Errorf("second create of one container/ifname = %v; want ErrExists", err)
	}
	cases := map[string]string{
		"198.19.1.50":  "used by port " + p.Name,
		"198.19.2.5":   "outside network subnet 198.19.1.0/24",
		"198.19.1.1":   "gateway",
		"198.19.1.255": "broadcast",
		"198.19.1.205": "excluded",
	}
	for ip, want := range cases {
		s2 := spec("db", "198.19.1.0/24", "198.19.1.1", "other-"+ip)
		s2.IP = netip.MustParseAddr(ip)
		if _, err := port.Create(ctx, nb, s2); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ip) {
			t.Errorf("create with ip %s = %v; want an error naming it and %q", ip, err, want)
		}
	}
	// A dynamic port never gets the static one's address.
	d, err := port.Create(ctx, nb, spec("db", "198.19.1.0/24", "198.19.1.1", "dyn"))
	if err != nil || d.IP == s.IP || d.IP == netip.MustParseAddr("198.19.1.1") {
		t.Fatalf("dynamic create = %+v, %v", d, err)
	}
	if _, err := port.Create(ctx, nb, spec("nonet", "198.19.3.0/24", "198.19.3.1", "x")); !errors.Is(err, port.ErrNetworkNotFound) {
		t.Errorf("create in missing network = %v; want ErrNetworkNotFound", err)
	}
	// Ports we do not own are never deleted.
	nbs.Run(t, "ovn-nbctl", "lsp-add", "db", "foreign")
	if err := port.Delete(ctx, nb, "foreign"); !errors.Is(err, port.ErrNotOwned) {
		t.Errorf("Delete(foreign) = %v; want ErrNotOwned", err)
	}
	if n := len(port.MustList(t, ctx, nb)); n != 2 {
		t.Errorf("%d ports listed; want 2", n)
	}
	if port.Name("n1", "abc", "eth0") == port.Name("n1", "abc", "eth1") || len(port.Name("n1", "abc", "eth0")) != 20 {
		t.Errorf("names not unique or wrong length: %s", port.Name("n1", "abc", "eth0"))
	}
	// A port belongs to (node, container ID, ifname).
	if port.Name("n1", "abc", "eth0") == port.Name("n2", "abc", "eth0") {
		t.Errorf("the same container ID and ifname on two nodes share the port name %s", port.Name("n1", "abc", "eth0"))
	}
}

// TestStaticRace: concurrent requests for one static address: exactly one
// wins, the others are refused naming the address.
func TestStaticRace(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "race", "198.19.5.0/24", "198.19.5.1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec("race", "198.19.5.0/24", "198.19.5.1", "r"+string(rune('a'+i)))
			s.IP = netip.MustParseAddr("198.19.5.9")
			_, errs[i] = port.Create(ctx, nb, s)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, port.ErrAddressInUse) || !strings.Contains(err.Error(), "198.19.5.9"):
			t.Errorf("loser error = %v; want address in use naming 198.19.5.9", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates of 198.19.5.9 succeeded; want exactly 1", ok)
	}
}

// TestDualStack: on a switch with ipv6_prefix, the port gets ovn-northd's
// IPv6 address too, pinned with the IPv4 one in addresses and port_security.
func TestDualStack(t *testing.T) {
	nb, nbs := startOVN(t)
	addNet(t, nbs, "ds", "198.19.6.0/24", "198.19.6.1")
	nbs.Run(t, "ovn-nbctl", "set", "logical_switch", "ds", "other_config:ipv6_prefix=fd00:198:19:6::")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := port.Create(ctx, nb, spec("ds", "198.19.6.0/24", "198.19.6.1", "dual"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.IPv6.Is6() || !netip.MustParsePrefix("fd00:198:19:6::/64").Contains(p.IPv6) || !p.IP.Is4() {
		t.Fatalf("port %+v: want an IPv4 and an IPv6 address in fd00:198:19:6::/64", p)
	}
	row := nbs.Run(t, "ovn-nbctl", "--bare", "--columns=addresses,port_security", "list", "logical_switch_port", p.Name)
	if strings.Count(row, p.IPv6.String()) != 2 || strings.Contains(row, "dynamic") {
		t.Errorf("row %q: want %s pinned in addresses and port_security", row, p.IPv6)
	}
	got, err := port.Get(ctx, nb, p.Name)
	if err != nil || got.IPv6 != p.IPv6 || got.IP != p.IP {
		t.Errorf("Get = %+v, %v; want both addresses", got, err)
	}
}
