package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/proxy"
)

// LoadFile reads and parses the configuration file at path. Diagnostics name
// the file by path as given, so a relative path gives relative positions.
// A file that cannot be read gives the *os.PathError, wrapped; a file that
// does not parse or validate gives an *Error.
func LoadFile(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, src)
}

// Parse parses src, the contents of the file named filename, into a
// validated Config with every default filled in. filename is used only in
// diagnostics.
//
// When src has errors, Parse returns a nil Config and an *Error holding every
// diagnostic (errors and warnings). Warnings alone do not fail: Parse returns
// the Config, and Config.Warnings returns them.
//
// Parse reads no file but those the configuration names (certificates, the
// CA roots, the token file), and looks up a host name of a listen address
// only when it shares its port with another listen address, to tell whether
// the two could both be listened on.
func Parse(filename string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, newError(diags, p.Files())
	}
	d := &decoder{diags: diags}
	c := d.file(f)
	if d.diags.HasErrors() {
		return nil, newError(d.diags, p.Files())
	}
	if len(d.diags) > 0 {
		c.warnings = newError(d.diags, p.Files())
	}
	return c, nil
}

// decoder turns the HCL of one file into a Config, collecting diagnostics
// as it goes instead of stopping at the first.
type decoder struct {
	diags hcl.Diagnostics
}

// The schemas below are the shape of the file, one per kind of block. Adding
// a block takes: its header in the schema of the enclosing block, a schema
// for its body, a decode method, and a call in the enclosing decode method.
// Checks that span blocks (references by name) go in file.

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "log"},
		{Type: "admin"},
		{Type: "shutdown"},
		{Type: "listener", LabelNames: []string{"name"}},
		{Type: "backend", LabelNames: []string{"name"}},
		{Type: "policy"},
		{Type: "acme"},
	},
}

var logSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "level"}, {Name: "format"}, {Name: "connections"}, {Name: "connections_sample"}},
}

var adminSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "address"}, {Name: "token_file"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "tls"}},
}

var adminTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cert_file"}, {Name: "key_file"}},
}

var shutdownSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "accept_delay"}, {Name: "drain_timeout"}, {Name: "deadline"}},
}

var listenerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "address"}, {Name: "backend"}, {Name: "stream"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "timeouts"}, {Type: "limits"}, {Type: "tls"}, {Type: "proxy_protocol"}, {Type: "websocket"},
		{Type: "route", LabelNames: []string{"domain"}},
	},
}

var routeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "backend"}},
}

var timeoutsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "handshake"}, {Name: "idle"}, {Name: "probe"}, {Name: "probe_timeout"}, {Name: "half_close"},
	},
}

var limitsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "max_stanza_size"}, {Name: "max_header_size"}, {Name: "max_depth"}, {Name: "advertise"},
		{Name: "max_connections_per_ip"}, {Name: "connection_rate_per_ip"}, {Name: "connection_burst_per_ip"},
		{Name: "tracked_addresses"}, {Name: "client_bytes_per_second"}, {Name: "deny"},
		{Name: "max_streams_per_domain"}, {Name: "stream_rate_per_domain"}, {Name: "stream_burst_per_domain"},
	},
}

var tlsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "mode"}, {Name: "cert_file"}, {Name: "key_file"}, {Name: "alpn"}, {Name: "min_version"},
	},
}

var proxyProtocolSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "trusted"}},
}

var backendTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "server_name"}, {Name: "ca_file"}, {Name: "insecure_skip_verify"}, {Name: "min_version"},
	},
}

var acmeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "ca"}, {Name: "email"}, {Name: "domains"}, {Name: "storage"}, {Name: "trusted_roots"},
		{Name: "challenges"}, {Name: "http_address"},
	},
}

var backendSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "address"}, {Name: "connect_timeout"}, {Name: "reply_timeout"},
		{Name: "max_streams"}, {Name: "queue_size"}, {Name: "queue_timeout"},
		{Name: "new_streams_per_second"}, {Name: "new_streams_burst"}, {Name: "proxy_protocol"},
		{Name: "retries"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "tls"}, {Type: "node", LabelNames: []string{"address"}}, {Type: "health_check"},
		{Type: "adaptive"},
	},
}

var adaptiveSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "enabled"}, {Name: "min_streams"}, {Name: "initial_streams"},
		{Name: "latency_tolerance"}, {Name: "reprobe_after"},
	},
}

var nodeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "max_streams"}},
}

var healthCheckSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "interval"}, {Name: "timeout"}, {Name: "domain"}},
}

var policySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "see_other_host"}, {Name: "see_other_uri"}, {Name: "overload"}, {Name: "shutdown"}, {Name: "backend_failure"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "event", LabelNames: []string{"name"}}},
}

var eventSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition"}, {Name: "text"}},
}

// Every attribute is optional in the schemas: required ones are checked by
// the decode methods, which can say what to write and point at the block.

// decoded is a value decoded from a block, kept with the block and its
// attributes so that checks between blocks can point at them.
type decoded[T any] struct {
	value T
	block *hcl.Block
	attrs hcl.Attributes
}

// file decodes the top level of f: each block, then the checks between blocks.
func (d *decoder) file(f *hcl.File) *Config {
	c := defaults()
	content := d.content(f.Body, fileSchema, "The top level of the file")
	blocks := content.Blocks.ByType()

	if b := d.single(blocks["log"]); b != nil {
		c.Log = d.log(b)
	}
	admin := decoded[Admin]{value: c.Admin}
	if b := d.single(blocks["admin"]); b != nil {
		admin = d.admin(b)
		c.Admin = admin.value
	}
	if b := d.single(blocks["shutdown"]); b != nil {
		c.Shutdown = d.shutdown(b)
	}

	d.unique(blocks["listener"])
	d.unique(blocks["backend"])
	var listeners []decoded[Listener]
	var tlsBlocks []decoded[TLS]
	var routes [][]decoded[Route]
	for _, b := range blocks["listener"] {
		l, t, r := d.listener(b)
		listeners = append(listeners, l)
		tlsBlocks = append(tlsBlocks, t)
		routes = append(routes, r)
		c.Listeners = append(c.Listeners, l.value)
	}
	var backends []decoded[Backend]
	for _, b := range blocks["backend"] {
		be := d.backend(b)
		backends = append(backends, be)
		c.Backends = append(c.Backends, be.value)
	}

	if !hasBlock(f.Body, "listener") {
		start := hcl.Pos{Line: 1, Column: 1, Byte: 0}
		backend := "xmpp" // the file's first backend, if it has one
		if len(backends) > 0 && backends[0].value.Name != "" {
			backend = backends[0].value.Name
		}
		d.errorf(hcl.Range{Filename: f.Body.MissingItemRange().Filename, Start: start, End: start}, nil,
			"No listener",
			"Guard needs at least one listener block, the address where clients connect and the backend that receives their streams, for example:")
		d.withFix(fmt.Sprintf("listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = %s\n}", hclString(backend)))
	}
	if b := d.single(blocks["policy"]); b != nil {
		c.Policy = d.policy(b)
	}
	var acme decoded[*ACME]
	if b := d.single(blocks["acme"]); b != nil {
		acme = d.acme(b)
		c.ACME = acme.value
	}

	d.backendReferences(listeners, routes, backends)
	d.listenAddresses(admin, acme, listeners)
	d.certificates(listeners, tlsBlocks, acme)
	return c
}

func (d *decoder) log(b *hcl.Block) Log {
	a := d.content(b.Body, logSchema, "A log block").Attributes
	def := proxy.DefaultConnLog()
	return Log{
		Level:  d.oneOf(a["level"], defaultLogLevel, "log level", "trace", "debug", "info", "warn", "error"),
		Format: d.oneOf(a["format"], defaultLogFormat, "log format", "text", "json"),
		Connections: proxy.ConnLog{
			Mode: enum(d, a["connections"], def.Mode, "connection log", proxy.ConnLogAll, proxy.ConnLogErrors, proxy.ConnLogOff),
			Sample: d.number(a["connections_sample"], numberRule{
				def: def.Sample, min: 0.0001, max: 1, example: "0.1",
			}),
		},
	}
}

func (d *decoder) admin(b *hcl.Block) decoded[Admin] {
	content := d.content(b.Body, adminSchema, "An admin block")
	a := content.Attributes
	adm := Admin{Address: d.address(a["address"], DefaultAdminAddress, addrRule{
		listen: true, optional: true, example: DefaultAdminAddress,
	})}
	adm.TokenFile, adm.Token = d.adminToken(a["token_file"], a["address"], adm.Address)
	if tb := d.single(content.Blocks.OfType("tls")); tb != nil {
		ta := d.content(tb.Body, adminTLSSchema, "An admin tls block").Attributes
		cert := d.required(tb, ta, "cert_file", "/etc/guard/admin.crt")
		key := d.required(tb, ta, "key_file", "/etc/guard/admin.key")
		certFile, ok1 := d.value(cert, "/etc/guard/admin.crt")
		keyFile, ok2 := d.value(key, "/etc/guard/admin.key")
		if ok1 && ok2 && certFile != "" && keyFile != "" {
			d.keyPair(cert, key, certFile, keyFile)
			adm.CertFile, adm.KeyFile = certFile, keyFile
		}
	}
	return decoded[Admin]{value: adm, block: b, attrs: a}
}

