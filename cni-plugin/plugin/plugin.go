package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/health"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovn/service"
	ovsmtu "github.com/ovlmgr/ovlmgr/ovs/mtu"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
	"github.com/ovlmgr/ovlmgr/ovs/ovsdb/dbconn"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// Funcs returns the verbs for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: CmdAdd, Del: CmdDel, Check: CmdCheck, Status: CmdStatus, GC: CmdGC}
}

// connectTimeout bounds connecting to each database.
const connectTimeout = 5 * time.Second

// node is what the plugin learns from the node's Open_vSwitch db.
type node struct {
	ovs      client.Client
	systemID string
	nbEP     string
	encapIP  string
	sbEP     string
}

func (n *node) close() {
	if n != nil && n.ovs != nil {
		n.ovs.Close()
	}
}

// openNode connects the local Open_vSwitch db and reads the node's settings.
func openNode(ctx context.Context, c *Config, needNB bool) (*node, error) {
	ep := c.OVS
	if ep == "" {
		ep = dbconn.DefaultOVS()
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	ovs, err := vsdb.Connect(cctx, ep)
	if err != nil {
		return nil, cniErr(types.ErrTryAgainLater, fmt.Sprintf("local Open_vSwitch db: %v", err))
	}
	root, err := vsdb.Root(cctx, ovs)
	if err != nil {
		ovs.Close()
		return nil, cniErr(types.ErrTryAgainLater, fmt.Sprintf("local Open_vSwitch db %s: %v", ep, err))
	}
	n := &node{ovs: ovs, systemID: root.ExternalIDs["system-id"], nbEP: c.NB,
		encapIP: root.ExternalIDs["ovn-encap-ip"], sbEP: root.ExternalIDs["ovn-remote"]}
	if n.systemID == "" {
		ovs.Close()
		return nil, cniErr(CodeNodeNotJoined, fmt.Sprintf("local Open_vSwitch db %s has no external_ids:system-id: this node has not joined OVN (run ovlmgr node join)", ep))
	}
	if n.nbEP == "" {
		n.nbEP = root.ExternalIDs["ovlmgr.io/nb"]
	}
	if needNB && n.nbEP == "" {
		ovs.Close()
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"nb\": not set, and the local Open_vSwitch db %s has no external_ids:ovlmgr.io/nb (run ovlmgr node join --nb ...)", ep))
	}
	return n, nil
}

func connectNB(ctx context.Context, ep string) (client.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nb, err := dbconn.ConnectNB(cctx, ep)
	if err != nil {
		return nil, cniErr(types.ErrTryAgainLater, fmt.Sprintf("OVN Northbound: %v", err))
	}
	return nb, nil
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

// netInfo is the network as the plugin needs it.
type netInfo struct {
	name    string
	subnet  netip.Prefix
	gateway netip.Addr
	mtu     int
	// prefix6 is the IPv6 /64 of a dual-stack network (invalid otherwise).
	prefix6 netip.Prefix
}

// getNetwork reads the network with network.Lookup: the switch by name
// only, so the cost does not grow with the number of ports.
func getNetwork(ctx context.Context, nb client.Client, name string) (*netInfo, error) {
	n, err := network.Lookup(ctx, nb, name)
	if err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"network\": %v", err))
		}
		return nil, cniErr(types.ErrTryAgainLater, err.Error())
	}
	sub, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return nil, cniErr(CodeInternal, fmt.Sprintf("network %q: subnet %q: %v", name, n.Subnet, err))
	}
	gw, _ := netip.ParseAddr(n.Gateway)
	ni := &netInfo{name: name, subnet: sub, gateway: gw, mtu: n.MTU}
	if n.IPv6Prefix != "" {
		if p6, err := netip.ParsePrefix(n.IPv6Prefix); err == nil {
			ni.prefix6 = p6
		}
	}
	return ni, nil
}

// mtuFor picks the container MTU: config, network, else the MTU of the
// interface holding the node's encap IP minus the Geneve overhead.
func mtuFor(c *Config, ni *netInfo, nd *node) (int, error) {
	if c.MTU != 0 {
		return c.MTU, nil
	}
	if ni.mtu != 0 {
		return ni.mtu, nil
	}
	ip, err := netip.ParseAddr(nd.encapIP)
	if err != nil {
		return 0, cniErr(CodeNodeNotJoined, fmt.Sprintf("node's external_ids:ovn-encap-ip %q: not an IP (run ovlmgr node join)", nd.encapIP))
	}
	mtu, _, err := ovsport.LinkMTUOf(ip)
	if err != nil {
		return 0, cniErr(CodeNodeNotJoined, fmt.Sprintf("MTU of the encap interface: %v", err))
	}
	return ovsmtu.Container(mtu, ip), nil
}

