// Package metrics exports the cluster's state from the OVN Northbound and
// Southbound databases as Prometheus metrics, computed at scrape time.
package metrics

import "github.com/prometheus/client_golang/prometheus"

var _ prometheus.Collector = (*Cluster)(nil)
