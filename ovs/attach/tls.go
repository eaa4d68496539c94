package attach

import (
	"context"
	"crypto/tls"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovsnode "github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vswitchd"
)

// nodeTLS returns the node's TLS identity (the Open_vSwitch SSL row that
// node join set) for ssl: endpoints, and the files it was loaded from, or
// nil when the process was given one (--ca-cert/--cert/--private-key,
// OVLMGR_* env), which then wins, or the node has none. The CNI plugin so
// needs no key path in its config. It is per call, never process state:
// one process may act for several nodes (tests, a lab).
//
// A session (s non-nil) keeps the loaded identity while the files' paths,
// sizes and modification times stay the same.
func nodeTLS(ctx context.Context, s *Session, ovs client.Client, root *vswitchd.OpenvSwitch) (*tls.Config, dbconn.TLSFiles) {
	if root.SSL == nil || !dbconn.TLSFilesFromEnv().Empty() {
		return nil, dbconn.TLSFiles{}
	}
	f, err := ovsnode.SSLFiles(ctx, ovs, root)
	if err != nil {
		return nil, dbconn.TLSFiles{}
	}
	var cfg *tls.Config
	if s != nil {
		cfg = s.tlsConfig(f)
	} else if cfg, err = f.Config(); err != nil {
		cfg = nil
	}
	if cfg == nil {
		return nil, dbconn.TLSFiles{}
	}
	return cfg, f
}
