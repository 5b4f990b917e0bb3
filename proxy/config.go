package proxy

import (
	"crypto/tls"
	"strconv"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is what a listener and a backend are configured with, and the
// defaults: the values a configured listener or backend has when it sets
// nothing (the config package decodes into these types and starts from
// these values), and withDefaults, which fills in what a caller left zero
// where zero is not a setting of its own.

// The defaults of the settings below. Those whose zero is a setting (0: off,
// no cap, never) apply only where a configuration starts from them; the rest
// also fill in a zero (withDefaults).
const (
	DefaultHandshake    = 10 * time.Second
	DefaultProbe        = 60 * time.Second // zero: no probes
	DefaultProbeTimeout = 30 * time.Second
	DefaultHalfClose    = 5 * time.Second

	DefaultConnectTimeout = 2 * time.Second
	DefaultReplyTimeout   = 5 * time.Second
	DefaultRetries        = 2     // zero: never
	DefaultMaxStreams     = 10000 // a sane cap for one Openfire node; zero: no cap
	DefaultQueueSize      = 1000  // zero: no queue
	DefaultQueueTimeout   = 10 * time.Second

	DefaultHealthTimeout = 2 * time.Second
	DefaultHealthDomain  = "localhost"

	DefaultWebSocketPath = "/xmpp-websocket" // Prosody's; Openfire serves /ws/, ejabberd /ws
)

// DefaultTimeouts are the timeouts of a listener that sets none.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Handshake: DefaultHandshake, Probe: DefaultProbe,
		ProbeTimeout: DefaultProbeTimeout, HalfClose: DefaultHalfClose,
	}
}

// DefaultXMLLimits are the XML limits of a listener that sets none: the
// xmpp package's.
func DefaultXMLLimits() XMLLimits {
	return XMLLimits{MaxStanzaSize: xmpp.DefaultMaxUnit, MaxHeaderSize: xmpp.DefaultMaxHeader, Advertise: true}
}

// DefaultAddrLimits are the per-address limits of a listener that sets
// none: no limit, in an address table of the limits package's size.
func DefaultAddrLimits() AddrLimits {
	return AddrLimits{TrackedAddresses: limits.DefaultMaxKeys}
}

// DefaultConnLog is the connection log of a configuration that sets none:
// every end.
func DefaultConnLog() ConnLog {
	return ConnLog{Mode: ConnLogAll, Sample: 1}
}

// DefaultBackend is a backend that sets nothing but its name and where it
// is: adaptive admission on, with the limits package's defaults.
func DefaultBackend() Backend {
	return Backend{
		ConnectTimeout: DefaultConnectTimeout, ReplyTimeout: DefaultReplyTimeout, Retries: DefaultRetries,
		Admission: Admission{MaxStreams: DefaultMaxStreams, QueueSize: DefaultQueueSize, QueueTimeout: DefaultQueueTimeout},
		Adaptive: &limits.AdaptiveConfig{
			Min: limits.DefaultAdaptiveMin, Initial: limits.DefaultAdaptiveInitial,
			Tolerance: limits.DefaultAdaptiveTolerance, Reprobe: limits.DefaultAdaptiveReprobe,
		},
	}
}

// Timeouts bound the phases of one connection.
type Timeouts struct {
	// Handshake is how long a new client has to start its stream.
	Handshake time.Duration
	// Idle closes a stream with no bytes either way for this long; 0 is off.
	Idle time.Duration
	// Probe is the quiet time after which the client gets a whitespace
	// keepalive; 0 is off.
	Probe time.Duration
	// ProbeTimeout bounds how long sent data may go unacknowledged by the
	// client (TCP_USER_TIMEOUT) when probes are on.
	ProbeTimeout time.Duration
	// HalfClose is the time the other side gets to finish after one side's
	// FIN or </stream:stream>, and the bound of every lingering close.
	HalfClose time.Duration
}

// XMLLimits bound what a listener's tokenizers accept.
type XMLLimits struct {
	// MaxStanzaSize bounds a top-level element either way (0: the xmpp
	// package's default); MaxHeaderSize bounds a stream header.
	MaxStanzaSize, MaxHeaderSize int
	// MaxDepth bounds the nesting of the client's stanzas (0: only their
	// size does); the backend's are bounded by their size alone.
	MaxDepth int
	// Advertise puts these bounds (MaxStanzaSize, and the idle timeout) in
	// the stream features the client gets (XEP-0478 stream limits), where
	// the backend says a looser one or none (streamlimits.go).
	Advertise bool
}

