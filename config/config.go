// Package config parses Guard's HCL configuration into typed, validated values.
//
// Parse and LoadFile read a file in three passes: the HCL syntax, the shape
// (which blocks and arguments exist, checked against a schema per block, so an
// unknown or misspelt name is an error at its position), and the meaning
// (durations, addresses, enumerations, references between blocks, and the
// certificate files that tls and acme blocks name, which are read). Every
// problem of a pass is collected before the call returns, so one run of
// `guard validate` shows them all. Syntax errors end the run after the first
// pass, because the shape of a broken file is not worth reporting on.
//
// The result is a Config of plain values: durations are time.Duration, sizes
// are bytes, rates are per second, the policy block is a policy.Config that
// policy.New accepts, every default is filled in, and every backend that a
// listener or a route names exists.
// The reference for every block and key is docs/config.md.
package config

import (
	"math"
	"net/netip"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
)

// Config is a whole, validated Guard configuration.
type Config struct {
	Log       Log
	Admin     Admin
	Shutdown  Shutdown
	Listeners []Listener // at least one, names unique, in file order
	Backends  []Backend  // names unique, in file order
	// Policy is the policy block: which stream error Guard sends for each
	// event. policy.New accepts it; without a policy block it is empty, and
	// every event gets its default (policy.Defaults).
	Policy policy.Config
	// ACME is the acme block: certificates obtained by ACME for the
	// listeners that terminate TLS without certificate files. nil without
	// an acme block.
	ACME *ACME

	// warnings are the non-fatal diagnostics found while parsing; see Warnings.
	warnings *Error
}

// Log is the log block: how Guard writes its log.
type Log struct {
	Level  string // "trace", "debug", "info", "warn" or "error"; default "info"
	Format string // "text" or "json"; default "text"
	// Connections is what the connection log writes at info, a line per
	// stream end: "all" (default), "errors" (every end but a clean close)
	// or "off".
	Connections string
	// ConnectionsSample is the fraction of clean ends written when
	// Connections is "all"; default 1.
	ConnectionsSample float64
}

// Admin is the admin block: the HTTP endpoint for /healthz, /readyz,
// /metrics, /backends, and POST /-/drain and POST /-/reload.
type Admin struct {
	Address string // host:port; default "127.0.0.1:9090"; "" disables the endpoint
	// TokenFile is the file that holds the bearer token POST /-/drain and
	// POST /-/reload require, as written; "" (the default): no token.
	// Relative paths are relative to the working directory.
	TokenFile string
	// Token is the content of TokenFile when the file was parsed, its
	// final line breaks removed: visible ASCII, never empty when TokenFile
	// is set. "" without a TokenFile, or with the endpoint off.
	Token string
	// CertFile and KeyFile, from the admin block's tls block, make the
	// endpoint HTTPS (files picked up again when they change); "": HTTP.
	CertFile, KeyFile string
}

// Shutdown is the shutdown block: what Guard does on SIGTERM (or a drain
// requested on the admin port). Readiness turns 503 at once; Guard keeps
// accepting for AcceptDelay, then stops accepting and ends the open streams
// with system-shutdown spread evenly over DrainTimeout; whatever remains at
// Deadline (counted from the start) is closed and Guard exits.
type Shutdown struct {
	// AcceptDelay is how long Guard keeps accepting after readiness turned
	// 503, so load balancers stop sending clients first. Default 0s.
	AcceptDelay time.Duration
	// DrainTimeout is the window over which open streams are ended, evenly
	// spread so that clients do not reconnect all at once. Default 25s; 0
	// ends them all at once.
	DrainTimeout time.Duration
	// Deadline bounds the whole shutdown, from the signal to the exit; it
	// must exceed AcceptDelay + DrainTimeout. Default 30s (fits Kubernetes'
	// default terminationGracePeriodSeconds of 30 when DrainTimeout is 25s).
	Deadline time.Duration
}

// Listener is one listener block: an address where clients connect.
type Listener struct {
	Name    string // the block label, unique among listeners
	Address string // host:port to listen on; port 0 picks a free port (tests)
	// Backend is the name of the Backend that receives this listener's
	// streams, those of the domains without a route. "" only when Routes
	// is not empty: then a stream to any other domain is refused with
	// host-unknown.
	Backend string
	// Routes are the listener's route blocks, in file order: streams to
	// these domains go to other backends. nil without route blocks.
	Routes   []Route
	Timeouts Timeouts
	Limits   Limits
	TLS      TLS
	// ProxyProtocol is the listener's proxy_protocol block: which load
	// balancers put a PROXY protocol header before their connections.
	ProxyProtocol ProxyProtocol
}

