// Package attach puts a container interface on an ovlmgr network and takes
// it off again, on this node: the NB port (ovn/port), DNS names and service
// backends (ovn/service), the veth and its br-int port (ovs/port), the wait
// for ovn-installed with a fail-fast guard on OVN (ovn/health), undo of
// everything on failure, and the node's garbage collection. CNI ADD/DEL/
// CHECK/STATUS/GC and `ovlmgr port attach/detach` are thin callers.
package attach

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/dns"
	"github.com/ovlmgr/ovlmgr/ovn/health"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	ovsmtu "github.com/ovlmgr/ovlmgr/ovs/mtu"
	ovsnode "github.com/ovlmgr/ovlmgr/ovs/node"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// DefaultReadyTimeout bounds Attach's wait for the address and ovn-installed.
const DefaultReadyTimeout = 30 * time.Second

// FailFastGrace is how long Attach waits for OVN before it checks whether
// OVN can answer at all (ovn-northd's SB lock, an nb_cfg round trip); when
// two checks in a row find it cannot, Attach fails with ErrUnavailable
// naming the cause instead of waiting ReadyTimeout.
const FailFastGrace = time.Second

// connectTimeout bounds connecting to each database.
const connectTimeout = 5 * time.Second

// node is what is learnt from the node's Open_vSwitch db.
type node struct {
	ovs      client.Client
	systemID string
	nbEP     string
	encapIP  string
	sbEP     string
	// ids are the node's Open_vSwitch external_ids (e.g. its pool size).
	ids map[string]string
	// tls is the node's identity for ssl: endpoints (nil: the process's),
	// tlsFiles what it was loaded from.
	tls      *tls.Config
	tlsFiles dbconn.TLSFiles
	// nbEarly is set when the NB connection was started from the node's
	// hint beside the local db's (nbhint.go).
	nbEarly bool
	// session, when set, lends ovs and the NB client (see Session).
	session *Session
}

func (n *node) close() {
	if n != nil && n.ovs != nil {
		n.ovs.Close()
	}
}