// Backend says where and how to reach the XMPP server behind a listener.
type Backend struct {
	Name           string
	Address        string
	ConnectTimeout time.Duration
	// ReplyTimeout bounds the wait for the backend's stream header.
	ReplyTimeout time.Duration
	// ProxyProtocol, if 1 or 2, makes Guard send a PROXY protocol header of
	// that version with the client's address first on every connection.
	ProxyProtocol int
	// TLS, if not nil, makes Guard speak Direct TLS to the backend
	// (re-encryption), verified as the configuration says.
	TLS *tls.Config
	// Nodes is the pool of servers; empty means Address alone. Streams go
	// to the usable node with the fewest open streams; a failed connection
	// is retried on the next (see Retries).
	Nodes []Node
	// Health configures active health checks of the nodes.
	Health HealthCheck
	// Admission is the backend's stream cap, queue and pacing. Listeners
	// naming the same backend (by Name) share one gate and one pacer.
	Admission Admission
	// Retries is how many times a connection that fails before the
	// backend's stream header is tried again (connect.go); 0: never.
	Retries int
	// Adaptive, if not nil, turns on adaptive admission (adaptive.go):
	// each node's cap is learned within Admission.MaxStreams (or the
	// node's own). Max is set per node.
	Adaptive *limits.AdaptiveConfig
}

// Node is one server of a backend pool.
type Node struct {
	Address string
	// MaxStreams caps the streams open to this node; 0 = no cap of its own
	// (the backend's cap still applies).
	MaxStreams int
}

// HealthCheck configures the active checks of a backend's nodes: every
// Interval Guard opens a stream to each node as a client would (to Domain,
// DefaultHealthDomain if empty) and expects a stream header and features
// within Timeout (DefaultHealthTimeout if 0), then closes the stream
// cleanly. A failed check takes the node out; a passing check brings it
// back. Interval 0 disables active checks.
type HealthCheck struct {
	Interval time.Duration
	Timeout  time.Duration
	Domain   string
}

// ListenerConfig describes one listening socket and where its clients go.
type ListenerConfig struct {
	Name     string
	Address  string
	Backend  Backend
	Timeouts Timeouts
	// XMLLimits bound the client's stream header and stanzas, and the
	// backend's stanzas.
	XMLLimits
	// ConnLog is the connection log: a line at info for every stream's end.
	ConnLog ConnLog
	// Policy decides the stream errors; nil uses the defaults.
	Policy *policy.Policy
	// Limits are the per-client-address limits and byte-rate shaping.
	Limits AddrLimits
	// TLS is how the listener treats TLS.
	TLS TLS
	// ProxyProtocol: connections from these addresses (a layer-4 load
	// balancer) start with a PROXY protocol header, which gives the client's
	// real address to per-address limits, logs and the backend. Headers
	// from anyone else are not read (and are not XMPP).
	ProxyProtocol ProxyProtocol
	// Routes send streams by their to domain (case-insensitive) to other
	// backends; a domain without a route goes to Backend, or, when Backend
	// has no address, is refused with host-unknown.
	Routes map[string]Backend
	// Raw relays bytes without XMPP framing (for TLS passthrough, and as
	// the baseline of the framing benchmarks): no stream errors, only the
	// close state machine and timeouts.
	Raw bool
	// WebSocket, if not nil, makes the listener take XMPP over WebSocket
	// (RFC 7395) instead of c2s over TCP: ws://, or wss:// with TLS mode
	// Direct. Guard speaks plain c2s to the backend.
	WebSocket *WebSocket
	// Stream is the kind of stream the listener takes: client-to-server
	// (the zero value) or server-to-server (federation, s2s.go).
	Stream StreamKind
}

// StreamKind is the kind of XMPP stream a listener takes.
type StreamKind uint8

const (
	// StreamClient: c2s, jabber:client streams.
	StreamClient StreamKind = iota
	// StreamServer: s2s, jabber:server streams from remote servers. Guard
	// frames the stream until STARTTLS, then relays the TLS between the
	// remote server and the backend unchanged (TLS mode None), or relays
	// Direct TLS routed by its SNI (TLS mode Passthrough).
	StreamServer
)

// String is the stream kind as the configuration names it: "client" or
// "server".
func (k StreamKind) String() string { return enumName(streamKindNames[:], int(k), "StreamKind") }

var streamKindNames = [...]string{StreamClient: "client", StreamServer: "server"}

// Short is the stream kind as metrics and logs name it: "c2s" or "s2s".
func (k StreamKind) Short() string {
	if k == StreamServer {
		return "s2s"
	}
	return "c2s"
}

// ns is the content namespace of the kind's streams.
func (k StreamKind) ns() string {
	if k == StreamServer {
		return xmpp.ServerNS
	}
	return xmpp.ClientNS
}

// WebSocket is a WebSocket listener's setting.
type WebSocket struct {
	// Path is where the upgrade is accepted; DefaultWebSocketPath if "".
	Path string
	// AllowedOrigins are the Origin values a browser's upgrade may carry
	// (scheme://host[:port]); "*" allows any. Empty: only the origin of
	// the request's own Host. A request without Origin (not a browser) is
	// not checked.
	AllowedOrigins []string
	// TrustedProxies are the addresses (a reverse proxy in front of Guard)
	// whose X-Forwarded-For or Forwarded header gives the client's address
	// to per-address limits, logs and the backend.
	TrustedProxies proxyproto.Trusted
}