func (d *decoder) shutdown(b *hcl.Block) Shutdown {
	a := d.content(b.Body, shutdownSchema, "A shutdown block").Attributes
	s := Shutdown{
		AcceptDelay: d.duration(a["accept_delay"], durationRule{
			def: defaultAcceptDelay, zero: "stop accepting at once", example: "5s",
		}),
		DrainTimeout: d.duration(a["drain_timeout"], durationRule{
			def: defaultDrainTimeout, zero: "close open streams at once", example: "25s",
		}),
		Deadline: d.duration(a["deadline"], durationRule{def: defaultDeadline, example: "30s"}),
	}
	if s.Deadline <= s.AcceptDelay+s.DrainTimeout {
		rng := b.DefRange
		if at := a["deadline"]; at != nil {
			rng = at.Expr.Range()
		}
		d.errorf(rng, nil, "Deadline too short",
			fmt.Sprintf("deadline (%s) must be longer than accept_delay + drain_timeout (%s + %s), with room for the last streams to close: for example deadline = %s.",
				s.Deadline, s.AcceptDelay, s.DrainTimeout, hclString((s.AcceptDelay+s.DrainTimeout+5*time.Second).String())))
	}
	return s
}

// listener decodes a listener block, and returns its tls block and its
// route blocks apart for the checks between blocks (certificates, backend
// references).
func (d *decoder) listener(b *hcl.Block) (decoded[Listener], decoded[TLS], []decoded[Route]) {
	content := d.content(b.Body, listenerSchema, "A listener block")
	a := content.Attributes
	d.name(b)
	address := d.address(d.required(b, a, "address", "0.0.0.0:5222"), "", addrRule{listen: true, example: "0.0.0.0:5222"})
	routes := d.routes(content.Blocks.OfType("route"))
	backend := present(a["backend"])
	if !hasBlock(b.Body, "route") { // with routes, the listener's own backend is optional
		backend = d.required(b, a, "backend", "xmpp")
	}
	l := Listener{
		Name:     b.Labels[0],
		Address:  address,
		Backend:  d.backendName(backend),
		Timeouts: proxy.DefaultTimeouts(),
		Limits:   defaultLimits(),
		TLS:      defaultTLS(),
		Stream:   enum(d, a["stream"], proxy.StreamClient, "stream kind", streamKinds...),
	}
	for _, r := range routes {
		l.Routes = append(l.Routes, r.value)
	}
	if tb := d.single(content.Blocks.OfType("timeouts")); tb != nil {
		l.Timeouts = d.timeouts(tb)
	}
	if lb := d.single(content.Blocks.OfType("limits")); lb != nil {
		l.Limits = d.limits(lb)
		if l.Stream != proxy.StreamServer {
			d.domainLimitsOnClient(lb)
		}
	}
	t := decoded[TLS]{value: l.TLS}
	if tb := d.single(content.Blocks.OfType("tls")); tb != nil {
		t = d.tls(tb)
		l.TLS = t.value
	}
	if pb := d.single(content.Blocks.OfType("proxy_protocol")); pb != nil {
		l.ProxyProtocol = d.proxyProtocol(pb)
	}
	if wb := d.single(content.Blocks.OfType("websocket")); wb != nil {
		l.WebSocket = d.websocket(wb)
		d.websocketTLS(wb, &t)
		l.TLS = t.value
	}
	d.checkStream(b, a["stream"], l.Stream, content.Blocks, t)
	return decoded[Listener]{value: l, block: b, attrs: a}, t, routes
}

// routes decodes the route blocks of a listener; a domain routed twice
// (regardless of case) is an error at the second block.
func (d *decoder) routes(blocks hcl.Blocks) []decoded[Route] {
	var routes []decoded[Route]
	first := map[string]*hcl.Block{}
	for _, b := range blocks {
		a := d.content(b.Body, routeSchema, "A route block").Attributes
		domain := b.Labels[0]
		if why := xmppDomain(domain); why != "" {
			d.errorf(b.LabelRanges[0], &b.DefRange, "Invalid route domain",
				fmt.Sprintf("%q is not a DNS name: %s. Write the XMPP domain that clients put in their stream's to, e.g. route %q { backend = \"xmpp\" }.",
					domain, why, exampleDomain))
		} else if f, dup := first[strings.ToLower(domain)]; dup {
			d.errorf(b.DefRange, nil, "Duplicate route",
				fmt.Sprintf("The domain %q is already routed at %s (as %q; case does not matter). Route each domain once.",
					domain, position(f.DefRange), f.Labels[0]))
		} else {
			first[strings.ToLower(domain)] = b
		}
		r := Route{Domain: domain, Backend: d.backendName(d.required(b, a, "backend", "xmpp"))}
		routes = append(routes, decoded[Route]{value: r, block: b, attrs: a})
	}
	return routes
}

