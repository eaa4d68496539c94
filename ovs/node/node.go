// Package node joins a machine to an OVN deployment and takes it out again:
// it writes the Open_vSwitch external_ids that ovn-controller reads and
// creates the integration bridge, through libovsdb on the local
// Open_vSwitch database.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// Open_vSwitch external_ids keys read by ovn-controller, and ours.
const (
	KeySystemID       = "system-id"
	KeyHostname       = "hostname"
	KeyRemote         = "ovn-remote"
	KeyEncapType      = "ovn-encap-type"
	KeyEncapIP        = "ovn-encap-ip"
	KeyBridge         = "ovn-bridge"
	KeyBridgeDatapath = "ovn-bridge-datapath-type"
	// KeyInterconn makes the chassis an OVN interconnection gateway: tunnels
	// to other sites' gateways start and end on it (docs/sites.md).
	KeyInterconn = "ovn-is-interconn"
	// KeyNB holds the OVN Northbound endpoints for ovlmgr tools on the node
	// (the CNI plugin reads it, so it needs no configuration of its own).
	KeyNB = "ovlmgr.io/nb"
	// KeyJoined lists, comma separated, the keys join wrote; leave removes them.
	KeyJoined = "ovlmgr.io/joined"
	// KindBridge is the ovlmgr.io/kind of the br-int bridge when join created it.
	KindBridge = "bridge"
	// IntegrationBridge is the bridge ovn-controller programs.
	IntegrationBridge = vsdb.IntegrationBridge
)

// JoinOptions are the inputs of Join. SB and EncapIP are required.
type JoinOptions struct {
	// OVS is the local Open_vSwitch db endpoint (default dbconn.DefaultOVS()).
	OVS string
	// SB is the OVN Southbound endpoint list ovn-controller connects to.
	SB string
	// NB is recorded for ovlmgr tools on the node (optional).
	NB string
	// EncapIP is this node's tunnel endpoint; it must be on a local interface.
	EncapIP string
	// SystemID names the chassis (default: the existing system-id, else the hostname).
	SystemID string
	// Hostname of the chassis (default: the machine's hostname).
	Hostname string
	// Datapath is br-int's datapath type: "system" (default) or "netdev".
	Datapath string
	// Force replaces another ovn-remote already set (and another bridge
	// mapped to External's physical network).
	Force bool
	// TLS is the node's identity for ssl: endpoints (its certificate's
	// common name is the system-id): set in the Open_vSwitch SSL row, which
	// ovn-controller and ovlmgr tools on the node read.
	TLS dbconn.TLSFiles
	// External, when set, gives the node the external network (a gateway
	// node): a bridge with the physical interface and ovn-bridge-mappings.
	External *External
	// PathMTU, when set, is the largest outer packet that crosses from this
	// node to every other node (a routed or WAN underlay smaller than the
	// encap link). It is recorded in the NB (needs NB) as the deployment's
	// underlay path MTU, which only ever goes down (network.LowerPathMTU).
	PathMTU int
	// ICGateway makes the node an interconnection gateway chassis of its
	// site (external_ids ovn-is-interconn=true): `site link --nodes` names it.
	ICGateway bool
}

// Result tells what Join did.
type Result struct {
	SystemID      string `json:"systemID"`
	Hostname      string `json:"hostname"`
	EncapIP       string `json:"encapIP"`
	Changed       bool   `json:"changed"`       // false when everything was already in place
	CreatedBridge bool   `json:"createdBridge"` // br-int was created by this call
	// Warnings are settings of the machine that will cost the node (see
	// RcvbufWarning, HeapTrimWarning, ARPFlux); join succeeds with them.
	Warnings []string `json:"warnings,omitempty"`
}

// RecommendedRmemDefault is the socket receive buffer (net.core.rmem_default)
// a node with the userspace datapath should give ovs-vswitchd's AF_PACKET
// sockets: OVS 3.1 sets none of its own, and the kernel's usual 212,992
// bytes (about 75 full-sized frames) overflow under TCP load (measured in
// docs/cni.md, Throughput: 60,000-100,000 retransmits a 5 s run with the
// default, none with 4 MiB).
const RecommendedRmemDefault = 4 << 20