// openNode connects the local Open_vSwitch db (ep, default
// dbconn.DefaultOVS()), or takes s's connection, and reads the node's
// settings; nbEP overrides the node's ovlmgr.io/nb. For detach, neither a
// system-id nor an NB endpoint is required: a container's interface is
// removed from a node that left OVN too.
func openNode(ctx context.Context, s *Session, nbEP, ep string, detach bool) (*node, error) {
	if ep == "" {
		ep = dbconn.DefaultOVS()
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var ovs client.Client
	var err error
	if s != nil {
		ovs, err = s.ovsClient(cctx, ep)
	} else {
		ovs, err = vsdb.Connect(cctx, ep)
	}
	if err != nil {
		return nil, newErr(ErrUnavailable, fmt.Sprintf("local Open_vSwitch db: %v", err), err)
	}
	root, err := vsdb.Root(cctx, ovs)
	if err != nil {
		if s != nil {
			s.dropOVS(ovs)
		}
		ovs.Close()
		return nil, newErr(ErrUnavailable, fmt.Sprintf("local Open_vSwitch db %s: %v", ep, err), err)
	}
	n := &node{ovs: ovs, systemID: root.ExternalIDs["system-id"], nbEP: nbEP,
		encapIP: root.ExternalIDs["ovn-encap-ip"], sbEP: root.ExternalIDs["ovn-remote"], ids: root.ExternalIDs, session: s}
	if n.systemID == "" && !detach {
		ovs.Close()
		return nil, newErr(ErrNodeNotJoined, fmt.Sprintf("local Open_vSwitch db %s has no external_ids:system-id: this node has not joined OVN", ep), nil)
	}
	// The node's certificate (Open_vSwitch SSL row, set by node join) is
	// its identity for ssl: endpoints: the control service, the SB.
	n.tls, n.tlsFiles = nodeTLS(ctx, s, ovs, root)
	if n.nbEP == "" {
		n.nbEP = root.ExternalIDs[ovsnode.KeyNB]
	}
	if !detach && n.nbEP == "" {
		ovs.Close()
		return nil, newErr(ErrNoNB, fmt.Sprintf("no Northbound endpoint given, and the local Open_vSwitch db %s has no external_ids:ovlmgr.io/nb", ep), nil)
	}
	return n, nil
}

// openNodeNB is openNode (an NB endpoint required) followed by connectNB;
// on success the caller closes both. Without a session the NB connection
// starts beside the local db's from the node's hint (nbhint.go), and is
// kept only when the local db names the same endpoint and identity.
func openNodeNB(ctx context.Context, s *Session, nbEP, ovsEP string) (*node, client.Client, error) {
	st := startFromHint(ctx, s, nbEP, ovsEP)
	defer st.discard()
	return openNodeNBFrom(ctx, st, s, nbEP, ovsEP)
}

// openNodeNBFrom is openNodeNB with the NB connection started already (by
// a caller that starts it before its own preconditions); the caller
// discards st.
func openNodeNBFrom(ctx context.Context, st *nbStart, s *Session, nbEP, ovsEP string) (*node, client.Client, error) {
	nd, err := openNode(ctx, s, nbEP, ovsEP, false)
	if err != nil {
		return nil, nil, err
	}
	nb, err := st.connect(ctx, nd)
	if err != nil {
		nd.close()
		return nil, nil, err
	}
	return nd, nb, nil
}

func connectNB(ctx context.Context, nd *node) (client.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var nb client.Client
	var err error
	if nd.session != nil {
		nb, err = nd.session.nbClient(cctx, nd)
	} else {
		nb, err = dbconn.ConnectNBTLS(cctx, nd.nbEP, nd.tls)
	}
	return nb, nbUnavailable(err)
}

// nbUnavailable is a failed NB connect as ADD and DEL report it (nil for
// nil).
func nbUnavailable(err error) error {
	if err == nil {
		return nil
	}
	return newErr(ErrUnavailable, fmt.Sprintf("OVN Northbound: %v", err), err)
}

// names of everything a container interface owns, from the node's
// system-id, container ID and ifname: the NB port is (node, container ID,
// ifname); the host veth only has to be unique on this node.
type names struct {
	lsp, host string
}

func namesFor(node, containerID, ifName string) names {
	return names{lsp: ovnport.Name(node, containerID, ifName), host: ovsport.HostIfName(containerID, ifName)}
}

// netInfo is the network as attaching needs it.
type netInfo struct {
	name    string
	subnet  netip.Prefix
	gateway netip.Addr
	mtu     int
	// prefix6 is the IPv6 /64 of a network with IPv6 (invalid otherwise),
	// gateway6 its ::1. subnet and gateway are invalid on an IPv6-only one.
	prefix6  netip.Prefix
	gateway6 netip.Addr
}

// getNetwork reads the network with network.Lookup: the switch by name
// only, so the cost does not grow with the number of ports. A missing
// network is network.ErrNotFound.
func getNetwork(ctx context.Context, nb client.Client, name string) (*netInfo, error) {
	n, err := network.Lookup(ctx, nb, name)
	if err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return nil, err
		}
		return nil, newErr(ErrUnavailable, err.Error(), err)
	}
	ni := &netInfo{name: name, mtu: n.MTU}
	if n.IPv6Prefix != "" {
		if p6, err := netip.ParsePrefix(n.IPv6Prefix); err == nil {
			ni.prefix6 = p6
			ni.gateway6, _ = netip.ParseAddr(n.Gateway6)
		}
	}
	if n.Subnet == "" && ni.prefix6.IsValid() {
		return ni, nil // IPv6-only
	}
	sub, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return nil, fmt.Errorf("network %q: subnet %q: %v", name, n.Subnet, err)
	}
	ni.subnet = sub
	ni.gateway, _ = netip.ParseAddr(n.Gateway)
	return ni, nil
}

// mtuFor picks the container MTU: the request's, the network's, else the
// MTU of the interface holding the node's encap IP, or the deployment's
// underlay path MTU when that is smaller (NB_Global, see
// network.ReadUnderlay), minus the Geneve overhead and, when the
// deployment encrypts its tunnels, ESP's.
func mtuFor(reqMTU int, ni *netInfo, nd *node, underlay func() (network.Underlay, error)) (int, error) {
	if reqMTU != 0 {
		return reqMTU, nil
	}
	if ni.mtu != 0 {
		return ni.mtu, nil
	}
	ip, err := netip.ParseAddr(nd.encapIP)
	if err != nil {
		return 0, newErr(ErrNodeNotJoined, fmt.Sprintf("node's external_ids:ovn-encap-ip %q: not an IP", nd.encapIP), err)
	}
	mtu, _, err := ovsport.LinkMTUOf(ip)
	if err != nil {
		return 0, newErr(ErrNodeNotJoined, fmt.Sprintf("MTU of the encap interface: %v", err), err)
	}
	u, err := underlay()
	if err != nil {
		return 0, err
	}
	if u.PathMTU > 0 && u.PathMTU < mtu {
		mtu = u.PathMTU
	}
	return ovsmtu.Container(mtu, ip, u.Encrypted), nil
}

