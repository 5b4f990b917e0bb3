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
// listener or a route names exists. What the proxy takes is decoded into the
// proxy's own types (proxy.Timeouts, proxy.XMLLimits, proxy.AddrLimits,
// proxy.TLSMode, proxy.ConnLog, proxy.Backend, ...), starting from the
// defaults the proxy package exports; config keeps beside them only what the
// proxy does not take (names of backends, certificate settings).
// The reference for every block and key is docs/config.md.
package config

import (
	"math"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxy"
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
	// Connections is the connection log, a line at info per stream end:
	// its Mode is the key connections (default proxy.ConnLogAll), its
	// Sample the key connections_sample, the fraction of clean ends
	// written in mode "all" (default 1).
	Connections proxy.ConnLog
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
	Routes []Route
	// Timeouts is the listener's timeouts block (defaults:
	// proxy.DefaultTimeouts); every one is > 0 but Idle and Probe, where 0
	// is off.
	Timeouts proxy.Timeouts
	Limits   Limits
	TLS      TLS
	// ProxyProtocol is the listener's proxy_protocol block: which load
	// balancers (Trusted, masked, as proxyproto.ParseTrusted returns them;
	// nil: off, the default) put a PROXY protocol header before their
	// connections. A connection from a trusted address must begin with a
	// header, version 1 or 2, whose source address then counts as the
	// client's; from any other address no header is read.
	ProxyProtocol proxy.ProxyProtocol
	// WebSocket is the listener's websocket block: XMPP over WebSocket
	// (RFC 7395) instead of c2s over TCP; nil without one.
	WebSocket *proxy.WebSocket
	// Stream is the listener's stream attribute: "client" (c2s, the
	// default) or "server" (s2s: federation, with TLS mode "none", where
	// STARTTLS passes through to the backend, or "passthrough").
	Stream proxy.StreamKind
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

// TLS is a listener's tls block: whether and how Guard speaks TLS with the
// clients of the listener.
type TLS struct {
	// Mode is the key mode: "none" (plaintext XMPP, the default),
	// "starttls", "direct" or "passthrough", as proxy.TLSMode names them.
	Mode proxy.TLSMode
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

// Limits is a listener's limits block: the XML limits (sizes in bytes) and
// the per-address limits, as the proxy takes them, from
// proxy.DefaultXMLLimits and proxy.DefaultAddrLimits. Each is within the
// bounds the decoder enforces (in parse.go, as docs/config.md gives them);
// ConnBurstPerIP is max(1, ceil(ConnRatePerIP)) when not set, and 0
// exactly when ConnRatePerIP is 0.
type Limits struct {
	proxy.XMLLimits
	proxy.AddrLimits
}

// Backend is one backend block: an XMPP server that Guard connects to.
type Backend struct {
	// Backend is the backend as the proxy takes it, from
	// proxy.DefaultBackend: Name is the block label, unique among
	// backends; exactly one of Address and Nodes (the node blocks, in file
	// order, addresses unique) is set; Health is the health_check block
	// (zero without one: no active checks; with one, 0 < Timeout <
	// Interval); every duration is > 0; Retries is at most 10; Adaptive is
	// nil when an adaptive block sets enabled = false; the admission
	// bursts are one second's worth when not set, and 0 exactly when
	// their rate is 0. Its TLS, a *tls.Config, is nil: cmd/guard builds it
	// from TLS below.
	proxy.Backend

	// TLS is the backend's tls block: Guard speaks Direct TLS to the
	// backend (TLS from the first byte), for a backend reached over a
	// network that is not trusted. nil without a tls block: plaintext.
	TLS *BackendTLS
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

// DefaultAdminAddress is the admin endpoint's address without an admin
// block, or with one that does not set address.
const DefaultAdminAddress = "127.0.0.1:9090"

// Defaults of the optional keys that the proxy does not take; those it
// takes are the proxy package's (proxy.DefaultTimeouts, proxy.DefaultBackend,
// ...). docs/config.md repeats them all.
const (
	defaultLogLevel     = "info"
	defaultLogFormat    = "text"
	defaultDrainTimeout = 25 * time.Second
	defaultAcceptDelay  = 0
	defaultDeadline     = 30 * time.Second

	defaultMinVersion  = "1.2"
	defaultDirectALPN  = "xmpp-client" // XEP-0368
	defaultACMEStorage = "./certmagic"
	defaultChallenge   = challengeTLSALPN
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
		Timeouts: proxy.DefaultTimeouts(),
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
		Log:      Log{Level: defaultLogLevel, Format: defaultLogFormat, Connections: proxy.DefaultConnLog()},
		Admin:    Admin{Address: DefaultAdminAddress},
		Shutdown: Shutdown{AcceptDelay: defaultAcceptDelay, DrainTimeout: defaultDrainTimeout, Deadline: defaultDeadline},
	}
}

func defaultLimits() Limits {
	return Limits{XMLLimits: proxy.DefaultXMLLimits(), AddrLimits: proxy.DefaultAddrLimits()}
}

func defaultTLS() TLS {
	return TLS{Mode: proxy.TLSNone, MinVersion: defaultMinVersion}
}

func defaultBackend(name, address string) Backend {
	b := Backend{Backend: proxy.DefaultBackend()}
	b.Name, b.Address = name, address
	return b
}

// defaultBurst is the burst of a rate (a second) whose burst is not set:
// one second's worth, and at least 1; 0 for no limit (rate 0).
func defaultBurst(rate float64) int {
	if rate <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(rate)))
}
