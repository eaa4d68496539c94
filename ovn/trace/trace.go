// Package trace answers "why does A not reach B" in ovlmgr terms. It
// resolves both ends (container name, container ID prefix, port name or IP)
// to their ports through our owner external_ids, builds the microflow a
// first packet would have, runs OVN's logical trace (ovn-trace against the
// Southbound database) and turns the result into a verdict: delivered or
// dropped, the hops (network web → router t1 → network db → container x on
// node n3) and the reason as an ovlmgr object (a policy, port security, a
// missing route, an unbound destination).
package trace

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Request is what to trace.
type Request struct {
	From, To string
	// Proto is icmp (default), tcp or udp; Port the destination port of tcp/udp.
	Proto string
	Port  int
	// SrcIP and SrcMAC, when set, forge the packet's source (to see what
	// port security does with it).
	SrcIP  netip.Addr
	SrcMAC string
	// IPv6 traces an IPv6 packet between the ends' IPv6 addresses. It is
	// implied by an IPv6 TO address or source IP, and by a FROM on an
	// IPv6-only network.
	IPv6 bool
}

// Validate checks the request's fields.
func (r *Request) Validate() error {
	if r.From == "" || r.To == "" {
		return fmt.Errorf("trace: FROM and TO are required")
	}
	r.Proto = strings.ToLower(r.Proto)
	switch r.Proto {
	case "":
		r.Proto = "icmp"
		fallthrough
	case "icmp":
		if r.Port != 0 {
			return names.Bad("port", r.Port, "only with {proto} tcp or udp")
		}
	case "tcp", "udp":
		if r.Port == 0 {
			r.Port = 80
		}
		if r.Port < 1 || r.Port > 65535 {
			return names.Bad("port", r.Port, "allowed 1..65535")
		}
	default:
		return names.Bad("proto", r.Proto, "allowed are icmp, tcp, udp")
	}
	if r.SrcIP.Is4In6() || r.SrcIP.Zone() != "" {
		return names.Bad("source ip", r.SrcIP, "want a plain IPv4 or IPv6 address")
	}
	if r.SrcIP.Is6() {
		r.IPv6 = true
	}
	if r.SrcMAC != "" {
		mac, err := net.ParseMAC(r.SrcMAC)
		if err != nil || len(mac) != 6 {
			return names.Bad("source mac", r.SrcMAC, "want a MAC such as 0a:58:c6:13:01:09")
		}
		r.SrcMAC = mac.String()
	}
	return nil
}

// Verdicts.
const (
	Delivered = "delivered"
	Dropped   = "dropped"
)

// PolicyRef is the ovlmgr object behind an ACL that dropped a packet.
type PolicyRef struct {
	// Kind is "policy", "isolation" or "foreign" (an ACL not made by ovlmgr).
	Kind        string `json:"kind"`
	Name        string `json:"name,omitempty"`
	Network     string `json:"network,omitempty"`
	Priority    string `json:"priority,omitempty"` // the policy's priority
	ACLPriority int    `json:"aclPriority"`
	Match       string `json:"match"`
}

// Result is a trace's answer.
type Result struct {
	From      *Endpoint  `json:"from"`
	To        *Endpoint  `json:"to"`
	Proto     string     `json:"proto"`
	Port      int        `json:"port,omitempty"`
	Microflow string     `json:"microflow"`
	Verdict   string     `json:"verdict"`
	Reason    string     `json:"reason,omitempty"`
	Hops      []string   `json:"hops"`
	Policy    *PolicyRef `json:"policy,omitempty"`
	// Service is set when TO is a service VIP.
	Service *ServiceRef `json:"service,omitempty"`
	// DropStage is the OVN stage that dropped the packet (ls_out_acl, ...).
	DropStage string `json:"dropStage,omitempty"`
	// DstMAC is the Ethernet destination used (the router port's MAC when
	// the packet must cross a router).
	DstMAC string `json:"dstMAC"`
	// SrcMAC and SrcIP are the packet's source (forged or the port's own).
	SrcMAC string     `json:"srcMAC"`
	SrcIP  netip.Addr `json:"srcIP"`
	// DstIP is the packet's destination (a service VIP, or TO's address).
	DstIP   netip.Addr `json:"dstIP"`
	Logical *Logical   `json:"logical,omitempty"`
	// External says how the packet crosses a router gateway ("SNAT to
	// 198.18.100.10 on gateway n1", "published 198.18.100.10:8080 ->
	// web-1:80 on gateway n1", "floating IP ...").
	External string `json:"external,omitempty"`
}

