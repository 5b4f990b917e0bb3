package proxy

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the one map from what went wrong (a tokenizer's syntax
// error, a header the parser rejects, a read's error) to the policy.Event
// that decides the stream error, and from events to metrics reasons.

// Pseudo-events of readHeader that end a connection without a stream error.
const (
	closedEvent     policy.Event = "closed"      // Guard closed the socket
	clientGoneEvent policy.Event = "client-gone" // the peer reset the connection
	eofEvent        policy.Event = "eof"         // the peer closed the connection
)

// eventForSyntax maps a tokenizer error on client input to its policy event.
func eventForSyntax(se *xmpp.SyntaxError) policy.Event {
	if se.AfterEnd {
		return policy.ClientAfterEnd
	}
	switch se.Condition {
	case xmpp.RestrictedXML:
		return policy.RestrictedXML
	case xmpp.PolicyViolation:
		switch se.Limit {
		case xmpp.LimitDepth:
			return policy.NestingTooDeep
		case xmpp.LimitFraming:
			return policy.BadFraming
		}
		return policy.StanzaTooLarge
	case xmpp.InvalidNamespace, xmpp.BadNamespacePrefix:
		return policy.BadNamespace
	default:
		return policy.NotWellFormed
	}
}

// headerEvent maps a header the parser rejects to its policy event.
func headerEvent(err error) policy.Event {
	c, _ := xmpp.ConditionOf(err)
	switch c {
	case xmpp.InvalidNamespace, xmpp.BadNamespacePrefix:
		return policy.BadNamespace
	case xmpp.UnsupportedVersion:
		return policy.BadVersion
	case xmpp.RestrictedXML:
		return policy.RestrictedXML
	case xmpp.PolicyViolation:
		return policy.StanzaTooLarge
	default:
		return policy.NotWellFormed
	}
}

// readEvent maps the error of a read while waiting for a stream header to
// its event: a pseudo-event when the connection ended without a word.
func readEvent(err error) policy.Event {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return policy.HandshakeTimeout
	case errors.Is(err, net.ErrClosed):
		return closedEvent
	case err == io.EOF:
		return eofEvent
	default:
		return clientGoneEvent
	}
}

// backendHeaderEvent maps what went wrong while waiting for the backend's
// header to the event the client hears of.
func backendHeaderEvent(ev policy.Event) policy.Event {
	switch ev {
	case policy.HandshakeTimeout:
		return policy.BackendStalled
	case clientGoneEvent:
		return policy.BackendReset
	case eofEvent:
		return policy.BackendClosed
	case closedEvent:
		return policy.Shutdown
	default:
		return policy.BackendGarbage
	}
}

// backendEvent maps a failed read or write on a relayed backend socket.
func backendEvent(err error) policy.Event {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return policy.BackendStalled
	}
	return policy.BackendReset
}

// errText is the detail of a parser's error, for the stream error's text.
func errText(err error) string {
	var se *xmpp.SyntaxError
	if errors.As(err, &se) {
		return se.Msg
	}
	var ste xmpp.StreamError
	if errors.As(err, &ste) {
		return ste.Text
	}
	return ""
}

// eventReason turns a policy event into a metrics reason label.
func eventReason(ev policy.Event) string {
	b := []byte(ev)
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}
