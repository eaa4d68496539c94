package attach

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/service"
)

// claimPooled is ADD's fast path: it claims one of this node's ready pool
// ports of the network (ovn/port's pool) for the container interface, and
// registers its DNS name, in one NB transaction; the caller then adds it
// to the services whose selectors match (addToServices). nil, nil, nil:
// no pool port could be had (none, all taken meanwhile); the caller takes
// the slow path. Nothing here waits for ovn-northd.
// pre, when set, is the network as dns.Ensure read it just before (read
// beside ADD's other reads); nil reads it here.
// The claim also fails, with errNBLeftover, while an NB port named
// absent exists (the container interface's own port name: a leftover of
// an ADD killed on the slow path; "" checks nothing).
func claimPooled(ctx context.Context, nb client.Client, nd *node, req AttachRequest, pre *dns.Network, absent string, log Logger) (*ovnport.Port, *dns.Registration, error) {
	return claimFrom(ctx, nb, nd, req, pre, absent, log, false)
}

// errNBLeftover: a claim found the container interface's own NB port
// name taken (see claimPooled).
var errNBLeftover = errors.New("an NB port of this container interface's name exists")

// claimAnyPooled is the last resort of an ADD that found the subnet full:
// a ready pool port of any node (ovnport.ClaimOps moves it to this node).
// It selects the network's pool ports on external_ids: only on this path.
func claimAnyPooled(ctx context.Context, nb client.Client, nd *node, req AttachRequest, log Logger) (*ovnport.Port, *dns.Registration, error) {
	return claimFrom(ctx, nb, nd, req, nil, "", log, true)
}

func claimFrom(ctx context.Context, nb client.Client, nd *node, req AttachRequest, n *dns.Network, absent string, log Logger, anyNode bool) (*ovnport.Port, *dns.Registration, error) {
	if !pooled(req) {
		return nil, nil, nil // a requested address is never a pool port's
	}
	if n == nil {
		var err error
		if n, err = dns.Ensure(ctx, nb, req.Network); err != nil {
			return nil, nil, fmt.Errorf("DNS names: %w", err)
		}
	}
	hints := ovnport.PoolHints(n.Switch.ExternalIDs, req.Network, nd.systemID)
	if anyNode {
		all, err := ovnport.ListPool(ctx, nb, req.Network, "")
		if err != nil {
			return nil, nil, err
		}
		hints = hints[:0]
		for _, pp := range all {
			if pp.State == ovnport.PoolReady && pp.Usable() {
				hints = append(hints, pp)
			}
		}
	}
	if len(hints) == 0 {
		return nil, nil, nil
	}
	spec := ovnport.Spec{Network: req.Network, Node: nd.systemID, Container: req.ContainerID, IfName: req.IfName, Labels: req.Labels}
	name := dns.HostName(req.Aliases, req.PodName, req.ContainerID)
	if name == "" {
		name = dns.IDName(req.ContainerID)
	}
	names := n.ContainerNames()
	if err := dns.ValidateName(name); names && err != nil {
		return nil, nil, fmt.Errorf("register DNS name on network %q: %w", req.Network, err)
	}
	reg := &dns.Registration{Domain: n.Domain, Search: n.Search(), Nameservers: []string{}}
	// Both gateways answer DNS, as dns.Register gives them.
	for _, k := range []string{owner.KeyGateway, dns.KeyGateway6} {
		if gw := n.Switch.ExternalIDs[k]; gw != "" {
			reg.Nameservers = append(reg.Nameservers, gw)
		}
	}
	fqdn := dns.FQDN(name, n.Name, n.Domain)
	wanted := fqdn
	var noLeftover ovsdb.Operation // the guard that no port is named absent
	if absent != "" {
		lsp := &nbdb.LogicalSwitchPort{Name: absent}
		var err error
		if noLeftover, err = dbconn.Absent(nb, lsp, &lsp.Name); err != nil {
			return nil, nil, err
		}
	}
	for _, pp := range hints {
		p := ovnport.Claimed(spec, pp)
		ips := p.IPs()
		for try := 0; try < 2; try++ {
			var extra []ovsdb.Operation
			guard := -1 // no name: no guard
			if names {
				extra, guard = dns.AddOps(n, fqdn, ips)
				guard += len(ovnport.ClaimOps(spec, pp))
			}
			leftGuard := -1
			if absent != "" {
				leftGuard = len(ovnport.ClaimOps(spec, pp)) + len(extra)
				extra = append(extra, noLeftover)
			}
			// A reply lost in a leader change is resolved inside Claim.
			err := ovnport.Claim(ctx, nb, spec, pp, extra...)
			switch {
			case dbconn.FailedWait(err, leftGuard):
				return nil, nil, errNBLeftover
			case err == nil:
				if names {
					reg.FQDN = fqdn
					if fqdn != wanted {
						reg.Clash = wanted
					}
				}
				log.Debugf("claimed pool port %s (%s %s)", p.Name, p.MAC, p.IP)
				return p, reg, nil
			case dbconn.FailedWait(err, ovnport.ClaimGuard):
				log.Debugf("pool port %s: %v", pp.Name, ovnport.ErrPoolTaken)
			case isPermission(err):
				// The control service refuses a claim of a port that is
				// no longer a ready pool port (taken meanwhile: by another
				// node's takeover when its subnet was full, or, for
				// another node's port, by anyone) before the claim's own
				// guard runs: taken, as the guard would say.
				log.Debugf("pool port %s of node %s: %v", pp.Name, pp.Node, err)
			case dbconn.FailedWait(err, guard):
				// The name is another address's: the container-ID name
				// instead, as dns.Register does.
				alt := dns.FQDN(dns.IDName(req.ContainerID), n.Name, n.Domain)
				if try > 0 || alt == fqdn {
					return nil, nil, fmt.Errorf("register DNS name %q: %w", fqdn, dns.ErrNameTaken)
				}
				fqdn = alt
				continue
			default:
				return nil, nil, fmt.Errorf("claim pool port %s: %w", pp.Name, err)
			}
			break
		}
	}
	return nil, nil, nil
}