// Raw returns ovn-trace's own output.
func (r *Result) Raw() string {
	if r.Logical == nil {
		return ""
	}
	return r.Logical.Raw
}

// Trace resolves req's ends, runs ovn-trace against the SB database at
// sbEndpoints and explains the result. nb and sb are connected clients.
func Trace(ctx context.Context, nb, sb client.Client, sbEndpoints string, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Result, error) { return nil, fmt.Errorf("trace %s -> %s: %w", req.From, req.To, err) }
	if req.From == External {
		res, err := inbound(ctx, nb, sb, req)
		if err != nil {
			return fail(err)
		}
		return res, nil
	}
	from, to, srcNet, err := resolveEnds(ctx, nb, sb, req.From, req.To)
	if err != nil {
		return fail(err)
	}
	if err := pickFamily(&req, from, to, srcNet); err != nil {
		return fail(err)
	}
	res := &Result{From: from, To: to, Proto: req.Proto, Port: req.Port}
	// The Ethernet destination a real sender would use: the peer itself on
	// the same network, else its gateway (the router port on its network).
	sameNet := to.Network != "" && to.Network == from.Network || to.Network == "" && srcNet.Subnet.Contains(to.IP)
	gateway := to.Port == "" && srcNet.RouterMAC != "" && to.IP == srcNet.Gateway
	var lbDst string
	if to.Port == "" && req.Proto != "icmp" {
		svc, err := serviceAt(ctx, nb, netip.AddrPortFrom(to.IP, uint16(req.Port)).String(), req.Proto)
		if err != nil {
			return fail(err)
		}
		if svc != nil {
			res.Service = svc
			switch {
			case len(svc.Total) == 0:
				res.Verdict, res.Hops = Dropped, []string{"network " + from.Network}
				res.Reason = fmt.Sprintf("service %s (VIP %s) has no backends", svc.Name, svc.VIP)
				return res, nil
			case srcNet.RouterMAC == "":
				res.Verdict, res.Hops = Dropped, []string{"network " + from.Network}
				res.Reason = fmt.Sprintf("network %s is on no router: OVN reaches service VIPs through a router port", from.Network)
				return res, nil
			}
			svc.Backend = svc.Total[0]
			lbDst = svc.Backend
			// Explain against the backend container.
			if ap, err := netip.ParseAddrPort(svc.Backend); err == nil {
				if _, be, err := Resolve(ctx, nb, sb, from.Port, ap.Addr().String()); err == nil {
					if req.IPv6 && be.IP6.IsValid() {
						be.IP = be.IP6
					}
					res.To, to = be, be
				}
			}
		}
	}
	switch {
	case lbDst != "":
		res.DstMAC = srcNet.RouterMAC
	case sameNet && to.MAC != "":
		res.DstMAC = to.MAC
	case gateway:
		res.DstMAC = srcNet.RouterMAC
	case sameNet:
		// Nothing to trace: no port answers for that address.
		res.Verdict = Dropped
		res.Hops = []string{"network " + from.Network}
		res.Reason = fmt.Sprintf("no container holds %s on network %s (stopped or deleted?)", to.IP, from.Network)
		return res, nil
	case srcNet.RouterMAC != "":
		res.DstMAC = srcNet.RouterMAC
	case to.MAC != "":
		res.DstMAC = to.MAC
	default:
		res.DstMAC = "ff:ff:ff:ff:ff:ff"
	}
	srcMAC, srcIP := from.MAC, from.IP
	if req.SrcMAC != "" {
		srcMAC = req.SrcMAC
	}
	if req.SrcIP.IsValid() {
		srcIP = req.SrcIP
	}
	if srcMAC == "" || !srcIP.IsValid() {
		return fail(fmt.Errorf("FROM %s: port %s has no address yet", from.Label(), from.Port))
	}
	res.SrcMAC, res.SrcIP = srcMAC, srcIP
	dstIP := to.IP
	if res.Service != nil {
		if ap, err := netip.ParseAddrPort(res.Service.VIP); err == nil {
			dstIP = ap.Addr()
		}
	}
	res.DstIP = dstIP
	res.Microflow = microflow(from.Port, srcMAC, res.DstMAC, srcIP, dstIP, req.Proto, req.Port)
	out, err := runOVNTrace(ctx, sbEndpoints, res.Microflow, lbDst)
	if err != nil {
		return fail(err)
	}
	res.Logical = parseLogical(out)
	res.Hops = hops(res.Logical, to)
	explain(ctx, nb, sb, res, srcMAC, srcIP)
	externalOut(ctx, nb, sb, res)
	if svc := res.Service; svc != nil {
		h := fmt.Sprintf("service %s (VIP %s -> %s, 1 of %d backends)", svc.Name, svc.VIP, svc.Backend, len(svc.Total))
		if len(res.Hops) > 0 {
			res.Hops = append(res.Hops[:1], append([]string{h}, res.Hops[1:]...)...)
		} else {
			res.Hops = []string{h}
		}
		if res.Verdict == Delivered {
			res.Reason = fmt.Sprintf("service %s balances VIP %s to %s (%s, traced; %d backend(s))", svc.Name, svc.VIP, svc.Backend, to.Label(), len(svc.Total))
		}
	}
	if gateway && res.Logical.Drop == nil {
		for _, o := range res.Logical.Outputs {
			if o != from.Port {
				continue
			}
			res.Hops = []string{"network " + from.Network, fmt.Sprintf("router %s (gateway %s)", from.Router, to.IP)}
			if req.Proto == "icmp" {
				res.Verdict, res.Reason = Delivered, fmt.Sprintf("router %s answers: %s is its gateway address on network %s", from.Router, to.IP, from.Network)
			} else {
				res.Verdict, res.Reason = Dropped, fmt.Sprintf("router %s refuses %s/%d on its gateway address %s (routers answer ping only)", from.Router, req.Proto, req.Port, to.IP)
			}
		}
	}
	return res, nil
}