// asCNIError maps errors from ovn/port and ovs/port to CNI errors.
func asCNIError(err error) error {
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	var nr *ovsport.NotReadyError
	switch {
	case errors.Is(err, ovnport.ErrNoAddress):
		return cniErr(CodeNoAddress, err.Error())
	case errors.Is(err, ovnport.ErrAddressInUse), errors.Is(err, ovnport.ErrMACRefused):
		return cniErr(CodeAddressRefused, err.Error())
	case errors.Is(err, ovnport.ErrExists):
		return cniErr(CodeExists, err.Error())
	case errors.Is(err, ovnport.ErrNetworkNotFound):
		return cniErr(types.ErrInvalidNetworkConfig, "config key \"network\": "+err.Error())
	case errors.Is(err, ovnport.ErrNoIPAM), errors.As(err, &nr), errors.Is(err, context.DeadlineExceeded):
		return cniErr(types.ErrTryAgainLater, err.Error())
	case strings.Contains(err.Error(), "ip ") && (strings.Contains(err.Error(), "outside") || strings.Contains(err.Error(), "gateway") || strings.Contains(err.Error(), "broadcast") || strings.Contains(err.Error(), "network address")):
		return cniErr(CodeAddressRefused, err.Error())
	}
	return cniErr(CodeInternal, err.Error())
}

// LeftoverError is a failed Attach whose undo could not remove the NB port:
// a CNI error (errors.As *types.Error) whose message ends with
// ", and the NB port ovl-... could not be removed: ...", joined with the
// *ovnport.LeftoverError naming the port.
type LeftoverError struct {
	CNI      *types.Error
	Leftover *ovnport.LeftoverError
}

func (e *LeftoverError) Error() string   { return e.CNI.Error() }
func (e *LeftoverError) Unwrap() []error { return []error{e.CNI, e.Leftover} }

