// Package metrics exports the cluster's state from the OVN Northbound and
// Southbound databases as Prometheus metrics. Cluster is a
// prometheus.Collector that reads NB and SB at scrape time (a handful of
// selects, no cache, no background state), so one exporter per deployment
// serves them; node metrics (tunnels, ACL log hits, CNI calls) come from
// each node's exporter (ovs/nodemetrics).
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/health"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// Namespace prefixes every metric name.
const Namespace = "ovlmgr"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

// The cluster metrics (docs/observability.md describes each).
var (
	descNetworks     = desc("networks", "Number of ovlmgr networks.")
	descPorts        = desc("network_ports", "Container ports of a network on a node.", "network", "node")
	descPortsUp      = desc("network_ports_up", "Container ports of a network on a node that OVN reports up (bound and flows installed).", "network", "node")
	descFree         = desc("network_free_addresses", "IPv4 addresses a network can still hand out (usable hosts minus gateway, excluded addresses and container ports).", "network")
	descChassis      = desc("chassis_up", "1 when the chassis (node) is registered in SB and its ovn-controller has caught up with the SB configuration, else 0.", "chassis", "hostname")
	descDBUp         = desc("ovsdb_up", "1 when the database server at the endpoint answered, else 0.", "db", "endpoint")
	descDBRole       = desc("ovsdb_role", "Always 1; role says what the server at the endpoint is for the database: leader, follower, standalone, relay, disconnected or unreachable.", "db", "endpoint", "role")
	descNbCfg        = desc("nb_cfg", "NB_Global nb_cfg: the sequence number of NB changes that asked to be tracked.")
	descLag          = desc("northd_lag", "How far behind NB_Global nb_cfg a stage is: sb (ovn-northd has written the change to SB) or hv (every chassis has applied it).", "stage")
	descScrapeErrors = desc("exporter_scrape_error", "1 when the last scrape could not read a source (nb, sb), else 0.", "source")
)

// Options configure a Cluster collector.
type Options struct {
	// NB and SB are comma lists of endpoints (several = a RAFT cluster).
	NB, SB string
	// Timeout bounds one scrape's database reads (default 5s).
	Timeout time.Duration
}

// Cluster collects the cluster metrics; see New.
type Cluster struct {
	o      Options
	mu     sync.Mutex
	nb, sb client.Client
}

// New returns a collector reading the NB and SB at o's endpoints. It
// connects lazily, at the first scrape, and again after a failed one.
func New(o Options) *Cluster {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return &Cluster{o: o}
}

// Close closes the collector's database connections.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range []client.Client{c.nb, c.sb} {
		if cl != nil {
			cl.Close()
		}
	}
	c.nb, c.sb = nil, nil
}

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNetworks, descPorts, descPortsUp, descFree, descChassis, descDBUp, descDBRole, descNbCfg, descLag, descScrapeErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads NB and SB now.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	roles := make(chan prometheus.Metric, 64)
	wg.Add(1)
	go func() { defer wg.Done(); members(ctx, "nb", "OVN_Northbound", c.o.NB, roles) }()
	wg.Add(1)
	go func() { defer wg.Done(); members(ctx, "sb", "OVN_Southbound", c.o.SB, roles) }()

	nbErr := c.collectNB(ctx, ch)
	sbErr := c.collectSB(ctx, ch)
	wg.Wait()
	close(roles)
	for m := range roles {
		ch <- m
	}
	ch <- gauge(descScrapeErrors, b2f(nbErr != nil), "nb")
	ch <- gauge(descScrapeErrors, b2f(sbErr != nil), "sb")
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// members reports each endpoint's reachability and role from its _Server db.
func members(ctx context.Context, db, dbName, endpoints string, ch chan<- prometheus.Metric) {
	eps, err := dbconn.ParseEndpoints(endpoints)
	if err != nil {
		return
	}
	for _, ep := range eps {
		st := health.Member(ctx, ep, dbName)
		role := st.Model
		switch {
		case st.Err != nil:
			role = "unreachable"
		case st.Model == "clustered" && !st.Connected:
			role = "disconnected"
		case st.Model == "clustered" && st.Leader:
			role = "leader"
		case st.Model == "clustered":
			role = "follower"
		}
		ch <- gauge(descDBUp, b2f(st.Err == nil), db, ep)
		ch <- gauge(descDBRole, 1, db, ep, role)
	}
}

