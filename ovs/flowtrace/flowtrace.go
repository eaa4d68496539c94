// Package flowtrace traces a packet through a node's OVS (ofproto/trace on
// br-int through the node's ovs-vswitchd, via go-openvswitch) and says what
// the datapath does with it: the Geneve tunnel it takes (remote IP, the
// interface it egresses), the local ports it is output to, or where and why
// it is dropped. ovs-appctl is run with an argument list, never a shell.
package flowtrace

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/go-openvswitch/ovs"

	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// Target is the node's OVS.
type Target struct {
	// RunDir is the node's OVS_RUNDIR, where ovs-appctl finds ovs-vswitchd
	// (default $OVS_RUNDIR, else /var/run/openvswitch).
	RunDir string
	// Bridge defaults to br-int.
	Bridge string
}

// Packet is the first packet of a flow entering Bridge on OpenFlow port InPort.
type Packet struct {
	InPort         int
	SrcMAC, DstMAC string
	Src, Dst       netip.Addr
	Proto          string // icmp, tcp or udp
	DstPort        int
	TTL            int
}

// Result is what the datapath does with the packet.
type Result struct {
	// Tunnel is set when the packet is sent through a Geneve tunnel.
	TunnelRemote string `json:"tunnelRemote,omitempty"`
	// TunnelEgress is the OVS bridge/interface the tunnel packet leaves by.
	TunnelEgress string `json:"tunnelEgress,omitempty"`
	// OutPorts are br-int OpenFlow ports the packet is output to locally.
	OutPorts []int `json:"outPorts,omitempty"`
	// Dropped: the datapath actions drop the packet.
	Dropped bool `json:"dropped"`
	// Reason explains a drop ("native tunnel routing failed: ...").
	Reason string `json:"reason,omitempty"`
	// Warnings are notes such as a neighbour cache miss (the first packet
	// to a new tunnel peer is dropped while OVS resolves its MAC).
	Warnings        []string `json:"warnings,omitempty"`
	DatapathActions string   `json:"datapathActions"`
	Raw             string   `json:"-"`
}

var (
	tunnelRE   = regexp.MustCompile(`-> tunneling to (\S+) via (\S+)`)
	tnlFailRE  = regexp.MustCompile(`native tunnel routing failed|native tunnel port not found|failed to.*tunnel`)
	neighRE    = regexp.MustCompile(`neighbor cache miss for (\S+) on bridge (\S+)`)
	droppingRE = regexp.MustCompile(`->\s+(.*dropping.*)$`)
	dpActRE    = regexp.MustCompile(`(?m)^Datapath actions: (.*)$`)
	tnlPushRE  = regexp.MustCompile(`tnl_push\(.*?ipv[46]\(src=([0-9a-f.:]+),dst=([0-9a-f.:]+)`)
	outputRE   = regexp.MustCompile(`^\s*output:(\d+)\s*$`)
	bridgeRE   = regexp.MustCompile(`^\s*bridge\("([^"]+)"\)`)
	tableDropR = regexp.MustCompile(`^\s*(\d+)\. .*`)
)

