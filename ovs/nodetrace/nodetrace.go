// Package nodetrace follows a logical trace (ovn/trace) into the source
// node's OVS: ofproto/trace on br-int (ovs/flowtrace) with the in_port of the
// source container's interface from the node's Open_vSwitch database
// (ovs/vsdb), and says where the datapath sends the packet: a Geneve tunnel
// to another node, local ports, or a drop and why. It is node-side code and
// must run on (or be pointed at) the node where the source port is bound.
package nodetrace

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/trace"
	"github.com/ovlmgr/ovlmgr/ovs/flowtrace"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// NodeAccess says where the source node's OVS is. Zero values mean this
// machine: dbconn.DefaultOVS() and $OVS_RUNDIR.
type NodeAccess struct {
	OVS    string
	RunDir string
}

// Physical is what the source node's OVS does with the packet.
type Physical struct {
	Node   string `json:"node"`
	InPort int    `json:"inPort"`
	// RemoteNode is the chassis the tunnel leads to ("" when not tunnelled).
	RemoteNode string `json:"remoteNode,omitempty"`
	// LocalPorts are the OVS interfaces the packet is output to on this node.
	LocalPorts []string `json:"localPorts,omitempty"`
	// Lost: the datapath sends the packet somewhere it cannot arrive from.
	Lost     bool              `json:"lost,omitempty"`
	Summary  string            `json:"summary"`
	Datapath *flowtrace.Result `json:"datapath"`
	Raw      string            `json:"-"`
}

// OnNode traces res's packet through the source node's OVS (ofproto/trace
// on br-int). It must run where that OVS is: the source port must be bound
// to the chassis of the Open_vSwitch database at a.OVS.
func OnNode(ctx context.Context, sb client.Client, res *trace.Result, a NodeAccess) (*Physical, error) {
	if a.OVS == "" {
		a.OVS = dbconn.DefaultOVS()
	}
	oc, err := vsdb.Connect(ctx, a.OVS)
	if err != nil {
		return nil, names.About("node trace", "%w", err)
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return nil, names.About("node trace", "%w", err)
	}
	self := root.ExternalIDs["system-id"]
	from := res.From
	if from.BoundOn != self {
		where := from.BoundOn
		if where == "" {
			return nil, names.About("node trace", "source %s is not bound on any node", from.Label())
		}
		return nil, names.About("node trace", "source %s is on node %s, this is node %s: run the trace on %s (lab: `ovlmgr lab exec %s -- ovlmgr trace ... --on-node`)",
			from.Label(), where, self, where, where)
	}
	ifs, err := vsdb.Interfaces(ctx, oc, "")
	if err != nil {
		return nil, names.About("node trace", "%w", err)
	}
	byOfport := map[int]string{}
	ifType := map[string]string{}
	inPort := 0
	for _, i := range ifs {
		ifType[i.Name] = i.Type
		if i.Ofport == nil {
			continue
		}
		label := i.Name
		if id := i.ExternalIDs["iface-id"]; id != "" {
			label = fmt.Sprintf("%s (iface-id %s)", i.Name, id)
			if id == from.Port {
				inPort = *i.Ofport
			}
			if res.To != nil && id == res.To.Port {
				label = fmt.Sprintf("%s (%s)", i.Name, res.To.Label())
			}
		}
		byOfport[*i.Ofport] = label
	}
	if inPort <= 0 {
		return nil, names.About("node trace", "no OVS interface with iface-id %s on node %s", from.Port, self)
	}
	pk := flowtrace.Packet{InPort: inPort, SrcMAC: res.SrcMAC, DstMAC: res.DstMAC,
		Src: res.SrcIP, Dst: res.DstIP, Proto: res.Proto, DstPort: res.Port}
	d, err := flowtrace.Trace(ctx, flowtrace.Target{RunDir: a.RunDir}, pk)
	if err != nil {
		return nil, names.About("node trace", "%w", err)
	}
	p := &Physical{Node: self, InPort: inPort, Datapath: d, Raw: d.Raw}
	switch {
	case d.TunnelRemote != "" && !d.Dropped:
		p.RemoteNode = chassisOfIP(ctx, sb, d.TunnelRemote)
		p.Summary = fmt.Sprintf("Geneve tunnel to node %s (%s) via %s", orIP(p.RemoteNode, d.TunnelRemote), d.TunnelRemote, d.TunnelEgress)
	case d.Dropped:
		p.Summary = "datapath drops it: " + d.Reason
		if d.TunnelRemote != "" {
			p.RemoteNode = chassisOfIP(ctx, sb, d.TunnelRemote)
			p.Summary += fmt.Sprintf(" (tunnel to node %s, %s via %s)", orIP(p.RemoteNode, d.TunnelRemote), d.TunnelRemote, d.TunnelEgress)
		}
	default:
		for _, o := range d.OutPorts {
			if l, ok := byOfport[o]; ok {
				p.LocalPorts = append(p.LocalPorts, l)
			}
		}
		p.Summary = "output on this node to " + strings.Join(p.LocalPorts, ", ")
		switch {
		case len(p.LocalPorts) > 0:
		case strings.Contains(d.DatapathActions, "hash(") && strings.Contains(d.DatapathActions, "recirc("):
			p.Summary = "load balanced in the datapath (hash, then recirculation) where ofproto/trace stops; trace a backend directly to see its tunnel"
		default:
			p.Summary = "datapath actions: " + d.DatapathActions
		}
	}
	if t, ok := ifType[d.TunnelEgress]; ok && t != "internal" {
		p.Lost = true
		p.Summary += fmt.Sprintf("; %s is a port of an OVS bridge, not the bridge: tunnel packets sent by it are lost (move the underlay IP to its bridge; see ovlmgr diagnose)", d.TunnelEgress)
	}
	if len(d.Warnings) > 0 {
		p.Summary += "; " + strings.Join(d.Warnings, "; ")
	}
	return p, nil
}

func orIP(name, ip string) string {
	if name == "" {
		return ip
	}
	return name
}

// chassisOfIP names the chassis whose encap IP is ip.
func chassisOfIP(ctx context.Context, sb client.Client, ip string) string {
	encs, err := dbops.SelectRows(ctx, sb, []ovsdb.Condition{{Column: "ip", Function: ovsdb.ConditionEqual, Value: ip}},
		func(e *sbdb.Encap) []any { return []any{&e.UUID, &e.ChassisName, &e.IP} })
	if err != nil || len(encs) == 0 {
		return ""
	}
	return encs[0].ChassisName
}
