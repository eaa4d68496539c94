package attach

import (
	"context"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
	"github.com/ovlmgr/ovlmgr/ovs/runfile"
)

// sweepEvery is how often ADD and DEL sweep this node's OVS ports whose NB
// port is gone (leftovers of `net delete --force`, of a port detached
// elsewhere): at most once in that time per node, beside the calls. The
// sweep costs a select of the node's interfaces and one of each one's NB
// port, so on every call it would grow with the node's containers. CNI GC
// and `ovlmgr node gc` always sweep.
const sweepEvery = 10 * time.Second

// SweepStampFile is the file, beside the node's Open_vSwitch db socket,
// whose modification time says when a call without a session last swept
// this node (a session keeps its own time).
const SweepStampFile = "ovlmgr-sweep.stamp"

// sweepDue reports whether a call without a session sweeps now: when no
// call stamped a sweep of the node whose db is at ovsEP within sweepEvery
// before now. A due call stamps now before it sweeps, so the calls that
// follow skip theirs. Two calls that read the stamp at once may both
// sweep, which is harmless (a sweep removes only what it read). Without
// a place for the stamp (a db that is not a unix: socket) or when it
// cannot be read or written, every call sweeps, as it always did. The
// stamp is never followed through a symlink (runfile).
func sweepDue(ovsEP string, now time.Time) bool {
	path := besideDB(ovsEP, SweepStampFile)
	if path == "" {
		return true
	}
	if mt, err := runfile.ModTime(path); err == nil {
		if age := now.Sub(mt); age >= 0 && age < sweepEvery {
			return false
		}
	}
	_ = runfile.Touch(path, now)
	return true
}

// sweepBeside sweeps this node's OVS ports whose NB port is gone beside
// the caller, when one is due: a session's sweep beside its calls
// (sweepSoon), else one of this call's own (sweepLocal) when sweepDue
// says so for the node's db at ovsEP. The caller calls what it returns,
// which waits for the sweep, before it closes nd or nb.
func sweepBeside(ctx context.Context, nd *node, nb client.Client, ovsEP string, log Logger) (wait func()) {
	if nd.session != nil {
		nd.session.sweepSoon(nd, nb)
		return func() {}
	}
	if !sweepDue(ovsEP, time.Now()) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sweepLocal(ctx, nd, nb, log)
	}()
	return func() { <-done }
}

// sweepLocal removes this node's OVS ports and veths whose NB port no
// longer exists (nodegc.Sweep: a select of the node's interfaces, one NB
// transaction of an indexed select per interface). Failures are logged
// only: the verb goes on.
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
