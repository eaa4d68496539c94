// Command floorbind is the floor of the CNI benchmarks: a CNI plugin
// (ADD only) that binds a container port by hand with the steps an
// ovlmgr-cni ADD cannot avoid and nothing else (no config checks, no DNS or
// services, no undo). The benchmarks invoke it through libcni exactly like
// ovlmgr-cni (same runtime, same process chain, same clock). Two modes,
// from its network config:
//
//   - "dynamic": insert a Logical_Switch_Port with a dynamic address, wait
//     for ovn-northd's address, pin it (the ADD path that waits for northd);
//   - "ready": the port already exists in NB (and SB), made before the
//     sample; one NB transaction claims it (external_ids), the ADD path of a
//     pool of ready ports.
//
// Then, in both: the veth into the container's namespace with the address
// on it, the OVS port with its iface-id, and the wait for ovn-installed.
// Config keys: nb, ovs (database endpoints), network (switch name), mode,
// port (the LSP name), mac, host (host-side ifname), prefix (length).
//
// It runs in the node's network namespace, launched like the plugin.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

type conf struct {
	CNIVersion string `json:"cniVersion"`
	NB         string `json:"nb"`
	OVS        string `json:"ovs"`
	Network    string `json:"network"`
	Mode       string `json:"mode"`
	Port       string `json:"port"`
	MAC        string `json:"mac"`
	Host       string `json:"host"`
	Prefix     int    `json:"prefix"`
}

func main() {
	switch os.Getenv("CNI_COMMAND") {
	case "VERSION":
		fmt.Println(`{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}`)
		return
	case "ADD":
	default: // DEL, CHECK...: the benchmark removes what ADD made itself.
		fmt.Println(`{}`)
		return
	}
	var c conf
	in, _ := io.ReadAll(os.Stdin)
	if err := json.Unmarshal(in, &c); err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip, err := bind(ctx, c, os.Getenv("CNI_NETNS"), os.Getenv("CNI_IFNAME"))
	if err != nil {
		fail(err)
	}
	fmt.Printf(`{"cniVersion":%q,"interfaces":[{"name":%q,"mac":%q,"sandbox":%q}],"ips":[{"address":"%s/%d","interface":0}]}`+"\n",
		c.CNIVersion, os.Getenv("CNI_IFNAME"), c.MAC, os.Getenv("CNI_NETNS"), ip, c.Prefix)
}

func fail(err error) {
	fmt.Printf(`{"cniVersion":"1.1.0","code":100,"msg":%q}`+"\n", "floorbind: "+err.Error())
	os.Exit(1)
}

func bind(ctx context.Context, c conf, nsPath, ifName string) (string, error) {
	nb, err := dbconn.ConnectNB(ctx, c.NB)
	if err != nil {
		return "", err
	}
	defer nb.Close()
	ovs, err := vsdb.Connect(ctx, c.OVS)
	if err != nil {
		return "", err
	}
	defer ovs.Close()
	var ip string
	switch c.Mode {
	case "dynamic":
		ip, err = dynamicPort(ctx, nb, c)
	case "ready":
		ip, err = claimPort(ctx, nb, c)
	default:
		err = fmt.Errorf("mode %q: want dynamic or ready", c.Mode)
	}
	if err != nil {
		return "", err
	}
	// veth into the container's namespace, with the address on it.
	cns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return "", err
	}
	defer cns.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: c.Host}, PeerName: ifName, PeerNamespace: netlink.NsFd(cns)}
	if err := netlink.LinkAdd(v); err != nil {
		return "", fmt.Errorf("veth %s: %w", c.Host, err)
	}
	if err := netlink.LinkSetUp(v); err != nil {
		return "", err
	}
	ch, err := netlink.NewHandleAt(cns)
	if err != nil {
		return "", err
	}
	defer ch.Close()
	eth, err := ch.LinkByName(ifName)
	if err != nil {
		return "", err
	}
	addr, err := netlink.ParseAddr(fmt.Sprintf("%s/%d", ip, c.Prefix))
	if err != nil {
		return "", err
	}
	hw, _ := net.ParseMAC(c.MAC)
	if err := ch.LinkSetHardwareAddr(eth, hw); err != nil {
		return "", err
	}
	if err := ch.AddrAdd(eth, addr); err != nil {
		return "", err
	}
	if err := ch.LinkSetUp(eth); err != nil {
		return "", err
	}
	// OVS port with the iface-id, then ovn-installed.
	if err := plug(ctx, ovs, c.Host, c.Port); err != nil {
		return "", err
	}
	for {
		var ifs []vswitchd.Interface
		q := &vswitchd.Interface{}
		if err := dbconn.Select(ctx, ovs, q, &ifs, model.Condition{Field: &q.Name, Function: ovsdb.ConditionEqual, Value: c.Host}); err != nil {
			return "", err
		}
		if len(ifs) == 1 && ifs[0].ExternalIDs["ovn-installed"] == "true" {
			return ip, nil
		}
		if err := pause(ctx); err != nil {
			return "", fmt.Errorf("%s not ovn-installed: %w", c.Host, err)
		}
	}
}