// backendName returns the value of a listener's backend attribute; whether
// that backend exists is checked by backendReferences.
func (d *decoder) backendName(a *hcl.Attribute) string {
	s, ok := d.value(a, "xmpp")
	if ok && s == "" {
		d.errorf(a.Expr.Range(), &a.Range, "Empty backend name",
			`backend = "" names no backend. Name a backend block, e.g. backend = "xmpp".`)
	}
	return s
}

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
	maxRetries          = 10
	// queueTimeoutWarn: most XMPP clients give up waiting for the server's
	// stream header sooner, then reconnect and queue again.
	queueTimeoutWarn = 30 * time.Second
)

func (d *decoder) timeouts(b *hcl.Block) proxy.Timeouts {
	a := d.content(b.Body, timeoutsSchema, "A timeouts block").Attributes
	def := proxy.DefaultTimeouts()
	return proxy.Timeouts{
		Handshake: d.duration(a["handshake"], durationRule{def: def.Handshake, example: "10s"}),
		Idle: d.duration(a["idle"], durationRule{
			def: def.Idle, zero: "turn the idle timeout off", example: "30m",
		}),
		Probe: d.duration(a["probe"], durationRule{
			def: def.Probe, zero: "send no keepalives", example: "60s",
		}),
		ProbeTimeout: d.duration(a["probe_timeout"], durationRule{def: def.ProbeTimeout, example: "30s"}),
		HalfClose:    d.duration(a["half_close"], durationRule{def: def.HalfClose, example: "5s"}),
	}
}

func (d *decoder) limits(b *hcl.Block) Limits {
	a := d.content(b.Body, limitsSchema, "A limits block").Attributes
	def := defaultLimits()
	x := proxy.XMLLimits{
		MaxStanzaSize: d.size(a["max_stanza_size"], sizeRule{
			def: def.MaxStanzaSize, min: minMaxStanzaSize, max: maxMaxStanzaSize, example: "256KiB",
		}),
		MaxHeaderSize: d.size(a["max_header_size"], sizeRule{
			def: def.MaxHeaderSize, min: minMaxHeaderSize, max: maxMaxHeaderSize, example: "4KiB",
		}),
		MaxDepth: d.count(a["max_depth"], numberRule{
			def: float64(def.MaxDepth), max: maxMaxDepth, zero: "set no limit beyond max_stanza_size", example: "256",
		}),
		Advertise: d.boolean(a["advertise"], def.Advertise),
	}
	l := Limits{XMLLimits: x, AddrLimits: proxy.AddrLimits{
		Deny: d.denyList(a["deny"]),
		MaxConnsPerIP: d.count(a["max_connections_per_ip"], numberRule{
			def: float64(def.MaxConnsPerIP), max: maxCount, zero: "set no cap", example: "20",
		}),
		ConnRatePerIP: d.rate(a["connection_rate_per_ip"], rateRule{
			def: def.ConnRatePerIP, max: maxRate, example: "5/s",
		}),
		TrackedAddresses: d.count(a["tracked_addresses"], numberRule{
			def: float64(def.TrackedAddresses), min: minTrackedAddresses, max: maxTrackedAddresses, example: "100000",
		}),
		ClientBytesPerSecond: d.byteRate(a["client_bytes_per_second"], sizeRule{
			def: def.ClientBytesPerSecond, min: minClientBytesPerSecond, max: maxClientBytesPerSecond,
			zero: "set no limit", example: "64KiB",
		}),
	}}
	l.ConnBurstPerIP = d.burst(a["connection_burst_per_ip"], l.ConnRatePerIP, a["connection_rate_per_ip"], "connection_rate_per_ip")
	l.MaxStreamsPerDomain = d.count(a["max_streams_per_domain"], numberRule{
		max: maxCount, zero: "set no cap", example: "100",
	})
	l.StreamRatePerDomain = d.rate(a["stream_rate_per_domain"], rateRule{max: maxRate, example: "10/s"})
	l.StreamBurstPerDomain = d.burst(a["stream_burst_per_domain"], l.StreamRatePerDomain, a["stream_rate_per_domain"], "stream_rate_per_domain")
	return l
}

