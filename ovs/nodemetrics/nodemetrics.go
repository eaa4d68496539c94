// Package nodemetrics exports one node's metrics: its CNI calls (latency
// histograms and errors by CNI code, from the counters file the plugin
// keeps, ovs/cnistats), ACL log hits per policy and verdict (from
// ovn-controller's log) and its tunnels (from the node's Open_vSwitch db).
// One node exporter runs on every node (`ovlmgr exporter --node`); the
// cluster metrics come from ovn/metrics, once per deployment.
package nodemetrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovlmgr/ovlmgr/ovn/events"
	"github.com/ovlmgr/ovlmgr/ovn/metrics"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
}

// The node metrics (docs/observability.md describes each).
var (
	descCNIDuration = desc("cni_duration_seconds", "Time a CNI verb took inside ovlmgr-cni on this node.", "node", "verb")
	descCNIErrors   = desc("cni_errors_total", "CNI calls on this node that failed, by verb and CNI error code (255: codes above 254).", "node", "verb", "code")
	descACLHits     = desc("acl_log_hits_total", "acl_log lines of ovn-controller on this node: packets a logging ACL matched (rate-limited by the log meter), by policy and verdict.", "node", "network", "policy", "verdict")
	descTunnelUp    = desc("tunnel_up", "1 when the tunnel interface to a remote node is up (with BFD enabled: BFD state up; else no error and link up), else 0.", "node", "interface", "remote", "bfd")
	descNodeErr     = desc("node_scrape_error", "1 when the last scrape could not read a source on this node (cni, acl-log, ovs), else 0.", "node", "source")
)

// Options configure a node Collector.
type Options struct {
	// Node names the node in labels (the chassis name, system-id).
	Node string
	// CNIStats is the plugin's counters file (cnistats.File()).
	CNIStats string
	// ACLLog is ovn-controller's log file ("" for none).
	ACLLog string
	// OVS is the node's Open_vSwitch db endpoint ("" for no tunnel metrics).
	OVS string
	// Resolver maps ACL names to policies (nil: the ACL name is the policy).
	Resolver *events.Resolver
}

// Collector is a prometheus.Collector of one node's metrics.
type Collector struct {
	o    Options
	mu   sync.Mutex
	ovs  client.Client
	tail tailer
	hits map[hitKey]float64
}

type hitKey struct{ acl, verdict string }

// New returns a node collector.
func New(o Options) *Collector {
	return &Collector{o: o, tail: tailer{path: o.ACLLog}, hits: map[hitKey]float64{}}
}

// Close closes the collector's database connection.
func (c *Collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ovs != nil {
		c.ovs.Close()
		c.ovs = nil
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCNIDuration, descCNIErrors, descACLHits, descTunnelUp, descNodeErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errGauge := func(source string, err error) {
		v := 0.0
		if err != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descNodeErr, prometheus.GaugeValue, v, c.o.Node, source)
	}
	errGauge("cni", c.collectCNI(ch))
	if c.o.ACLLog != "" {
		errGauge("acl-log", c.collectACL(ctx, ch))
	}
	if c.o.OVS != "" {
		errGauge("ovs", c.collectTunnels(ctx, ch))
	}
}

func (c *Collector) collectCNI(ch chan<- prometheus.Metric) error {
	s, err := cnistats.Read(c.o.CNIStats)
	if errors.Is(err, cnistats.ErrNoFile) {
		s, err = &cnistats.Stats{}, nil
	}
	if err != nil {
		return err
	}
	for _, v := range cnistats.Verbs {
		vs := s[v.Verb]
		buckets := map[float64]uint64{}
		var cum uint64
		for i, b := range cnistats.Bounds {
			cum += vs.Buckets[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descCNIDuration, vs.Count, vs.Sum.Seconds(), buckets, c.o.Node, v.Name)
		for code, n := range vs.Errors {
			ch <- prometheus.MustNewConstMetric(descCNIErrors, prometheus.CounterValue, float64(n), c.o.Node, v.Name, strconv.Itoa(int(code)))
		}
	}
	return nil
}

func (c *Collector) collectACL(ctx context.Context, ch chan<- prometheus.Metric) error {
	err := c.tail.read(func(line string) {
		if h, ok := events.ParseACLLog(line); ok {
			c.hits[hitKey{h.ACL, h.Verdict}]++
		}
	})
	for k, n := range c.hits {
		pol, network := k.acl, ""
		if c.o.Resolver != nil {
			pol, network = c.o.Resolver.ACL(ctx, k.acl)
		}
		ch <- prometheus.MustNewConstMetric(descACLHits, prometheus.CounterValue, n, c.o.Node, network, pol, k.verdict)
	}
	return err
}

func (c *Collector) collectTunnels(ctx context.Context, ch chan<- prometheus.Metric) error {
	if c.ovs == nil || !c.ovs.Connected() {
		if c.ovs != nil {
			c.ovs.Close()
		}
		cl, err := vsdb.Connect(ctx, c.o.OVS)
		if err != nil {
			c.ovs = nil
			return err
		}
		c.ovs = cl
	}
	for _, typ := range []string{"geneve", "vxlan", "stt"} {
		ifs, err := vsdb.Interfaces(ctx, c.ovs, typ)
		if err != nil {
			return err
		}
		for _, i := range ifs {
			bfd := i.BFD["enable"] == "true"
			up := i.Error == nil && (i.LinkState == nil || *i.LinkState == "up")
			if bfd {
				up = i.BFDStatus["state"] == "up"
			}
			v := 0.0
			if up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descTunnelUp, prometheus.GaugeValue, v, c.o.Node, i.Name, i.Options["remote_ip"], strconv.FormatBool(bfd))
		}
	}
	return nil
}

