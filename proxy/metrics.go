package proxy

import "github.com/prometheus/client_golang/prometheus"

// Reasons a connection ended, the values of the reason label. A connection
// that Guard ended with a stream error has the policy event as its reason,
// with underscores (backend_reset, not_well_formed, handshake_timeout, ...).
const (
	ReasonClientClosed     = "client_closed"      // the client closed (stream or TCP) first, and both sides finished
	ReasonBackendClosed    = "backend_closed"     // the backend closed first, and both sides finished
	ReasonHalfCloseTimeout = "half_close_timeout" // one side closed, the other did not finish within half_close
	ReasonClientError      = "client_error"       // the client socket failed (reset)
	ReasonBackendError     = "backend_error"      // the backend socket failed before relaying
	ReasonShutdown         = "shutdown"           // Guard closed the connection for shutdown
)

// Metrics are the Prometheus collectors of the proxy. A nil *Metrics is valid
// and records nothing.
type Metrics struct {
	open     *prometheus.GaugeVec
	accepted *prometheus.CounterVec
	closed   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	probes   *prometheus.CounterVec
}

// NewMetrics creates the proxy's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "guard_connections_open",
			Help: "Client connections currently held by Guard, by listener.",
		}, []string{"listener"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_connections_accepted_total",
			Help: "Client connections accepted, by listener.",
		}, []string{"listener"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_connections_closed_total",
			Help: "Client connections closed, by listener and reason.",
		}, []string{"listener", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_relayed_bytes_total",
			Help: "Bytes relayed, by listener and direction (client_to_backend, backend_to_client).",
		}, []string{"listener", "direction"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_keepalives_sent_total",
			Help: "Whitespace keepalives sent to quiet clients, by listener.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.open, m.accepted, m.closed, m.bytes, m.probes)
	return m
}

// listenerMetrics are the children of Metrics for one listener, resolved once so
// that the per-connection and per-byte paths do no label lookups.
type listenerMetrics struct {
	name       string
	m          *Metrics
	open       prometheus.Gauge
	accepted   prometheus.Counter
	bytes      [2]prometheus.Counter // indexed by direction
	keepalives prometheus.Counter
}

func (m *Metrics) forListener(name string) *listenerMetrics {
	if m == nil {
		return nil
	}
	return &listenerMetrics{
		name:     name,
		m:        m,
		open:     m.open.WithLabelValues(name),
		accepted: m.accepted.WithLabelValues(name),
		bytes: [2]prometheus.Counter{
			m.bytes.WithLabelValues(name, "client_to_backend"),
			m.bytes.WithLabelValues(name, "backend_to_client"),
		},
		keepalives: m.probes.WithLabelValues(name),
	}
}

func (lm *listenerMetrics) connAccepted() {
	if lm != nil {
		lm.accepted.Inc()
		lm.open.Inc()
	}
}

func (lm *listenerMetrics) connClosed(reason string) {
	if lm != nil {
		lm.open.Dec()
		lm.m.closed.WithLabelValues(lm.name, reason).Inc()
	}
}

func (lm *listenerMetrics) relayed(d direction, n int) {
	if lm != nil {
		lm.bytes[d].Add(float64(n))
	}
}

func (lm *listenerMetrics) probed() {
	if lm != nil {
		lm.keepalives.Inc()
	}
}