// Trace runs ofproto/trace for p on the node's bridge.
func Trace(ctx context.Context, t Target, p Packet) (*Result, error) {
	if t.RunDir == "" {
		t.RunDir = os.Getenv("OVS_RUNDIR")
	}
	if t.Bridge == "" {
		t.Bridge = "br-int"
	}
	if p.TTL == 0 {
		p.TTL = 64
	}
	var raw []byte
	run := func(cmd string, args ...string) ([]byte, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		bin, err := sysbin.Find(cmd)
		if err != nil {
			return nil, err
		}
		c := exec.CommandContext(cctx, bin, args...)
		c.Env = os.Environ()
		if t.RunDir != "" {
			c.Env = append(c.Env, "OVS_RUNDIR="+t.RunDir)
		}
		out, err := c.CombinedOutput()
		raw = out
		if err != nil {
			return out, fmt.Errorf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return out, nil
	}
	cl := ovs.New(ovs.Exec(run))
	proto := ovs.ProtocolICMPv4
	matches := []ovs.Match{
		ovs.InPortMatch(p.InPort),
		ovs.DataLinkSource(p.SrcMAC), ovs.DataLinkDestination(p.DstMAC),
	}
	v6 := p.Dst.Is6()
	if v6 {
		proto = ovs.ProtocolICMPv6
		matches = append(matches, ovs.IPv6Source(p.Src.String()), ovs.IPv6Destination(p.Dst.String()))
	} else {
		matches = append(matches, ovs.NetworkSource(p.Src.String()), ovs.NetworkDestination(p.Dst.String()))
	}
	matches = append(matches, ovs.NetworkTTL(p.TTL)) // the hop limit over IPv6
	switch {
	case p.Proto == "tcp" || p.Proto == "udp":
		switch {
		case p.Proto == "tcp" && v6:
			proto = ovs.ProtocolTCPv6
		case p.Proto == "tcp":
			proto = ovs.ProtocolTCPv4
		case v6:
			proto = ovs.ProtocolUDPv6
		default:
			proto = ovs.ProtocolUDPv4
		}
		matches = append(matches, ovs.TransportSourcePort(33333), ovs.TransportDestinationPort(uint16(p.DstPort)))
	case v6:
		matches = append(matches, ovs.ICMP6Type(128), ovs.ICMP6Code(0))
	default:
		matches = append(matches, ovs.ICMPType(8), ovs.ICMPCode(0))
	}
	pt, err := cl.App.ProtoTrace(t.Bridge, proto, matches)
	if err != nil && raw == nil {
		return nil, fmt.Errorf("ofproto/trace on %s: %w", t.Bridge, err)
	}
	if pt != nil && pt.RawOutput != nil {
		raw = pt.RawOutput
	}
	if len(raw) == 0 || !dpActRE.Match(raw) {
		return nil, fmt.Errorf("ofproto/trace on %s: %v: %s", t.Bridge, err, strings.TrimSpace(string(raw)))
	}
	return parse(string(raw), t.Bridge), nil
}

// parse reads ofproto/trace output.
func parse(out, bridge string) *Result {
	r := &Result{Raw: out}
	if m := dpActRE.FindAllStringSubmatch(out, -1); len(m) > 0 {
		r.DatapathActions = strings.TrimSpace(m[len(m)-1][1])
	}
	cur := bridge
	for _, line := range strings.Split(out, "\n") {
		if m := bridgeRE.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := tunnelRE.FindStringSubmatch(line); m != nil {
			r.TunnelRemote, r.TunnelEgress = m[1], m[2]
		}
		if tnlFailRE.MatchString(line) && r.Reason == "" {
			r.Reason = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "->"))
		}
		if m := droppingRE.FindStringSubmatch(line); m != nil && r.Reason == "" {
			r.Reason = fmt.Sprintf("bridge %s: %s", cur, m[1])
		}
		if m := neighRE.FindStringSubmatch(line); m != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("neighbour cache miss for %s on %s: OVS sent an ARP request; this first packet is dropped, the next ones pass", m[1], strings.TrimSuffix(m[2], ",")))
		}
		if m := outputRE.FindStringSubmatch(line); m != nil && cur == bridge {
			n, _ := strconv.Atoi(m[1])
			r.OutPorts = append(r.OutPorts, n)
		}
	}
	if m := tnlPushRE.FindStringSubmatch(r.DatapathActions); m != nil {
		r.TunnelRemote = m[2]
	}
	if r.DatapathActions == "drop" || r.DatapathActions == "" {
		r.Dropped = true
		if r.Reason == "" && len(r.Warnings) > 0 {
			r.Reason = "neighbour cache miss: the tunnel peer's MAC is being resolved (retry)"
		}
		if r.Reason == "" {
			r.Reason = "dropped by br-int's flows"
			// The last table line before the final "drop" names the table.
			lines := strings.Split(out, "\n")
			for i := len(lines) - 1; i >= 1; i-- {
				if strings.TrimSpace(lines[i]) == "drop" {
					if m := tableDropR.FindStringSubmatch(lines[i-1]); m != nil {
						r.Reason = "dropped by br-int OpenFlow table " + m[1]
					}
					break
				}
			}
		}
	} else if !strings.Contains(r.DatapathActions, "tnl_push") {
		r.TunnelRemote, r.TunnelEgress = "", ""
	}
	return r
}
