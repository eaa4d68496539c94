package events

import (
	"net/netip"
	"testing"
)

func TestParseACLLog(t *testing.T) {
	line := `2026-12-04T21:00:00.123Z|00042|acl_log(ovn_pinctrl0)|INFO|name="deny-db", verdict=drop, severity=warning, direction=to-lport: tcp,vlan_tci=0x0000,dl_src=0a:58:c6:13:00:02,dl_dst=0a:58:c6:13:01:03,nw_src=198.19.0.2,nw_dst=198.19.1.3,nw_tos=0,nw_ecn=0,nw_ttl=63,nw_frag=no,tp_src=41532,tp_dst=5432,tcp_flags=syn`
	h, ok := ParseACLLog(line)
	want := ACLHit{ACL: "deny-db", Verdict: "drop", Severity: "warning", Direction: "to-lport", Proto: "tcp",
		Src: netip.MustParseAddr("198.19.0.2"), Dst: netip.MustParseAddr("198.19.1.3"), SrcPort: 41532, DstPort: 5432}
	h.Time = want.Time
	if !ok || h != want {
		t.Errorf("ParseACLLog = %+v, %v; want %+v", h, ok, want)
	}
	icmp := `2026-12-04T21:00:00.123Z|00043|acl_log(ovn_pinctrl0)|INFO|name="app-default-deny", verdict=drop, severity=info, direction=to-lport: icmp,vlan_tci=0x0000,dl_src=0a:58:c6:13:00:02,dl_dst=0a:58:c6:13:01:03,nw_src=198.19.0.2,nw_dst=198.19.1.3,nw_tos=0,nw_ecn=0,nw_ttl=63,nw_frag=no,icmp_type=8,icmp_code=0`
	h, ok = ParseACLLog(icmp)
	if !ok || h.ACL != "app-default-deny" || h.Proto != "icmp" || h.DstPort != 0 || h.Time.IsZero() {
		t.Errorf("ParseACLLog(icmp) = %+v, %v", h, ok)
	}
	for _, bad := range []string{
		"",
		`2026-12-04T21:00:00.123Z|00001|vlog|INFO|opened log file`,
		`2026-12-04T21:00:00.123Z|00043|acl_log(ovn_pinctrl0)|INFO|garbage`,
	} {
		if _, ok := ParseACLLog(bad); ok {
			t.Errorf("ParseACLLog(%q) ok", bad)
		}
	}
}