// withLeftover returns cerr (a *types.Error) carrying the
// *ovnport.LeftoverError found in cause, if any: its text is appended to
// the CNI message unless already there.
func withLeftover(cerr, cause error) error {
	var lo *ovnport.LeftoverError
	var te *types.Error
	if !errors.As(cause, &lo) || !errors.As(cerr, &te) {
		return cerr
	}
	var already *LeftoverError
	if errors.As(cerr, &already) {
		return cerr
	}
	out := *te
	if !strings.Contains(out.Msg, lo.Error()) {
		out.Msg += ", and " + lo.Error()
	}
	return &LeftoverError{CNI: &out, Leftover: lo}
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
	// IP and MAC are optional requests.
	IP  netip.Addr
	MAC net.HardwareAddr
	// Aliases and PodName choose the DNS name; Labels go on the port.
	Aliases []string
	PodName string
	Labels  map[string]string
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
	MTU         int          `json:"mtu"`
	Nameservers []string     `json:"nameservers,omitempty"`
	Search      []string     `json:"search,omitempty"`
	FQDN        string       `json:"fqdn,omitempty"`
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
// made. Errors are *types.Error with CNI codes.
func Attach(req AttachRequest, log Logger) (_ *Attachment, err error) {
	if log == nil {
		log = nopLogger{}
	}
	if req.ReadyTimeout <= 0 {
		req.ReadyTimeout = DefaultReadyTimeout
	}
	start := time.Now()
	// Cheap local preconditions before any database write.
	if err := checkNetNS(req.NetNS); err != nil {
		return nil, err
	}
	if ovsport.ContainerLinkExists(req.NetNS, req.IfName) {
		return nil, cniErr(CodeExists, fmt.Sprintf("interface %s already exists in %s", req.IfName, req.NetNS))
	}
	if err := ovnport.CheckMAC(req.MAC); err != nil {
		return nil, asCNIError(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), req.ReadyTimeout+2*connectTimeout)
	defer cancel()
	nd, err := openNode(ctx, &Config{NB: req.NB, OVS: req.OVS}, true)
	if err != nil {
		return nil, err
	}
	defer nd.close()
	nb, err := connectNB(ctx, nd.nbEP)
	if err != nil {
		return nil, err
	}
	defer nb.Close()
	ni, err := getNetwork(ctx, nb, req.Network)
	if err != nil {
		return nil, err
	}
	log.Debugf("connected, network read after %s", time.Since(start).Round(time.Millisecond))
	if req.IP.IsValid() && !ni.subnet.Contains(req.IP) {
		return nil, cniErr(CodeAddressRefused, fmt.Sprintf("requested ip %s: outside network %s subnet %s", req.IP, ni.name, ni.subnet))
	}
	mtu, err := mtuFor(&Config{MTU: req.MTU}, ni, nd)
	if err != nil {
		return nil, err
	}
	nm := namesFor(nd.systemID, req.ContainerID, req.IfName)
	// gctx ends early when the guard finds that OVN cannot answer (northd
	// not running, SB or NB unreachable): waits that only OVN can end then
	// fail within about FailFastGrace instead of ReadyTimeout.
	gctx, gcancel := context.WithCancelCause(ctx)
	defer gcancel(nil)
	rctx, rcancel := context.WithTimeout(gctx, req.ReadyTimeout)
	defer rcancel()
	guard := &health.Guard{}
	go guard.Run(gctx, gcancel, nb, nd.nbEP, nd.sbEP, FailFastGrace, 2*time.Second, time.Second)
	// ovnDown turns an error of a wait the guard cut short into code 11
	// naming the cause, and names what the guard saw on a plain timeout.
	ovnDown := func(err error) error {
		if cause := context.Cause(gctx); cause != nil && errors.Is(cause, health.ErrUnavailable) {
			if errors.Is(err, cause) { // the error already names the cause
				return withLeftover(cniErr(types.ErrTryAgainLater, err.Error()), err)
			}
			return withLeftover(cniErr(types.ErrTryAgainLater, fmt.Sprintf("%v: %v", cause, err)), err)
		}
		if last := guard.Last(); last != nil && rctx.Err() != nil {
			return withLeftover(asCNIError(fmt.Errorf("%w (%v)", err, last)), err)
		}
		return withLeftover(asCNIError(err), err)
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
	cleanCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}

	// This node's OVS ports and veths whose NB port is gone (`net delete
	// --force`, a port detached elsewhere): a few indexed selects.
	sweepLocal(ctx, nd, nb, log)
	// Leftovers of an earlier ADD of this container interface on this node
	// that never got its DEL (the runtime died with it): with CNI_IFNAME
	// absent from the netns they belong to nobody, so they go before the
	// new ADD. The port name includes this node's system-id, so another
	// node's port of the same container ID is never found here.
	if old, err := ovnport.Get(ctx, nb, nm.lsp); err == nil && old.Node == nd.systemID {
		log.Infof("removing leftovers of an interrupted ADD (%s)", nm.lsp)
		if err := Detach(DetachRequest{Network: ni.name, NB: nd.nbEP, OVS: req.OVS, ContainerID: req.ContainerID,
			IfName: req.IfName, NetNS: req.NetNS}, log); err != nil {
			return nil, err
		}
	}
	p, err := ovnport.Create(rctx, nb, ovnport.Spec{Network: ni.name, Subnet: ni.subnet, Gateway: ni.gateway,
		Node: nd.systemID, Container: req.ContainerID, IfName: req.IfName, MAC: req.MAC, IP: req.IP, Labels: req.Labels})
	if err != nil {
		return nil, ovnDown(err)
	}
	undo = append(undo, func() {
		if e := ovnport.Undo(context.Background(), nb, p.Name); e != nil {
			log.Errorf("undo: %v", e)
			leftover = e
		}
	})
	log.Debugf("NB port %s address %s mac %s after %s", p.Name, p.IP, p.MAC, time.Since(start).Round(time.Millisecond))
	reg, err := service.ContainerAdded(rctx, nb, service.Container{Network: ni.name, Port: p.Name, ContainerID: req.ContainerID,
		Aliases: req.Aliases, PodName: req.PodName, IPs: portIPs(p), Labels: req.Labels})
	if err != nil {
		return nil, ovnDown(fmt.Errorf("DNS names and services: %w", err))
	}
	undo = append(undo, func() {
		cctx, cc := cleanCtx()
		defer cc()
		if e := service.ContainerDeleted(cctx, nb, ni.name, portIPs(p)); e != nil {
			log.Errorf("undo: %v", e)
		}
	})
	log.Debugf("DNS and services after %s", time.Since(start).Round(time.Millisecond))
	mac, _ := net.ParseMAC(p.MAC)
	addr := netip.PrefixFrom(p.IP, ni.subnet.Bits())
	var addr6 netip.Prefix
	if p.IPv6.IsValid() && ni.prefix6.IsValid() {
		addr6 = netip.PrefixFrom(p.IPv6, ni.prefix6.Bits())
	}
	veth, err := ovsport.SetupVeth(ovsport.VethSpec{NetNS: req.NetNS, IfName: req.IfName, HostName: nm.host,
		MAC: mac, MTU: mtu, Addr: addr, Addr6: addr6, Gateway: ni.gateway})
	if err != nil {
		if strings.Contains(err.Error(), "already exists in") {
			return nil, cniErr(CodeExists, err.Error())
		}
		return nil, cniErr(CodeInternal, err.Error())
	}
	undo = append(undo, func() {
		if e := ovsport.DelVeth(req.NetNS, req.IfName, nm.host); e != nil {
			log.Errorf("undo: %v", e)
		}
	})
	log.Debugf("veth after %s", time.Since(start).Round(time.Millisecond))
	installed, err := ovsport.WatchInstalled(ctx, nd.ovs, nm.host)
	if err != nil {
		return nil, asCNIError(err)
	}
	defer installed.Close()
	ifaceUUID, err := ovsport.Plug(ctx, nd.ovs, ovsport.PlugSpec{Name: nm.host, IfaceID: p.Name, IfaceIDVer: req.ContainerID,
		MAC: p.MAC, Container: req.ContainerID, IfName: req.IfName, Network: ni.name})
	if err != nil {
		return nil, asCNIError(err)
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
	// Peers may still cache the MAC of an earlier holder of this address
	// (a requested MAC, or a port from before MACs were derived from IPs):
	// announce the binding now that the flows are in place.
	if err := ovsport.Announce(req.NetNS, req.IfName, mac, p.IP, addr6.Addr()); err != nil {
		log.Errorf("%v (peers learn the new MAC when their ARP/ND entries expire)", err)
	}
	a := &Attachment{Port: p.Name, Network: ni.name, Node: nd.systemID, ContainerID: req.ContainerID, IfName: req.IfName,
		NetNS: req.NetNS, Host: nm.host, HostMAC: veth.HostMAC, MAC: p.MAC, Address: addr, Address6: addr6, Gateway: ni.gateway, MTU: mtu}
	if reg != nil {
		a.Nameservers, a.Search, a.FQDN = reg.Nameservers, reg.Search, reg.FQDN
	}
	return a, nil
}

// CmdAdd is CNI ADD: Attach, then the result (appended to any prevResult)
// in the config's version.
func CmdAdd(args *skel.CmdArgs) (err error) {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "ADD", args.ContainerID, args.IfName)
	defer log.close()
	start := time.Now()
	defer func() {
		if err != nil {
			log.Errorf("%v", err)
		} else {
			log.Infof("done in %s", time.Since(start).Round(time.Millisecond))
		}
	}()
	req, err := parseRequest(c, args.Args)
	if err != nil {
		return err
	}
	prev, err := resultFromPrev(c)
	if err != nil {
		return err
	}
	a, err := Attach(AttachRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, MTU: c.MTU, ReadyTimeout: c.ReadyTimeout.Duration,
		ContainerID: args.ContainerID, IfName: args.IfName, NetNS: args.Netns, IP: req.IP, MAC: req.MAC,
		Aliases: c.RuntimeConfig.Aliases, PodName: req.PodName, Labels: c.RuntimeConfig.Labels}, log)
	if err != nil {
		return err
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev != nil {
		res = prev
	}
	hostIdx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: a.Host, Mac: a.HostMAC, Mtu: a.MTU},
		&current.Interface{Name: a.IfName, Mac: a.MAC, Mtu: a.MTU, Sandbox: a.NetNS})
	res.IPs = append(res.IPs, &current.IPConfig{
		Interface: current.Int(hostIdx + 1),
		Address:   net.IPNet{IP: a.Address.Addr().AsSlice(), Mask: net.CIDRMask(a.Address.Bits(), 32)},
		Gateway:   a.Gateway.AsSlice(),
	})
	if a.Address6.IsValid() {
		res.IPs = append(res.IPs, &current.IPConfig{
			Interface: current.Int(hostIdx + 1),
			Address:   net.IPNet{IP: a.Address6.Addr().AsSlice(), Mask: net.CIDRMask(a.Address6.Bits(), 128)},
		})
	}
	if len(a.Nameservers) > 0 {
		res.DNS.Nameservers = append(res.DNS.Nameservers, a.Nameservers...)
		res.DNS.Search = append(res.DNS.Search, a.Search...)
	}
	if a.Gateway.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: a.Gateway.AsSlice()})
	}
	return types.PrintResult(res, c.CNIVersion)
}