// pooled reports whether req can take a pool port: no requested address
// or MAC.
func pooled(req AttachRequest) bool {
	return !req.IP.IsValid() && !req.IP6.IsValid() && req.MAC == nil
}

// addToServices makes the claimed port a backend of the network's services
// whose selectors match its labels (service.SyncPort: reads only when none
// does).
func addToServices(ctx context.Context, nb client.Client, p *ovnport.Port, req AttachRequest) error {
	for _, ip := range p.IPs() {
		if err := service.SyncPort(ctx, nb, service.Port{Network: p.Network, Name: p.Name, IP: ip, Labels: req.Labels}, true); err != nil {
			return fmt.Errorf("add container %s to services: %w", dns.IDName(req.ContainerID), err)
		}
	}
	return nil
}

// RefillRequest names the pool to refill: this node's pool of Network.
type RefillRequest struct {
	Network string
	NB      string
	OVS     string
	// Timeout bounds the whole refill (default DefaultReadyTimeout).
	Timeout time.Duration
	// Session, when set, lends the database connections.
	Session *Session
}

// Refill brings this node's pool of the network to its size (ovn/port
// FillPool; the size from the node's or the network's ovlmgr.io/pool-size,
// default ovnport.DefaultPoolSize): what runs in the background after a CNI
// ADD or DEL, and `ovlmgr node pool`.
func Refill(ctx context.Context, req RefillRequest) (ovnport.FillResult, error) {
	if req.Timeout <= 0 {
		req.Timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	nd, nb, err := openNodeNB(ctx, req.Session, req.NB, req.OVS)
	if err != nil {
		return ovnport.FillResult{}, err
	}
	defer nd.close()
	defer nb.Close()
	n, err := dns.Get(ctx, nb, req.Network)
	if err != nil {
		return ovnport.FillResult{}, err
	}
	ni, err := getNetwork(ctx, nb, req.Network)
	if err != nil {
		return ovnport.FillResult{}, err
	}
	size := ovnport.PoolSize(nd.ids, n.Switch.ExternalIDs)
	noGrow := false
	if ni.subnet.IsValid() {
		// Pools stop growing while a quarter of the subnet or less is free
		// outside them: a nearly full subnet is left to the containers.
		// An IPv6-only network's /64 (EUI-64 of northd's MACs) does not
		// run out that way.
		full, err := network.Get(ctx, nb, req.Network)
		if err != nil {
			return ovnport.FillResult{}, err
		}
		noGrow = full.Free-full.Pooled <= (full.Free+full.Ports)/4
	}
	res, err := ovnport.FillPool(ctx, nb, ovnport.PoolSpec{Network: ni.name, Subnet: ni.subnet, Gateway: ni.gateway, Node: nd.systemID,
		NoGrow: noGrow}, size)
	if errors.Is(err, ovnport.ErrNoAddress) {
		// A full subnet leaves the pool short; ADDs take the slow path.
		return res, nil
	}
	return res, err
}

// dropClaimedLeftover removes the NB side of an earlier ADD of this
// container interface on this node that claimed a pool port and died
// before plugging it (no DEL came): the port, found by its owner keys
// (not except, this ADD's own), with its DNS records, service backends and
// published ports. It reports whether there was one. Called only when
// ADD's DNS name is taken, so the select on external_ids stays off the
// usual path.
func dropClaimedLeftover(ctx context.Context, nb client.Client, nd *node, req AttachRequest, except string, log Logger) (bool, error) {
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Node: nd.systemID, Container: req.ContainerID})
	if err != nil {
		return false, fmt.Errorf("look for leftovers of an interrupted ADD: %w", err)
	}
	dropped := false
	for _, p := range ps {
		if p.Name == except || p.IfName != req.IfName || p.Node != nd.systemID || p.Container != req.ContainerID {
			continue
		}
		log.Infof("removing leftovers of an interrupted ADD (%s, %s)", p.Name, p.IP)
		if err := chassis.RemoveNamedPort(ctx, nb, p, req.Aliases, req.PodName); err != nil {
			return false, fmt.Errorf("remove leftover port: %w", err)
		}
		dropped = true
	}
	return dropped, nil
}

// claimedPort finds the container interface's port by its owner keys (a
// select on external_ids, for DEL when no name found it), or nil.
func claimedPort(ctx context.Context, nb client.Client, node, containerID, ifName string) (*ovnport.Port, error) {
	ps, err := ovnport.List(ctx, nb, ovnport.Filter{Node: node, Container: containerID})
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.IfName == ifName && p.Node == node && p.Container == containerID {
			return p, nil
		}
	}
	return nil, nil
}

func isPermission(err error) bool {
	_, denied := dbconn.IsPermission(err)
	return denied
}
