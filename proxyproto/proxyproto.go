// Package proxyproto reads and writes PROXY protocol headers (versions 1 and
// 2) that carry a client's address across a layer-4 proxy.
//
// The format is HAProxy's "The PROXY protocol" specification
// (doc/proxy-protocol.txt in the HAProxy sources): version 1 is one line of
// text, "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n"; version 2 is a
// 16-byte binary prefix starting with the signature
// "\r\n\r\n\x00\r\nQUIT\n", an address block and optional TLVs.
//
// [Read] parses a header at the start of an accepted connection and consumes
// exactly its bytes, so what follows can go straight to the XMPP tokenizer.
// [Header.AppendV1] and [Header.AppendV2] render a header to send to a backend
// that accepts the protocol (Prosody's mod_net_proxy, ejabberd's
// use_proxy_protocol).
//
// # Trust
//
// A PROXY header lets its sender choose the address every per-address limit
// sees, so it must be accepted only from the balancers that are meant to send
// it, and the specification forbids guessing whether one is present. The
// intended use on a listener that expects the protocol:
//
//   - the peer's address is in the configured [Trusted] list: set a read
//     deadline (the specification suggests at least 3 seconds) and call
//     [Read]; any error, [ErrNoHeader] included, closes the connection;
//   - the peer is not trusted: do not call Read. Its bytes go to the XMPP
//     tokenizer as they are, and a spoofed header, which is not XML, is
//     refused there like any other garbage.
//
// # What Read accepts
//
// Version 1: "TCP4" and "TCP6" lines with addresses in the family's canonical
// text form (no leading zeros in IPv4 octets; IPv6 as [netip.ParseAddr] and
// inet_pton take it, so "::ffff:192.0.2.1" is accepted, as HAProxy prints
// it; no zones) and decimal ports 0–65535 without leading zeros, fields
// separated by exactly one space, ended by CRLF within 107 bytes. "UNKNOWN"
// is accepted and whatever follows it up to the CRLF is ignored. A lone CR or
// LF is an error.
//
// Version 2: version nibble 2; command LOCAL or PROXY; TCP over IPv4 or IPv6
// with the exact address block, followed by TLVs. Decisions where the
// specification leaves a choice:
//
//   - LOCAL (a balancer's health check): accepted whatever the family, the
//     whole block is skipped and no addresses or TLVs are returned.
//   - PROXY with an unspecified family or transport (0x0 nibble): accepted
//     like version 1 UNKNOWN, with no addresses; the block is skipped.
//   - PROXY over UDP or AF_UNIX: the whole header is consumed and Read returns
//     [ErrUnsupported]. The specification would let a receiver fall back to
//     the connection's own addresses; Guard refuses instead, because
//     silently charging every client to the balancer's address defeats the
//     per-address limits. A caller that wants the fallback may continue with
//     the connection after that error.
//   - Family or transport values the specification does not define, and
//     commands other than LOCAL and PROXY: [ErrMalformed].
//   - The TLV block may hold at most [MaxTLVBytes] bytes; a length field
//     announcing more is [ErrMalformed] before any of it is read, so Read
//     reads at most 16+216+MaxTLVBytes bytes. Each TLV must fit exactly.
//   - A PP2_TYPE_CRC32C TLV, if present, is verified (the specification
//     requires it of receivers that support it), and a mismatch is
//     ErrMalformed.
package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Command is the command of a version 2 header.
type Command uint8

const (
	// Local marks a connection the proxy made on its own behalf, typically
	// a health check. It carries no address: the receiver uses the
	// connection's own endpoints. It is the zero Command.
	Local Command = 0x0
	// Proxy marks a connection relayed for a client whose addresses the
	// header carries.
	Proxy Command = 0x1
)

// String returns "LOCAL", "PROXY" or the number of an unknown command.
func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return fmt.Sprintf("Command(%d)", uint8(c))
}

// Registered TLV types (section 2.2 of the specification). [Read] keeps every
// TLV raw, registered or not.
const (
	TypeALPN      = 0x01 // application protocol, as in TLS ALPN
	TypeAuthority = 0x02 // host name the client asked for, such as TLS SNI
	TypeCRC32C    = 0x03 // CRC32c of the whole header; verified by Read, filled in by AppendV2
	TypeNoop      = 0x04 // padding
	TypeUniqueID  = 0x05 // opaque connection ID, up to 128 bytes
	TypeSSL       = 0x20 // TLS details with sub-TLVs
	TypeNetNS     = 0x30 // network namespace name
)

// MaxTLVBytes bounds the TLV block of a version 2 header, each TLV's 3-byte
// type and length included. The specification allows up to 65535 bytes;
// balancers send a few dozen. [Read] rejects a larger block as [ErrMalformed]
// and [Header.AppendV2] writes no more than this.
const MaxTLVBytes = 2048

// maxV1Len is the longest version 1 line, CRLF included:
// "PROXY UNKNOWN " followed by two full IPv6 addresses and two 5-digit ports.
const maxV1Len = 107

