package proxy

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// This file is the proxy's Prometheus metrics and the reasons a
// connection ends with (the reason label).

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
	ReasonTLSFailed        = "tls_failed"         // the client's TLS handshake failed
	ReasonACMEChallenge    = "acme_challenge"     // an ACME CA's tls-alpn-01 validation, closed after the handshake
	ReasonProxyProtocol    = "proxy_protocol"     // a trusted load balancer sent no valid PROXY header
)

// Metrics are the Prometheus collectors of the proxy. A nil *Metrics is valid
// and records nothing.
type Metrics struct {
	open     *prometheus.GaugeVec
	accepted *prometheus.CounterVec
	closed   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	probes   *prometheus.CounterVec
	plus     *prometheus.CounterVec
	info     *prometheus.GaugeVec

	admittedTotal *prometheus.CounterVec
	rejectedTotal *prometheus.CounterVec
	addrRejected  *prometheus.CounterVec
	retries       *prometheus.CounterVec
	wait          *prometheus.HistogramVec

	srv atomic.Pointer[Server] // read by the admission collector at scrape time
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
	m.plus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guard_backend_channel_binding_offered_total",
		Help: "Streams on which the backend offered SASL -PLUS mechanisms through a TLS-terminating listener (they cannot work; see docs/tls.md), by listener.",
	}, []string{"listener"})
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "guard_listener_info",
		Help: "1 for each listener, with the transport its clients come in on (tcp, websocket) and the kind of stream it takes (c2s, s2s): join on listener to split any listener metric by transport or stream.",
	}, []string{"listener", "transport", "stream"})
	m.admittedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guard_admission_admitted_total",
		Help: "Streams admitted to a backend (a slot taken and paced), by backend.",
	}, []string{"backend"})
	m.rejectedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guard_admission_rejected_total",
		Help: "Streams refused admission to a backend, by backend and reason (queue_full, queue_timeout).",
	}, []string{"backend", "reason"})
	m.addrRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guard_address_rejected_total",
		Help: "Connections refused by per-address limits, by listener and reason (address_limit, rate_limited, table_full).",
	}, []string{"listener", "reason"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "guard_backend_retries_total",
		Help: "Backend connections tried again after failing before the backend's stream header, by backend and the failure (backend_refused, backend_reset, backend_closed).",
	}, []string{"backend", "reason"})
	m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "guard_admission_wait_seconds",
		Help:    "Time admitted streams waited for a backend slot and the pacer, by backend.",
		Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"backend"})
	reg.MustRegister(m.open, m.accepted, m.closed, m.bytes, m.probes, m.plus, m.info,
		m.admittedTotal, m.rejectedTotal, m.addrRejected, m.retries, m.wait, admissionCollector{m})
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

func (m *Metrics) setServer(s *Server) { m.srv.Store(s) }

func (lm *listenerMetrics) admitted(backend string, waited time.Duration) {
	if lm != nil {
		lm.m.admittedTotal.WithLabelValues(backend).Inc()
		lm.m.wait.WithLabelValues(backend).Observe(waited.Seconds())
	}
}

func (lm *listenerMetrics) rejected(backend, reason string) {
	if lm != nil {
		lm.m.rejectedTotal.WithLabelValues(backend, reason).Inc()
	}
}

func (lm *listenerMetrics) retried(backend, reason string) {
	if lm != nil {
		lm.m.retries.WithLabelValues(backend, reason).Inc()
	}
}

func (lm *listenerMetrics) addrRejected(reason string) {
	if lm != nil {
		lm.m.addrRejected.WithLabelValues(lm.name, reason).Inc()
	}
}

// admissionCollector reports each backend gate's state at scrape time.
type admissionCollector struct{ m *Metrics }

var (
	backendStreamsDesc = prometheus.NewDesc("guard_backend_streams",
		"Streams holding an admission slot of a backend.", []string{"backend"}, nil)
	backendCapacityDesc = prometheus.NewDesc("guard_backend_streams_limit",
		"The admission cap (max_streams) of a backend.", []string{"backend"}, nil)
	queueDepthDesc = prometheus.NewDesc("guard_admission_queue_length",
		"Clients waiting in a backend's admission queue.", []string{"backend"}, nil)
	nodeUpDesc = prometheus.NewDesc("guard_backend_node_up",
		"1 if a backend node takes new streams (healthy and not ejected), else 0.", []string{"backend", "node"}, nil)
	nodeStreamsDesc = prometheus.NewDesc("guard_backend_node_streams",
		"Streams open to a backend node.", []string{"backend", "node"}, nil)
	nodeLearnedDesc = prometheus.NewDesc("guard_backend_node_streams_learned_limit",
		"The stream cap adaptive admission has learned for a backend node.", []string{"backend", "node"}, nil)
)

func (c admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backendStreamsDesc
	ch <- backendCapacityDesc
	ch <- queueDepthDesc
	ch <- nodeUpDesc
	ch <- nodeStreamsDesc
	ch <- nodeLearnedDesc
}

func (c admissionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.srv.Load()
	if s == nil {
		return
	}
	s.mu.Lock()
	states := make([]*backendState, 0, len(s.backends))
	for _, st := range s.backends {
		states = append(states, st)
	}
	s.mu.Unlock()
	for _, bs := range s.Backends() {
		for _, n := range bs.Nodes {
			up := 0.0
			if n.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(nodeUpDesc, prometheus.GaugeValue, up, bs.Name, n.Address)
			ch <- prometheus.MustNewConstMetric(nodeStreamsDesc, prometheus.GaugeValue, float64(n.Streams), bs.Name, n.Address)
			if n.LearnedMaxStreams > 0 {
				ch <- prometheus.MustNewConstMetric(nodeLearnedDesc, prometheus.GaugeValue, float64(n.LearnedMaxStreams), bs.Name, n.Address)
			}
		}
	}
	for _, st := range states {
		g := st.gate.Load()
		if g == nil {
			continue
		}
		gs := g.Stats()
		ch <- prometheus.MustNewConstMetric(backendStreamsDesc, prometheus.GaugeValue, float64(gs.InUse), st.name)
		ch <- prometheus.MustNewConstMetric(backendCapacityDesc, prometheus.GaugeValue, float64(gs.Capacity), st.name)
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(gs.Waiting), st.name)
	}
}

func (lm *listenerMetrics) channelBindingOffered() {
	if lm != nil {
		lm.m.plus.WithLabelValues(lm.name).Inc()
	}
}

// Transports, the values of guard_listener_info's transport label.
const (
	TransportTCP       = "tcp"
	TransportWebSocket = "websocket"
)

// transport names how cfg's clients come in.
func transport(cfg *ListenerConfig) string {
	if cfg.WebSocket != nil {
		return TransportWebSocket
	}
	return TransportTCP
}

// setTransport records the transport and stream kind of listener name (a
// reload may change them on the same listener).
func (m *Metrics) setTransport(name, t string, k StreamKind) {
	if m == nil {
		return
	}
	m.info.DeletePartialMatch(prometheus.Labels{"listener": name})
	m.info.WithLabelValues(name, t, k.Short()).Set(1)
}
