package proxy

import (
	"bytes"

	"github.com/guard-xmpp/guard/xmpp"
)

// Stream features Guard rewrites on streams whose TLS it terminates: the
// backend's <starttls/> is removed (the client already has TLS, with Guard;
// Openfire's plaintext port offers it by default). SASL -PLUS mechanisms
// (channel binding) cannot work across a TLS-terminating proxy; editing
// them out in flight would look like a downgrade to clients that implement
// XEP-0474, so Guard only reports them.

var (
	startTLSOpen = []byte("<starttls")
	startTLSEnd  = []byte("</starttls>")
	plusMech     = []byte("-PLUS</mechanism>")
)

// rewriteFeatures returns b with the <starttls/> element of the features at
// b[start:end] removed (b itself if there is none), and whether the
// features offer a SASL -PLUS mechanism.
func rewriteFeatures(b []byte, start, end int) (out []byte, plus bool) {
	f := b[start:end]
	plus = bytes.Contains(f, plusMech)
	i := bytes.Index(f, startTLSOpen)
	if i < 0 || (len(f) > i+len(startTLSOpen) && !isTagEnd(f[i+len(startTLSOpen)])) {
		return b, plus
	}
	// The element ends at "/>" of a self-closing tag or at </starttls>.
	gt := bytes.IndexByte(f[i:], '>')
	if gt < 0 {
		return b, plus
	}
	j := i + gt + 1
	if f[i+gt-1] != '/' {
		k := bytes.Index(f[j:], startTLSEnd)
		if k < 0 {
			return b, plus
		}
		j += k + len(startTLSEnd)
	}
	out = make([]byte, 0, len(b)-(j-i))
	out = append(out, b[:start+i]...)
	out = append(out, b[start+j:]...)
	return out, plus
}

func isTagEnd(c byte) bool {
	return c == ' ' || c == '/' || c == '>' || c == '\t' || c == '\n' || c == '\r'
}

// Guard's own features and answers on a STARTTLS listener (RFC 6120 5.4).
const (
	tlsNS            = "urn:ietf:params:xml:ns:xmpp-tls"
	startTLSFeatures = "<stream:features><starttls xmlns='" + tlsNS + "'><required/></starttls></stream:features>"
	proceedTLS       = "<proceed xmlns='" + tlsNS + "'/>"
)

// isStartTLS reports whether a unit the client sent is the STARTTLS command.
func isStartTLS(unit []byte) bool {
	u := bytes.TrimSpace(unit)
	return bytes.HasPrefix(u, startTLSOpen) && len(u) > len(startTLSOpen) && isTagEnd(u[len(startTLSOpen)]) &&
		bytes.Contains(u, []byte(tlsNS))
}

// outgoing returns the units to write to the client: the backend's stream
// features rewritten where Guard terminates TLS (no <starttls/>), with a
// backend offering SASL -PLUS mechanisms reported, and with Guard's limits
// advertised (streamlimits.go).
func (r *relay) outgoing(b []byte, s scan) []byte {
	if s.featEnd == 0 {
		return b
	}
	out, end := b, s.featEnd
	if r.terminatesTLS {
		var plus bool
		out, plus = rewriteFeatures(b, s.featStart, s.featEnd)
		end -= len(b) - len(out)
		if plus {
			r.metrics.channelBindingOffered()
			r.log.Warn("the backend offers SASL -PLUS mechanisms (channel binding), which cannot work through a TLS-terminating proxy; turn them off on the backend (docs/tls.md)")
		}
	}
	if !r.cfg.Advertise {
		return out
	}
	maxBytes := r.cfg.MaxStanzaSize
	if maxBytes <= 0 {
		maxBytes = xmpp.DefaultMaxUnit
	}
	return withLimits(out, s.featStart, end, maxBytes, r.cfg.Timeouts.Idle)
}

// withoutPlus returns the element b (stream features, or anything else)
// without its SASL -PLUS mechanisms, which cannot work where Guard holds the
// client's TLS: on a WebSocket, the TLS is the WebSocket's, and a client
// there would try channel binding that fails. b itself if it has none.
func withoutPlus(b []byte) []byte {
	if !bytes.Contains(b, plusMech) {
		return b
	}
	out := make([]byte, 0, len(b))
	for {
		i := bytes.Index(b, plusMech)
		if i < 0 {
			return append(out, b...)
		}
		start := bytes.LastIndex(b[:i], []byte("<mechanism>"))
		if start < 0 {
			return append(out, b...)
		}
		out = append(out, b[:start]...)
		b = b[i+len(plusMech):]
	}
}