// AttachRequest is one container interface to put on a network: what
// CNI ADD and `ovlmgr port attach` both do.
type AttachRequest struct {
	Network string
	// NB and OVS endpoints; empty: the node's ovlmgr.io/nb and dbconn.DefaultOVS().
	NB  string
	OVS string
	// MTU overrides the network's and the derived MTU.
	MTU          int
	ReadyTimeout time.Duration
	ContainerID  string
	IfName       string
	NetNS        string
	// IP (IPv4), IP6 and MAC are optional requests.
	IP  netip.Addr
	IP6 netip.Addr
	MAC net.HardwareAddr
	// Aliases and PodName choose the DNS name; Labels go on the port.
	Aliases []string
	PodName string
	Labels  map[string]string
	// PortMappings are published on the external network (ovn/publish).
	PortMappings []publish.Mapping
	// Config is the CNI network configuration's name, kept on the OVS
	// interface: GC of another configuration leaves the container alone.
	Config string
	// Session, when set, lends the database connections (nil: Attach
	// connects and closes its own).
	Session *Session
}

// Attachment is what Attach made.
type Attachment struct {
	Port        string       `json:"port"`
	Network     string       `json:"network"`
	Node        string       `json:"node"`
	ContainerID string       `json:"container"`
	IfName      string       `json:"ifname"`
	NetNS       string       `json:"netns"`
	Host        string       `json:"hostInterface"`
	HostMAC     string       `json:"hostMAC"`
	MAC         string       `json:"mac"`
	Address     netip.Prefix `json:"address"`
	Address6    netip.Prefix `json:"address6,omitzero"`
	Gateway     netip.Addr   `json:"gateway"`
	Gateway6    netip.Addr   `json:"gateway6,omitzero"`
	MTU         int          `json:"mtu"`
	Nameservers []string     `json:"nameservers,omitempty"`
	Search      []string     `json:"search,omitempty"`
	FQDN        string       `json:"fqdn,omitempty"`
	// Published are the container's published ports.
	Published []publish.Published `json:"published,omitempty"`
	// Linger holds files the caller must close: the packet socket of the
	// announcement, whose close waits for the kernel (see
	// ovs/port.AnnounceLinger); a CNI plugin hands it to its detached
	// refill child first, so that ADD does not wait.
	Linger []*os.File `json:"-"`
}

// Logger receives progress lines; nil discards them.
type Logger interface {
	Infof(format string, args ...interface{})
	Debugf(format string, args ...interface{})
	Errorf(format string, args ...interface{})
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...interface{})  {}
func (nopLogger) Debugf(string, ...interface{}) {}
func (nopLogger) Errorf(string, ...interface{}) {}