// diagnose says which step of binding did not happen, asking SB (on the
// failure path only) who claimed the port and whether ovn-controller runs.
func diagnose(nd *node, lsp string) string {
	if _, ok := controllerPID(); !ok {
		return "ovn-controller is not running on this node (no live pid in " + pidfilePath() + ")"
	}
	if nd.sbEP == "" {
		return "not claimed or flows not installed (node has no ovn-remote to ask SB)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sb, err := dbconn.ConnectSB(ctx, nd.sbEP)
	if err != nil {
		return "ovn-controller did not set ovn-installed; SB unreachable to say why: " + err.Error()
	}
	defer sb.Close()
	pb := &sbdb.PortBinding{LogicalPort: lsp}
	var rows []*sbdb.PortBinding
	if err := dbconn.Select(ctx, sb, pb, &rows, model.Condition{Field: &pb.LogicalPort, Function: ovsdb.ConditionEqual, Value: lsp}); err != nil {
		return "ovn-controller did not set ovn-installed; SB query failed: " + err.Error()
	}
	if len(rows) == 0 {
		return "ovn-northd has not created the SB Port_Binding (is ovn-northd running?)"
	}
	if rows[0].Chassis == nil {
		return fmt.Sprintf("port not claimed by any chassis: ovn-controller on this node (system-id %s) has not bound it", nd.systemID)
	}
	ch := &sbdb.Chassis{UUID: *rows[0].Chassis}
	var chs []*sbdb.Chassis
	_ = dbconn.Select(ctx, sb, ch, &chs, model.Condition{Field: &ch.UUID, Function: ovsdb.ConditionEqual, Value: *rows[0].Chassis})
	if len(chs) > 0 && chs[0].Name != nd.systemID {
		return fmt.Sprintf("port claimed by chassis %s, not this node (%s)", chs[0].Name, nd.systemID)
	}
	return "claimed by this node, but ovn-controller has not installed its flows (ovn-installed not set)"
}

func pidfilePath() string {
	dir := os.Getenv("OVN_RUNDIR")
	if dir == "" {
		dir = "/var/run/ovn"
	}
	return filepath.Join(dir, "ovn-controller.pid")
}

// controllerPID reads ovn-controller's pidfile and checks the process lives.
func controllerPID() (int, bool) {
	b, err := os.ReadFile(pidfilePath())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, false
	}
	// A zombie counts as stopped.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			return pid, false
		}
	}
	return pid, true
}

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
}

