package attach

import (
	"context"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
)

// publishPorts publishes req.PortMappings for the new port p (ovn/publish:
// on the external address of the network's router gateway) and returns
// the undo that removes them again.
func publishPorts(ctx context.Context, nb client.Client, req AttachRequest, p *ovnport.Port, log Logger) ([]publish.Published, func(), error) {
	if len(req.PortMappings) == 0 {
		return nil, func() {}, nil
	}
	network := p.Network
	if network == "" {
		network = req.Network
	}
	pub, err := publish.Publish(ctx, nb, publish.Spec{Network: network, Port: p.Name, Container: req.ContainerID, IfName: req.IfName,
		Node: p.Node, IP: p.IP, Mappings: req.PortMappings})
	if err != nil {
		return nil, nil, err
	}
	for _, x := range pub {
		log.Infof("published %s", x)
	}
	return pub, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := publish.ReleasePort(cctx, nb, p.Name); err != nil {
			log.Errorf("undo: %v", err)
		}
	}, nil
}