// Attach creates the NB port (address from OVN's IPAM or the requested
// one), registers DNS names and service backends, creates the veth, plugs
// it into br-int and waits for ovn-installed. Any failure removes what it
// made; a failure whose undo left the NB port is a *LeftoverError. Callers
// branch on the kinds in errors.go and on ovn/port's sentinels.
func Attach(ctx context.Context, req AttachRequest, log Logger) (_ *Attachment, err error) {
	if log == nil {
		log = nopLogger{}
	}
	if req.ReadyTimeout <= 0 {
		req.ReadyTimeout = DefaultReadyTimeout
	}
	start := time.Now()
	// The NB connection first (from the node's hint, without a session):
	// it is the longest wait of an ADD in a fresh process, and the checks
	// below enter the container's namespace. A failed check drops it.
	nbStarted := startFromHint(ctx, req.Session, req.NB, req.OVS)
	defer nbStarted.discard()
	// Cheap local preconditions before any database write.
	if err := checkNetNS(req.NetNS); err != nil {
		return nil, err
	}
	if ovsport.ContainerLinkExists(req.NetNS, req.IfName) {
		return nil, newErr(ErrExists, fmt.Sprintf("interface %s already exists in %s", req.IfName, req.NetNS), nil)
	}
	if err := ovnport.CheckMAC(req.MAC); err != nil {
		return nil, err
	}
	// The veth needs nothing from the databases: it is made while they are
	// connected and the port claimed (MakeVeth), and completed once the
	// address is known (ConfigureVeth); a failed ADD removes it.
	early := startVeth(ovsport.VethSpec{NetNS: req.NetNS, IfName: req.IfName, HostName: ovsport.HostIfName(req.ContainerID, req.IfName)})
	defer func() {
		if err != nil {
			early.discard()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, req.ReadyTimeout+2*connectTimeout)
	defer cancel()
	nd, nb, err := openNodeNBFrom(ctx, nbStarted, req.Session, req.NB, req.OVS)
	if err != nil {
		return nil, err
	}
	defer nd.close()
	defer nb.Close()
	nm := namesFor(nd.systemID, req.ContainerID, req.IfName)
	// Leftovers of an earlier ADD of this container interface in the
	// node's Open_vSwitch db (see below) are looked up beside the
	// network's reads.
	leftovers := beside(func() (string, error) { return localLeftover(ctx, nd, nm, req), nil })
	// So are the deployment's underlay (for the MTU) and, for a claim
	// from the pool, the network's DNS rows and pool hints.
	// The node's CNI server answers these three from its NB monitor
	// (Session.reads); a claim built on a read that is a moment old fails
	// its guards, as one on a fresh read that lost a race does.
	rnb := nd.session.reads(nb)
	underlay := beside(func() (network.Underlay, error) { return network.ReadUnderlay(ctx, rnb) })
	var dnsRows func() (*dns.Network, error)
	if pooled(req) {
		dnsRows = beside(func() (*dns.Network, error) { return dns.Ensure(ctx, rnb, req.Network) })
	}
	ni, err := getNetwork(ctx, rnb, req.Network)
	if err != nil {
		return nil, err
	}
	if nd.nbEarly {
		log.Debugf("connected (the NB beside the local db, from %s), network read after %s", NBHintFile, time.Since(start).Round(time.Millisecond))
	} else {
		log.Debugf("connected, network read after %s", time.Since(start).Round(time.Millisecond))
	}
	if req.IP.IsValid() && !ni.subnet.Contains(req.IP) {
		if !ni.subnet.IsValid() {
			return nil, newErr(ErrAddressRefused, fmt.Sprintf("requested ip %s: network %s is IPv6-only (%s)", req.IP, ni.name, ni.prefix6), nil)
		}
		return nil, newErr(ErrAddressRefused, fmt.Sprintf("requested ip %s: outside network %s subnet %s", req.IP, ni.name, ni.subnet), nil)
	}
	if req.IP6.IsValid() && !ni.prefix6.Contains(req.IP6) {
		if !ni.prefix6.IsValid() {
			return nil, newErr(ErrAddressRefused, fmt.Sprintf("requested ip %s: network %s has no IPv6 subnet", req.IP6, ni.name), nil)
		}
		return nil, newErr(ErrAddressRefused, fmt.Sprintf("requested ip %s: outside network %s IPv6 subnet %s", req.IP6, ni.name, ni.prefix6), nil)
	}
	mtu, err := mtuFor(req.MTU, ni, nd, underlay)
	if err != nil {
		return nil, err
	}
	// The watch for ovn-installed on the host interface's row (created by
	// Plug below) starts beside the NB work.
	watch := beside(func() (*ovsport.InstallWatch, error) { return ovsport.WatchInstalled(ctx, nd.ovs, nm.host) })
	defer func() {
		if w, _ := watch(); w != nil {
			w.Close()
		}
	}()
	// gctx ends early when the guard finds on two checks in a row that OVN
	// cannot answer (northd not running, SB or NB unreachable): waits that
	// only OVN can end then fail within about FailFastGrace and one guard
	// interval instead of ReadyTimeout.
	gctx, gcancel := context.WithCancelCause(ctx)
	rctx, rcancel := context.WithTimeout(gctx, req.ReadyTimeout)
	defer rcancel()
	guard := &health.Guard{TLS: nd.tls}
	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		guard.Run(gctx, gcancel, nb, nd.nbEP, nd.sbEP, FailFastGrace, 2*time.Second, time.Second)
	}()
	// The guard uses nb: it must be gone before the caller closes nb.
	defer func() { gcancel(nil); <-guardDone }()
	// ovnDown turns an error of a wait the guard cut short into code 11
	// naming the cause, and names what the guard saw on a plain timeout.
	ovnDown := func(err error) error {
		if cause := context.Cause(gctx); cause != nil && errors.Is(cause, health.ErrUnavailable) {
			if errors.Is(err, cause) { // the error already names the cause
				return withLeftover(newErr(ErrUnavailable, err.Error(), err), err)
			}
			return withLeftover(newErr(ErrUnavailable, fmt.Sprintf("%v: %v", cause, err), err), err)
		}
		if last := guard.Last(); last != nil && rctx.Err() != nil {
			return withLeftover(fmt.Errorf("%w (%v)", err, last), err)
		}
		return withLeftover(err, err)
	}

	var undo []func()
	var leftover error // set by the NB port's undo when the port stays
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			if leftover != nil {
				err = withLeftover(err, leftover)
			}
		}
	}()
	// A claimed pool port joins its services beside the node's work;
	// the undo above runs only once that is done.
	var services func() (struct{}, error)
	defer func() {
		if services != nil {
			_, _ = services()
		}
	}()
	cleanCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}

	// This node's OVS ports and veths whose NB port is gone (`net delete
	// --force`, a port detached elsewhere), when a sweep of the node is due
	// (sweep.go: at most every sweepEvery): beside the ADD (a session does
	// it beside the calls; the sweep removes only the rows and links it
	// read, so this ADD's own stay). This defer runs before those that
	// close nd and nb.
	defer sweepBeside(ctx, nd, nb, req.OVS, log)()
	// Leftovers of an earlier ADD of this container interface on this node
	// that never got its DEL (the runtime died with it): with CNI_IFNAME
	// absent from the netns they belong to nobody, so they go before the
	// new ADD. The port name includes this node's system-id, so another
	// node's port of the same container ID is never found here.
	// A port claimed from the pool keeps the pool's name: an ADD killed
	// after plugging it is found through its OVS interface; one killed
	// between claim and plug only by its owner keys, which ADD looks up
	// when its DNS name turns out taken (dropClaimedLeftover). An NB port
	// of this interface's own name (the slow path's, from an ADD killed
	// before its plug) is not read first: the claim fails on a guard
	// that it is absent (errNBLeftover), and the slow path looks for it
	// before it makes the port.
	removeLeftover := func(left string) error {
		early.discard() // the leftover's removal takes links of its names
		log.Infof("removing leftovers of an interrupted ADD (%s)", left)
		return Detach(ctx, DetachRequest{Network: ni.name, NB: nd.nbEP, OVS: req.OVS, ContainerID: req.ContainerID,
			IfName: req.IfName, NetNS: req.NetNS, Session: req.Session}, log)
	}
	if left, _ := leftovers(); left != "" {
		if err := removeLeftover(left); err != nil {
			return nil, err
		}
	}
	var p *ovnport.Port
	var reg *dns.Registration
	undoPort := func() {
		if e := ovnport.Undo(context.Background(), nb, p.Name); e != nil {
			log.Errorf("undo: %v", e)
			leftover = e
		}
	}
	// The undo knows the names ADD gave (or the container-ID name of a
	// clash), so it finds them without reading the network's DNS rows.
	undoDNS := func() {
		cctx, cc := cleanCtx()
		defer cc()
		if e := service.ContainerDeletedHost(cctx, nb, service.Container{Network: ni.name, ContainerID: req.ContainerID,
			Aliases: req.Aliases, PodName: req.PodName, IPs: p.IPs()}); e != nil {
			log.Errorf("undo: %v", e)
		}
	}
	// Fast path: claim a ready pool port of this node, with the DNS name,
	// in one NB transaction (pool.go); else make the port and wait for
	// ovn-northd's address.
	var pre *dns.Network
	if dnsRows != nil {
		if pre, err = dnsRows(); err != nil {
			return nil, ovnDown(fmt.Errorf("DNS names: %w", err))
		}
	}
	p, reg, err = claimPooled(rctx, nb, nd, req, pre, nm.lsp, log)
	if errors.Is(err, errNBLeftover) {
		if err := removeLeftover(nm.lsp); err != nil {
			return nil, err
		}
		p, reg, err = claimPooled(rctx, nb, nd, req, nil, nm.lsp, log)
	}
	if errors.Is(err, dns.ErrNameTaken) {
		if dropped, derr := dropClaimedLeftover(ctx, nb, nd, req, "", log); derr != nil {
			return nil, ovnDown(derr)
		} else if dropped {
			p, reg, err = claimPooled(rctx, nb, nd, req, nil, nm.lsp, log)
		}
	}
	if p != nil {
		undo = append(undo, undoPort, undoDNS)
	}
	if err != nil {
		return nil, ovnDown(err)
	}
	if p != nil {
		services = beside(func() (struct{}, error) { return struct{}{}, addToServices(rctx, nb, p, req) })
	}
	if p == nil {
		if nbLeftover(ctx, nd, nb, nm) {
			if err := removeLeftover(nm.lsp); err != nil {
				return nil, err
			}
		}
		p, err = ovnport.Create(rctx, nb, ovnport.Spec{Network: ni.name, Subnet: ni.subnet, Gateway: ni.gateway, Subnet6: ni.prefix6,
			Node: nd.systemID, Container: req.ContainerID, IfName: req.IfName, MAC: req.MAC, IP: req.IP, IP6: req.IP6, Labels: req.Labels})
		if errors.Is(err, ovnport.ErrNoAddress) {
			// The subnet is full but other nodes' pools may hold addresses.
			if q, qreg, qerr := claimAnyPooled(rctx, nb, nd, req, log); q != nil || qerr != nil {
				p, reg, err = q, qreg, qerr
				if p != nil {
					undo = append(undo, undoPort, undoDNS)
				}
				if err == nil {
					services = beside(func() (struct{}, error) { return struct{}{}, addToServices(rctx, nb, p, req) })
				}
			}
		}
		if err != nil {
			return nil, ovnDown(err)
		}
		if reg == nil {
			undo = append(undo, undoPort)
		}
	}
	log.Debugf("NB port %s address %s mac %s after %s", p.Name, p.IP, p.MAC, time.Since(start).Round(time.Millisecond))
	published, undoPublish, err := publishPorts(rctx, nb, req, p, log)
	if err != nil {
		return nil, ovnDown(err)
	}
	undo = append(undo, undoPublish)
	if reg == nil {
		c := service.Container{Network: ni.name, Port: p.Name, ContainerID: req.ContainerID,
			Aliases: req.Aliases, PodName: req.PodName, IPs: p.IPs(), Labels: req.Labels}
		reg, err = service.ContainerAdded(rctx, nb, c)
		if errors.Is(err, dns.ErrNameTaken) {
			if dropped, derr := dropClaimedLeftover(ctx, nb, nd, req, p.Name, log); derr != nil {
				return nil, ovnDown(derr)
			} else if dropped {
				reg, err = service.ContainerAdded(rctx, nb, c)
			}
		}
		if err != nil {
			return nil, ovnDown(fmt.Errorf("DNS names and services: %w", err))
		}
		undo = append(undo, undoDNS)
	}
	log.Debugf("DNS and services after %s", time.Since(start).Round(time.Millisecond))
	mac, _ := net.ParseMAC(p.MAC)
	var addr, addr6 netip.Prefix
	if p.IP.IsValid() {
		addr = netip.PrefixFrom(p.IP, ni.subnet.Bits())
	}
	if p.IPv6.IsValid() && ni.prefix6.IsValid() {
		addr6 = netip.PrefixFrom(p.IPv6, ni.prefix6.Bits())
	}
	vs := ovsport.VethSpec{NetNS: req.NetNS, IfName: req.IfName, HostName: nm.host,
		MAC: mac, MTU: mtu, Addr: addr, Addr6: addr6, Gateway: ni.gateway, Gateway6: ni.gateway6}
	veth, err := early.take()
	if err == nil && veth != nil {
		err = ovsport.ConfigureVeth(vs, veth)
	} else if err == nil {
		veth, err = ovsport.SetupVeth(vs)
	}
	if err != nil {
		if errors.Is(err, ovsport.ErrLinkExists) {
			return nil, newErr(ErrExists, err.Error(), err)
		}
		return nil, err
	}
	undo = append(undo, func() {
		if e := ovsport.DelVeth(req.NetNS, req.IfName, nm.host); e != nil {
			log.Errorf("undo: %v", e)
		}
	})
	log.Debugf("veth after %s", time.Since(start).Round(time.Millisecond))
	installed, err := watch()
	if err != nil {
		return nil, err
	}
	ifaceUUID, err := ovsport.Plug(ctx, nd.ovs, ovsport.PlugSpec{Name: nm.host, IfaceID: p.Name, IfaceIDVer: p.IfaceIDVer,
		MAC: p.MAC, Container: req.ContainerID, IfName: req.IfName, Network: ni.name, Config: req.Config})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		cctx, cc := cleanCtx()
		defer cc()
		if e := ovsport.Unplug(cctx, nd.ovs, nm.host); e != nil {
			log.Errorf("undo: %v", e)
		}
	})
	log.Debugf("plugged after %s", time.Since(start).Round(time.Millisecond))
	if err := installed.Wait(rctx, ifaceUUID); err != nil {
		var nr *ovsport.NotReadyError
		if errors.As(err, &nr) && nr.Attached {
			if cause := context.Cause(gctx); cause != nil && errors.Is(cause, health.ErrUnavailable) {
				nr.Reason = "stopped waiting for ovn-installed (OVN cannot bind it now)"
			} else {
				nr.Reason = diagnose(nd, p.Name)
			}
		}
		return nil, ovnDown(fmt.Errorf("port %s: %w", p.Name, err))
	}
	log.Debugf("ovn-installed after %s", time.Since(start).Round(time.Millisecond))
	if services != nil {
		if _, err := services(); err != nil {
			return nil, ovnDown(err)
		}
	}
	// Peers may still cache the MAC of an earlier holder of this address
	// (a requested MAC, or a port from before MACs were derived from IPs):
	// announce the binding now that the flows are in place.
	sock, err := ovsport.AnnounceLinger(req.NetNS, req.IfName, mac, p.IP, addr6.Addr())
	if err != nil {
		log.Errorf("%v (peers learn the new MAC when their ARP/ND entries expire)", err)
	}
	a := &Attachment{Port: p.Name, Network: ni.name, Node: nd.systemID, ContainerID: req.ContainerID, IfName: req.IfName,
		NetNS: req.NetNS, Host: nm.host, HostMAC: veth.HostMAC, MAC: p.MAC, Address: addr, Address6: addr6, Gateway: ni.gateway, MTU: mtu}
	if addr6.IsValid() {
		a.Gateway6 = ni.gateway6
	}
	a.Published = published
	if sock != nil {
		a.Linger = append(a.Linger, sock)
	}
	if reg != nil {
		a.Nameservers, a.Search, a.FQDN = reg.Nameservers, reg.Search, reg.FQDN
	}
	return a, nil
}

