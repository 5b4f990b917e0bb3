// Package policy decides which stream error Guard sends for each event that
// ends a stream: pure functions of the event and the configured overrides.
package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/guard-xmpp/guard/xmpp"
)

// Event is something that makes Guard end a client's stream.
type Event string

// The events, with the default decision of each in Defaults.
const (
	QueueFull         Event = "queue-full"          // no admission slot and no room in the wait queue
	QueueTimeout      Event = "queue-timeout"       // no admission slot within the queue timeout
	PoolUnavailable   Event = "pool-unavailable"    // every node of the backend's pool is down or full
	RateLimited       Event = "rate-limited"        // a connection-rate limit was exceeded
	AddressLimit      Event = "address-limit"       // too many connections from one address
	DomainLimit       Event = "domain-limit"        // too many s2s streams from one domain
	DomainRate        Event = "domain-rate"         // a domain opened s2s streams faster than its rate
	Denied            Event = "denied"              // the client's address is on a deny list
	StanzaTooLarge    Event = "stanza-too-large"    // a stanza or header exceeded its size limit
	NestingTooDeep    Event = "nesting-too-deep"    // a stanza nested elements deeper than max_depth
	NotWellFormed     Event = "not-well-formed"     // the client sent XML that is not well-formed
	RestrictedXML     Event = "restricted-xml"      // a comment, PI, DTD or entity reference (RFC 6120 11.1)
	BadNamespace      Event = "bad-namespace"       // the stream header's namespaces are wrong
	BadVersion        Event = "bad-version"         // the stream header's version is not supported
	HostUnknown       Event = "host-unknown"        // the stream's to domain is not served here
	HandshakeTimeout  Event = "handshake-timeout"   // the stream header did not arrive in time
	ProbeUnanswered   Event = "probe-unanswered"    // the client did not answer a liveness probe
	IdleTimeout       Event = "idle-timeout"        // the hard idle limit passed with no traffic
	Shutdown          Event = "shutdown"            // Guard is draining for shutdown
	BackendRefused    Event = "backend-refused"     // the backend could not be reached
	BackendReset      Event = "backend-reset"       // the backend's connection broke
	BackendStalled    Event = "backend-stalled"     // the backend did not answer in time
	BackendGarbage    Event = "backend-garbage"     // the backend sent something that is not XMPP
	BackendClosed     Event = "backend-closed"      // the backend closed TCP without closing its stream
	ClientAfterEnd    Event = "client-after-end"    // the client sent data after closing its stream
	BytesBeforeHeader Event = "bytes-before-header" // the client sent something other than a stream header first
	TLSRequired       Event = "tls-required"        // the client did not start TLS where the listener requires it
	BadFraming        Event = "bad-framing"         // a WebSocket client sent a binary frame, or not one element per message
)

// Decision is the stream error sent for an event.
type Decision struct {
	Condition xmpp.Condition
	Text      string // optional human-readable text, sent in <text/>
}

// Defaults is the table of ../shared/DESIGN.md: the decision for each event
// when the configuration overrides nothing.
var Defaults = map[Event]Decision{
	QueueFull:         {"resource-constraint", "the server is at capacity; try again later"},
	QueueTimeout:      {"resource-constraint", "no capacity became free in time; try again later"},
	PoolUnavailable:   {"resource-constraint", "no server is available; try again later"},
	RateLimited:       {"policy-violation", "too many new connections; slow down"},
	AddressLimit:      {"policy-violation", "too many connections from your address"},
	DomainLimit:       {"policy-violation", "too many streams from your domain"},
	DomainRate:        {"policy-violation", "too many new streams from your domain; slow down"},
	Denied:            {"policy-violation", "connections from your address are not accepted"},
	StanzaTooLarge:    {"policy-violation", "stanza too large"},
	NestingTooDeep:    {"policy-violation", ""}, // the parser's text names the limit
	NotWellFormed:     {"not-well-formed", ""},
	RestrictedXML:     {"restricted-xml", ""},
	BadNamespace:      {"invalid-namespace", ""},
	BadVersion:        {"unsupported-version", ""},
	HostUnknown:       {"host-unknown", ""},
	HandshakeTimeout:  {"connection-timeout", "no stream header in time"},
	ProbeUnanswered:   {"connection-timeout", "no answer to a keepalive"},
	IdleTimeout:       {"connection-timeout", "idle too long"},
	Shutdown:          {"system-shutdown", ""},
	BackendRefused:    {"internal-server-error", "backend unreachable"},
	BackendReset:      {"internal-server-error", "backend connection reset"},
	BackendStalled:    {"internal-server-error", "backend did not answer in time"},
	BackendGarbage:    {"internal-server-error", "backend sent malformed data"},
	BackendClosed:     {"internal-server-error", "backend closed the connection"},
	ClientAfterEnd:    {"not-well-formed", "data after the end of the stream"},
	BytesBeforeHeader: {"not-well-formed", "expected a stream header"},
	TLSRequired:       {"policy-violation", "TLS is required"},
	BadFraming:        {"policy-violation", ""}, // the framing's text says what was wrong
}