// Route is a listener's route block: the streams whose to is Domain go to
// Backend instead of the listener's own backend.
type Route struct {
	// Domain is the block label, a DNS name as written; streams match it
	// without regard to case, and no two routes of a listener have the
	// same domain regardless of case.
	Domain  string
	Backend string // name of the Backend that receives the domain's streams
}

// ProxyProtocol is a listener's proxy_protocol block. A connection from a
// Trusted address (a layer-4 load balancer) must begin with a PROXY protocol
// header, version 1 or 2, whose source address then counts as the client's
// for per-address limits, logs and the backend. From any other address no
// header is read: a spoofed one is refused as not-well-formed XMPP.
type ProxyProtocol struct {
	// Trusted are the networks of the balancers, masked (an address is a
	// /32 or /128), as proxyproto.ParseTrusted returns them. nil: off, the
	// default.
	Trusted []netip.Prefix
}

// TLS is a listener's tls block: whether and how Guard speaks TLS with the
// clients of the listener.
type TLS struct {
	// Mode is "none" (plaintext XMPP), "starttls" (Guard answers the
	// client's first stream itself, offers STARTTLS as required and
	// terminates TLS), "direct" (TLS from the first byte, XEP-0368,
	// terminated by Guard) or "passthrough" (Guard relays the client's TLS
	// to the backend without terminating it). Default "none".
	Mode string
	// CertFile and KeyFile are PEM files, the certificate chain (leaf
	// first) and its private key, which Guard picks up again when they
	// change on disk. Both are set or both are "". They are set only in the
	// modes "starttls" and "direct"; there, "" means the certificate comes
	// from ACME, and Config.ACME is not nil. When set, they held a valid
	// pair when the file was parsed. Relative paths are relative to the
	// working directory.
	CertFile, KeyFile string
	// ALPN lists the protocols offered in the TLS handshake of Direct TLS,
	// in order of preference. Default []string{"xmpp-client"} in mode
	// "direct"; nil (no ALPN) in every other mode.
	ALPN []string
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	// Default "1.2"; it matters only in the modes "starttls" and "direct".
	MinVersion string
}

// ACME is the acme block: where and how Guard obtains certificates by ACME
// (RFC 8555) for the listeners in mode "starttls" or "direct" that have no
// cert_file.
type ACME struct {
	CA    string // the directory URL of the ACME CA, https; required
	Email string // the account's contact address; required
	// Domains are the DNS names to obtain certificates for; at least one,
	// no duplicates, no wildcards.
	Domains []string
	// Storage is the directory where certificates, keys and the ACME
	// account are kept. Default "./certmagic".
	Storage string
	// TrustedRoots is a PEM file of extra root certificates trusted for the
	// CA's own HTTPS endpoint (a private CA; Pebble in tests). Default "":
	// the system roots only. When set, it held at least one certificate
	// when the file was parsed.
	TrustedRoots string
	// Challenges are the ACME challenges used to prove control of the
	// domains, a non-empty subset of "tls-alpn-01" and "http-01", without
	// duplicates. Default []string{"tls-alpn-01"}.
	Challenges []string
	// HTTPAddress is the host:port where the http-01 solver listens: set
	// exactly when Challenges has "http-01", else "".
	HTTPAddress string
}

// Timeouts is a listener's timeouts block.
type Timeouts struct {
	// Handshake bounds the time from accept until the client's whole stream
	// header has arrived. Default 10s; always > 0.
	Handshake time.Duration
	// Idle closes an established stream with no traffic in either direction
	// for this long. Default 0: off.
	Idle time.Duration
	// Probe is the quiet time (no bytes in either direction) after which
	// Guard sends the client a whitespace keepalive. Default 60s; 0: no
	// probes.
	Probe time.Duration
	// ProbeTimeout is how long data sent to the client, a keepalive
	// included, may stay unacknowledged before the client is declared dead;
	// Guard sets TCP_USER_TIMEOUT on client sockets to it. Default 30s;
	// always > 0.
	ProbeTimeout time.Duration
	// HalfClose is the time the other side has to finish after one side has
	// closed its half of the connection. Default 5s; always > 0.
	HalfClose time.Duration
}

