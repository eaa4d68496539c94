// Package events tells what happens in the overlay in ovlmgr's terms:
// containers attached and detached, their ports going up and down and being
// bound to nodes, nodes (chassis) joining and leaving, and policy verdicts
// read from ovn-controller's ACL log ("denied by policy deny-db: web-1
// 198.19.0.2:41532 -> db-1:5432/tcp on node n2").
//
// Port and chassis events come from NB and SB monitors (Follow); verdicts
// from acl_log lines of each node's ovn-controller log (ParseACLLog), read
// through a LogSource: the lab's log files (FileSource) or each node's
// exporter (HTTPSource, `ovlmgr exporter --node` serves /acl-log).
package events

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
	"github.com/ovlmgr/ovlmgr/ovn/port"
)

// Kind is what an event is about.
type Kind string

// The kinds of events.
const (
	Attached      Kind = "attached"       // a container port appeared and came up
	Detached      Kind = "detached"       // a container port was removed
	PortUp        Kind = "up"             // NB Logical_Switch_Port up became true again
	PortDown      Kind = "down"           // NB Logical_Switch_Port up became false
	Bound         Kind = "bound"          // SB Port_Binding got a chassis
	Unbound       Kind = "unbound"        // SB Port_Binding lost its chassis
	ChassisJoined Kind = "chassis-joined" // a Chassis row appeared in SB
	ChassisLeft   Kind = "chassis-left"   // a Chassis row was removed from SB
	Verdict       Kind = "verdict"        // an acl_log line: a policy allowed or denied a packet
)

// Event is one thing that happened, with its text in ovlmgr's terms.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      Kind      `json:"kind"`
	Network   string    `json:"network,omitempty"`
	Node      string    `json:"node,omitempty"`
	Container string    `json:"container,omitempty"` // display name (DNS name, else short ID)
	Port      string    `json:"port,omitempty"`      // NB port name
	IP        string    `json:"ip,omitempty"`
	// Verdicts only.
	Policy  string `json:"policy,omitempty"`  // policy name; "(default-deny)" for a network's isolation
	Verdict string `json:"verdict,omitempty"` // allowed, denied
	Src     string `json:"src,omitempty"`     // "name ip:port" of the sender
	Dst     string `json:"dst,omitempty"`
	Proto   string `json:"proto,omitempty"`
	// Text is the event in one line.
	Text string `json:"text"`
}

// String is the event's time and text.
func (e Event) String() string {
	return e.Time.Local().Format("15:04:05.000") + " " + e.Text
}

// Filter selects events: empty fields match all. Policy keeps verdicts of
// that policy only (and drops every other kind).
type Filter struct {
	Network string
	Policy  string
}

// Match reports whether e passes f.
func (f Filter) Match(e Event) bool {
	if f.Policy != "" && e.Policy != f.Policy {
		return false
	}
	if f.Network != "" && e.Network != f.Network {
		return false
	}
	return true
}

// aclInfo is what an ACL name means in ovlmgr's terms.
type aclInfo struct {
	policy, network string
}

type portInfo struct {
	name, network, node, container string
}

// Resolver maps OVN names and addresses back to ovlmgr's: ACL names to
// policies, addresses to containers. It reads NB (owned ACLs, ports, DNS
// rows) when asked about something it does not know, at most every
// refreshEvery.
type Resolver struct {
	nb     client.Client
	mu     sync.Mutex
	acls   map[string][]aclInfo
	ports  map[netip.Addr][]portInfo
	names  map[string]map[netip.Addr]string // network -> ip -> short name
	loaded time.Time
	err    error
}

const refreshEvery = 200 * time.Millisecond

// NewResolver returns a resolver reading nb.
func NewResolver(nb client.Client) *Resolver { return &Resolver{nb: nb} }

// Refresh reads the owned ACLs, container ports and DNS rows now.
func (r *Resolver) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refresh(ctx)
}

func (r *Resolver) refresh(ctx context.Context) error {
	r.loaded = time.Now()
	acls, err := dbops.SelectRows[nbdb.ACL](ctx, r.nb, []ovsdb.Condition{dbops.Includes(map[string]string{owner.KeyOwner: owner.Owner})},
		func(a *nbdb.ACL) []any { return []any{&a.Name, &a.ExternalIDs} })
	if err != nil {
		r.err = fmt.Errorf("read ACLs: %w", err)
		return r.err
	}
	ports, err := port.List(ctx, r.nb, port.Filter{})
	if err != nil {
		r.err = err
		return err
	}
	dnsRows, err := dbops.SelectRows[nbdb.DNS](ctx, r.nb, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindDNS))})
	if err != nil {
		r.err = fmt.Errorf("read DNS: %w", err)
		return r.err
	}
	r.acls = map[string][]aclInfo{}
	for _, a := range acls {
		if a.Name == nil {
			continue
		}
		ids := a.ExternalIDs
		switch ids[owner.KeyKind] {
		case owner.KindPolicy:
			r.acls[*a.Name] = append(r.acls[*a.Name], aclInfo{policy: ids[owner.KeyName], network: ids[owner.KeyNetwork]})
		case policy.KindIsolation:
			r.acls[*a.Name] = append(r.acls[*a.Name], aclInfo{policy: IsolationPolicy, network: ids[owner.KeyNetwork]})
		}
	}
	r.ports = map[netip.Addr][]portInfo{}
	for _, p := range ports {
		pi := portInfo{name: p.Name, network: p.Network, node: p.Node, container: p.Container}
		for _, ip := range []netip.Addr{p.IP, p.IPv6} {
			if ip.IsValid() {
				r.ports[ip] = append(r.ports[ip], pi)
			}
		}
	}
	r.names = map[string]map[netip.Addr]string{}
	for _, d := range dnsRows {
		// A network's records may be spread over several DNS rows (shards).
		net := d.ExternalIDs[owner.KeyNetwork]
		m := r.names[net]
		if m == nil {
			m = map[netip.Addr]string{}
			r.names[net] = m
		}
		for k, v := range d.Records {
			if !strings.HasSuffix(k, ".arpa") {
				continue
			}
			ip := ptrAddr(k)
			if ip.IsValid() {
				m[ip], _, _ = strings.Cut(strings.TrimSpace(v), ".")
			}
		}
	}
	r.err = nil
	return nil
}

