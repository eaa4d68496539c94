package chassis

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// ErrConnected is a node Forget refuses: its ovn-controller is connected
// (Chassis.Connected), so its containers may be running.
var ErrConnected = errors.New("node is connected")

// Forgotten is what Forget removed (or, with DryRun, would remove).
type Forgotten struct {
	Node      string          `json:"node"`
	Ports     []*ovnport.Port `json:"ports"`
	PoolPorts int             `json:"poolPorts"`
	// Chassis: its SB Chassis and Chassis_Private rows were there.
	Chassis bool `json:"chassis"`
}

// ForgetOptions configure Forget.
type ForgetOptions struct {
	// Force forgets a node that still shows as connected.
	Force  bool
	DryRun bool
}

// Forget removes a node that is gone for good (a machine lost with its
// containers, one that left with `node leave --force`) from OVN: every
// container port bound to it with its DNS names, service backends,
// published ports and floating IPs, its unclaimed pool ports with their
// hints, and its SB Chassis and Chassis_Private rows (OVN stops its
// tunnels to it). A node still connected is refused (ErrConnected) unless
// o.Force. Repeatable: a node already forgotten has nothing left.
func Forget(ctx context.Context, nb, sb client.Client, node string, o ForgetOptions) (*Forgotten, error) {
	if node == "" {
		return nil, errors.New("forget node: name: empty")
	}
	chs, err := List(ctx, sb)
	if err != nil {
		return nil, fmt.Errorf("forget node %s: %w", node, err)
	}
	out := &Forgotten{Node: node, Ports: []*ovnport.Port{}}
	for _, c := range chs {
		if c.Name != node {
			continue
		}
		out.Chassis = true
		if c.Connected && !o.Force {
			return nil, fmt.Errorf("forget node %s: %w: its ovn-controller has caught up with the SB; stop it first (a node that stopped without exit shows connected until the next change waits for the chassis)", node, ErrConnected)
		}
	}
	ports, err := ovnport.List(ctx, nb, ovnport.Filter{Node: node})
	if err != nil {
		return nil, fmt.Errorf("forget node %s: %w", node, err)
	}
	if o.DryRun {
		pool, err := ovnport.ListPool(ctx, nb, "", node)
		if err != nil {
			return nil, fmt.Errorf("forget node %s: %w", node, err)
		}
		out.Ports, out.PoolPorts = append(out.Ports, ports...), len(pool)
		return out, nil
	}
	var errs []error
	for _, p := range ports {
		if err := RemovePort(ctx, nb, p); err != nil {
			errs = append(errs, err)
			continue
		}
		out.Ports = append(out.Ports, p)
	}
	removed, err := ovnport.DeletePool(ctx, nb, "", node)
	out.PoolPorts = len(removed)
	errs = append(errs, err)
	if out.Chassis {
		if err := deleteChassis(ctx, sb, node); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("forget node %s: %w", node, err)
	}
	return out, nil
}

// RemovePort removes container port p from the NB with what makes it
// reachable: the DNS names and service backends of its addresses, its
// published ports and floating IPs, and the port. The port knows its
// container ID, not the aliases its ADD had: a container named by its ID
// loses its names without a read of the network's DNS rows, one with
// aliases through the records of its addresses (dns.UnregisterHostOps).
func RemovePort(ctx context.Context, nb client.Client, p *ovnport.Port) error {
	return RemoveNamedPort(ctx, nb, p, nil, "")
}

// RemoveNamedPort is RemovePort for a caller that knows the container's
// aliases and pod name as its ADD had them (CNI DEL). Service backends and
// published ports go first (they write only where there are any); the
// DNS names and the port go in one transaction: a removal that fails
// half-way never leaves a port without its names or names without their
// port, and DEL writes the NB once for both.
func RemoveNamedPort(ctx context.Context, nb client.Client, p *ovnport.Port, aliases []string, podName string) error {
	ips := p.IPs()
	c := service.Container{Network: p.Network, ContainerID: p.Container, Aliases: aliases, PodName: podName, IPs: ips}
	names := len(ips) > 0 && p.Network != ""
	if names {
		if err := service.RemoveBackends(ctx, nb, c); err != nil {
			return fmt.Errorf("port %s: remove service backends: %w", p.Name, err)
		}
	}
	if err := publish.Release(ctx, nb, p.Name); err != nil {
		return fmt.Errorf("port %s: remove published ports and floating IPs: %w", p.Name, err)
	}
	// Read and written again after a reply lost in a leader change: both
	// parts are exact deletes, so a second run finds nothing left to do.
	return dbconn.Retry(ctx, func(bool) error {
		var ops []ovsdb.Operation
		if names {
			dnsOps, err := service.NamesRemovedOps(ctx, nb, c)
			if err != nil {
				return fmt.Errorf("port %s: remove DNS names: %w", p.Name, err)
			}
			ops = dnsOps
		}
		del, err := ovnport.DeleteOps(ctx, nb, p.Name)
		if err != nil {
			return err
		}
		if ops = append(ops, del...); len(ops) == 0 {
			return nil
		}
		if _, err := dbconn.Transact(ctx, nb, ops...); err != nil {
			return fmt.Errorf("delete port %s with its DNS names: %w", p.Name, err)
		}
		return nil
	})
}

// deleteChassis deletes the node's SB Chassis row (its Encap rows go with
// it) and its Chassis_Private row.
func deleteChassis(ctx context.Context, sb client.Client, node string) error {
	where := []ovsdb.Condition{dbops.NameIs(node)}
	if _, err := dbconn.Transact(ctx, sb,
		ovsdb.Operation{Op: ovsdb.OperationDelete, Table: sbdb.ChassisTable, Where: where},
		ovsdb.Operation{Op: ovsdb.OperationDelete, Table: sbdb.ChassisPrivateTable, Where: where}); err != nil {
		return fmt.Errorf("delete SB chassis %s: %w", node, err)
	}
	return nil
}