// localLeftover names what an earlier ADD of this container interface
// left in this node's Open_vSwitch db ("" if nothing): its OVS interface.
func localLeftover(ctx context.Context, nd *node, nm names, req AttachRequest) string {
	if ifc, err := ovsport.Get(ctx, nd.ovs, nm.host); err == nil && ifc != nil && ifc.Container == req.ContainerID && ifc.IfName == req.IfName {
		return nm.host + " for " + ifc.IfaceID
	}
	return ""
}

// nbLeftover reports whether an earlier ADD of this container interface
// on this node left its NB port of the interface's own name (the slow
// path's, made before the ADD was killed).
func nbLeftover(ctx context.Context, nd *node, nb client.Client, nm names) bool {
	old, err := ovnport.Get(ctx, nb, nm.lsp)
	return err == nil && old.Node == nd.systemID
}

// beside runs f in a goroutine; the function it returns waits for f and
// returns its result (every call, the same).
func beside[T any](f func() (T, error)) func() (T, error) {
	done := make(chan struct{})
	var v T
	var err error
	go func() {
		defer close(done)
		v, err = f()
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}

// earlyVeth is the veth ADD makes beside its database work (MakeVeth).
type earlyVeth struct {
	s     ovsport.VethSpec
	done  chan struct{}
	veth  *ovsport.Veth
	err   error
	taken bool
}

func startVeth(s ovsport.VethSpec) *earlyVeth {
	e := &earlyVeth{s: s, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.veth, e.err = ovsport.MakeVeth(s)
	}()
	return e
}

// take waits for the veth and hands it over (the caller completes it and
// undoes it on failure): MakeVeth's result, or nil, nil once discarded.
func (e *earlyVeth) take() (*ovsport.Veth, error) {
	<-e.done
	if e.taken {
		return nil, nil
	}
	e.taken = true
	return e.veth, e.err
}

// discard waits for the veth and removes it unless it was taken.
func (e *earlyVeth) discard() {
	<-e.done
	if e.taken {
		return
	}
	e.taken = true
	if e.err == nil {
		_ = ovsport.DelVeth(e.s.NetNS, e.s.IfName, e.s.HostName)
	}
}