// Resolve finds the two ends of a trace: from must be a container; to is a
// container or an IP. Both come with their network, router and binding.
func Resolve(ctx context.Context, nb, sb client.Client, from, to string) (*Endpoint, *Endpoint, error) {
	f, t, _, err := resolveEnds(ctx, nb, sb, from, to)
	return f, t, err
}

func resolveEnds(ctx context.Context, nb, sb client.Client, fromIn, toIn string) (*Endpoint, *Endpoint, *netInfo, error) {
	idx, err := readPorts(ctx, nb)
	if err != nil {
		return nil, nil, nil, err
	}
	names, err := dnsNames(ctx, nb)
	if err != nil {
		return nil, nil, nil, err
	}
	froms, err := resolve(idx, fromIn, names)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("FROM %w", err)
	}
	froms = ports(froms)
	if len(froms) == 0 {
		return nil, nil, nil, fmt.Errorf("FROM %q: no container holds that address; the source must be a container", fromIn)
	}
	if len(froms) > 1 {
		return nil, nil, nil, ambiguous("FROM", fromIn, froms)
	}
	from := froms[0]
	tos, err := resolve(idx, toIn, names)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TO %w", err)
	}
	for _, e := range append([]*Endpoint{from}, tos...) {
		nameOf(e, names)
	}
	srcNet, err := readNetwork(ctx, nb, from.Network)
	if err != nil {
		return nil, nil, nil, err
	}
	from.Router = srcNet.Router
	to, err := pickTo(ctx, nb, toIn, tos, from)
	if err != nil {
		return nil, nil, nil, err
	}
	if to.Network != "" {
		dstNet, err := readNetwork(ctx, nb, to.Network)
		if err != nil {
			return nil, nil, nil, err
		}
		to.Router = dstNet.Router
	}
	if from.BoundOn, err = binding(ctx, sb, from.Port); err != nil {
		return nil, nil, nil, err
	}
	if to.Port != "" {
		if to.BoundOn, err = binding(ctx, sb, to.Port); err != nil {
			return nil, nil, nil, err
		}
	}

	return from, to, srcNet, nil
}

