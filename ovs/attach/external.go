package attach

import (
	"context"
	"fmt"
	"net/netip"
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
		Node: p.Node, IP: p.IP, IP6: p.IPv6, Mappings: req.PortMappings})
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
// runtime sends is published for port p (on one family at least), every
// published entry of it to p's address of that family and the mapped
// container port.
func checkPublished(ctx context.Context, nb client.Client, p *ovnport.Port, mappings []publish.Mapping) error {
	if len(mappings) == 0 {
		return nil
	}
	got, err := publish.List(ctx, nb, publish.Filter{Port: p.Name})
	if err != nil {
		return err
	}
	have := map[string][]publish.Published{}
	for _, x := range got {
		k := fmt.Sprintf("%d/%s", x.HostPort, x.Protocol)
		have[k] = append(have[k], x)
	}
	for _, m := range mappings {
		xs := have[fmt.Sprintf("%d/%s", m.HostPort, m.Proto())]
		if len(xs) == 0 {
			return fmt.Errorf("published port %s of NB port %s is missing", m, p.Name)
		}
		for _, x := range xs {
			want := p.IP
			if x.Backend.Is6() {
				want = p.IPv6
			}
			if x.ContainerPort != m.ContainerPort || x.Backend != want {
				return fmt.Errorf("published port %s of NB port %s goes to %s", m, p.Name, netip.AddrPortFrom(x.Backend, uint16(x.ContainerPort)))
			}
		}
	}
	return nil
}