// client returns the connection in *cl, connecting first if needed.
func (c *Cluster) client(ctx context.Context, cl *client.Client, endpoints string, connect func(context.Context, string) (client.Client, error)) (client.Client, error) {
	if *cl != nil && (*cl).Connected() {
		return *cl, nil
	}
	if *cl != nil {
		(*cl).Close()
		*cl = nil
	}
	n, err := connect(ctx, endpoints)
	if err != nil {
		return nil, err
	}
	*cl = n
	return n, nil
}

func (c *Cluster) collectNB(ctx context.Context, ch chan<- prometheus.Metric) error {
	nb, err := c.client(ctx, &c.nb, c.o.NB, dbconn.ConnectNB)
	if err != nil {
		return err
	}
	// One transaction, only the columns counted: at 1,000 networks and
	// 3,000 ports this is several times cheaper than network.List plus
	// port.List, which read every column.
	tx := dbops.NewTx(nb)
	swQ := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindNetwork))},
		func(ls *nbdb.LogicalSwitch) []any { return []any{&ls.Name, &ls.OtherConfig, &ls.ExternalIDs} })
	portQ := dbops.Query(tx, []ovsdb.Condition{dbops.Includes(owner.Selector(owner.KindPort))},
		func(p *nbdb.LogicalSwitchPort) []any { return []any{&p.UUID, &p.ExternalIDs, &p.Up} })
	gQ := dbops.Query(tx, nil, func(g *nbdb.NBGlobal) []any { return []any{&g.NbCfg, &g.SbCfg, &g.HvCfg} })
	if err := tx.Transact(ctx); err != nil {
		return err
	}
	switches, err := swQ.Rows()
	if err != nil {
		return err
	}
	ports, err := portQ.Rows()
	if err != nil {
		return err
	}
	globals, err := gQ.Rows()
	if err != nil {
		return err
	}
	type key struct{ net, node string }
	all, up, perNet := map[key]int{}, map[key]int{}, map[string]int{}
	for _, p := range ports {
		k := key{p.ExternalIDs[owner.KeyNetwork], p.ExternalIDs[owner.KeyNode]}
		all[k]++
		perNet[k.net]++
		if p.Up != nil && *p.Up {
			up[k]++
		}
	}
	ch <- gauge(descNetworks, float64(len(switches)))
	for _, ls := range switches {
		ch <- gauge(descFree, float64(network.FreeOf(ls, perNet[ls.Name])), ls.Name)
	}
	for k, n := range all {
		ch <- gauge(descPorts, float64(n), k.net, k.node)
		ch <- gauge(descPortsUp, float64(up[k]), k.net, k.node)
	}
	if len(globals) > 0 {
		g := globals[0]
		ch <- gauge(descNbCfg, float64(g.NbCfg))
		ch <- gauge(descLag, float64(max(0, g.NbCfg-g.SbCfg)), "sb")
		ch <- gauge(descLag, float64(max(0, g.NbCfg-g.HvCfg)), "hv")
	}
	return nil
}

func (c *Cluster) collectSB(ctx context.Context, ch chan<- prometheus.Metric) error {
	sb, err := c.client(ctx, &c.sb, c.o.SB, dbconn.ConnectSB)
	if err != nil {
		return err
	}
	chs, err := chassis.List(ctx, sb)
	if err != nil {
		return err
	}
	for _, x := range chs {
		ch <- gauge(descChassis, b2f(x.Connected), x.Name, x.Hostname)
	}
	return nil
}

// Handler serves the collectors' metrics, with the exporter process's own
// (process_*, go_*), in Prometheus' text format: the /metrics endpoint.
func Handler(cs ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	for _, c := range cs {
		reg.MustRegister(c)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
