package node

import (
	"context"
	"fmt"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// SetICGateway makes the node an OVN interconnection gateway of its site
// (Open_vSwitch external_ids ovn-is-interconn=true; ovn-controller then
// marks its chassis, ovn-ic lists it in IC-SB) or stops it being one.
// ovsEndpoint is the node's Open_vSwitch db ("" = dbconn.DefaultOVS()).
func SetICGateway(ctx context.Context, ovsEndpoint string, on bool) error {
	if ovsEndpoint == "" {
		ovsEndpoint = dbconn.DefaultOVS()
	}
	oc, err := vsdb.Connect(ctx, ovsEndpoint)
	if err != nil {
		return fmt.Errorf("set interconnection gateway: %w", err)
	}
	defer oc.Close()
	root, err := vsdb.Root(ctx, oc)
	if err != nil {
		return fmt.Errorf("set interconnection gateway: %w", err)
	}
	set, del := map[string]string{KeyInterconn: "true"}, []string(nil)
	if !on {
		set, del = nil, []string{KeyInterconn}
	}
	ops, err := setKeysOps(oc, root, set, del)
	if err != nil {
		return fmt.Errorf("set interconnection gateway: %w", err)
	}
	if _, err := dbconn.Transact(ctx, oc, ops...); err != nil {
		return fmt.Errorf("set interconnection gateway: %w", err)
	}
	return nil
}
