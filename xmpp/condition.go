package xmpp

import "errors"

// Condition is a defined stream error condition of RFC 6120 section 4.9.3,
// the local name of the child element of <stream:error/>.
type Condition string

// The stream error conditions of RFC 6120 section 4.9.3.
const (
	// BadFormat: the entity sent XML that cannot be processed (RFC 6120 4.9.3.1).
	BadFormat Condition = "bad-format"
	// BadNamespacePrefix: the entity sent an unsupported namespace prefix, or
	// none where one is needed (RFC 6120 4.9.3.2).
	BadNamespacePrefix Condition = "bad-namespace-prefix"
	// Conflict: a new stream conflicts with an existing one (RFC 6120 4.9.3.3).
	Conflict Condition = "conflict"
	// ConnectionTimeout: the peer did not answer a liveness probe; not for
	// mere silence (RFC 6120 4.9.3.4).
	ConnectionTimeout Condition = "connection-timeout"
	// HostGone: the 'to' domain is no longer serviced (RFC 6120 4.9.3.5).
	HostGone Condition = "host-gone"
	// HostUnknown: the 'to' domain is not serviced (RFC 6120 4.9.3.6).
	HostUnknown Condition = "host-unknown"
	// ImproperAddressing: a stanza lacks a required 'to' or 'from' (RFC 6120 4.9.3.7).
	ImproperAddressing Condition = "improper-addressing"
	// InternalServerError: a misconfiguration or other internal error
	// (RFC 6120 4.9.3.8).
	InternalServerError Condition = "internal-server-error"
	// InvalidFrom: the 'from' address is not authorized (RFC 6120 4.9.3.9).
	InvalidFrom Condition = "invalid-from"
	// InvalidNamespace: the stream or content namespace is wrong
	// (RFC 6120 4.9.3.10).
	InvalidNamespace Condition = "invalid-namespace"
	// InvalidXML: the entity sent invalid XML (RFC 6120 4.9.3.11).
	InvalidXML Condition = "invalid-xml"
	// NotAuthorized: data was sent before the stream was authenticated
	// (RFC 6120 4.9.3.12).
	NotAuthorized Condition = "not-authorized"
	// NotWellFormed: the data is not namespace-well-formed XML
	// (RFC 6120 4.9.3.13).
	NotWellFormed Condition = "not-well-formed"
	// PolicyViolation: the entity violated a local service policy, such as a
	// stanza size limit (RFC 6120 4.9.3.14).
	PolicyViolation Condition = "policy-violation"
	// RemoteConnectionFailed: a remote entity needed for the stream could not
	// be reached (RFC 6120 4.9.3.15).
	RemoteConnectionFailed Condition = "remote-connection-failed"
	// Reset: the stream must be renegotiated, e.g. after a credential change
	// (RFC 6120 4.9.3.16).
	Reset Condition = "reset"
	// ResourceConstraint: the server lacks the resources to serve the stream
	// (RFC 6120 4.9.3.17).
	ResourceConstraint Condition = "resource-constraint"
	// RestrictedXML: comments, processing instructions, DTDs or entity
	// references outside the restricted XML profile (RFC 6120 4.9.3.18, 11.1).
	RestrictedXML Condition = "restricted-xml"
	// SeeOtherHost: the client should reconnect to another host, named in the
	// element's text as domain[:port] (RFC 6120 4.9.3.19).
	SeeOtherHost Condition = "see-other-host"
	// SystemShutdown: the server is shutting down (RFC 6120 4.9.3.20).
	SystemShutdown Condition = "system-shutdown"
	// UndefinedCondition: no other condition applies (RFC 6120 4.9.3.21).
	UndefinedCondition Condition = "undefined-condition"
	// UnsupportedEncoding: the stream is not encoded in UTF-8 (RFC 6120 4.9.3.22).
	UnsupportedEncoding Condition = "unsupported-encoding"
	// UnsupportedFeature: a mandatory stream feature is not supported
	// (RFC 6120 4.9.3.23).
	UnsupportedFeature Condition = "unsupported-feature"
	// UnsupportedStanzaType: a first-level child of the stream is not
	// supported (RFC 6120 4.9.3.24).
	UnsupportedStanzaType Condition = "unsupported-stanza-type"
	// UnsupportedVersion: the stream header's version is not supported
	// (RFC 6120 4.9.3.25).
	UnsupportedVersion Condition = "unsupported-version"
)

