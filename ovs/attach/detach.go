package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// DetachRequest names a container interface to remove.
type DetachRequest struct {
	Network     string
	NB          string
	OVS         string
	Timeout     time.Duration
	ContainerID string
	IfName      string
	// NetNS may be empty or gone.
	NetNS string
	// PrevIPs are the addresses from prevResult, used when the NB port is
	// already gone to remove DNS records and service backends.
	PrevIPs []net.IP
	// Aliases and PodName, as at ADD, let DEL find the DNS records without
	// reading the network's whole DNS row (optional).
	Aliases []string
	PodName string
	// Session, when set, lends the database connections.
	Session *Session
}

// Detach removes the OVS port, the veth, DNS names and service backends,
// and the NB port, found from this node's system-id, the container ID and
// the ifname. Anything already gone is fine. The OVS port goes first, the
// veth beside the NB work (Detach returns once both are done); when the NB
// cannot be reached (or its delete fails) Detach still succeeds and only
// the NB port is left: `ovlmgr node gc` on this node (or the next
// ADD/DEL/GC here, for OVS leftovers) removes it later.
func Detach(ctx context.Context, req DetachRequest, log Logger) (err error) {
	if log == nil {
		log = nopLogger{}
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultReadyTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	// Without a session the NB connection starts now, from the node's
	// hint, beside the node's own work below.
	st := startFromHint(ctx, req.Session, req.NB, req.OVS)
	defer st.discard()
	nd, err := openNode(ctx, req.Session, req.NB, req.OVS, true)
	if err != nil {
		return err
	}
	defer nd.close()
	nm := namesFor(nd.systemID, req.ContainerID, req.IfName)
	// The OVS interface names the NB port it was plugged for (also a port
	// named before the node was part of port names).
	lsps := []string{nm.lsp}
	ifc, err := ovsport.Get(ctx, nd.ovs, nm.host)
	if err == nil && ifc != nil && ifc.Container == req.ContainerID && ifc.IfName == req.IfName && otherNetwork(ifc.Network, req.Network) {
		// The container's interface of this name is another network's
		// (an ADD to this network failed on the name, and the runtime
		// cleans up after it): not this DEL's to remove.
		log.Infof("interface %s of container %s is on network %q, not %q: DEL leaves it", req.IfName, req.ContainerID, ifc.Network, req.Network)
		return nil
	}
	if err == nil && ifc != nil && ifc.IfaceID != "" && ifc.IfaceID != nm.lsp &&
		ifc.Container == req.ContainerID && ifc.IfName == req.IfName {
		lsps = append(lsps, ifc.IfaceID)
	}
	if err := ovsport.Unplug(ctx, nd.ovs, nm.host); err != nil {
		return err
	}
	log.Debugf("unplugged after %s", time.Since(start).Round(time.Millisecond))
	// The veth goes beside the NB work below: its removal waits for the
	// kernel (an RCU grace period, 15-20 ms), not for a CPU, and nothing
	// in the NB waits for it. DEL returns once it is gone, with its error
	// before any other.
	vethGone := beside(func() (struct{}, error) {
		err := ovsport.DelVeth(req.NetNS, req.IfName, nm.host)
		if err == nil {
			log.Debugf("veth deleted after %s", time.Since(start).Round(time.Millisecond))
		}
		return struct{}{}, err
	})
	defer func() {
		if _, verr := vethGone(); verr != nil {
			err = verr
		}
	}()
	if nd.systemID == "" {
		// The node left OVN (`node leave --force` with containers still
		// on it): nothing in the NB is this node's any more to remove,
		// and a runtime must still be able to remove the container.
		log.Errorf("the node side of %s/%s is removed; this node has no external_ids:system-id (it left OVN), so the NB is left as it is: the container's NB port, if any, is removed by `ovlmgr node forget` of the old system-id",
			req.ContainerID, req.IfName)
		return nil
	}
	leave := func(why error) error {
		log.Errorf("the node side of %s/%s is removed; its NB port %s stays: %v; `ovlmgr node gc` on node %s removes it",
			req.ContainerID, req.IfName, nm.lsp, why, nd.systemID)
		return nil
	}
	if nd.nbEP == "" {
		return leave(errors.New("no NB endpoint (config key \"nb\" or the node's external_ids:ovlmgr.io/nb)"))
	}
	nctx, ncancel := context.WithTimeout(ctx, connectTimeout)
	defer ncancel()
	nb, err := st.connect(nctx, nd)
	if err != nil {
		return leave(err)
	}
	defer nb.Close()
	if nd.nbEarly {
		log.Debugf("NB connected after %s (beside the node's work, from %s)", time.Since(start).Round(time.Millisecond), NBHintFile)
	}
	// Beside the NB work below, as in ADD; waited for before nb closes.
	defer sweepBeside(ctx, nd, nb, req.OVS, log)()
	// The port of this node: by its name, else by the name the OVS
	// interface gave, else by the name from before node-qualified names,
	// each only if it is bound to this node.
	lsps = append(lsps, ovnport.LegacyName(req.ContainerID, req.IfName))
	var p *ovnport.Port
	for _, name := range lsps {
		got, err := ovnport.Get(ctx, nb, name)
		if err == nil && got.Node == nd.systemID && got.Container == req.ContainerID && got.IfName == req.IfName && !otherNetwork(got.Network, req.Network) {
			p = got
			break
		}
		if err != nil && !errors.Is(err, ovnport.ErrNotFound) && !errors.Is(err, ovnport.ErrNotOwned) {
			return leave(err)
		}
	}
	if p == nil {
		// A pool port claimed by an ADD that died before plugging it has
		// no OVS interface naming it: find it by its owner keys.
		if p, err = claimedPort(ctx, nb, nd.systemID, req.ContainerID, req.IfName); err != nil {
			return leave(err)
		}
		if p != nil && otherNetwork(p.Network, req.Network) {
			p = nil
		}
	}
	// The port's own addresses (both families) go with the port below
	// (chassis.RemoveNamedPort: its DNS names and the port in one
	// transaction); prevResult's, when the port is gone or has none, here.
	ips := req.PrevIPs
	network := req.Network
	if p == nil && len(ips) > 0 && network != "" {
		// prevResult's addresses, the port gone: an address another port
		// holds now is that port's, and so are its DNS names and service
		// backends: they stay.
		if ips, err = notHeld(ctx, nb, network, ips, log); err != nil {
			return leave(err)
		}
	}
	if len(ips) > 0 && network != "" && (p == nil || len(p.IPs()) == 0) {
		if err := service.ContainerDeletedHost(ctx, nb, service.Container{Network: network, ContainerID: req.ContainerID,
			Aliases: req.Aliases, PodName: req.PodName, IPs: ips}); err != nil {
			return leave(fmt.Errorf("remove DNS names and service backends: %w", err))
		}
		log.Debugf("DNS and services after %s", time.Since(start).Round(time.Millisecond))
	}
	if p == nil {
		return nil
	}
	if err := chassis.RemoveNamedPort(ctx, nb, p, req.Aliases, req.PodName); err != nil {
		return leave(err)
	}
	log.Debugf("deleted %s / %s with its DNS names after %s", p.Name, nm.host, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkNetNS refuses a netns path that is not a network namespace
// (ErrBadNetNS), before anything is written anywhere.
func checkNetNS(path string) error {
	if path == "" {
		return &NetNSError{}
	}
	h, err := ns.GetNS(path)
	if err != nil {
		return &NetNSError{Path: path, Err: err}
	}
	_ = h.Close()
	return nil
}

// notHeld returns the addresses of ips (from prevResult) that no port of
// network holds now.
func notHeld(ctx context.Context, nb client.Client, network string, ips []net.IP, log Logger) ([]net.IP, error) {
	addr := func(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip); return a.Unmap() }
	as := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		as = append(as, addr(ip))
	}
	held, err := ovnport.Holders(ctx, nb, network, as)
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, ip := range ips {
		if h := held[addr(ip)]; h != "" {
			log.Infof("address %s from prevResult is port %s's now: its DNS names and service backends stay", ip, h)
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

// otherNetwork reports whether an attachment on network have is not the
// DEL's of network want (either unknown: it is).
func otherNetwork(have, want string) bool {
	return have != "" && want != "" && have != want
}
