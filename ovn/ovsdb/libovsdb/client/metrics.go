package client

// This copy of libovsdb's client keeps no Prometheus metrics: linking
// client_golang (and through it protobuf, procfs and net/http) cost every
// short-lived process that opens a client several milliseconds of package
// init (see ovn/ovsdb/libovsdb/OVLMGR.md). The counters below keep the
// client's call sites; they count nothing.

type counter struct{}

func (counter) Inc()                                {}
func (counter) Dec()                                {}
func (counter) Set(float64)                         {}
func (c counter) WithLabelValues(...string) counter { return c }

type metrics struct {
	numUpdates      counter
	numTableUpdates counter
	numDisconnects  counter
	numMonitors     counter
}

func (m *metrics) init(modelName string, namespace, subsystem string) {}

// Registerer is what WithMetricsRegistry accepts: in this copy nothing is
// ever registered on it.
type Registerer interface {
	MustRegister(...any)
}

func (m *metrics) register(r Registerer) {}

func (o *ovsdbClient) registerMetrics() {
	if !o.options.shouldRegisterMetrics || o.options.registry == nil {
		return
	}
	o.metrics.register(o.options.registry)
	o.options.shouldRegisterMetrics = false
}
