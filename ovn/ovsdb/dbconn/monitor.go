package dbconn

import (
	"context"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/client"
)

// serialMonitors is the client Connect returns: a libovsdb client whose
// Monitor, MonitorAll and MonitorCancel never run at the same time.
// libovsdb v0.8.0 takes its monitor and RPC locks in opposite orders in
// Monitor (monitors, then RPC) and MonitorCancel (RPC, then monitors), so
// running them concurrently on one client can deadlock; its reconnect (RPC,
// then monitors) too, which no lock out here can order: the libovsdb copy's
// Monitor takes the RPC lock first (OVLMGR.md). The lock belongs to the
// connection: watches on different clients do not wait for each other.
type serialMonitors struct {
	client.Client
	mu sync.Mutex
	// cluster: connected to a clustered database's leader (several endpoints).
	cluster bool
}

// dropConnection makes the client reconnect (see transact).
func (c *serialMonitors) dropConnection() {
	if d, ok := c.Client.(interface{ DropConnection() }); ok {
		d.DropConnection()
	}
}

func (c *serialMonitors) Monitor(ctx context.Context, m *client.Monitor) (client.MonitorCookie, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.Monitor(ctx, m)
}

func (c *serialMonitors) MonitorAll(ctx context.Context) (client.MonitorCookie, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.MonitorAll(ctx)
}

func (c *serialMonitors) MonitorCancel(ctx context.Context, cookie client.MonitorCookie) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.MonitorCancel(ctx, cookie)
}
