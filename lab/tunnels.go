package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovlmgr/ovlmgr/ovn/topology"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// NodeTunnels reads each node's Geneve tunnel interfaces from its
// Open_vSwitch database (remote IP and BFD state) and refines g's tunnels
// with them. A node whose database cannot be read is skipped and named in
// the returned error; the others are applied.
func (l *Lab) NodeTunnels(ctx context.Context, g *topology.Graph) error {
	var errs []error
	for _, n := range l.Nodes {
		oc, err := vsdb.Connect(ctx, n.OVS)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
			continue
		}
		ifs, err := vsdb.Interfaces(ctx, oc, "geneve")
		oc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
			continue
		}
		var obs []topology.NodeTunnel
		for _, i := range ifs {
			obs = append(obs, topology.NodeTunnel{RemoteIP: i.Options["remote_ip"], BFD: i.BFDStatus["state"]})
		}
		g.AddNodeTunnels(n.SystemID, obs)
	}
	return errors.Join(errs...)
}
