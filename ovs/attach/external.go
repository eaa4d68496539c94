package attach

import (
	"context"
	"fmt"
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

// checkPublished is CHECK's look at the published ports: each mapping the
// runtime sends is published for port p, to p's address and the mapped
// container port.
func checkPublished(ctx context.Context, nb client.Client, p *ovnport.Port, mappings []publish.Mapping) error {
	if len(mappings) == 0 {
		return nil
	}
	got, err := publish.List(ctx, nb, publish.Filter{Port: p.Name})
	if err != nil {
		return err
	}
	have := map[string]publish.Published{}
	for _, x := range got {
		have[fmt.Sprintf("%d/%s", x.HostPort, x.Protocol)] = x
	}
	for _, m := range mappings {
		x, ok := have[fmt.Sprintf("%d/%s", m.HostPort, m.Proto())]
		switch {
		case !ok:
			return fmt.Errorf("published port %s of NB port %s is missing", m, p.Name)
		case x.ContainerPort != m.ContainerPort || x.Backend != p.IP:
			return fmt.Errorf("published port %s of NB port %s goes to %s:%d", m, p.Name, x.Backend, x.ContainerPort)
		}
	}
	return nil
}