// RcvbufWarning says what to change when datapath is "netdev" and
// rmemDefault/rmemMax (bytes, as in /proc/sys/net/core) are below
// RecommendedRmemDefault; "" otherwise.
func RcvbufWarning(datapath string, rmemDefault, rmemMax int) string {
	if datapath != "netdev" || rmemDefault >= RecommendedRmemDefault {
		return ""
	}
	w := fmt.Sprintf("net.core.rmem_default is %d bytes: ovs-vswitchd's userspace datapath reads veth, tap and NIC ports through AF_PACKET sockets of that size, which drop frames under load (TCP retransmits); set net.core.rmem_default=%d", rmemDefault, RecommendedRmemDefault)
	if rmemMax < RecommendedRmemDefault {
		w += fmt.Sprintf(" and net.core.rmem_max=%d (now %d)", RecommendedRmemDefault, rmemMax)
	}
	return w + " (sysctl -w), then restart ovs-vswitchd: a socket takes the default when it is opened"
}

// rcvbufWarning is RcvbufWarning for this machine's sysctls ("" when they
// cannot be read).
func rcvbufWarning(datapath string) string {
	read := func(name string) (int, bool) {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return n, err == nil
	}
	def, ok1 := read("rmem_default")
	max, ok2 := read("rmem_max")
	if !ok1 || !ok2 {
		return ""
	}
	return RcvbufWarning(datapath, def, max)
}

// Refusals that JoinOptions.Force / LeaveOptions.Force override.
var (
	// ErrOtherRemote: the node already points at another OVN Southbound.
	ErrOtherRemote = errors.New("refusing to replace it")
	// ErrBridgeInUse: br-int still has ports besides its own.
	ErrBridgeInUse = errors.New("remove them first")
)