// Detach removes the OVS port, the veth, DNS names and service backends,
// and the NB port, found from this node's system-id, the container ID and
// the ifname. Anything already gone is fine. What is on the node goes
// first; when the NB cannot be reached (or its delete fails) Detach still
// succeeds and only the NB port is left: `ovlmgr node gc` on this node (or
// the next ADD/DEL/GC here, for OVS leftovers) removes it later.
func Detach(req DetachRequest, log Logger) error {
	if log == nil {
		log = nopLogger{}
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultReadyTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), req.Timeout)
	defer cancel()
	nd, err := openNode(ctx, &Config{NB: req.NB, OVS: req.OVS}, false)
	if err != nil {
		return err
	}
	defer nd.close()
	nm := namesFor(nd.systemID, req.ContainerID, req.IfName)
	// The OVS interface names the NB port it was plugged for (also a port
	// named before the node was part of port names).
	lsps := []string{nm.lsp}
	if ifc, err := ovsport.Get(ctx, nd.ovs, nm.host); err == nil && ifc != nil && ifc.IfaceID != "" && ifc.IfaceID != nm.lsp &&
		ifc.Container == req.ContainerID && ifc.IfName == req.IfName {
		lsps = append(lsps, ifc.IfaceID)
	}
	if err := ovsport.Unplug(ctx, nd.ovs, nm.host); err != nil {
		return asCNIError(err)
	}
	log.Debugf("unplugged after %s", time.Since(start).Round(time.Millisecond))
	if err := ovsport.DelVeth(req.NetNS, req.IfName, nm.host); err != nil {
		return asCNIError(err)
	}
	log.Debugf("veth deleted after %s", time.Since(start).Round(time.Millisecond))
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
	nb, err := connectNB(nctx, nd.nbEP)
	if err != nil {
		return leave(err)
	}
	defer nb.Close()
	sweepLocal(ctx, nd, nb, log)
	// The port of this node: by its name, else by the name the OVS
	// interface gave, else by the name from before node-qualified names,
	// each only if it is bound to this node.
	lsps = append(lsps, ovnport.LegacyName(req.ContainerID, req.IfName))
	var p *ovnport.Port
	for _, name := range lsps {
		got, err := ovnport.Get(ctx, nb, name)
		if err == nil && got.Node == nd.systemID && got.Container == req.ContainerID && got.IfName == req.IfName {
			p = got
			break
		}
		if err != nil && !errors.Is(err, ovnport.ErrNotFound) && !errors.Is(err, ovnport.ErrNotOwned) {
			return leave(err)
		}
	}
	// DNS records and service backends go first, while the port still says
	// which address it had (prevResult covers a port already gone).
	ips := req.PrevIPs
	network := req.Network
	if p != nil && p.IP.IsValid() {
		ips = portIPs(p)
		if p.Network != "" {
			network = p.Network
		}
	}
	if len(ips) > 0 && network != "" {
		if err := service.ContainerDeletedHost(ctx, nb, service.Container{Network: network, ContainerID: req.ContainerID,
			Aliases: req.Aliases, PodName: req.PodName, IPs: ips}); err != nil {
			return leave(fmt.Errorf("remove DNS names and service backends: %w", err))
		}
	}
	log.Debugf("DNS and services after %s", time.Since(start).Round(time.Millisecond))
	if p == nil {
		return nil
	}
	if err := ovnport.Delete(ctx, nb, p.Name); err != nil {
		return leave(err)
	}
	log.Debugf("deleted %s / %s after %s", p.Name, nm.host, time.Since(start).Round(time.Millisecond))
	return nil
}