// conditions lists every defined condition in RFC order.
var conditions = [...]Condition{
	BadFormat, BadNamespacePrefix, Conflict, ConnectionTimeout, HostGone,
	HostUnknown, ImproperAddressing, InternalServerError, InvalidFrom,
	InvalidNamespace, InvalidXML, NotAuthorized, NotWellFormed, PolicyViolation,
	RemoteConnectionFailed, Reset, ResourceConstraint, RestrictedXML,
	SeeOtherHost, SystemShutdown, UndefinedCondition, UnsupportedEncoding,
	UnsupportedFeature, UnsupportedStanzaType, UnsupportedVersion,
}

// Conditions returns every condition defined by RFC 6120 section 4.9.3, in
// the RFC's order.
func Conditions() []Condition {
	out := conditions
	return out[:]
}

// ParseCondition returns the condition named s, for validating
// configuration. It reports false for anything RFC 6120 does not define.
func ParseCondition(s string) (Condition, bool) {
	c := Condition(s)
	_, ok := frames[c]
	return c, ok
}

// Valid reports whether c is a condition defined by RFC 6120.
func (c Condition) Valid() bool {
	_, ok := frames[c]
	return ok
}

// Sentinel stream errors, one per condition, for errors.Is. Any
// [StreamError] or [*SyntaxError] with the same condition matches, whatever
// its text.
var (
	ErrBadFormat              = StreamError{Condition: BadFormat}
	ErrBadNamespacePrefix     = StreamError{Condition: BadNamespacePrefix}
	ErrConflict               = StreamError{Condition: Conflict}
	ErrConnectionTimeout      = StreamError{Condition: ConnectionTimeout}
	ErrHostGone               = StreamError{Condition: HostGone}
	ErrHostUnknown            = StreamError{Condition: HostUnknown}
	ErrImproperAddressing     = StreamError{Condition: ImproperAddressing}
	ErrInternalServerError    = StreamError{Condition: InternalServerError}
	ErrInvalidFrom            = StreamError{Condition: InvalidFrom}
	ErrInvalidNamespace       = StreamError{Condition: InvalidNamespace}
	ErrInvalidXML             = StreamError{Condition: InvalidXML}
	ErrNotAuthorized          = StreamError{Condition: NotAuthorized}
	ErrNotWellFormed          = StreamError{Condition: NotWellFormed}
	ErrPolicyViolation        = StreamError{Condition: PolicyViolation}
	ErrRemoteConnectionFailed = StreamError{Condition: RemoteConnectionFailed}
	ErrReset                  = StreamError{Condition: Reset}
	ErrResourceConstraint     = StreamError{Condition: ResourceConstraint}
	ErrRestrictedXML          = StreamError{Condition: RestrictedXML}
	ErrSeeOtherHost           = StreamError{Condition: SeeOtherHost}
	ErrSystemShutdown         = StreamError{Condition: SystemShutdown}
	ErrUndefinedCondition     = StreamError{Condition: UndefinedCondition}
	ErrUnsupportedEncoding    = StreamError{Condition: UnsupportedEncoding}
	ErrUnsupportedFeature     = StreamError{Condition: UnsupportedFeature}
	ErrUnsupportedStanzaType  = StreamError{Condition: UnsupportedStanzaType}
	ErrUnsupportedVersion     = StreamError{Condition: UnsupportedVersion}
)

// ConditionOf returns the stream error condition carried by err or by an
// error it wraps: a [StreamError] or a [*SyntaxError].
func ConditionOf(err error) (Condition, bool) {
	var se StreamError
	if errors.As(err, &se) {
		return se.Condition, true
	}
	var pse *StreamError
	if errors.As(err, &pse) && pse != nil {
		return pse.Condition, true
	}
	var syn *SyntaxError
	if errors.As(err, &syn) && syn != nil {
		return syn.Condition, true
	}
	return "", false
}

// conditionOfTarget extracts the condition of an errors.Is target.
func conditionOfTarget(target error) (Condition, bool) {
	switch t := target.(type) {
	case StreamError:
		return t.Condition, true
	case *StreamError:
		if t != nil {
			return t.Condition, true
		}
	}
	return "", false
}