// ptrAddr reads the IPv4 address of a "4.3.2.1.in-addr.arpa" name.
func ptrAddr(name string) netip.Addr {
	rev, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}
	}
	p := strings.Split(rev, ".")
	if len(p) != 4 {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// notePort records a container port Follow saw in its NB monitor, so
// verdicts name it without waiting for the next refresh; gone removes it.
func (r *Resolver) notePort(p portInfo, ip netip.Addr, gone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ports == nil {
		r.ports = map[netip.Addr][]portInfo{}
	}
	var keep []portInfo
	for _, q := range r.ports[ip] {
		if q.name != p.name {
			keep = append(keep, q)
		}
	}
	if !gone {
		keep = append(keep, p)
	}
	r.ports[ip] = keep
}

// maybeRefresh re-reads NB when it was read longer ago than refreshEvery.
func (r *Resolver) maybeRefresh(ctx context.Context) {
	if time.Since(r.loaded) >= refreshEvery {
		_ = r.refresh(ctx)
	}
}

// IsolationPolicy is the policy name given to verdicts of a default-deny
// network's own drop (no policy matched).
const IsolationPolicy = "(default-deny)"

// ACL returns the policy and network an ACL name stands for; policy is the
// ACL name itself and network "" when NB has no ACL of ours by that name.
func (r *Resolver) ACL(ctx context.Context, name string) (pol, network string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.acls[name]; !ok {
		r.maybeRefresh(ctx)
	}
	infos := r.acls[name]
	if len(infos) == 0 {
		return name, ""
	}
	// A policy named like a network's isolation ACL: the policy wins.
	for _, i := range infos {
		if i.policy != IsolationPolicy {
			return i.policy, i.network
		}
	}
	return infos[0].policy, infos[0].network
}

// Container returns the display name of the container holding ip, preferring
// one on network (the ACL's network for a destination) and nodes' own
// networks otherwise; "" when no container port has ip.
func (r *Resolver) Container(ctx context.Context, ip netip.Addr, network string) (name, net string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ports[ip]; !ok {
		r.maybeRefresh(ctx)
	}
	ps := r.ports[ip]
	if len(ps) == 0 {
		return "", ""
	}
	p := ps[0]
	for _, q := range ps {
		if q.network == network {
			p = q
		}
	}
	return r.displayName(p, ip), p.network
}

// Name is the display name of port p with address ip: its DNS name on its
// network, else the short container ID.
func (r *Resolver) Name(ctx context.Context, network, container string, ip netip.Addr) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.names[network][ip]; !ok && ip.IsValid() {
		r.maybeRefresh(ctx)
	}
	return r.displayName(portInfo{network: network, container: container}, ip)
}

func (r *Resolver) displayName(p portInfo, ip netip.Addr) string {
	if n := r.names[p.network][ip]; n != "" {
		return n
	}
	return dns.IDName(p.container)
}

// VerdictEvent turns an acl_log hit on node into an event in ovlmgr terms.
func (r *Resolver) VerdictEvent(ctx context.Context, h ACLHit, node string) Event {
	pol, network := r.ACL(ctx, h.ACL)
	verdict := "allowed"
	if h.Verdict != "allow" {
		verdict = "denied"
	}
	dstName, dstNet := r.Container(ctx, h.Dst, network)
	if network == "" {
		network = dstNet
	}
	srcName, _ := r.Container(ctx, h.Src, network)
	proto := h.Proto
	src := h.Src.String()
	if h.SrcPort != 0 {
		src += ":" + strconv.Itoa(h.SrcPort)
	}
	if srcName != "" {
		src = srcName + " " + src
	}
	dst := h.Dst.String()
	if dstName != "" {
		dst = dstName
	}
	if h.DstPort != 0 {
		dst += ":" + strconv.Itoa(h.DstPort)
	}
	by := "policy " + pol
	if pol == IsolationPolicy {
		by = "default-deny of network " + network
	}
	e := Event{Time: h.Time, Kind: Verdict, Network: network, Node: node, Policy: pol, Verdict: verdict,
		Src: src, Dst: dst, Proto: proto}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	dstText := dst
	if proto != "" {
		dstText += "/" + proto
	}
	e.Text = fmt.Sprintf("%s by %s: %s -> %s on node %s", verdict, by, src, dstText, node)
	return e
}
