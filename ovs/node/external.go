package node

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// External network of a gateway node.
const (
	// KeyBridgeMappings is ovn-controller's physnet:bridge list.
	KeyBridgeMappings = "ovn-bridge-mappings"
	// KeyExternalBridge names the external bridge join created (leave deletes it).
	KeyExternalBridge = "ovlmgr.io/external-bridge"
	// KeyExternalPhysnet is the physical network join mapped (leave removes
	// only that mapping).
	KeyExternalPhysnet = "ovlmgr.io/external-physnet"
	// KindExternalBridge is the ovlmgr.io/kind of that bridge.
	KindExternalBridge = "external-bridge"
	// DefaultExternalBridge and DefaultPhysnet are External's defaults
	// (DefaultPhysnet is also ovn/gateway's default physical network).
	DefaultExternalBridge = "br-ex"
	DefaultPhysnet        = "external"
)

// External gives a node the external network: a bridge holding the
// physical interface, and ovn-bridge-mappings physnet:bridge so that
// ovn-controller connects localnet ports of that physical network (a
// router gateway's external switch) to it.
type External struct {
	// Interface is the kernel interface on the external network (required);
	// it is added to Bridge when join creates the bridge.
	Interface string
	// Bridge (default br-ex) is created with br-int's datapath type unless it
	// exists; an existing bridge is used as it is.
	Bridge string
	// Physnet is the physical network name (default "external").
	Physnet string
}

// externalOps checks e and returns the Open_vSwitch keys to set and the
// operations that create the bridge (none when it exists).
func externalOps(ctx context.Context, oc client.Client, root *vswitchd.OpenvSwitch, e *External, datapath string, force bool) (map[string]string, []ovsdb.Operation, error) {
	if e.Bridge == "" {
		e.Bridge = DefaultExternalBridge
	}
	if e.Physnet == "" {
		e.Physnet = DefaultPhysnet
	}
	if err := names.Validate("physnet", e.Physnet); err != nil {
		return nil, nil, err
	}
	if !idRE().MatchString(e.Bridge) || len(e.Bridge) > 15 || e.Bridge == IntegrationBridge {
		return nil, nil, names.Bad("external bridge", e.Bridge, "want 1-15 of A-Z a-z 0-9 _ . : - (not %s)", IntegrationBridge)
	}
	if e.Interface == "" {
		return nil, nil, names.Missing("external interface", "the interface on the external network")
	}
	if _, err := netlink.LinkByName(e.Interface); err != nil {
		return nil, nil, names.Bad("external interface", e.Interface, "no such interface on this node: %v", err)
	}
	mappings := parseMappings(root.ExternalIDs[KeyBridgeMappings])
	if cur, ok := mappings[e.Physnet]; ok && cur != e.Bridge && !force {
		return nil, nil, fmt.Errorf("%w: %w", names.Says("physnet", e.Physnet, "is already mapped to bridge %s in %s", cur, KeyBridgeMappings), ErrOtherRemote)
	}
	mappings[e.Physnet] = e.Bridge
	set := map[string]string{KeyBridgeMappings: formatMappings(mappings), KeyExternalPhysnet: e.Physnet}
	br, err := vsdb.Bridge(ctx, oc, e.Bridge)
	if err != nil {
		return nil, nil, err
	}
	if br != nil {
		return set, nil, nil
	}
	set[KeyExternalBridge] = e.Bridge
	ops, err := vsdb.BridgeOps(oc, root.UUID, vsdb.BridgeSpec{
		Name: e.Bridge, Datapath: datapath, Ports: []string{e.Interface}, Prefix: "ext",
		ExternalIDs: map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: KindExternalBridge, owner.KeyName: e.Bridge},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", e.Bridge, err)
	}
	return set, ops, nil
}

// leaveExternalOps deletes the external bridge join created.
func leaveExternalOps(ctx context.Context, oc client.Client, root *vswitchd.OpenvSwitch) ([]ovsdb.Operation, error) {
	name := root.ExternalIDs[KeyExternalBridge]
	if name == "" {
		return nil, nil
	}
	br, err := vsdb.Bridge(ctx, oc, name)
	if err != nil || br == nil || !owner.Owned(br.ExternalIDs, KindExternalBridge) {
		return nil, err
	}
	del, err := oc.Where(br).Delete()
	if err != nil {
		return nil, err
	}
	r := &vswitchd.OpenvSwitch{UUID: root.UUID}
	mops, err := oc.Where(r).Mutate(r, mutationDelBridge(r, br.UUID))
	if err != nil {
		return nil, err
	}
	return append(mops, del...), nil
}

func parseMappings(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), ":"); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

func formatMappings(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+":"+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func mutationDelBridge(r *vswitchd.OpenvSwitch, uuid string) model.Mutation {
	return model.Mutation{Field: &r.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{uuid}}
}

// leaveMappings returns the bridge mappings left once join's own is
// removed ("" when none is left).
func leaveMappings(ids map[string]string) string {
	m := parseMappings(ids[KeyBridgeMappings])
	delete(m, ids[KeyExternalPhysnet])
	return formatMappings(m)
}
