package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster is a prometheus.Collector of cluster-wide metrics.
type Cluster struct{}

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {}
