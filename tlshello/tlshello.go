// Package tlshello reads what a TLS client says in the clear before any
// key is agreed: the server name (SNI) and the application protocols
// (ALPN) of its ClientHello, so that a proxy can route a TLS connection it
// does not terminate (XEP-0368 Direct TLS passed through to the XMPP
// server). It does no I/O: Parse takes the bytes a connection began with
// and says whether they hold a whole ClientHello, and what it asks for.
//
// The ClientHello may span several TLS records (RFC 8446 5.1 allows a
// handshake message to be fragmented); Parse joins their payloads. Only
// the fields it reports are checked beyond the framing: a ClientHello that
// parses here may still fail the server's handshake.
package tlshello

import (
	"errors"
	"fmt"
)

// MaxHello bounds the ClientHello Parse accepts (the handshake message,
// without record headers). Browsers' hellos with post-quantum key shares
// are about 2 KB; 64 KiB leaves room for any real client.
const MaxHello = 64 << 10

// ErrShort: the bytes so far are the start of a ClientHello, not all of it;
// read more and call Parse again with everything.
var ErrShort = errors.New("tlshello: incomplete ClientHello")

// Error is a connection that does not start with a well-formed ClientHello.
type Error struct{ Msg string }

func (e *Error) Error() string { return "tlshello: " + e.Msg }

func bad(format string, a ...any) error { return &Error{fmt.Sprintf(format, a...)} }

// Hello is what a ClientHello asks for.
type Hello struct {
	// ServerName is the host_name of the server_name extension (RFC 6066
	// 3), as sent; "" without one.
	ServerName string
	// ALPN is the protocols offered in the application_layer_protocol_
	// negotiation extension (RFC 7301), in the client's order; nil
	// without one.
	ALPN []string
	// Len is how many bytes of the input the records carrying the
	// ClientHello take (the rest, if any, came after it).
	Len int
}

const (
	recordHandshake = 22
	typeClientHello = 1
	extServerName   = 0
	extALPN         = 16
	maxRecord       = 1<<14 + 2048 // RFC 8446 5.2: the most a record may carry, with room for TLS 1.2's expansion
)

// Parse reads the ClientHello at the start of b: the bytes a connection
// began with. It returns ErrShort while b is a prefix of one, an *Error
// when b cannot begin one.
func Parse(b []byte) (Hello, error) {
	msg, n, err := handshakeMessage(b)
	if err != nil {
		return Hello{}, err
	}
	h, err := parseClientHello(msg)
	h.Len = n
	return h, err
}

// handshakeMessage joins the payloads of the handshake records at the
// start of b until they hold the first handshake message, which it returns
// with the bytes its records take.
func handshakeMessage(b []byte) (msg []byte, n int, err error) {
	var payload []byte
	for {
		if len(b)-n < 5 {
			return nil, 0, shortOr(b[n:], n == 0)
		}
		h := b[n : n+5]
		if h[0] != recordHandshake {
			return nil, 0, bad("not a TLS handshake record (first byte %#x)", h[0])
		}
		if h[1] != 3 {
			return nil, 0, bad("record version %d.%d is not TLS", h[1], h[2])
		}
		size := int(h[3])<<8 | int(h[4])
		if size == 0 || size > maxRecord {
			return nil, 0, bad("record length %d", size)
		}
		if len(b)-n-5 < size {
			return nil, 0, ErrShort
		}
		// Most hellos fit one record: no copy then; a fragmented one is
		// joined in a slice of its own, once.
		switch {
		case n == 0:
			payload = b[5 : 5+size]
		case n == 5+len(payload):
			payload = append(append(make([]byte, 0, 2*len(payload)+size), payload...), b[n+5:n+5+size]...)
		default:
			payload = append(payload, b[n+5:n+5+size]...)
		}
		n += 5 + size
		if len(payload) < 4 {
			continue
		}
		if payload[0] != typeClientHello {
			return nil, 0, bad("first handshake message is type %d, not ClientHello", payload[0])
		}
		l := int(payload[1])<<16 | int(payload[2])<<8 | int(payload[3])
		if l > MaxHello {
			return nil, 0, bad("ClientHello of %d bytes", l)
		}
		if len(payload)-4 >= l {
			return payload[4 : 4+l], n, nil
		}
	}
}