// TLV is one type-length-value entry of a version 2 header.
type TLV struct {
	Type  byte
	Value []byte // at most 65535 bytes
}

// Header is a parsed PROXY protocol header, or one to send.
//
// Source and Dest are valid only when the header carries the client's
// addresses: Command is Proxy and the sender knew them. Otherwise (a version
// 2 LOCAL, a version 1 UNKNOWN, a version 2 PROXY with an unspecified
// family) they are zero, and the receiver uses the connection's own
// endpoints; check Source.IsValid().
type Header struct {
	// Version is 1 or 2 for a header returned by Read. AppendV1 and
	// AppendV2 ignore it.
	Version int
	// Command is Proxy or Local. Version 1 has no commands: Read reports
	// Proxy for every version 1 line.
	Command Command
	// Source is the client's address and port, Dest the address and port
	// the client connected to.
	Source, Dest netip.AddrPort
	// TLVs are the version 2 TLVs of a PROXY header in wire order, kept raw.
	// Their values share one buffer allocated by Read. Nil for version 1 and
	// LOCAL.
	TLVs []TLV
}

// Lookup returns the value of the first TLV of type t.
func (h Header) Lookup(t byte) ([]byte, bool) {
	for _, tlv := range h.TLVs {
		if tlv.Type == t {
			return tlv.Value, true
		}
	}
	return nil, false
}

// Errors returned by Read, matched with errors.Is. The returned errors are
// [*Error] values that add the reason.
var (
	// ErrNoHeader means the first bytes are not a PROXY protocol signature:
	// neither "PROXY" nor the version 2 signature, for instance a client
	// that speaks XMPP directly.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrMalformed means the bytes start like a header but break the
	// specification or this package's bounds.
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrUnsupported means a well-formed version 2 header for a transport
	// Guard does not relay (UDP, AF_UNIX). The header has been consumed.
	ErrUnsupported = errors.New("proxyproto: unsupported header")
)

// Error is the error Read returns for a header it rejects: Kind is
// [ErrNoHeader], [ErrMalformed] or [ErrUnsupported], Reason says why.
type Error struct {
	Kind   error
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap returns Kind, so that errors.Is(err, ErrMalformed) works.
func (e *Error) Unwrap() error { return e.Kind }

func malformed(format string, args ...any) error {
	return &Error{Kind: ErrMalformed, Reason: fmt.Sprintf(format, args...)}
}

// prefixLen is how much Read reads before it knows the version: the shortest
// version 1 line ("PROXY UNKNOWN\r\n") is 15 bytes and a version 2 header at
// least 16, so 15 bytes never reach past a header.
const prefixLen = 15

// Read reads one PROXY protocol header from r, which must be positioned at
// the start of the connection, and returns it.
//
// Read consumes exactly the header and nothing after it, so the caller can
// hand r to the next parser. Version 2 takes three reads (the prefix, the
// rest of the fixed 16 bytes, the announced block). Version 1 has no length
// field, so Read reads the line in pieces no longer than the shortest valid
// rest of the line, down to single bytes near the CRLF: a typical TCP4 or
// TCP6 line takes six to eight reads, the longest TCP6 line 16 and the
// longest UNKNOWN line, whose content Read cannot predict, 47. (A line
// that ends too early to be valid, such as one missing a field, may be read
// a few bytes past its CRLF before Read rejects it.) Read never reads more
// than 107 bytes for version 1 or 16+216+[MaxTLVBytes] for version 2.
//
// Read does not set deadlines: the caller sets one on the connection first,
// and Read returns as soon as r returns an error.
//
// Errors: [ErrNoHeader], [ErrMalformed] and [ErrUnsupported] as [*Error]
// values (see the package documentation for what each covers); with
// ErrUnsupported the header has been consumed and the returned Header has
// Version 2 and Command Proxy but no addresses. An error
// from r is returned wrapped: io.EOF if the connection ended before any
// byte, io.ErrUnexpectedEOF if it ended inside a header, or a timeout. If the
// bytes read before an error from r already rule out a header, the error is
// ErrNoHeader instead.
func Read(r io.Reader) (Header, error) {
	var buf [maxV1Len]byte
	n, err := io.ReadFull(r, buf[:prefixLen])
	p := buf[:n]
	isV1 := matchPrefix(p, "PROXY")
	isV2 := matchPrefix(p, sigV2)
	if !isV1 && !isV2 {
		return Header{}, &Error{Kind: ErrNoHeader, Reason: fmt.Sprintf("starts with %q", p)}
	}
	if err != nil {
		return Header{}, ioError(err, n)
	}
	if isV1 {
		return readV1(r, &buf)
	}
	return readV2(r, &buf)
}

// matchPrefix reports whether p and sig agree on their common length.
func matchPrefix(p []byte, sig string) bool {
	m := min(len(p), len(sig))
	return string(p[:m]) == sig[:m]
}

func ioError(err error, n int) error {
	return fmt.Errorf("proxyproto: reading header after %d bytes: %w", n, err)
}