func (d *decoder) backend(b *hcl.Block) decoded[Backend] {
	content := d.content(b.Body, backendSchema, "A backend block")
	a := content.Attributes
	d.name(b)
	addr := present(a["address"])
	def := proxy.DefaultBackend()
	be := Backend{Backend: proxy.Backend{
		Name:           b.Labels[0],
		Address:        d.address(addr, "", addrRule{example: "127.0.0.1:5262"}),
		Nodes:          d.nodes(b, addr, content.Blocks.OfType("node")),
		ConnectTimeout: d.duration(a["connect_timeout"], durationRule{def: def.ConnectTimeout, example: "2s"}),
		ReplyTimeout:   d.duration(a["reply_timeout"], durationRule{def: def.ReplyTimeout, example: "5s"}),
		Admission: proxy.Admission{
			MaxStreams: d.count(a["max_streams"], numberRule{
				def: float64(def.Admission.MaxStreams), max: maxCount, zero: "set no cap", example: "5000",
			}),
			QueueSize: d.count(a["queue_size"], numberRule{
				def: float64(def.Admission.QueueSize), max: maxCount, zero: "refuse at once when every stream slot is taken", example: "1000",
			}),
			QueueTimeout: d.duration(a["queue_timeout"], durationRule{def: def.Admission.QueueTimeout, example: "10s"}),
		},
		Retries: d.count(a["retries"], numberRule{
			def: float64(def.Retries), max: maxRetries, zero: "never retry", example: "2",
		}),
		Adaptive: def.Adaptive,
	}}
	ad := &be.Admission
	ad.NewStreamsPerSecond = d.number(a["new_streams_per_second"], numberRule{
		def: def.Admission.NewStreamsPerSecond, max: maxRate, zero: "set no limit", example: "200",
	})
	ad.NewStreamsBurst = d.burst(a["new_streams_burst"], ad.NewStreamsPerSecond, a["new_streams_per_second"], "new_streams_per_second")
	be.ProxyProtocol = d.proxyVersion(a["proxy_protocol"])
	if hb := d.single(content.Blocks.OfType("health_check")); hb != nil {
		be.Health = d.healthCheck(hb)
	}
	if ab := d.single(content.Blocks.OfType("adaptive")); ab != nil {
		be.Adaptive = d.adaptive(ab)
	}
	if tb := d.single(content.Blocks.OfType("tls")); tb != nil {
		be.TLS = d.backendTLS(tb, be)
	}
	d.admission(be, a)
	return decoded[Backend]{value: be, block: b, attrs: a}
}

// nodes decodes the node blocks of backend b, whose address attribute is
// addr (nil when absent): a backend has either an address or node blocks.
// The result is nil without node blocks.
func (d *decoder) nodes(b *hcl.Block, addr *hcl.Attribute, blocks hcl.Blocks) []proxy.Node {
	switch {
	case addr == nil && !hasBlock(b.Body, "node"): // a node block without a label is reported already
		d.errorf(b.DefRange, nil, "Missing required argument",
			fmt.Sprintf(`%s has no address. Add one, e.g. address = "127.0.0.1:5262", or for a pool of servers one node block each, e.g. node %q {}.`,
				blockName(b), exampleNode))
	case addr != nil && len(blocks) > 0:
		server := "HOST:PORT"
		if v, diags := addr.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			server = v.AsString()
		}
		d.errorf(b.DefRange, nil, "Both address and node blocks",
			fmt.Sprintf("%s has an address (at %s) and %d node %s: keep one of the two. Keep address for a single server, "+
				"or the node blocks for a pool and remove address; to keep its server in the pool, make it a node block too: node %s {}.",
				blockName(b), position(addr.Range), len(blocks), plural("block", len(blocks)), hclString(server)))
	}
	var nodes []proxy.Node
	first := map[string]*hcl.Block{}
	for _, nb := range blocks {
		a := d.content(nb.Body, nodeSchema, "A node block").Attributes
		addr := d.addressAt(nb.Labels[0], nb.LabelRanges[0], &nb.DefRange, "", addrRule{example: exampleNode})
		if addr != "" {
			key := strings.ToLower(addr)
			if ap, err := netip.ParseAddrPort(addr); err == nil {
				key = ap.String()
			}
			if f, dup := first[key]; dup {
				d.errorf(nb.DefRange, nil, "Duplicate node",
					fmt.Sprintf("%s already has the node %q at %s. List each server once.", blockName(b), f.Labels[0], position(f.DefRange)))
			} else {
				first[key] = nb
			}
		}
		nodes = append(nodes, proxy.Node{
			Address: addr,
			MaxStreams: d.count(a["max_streams"], numberRule{
				max: maxCount, zero: "set no cap of its own", example: "2500",
			}),
		})
	}
	return nodes
}