// shortOr is ErrShort, unless the first bytes of a connection (first)
// already show it is no TLS.
func shortOr(b []byte, first bool) error {
	if first && len(b) > 0 && b[0] != recordHandshake {
		return bad("not a TLS handshake record (first byte %#x)", b[0])
	}
	if first && len(b) > 1 && b[1] != 3 {
		return bad("record version %d is not TLS", b[1])
	}
	return ErrShort
}

// reader takes a ClientHello's fields in order; a read past its end sets
// the error and returns nothing.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = bad("ClientHello truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint8() int {
	v := r.bytes(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *reader) uint16() int {
	v := r.bytes(2)
	if v == nil {
		return 0
	}
	return int(v[0])<<8 | int(v[1])
}

// vector reads a vector with a length of lenBytes (1 or 2) bytes.
func (r *reader) vector(lenBytes int) reader {
	var n int
	if lenBytes == 1 {
		n = r.uint8()
	} else {
		n = r.uint16()
	}
	return reader{b: r.bytes(n), err: r.err}
}

// parseClientHello reads the body of a ClientHello (RFC 8446 4.1.2).
func parseClientHello(msg []byte) (Hello, error) {
	r := reader{b: msg}
	r.bytes(2 + 32) // legacy_version, random
	if sid := r.vector(1); len(sid.b) > 32 {
		return Hello{}, bad("session id of %d bytes", len(sid.b))
	}
	if cs := r.vector(2); r.err == nil && (len(cs.b) < 2 || len(cs.b)%2 != 0) {
		return Hello{}, bad("cipher suites of %d bytes", len(cs.b))
	}
	if cm := r.vector(1); r.err == nil && len(cm.b) < 1 {
		return Hello{}, bad("no compression methods")
	}
	if r.err != nil {
		return Hello{}, r.err
	}
	var h Hello
	if len(r.b) == 0 {
		return h, nil // no extensions (TLS 1.2 and earlier allow it)
	}
	exts := r.vector(2)
	if r.err != nil || len(r.b) != 0 {
		return Hello{}, bad("extensions do not fill the ClientHello")
	}
	seen := map[int]bool{}
	for len(exts.b) > 0 {
		typ := exts.uint16()
		data := exts.vector(2)
		if exts.err != nil {
			return Hello{}, exts.err
		}
		if seen[typ] {
			return Hello{}, bad("extension %d twice", typ) // RFC 8446 4.2
		}
		seen[typ] = true
		var err error
		switch typ {
		case extServerName:
			h.ServerName, err = serverName(data)
		case extALPN:
			h.ALPN, err = protocols(data)
		}
		if err != nil {
			return Hello{}, err
		}
	}
	return h, nil
}

// serverName reads the server_name extension: the host_name entry.
func serverName(r reader) (string, error) {
	list := r.vector(2)
	if r.err != nil || len(r.b) != 0 || len(list.b) == 0 {
		return "", bad("malformed server_name extension")
	}
	var name string
	for len(list.b) > 0 {
		typ := list.uint8()
		v := list.vector(2)
		if list.err != nil {
			return "", bad("malformed server_name extension")
		}
		if typ == 0 { // host_name; RFC 6066 allows one
			if name != "" || len(v.b) == 0 {
				return "", bad("malformed server_name extension")
			}
			name = string(v.b)
		}
	}
	return name, nil
}

// protocols reads the ALPN extension's protocol names.
func protocols(r reader) ([]string, error) {
	list := r.vector(2)
	if r.err != nil || len(r.b) != 0 || len(list.b) == 0 {
		return nil, bad("malformed ALPN extension")
	}
	var out []string
	for len(list.b) > 0 {
		p := list.vector(1)
		if list.err != nil || len(p.b) == 0 {
			return nil, bad("malformed ALPN extension")
		}
		out = append(out, string(p.b))
	}
	return out, nil
}
