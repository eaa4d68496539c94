package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// CheckRequest is an attachment to verify: what Attach returned (as a CNI
// runtime keeps it in prevResult).
type CheckRequest struct {
	Network     string
	NB          string
	OVS         string
	Timeout     time.Duration
	ContainerID string
	IfName      string
	NetNS       string
	// Address (IPv4), Address6 (optional), MAC and MTU of the container side.
	Address  netip.Prefix
	Address6 netip.Prefix
	MAC      string
	MTU      int
	// PortMappings, as at ADD, must be published (ovn/publish).
	PortMappings []publish.Mapping
}

// Check verifies that the NB port, the veth, the br-int port and
// ovn-installed are as Attach made them and that ovn-controller runs. A
// difference is ErrCheckFailed.
func Check(ctx context.Context, req CheckRequest) error {
	if req.Timeout <= 0 {
		req.Timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	nd, nb, err := openNodeNB(ctx, nil, req.NB, req.OVS)
	if err != nil {
		return err
	}
	defer nd.close()
	defer nb.Close()
	ni, err := getNetwork(ctx, nb, req.Network)
	if err != nil {
		return err
	}
	nm := namesFor(nd.systemID, req.ContainerID, req.IfName)
	failed := func(msg string, cause error) error { return newErr(ErrCheckFailed, msg, cause) }
	addr, addr6 := req.Address, req.Address6
	ifc, err := ovsport.Get(ctx, nd.ovs, nm.host)
	if err != nil {
		return newErr(ErrUnavailable, err.Error(), err)
	}
	// A port claimed from the pool has the pool port's name: the OVS
	// interface of this container interface names it.
	lsp := nm.lsp
	if ifc != nil && ifc.IfaceID != "" && ifc.Container == req.ContainerID && ifc.IfName == req.IfName {
		lsp = ifc.IfaceID
	}
	p, err := ovnport.Get(ctx, nb, lsp)
	if err == nil && (p.Container != req.ContainerID || p.IfName != req.IfName) {
		err = fmt.Errorf("port %s belongs to container %s/%s", p.Name, p.Container, p.IfName)
	}
	if err != nil {
		return failed(fmt.Sprintf("NB port: %v", err), err)
	}
	if p.IP != addr.Addr() || !strings.EqualFold(p.MAC, req.MAC) {
		return failed(fmt.Sprintf("NB port %s has %s %s; prevResult says %s %s", p.Name, p.MAC, p.IP, req.MAC, addr.Addr()), nil)
	}
	if p.IPv6 != addr6.Addr() {
		return failed(fmt.Sprintf("NB port %s has IPv6 %s; prevResult says %s", p.Name, p.IPv6, addr6.Addr()), nil)
	}
	if p.Node != nd.systemID {
		return failed(fmt.Sprintf("NB port %s is for node %s, this is %s", p.Name, p.Node, nd.systemID), nil)
	}
	if err := checkPublished(ctx, nb, p, req.PortMappings); err != nil {
		return failed(err.Error(), err)
	}
	hw, _ := net.ParseMAC(req.MAC)
	if err := ovsport.CheckVeth(ovsport.VethSpec{NetNS: req.NetNS, IfName: req.IfName, HostName: nm.host,
		MAC: hw, MTU: req.MTU, Addr: addr, Addr6: addr6, Gateway: ni.gateway, Gateway6: ni.gateway6}); err != nil {
		return failed(err.Error(), err)
	}
	ver := p.IfaceIDVer // the container ID, or a pool port's token
	if ver == "" {
		ver = req.ContainerID
	}
	switch {
	case ifc == nil:
		return failed(fmt.Sprintf("OVS interface %s missing from br-int", nm.host), nil)
	case ifc.IfaceID != p.Name || ifc.IfaceIDVer != ver:
		return failed(fmt.Sprintf("OVS interface %s has iface-id %s ver %s, want %s ver %s", nm.host, ifc.IfaceID, ifc.IfaceIDVer, p.Name, ver), nil)
	case !ifc.Installed:
		return failed(fmt.Sprintf("OVS interface %s: not ovn-installed", nm.host), nil)
	}
	if _, ok := controllerPID(); !ok {
		return failed("ovn-controller is not running on this node", nil)
	}
	return nil
}

// StatusRequest names the network whose readiness Status reports.
type StatusRequest struct {
	Network string
	NB      string
	OVS     string
}

// Status says whether an Attach to the network would work now: nil, or why
// not (ErrNoNB and network.ErrNotFound are configuration problems; the
// rest is the node or OVN not being ready).
func Status(ctx context.Context, req StatusRequest) error {
	ctx, cancel := context.WithTimeout(ctx, 2*connectTimeout)
	defer cancel()
	nd, err := openNode(ctx, nil, req.NB, req.OVS, false)
	if err != nil {
		return err
	}
	defer nd.close()
	if _, ok := controllerPID(); !ok {
		return newErr(ErrUnavailable, "ovn-controller is not running on this node (no live pid in "+pidfilePath()+")", nil)
	}
	br, err := vsdb.Bridge(ctx, nd.ovs, ovsport.DefaultBridge)
	if err != nil || br == nil {
		return newErr(ErrUnavailable, "bridge br-int missing in the local Open_vSwitch db", err)
	}
	nb, err := connectNB(ctx, nd)
	if err != nil {
		return err
	}
	defer nb.Close()
	n, err := network.Get(ctx, nb, req.Network)
	if err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return err
		}
		return newErr(ErrUnavailable, err.Error(), err)
	}
	if n.Free <= 0 {
		return newErr(ovnport.ErrNoAddress, fmt.Sprintf("no free address in %s (%s)", n.Name, n.Subnet), nil)
	}
	return nil
}