// ports keeps the endpoints that are container ports.
func ports(es []*Endpoint) []*Endpoint {
	var out []*Endpoint
	for _, e := range es {
		if e.Port != "" {
			out = append(out, e)
		}
	}
	return out
}

func ambiguous(which, input string, es []*Endpoint) error {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("%s on network %s (port %s)", e.Label(), e.Network, e.Port))
	}
	return fmt.Errorf("%s %q matches %d containers: %s; give a port name or more of the container ID", which, input, len(es), strings.Join(s, ", "))
}

// pickTo chooses the destination among candidates: the one the source can
// see (same network, then same router) when an address is on several networks.
func pickTo(ctx context.Context, nb client.Client, input string, tos []*Endpoint, from *Endpoint) (*Endpoint, error) {
	if len(tos) == 1 {
		return tos[0], nil
	}
	for _, t := range tos {
		if t.Network == from.Network {
			return t, nil
		}
	}
	var sameRouter []*Endpoint
	for _, t := range tos {
		if from.Router == "" {
			break
		}
		if ni, err := readNetwork(ctx, nb, t.Network); err == nil && ni.Router == from.Router {
			sameRouter = append(sameRouter, t)
		}
	}
	if len(sameRouter) == 1 {
		return sameRouter[0], nil
	}
	return nil, ambiguous("TO", input, tos)
}

// microflow builds ovn-trace's packet: a first packet from src to dst
// (IPv4 or IPv6, by dst's family; an echo request for icmp).
func microflow(inport, srcMAC, dstMAC string, src, dst netip.Addr, proto string, port int) string {
	ip, icmp := "ip4", "icmp4.type == 8 && icmp4.code == 0"
	if dst.Is6() {
		ip, icmp = "ip6", "icmp6.type == 128 && icmp6.code == 0"
	}
	parts := []string{
		fmt.Sprintf("inport == %q", inport),
		"eth.src == " + srcMAC, "eth.dst == " + dstMAC,
		ip + ".src == " + src.String(), ip + ".dst == " + dst.String(), "ip.ttl == 64",
	}
	switch proto {
	case "tcp", "udp":
		parts = append(parts, proto, fmt.Sprintf("%s.src == 33333", proto), fmt.Sprintf("%s.dst == %d", proto, port))
	default:
		parts = append(parts, icmp)
	}
	return strings.Join(parts, " && ")
}

// pickFamily decides the traced family (req.IPv6: asked for, implied by an
// IPv6 TO address, or FROM's network is IPv6-only) and makes the ends' IP
// and the source network's subnet and gateway those of that family.
func pickFamily(req *Request, from, to *Endpoint, srcNet *netInfo) error {
	if a, err := netip.ParseAddr(req.To); err == nil && a.Is6() || !from.IP.IsValid() && from.IP6.IsValid() {
		req.IPv6 = true
	}
	if !req.IPv6 {
		if !from.IP.IsValid() && from.IP6.IsValid() {
			return fmt.Errorf("FROM %s has no IPv4 address (network %s is IPv6-only)", from.Label(), from.Network)
		}
		return nil
	}
	if !from.IP6.IsValid() {
		return fmt.Errorf("FROM %s has no IPv6 address (network %s has no IPv6 subnet)", from.Label(), from.Network)
	}
	from.IP = from.IP6
	if to.Port != "" {
		if !to.IP6.IsValid() {
			return fmt.Errorf("TO %s has no IPv6 address (network %s has no IPv6 subnet)", to.Label(), to.Network)
		}
		to.IP = to.IP6
	}
	srcNet.Subnet, srcNet.Gateway = srcNet.Subnet6, srcNet.Gateway6
	return nil
}