// sweepLocal removes this node's OVS ports and veths whose NB port no
// longer exists (nodegc.Sweep: one local select, indexed NB selects of the
// few local ports). Failures are logged only: the verb goes on.
func sweepLocal(ctx context.Context, nd *node, nb client.Client, log Logger) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	removed, err := nodegc.Sweep(sctx, nd.ovs, nb, false)
	for _, r := range removed {
		log.Infof("removed OVS port and veth %s: its NB port %s no longer exists (container %s, ifname %s)", r.Name, r.Port, r.Container, r.IfName)
	}
	if err != nil {
		log.Errorf("sweep of OVS ports without NB port: %v", err)
	}
}

// checkNetNS refuses a CNI_NETNS that is not a network namespace (code 4,
// ErrInvalidEnvironmentVariables: the variable is wrong), before anything
// is written anywhere.
func checkNetNS(path string) error {
	if path == "" {
		return cniErr(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: empty; want the path of the container's network namespace")
	}
	h, err := ns.GetNS(path)
	if err != nil {
		return cniErr(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q: %v; want the path of the container's network namespace", path, err))
	}
	_ = h.Close()
	return nil
}

// CmdDel is CNI DEL (see Detach).
func CmdDel(args *skel.CmdArgs) (err error) {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "DEL", args.ContainerID, args.IfName)
	defer log.close()
	defer func() {
		if err != nil {
			log.Errorf("%v", err)
		}
	}()
	var ips []net.IP
	if prev, _ := resultFromPrev(c); prev != nil {
		for _, ipc := range prev.IPs {
			if v4 := ipc.Address.IP.To4(); v4 != nil {
				ips = append(ips, v4)
			} else if ipc.Address.IP != nil {
				ips = append(ips, ipc.Address.IP)
			}
		}
	}
	req, _ := parseRequest(c, args.Args) // only its pod name matters here
	return Detach(DetachRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, Timeout: c.ReadyTimeout.Duration,
		ContainerID: args.ContainerID, IfName: args.IfName, NetNS: args.Netns, PrevIPs: ips,
		Aliases: c.RuntimeConfig.Aliases, PodName: req.PodName}, log)
}