// adaptive decodes a backend's adaptive block; nil when it turns adaptive
// admission off.
func (d *decoder) adaptive(b *hcl.Block) *limits.AdaptiveConfig {
	a := d.content(b.Body, adaptiveSchema, "An adaptive block").Attributes
	if !d.boolean(a["enabled"], true) {
		return nil
	}
	return &limits.AdaptiveConfig{
		Min: d.count(a["min_streams"], numberRule{
			def: limits.DefaultAdaptiveMin, min: 1, max: maxCount, example: "16",
		}),
		Initial: d.count(a["initial_streams"], numberRule{
			def: limits.DefaultAdaptiveInitial, min: 1, max: maxCount, example: "64",
		}),
		Tolerance: d.number(a["latency_tolerance"], numberRule{
			def: limits.DefaultAdaptiveTolerance, min: 1.1, max: 100, example: "2",
		}),
		Reprobe: d.duration(a["reprobe_after"], durationRule{def: limits.DefaultAdaptiveReprobe, example: "5s"}),
	}
}

// healthCheck decodes a backend's health_check block.
func (d *decoder) healthCheck(b *hcl.Block) proxy.HealthCheck {
	a := d.content(b.Body, healthCheckSchema, "A health_check block").Attributes
	h := proxy.HealthCheck{
		Interval: d.duration(d.required(b, a, "interval", "5s"), durationRule{example: "5s"}),
		Timeout:  d.duration(a["timeout"], durationRule{def: proxy.DefaultHealthTimeout, example: "2s"}),
		Domain:   proxy.DefaultHealthDomain,
	}
	if at := a["domain"]; at != nil {
		if s, ok := d.value(at, exampleDomain); ok {
			if why := xmppDomain(s); why != "" {
				d.errorf(at.Expr.Range(), &at.Range, "Invalid domain",
					fmt.Sprintf("%q is not a DNS name: %s. Write an XMPP domain the backend serves, e.g. domain = %q, or leave it out for %q.",
						s, why, exampleDomain, proxy.DefaultHealthDomain))
			} else {
				h.Domain = s
			}
		}
	}
	iv, to := a["interval"], a["timeout"]
	if h.Interval > 0 && h.Timeout >= h.Interval && (iv == nil || !d.reported(iv)) && (to == nil || !d.reported(to)) {
		at := iv
		if to != nil {
			at = to
		}
		d.errorf(at.Expr.Range(), &at.Range, "Health check timeout too long",
			fmt.Sprintf("timeout (%s) must be shorter than interval (%s), so that a check ends before the next one starts: "+
				"lower timeout, e.g. timeout = %q, or raise interval.", h.Timeout, h.Interval, (h.Interval/2).String()))
	}
	return h
}

// burst returns the value of a, the burst of a rate (a second) set by the
// attribute rateAttr, named rateName: 0 or absent means the default burst,
// defaultBurst(rate). A burst without a rate has no effect: a warning.
func (d *decoder) burst(a *hcl.Attribute, rate float64, rateAttr *hcl.Attribute, rateName string) int {
	n := d.count(a, numberRule{max: maxCount, zero: "take the default, one second's worth", example: "50"})
	switch {
	case n == 0:
		return defaultBurst(rate)
	case rate > 0:
		return n
	}
	if rateAttr == nil || !d.reported(rateAttr) { // a bad rate is reported already
		d.warnf(a.Expr.Range(), &a.Range, "Unused "+a.Name,
			fmt.Sprintf("%s sets no rate limit, so %s = %d has no effect. Set %s, or remove %s.",
				rateName, a.Name, n, rateName, a.Name))
	}
	return 0
}

// admission warns about the admission keys of backend be, with attributes a,
// that are set but cannot act as the file intends.
func (d *decoder) admission(be Backend, a hcl.Attributes) {
	if at := a["queue_timeout"]; at != nil && be.Admission.QueueTimeout > queueTimeoutWarn {
		d.warnf(at.Expr.Range(), &at.Range, "Long queue timeout",
			fmt.Sprintf("A queue timeout of %s is longer than %s. Most XMPP clients stop waiting for the server's reply sooner, "+
				"then reconnect and queue again, so a longer wait mostly holds sockets. Consider %s or less: queue_timeout = %s.",
				be.Admission.QueueTimeout, queueTimeoutWarn, proxy.DefaultQueueTimeout, hclString(proxy.DefaultQueueTimeout.String())))
	}
	if at := a["max_streams"]; at != nil && be.Admission.MaxStreams == 0 && be.Adaptive == nil {
		for _, name := range []string{"queue_size", "queue_timeout"} {
			if q := a[name]; q != nil && !d.reported(q) {
				d.warnf(q.Expr.Range(), &q.Range, "Unused "+name,
					fmt.Sprintf("max_streams = 0 with adaptive admission off sets no cap on streams to backend %q, so no client ever waits in the queue and %s has no effect. "+
						"Set max_streams to the streams the backend can hold, or remove %s.", be.Name, name, name))
			}
		}
	}
}