// Limits is a listener's limits block. Sizes are in bytes.
type Limits struct {
	// MaxStanzaSize is the largest top-level element the client may send,
	// and the largest Guard forwards from the backend. Default 256 KiB;
	// from 1 KiB to 16 MiB.
	MaxStanzaSize int
	// MaxHeaderSize is the largest stream header the client may send.
	// Default 4 KiB; from 512 B to 64 KiB.
	MaxHeaderSize int
	// Deny are the client addresses refused with policy-violation (event
	// denied) before anything else, matched after a PROXY header; none by
	// default.
	Deny []netip.Prefix
	// MaxDepth bounds the nesting of elements in the client's stanzas.
	// Default 0: only MaxStanzaSize bounds them, as in XMPP servers.
	MaxDepth int

	// The per-address limits count a client address as an IPv4 address, or
	// an IPv6 /64. They apply during the handshake, before admission.

	// MaxConnsPerIP caps the connections one client address holds open at
	// once. Default 0: no cap, because many clients may share one address
	// behind NAT or carrier-grade NAT.
	MaxConnsPerIP int
	// ConnRatePerIP is the sustained rate of new connections from one client
	// address, in connections a second. Default 0: no limit.
	ConnRatePerIP float64
	// ConnBurstPerIP is how many new connections one address may open back
	// to back before ConnRatePerIP applies. Default max(1, ceil(ConnRatePerIP));
	// 0 exactly when ConnRatePerIP is 0.
	ConnBurstPerIP int
	// TrackedAddresses bounds how many client addresses the per-address
	// limiter remembers, and so its memory. Default 100000; from 1000 to
	// 10000000.
	TrackedAddresses int
	// ClientBytesPerSecond caps the rate at which Guard reads what each client
	// sends: reads are delayed, never dropped. Default 0: no limit; else from
	// 1 KiB to 1024 MiB a second.
	ClientBytesPerSecond int
}

// Backend is one backend block: an XMPP server that Guard connects to.
type Backend struct {
	Name string // the block label, unique among backends
	// Address is the host:port to dial for a backend of one server; ""
	// when Nodes is set. Exactly one of Address and Nodes is set.
	Address string
	// Nodes are the backend's node blocks, in file order: a pool of
	// servers, addresses unique. Each stream goes to the usable node with
	// the fewest open streams; a failed connection is retried on the next
	// node (see Retries); a node that fails 3 times in a row is ejected for
	// 10s unless it is the pool's last usable node. nil when Address is
	// set.
	Nodes []Node
	// HealthCheck is the backend's health_check block: active checks of
	// its nodes (or of Address). nil without the block: no active checks.
	HealthCheck *HealthCheck

	ConnectTimeout time.Duration // bounds each dial; default 2s; always > 0
	// ReplyTimeout is how long the backend has to send its stream header
	// after Guard forwarded the client's. Default 5s; always > 0.
	ReplyTimeout time.Duration
	// Adaptive is adaptive admission: the streams each node holds learned
	// from its stream opens, within MaxStreams. On by default (the limits
	// package's defaults); nil when an adaptive block sets enabled = false.
	Adaptive *limits.AdaptiveConfig
	// Retries is how many times Guard tries a stream again, after a short
	// jittered backoff and on another usable node where there is one, when
	// the backend's connection fails before its stream header (refused,
	// reset, closed, TLS). Default 2; 0: never; at most 10.
	Retries int

	// Admission control: Guard opens at most MaxStreams streams to the
	// backend and queues the clients beyond them, instead of letting an
	// overloaded backend reset their connections.

	// MaxStreams is the most streams Guard keeps open to this backend at
	// once. Default 10000; 0: no cap.
	MaxStreams int
	// QueueSize is how many clients may wait for a stream slot when all
	// MaxStreams are taken. Default 1000; 0: no queue, a client is refused
	// at once (event queue-full).
	QueueSize int
	// QueueTimeout is the longest a client waits in the queue before it is
	// refused (event queue-timeout). Default 10s; always > 0.
	QueueTimeout time.Duration
	// NewStreamsPerSecond caps the rate at which Guard opens new streams to
	// the backend, so that a reconnect storm reaches it at this pace while
	// the queue absorbs the burst. Default 0: no limit.
	NewStreamsPerSecond float64
	// NewStreamsBurst is how many new streams Guard may open back to back
	// before NewStreamsPerSecond applies. Default max(1,
	// ceil(NewStreamsPerSecond)); 0 exactly when NewStreamsPerSecond is 0.
	NewStreamsBurst int

	// ProxyProtocol is the version of the PROXY protocol header, 1 or 2,
	// that Guard sends the backend with the client's address before
	// anything else on each connection (before TLS too), for Prosody's
	// mod_net_proxy or ejabberd's use_proxy_protocol. Default 0: none.
	ProxyProtocol int

	// TLS is the backend's tls block: Guard speaks Direct TLS to the
	// backend (TLS from the first byte), for a backend reached over a
	// network that is not trusted. nil without a tls block: plaintext.
	TLS *BackendTLS
}

