package service

import (
	"context"
	"fmt"
	"net"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
)

// Container is what the CNI plugin knows of a container interface at ADD/DEL.
type Container struct {
	Network     string
	Port        string // its Logical_Switch_Port name
	ContainerID string
	// Aliases (the CNI `aliases` capability) and PodName (K8S_POD_NAME in
	// CNI_ARGS) choose the DNS name; see dns.HostName.
	Aliases []string
	PodName string
	IPs     []net.IP
	Labels  map[string]string
}

// ContainerAdded is the service-discovery part of CNI ADD, called once the
// port's addresses are final: it registers the container's DNS names (A/AAAA
// and PTR) and makes it a backend of every service of its network whose
// selector its labels match. The Registration gives the CNI result's `dns`
// (Nameservers, Search) and reports a name clash. On error nothing of this
// stays behind.
func ContainerAdded(ctx context.Context, nb client.Client, c Container) (*dns.Registration, error) {
	reg, err := dns.Register(ctx, nb, dns.Host{Network: c.Network, Name: dns.HostName(c.Aliases, c.PodName, c.ContainerID),
		ContainerID: c.ContainerID, IPs: c.IPs})
	if err != nil {
		return nil, err
	}
	for _, ip := range c.IPs {
		if err := SyncPort(ctx, nb, Port{Network: c.Network, Name: c.Port, IP: ip, Labels: c.Labels}, true); err != nil {
			_ = ContainerDeletedHost(ctx, nb, c)
			return nil, fmt.Errorf("add container %s to services: %w", dns.IDName(c.ContainerID), err)
		}
	}
	return reg, nil
}

// ContainerDeleted removes the DNS records of addresses ips and takes them
// out of every service of the network, for a caller that knows nothing of
// the container's naming: it reads the DNS rows holding the addresses'
// records. CNI DEL, ADD's undo and GC know more and use
// ContainerDeletedHost. Repeatable; a missing network is not an error.
func ContainerDeleted(ctx context.Context, nb client.Client, network string, ips []net.IP) error {
	if err := dns.Unregister(ctx, nb, network, ips); err != nil {
		return err
	}
	for _, ip := range ips {
		if err := SyncPort(ctx, nb, Port{Network: network, IP: ip}, false); err != nil {
			return err
		}
	}
	return nil
}

// ContainerDeletedHost is ContainerDeleted for a DEL that knows the
// container's naming inputs (c.Aliases, c.PodName, c.ContainerID as at ADD):
// its records are found without reading the network's whole DNS row (see
// dns.UnregisterHost), so DEL costs the same in a network of 10 or 10,000
// containers. c.Port and c.Labels are not needed.
func ContainerDeletedHost(ctx context.Context, nb client.Client, c Container) error {
	if err := dns.UnregisterHost(ctx, nb, containerHost(c)); err != nil {
		return err
	}
	return RemoveBackends(ctx, nb, c)
}

// NamesRemovedOps reads the DNS records ContainerDeletedHost removes and
// returns the operations that remove them, for a caller that deletes the
// container's port in the same transaction (dns.UnregisterHostOps).
func NamesRemovedOps(ctx context.Context, nb client.Client, c Container) ([]ovsdb.Operation, error) {
	return dns.UnregisterHostOps(ctx, nb, containerHost(c))
}

// RemoveBackends takes c's addresses out of every service of its network
// (selected or static); it writes only where a service has one of them.
func RemoveBackends(ctx context.Context, nb client.Client, c Container) error {
	for _, ip := range c.IPs {
		if err := SyncPort(ctx, nb, Port{Network: c.Network, IP: ip}, false); err != nil {
			return err
		}
	}
	return nil
}

// containerHost is the DNS identity of c (its naming inputs as at ADD).
func containerHost(c Container) dns.Host {
	return dns.Host{Network: c.Network, Name: dns.HostName(c.Aliases, c.PodName, c.ContainerID), ContainerID: c.ContainerID, IPs: c.IPs}
}