// backendReferences checks that every listener and route names a defined
// backend, and warns about backends that none names. routes[i] are the
// route blocks of listeners[i].
func (d *decoder) backendReferences(listeners []decoded[Listener], routes [][]decoded[Route], backends []decoded[Backend]) {
	var names []string
	byName := map[string]decoded[Backend]{}
	for _, b := range backends {
		if _, dup := byName[b.value.Name]; !dup {
			byName[b.value.Name] = b
			names = append(names, b.value.Name)
		}
	}
	used := map[string]bool{}
	// Which backends are unused is known only when every reference is valid.
	allNamed := len(listeners) > 0
	check := func(attr *hcl.Attribute, name, who string) {
		if attr == nil || name == "" {
			allNamed = false
			return // missing or invalid: already reported
		}
		used[name] = true
		if _, ok := byName[name]; ok {
			return
		}
		detail := fmt.Sprintf("%s names backend %q, but no backend block has that name.", who, name)
		if len(names) == 0 {
			detail += fmt.Sprintf(` No backend is defined: add one, e.g. backend %s { address = "127.0.0.1:5262" }.`, hclString(name))
		} else {
			if s := suggest(name, names); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			detail += " Defined backends: " + quoteList(names) + "."
		}
		d.errorf(attr.Expr.Range(), &attr.Range, "Unknown backend", detail)
	}
	for i, l := range listeners {
		who := fmt.Sprintf("listener %q", l.value.Name)
		if attr := present(l.attrs["backend"]); attr != nil || len(routes[i]) == 0 {
			check(attr, l.value.Backend, who)
		}
		for _, r := range routes[i] {
			check(r.attrs["backend"], r.value.Backend, fmt.Sprintf("route %q of %s", r.value.Domain, who))
		}
	}
	for _, name := range names {
		if used[name] || !allNamed {
			continue
		}
		b := byName[name]
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Unused backend",
			Detail: fmt.Sprintf("No listener names backend %q, so Guard never connects to it. "+
				"Point a listener at it with backend = %s, or remove the block.", name, hclString(name)),
			Subject: b.block.DefRange.Ptr(),
		})
	}
}

// listenAddresses checks that no two of the sockets Guard listens on, the
// admin endpoint's, the listeners' and the ACME http-01 solver's, overlap as
// the kernel binds them (see listenAddr): the second gets an error that
// names the first, says why the two are one socket when they are written
// differently, and proposes a port that nothing else in the file uses.
// Port 0 is exempt: each gets its own free port.
func (d *decoder) listenAddresses(admin decoded[Admin], acme decoded[*ACME], listeners []decoded[Listener]) {
	var addrs []*listenAddr
	add := func(what, addr string, at *hcl.Attribute) {
		if addr == "" || freePort(addr) {
			return
		}
		if la := newListenAddr(what, addr, at); la != nil {
			addrs = append(addrs, la)
		}
	}
	add("the admin endpoint", admin.value.Address, admin.attrs["address"])
	for _, l := range listeners {
		if at := l.attrs["address"]; at != nil {
			add(fmt.Sprintf("listener %q", l.value.Name), l.value.Address, at)
		}
	}
	if acme.value != nil {
		add("the ACME http-01 solver", acme.value.HTTPAddress, acme.attrs["http_address"])
	}

	used := map[int]bool{}
	for _, a := range addrs {
		used[a.port] = true
	}
	var seen []*listenAddr
	for _, a := range addrs {
		i := slices.IndexFunc(seen, func(o *listenAddr) bool { return sameSocket(a, o) })
		if i < 0 {
			seen = append(seen, a)
			continue
		}
		o := seen[i]
		where := "by default"
		if o.at != nil {
			where = "at " + position(o.at.Expr.Range())
		}
		if o.addr != a.addr {
			where += fmt.Sprintf(", as %q", o.addr)
		}
		detail := fmt.Sprintf("%s listens on %q, which %s already uses (%s)", a.what, a.addr, o.what, where)
		if rest, ok := strings.CutPrefix(detail, "the "); ok {
			detail = "The " + rest
		}
		if why := whySameSocket(a, o); why != "" {
			detail += ": " + why
		}
		free := a.port
		for p := a.port + 1; p <= 65535 && free == a.port; p++ {
			if !used[p] {
				free = p
			}
		}
		for p := a.port - 1; p > 0 && free == a.port; p-- {
			if !used[p] {
				free = p
			}
		}
		used[free] = true
		d.errorf(a.at.Expr.Range(), &a.at.Range, "Duplicate listen address",
			fmt.Sprintf("%s. Give each one its own port, e.g. %s = %s.", detail, a.at.Name,
				hclString(net.JoinHostPort(a.host, strconv.Itoa(free)))))
	}
}