// Node is one node block of a backend: one server of its pool.
type Node struct {
	Address string // the block label: host:port to dial
	// MaxStreams caps the streams open to this node at once, within the
	// backend's MaxStreams. Default 0: no cap of its own.
	MaxStreams int
}

// HealthCheck is a backend's health_check block. Every Interval Guard opens
// a test stream to each node, to Domain, as a client would; a node that
// does not send its stream header and features within Timeout is taken out
// until a check passes again.
type HealthCheck struct {
	Interval time.Duration // between two checks of a node; required; always > 0
	// Timeout bounds each check. Default 2s; always > 0 and < Interval.
	Timeout time.Duration
	// Domain is the XMPP domain the test stream is addressed to (its to),
	// a DNS name. Default "localhost".
	Domain string
}

// BackendTLS is a backend's tls block: how Guard verifies the backend when
// it speaks TLS to it. The backend then holds TLS itself and may offer SASL
// -PLUS mechanisms, bound to the Guard-to-backend channel, which cannot
// match the client's: they must be turned off on the backend (docs/tls.md).
type BackendTLS struct {
	// ServerName is the name sent in SNI and verified in the backend's
	// certificate: a DNS name, or an IP address, verified against the IP
	// addresses of the certificate (and then not sent in SNI). Default: the
	// host of Backend.Address, or of the first of Backend.Nodes, an IP
	// address kept as it is (without an IPv6 zone); never "".
	ServerName string
	// CAFile is a PEM file of the root certificates the backend's
	// certificate is verified with, instead of the system roots. Default
	// "": the system roots. When set, it held at least one certificate when
	// the file was parsed. It is "" when InsecureSkipVerify is set, which
	// makes it useless. Relative paths are relative to the working
	// directory.
	CAFile string
	// InsecureSkipVerify accepts any certificate from the backend, without
	// verification: for tests only (a warning). Default false.
	InsecureSkipVerify bool
	// MinVersion is the lowest TLS version Guard accepts from the backend:
	// "1.2" or "1.3". Default "1.2".
	MinVersion string
}

// Defaults for every optional key. docs/config.md repeats them.
const (
	defaultLogLevel       = "info"
	defaultLogFormat      = "text"
	defaultConnectionsLog = "all"
	defaultAdminAddress   = "127.0.0.1:9090"
	defaultDrainTimeout   = 25 * time.Second
	defaultAcceptDelay    = 0
	defaultDeadline       = 30 * time.Second
	defaultHandshake      = 10 * time.Second
	defaultIdle           = 0
	defaultProbe          = 60 * time.Second
	defaultProbeTimeout   = 30 * time.Second
	defaultHalfClose      = 5 * time.Second
	defaultMaxStanzaSize  = 256 * kiB
	defaultMaxHeaderSize  = 4 * kiB
	defaultConnectTimeout = 2 * time.Second
	defaultReplyTimeout   = 5 * time.Second
	defaultRetries        = 2
	maxRetries            = 10
	defaultHealthTimeout  = 2 * time.Second
	defaultHealthDomain   = "localhost"
	defaultNodeMaxStreams = 0

	defaultMaxConnsPerIP        = 0 // NAT: operators who know their clients set it
	defaultConnRatePerIP        = 0
	defaultTrackedAddresses     = 100000
	defaultClientBytesPerSecond = 0

	defaultMaxStreams          = 10000 // a sane cap for one Openfire node
	defaultQueueSize           = 1000
	defaultQueueTimeout        = 10 * time.Second
	defaultNewStreamsPerSecond = 0

	defaultTLSMode     = tlsNone
	defaultMinVersion  = "1.2"
	defaultDirectALPN  = "xmpp-client" // XEP-0368
	defaultACMEStorage = "./certmagic"
	defaultChallenge   = challengeTLSALPN
)