// CmdCheck verifies what ADD made, from prevResult.
func CmdCheck(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "CHECK", args.ContainerID, args.IfName)
	defer log.close()
	err = check(c, args)
	if err != nil {
		log.Errorf("%v", err)
	}
	return err
}

func check(c *Config, args *skel.CmdArgs) error {
	prev, err := resultFromPrev(c)
	if err != nil {
		return err
	}
	if prev == nil {
		return cniErr(types.ErrInvalidNetworkConfig, "CHECK needs prevResult")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.ReadyTimeout.Duration)
	defer cancel()
	nd, err := openNode(ctx, c, true)
	if err != nil {
		return err
	}
	defer nd.close()
	nb, err := connectNB(ctx, nd.nbEP)
	if err != nil {
		return err
	}
	defer nb.Close()
	ni, err := getNetwork(ctx, nb, c.Network)
	if err != nil {
		return err
	}
	nm := namesFor(nd.systemID, args.ContainerID, args.IfName)
	// Our IP in prevResult: the one on the interface named IfName in the sandbox.
	var addr, addr6 netip.Prefix
	var mac string
	mtu := 0
	for _, ipc := range prev.IPs {
		if ipc.Interface == nil || *ipc.Interface >= len(prev.Interfaces) {
			continue
		}
		ifc := prev.Interfaces[*ipc.Interface]
		if ifc.Name == args.IfName && ifc.Sandbox != "" {
			ones, _ := ipc.Address.Mask.Size()
			if v4 := ipc.Address.IP.To4(); v4 != nil {
				a, _ := netip.AddrFromSlice(v4)
				addr, mac, mtu = netip.PrefixFrom(a, ones), ifc.Mac, ifc.Mtu
			} else if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
				addr6 = netip.PrefixFrom(a, ones)
			}
		}
	}
	if !addr.IsValid() {
		return cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("prevResult has no address for interface %s", args.IfName))
	}
	p, err := ovnport.Get(ctx, nb, nm.lsp)
	if err != nil {
		return cniErr(CodeInternal, fmt.Sprintf("NB port: %v", err))
	}
	if p.IP != addr.Addr() || !strings.EqualFold(p.MAC, mac) {
		return cniErr(CodeInternal, fmt.Sprintf("NB port %s has %s %s; prevResult says %s %s", p.Name, p.MAC, p.IP, mac, addr.Addr()))
	}
	if addr6.IsValid() && p.IPv6 != addr6.Addr() {
		return cniErr(CodeInternal, fmt.Sprintf("NB port %s has IPv6 %s; prevResult says %s", p.Name, p.IPv6, addr6.Addr()))
	}
	if p.Node != nd.systemID {
		return cniErr(CodeInternal, fmt.Sprintf("NB port %s is for node %s, this is %s", p.Name, p.Node, nd.systemID))
	}
	hw, _ := net.ParseMAC(mac)
	if err := ovsport.CheckVeth(ovsport.VethSpec{NetNS: args.Netns, IfName: args.IfName, HostName: nm.host,
		MAC: hw, MTU: mtu, Addr: addr, Addr6: addr6, Gateway: ni.gateway}); err != nil {
		return cniErr(CodeInternal, err.Error())
	}
	ifc, err := ovsport.Get(ctx, nd.ovs, nm.host)
	if err != nil {
		return cniErr(types.ErrTryAgainLater, err.Error())
	}
	switch {
	case ifc == nil:
		return cniErr(CodeInternal, fmt.Sprintf("OVS interface %s missing from br-int", nm.host))
	case ifc.IfaceID != nm.lsp || ifc.IfaceIDVer != args.ContainerID:
		return cniErr(CodeInternal, fmt.Sprintf("OVS interface %s has iface-id %s ver %s, want %s ver %s", nm.host, ifc.IfaceID, ifc.IfaceIDVer, nm.lsp, args.ContainerID))
	case !ifc.Installed:
		return cniErr(CodeInternal, fmt.Sprintf("OVS interface %s: not ovn-installed", nm.host))
	}
	if _, ok := controllerPID(); !ok {
		return cniErr(CodeInternal, "ovn-controller is not running on this node")
	}
	return nil
}

