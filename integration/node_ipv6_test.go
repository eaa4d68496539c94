package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestNodeVethNoIPv6: the host side of a container veth on a lab node has
// IPv6 disabled and so no link-local address, on an IPv4 and on a
// dual-stack network. With one, ovs-vswitchd's userspace datapath scans
// every address of the node for every port of br-int when it translates an
// ARP or ICMPv6 packet flooded to the ports (docs/cni.md, BenchmarkCNIChurn).
// br-phy keeps its IPv6 (the IPv6 underlay needs it).
func TestNodeVethNoIPv6(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := l.Nodes[0]
	rt := newRuntime(t, node)
	for _, tc := range []struct{ name, subnet, subnet6 string }{
		{"v6off4", "198.19.200.0/24", ""},
		{"v6off6", "198.19.201.0/24", "fd00:198:19:201::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specNetwork(t, nb, network.Spec{Name: tc.name, Subnet: tc.subnet, IPv6Subnet: tc.subnet6})
			c := newContainer(t, rt, confList(t, tc.name, "1.1.0", nil))
			c.mustAdd(t, ctx)
			host := ""
			for _, i := range c.result.Interfaces {
				if i.Sandbox == "" {
					host = i.Name
				}
			}
			if host == "" {
				t.Fatalf("no host-side interface in the result %+v", c.result.Interfaces)
			}
			err := node.Do(func() error {
				b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + host + "/disable_ipv6")
				if err != nil {
					return err
				}
				if v := strings.TrimSpace(string(b)); v != "1" {
					t.Errorf("%s on %s: disable_ipv6 = %s; want 1", host, node.Name, v)
				}
				link, err := netlink.LinkByName(host)
				if err != nil {
					return err
				}
				addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
				if err != nil {
					return err
				}
				if len(addrs) != 0 {
					t.Errorf("%s on %s has IPv6 addresses %v; want none", host, node.Name, addrs)
				}
				phy, err := netlink.LinkByName("br-phy")
				if err != nil {
					return err
				}
				if addrs, err = netlink.AddrList(phy, netlink.FAMILY_V6); err != nil {
					return err
				}
				if len(addrs) == 0 {
					t.Errorf("br-phy on %s has no IPv6 address (link-local expected)", node.Name)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