// hops lists the datapaths the packet crossed in ovlmgr terms.
func hops(l *Logical, to *Endpoint) []string {
	out := []string{}
	last := ""
	for _, s := range l.Sections {
		kind := "network"
		for _, f := range s.Flows {
			if strings.HasPrefix(f.Stage, "lr_") {
				kind = "router"
			}
			break
		}
		h := kind + " " + s.Datapath
		if h != last {
			out = append(out, h)
			last = h
		}
	}
	for _, o := range l.Outputs {
		if o == to.Port && to.Port != "" {
			if to.BoundOn == "" {
				out = append(out, to.Label()+" (bound on no node)")
			} else {
				out = append(out, fmt.Sprintf("%s on node %s", to.Label(), to.BoundOn))
			}
		}
	}
	return out
}

// explain sets Verdict and Reason from the parsed trace.
func explain(ctx context.Context, nb, sb client.Client, res *Result, srcMAC string, srcIP netip.Addr) {
	l := res.Logical
	from, to := res.From, res.To
	res.Verdict = Dropped
	if d := l.Drop; d != nil {
		res.DropStage = d.Stage
		switch {
		case strings.Contains(d.Stage, "port_sec") && strings.HasPrefix(d.Stage, "ls_in"):
			switch {
			case !strings.EqualFold(srcMAC, from.MAC):
				res.Reason = fmt.Sprintf("port security: source MAC %s is not %s's address (%s)", srcMAC, from.Label(), from.MAC)
			case srcIP != from.IP:
				res.Reason = fmt.Sprintf("port security: source %s is not %s's address (%s)", srcIP, from.Label(), from.IP)
			default:
				res.Reason = fmt.Sprintf("port security of %s dropped the packet", from.Label())
			}
		case strings.HasSuffix(d.Stage, "_acl") || strings.Contains(d.Stage, "_acl_"):
			p := aclFor(ctx, nb, sb, d)
			res.Policy = p
			switch p.Kind {
			case "policy":
				res.Reason = fmt.Sprintf("denied by policy %s on network %s (priority %s)", p.Name, p.Network, p.Priority)
			case "isolation":
				res.Reason = fmt.Sprintf("denied by network %s's default-deny isolation: no policy allows it", p.Network)
			default:
				res.Reason = fmt.Sprintf("denied by an ACL not managed by ovlmgr on %s (priority %d): %s", l.DropDatapath, p.ACLPriority, p.Match)
			}
		case d.Stage == "lr_in_ip_routing" || d.Stage == "lr_in_ip_routing_pre" || (strings.HasPrefix(d.Stage, "ls_in_l2_lkup") && to.Network != from.Network):
			res.Reason = noRoute(from, to, l.DropDatapath)
		case strings.HasPrefix(d.Stage, "ls_in_l2_lkup"):
			res.Reason = fmt.Sprintf("no port with MAC %s on network %s", res.DstMAC, from.Network)
		default:
			what := "network"
			if strings.HasPrefix(d.Stage, "lr_") {
				what = "router"
			}
			res.Reason = fmt.Sprintf("dropped by OVN in stage %s on %s %s (logical flow %s: %s)", d.Stage, what, l.DropDatapath, d.UUID, d.Match)
		}
		return
	}
	if to.Port == "" {
		if to.Network == "" && len(l.Sections) > 1 {
			res.Reason = fmt.Sprintf("no container holds %s: the router asks for it by ARP and nobody answers", to.IP)
			return
		}
		res.Reason = noRoute(from, to, "")
		return
	}
	for _, o := range l.Outputs {
		if o != to.Port {
			continue
		}
		if to.BoundOn == "" {
			node := ""
			if to.Node != "" {
				node = fmt.Sprintf(" (created for node %s: is the container running and ovn-controller up there?)", to.Node)
			}
			res.Reason = fmt.Sprintf("destination %s has no port bound on any node%s", to.Label(), node)
			return
		}
		res.Verdict = Delivered
		return
	}
	if len(l.Outputs) > 0 {
		res.Reason = fmt.Sprintf("the packet went to port %s, not to %s", strings.Join(l.Outputs, ", "), to.Label())
		return
	}
	if from.Network != to.Network {
		res.Reason = noRoute(from, to, "")
		return
	}
	res.Reason = "the logical trace ended without output (see --detail)"
}