// CmdStatus answers whether an ADD would work now: 0, or 50 naming why not.
func CmdStatus(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*connectTimeout)
	defer cancel()
	unavailable := func(msg string) error { return cniErr(CodePluginNotAvailable, msg) }
	nd, err := openNode(ctx, c, true)
	if err != nil {
		var te *types.Error
		if errors.As(err, &te) && te.Code == types.ErrInvalidNetworkConfig {
			return err
		}
		return unavailable(err.Error())
	}
	defer nd.close()
	if _, ok := controllerPID(); !ok {
		return unavailable("ovn-controller is not running on this node (no live pid in " + pidfilePath() + ")")
	}
	br, err := vsdb.Bridge(ctx, nd.ovs, ovsport.DefaultBridge)
	if err != nil || br == nil {
		return unavailable("bridge br-int missing in the local Open_vSwitch db")
	}
	nb, err := connectNB(ctx, nd.nbEP)
	if err != nil {
		return unavailable(err.Error())
	}
	defer nb.Close()
	n, err := network.Get(ctx, nb, c.Network)
	if err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"network\": %v", err))
		}
		return unavailable(err.Error())
	}
	if n.Free <= 0 {
		return unavailable(fmt.Sprintf("no free address in %s (%s)", n.Name, n.Subnet))
	}
	return nil
}

// CmdGC removes this node's ports of this network whose container ID and
// ifname are not in cni.dev/valid-attachments (or cni.dev/attachments).
func CmdGC(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "GC", "-", "-")
	defer log.close()
	valid := map[types.GCAttachment]bool{}
	for _, a := range append(append([]types.GCAttachment{}, c.ValidAttachments...), c.Attachments...) {
		valid[a] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.ReadyTimeout.Duration)
	defer cancel()
	nd, err := openNode(ctx, c, true)
	if err != nil {
		return err
	}
	defer nd.close()
	nb, err := connectNB(ctx, nd.nbEP)
	if err != nil {
		return err
	}
	defer nb.Close()
	sweepLocal(ctx, nd, nb, log)
	ports, err := ovnport.List(ctx, nb, ovnport.Filter{Network: c.Network, Node: nd.systemID})
	if err != nil {
		return cniErr(types.ErrTryAgainLater, err.Error())
	}
	ifaces, err := ovsport.List(ctx, nd.ovs)
	if err != nil {
		return cniErr(types.ErrTryAgainLater, err.Error())
	}
	type att struct{ ctr, ifn string }
	type leftover struct {
		ips []net.IP
		lsp string
	}
	stale := map[att]*leftover{}
	for _, p := range ports {
		if p.Node != nd.systemID {
			continue
		}
		if !valid[types.GCAttachment{ContainerID: p.Container, IfName: p.IfName}] {
			var ips []net.IP
			if p.IP.IsValid() {
				ips = portIPs(p)
			}
			stale[att{p.Container, p.IfName}] = &leftover{ips: ips, lsp: p.Name}
		}
	}
	for _, i := range ifaces {
		a := att{i.Container, i.IfName}
		if _, seen := stale[a]; !seen && i.Network == c.Network && !valid[types.GCAttachment{ContainerID: i.Container, IfName: i.IfName}] {
			stale[a] = &leftover{}
		}
	}
	var errs []string
	for a, lo := range stale {
		nm := namesFor(nd.systemID, a.ctr, a.ifn)
		if len(lo.ips) > 0 {
			if err := service.ContainerDeleted(ctx, nb, c.Network, lo.ips); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if err := ovsport.Unplug(ctx, nd.ovs, nm.host); err != nil {
			errs = append(errs, err.Error())
		}
		if err := ovsport.DelVeth("", a.ifn, nm.host); err != nil {
			errs = append(errs, err.Error())
		}
		if lo.lsp != "" {
			if err := ovnport.Delete(ctx, nb, lo.lsp); err != nil {
				errs = append(errs, err.Error())
			}
		}
		log.Infof("removed stale %s/%s (%s)", a.ctr, a.ifn, lo.lsp)
	}
	if len(errs) > 0 {
		return cniErr(CodeInternal, fmt.Sprintf("GC of network %s: %d error(s)", c.Network, len(errs)), errs...)
	}
	return nil
}

// portIPs are the port's addresses (IPv4, and IPv6 on dual-stack networks).
func portIPs(p *ovnport.Port) []net.IP {
	ips := []net.IP{p.IP.AsSlice()}
	if p.IPv6.IsValid() {
		ips = append(ips, p.IPv6.AsSlice())
	}
	return ips
}
