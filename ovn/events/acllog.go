package events

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ACLHit is one acl_log line of ovn-controller: an ACL with logging on
// matched a packet on the node whose log it is.
type ACLHit struct {
	Time time.Time
	// ACL is the ACL's name as logged (ovlmgr: the policy name, or
	// "<network>-default-deny" for a default-deny network's drop).
	ACL       string
	Verdict   string // allow, drop, reject
	Severity  string
	Direction string // to-lport, from-lport
	Proto     string // tcp, udp, icmp, ... ("ip" when none of these)
	Src, Dst  netip.Addr
	// SrcPort and DstPort are the transport ports (0 for ICMP and others).
	SrcPort, DstPort int
}

// ParseACLLog reads one line of ovn-controller's log; ok is false for any
// line that is not an acl_log line. The format (OVN 22.03 to 24.x):
//
//	2026-12-04T21:00:00.123Z|00042|acl_log(ovn_pinctrl0)|INFO|name="deny-db", verdict=drop, severity=info, direction=to-lport: tcp,vlan_tci=0x0000,dl_src=...,nw_src=198.19.0.2,nw_dst=198.19.1.3,...,tp_src=41532,tp_dst=5432,tcp_flags=syn
func ParseACLLog(line string) (h ACLHit, ok bool) {
	i := strings.Index(line, "|acl_log(")
	if i < 0 {
		return h, false
	}
	if t, err := time.Parse("2006-01-02T15:04:05.000Z", line[:strings.IndexByte(line, '|')]); err == nil {
		h.Time = t
	}
	rest := line[i:]
	// Skip "|acl_log(...)|LEVEL|".
	for n := 0; n < 3; n++ {
		j := strings.IndexByte(rest[1:], '|')
		if j < 0 && n < 2 {
			return h, false
		}
		if n == 2 {
			break
		}
		rest = rest[j+1:]
	}
	rest = strings.TrimPrefix(rest, "|")
	head, flow, found := strings.Cut(rest, ": ")
	if !found {
		return h, false
	}
	for _, kv := range splitFields(head) {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "name":
			h.ACL = v
		case "verdict":
			h.Verdict = v
		case "severity":
			h.Severity = v
		case "direction":
			h.Direction = v
		}
	}
	if h.Verdict == "" {
		return h, false
	}
	fields := strings.Split(strings.TrimSpace(flow), ",")
	if len(fields) > 0 && !strings.Contains(fields[0], "=") {
		h.Proto = fields[0]
		fields = fields[1:]
	}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "nw_src", "ipv6_src":
			h.Src, _ = netip.ParseAddr(v)
		case "nw_dst", "ipv6_dst":
			h.Dst, _ = netip.ParseAddr(v)
		case "tp_src":
			h.SrcPort, _ = strconv.Atoi(v)
		case "tp_dst":
			h.DstPort, _ = strconv.Atoi(v)
		}
	}
	switch h.Proto {
	case "icmp6":
		h.Proto = "icmp6"
	case "tcp6":
		h.Proto = "tcp"
	case "udp6":
		h.Proto = "udp"
	}
	return h, true
}

// splitFields splits `name="a, b", verdict=drop` at commas outside quotes.
func splitFields(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
