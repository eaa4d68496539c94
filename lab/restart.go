package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Central is the node name of the central namespace in Kill and Restart.
const Central = "central"

// Daemon names accepted by Kill and Restart. On the central: nb, sb and
// northd (or their full names ovsdb-server-nb, ovsdb-server-sb,
// ovn-northd); on a node: ovsdb-server, ovs-vswitchd, ovn-controller, and
// in a lab with CNI servers ovlmgr-cni-serve.
var (
	CentralDaemons = []string{"nb", "sb", "northd"}
	NodeDaemons    = []string{"ovsdb-server", "ovs-vswitchd", "ovn-controller", CNIServerDaemon}
)

// CNIServerDaemon is the node's CNI server (`ovlmgr-cni serve`) in a lab
// brought up with Options.CNIServerBin.
const CNIServerDaemon = "ovlmgr-cni-serve"

// ErrUnknownDaemon is returned (wrapped) for a node or daemon name the lab
// does not have.
var ErrUnknownDaemon = errors.New("unknown lab daemon")

var centralAlias = map[string]string{"nb": "ovsdb-server-nb", "sb": "ovsdb-server-sb", "northd": "ovn-northd"}

// daemon returns the daemon called name on node ("central" or n1, n2, ...).
func (l *Lab) daemon(node, name string) (*daemon, *Node, error) {
	var ds []*daemon
	var n *Node
	allowed := NodeDaemons
	if node == Central {
		ds, allowed = l.centralDaemons(), CentralDaemons
		if full, ok := centralAlias[name]; ok {
			name = full
		} else if full, ok := l.memberAlias(context.Background(), name); ok {
			name = full
		}
	} else {
		var err error
		if n, err = l.Node(node); err != nil {
			return nil, nil, fmt.Errorf("%w: %v (or %s)", ErrUnknownDaemon, err, Central)
		}
		ds = n.daemons()
	}
	for _, d := range ds {
		if d.Name == name {
			return d, n, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: daemon %q on %s: allowed %s", ErrUnknownDaemon, name, node, strings.Join(allowed, ", "))
}

// Kill sends SIGKILL to a daemon (see Restart for the names) and returns
// once it has exited. Its pidfile stays, so Status reports it as not
// running until Restart starts it again. Killing a daemon that is not
// running is not an error.
func (l *Lab) Kill(ctx context.Context, node, name string) error {
	d, _, err := l.daemon(node, name)
	if err != nil {
		return err
	}
	pid, err := d.pid()
	if err != nil {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s on %s (pid %d): %w", d.Name, d.Node, pid, err)
	}
	for !Exited(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill %s on %s (pid %d): still running: %w", d.Name, d.Node, pid, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	l.logf("lab %s: %s on %s killed (pid %d)", l.Name, d.Name, d.Node, pid)
	return nil
}

// RestartOptions say how Restart takes a daemon down.
type RestartOptions struct {
	// Kill stops the daemon with SIGKILL (no clean shutdown) instead of
	// SIGTERM.
	Kill bool
	// DownFor keeps the daemon stopped this long before starting it again.
	DownFor time.Duration
}

// Restart stops a daemon (SIGTERM, or SIGKILL with o.Kill; a daemon that is
// not running is simply started), waits o.DownFor, starts it again with the
// lab's own command line and returns once the lab is healthy again (every
// daemon running, chassis registered, tunnels up). node is "central" (nb,
// sb, northd) or a node name (ovsdb-server, ovs-vswitchd, ovn-controller).
// After ovs-vswitchd starts, br-phy (re-created by ovs-vswitchd) gets the
// node's underlay IP and neighbour entry back, as in Up.
func (l *Lab) Restart(ctx context.Context, node, name string, o RestartOptions) error {
	d, n, err := l.daemon(node, name)
	if err != nil {
		return err
	}
	if o.DownFor < 0 {
		return fmt.Errorf("restart %s on %s: down-for %v: must not be negative", d.Name, d.Node, o.DownFor)
	}
	if o.Kill {
		err = l.Kill(ctx, node, name)
	} else {
		err = d.stop()
	}
	if err != nil {
		return err
	}
	if o.DownFor > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart %s on %s: %w", d.Name, d.Node, ctx.Err())
		case <-time.After(o.DownFor):
		}
	}
	if err := d.start(ctx); err != nil {
		return err
	}
	if d.Name == "ovs-vswitchd" {
		if err := l.plugPhys(ctx, n); err != nil {
			return fmt.Errorf("restart %s on %s: %w\n%s", d.Name, d.Node, err, d.lastLines(8))
		}
	}
	if err := l.waitReady(ctx); err != nil {
		return fmt.Errorf("restart %s on %s: %w", d.Name, d.Node, err)
	}
	l.logf("lab %s: %s on %s restarted", l.Name, d.Name, d.Node)
	return nil
}

// plugPhys waits for ovs-vswitchd to create br-phy on node n, puts the
// node's underlay IP on it and adds the permanent neighbour entries both
// ways (node -> central, central -> node).
func (l *Lab) plugPhys(ctx context.Context, n *Node) error {
	nh, closeN, err := handleAt(n.NetNSPath)
	if err != nil {
		return err
	}
	defer closeN()
	ch, closeC, err := handleAt(l.CentralNetNS)
	if err != nil {
		return err
	}
	defer closeC()
	if err := waitLink(ctx, nh, PhysBridge); err != nil {
		return err
	}
	if err := addAddrUp(nh, PhysBridge, n.EncapIP+"/24"); err != nil {
		return err
	}
	// A br-phy re-created by a restarted ovs-vswitchd is born with IPv6
	// disabled (the node's default, see upNode): it carries the IPv6
	// underlay address and its link-local one as on a fresh node.
	if err := n.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+PhysBridge+"/disable_ipv6", []byte("0"), 0o644)
	}); err != nil {
		return fmt.Errorf("enable IPv6 on %s: %w", PhysBridge, err)
	}
	if err := addAddr6(nh, PhysBridge, n.EncapIP6); err != nil {
		return err
	}
	if l.routed() {
		return l.plugRouted(nh, n)
	}
	// Static neighbour entries both ways: on a fresh underlay the first ARP
	// exchange is sometimes lost, and the kernel retries only after 1 s.
	if err := staticNeigh(nh, PhysBridge, CentralIP, underlayMAC); err != nil {
		return err
	}
	if err := l.memberNeighbours(nh, n); err != nil {
		return err
	}
	return staticNeigh(ch, underlayBr, n.EncapIP, n.mac())
}