// Events returns every event name, sorted, for configuration validation.
func Events() []string {
	out := make([]string, 0, len(Defaults))
	for e := range Defaults {
		out = append(out, string(e))
	}
	sort.Strings(out)
	return out
}

// redirectable events may answer with see-other-host: the ones where another
// node can serve the client (overload and shutdown).
var redirectable = map[Event]bool{QueueFull: true, QueueTimeout: true, PoolUnavailable: true, Shutdown: true}

// Override replaces the default decision of one event.
type Override struct {
	Condition xmpp.Condition // "" keeps the default condition
	Text      *string        // nil keeps the default text; "" sends none
}

// Config is what the configuration says about stream errors.
type Config struct {
	// SeeOtherHost is domain[:port] of another node serving the same XMPP
	// domain; required when any event is overridden to see-other-host.
	SeeOtherHost string
	// SeeOtherURI is the ws:// or wss:// URI of another node's WebSocket
	// endpoint: where see-other-host is decided for a WebSocket client,
	// Guard redirects it with <close see-other-uri/> (RFC 7395 3.6.1)
	// instead, since a web client cannot use a host and port. "": none.
	SeeOtherURI string
	Overrides   map[Event]Override
}

// Policy answers which stream error to send. It is immutable; build a new
// one to change it.
type Policy struct {
	table        map[Event]Decision
	seeOtherHost string
	seeOtherURI  string
}

// SeeOtherURI is the WebSocket endpoint clients are redirected to (Config).
func (p *Policy) SeeOtherURI() string { return p.seeOtherURI }

// New validates c against the defaults and returns the resulting Policy.
func New(c Config) (*Policy, error) {
	p := &Policy{table: make(map[Event]Decision, len(Defaults)), seeOtherHost: c.SeeOtherHost, seeOtherURI: c.SeeOtherURI}
	for e, d := range Defaults {
		p.table[e] = d
	}
	var errs []string
	for e, o := range c.Overrides {
		d, ok := p.table[e]
		if !ok {
			errs = append(errs, fmt.Sprintf("unknown event %q (known: %s)", e, strings.Join(Events(), ", ")))
			continue
		}
		if o.Condition != "" {
			if _, ok := xmpp.ParseCondition(string(o.Condition)); !ok {
				errs = append(errs, fmt.Sprintf("event %q: %q is not an RFC 6120 stream error condition", e, o.Condition))
				continue
			}
			if o.Condition == "see-other-host" {
				if !redirectable[e] {
					errs = append(errs, fmt.Sprintf("event %q: see-other-host is only for overload and shutdown events", e))
					continue
				}
				if c.SeeOtherHost == "" {
					errs = append(errs, fmt.Sprintf("event %q: see-other-host needs see_other_host (domain[:port])", e))
					continue
				}
			}
			d.Condition = o.Condition
		}
		if o.Text != nil {
			d.Text = *o.Text
		}
		p.table[e] = d
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("policy: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// Context is what is known about the stream when the event happens.
type Context struct {
	// TLSPending is true on a TLS listener before TLS is established:
	// see-other-host must not be sent then (RFC 6120 4.9.3.19), so the
	// redirect falls back to resource-constraint or system-shutdown.
	TLSPending bool
}

// Decide returns the stream error for ev.
func (p *Policy) Decide(ev Event, ctx Context) xmpp.StreamError {
	d, ok := p.table[ev]
	if !ok {
		d = Decision{Condition: "undefined-condition", Text: string(ev)}
	}
	if d.Condition == "see-other-host" {
		if ctx.TLSPending {
			fallback := Defaults[ev]
			if fallback.Condition == "see-other-host" {
				fallback.Condition = "resource-constraint"
			}
			return xmpp.StreamError{Condition: fallback.Condition, Text: d.Text}
		}
		return xmpp.StreamError{Condition: d.Condition, Text: d.Text, SeeOtherHost: p.seeOtherHost}
	}
	return xmpp.StreamError{Condition: d.Condition, Text: d.Text}
}