// Ref names a container interface: container ID and ifname.
type Ref struct {
	ContainerID string
	IfName      string
}

// GCRequest names the network whose stale attachments on this node GC
// removes: all but Valid.
type GCRequest struct {
	Network string
	NB      string
	OVS     string
	Timeout time.Duration
	Valid   []Ref
	// Config is the CNI network configuration whose attachments Valid
	// lists: containers added with another configuration (another
	// runtime's, on the same network) are not this GC's.
	Config string
}

// GC removes this node's ports of the network (NB port, DNS names and
// service backends, br-int port, veth) whose container interface is not
// in Valid, and this node's OVS ports whose NB port is gone. A container
// whose OVS interface names another CNI configuration than req.Config is
// left alone, and so is an NB port without OVS interface here made or
// claimed less than nodegc.DefaultGrace ago (an ADD may be under way).
// What it could not remove is a *GCError.
func GC(ctx context.Context, req GCRequest, log Logger) error {
	if log == nil {
		log = nopLogger{}
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultReadyTimeout
	}
	valid := map[Ref]bool{}
	for _, r := range req.Valid {
		valid[r] = true
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	nd, nb, err := openNodeNB(ctx, nil, req.NB, req.OVS)
	if err != nil {
		return err
	}
	defer nd.close()
	defer nb.Close()
	sweepLocal(ctx, nd, nb, log)
	ports, err := ovnport.List(ctx, nb, ovnport.Filter{Network: req.Network, Node: nd.systemID})
	if err != nil {
		return newErr(ErrUnavailable, err.Error(), err)
	}
	ifaces, err := ovsport.List(ctx, nd.ovs)
	if err != nil {
		return newErr(ErrUnavailable, err.Error(), err)
	}
	// Containers another CNI configuration added: its runtime's GC
	// decides about them.
	others := map[Ref]bool{}
	for _, i := range ifaces {
		if i.Network == req.Network && i.Config != "" && req.Config != "" && i.Config != req.Config {
			others[Ref{i.Container, i.IfName}] = true
		}
	}
	plugged := map[string]bool{}
	for _, i := range ifaces {
		plugged[i.IfaceID] = true
	}
	// What to remove: the NB port, or nil for an OVS interface without one.
	stale := map[Ref]*ovnport.Port{}
	now := time.Now()
	for _, p := range ports {
		a := Ref{p.Container, p.IfName}
		if p.Node != nd.systemID || others[a] || valid[a] {
			continue
		}
		// Without an OVS interface here the port's configuration is
		// unknown: a young one may be another runtime's ADD between
		// claim and plug (node gc's grace applies).
		if !plugged[p.Name] && nodegc.AddMayBeUnderWay(p, nodegc.DefaultGrace, now) {
			log.Infof("left %s/%s (%s): no OVS interface yet, made %s ago: an ADD may be under way",
				a.ContainerID, a.IfName, p.Name, now.Sub(p.Created).Round(time.Second))
			continue
		}
		stale[a] = p
	}
	for _, i := range ifaces {
		a := Ref{i.Container, i.IfName}
		if _, seen := stale[a]; !seen && i.Network == req.Network && !valid[a] && !others[a] {
			stale[a] = nil
		}
	}
	var errs []error
	for a, p := range stale {
		// The node side first, as DEL does; then the NB port with its
		// DNS names, service backends (both addresses) and published
		// ports.
		nm := namesFor(nd.systemID, a.ContainerID, a.IfName)
		if err := ovsport.Unplug(ctx, nd.ovs, nm.host); err != nil {
			errs = append(errs, err)
		}
		if err := ovsport.DelVeth("", a.IfName, nm.host); err != nil {
			errs = append(errs, err)
		}
		lsp := ""
		if p != nil {
			lsp = p.Name
			if err := chassis.RemovePort(ctx, nb, p); err != nil {
				errs = append(errs, err)
			}
		}
		log.Infof("removed stale %s/%s (%s)", a.ContainerID, a.IfName, lsp)
	}
	if len(errs) > 0 {
		return &GCError{Network: req.Network, Errs: errs}
	}
	return nil
}