// dynamicPort inserts the NB port with a dynamic address, waits for
// ovn-northd's address and pins it as static with port security.
func dynamicPort(ctx context.Context, nb client.Client, c conf) (string, error) {
	var sws []nbdb.LogicalSwitch
	sw := &nbdb.LogicalSwitch{}
	if err := dbconn.Select(ctx, nb, sw, &sws, model.Condition{Field: &sw.Name, Function: ovsdb.ConditionEqual, Value: c.Network}); err != nil || len(sws) != 1 {
		return "", fmt.Errorf("switch %s: %d rows, %v", c.Network, len(sws), err)
	}
	p := &nbdb.LogicalSwitchPort{UUID: "p", Name: c.Port, Addresses: []string{c.MAC + " dynamic"}}
	ops, err := nb.Create(p)
	if err != nil {
		return "", err
	}
	s := &nbdb.LogicalSwitch{UUID: sws[0].UUID}
	mut, err := nb.Where(s).Mutate(s, model.Mutation{Field: &s.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{p.UUID}})
	if err != nil {
		return "", err
	}
	if _, err := dbconn.Transact(ctx, nb, append(ops, mut...)...); err != nil {
		return "", err
	}
	for {
		var ps []nbdb.LogicalSwitchPort
		q := &nbdb.LogicalSwitchPort{}
		if err := dbconn.Select(ctx, nb, q, &ps, model.Condition{Field: &q.Name, Function: ovsdb.ConditionEqual, Value: c.Port}); err != nil {
			return "", err
		}
		if len(ps) == 1 && ps[0].DynamicAddresses != nil {
			if f := strings.Fields(*ps[0].DynamicAddresses); len(f) >= 2 {
				pin := &nbdb.LogicalSwitchPort{UUID: ps[0].UUID, Addresses: []string{c.MAC + " " + f[1]}, PortSecurity: []string{c.MAC + " " + f[1]}}
				upd, err := nb.Where(pin).Update(pin, &pin.Addresses, &pin.PortSecurity)
				if err != nil {
					return "", err
				}
				_, err = dbconn.Transact(ctx, nb, upd...)
				return f[1], err
			}
		}
		if err := pause(ctx); err != nil {
			return "", fmt.Errorf("no address for %s: %w", c.Port, err)
		}
	}
}

// claimPort reads the ready port's address and claims it in one NB
// transaction (an external_ids key naming the container).
func claimPort(ctx context.Context, nb client.Client, c conf) (string, error) {
	var ps []nbdb.LogicalSwitchPort
	q := &nbdb.LogicalSwitchPort{}
	if err := dbconn.Select(ctx, nb, q, &ps, model.Condition{Field: &q.Name, Function: ovsdb.ConditionEqual, Value: c.Port}); err != nil {
		return "", err
	}
	if len(ps) != 1 || len(ps[0].Addresses) != 1 {
		return "", fmt.Errorf("ready port %s: %d rows", c.Port, len(ps))
	}
	f := strings.Fields(ps[0].Addresses[0])
	if len(f) < 2 {
		return "", fmt.Errorf("ready port %s: address %q", c.Port, ps[0].Addresses[0])
	}
	p := &nbdb.LogicalSwitchPort{UUID: ps[0].UUID}
	mut, err := nb.Where(p).Mutate(p, model.Mutation{Field: &p.ExternalIDs, Mutator: ovsdb.MutateOperationInsert,
		Value: map[string]string{"floor.claimed": os.Getenv("CNI_CONTAINERID")}})
	if err != nil {
		return "", err
	}
	_, err = dbconn.Transact(ctx, nb, mut...)
	return f[1], err
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
