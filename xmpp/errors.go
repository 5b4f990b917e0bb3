package xmpp

import (
	"strconv"
	"unicode/utf8"
)

// StreamsNS is the namespace of the stream header and of <stream:error/>
// (RFC 6120 section 4.8.1).
const StreamsNS = "http://etherx.jabber.org/streams"

// ErrorsNS is the namespace of the stream error conditions and their text
// (RFC 6120 section 4.9.2).
const ErrorsNS = "urn:ietf:params:xml:ns:xmpp-streams"

// StreamEnd is the closing tag of a stream. It must not be modified.
var StreamEnd = []byte("</stream:stream>")

// StreamError is an XMPP stream error (RFC 6120 section 4.9): a condition,
// an optional human-readable text and, for see-other-host, the new host.
//
// Compare with errors.Is against the Err* sentinels: any StreamError or
// [*SyntaxError] with the same condition matches.
type StreamError struct {
	Condition Condition
	// Text is an optional description for the peer's logs; it is rendered
	// escaped inside <text/>.
	Text string
	// SeeOtherHost is the domain[:port] of another node, rendered as the
	// content of <see-other-host/> (RFC 6120 4.9.3.19). Only used with the
	// SeeOtherHost condition.
	SeeOtherHost string
}

// Error implements error.
func (e StreamError) Error() string {
	s := "xmpp: stream error " + string(e.Condition)
	if e.SeeOtherHost != "" && e.Condition == SeeOtherHost {
		s += " " + e.SeeOtherHost
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is a StreamError (or *StreamError) with the same
// condition, so that errors.Is(err, ErrPolicyViolation) works whatever the
// text.
func (e StreamError) Is(target error) bool {
	c, ok := conditionOfTarget(target)
	return ok && c == e.Condition
}

// AppendTo appends the complete error frame to b and returns the extended
// slice: <stream:error/> with the condition, the optional text, and the
// closing </stream:stream>. A condition RFC 6120 does not define is rendered
// as undefined-condition. Without Text (and for conditions other than
// see-other-host) the frame is copied from a pre-rendered table and AppendTo
// allocates nothing when b has room.
func (e StreamError) AppendTo(b []byte) []byte {
	c := e.Condition
	if !c.Valid() {
		c = UndefinedCondition
	}
	if e.Text == "" && c != SeeOtherHost {
		return append(b, frames[c]...)
	}
	b = append(b, "<stream:error><"...)
	b = append(b, c...)
	b = append(b, " xmlns='"+ErrorsNS+"'"...)
	if c == SeeOtherHost {
		b = append(b, '>')
		b = appendEscaped(b, e.SeeOtherHost)
		b = append(b, "</see-other-host>"...)
	} else {
		b = append(b, "/>"...)
	}
	if e.Text != "" {
		b = append(b, "<text xmlns='"+ErrorsNS+"'>"...)
		b = appendEscaped(b, e.Text)
		b = append(b, "</text>"...)
	}
	b = append(b, "</stream:error>"...)
	return append(b, StreamEnd...)
}

// frames holds the rendered error frame, without text, of each condition.
var frames = func() map[Condition][]byte {
	m := make(map[Condition][]byte, len(conditions))
	for _, c := range conditions {
		m[c] = []byte("<stream:error><" + string(c) + " xmlns='" + ErrorsNS + "'/></stream:error></stream:stream>")
	}
	return m
}()

// SyntaxError reports bytes that the [Tokenizer] or [ParseHeader] rejects,
// together with the stream error condition to answer with: not-well-formed,
// restricted-xml, policy-violation (limits), bad-namespace-prefix,
// invalid-namespace, unsupported-encoding or bad-format.
type SyntaxError struct {
	Condition Condition
	// Offset is the position of the offending byte: for a Tokenizer, counted
	// from the start of the stream (since the last Reset); for ParseHeader,
	// from the start of its input.
	Offset int64
	// Msg is a short description, safe to send to the peer as error text.
	Msg string
	// Limit names the limit a policy-violation hit: LimitSize or
	// LimitDepth; empty for other errors.
	Limit string
	// AfterEnd is set for bytes other than white space after the stream's
	// closing tag (not-well-formed).
	AfterEnd bool
}

// The limits a [SyntaxError] names.
const (
	LimitSize  = "size"  // a unit longer than its size limit
	LimitDepth = "depth" // nesting deeper than [Tokenizer.MaxDepth]
	// LimitFraming: a transport's framing broken (XMPP over WebSocket: a
	// binary frame, a message that is not one element).
	LimitFraming = "framing"
)

// Error implements error.
func (e *SyntaxError) Error() string {
	return "xmpp: " + string(e.Condition) + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Is reports whether target is a [StreamError] with the same condition.
func (e *SyntaxError) Is(target error) bool {
	c, ok := conditionOfTarget(target)
	return ok && c == e.Condition
}

// StreamError returns the stream error to send for e, with Msg as its text.
func (e *SyntaxError) StreamError() StreamError {
	return StreamError{Condition: e.Condition, Text: e.Msg}
}

// appendEscaped appends s escaped for use in XML text and in attribute
// values delimited by either quote. Invalid UTF-8 and characters XML forbids
// are replaced by U+FFFD so the output is always well-formed.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '\'':
				b = append(b, "&apos;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '\t' || c == '\n' || c == '\r':
				// Escaped so that attribute value normalisation keeps them.
				b = append(b, "&#x"...)
				b = strconv.AppendUint(b, uint64(c), 16)
				b = append(b, ';')
			case c < 0x20:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !isChar(r) {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}
