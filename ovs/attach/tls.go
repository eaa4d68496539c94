package attach

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovsnode "github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// useNodeTLS makes the node's TLS identity (the Open_vSwitch SSL row that
// node join set) this process's identity for ssl: endpoints, unless the
// process was given one (--ca-cert/--cert/--private-key, OVLMGR_* env).
// The CNI plugin so needs no key path in its config.
func useNodeTLS(ctx context.Context, ovs client.Client, root *vswitchd.OpenvSwitch) {
	if root.SSL == nil || !dbconn.TLSFilesFromEnv().Empty() {
		return
	}
	if f, err := ovsnode.SSLFiles(ctx, ovs, root); err == nil {
		dbconn.SetTLSFiles(f)
	}
}