// The bounds of the sizes in a limits block.
const (
	minMaxStanzaSize = 1 * kiB
	maxMaxStanzaSize = 16 * miB
	// maxMaxDepth: deeper than any stanza of max_stanza_size's largest
	// that carries text (each level costs at least 7 bytes, "<a></a>").
	maxMaxDepth      = 1 << 20
	minMaxHeaderSize = 512
	maxMaxHeaderSize = 64 * kiB

	minClientBytesPerSecond = 1 * kiB // below it a TLS handshake alone takes seconds
	maxClientBytesPerSecond = 1024 * miB
)

// The bounds of counts and rates. maxCount keeps every count within an int
// on any platform; maxRate (a second) is far above any sane setting.
const (
	maxCount            = 1000000000
	maxRate             = 1000000
	minTrackedAddresses = 1000
	maxTrackedAddresses = 10000000 // about 250 bytes each: 2.5 GB
	// queueTimeoutWarn: most XMPP clients give up waiting for the server's
	// stream header sooner, then reconnect and queue again.
	queueTimeoutWarn = 30 * time.Second
)

// Backend returns the backend with the given name and whether it exists.
// In a Config returned by Parse or LoadFile, every Route.Backend exists, and
// so does every Listener.Backend but "" (a listener with routes only).
func (c *Config) Backend(name string) (Backend, bool) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b, true
		}
	}
	return Backend{}, false
}

// Warnings returns the non-fatal diagnostics found while parsing, such as a
// backend that no listener uses, as an *Error for WriteDiagnostics; or nil.
func (c *Config) Warnings() error {
	if c.warnings == nil {
		return nil
	}
	return c.warnings
}

// Default returns the configuration that `guard run --listen ADDR --backend
// ADDR` describes: one listener "default" on listen, sending its streams to
// one backend "default" at backend, with every other value at its default.
// The addresses are not checked here; listening or dialing reports them.
func Default(listen, backend string) *Config {
	c := defaults()
	c.Listeners = []Listener{{
		Name:     "default",
		Address:  listen,
		Backend:  "default",
		Timeouts: defaultTimeouts(),
		Limits:   defaultLimits(),
		TLS:      defaultTLS(),
	}}
	c.Backends = []Backend{defaultBackend("default", backend)}
	return c
}

// defaults returns a Config with every top-level block at its defaults and no
// listeners or backends.
func defaults() *Config {
	return &Config{
		Log:      Log{Level: defaultLogLevel, Format: defaultLogFormat, Connections: defaultConnectionsLog, ConnectionsSample: 1},
		Admin:    Admin{Address: defaultAdminAddress},
		Shutdown: Shutdown{AcceptDelay: defaultAcceptDelay, DrainTimeout: defaultDrainTimeout, Deadline: defaultDeadline},
	}
}

func defaultTimeouts() Timeouts {
	return Timeouts{
		Handshake: defaultHandshake, Idle: defaultIdle,
		Probe: defaultProbe, ProbeTimeout: defaultProbeTimeout,
		HalfClose: defaultHalfClose,
	}
}

func defaultLimits() Limits {
	return Limits{
		MaxStanzaSize: defaultMaxStanzaSize, MaxHeaderSize: defaultMaxHeaderSize,
		MaxConnsPerIP: defaultMaxConnsPerIP, ConnRatePerIP: defaultConnRatePerIP,
		ConnBurstPerIP:       defaultBurst(defaultConnRatePerIP),
		TrackedAddresses:     defaultTrackedAddresses,
		ClientBytesPerSecond: defaultClientBytesPerSecond,
	}
}

func defaultTLS() TLS {
	return TLS{Mode: defaultTLSMode, MinVersion: defaultMinVersion}
}

func defaultBackend(name, address string) Backend {
	return Backend{
		Name: name, Address: address,
		ConnectTimeout: defaultConnectTimeout, ReplyTimeout: defaultReplyTimeout, Retries: defaultRetries,
		Adaptive:   defaultAdaptive(),
		MaxStreams: defaultMaxStreams, QueueSize: defaultQueueSize, QueueTimeout: defaultQueueTimeout,
		NewStreamsPerSecond: defaultNewStreamsPerSecond,
		NewStreamsBurst:     defaultBurst(defaultNewStreamsPerSecond),
	}
}

// defaultBurst is the burst of a rate (a second) whose burst is not set:
// one second's worth, and at least 1; 0 for no limit (rate 0).
func defaultBurst(rate float64) int {
	if rate <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(rate)))
}
