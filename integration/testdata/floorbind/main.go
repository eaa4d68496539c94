// Command floorbind is the floor of the CNI benchmarks: one process that
// binds a container port by hand, with the same steps and the same address
// mode as an ovlmgr-cni ADD and nothing else (no config parsing, no checks,
// no DNS or services, no undo): insert a Logical_Switch_Port with a
// dynamic address, wait for ovn-northd's address, pin it, make the veth
// into the container's namespace with the address on it, add the OVS port
// with its iface-id and wait for ovn-installed.
//
//	floorbind NB OVS NETWORK LSP MAC HOSTIF NETNS
//
// It runs in the node's network namespace, launched like the plugin.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

func main() {
	if len(os.Args) != 8 {
		fmt.Fprintln(os.Stderr, "usage: floorbind NB OVS NETWORK LSP MAC HOSTIF NETNS")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bind(ctx, os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7]); err != nil {
		fmt.Fprintln(os.Stderr, "floorbind:", err)
		os.Exit(1)
	}
}

func bind(ctx context.Context, nbEP, ovsEP, network, lsp, mac, host, nsPath string) error {
	nb, err := dbconn.ConnectNB(ctx, nbEP)
	if err != nil {
		return err
	}
	defer nb.Close()
	ovs, err := vsdb.Connect(ctx, ovsEP)
	if err != nil {
		return err
	}
	defer ovs.Close()

	// NB port with a dynamic address, added to its switch.
	var sws []nbdb.LogicalSwitch
	sw := &nbdb.LogicalSwitch{}
	if err := dbconn.Select(ctx, nb, sw, &sws, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: network}); err != nil || len(sws) != 1 {
		return fmt.Errorf("switch %s: %d rows, %v", network, len(sws), err)
	}
	p := &nbdb.LogicalSwitchPort{UUID: "p", Name: lsp, Addresses: []string{mac + " dynamic"}}
	ops, err := nb.Create(p)
	if err != nil {
		return err
	}
	s := &nbdb.LogicalSwitch{UUID: sws[0].UUID}
	mut, err := nb.Where(s).Mutate(s, model.Mutation{Field: &s.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{p.UUID}})
	if err != nil {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, append(ops, mut...)...); err != nil {
		return err
	}
	// ovn-northd's address, then pinned as static with port security.
	var ip, uuid string
	for ip == "" {
		var ps []nbdb.LogicalSwitchPort
		q := &nbdb.LogicalSwitchPort{}
		if err := dbconn.Select(ctx, nb, q, &ps, model.Condition{Field: &q.Name, Function: ovsdb.ConditionEqual, Value: lsp}); err != nil {
			return err
		}
		if len(ps) == 1 && ps[0].DynamicAddresses != nil {
			if f := strings.Fields(*ps[0].DynamicAddresses); len(f) >= 2 {
				ip, uuid = f[1], ps[0].UUID
				break
			}
		}
		if err := pause(ctx); err != nil {
			return fmt.Errorf("no address for %s: %w", lsp, err)
		}
	}
	pin := &nbdb.LogicalSwitchPort{UUID: uuid, Addresses: []string{mac + " " + ip}, PortSecurity: []string{mac + " " + ip}}
	upd, err := nb.Where(pin).Update(pin, &pin.Addresses, &pin.PortSecurity)
	if err != nil {
		return err
	}
	if _, err := dbconn.Transact(ctx, nb, upd...); err != nil {
		return err
	}
	// veth into the container's namespace, with the address on it.
	cns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer cns.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "eth0", PeerNamespace: netlink.NsFd(cns)}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s: %w", host, err)
	}
	if err := netlink.LinkSetUp(v); err != nil {
		return err
	}
	ch, err := netlink.NewHandleAt(cns)
	if err != nil {
		return err
	}
	defer ch.Close()
	eth, err := ch.LinkByName("eth0")
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(ip + "/24")
	if err != nil {
		return err
	}
	hw, _ := net.ParseMAC(mac)
	if err := ch.LinkSetHardwareAddr(eth, hw); err != nil {
		return err
	}
	if err := ch.AddrAdd(eth, addr); err != nil {
		return err
	}
	if err := ch.LinkSetUp(eth); err != nil {
		return err
	}
	// OVS port with the iface-id, then ovn-installed.
	if err := plug(ctx, ovs, host, lsp); err != nil {
		return err
	}
	for {
		var ifs []vswitchd.Interface
		q := &vswitchd.Interface{}
		if err := dbconn.Select(ctx, ovs, q, &ifs, model.Condition{Field: &q.Name, Function: ovsdb.ConditionEqual, Value: host}); err != nil {
			return err
		}
		if len(ifs) == 1 && ifs[0].ExternalIDs["ovn-installed"] == "true" {
			return nil
		}
		if err := pause(ctx); err != nil {
			return fmt.Errorf("%s not ovn-installed: %w", host, err)
		}
	}
}

func plug(ctx context.Context, ovs client.Client, host, lsp string) error {
	br, err := vsdb.Bridge(ctx, ovs, "br-int")
	if err != nil {
		return err
	}
	i := &vswitchd.Interface{UUID: "i", Name: host, ExternalIDs: map[string]string{"iface-id": lsp}}
	pt := &vswitchd.Port{UUID: "pt", Name: host, Interfaces: []string{i.UUID}}
	ops, err := ovs.Create(i, pt)
	if err != nil {
		return err
	}
	b := &vswitchd.Bridge{UUID: br.UUID}
	mut, err := ovs.Where(b).Mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{pt.UUID}})
	if err != nil {
		return err
	}
	_, err = dbconn.Transact(ctx, ovs, append(ops, mut...)...)
	return err
}

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Millisecond):
		return nil
	}
}