// tailer reads the lines appended to a file since its last call, starting
// over when the file is replaced or truncated (log rotation).
type tailer struct {
	path string
	f    *os.File
	ino  uint64
	off  int64
}

func (t *tailer) read(line func(string)) error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return err
	}
	ino := uint64(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	if t.f == nil || ino != t.ino || fi.Size() < t.off {
		if t.f != nil {
			t.f.Close()
		}
		if t.f, err = os.Open(t.path); err != nil {
			t.f = nil
			return err
		}
		t.ino, t.off = ino, 0
	}
	if _, err := t.f.Seek(t.off, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(t.f, 64<<10)
	for {
		s, err := r.ReadString('\n')
		if err != nil {
			// A last line without its newline is read again next time.
			return nil
		}
		t.off += int64(len(s))
		line(s[:len(s)-1])
	}
}

// DefaultACLLog is ovn-controller's log on a node: $OVN_LOGDIR/ovn-controller.log,
// OVN_LOGDIR defaulting to /var/log/ovn.
func DefaultACLLog() string {
	dir := os.Getenv("OVN_LOGDIR")
	if dir == "" {
		dir = "/var/log/ovn"
	}
	return filepath.Join(dir, "ovn-controller.log")
}

// ForThisNode fills o's empty fields from this node: the name from the
// Open_vSwitch db's system-id, the CNI counters file (cnistats.File()),
// ovn-controller's log (DefaultACLLog) and, when nb is empty, the NB
// endpoint the node was joined with (for the ACL name resolver). It returns
// the collector and the NB client of its resolver (nil without NB; close it).
func ForThisNode(ctx context.Context, o Options, nb string) (*Collector, client.Client, error) {
	if o.OVS == "" {
		o.OVS = dbconn.DefaultOVS()
	}
	if o.CNIStats == "" {
		o.CNIStats = cnistats.File()
	}
	if o.ACLLog == "" {
		o.ACLLog = DefaultACLLog()
	}
	if o.Node == "" || nb == "" {
		ovs, err := vsdb.Connect(ctx, o.OVS)
		if err != nil {
			return nil, nil, fmt.Errorf("node exporter: %w", err)
		}
		root, err := vsdb.Root(ctx, ovs)
		ovs.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("node exporter: %w", err)
		}
		if o.Node == "" {
			o.Node = root.ExternalIDs[node.KeySystemID]
		}
		if nb == "" {
			nb = root.ExternalIDs[node.KeyNB]
		}
	}
	if o.Node == "" {
		return nil, nil, fmt.Errorf("node exporter: this node has no system-id (run ovlmgr node join) and no --node-name was given")
	}
	var nbc client.Client
	if nb != "" && o.Resolver == nil {
		c, err := dbconn.ConnectNB(ctx, nb)
		if err != nil {
			return nil, nil, fmt.Errorf("node exporter: %w", err)
		}
		nbc, o.Resolver = c, events.NewResolver(c)
	}
	return New(o), nbc, nil
}

// Node is the node's name in the collector's labels.
func (c *Collector) Node() string { return c.o.Node }

// ACLLog is the ovn-controller log file the collector reads.
func (c *Collector) ACLLog() string { return c.o.ACLLog }