// noRoute explains a routing drop with our topology.
func noRoute(from, to *Endpoint, dp string) string {
	switch {
	case to.Network == "":
		if from.Router == "" {
			return fmt.Sprintf("no route: network %s is on no router, so only its own subnet is reachable", from.Network)
		}
		return fmt.Sprintf("no route: router %s has no network holding %s", from.Router, to.IP)
	case from.Router == "" && to.Router == "":
		return fmt.Sprintf("no route: networks %s and %s are on no router", from.Network, to.Network)
	case from.Router == "":
		return fmt.Sprintf("no route: network %s is on no router (network %s is on router %s)", from.Network, to.Network, to.Router)
	case to.Router == "":
		return fmt.Sprintf("no route: network %s is on no router (network %s is on router %s)", to.Network, from.Network, from.Router)
	case from.Router != to.Router:
		return fmt.Sprintf("no route: networks %s and %s are on different routers (%s and %s)", from.Network, to.Network, from.Router, to.Router)
	}
	if dp == "" {
		dp = from.Router
	}
	return fmt.Sprintf("no route to %s on router %s", to.IP, dp)
}

// aclFor maps the ACL flow that dropped the packet back to its NB ACL via
// the Logical_Flow's stage-hint, and the ACL to our policy or isolation.
func aclFor(ctx context.Context, nb, sb client.Client, f *Flow) *PolicyRef {
	ref := &PolicyRef{Kind: "foreign", ACLPriority: f.Priority - 1000, Match: f.Match}
	lfs, err := dbops.SelectRows(ctx, sb, []ovsdb.Condition{
		{Column: "match", Function: ovsdb.ConditionEqual, Value: f.Match},
		{Column: "priority", Function: ovsdb.ConditionEqual, Value: f.Priority},
	}, func(lf *sbdb.LogicalFlow) []any { return []any{&lf.UUID, &lf.ExternalIDs} })
	if err != nil {
		return ref
	}
	hint := ""
	for _, lf := range lfs {
		if strings.HasPrefix(lf.UUID, f.UUID) {
			hint = lf.ExternalIDs["stage-hint"]
		}
	}
	if hint == "" {
		return ref
	}
	acls, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Includes(map[string]string{owner.KeyOwner: owner.Owner})},
		func(a *nbdb.ACL) []any { return []any{&a.UUID, &a.ExternalIDs, &a.Priority, &a.Match} })
	if err != nil {
		return ref
	}
	sort.Slice(acls, func(i, j int) bool { return acls[i].UUID < acls[j].UUID })
	for _, a := range acls {
		if !strings.HasPrefix(a.UUID, hint) {
			continue
		}
		ids := a.ExternalIDs
		ref.ACLPriority, ref.Match = a.Priority, a.Match
		ref.Network = ids[owner.KeyNetwork]
		switch ids[owner.KeyKind] {
		case owner.KindPolicy:
			ref.Kind, ref.Name, ref.Priority = "policy", ids[owner.KeyName], ids["ovlmgr.io/priority"]
		case "isolation":
			ref.Kind, ref.Name = "isolation", ids[owner.KeyName]
		}
		return ref
	}
	return ref
}
