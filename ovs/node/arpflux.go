package node

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// ARPFlux is what UnderlayARPFlux found: the userspace (netdev) bridge
// whose internal port holds the encap IP, its kernel ports, and those of
// them that answer ARP for the node's addresses with their own MAC.
type ARPFlux struct {
	Bridge    string
	Kernel    []string
	Answering []string
}

// UnderlayARPFlux looks at the interface underlay that holds an IPv4 encap
// IP. When it is an internal port of a netdev bridge, the bridge's kernel
// ports (type "" or "system": ovs-vswitchd reads them through AF_PACKET)
// still deliver every frame to this namespace's kernel too, and a kernel
// port with net.ipv4.conf.<port>.arp_ignore 0 (the effective value is the
// larger of "all" and the port's) answers an ARP request for the encap IP
// with the port's MAC beside the bridge's own answer. A peer's userspace
// tunnels keep whichever answer they snooped last as the tunnel neighbour,
// and Geneve sent to the port's MAC is dropped here (seen in the lab:
// every packet from that peer lost, for as long as it kept sending). nil when
// underlay is no internal port of a netdev bridge. Sysctls are read in the
// caller's network namespace.
func UnderlayARPFlux(ctx context.Context, oc client.Client, underlay string) (*ARPFlux, error) {
	var brs []*vswitchd.Bridge
	var ports []*vswitchd.Port
	var ifs []*vswitchd.Interface
	if err := dbconn.Select(ctx, oc, &vswitchd.Bridge{}, &brs); err != nil {
		return nil, fmt.Errorf("read bridges: %w", err)
	}
	if err := dbconn.Select(ctx, oc, &vswitchd.Port{}, &ports); err != nil {
		return nil, fmt.Errorf("read ports: %w", err)
	}
	if err := dbconn.Select(ctx, oc, &vswitchd.Interface{}, &ifs); err != nil {
		return nil, fmt.Errorf("read interfaces: %w", err)
	}
	ifType := map[string]string{}
	for _, i := range ifs {
		ifType[i.UUID] = i.Type
	}
	portOf := map[string]*vswitchd.Port{}
	for _, p := range ports {
		portOf[p.UUID] = p
	}
	for _, b := range brs {
		if b.DatapathType != "netdev" {
			continue
		}
		holds := false
		var kernel []string
		for _, u := range b.Ports {
			p := portOf[u]
			if p == nil {
				continue
			}
			for _, iu := range p.Interfaces {
				switch ifType[iu] {
				case "internal":
					holds = holds || p.Name == underlay
				case "", "system":
					kernel = append(kernel, p.Name)
				}
			}
		}
		if !holds {
			continue
		}
		slices.Sort(kernel)
		f := &ARPFlux{Bridge: b.Name, Kernel: kernel}
		all := arpIgnore("all")
		for _, k := range kernel {
			if v := arpIgnore(k); v >= 0 && max(all, v) == 0 {
				f.Answering = append(f.Answering, k)
			}
		}
		return f, nil
	}
	return nil, nil
}

// arpIgnore reads net.ipv4.conf.<dev>.arp_ignore (-1 when it cannot be
// read, e.g. the port is not in this namespace).
func arpIgnore(dev string) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + dev + "/arp_ignore")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// Problem says which ports answer ARP and what that costs; "" when none
// does.
func (f *ARPFlux) Problem(encapIP string) string {
	if f == nil || len(f.Answering) == 0 {
		return ""
	}
	who, verb, mac := f.Answering[0]+" (a kernel port of userspace bridge "+f.Bridge+")", "answers", "its own MAC"
	if len(f.Answering) > 1 {
		who, verb, mac = strings.Join(f.Answering, ", ")+" (kernel ports of userspace bridge "+f.Bridge+")", "answer", "their own MACs"
	}
	return fmt.Sprintf("%s %s ARP for encap IP %s with %s (arp_ignore 0) beside %s: a peer's userspace tunnels that learn such a MAC lose every Geneve packet to this node",
		who, verb, encapIP, mac, f.Bridge)
}

// Fix is the sysctl settings that end the problem.
func (f *ARPFlux) Fix() string {
	var set []string
	for _, p := range f.Answering {
		set = append(set, "net.ipv4.conf."+p+".arp_ignore=1")
	}
	return strings.Join(set, " ")
}

// Warning is Problem with its Fix, for node join; "" when nothing answers.
func (f *ARPFlux) Warning(encapIP string) string {
	if p := f.Problem(encapIP); p != "" {
		return p + "; set " + f.Fix() + " (sysctl -w, and in sysctl.d to keep it)"
	}
	return ""
}
