package diagnose

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
)

// ipsecChecks: with encryption on (NB_Global ipsec), each chassis whose
// tunnels cannot be encrypted fails; with it off, nothing is said.
func ipsecChecks(ctx context.Context, nb, sb client.Client) []Check {
	on, err := encrypt.Enabled(ctx, nb)
	if err != nil || !on {
		return nil
	}
	fs, err := encrypt.Unencrypted(ctx, nb, sb)
	if err != nil {
		return []Check{Warnf(AreaChassis, "encryption", "check SB reachability", "tunnels not checked: %v", err)}
	}
	if len(fs) == 0 {
		return []Check{Okf(AreaChassis, "encryption", "on (NB_Global ipsec): no chassis is known unable to encrypt (each node still needs ovs-monitor-ipsec and its certificate)")}
	}
	var cs []Check
	for _, f := range fs {
		cs = append(cs, Failf(AreaChassis, "encryption "+f.Chassis,
			"use the kernel datapath (node join --datapath system) with openvswitch-ipsec and strongSwan on that node, or turn encryption off (ovlmgr encrypt off)",
			"tunnels of chassis %s should be encrypted and are not: %s", f.Chassis, f.Why))
	}
	return cs
}