// A listenAddr is an address Guard listens on, as the kernel binds it.
// Listeners, the admin endpoint and the ACME solver all listen with Go's
// "tcp" network, which leaves IPV6_V6ONLY off: a host that is empty,
// 0.0.0.0 or :: binds one socket for every IPv4 and IPv6 address of the
// port, which no other address of that port can then bind. A host name is
// bound at the address Go resolves it to when it listens: its first IPv4
// address, else its first.
type listenAddr struct {
	what string         // `listener "c2s"`, in messages
	addr string         // as written
	at   *hcl.Attribute // nil for a default
	host string
	port int

	every bool       // the host is empty, 0.0.0.0 or ::
	ip    netip.Addr // the host's address, unmapped; for a name, once resolved
	name  bool       // the host is a name, resolved (or not) into ip
	tried bool       // the name was looked up
}

// newListenAddr returns the listenAddr of addr, a valid HOST:PORT, or nil.
func newListenAddr(what, addr string, at *hcl.Attribute) *listenAddr {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return nil
	}
	a := &listenAddr{what: what, addr: addr, at: at, host: host, port: n}
	if ip, err := netip.ParseAddr(host); err == nil {
		a.ip = ip.Unmap()
		a.every = a.ip.WithZone("").IsUnspecified()
	} else {
		a.every, a.name = host == "", host != ""
	}
	return a
}

// resolve returns the address a host name is bound at, as Go resolves it
// when it listens; ok is false for a name that does not resolve.
func (a *listenAddr) resolve() (ip netip.Addr, ok bool) {
	if a.name && !a.tried {
		a.tried = true
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		defer cancel()
		if ips, err := lookupHost(ctx, a.host); err == nil && len(ips) > 0 {
			i := max(0, slices.IndexFunc(ips, func(ip netip.Addr) bool { return ip.Unmap().Is4() }))
			a.ip = ips[i].Unmap()
		}
	}
	return a.ip, a.ip.IsValid()
}

// lookupHost resolves the host names of listen addresses, as the net
// package does when Guard listens; a variable for tests.
var lookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// lookupTimeout bounds the lookup of a listen address's host name; only a
// name that shares its port with another listen address is looked up.
const lookupTimeout = 2 * time.Second

// sameSocket reports whether a and b cannot both be bound: the same port,
// and every address for either, or the same address (a name that does not
// resolve is only the same as itself).
func sameSocket(a, b *listenAddr) bool {
	if a.port != b.port {
		return false
	}
	if a.every || b.every || a.name && b.name && strings.EqualFold(a.host, b.host) {
		return true
	}
	ipA, okA := a.resolve()
	ipB, okB := b.resolve()
	return okA && okB && ipA == ipB
}

// whySameSocket explains why a and b, which sameSocket reports alike, are
// one socket although they are written differently; "" when they are
// written the same.
func whySameSocket(a, b *listenAddr) string {
	if a.addr == b.addr {
		return ""
	}
	var why []string
	for _, x := range []*listenAddr{a, b} {
		if ip, ok := x.resolve(); ok && x.name {
			why = append(why, fmt.Sprintf("Guard listens on %q at %s, the address the name resolves to", x.host, ip))
		}
	}
	switch {
	case a.every && b.every:
		why = append(why, `Guard listens on IPv4 and IPv6 with one socket, so "", "0.0.0.0" and "::" are the same host: every address of the port`)
	case a.every || b.every:
		every, one := a, b
		if b.every {
			every, one = b, a
		}
		what := one.host
		if ip, ok := one.resolve(); ok {
			what = ip.String()
		}
		why = append(why, fmt.Sprintf("%q takes every IPv4 and IPv6 address of port %d, %s included", every.addr, every.port, what))
	case a.name && b.name && strings.EqualFold(a.host, b.host):
		why = append(why, "host names do not depend on case")
	case !a.name && !b.name:
		why = append(why, fmt.Sprintf("both are %s", netip.AddrPortFrom(a.ip, uint16(a.port))))
	}
	return strings.Join(why, "; ")
}

// hasBlock reports whether body has a block of the given type, even one that
// failed to decode (for instance for lack of a label).
func hasBlock(body hcl.Body, typ string) bool {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	for _, b := range sb.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}
