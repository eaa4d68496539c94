package policy

import (
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
)

// TestBuildMatch: the ACL match a validated spec renders to (pure logic,
// no database).
func TestBuildMatch(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"any source, any proto", Spec{From: nil},
			"outport == @ovl_app && ip"},
		{"one network: both families", Spec{From: []string{"web"}},
			"outport == @ovl_app && ip && (ip4.src == $ovl_web_ip4 || ip6.src == $ovl_web_ip6)"},
		{"a CIDR goes to the policy's address set", Spec{From: []string{"198.18.5.0/24"}},
			"outport == @ovl_app && ip && ip4.src == $ovlpol_p1"},
		{"an IPv6 CIDR goes to the policy's IPv6 address set", Spec{From: []string{"fd00:198:18::/64"}},
			"outport == @ovl_app && ip && ip6.src == $ovlpol6_p1"},
		{"networks and CIDRs alternate", Spec{From: []string{"web", "198.18.5.7", "db", "fd00::5"}},
			"outport == @ovl_app && ip && (ip4.src == $ovl_web_ip4 || ip6.src == $ovl_web_ip6 || ip4.src == $ovl_db_ip4 || ip6.src == $ovl_db_ip6 || ip4.src == $ovlpol_p1 || ip6.src == $ovlpol6_p1)"},
		{"tcp port", Spec{Proto: "TCP", Port: "8080"},
			"outport == @ovl_app && ip && tcp && tcp.dst == 8080"},
		{"udp range", Spec{Proto: "udp", Port: "5000-5010"},
			"outport == @ovl_app && ip && udp && udp.dst >= 5000 && udp.dst <= 5010"},
		{"single-port range collapses", Spec{Proto: "tcp", Port: "53-53"},
			"outport == @ovl_app && ip && tcp && tcp.dst == 53"},
		{"icmp: both families", Spec{Proto: "icmp", From: []string{"any"}},
			"outport == @ovl_app && ip && (icmp4 || icmp6)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			s.Name, s.Network, s.Action, s.Priority = "p1", "app", Allow, DefaultPriority
			srcs, err := s.Validate()
			if err != nil {
				t.Fatalf("Validate(%+v): %v", c.spec, err)
			}
			if got := buildMatch(&s, srcs); got != c.want {
				t.Errorf("match = %q\n want %q", got, c.want)
			}
		})
	}
}

// TestIsolationACLs: default-deny renders a drop to the network's ports and
// a stateful allow from them; default-allow renders nothing.
func TestIsolationACLs(t *testing.T) {
	if acls := isolationACLs("app", DefaultAllow); len(acls) != 0 {
		t.Errorf("default-allow: %d ACLs, want none", len(acls))
	}
	acls := isolationACLs("app", DefaultDeny)
	if len(acls) != 2 {
		t.Fatalf("default-deny: %d ACLs, want 2", len(acls))
	}
	in, out := acls[0], acls[1]
	if in.Direction != nbdb.ACLDirectionToLport || in.Action != nbdb.ACLActionDrop || in.Match != "outport == @ovl_app && ip" {
		t.Errorf("to-lport ACL = %s %s %q", in.Direction, in.Action, in.Match)
	}
	if out.Direction != nbdb.ACLDirectionFromLport || out.Action != nbdb.ACLActionAllowRelated || out.Match != "inport == @ovl_app && ip" {
		t.Errorf("from-lport ACL = %s %s %q", out.Direction, out.Action, out.Match)
	}
	if in.Priority >= ACLPriority(MinPriority, Allow) {
		t.Errorf("isolation priority %d must be below every policy (lowest %d)", in.Priority, ACLPriority(MinPriority, Allow))
	}
}