// idRE is compiled on first use: a counted repetition compiles to a large
// program, and package init runs on every CNI call of the plugin.
var idRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`) })

// Join writes the node's OVN settings to the local Open_vSwitch database and
// creates br-int, in one transaction. It refuses an encap IP that is not on
// a local interface (looked up in the caller's network namespace), a
// system-id used by another chassis in SB, and a different ovn-remote
// already set (unless Force). Repeating it with the same values changes nothing.
func Join(ctx context.Context, o JoinOptions) (*Result, error) {
	if o.OVS == "" {
		o.OVS = dbconn.DefaultOVS()
	}
	if o.Datapath == "" {
		o.Datapath = "system"
	}
	if o.Datapath != "system" && o.Datapath != "netdev" {
		return nil, fmt.Errorf("node join: %w", names.Bad("datapath", o.Datapath, "allowed are system, netdev"))
	}
	if o.SB == "" {
		return nil, fmt.Errorf("node join: %w", &names.FieldError{Field: "southbound endpoint", Problem: "is required (the OVN Southbound endpoint, e.g. tcp:198.18.0.1:6642)"})
	}
	if _, err := dbconn.ParseEndpoints(o.SB); err != nil {
		return nil, fmt.Errorf("node join: %w", names.About("southbound endpoint", "%w", err))
	}
	if o.NB != "" {
		if _, err := dbconn.ParseEndpoints(o.NB); err != nil {
			return nil, fmt.Errorf("node join: %w", names.About("northbound endpoint", "%w", err))
		}
	}
	ip := net.ParseIP(o.EncapIP)
	if ip == nil {
		return nil, fmt.Errorf("node join: %w", names.Bad("encap ip", o.EncapIP, "not an IP address"))
	}
	o.EncapIP = ip.String()
	encapIf, encapMTU, err := localIP(ip)
	if err != nil {
		return nil, fmt.Errorf("node join: %w", names.Bad("encap ip", names.Shown(o.EncapIP), "%w", err))
	}

	oc, err := vsdb.Connect(ctx, o.OVS)
	if err != nil {
		return nil, fmt.Errorf("node join: %w", err)
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("node join: %s: %w", o.OVS, err)
	}
	ids := root.ExternalIDs
	if o.SystemID == "" {
		o.SystemID = ids[KeySystemID]
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.SystemID == "" {
		o.SystemID = o.Hostname
	}
	if !idRE().MatchString(o.SystemID) {
		return nil, fmt.Errorf("node join: %w", names.Bad("system id", o.SystemID, "use 1-64 of A-Z a-z 0-9 _ . : - starting with a letter or digit"))
	}
	if o.Hostname == "" || strings.ContainsAny(o.Hostname, " \t\n,") {
		return nil, fmt.Errorf("node join: %w", names.Bad("hostname", o.Hostname, "must be non-empty without spaces or commas"))
	}
	if cur := ids[KeyRemote]; cur != "" && cur != o.SB && !o.Force {
		return nil, fmt.Errorf("node join: this node already has ovn-remote=%s (another OVN deployment?), not %s: %w", cur, o.SB, ErrOtherRemote)
	}
	if err := checkChassis(ctx, o); err != nil {
		return nil, fmt.Errorf("node join: %w", err)
	}
	if !o.TLS.Empty() {
		if err := SetSSL(ctx, oc, o.TLS); err != nil {
			return nil, fmt.Errorf("node join: %w", err)
		}
	}
	if o.PathMTU != 0 {
		if err := recordPathMTU(ctx, o); err != nil {
			return nil, fmt.Errorf("node join: %w", err)
		}
	}

	want := map[string]string{
		KeySystemID:       o.SystemID,
		KeyHostname:       o.Hostname,
		KeyRemote:         o.SB,
		KeyEncapType:      "geneve",
		KeyEncapIP:        o.EncapIP,
		KeyBridge:         IntegrationBridge,
		KeyBridgeDatapath: o.Datapath,
	}
	if o.NB != "" {
		want[KeyNB] = o.NB
	}
	if o.ICGateway {
		want[KeyInterconn] = "true"
	}
	var extOps []ovsdb.Operation
	if o.External != nil {
		eset, eops, err := externalOps(ctx, oc, root, o.External, o.Datapath, o.Force)
		if err != nil {
			return nil, fmt.Errorf("node join: %w", err)
		}
		for k, v := range eset {
			want[k] = v
		}
		extOps = eops
	}
	joined := map[string]bool{}
	for _, k := range strings.Split(ids[KeyJoined], ",") {
		if k != "" {
			joined[k] = true
		}
	}
	set := map[string]string{}
	for k, v := range want {
		if ids[k] != v {
			set[k] = v
			joined[k] = true
		}
	}
	res := &Result{SystemID: o.SystemID, Hostname: o.Hostname, EncapIP: o.EncapIP}
	if w := rcvbufWarning(o.Datapath); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	if sock, ok := strings.CutPrefix(o.OVS, "unix:"); ok {
		if w := VswitchdHeapWarning(o.Datapath, filepath.Dir(sock), encapMTU); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	if o.Datapath == "netdev" && ip.To4() != nil {
		// A warning only: what cannot be read is not warned about, as above.
		if f, err := UnderlayARPFlux(ctx, oc, encapIf); err == nil {
			if w := f.Warning(o.EncapIP); w != "" {
				res.Warnings = append(res.Warnings, w)
			}
		}
	}

	br, err := vsdb.Bridge(ctx, oc, IntegrationBridge)
	if err != nil {
		return nil, fmt.Errorf("node join: %w", err)
	}
	var ops []ovsdb.Operation
	if br != nil && br.DatapathType != o.Datapath && !(br.DatapathType == "" && o.Datapath == "system") {
		if !owner.Owned(br.ExternalIDs, KindBridge) {
			return nil, fmt.Errorf("node join: bridge %s exists with datapath_type %q, not %q, and was not created by ovlmgr: change or delete it first", IntegrationBridge, br.DatapathType, o.Datapath)
		}
		upd := &vswitchd.Bridge{UUID: br.UUID, DatapathType: o.Datapath}
		uops, err := oc.Where(upd).Update(upd, &upd.DatapathType)
		if err != nil {
			return nil, fmt.Errorf("node join: update %s: %w", IntegrationBridge, err)
		}
		ops = append(ops, uops...)
	}
	if br == nil {
		bops, err := createBridgeOps(oc, root.UUID, IntegrationBridge, o.Datapath)
		if err != nil {
			return nil, fmt.Errorf("node join: create %s: %w", IntegrationBridge, err)
		}
		ops = append(ops, bops...)
		res.CreatedBridge = true
	}
	ops = append(ops, extOps...)
	if len(set) > 0 {
		set[KeyJoined] = strings.Join(sortedKeys(joined), ",")
		mops, err := setKeysOps(oc, root, set, nil)
		if err != nil {
			return nil, fmt.Errorf("node join: %w", err)
		}
		ops = append(ops, mops...)
	}
	if len(ops) == 0 {
		return res, nil
	}
	if _, err := dbconn.Transact(ctx, oc, ops...); err != nil {
		if dbconn.FailedWait(err, 0) {
			return nil, fmt.Errorf("node join: the node's Open_vSwitch settings changed while joining (another join or leave?); try again")
		}
		return nil, fmt.Errorf("node join: write Open_vSwitch settings: %w", err)
	}
	res.Changed = true
	return res, nil
}

// LeaveOptions are the inputs of Leave.
type LeaveOptions struct {
	// OVS is the local Open_vSwitch db endpoint (default dbconn.DefaultOVS()).
	OVS string
	// Force deletes br-int even when other ports are still on it, and
	// leaves even when the node's pool ports cannot be removed.
	Force bool
	// NB is the OVN Northbound endpoint through which Leave removes this
	// node's pool ports (ovn/port DeletePool; `ovlmgr node leave` passes
	// --nb, OVLMGR_NB or the endpoint Join recorded). Empty: they stay
	// (`net delete` removes them, and a full subnet's ADD on another node
	// claims them).
	NB string
}

// Leave removes the keys Join wrote and br-int when Join created it. Stop
// ovn-controller first (`ovn-appctl -t ovn-controller exit` also removes
// the chassis from SB). Leaving a node that never joined does nothing.
func Leave(ctx context.Context, o LeaveOptions) error {
	if o.OVS == "" {
		o.OVS = dbconn.DefaultOVS()
	}
	oc, err := vsdb.Connect(ctx, o.OVS)
	if err != nil {
		return fmt.Errorf("node leave: %w", err)
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return fmt.Errorf("node leave: %s: %w", o.OVS, err)
	}
	var ops []ovsdb.Operation
	br, err := vsdb.Bridge(ctx, oc, IntegrationBridge)
	if err != nil {
		return fmt.Errorf("node leave: %w", err)
	}
	if br != nil && owner.Owned(br.ExternalIDs, KindBridge) {
		if len(br.Ports) > 1 && !o.Force {
			return fmt.Errorf("node leave: bridge %s still has %d other port(s) (containers?): %w", IntegrationBridge, len(br.Ports)-1, ErrBridgeInUse)
		}
		delOps, err := oc.Where(br).Delete()
		if err != nil {
			return fmt.Errorf("node leave: delete %s: %w", IntegrationBridge, err)
		}
		r := &vswitchd.OpenvSwitch{UUID: root.UUID}
		mops, err := oc.Where(r).Mutate(r, model.Mutation{Field: &r.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{br.UUID}})
		if err != nil {
			return fmt.Errorf("node leave: delete %s: %w", IntegrationBridge, err)
		}
		ops = append(ops, mops...)
		ops = append(ops, delOps...)
	}
	extOps, err := leaveExternalOps(ctx, oc, root)
	if err != nil {
		return fmt.Errorf("node leave: delete external bridge: %w", err)
	}
	ops = append(ops, extOps...)
	sslOps, err := leaveSSLOps(ctx, oc, root)
	if err != nil {
		return fmt.Errorf("node leave: %w", err)
	}
	ops = append(ops, sslOps...)
	var del []string
	var keep map[string]string
	for _, k := range strings.Split(root.ExternalIDs[KeyJoined], ",") {
		if _, ok := root.ExternalIDs[k]; ok && k != "" {
			// Mappings the user had besides join's stay.
			if rest := leaveMappings(root.ExternalIDs); k == KeyBridgeMappings && rest != "" {
				keep = map[string]string{k: rest}
				continue
			}
			del = append(del, k)
		}
	}
	if _, ok := root.ExternalIDs[KeyJoined]; ok {
		del = append(del, KeyJoined)
	}
	if len(del) > 0 || keep != nil {
		mops, err := setKeysOps(oc, root, keep, del)
		if err != nil {
			return fmt.Errorf("node leave: %w", err)
		}
		ops = append(ops, mops...)
	}
	if err := leavePools(ctx, o.NB, root.ExternalIDs); err != nil && !o.Force {
		return fmt.Errorf("node leave: %w (nothing changed; --force leaves without removing them)", err)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := dbconn.Transact(ctx, oc, ops...); err != nil {
		return fmt.Errorf("node leave: write Open_vSwitch settings: %w", err)
	}
	return nil
}

// leavePools removes the unclaimed pool ports of the node (system-id in
// ids) from every network: ready NB ports that hold addresses for a node
// that will no longer claim them. nb "": nothing to do.
func leavePools(ctx context.Context, nb string, ids map[string]string) error {
	id := ids[KeySystemID]
	if nb == "" || id == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, leaveNBTimeout)
	defer cancel()
	c, err := dbconn.ConnectNB(cctx, nb)
	if err != nil {
		return fmt.Errorf("remove pool ports of node %s: %w", id, err)
	}
	defer c.Close()
	if _, err := ovnport.DeletePool(ctx, c, "", id); err != nil {
		return fmt.Errorf("remove pool ports of node %s: %w", id, err)
	}
	return nil
}

// leaveNBTimeout bounds Leave's connect to NB.
const leaveNBTimeout = 5 * time.Second

// Info is what a node's Open_vSwitch database says about its OVN membership.
type Info struct {
	SystemID string `json:"systemID"`
	Hostname string `json:"hostname"`
	SB       string `json:"sb"`
	NB       string `json:"nb,omitempty"`
	EncapIP  string `json:"encapIP"`
	Datapath string `json:"datapath"`
	Joined   bool   `json:"joined"` // ovlmgr wrote these settings
}

// Local reads the OVN settings of the node whose Open_vSwitch db is at
// endpoint (dbconn.DefaultOVS() when empty).
func Local(ctx context.Context, endpoint string) (*Info, error) {
	if endpoint == "" {
		endpoint = dbconn.DefaultOVS()
	}
	oc, err := vsdb.Connect(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	ids := root.ExternalIDs
	return &Info{
		SystemID: ids[KeySystemID], Hostname: ids[KeyHostname], SB: ids[KeyRemote], NB: ids[KeyNB],
		EncapIP: ids[KeyEncapIP], Datapath: ids[KeyBridgeDatapath], Joined: ids[KeyJoined] != "",
	}, nil
}

// setKeysOps returns a guarded transaction part that sets and deletes
// Open_vSwitch external_ids keys: the first op waits for external_ids to be
// unchanged since root was read.
func setKeysOps(c client.Client, root *vswitchd.OpenvSwitch, set map[string]string, del []string) ([]ovsdb.Operation, error) {
	r := &vswitchd.OpenvSwitch{UUID: root.UUID, ExternalIDs: root.ExternalIDs}
	if r.ExternalIDs == nil {
		r.ExternalIDs = map[string]string{}
	}
	timeout := 0
	wait, err := c.Where(r).Wait(ovsdb.WaitConditionEqual, &timeout, r, &r.ExternalIDs)
	if err != nil {
		return nil, fmt.Errorf("guard external_ids: %w", err)
	}
	for k := range set {
		del = append(del, k)
	}
	var muts []model.Mutation
	if len(del) > 0 {
		muts = append(muts, model.Mutation{Field: &r.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: del})
	}
	if len(set) > 0 {
		muts = append(muts, model.Mutation{Field: &r.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: set})
	}
	mops, err := c.Where(r).Mutate(r, muts...)
	if err != nil {
		return nil, fmt.Errorf("set external_ids: %w", err)
	}
	return append(wait, mops...), nil
}

// createBridgeOps inserts bridge name (with its internal port) marked as
// ours and adds it to the root row. It is guarded by a wait that no bridge of
// that name exists.
func createBridgeOps(c client.Client, rootUUID, name, datapath string) ([]ovsdb.Operation, error) {
	return vsdb.BridgeOps(c, rootUUID, vsdb.BridgeSpec{
		Name: name, Datapath: datapath, FailMode: vswitchd.BridgeFailModeSecure,
		OtherConfig: map[string]string{"disable-in-band": "true"},
		ExternalIDs: map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: KindBridge, owner.KeyName: name},
	})
}

// checkChassis refuses a system-id that SB already knows with a different
// encap IP, and an encap IP another chassis already uses.
// recordPathMTU lowers the deployment's underlay path MTU in the NB to
// o.PathMTU (when smaller than what is recorded).
func recordPathMTU(ctx context.Context, o JoinOptions) error {
	if o.NB == "" {
		return &names.FieldError{Field: "northbound endpoint", Problem: "is required with a path MTU (it is recorded in the Northbound database)"}
	}
	nb, err := dbconn.ConnectNB(ctx, o.NB)
	if err != nil {
		return fmt.Errorf("record path MTU %d: %w", o.PathMTU, err)
	}
	defer nb.Close()
	_, err = network.LowerPathMTU(ctx, nb, o.PathMTU)
	if _, denied := dbconn.IsPermission(err); denied {
		return fmt.Errorf("record path MTU %d: %w", o.PathMTU, ErrPathMTUAdminOnly)
	}
	return err
}

// ErrPathMTUAdminOnly: the node's NB endpoint (the ovlmgr control service)
// refused to lower the deployment's underlay path MTU, which lives in
// NB_Global and is the admin's to record.
var ErrPathMTUAdminOnly = errors.New("the underlay path MTU is in NB_Global, which only an admin may write (nodes reach the NB through the control service)")

func checkChassis(ctx context.Context, o JoinOptions) error {
	sb, err := joinSB(ctx, o)
	if err != nil {
		return fmt.Errorf("check system-id %q in SB: %w", o.SystemID, err)
	}
	defer sb.Close()
	var chassis []*sbdb.Chassis
	if err := dbconn.Select(ctx, sb, &sbdb.Chassis{}, &chassis); err != nil {
		return fmt.Errorf("check system-id %q in SB: %w", o.SystemID, err)
	}
	var encaps []*sbdb.Encap
	if err := dbconn.Select(ctx, sb, &sbdb.Encap{}, &encaps); err != nil {
		return fmt.Errorf("check system-id %q in SB: %w", o.SystemID, err)
	}
	ipsOf := map[string][]string{}
	for _, e := range encaps {
		ipsOf[e.ChassisName] = append(ipsOf[e.ChassisName], e.IP)
	}
	for _, ch := range chassis {
		ips := ipsOf[ch.Name]
		if ch.Name == o.SystemID {
			if len(ips) > 0 && !contains(ips, o.EncapIP) {
				return names.Says("system id", o.SystemID, "is already used by another chassis in SB (hostname %q, encap IP %s); choose another {system id}",
					ch.Hostname, strings.Join(ips, ","))
			}
			continue
		}
		if contains(ips, o.EncapIP) {
			return names.Says("encap ip", names.Shown(o.EncapIP), "is already used by chassis %q (hostname %q) in SB", ch.Name, ch.Hostname)
		}
	}
	return nil
}

// localIP checks that ip is assigned to an interface in this network
// namespace and returns that interface's name and MTU ("" and 0 if they
// cannot be read).
func localIP(ip net.IP) (name string, mtu int, err error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", 0, fmt.Errorf("list local addresses: %w", err)
	}
	var have []string
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
				name, mtu = l.Attrs().Name, l.Attrs().MTU
			}
			return name, mtu, nil
		}
		if !a.IP.IsLoopback() && !a.IP.IsLinkLocalUnicast() {
			have = append(have, a.IP.String())
		}
	}
	if len(have) == 0 {
		return "", 0, fmt.Errorf("not assigned to any local interface (this namespace has no usable address)")
	}
	return "", 0, fmt.Errorf("not assigned to any local interface (local addresses: %s)", strings.Join(have, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
