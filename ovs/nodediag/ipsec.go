package nodediag

import (
	"context"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/diagnose"
	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// ipsec checks, when the deployment encrypts its tunnels (NB_Global
// ipsec; needs Target.NB), that this node can and does: a kernel
// datapath, ovs-monitor-ipsec running, the chassis certificate in
// Open_vSwitch other_config, and ovn-controller's remote_name on every
// Geneve tunnel (what ovs-monitor-ipsec keys its IPsec connections on).
func (c *checker) ipsec(ctx context.Context) {
	if c.t.NB == "" {
		return
	}
	nb, err := dbconn.ConnectNB(ctx, c.t.NB)
	if err != nil {
		return // the ports check already warns about the NB
	}
	defer nb.Close()
	on, err := encrypt.Enabled(ctx, nb)
	if err != nil || !on {
		return
	}
	const name = "encryption"
	if c.datapath == "netdev" {
		c.add(diagnose.Failf(c.area, name, "use the kernel datapath (node join --datapath system) with openvswitch-ipsec and strongSwan, or turn encryption off (ovlmgr encrypt off)",
			"tunnels should be encrypted and are not: the userspace datapath (netdev) sends Geneve packets past the kernel's IPsec (xfrm)"))
		return
	}
	pidfile := filepath.Join(c.t.RunDir, "ovs-monitor-ipsec.pid")
	if _, ok := alive(pidfile); !ok {
		c.add(diagnose.Failf(c.area, name, "install openvswitch-ipsec and strongswan, start ovs-monitor-ipsec",
			"tunnels should be encrypted and are not: ovs-monitor-ipsec is not running (no live pid in %s)", pidfile))
		return
	}
	var missing []string
	for _, k := range []string{"certificate", "private_key", "ca_cert"} {
		if c.root.OtherConfig[k] == "" {
			missing = append(missing, "other_config:"+k)
		}
	}
	if len(missing) > 0 {
		c.add(diagnose.Failf(c.area, name, "set the chassis certificate (its CN the chassis name), key and CA in Open_vSwitch other_config",
			"tunnels should be encrypted and are not: Open_vSwitch lacks %s, so ovs-monitor-ipsec cannot authenticate", strings.Join(missing, ", ")))
		return
	}
	ifs, err := vsdb.Interfaces(ctx, c.oc, "geneve")
	if err != nil {
		c.add(diagnose.Warnf(c.area, name, "check OVS", "tunnels not checked: %v", err))
		return
	}
	var bare []string
	for _, i := range ifs {
		if i.Options["remote_name"] == "" {
			bare = append(bare, i.Name+" ("+i.Options["remote_ip"]+")")
		}
	}
	sort.Strings(bare)
	if len(bare) > 0 {
		c.add(diagnose.Failf(c.area, name, "check that ovn-controller runs and has seen NB_Global ipsec (ovlmgr diagnose --sync)",
			"tunnels should be encrypted and are not: %s lack options:remote_name, so ovs-monitor-ipsec sets up nothing for them", strings.Join(bare, ", ")))
		return
	}
	c.add(diagnose.Okf(c.area, name, "%d tunnel(s) set up for IPsec by ovs-monitor-ipsec", len(ifs)))
}