// ProxyProtocol is a listener's PROXY protocol setting.
type ProxyProtocol struct {
	Trusted proxyproto.Trusted
}

// TLSMode says how a listener treats TLS.
type TLSMode int

const (
	// TLSNone: plaintext XMPP (for loopback or a trusted network).
	TLSNone TLSMode = iota
	// TLSStartTLS: Guard answers the client's first stream itself, offers
	// <starttls/> as required (RFC 6120 5.3.1), terminates TLS, and opens
	// the backend stream with the client's restarted header.
	TLSStartTLS
	// TLSDirect: TLS from the first byte (XEP-0368), terminated by Guard.
	TLSDirect
	// TLSPassthrough: Guard does not terminate TLS; it relays bytes (raw
	// mode) with its limits, timeouts and close handling, and cannot speak
	// XMPP on the connection.
	TLSPassthrough
)

var tlsModeNames = [...]string{TLSNone: "none", TLSStartTLS: "starttls", TLSDirect: "direct", TLSPassthrough: "passthrough"}

// String returns the mode's name in the configuration file: "none",
// "starttls", "direct" or "passthrough".
func (m TLSMode) String() string { return enumName(tlsModeNames[:], int(m), "TLSMode") }

// enumName returns names[i], the name of the value i of the enumeration
// typ, or typ(i) for a value without a name.
func enumName(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return typ + "(" + strconv.Itoa(i) + ")"
}

// Terminates reports whether Guard terminates TLS in mode m.
func (m TLSMode) Terminates() bool {
	return m == TLSStartTLS || m == TLSDirect
}

// TLS is a listener's TLS setting.
type TLS struct {
	Mode TLSMode
	// Config is the server configuration (certificates, ALPN
	// "xmpp-client" for Direct TLS); required for StartTLS and Direct.
	Config *tls.Config
}

// withDefaults fills in what a caller left zero.
func (c ListenerConfig) withDefaults() ListenerConfig {
	if c.Policy == nil {
		c.Policy = defaultPolicy
	}
	if c.TLS.Mode == TLSPassthrough {
		c.Raw = true
	}
	if c.WebSocket != nil && c.WebSocket.Path == "" {
		ws := *c.WebSocket
		ws.Path = DefaultWebSocketPath
		c.WebSocket = &ws
	}
	orDefault(&c.Timeouts.Handshake, DefaultHandshake)
	orDefault(&c.Timeouts.HalfClose, DefaultHalfClose)
	orDefault(&c.Timeouts.ProbeTimeout, DefaultProbeTimeout)
	c.Backend = c.Backend.withDefaults()
	if len(c.Routes) > 0 {
		routes := make(map[string]Backend, len(c.Routes))
		for d, b := range c.Routes {
			routes[d] = b.withDefaults()
		}
		c.Routes = routes
	}
	return c
}

// withDefaults fills in what a caller left zero.
func (b Backend) withDefaults() Backend {
	orDefault(&b.ConnectTimeout, DefaultConnectTimeout)
	orDefault(&b.ReplyTimeout, DefaultReplyTimeout)
	orDefault(&b.Admission.QueueTimeout, DefaultQueueTimeout)
	return b
}

// orDefault sets *v, a setting left zero (or below), to def.
func orDefault[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

var defaultPolicy = func() *policy.Policy {
	p, err := policy.New(policy.Config{})
	if err != nil {
		panic(err)
	}
	return p
}()

// Admission settings of a backend, shared by every listener that uses it.
type Admission struct {
	// MaxStreams caps the streams open to the backend at once; 0 = no cap.
	MaxStreams int
	// QueueSize is how many clients may wait for a slot; QueueTimeout is
	// the longest one waits.
	QueueSize    int
	QueueTimeout time.Duration
	// NewStreamsPerSecond paces new backend streams (storm smoothing);
	// 0 = unlimited. NewStreamsBurst is the burst.
	NewStreamsPerSecond float64
	NewStreamsBurst     int
}

// AddrLimits are a listener's per-client-address limits.
type AddrLimits struct {
	MaxConnsPerIP    int     // concurrent connections per address (IPv6: per /64); 0 = no cap
	ConnRatePerIP    float64 // new connections per second per address; 0 = unlimited
	ConnBurstPerIP   int
	TrackedAddresses int // memory bound of the address table
	// ClientBytesPerSecond shapes what each client sends by delaying reads;
	// 0 = unlimited.
	ClientBytesPerSecond int
	// Deny are refused at once with the event denied (policy-violation).
	Deny proxyproto.Trusted
	// Per remote domain (the from of an s2s stream's header; streams
	// without one count together): the streams open at once
	// (MaxStreamsPerDomain, 0 = no cap) and new streams per second
	// (StreamRatePerDomain, 0 = unlimited, with StreamBurstPerDomain).
	// s2s listeners only.
	MaxStreamsPerDomain  int
	StreamRatePerDomain  float64
	StreamBurstPerDomain int
}
