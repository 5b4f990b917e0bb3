package xmpp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Content namespaces of client and server streams (RFC 6120 section 4.8.2).
const (
	ClientNS = "jabber:client"
	ServerNS = "jabber:server"
)

// Header holds the attributes of a stream header (RFC 6120 section 4.7).
// Values are unescaped; absent attributes are empty.
type Header struct {
	To, From, ID string
	// Version is the version attribute as sent. RFC 6120 4.7.5 reads a
	// missing version as "0.9"; see [Header.VersionNumbers].
	Version string
	// Lang is xml:lang.
	Lang string
	// NS is the content namespace, the default xmlns (jabber:client or
	// jabber:server).
	NS string
	// StreamNS is the namespace bound to Prefix, normally StreamsNS.
	StreamNS string
	// Prefix is the prefix of the header's qualified name, normally "stream".
	Prefix string
}

// ParseHeader parses one stream header start tag, as reported by a
// [Tokenizer], optionally preceded by an XML declaration and followed by
// white space. References in attribute values are resolved.
//
// Malformed input yields a [*SyntaxError] (not-well-formed, restricted-xml,
// unsupported-encoding) and a partial Header. A header that is well-formed
// but unacceptable yields the complete Header and a [StreamError]:
// bad-namespace-prefix (prefix missing or not declared), invalid-namespace
// (name not stream, stream namespace not StreamsNS, content namespace
// neither ClientNS nor ServerNS), bad-format (version not "major.minor") or
// unsupported-version (major version above 1). The Header then still tells
// the caller whom to answer with its own header before the error.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	s := scanner{b: b}
	s.space()
	if bytes.HasPrefix(s.rest(), []byte("<?xml")) {
		k := bytes.Index(s.rest(), []byte("?>"))
		if k < 0 {
			return h, s.errorf(NotWellFormed, "unterminated XML declaration")
		}
		if err := checkDecl(s.rest()[:k+2]); err != nil {
			err.Offset += int64(s.i)
			return h, err
		}
		s.i += k + 2
		s.space()
	}
	if !s.byte('<') {
		return h, s.errorf(NotWellFormed, "no stream header")
	}
	qname, err := s.name()
	if err != nil {
		return h, err
	}
	local := qname
	if k := strings.IndexByte(qname, ':'); k >= 0 {
		h.Prefix, local = qname[:k], qname[k+1:]
	}
	var seen []string // attribute names, for duplicate detection
	hasStreamNS := false
	for {
		sp := s.space()
		switch {
		case s.eof():
			return h, s.errorf(NotWellFormed, "unterminated stream header")
		case s.byte('>'):
		case s.peek() == '/':
			return h, s.errorf(NotWellFormed, "self-closing stream header")
		case !sp:
			return h, s.errorf(NotWellFormed, "missing white space before attribute")
		default:
			at := s.i
			name, value, err := s.attr()
			if err != nil {
				return h, err
			}
			for _, n := range seen {
				if n == name {
					s.i = at
					return h, s.errorf(NotWellFormed, "duplicate attribute "+name)
				}
			}
			seen = append(seen, name)
			switch name {
			case "to":
				h.To = value
			case "from":
				h.From = value
			case "id":
				h.ID = value
			case "version":
				h.Version = value
			case "xml:lang":
				h.Lang = value
			case "xmlns":
				h.NS = value
			default:
				if h.Prefix != "" && name == "xmlns:"+h.Prefix {
					h.StreamNS, hasStreamNS = value, true
				}
			}
			continue
		}
		break
	}
	s.space()
	if !s.eof() {
		return h, s.errorf(NotWellFormed, "data after the stream header")
	}
	return h, h.check(local, hasStreamNS)
}

// check validates the names, namespaces and version of a parsed header.
func (h Header) check(local string, hasStreamNS bool) error {
	switch {
	case h.Prefix == "":
		return StreamError{Condition: BadNamespacePrefix, Text: "stream header without the stream namespace prefix"}
	case local != "stream":
		return StreamError{Condition: InvalidNamespace, Text: "root element is not stream"}
	case !hasStreamNS:
		return StreamError{Condition: BadNamespacePrefix, Text: "stream namespace prefix not declared"}
	case h.StreamNS != StreamsNS:
		return StreamError{Condition: InvalidNamespace, Text: "stream namespace is not " + StreamsNS}
	case h.NS != ClientNS && h.NS != ServerNS:
		return StreamError{Condition: InvalidNamespace, Text: "content namespace is neither " + ClientNS + " nor " + ServerNS}
	}
	major, _, ok := h.VersionNumbers()
	switch {
	case !ok:
		return StreamError{Condition: BadFormat, Text: "version is not major.minor"}
	case major > 1:
		return StreamError{Condition: UnsupportedVersion, Text: "version " + h.Version + " not supported"}
	}
	return nil
}

// VersionNumbers returns the stream version as integers (RFC 6120 4.7.5):
// (0, 9) when the version attribute is missing, ok false when it is not
// "major.minor" in decimal digits.
func (h Header) VersionNumbers() (major, minor int, ok bool) {
	if h.Version == "" {
		return 0, 9, true
	}
	a, b, found := strings.Cut(h.Version, ".")
	if !found {
		return 0, 0, false
	}
	if major, ok = versionPart(a); !ok {
		return 0, 0, false
	}
	if minor, ok = versionPart(b); !ok {
		return 0, 0, false
	}
	return major, minor, true
}

// versionPart parses one decimal part of a version, ignoring leading zeros
// and saturating instead of overflowing.
func versionPart(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		if n < 1<<20 {
			n = n*10 + int(s[i]-'0')
		}
	}
	return n, true
}

// AppendTo appends h rendered as Guard's own response header to b: an XML
// declaration and a stream:stream start tag declaring the content namespace
// NS (ClientNS if empty) and StreamsNS, followed by to, from, id, version
// and xml:lang for the fields that are not empty, with values escaped.
// Prefix and StreamNS are ignored: the prefix is always "stream".
func (h Header) AppendTo(b []byte) []byte {
	ns := h.NS
	if ns == "" {
		ns = ClientNS
	}
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"...)
	b = appendEscaped(b, ns)
	b = append(b, "' xmlns:stream='"+StreamsNS+"'"...)
	b = appendAttr(b, "to", h.To)
	b = appendAttr(b, "from", h.From)
	b = appendAttr(b, "id", h.ID)
	b = appendAttr(b, "version", h.Version)
	b = appendAttr(b, "xml:lang", h.Lang)
	return append(b, '>')
}

// appendAttr appends ` name='value'` if value is not empty.
func appendAttr(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = appendEscaped(b, value)
	return append(b, '\'')
}

// NewStreamID returns a fresh stream id (RFC 6120 4.7.3): 16 hexadecimal
// digits from crypto/rand.
func NewStreamID() string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(r[:])
}

// checkDecl validates a complete XML declaration "<?xml ... ?>": version
// 1.x, an optional encoding that must be UTF-8, an optional standalone. The
// error offset is relative to b.
func checkDecl(b []byte) *SyntaxError {
	if k := bytes.IndexByte(b, '&'); k >= 0 {
		return &SyntaxError{Condition: NotWellFormed, Offset: int64(k), Msg: "reference in XML declaration"}
	}
	s := scanner{b: b, i: len("<?xml")}
	seen := 0 // pseudo-attributes come in order: version, encoding, standalone
	for {
		sp := s.space()
		if s.hasPrefix("?>") {
			if seen == 0 || s.i+2 != len(b) {
				return s.errorf(NotWellFormed, "malformed XML declaration")
			}
			return nil
		}
		if !sp {
			return s.errorf(NotWellFormed, "malformed XML declaration")
		}
		at := s.i
		name, value, err := s.attr()
		if err != nil {
			return err
		}
		switch {
		case name == "version" && seen == 0:
			if !strings.HasPrefix(value, "1.") || len(value) == 2 || strings.Trim(value[2:], "0123456789") != "" {
				return &SyntaxError{Condition: NotWellFormed, Offset: int64(at), Msg: "XML version must be 1.x"}
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(value, "UTF-8") {
				return &SyntaxError{Condition: UnsupportedEncoding, Offset: int64(at), Msg: "encoding must be UTF-8 (RFC 6120 11.6)"}
			}
			seen = 2
		case name == "standalone" && (seen == 1 || seen == 2):
			if value != "yes" && value != "no" {
				return &SyntaxError{Condition: NotWellFormed, Offset: int64(at), Msg: "standalone must be yes or no"}
			}
			seen = 3
		default:
			return &SyntaxError{Condition: NotWellFormed, Offset: int64(at), Msg: "malformed XML declaration"}
		}
	}
}

// scanner is a cursor over a complete start tag or declaration, for the
// cold paths that parse what the Tokenizer has delimited.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) eof() bool               { return s.i >= len(s.b) }
func (s *scanner) rest() []byte            { return s.b[s.i:] }
func (s *scanner) hasPrefix(p string) bool { return bytes.HasPrefix(s.b[s.i:], []byte(p)) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.b[s.i]
}

// byte consumes c if it is next.
func (s *scanner) byte(c byte) bool {
	if !s.eof() && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// space skips white space and reports whether there was any.
func (s *scanner) space() bool {
	start := s.i
	for !s.eof() && isSpace(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func (s *scanner) errorf(c Condition, msg string) *SyntaxError {
	return &SyntaxError{Condition: c, Offset: int64(s.i), Msg: msg}
}

// name scans an XML name.
func (s *scanner) name() (string, *SyntaxError) {
	start := s.i
	for !s.eof() {
		r, size := utf8.DecodeRune(s.b[s.i:])
		ok := isNameChar(r)
		if s.i == start {
			ok = isNameStart(r)
		}
		if !ok || (r == utf8.RuneError && size == 1) {
			break
		}
		s.i += size
	}
	if s.i == start {
		return "", s.errorf(NotWellFormed, "name expected")
	}
	name := string(s.b[start:s.i])
	// Names must be QNames (Namespaces in XML 1.0, RFC 6120 11.2).
	if k := strings.IndexByte(name, ':'); k == 0 || k == len(name)-1 || strings.Count(name, ":") > 1 {
		s.i = start
		return "", s.errorf(NotWellFormed, "name is not a qualified name")
	}
	return name, nil
}

// attr scans name = 'value' and returns the value with references resolved
// and white space normalised (XML 1.0 section 3.3.3).
func (s *scanner) attr() (name, value string, err *SyntaxError) {
	if name, err = s.name(); err != nil {
		return "", "", err
	}
	s.space()
	if !s.byte('=') {
		return "", "", s.errorf(NotWellFormed, "attribute without '='")
	}
	s.space()
	q := s.peek()
	if q != '\'' && q != '"' {
		return "", "", s.errorf(NotWellFormed, "attribute value not quoted")
	}
	s.i++
	var v []byte
	for {
		if s.eof() {
			return "", "", s.errorf(NotWellFormed, "unterminated attribute value")
		}
		c := s.b[s.i]
		switch {
		case c == q:
			s.i++
			return name, string(v), nil
		case c == '<':
			return "", "", s.errorf(NotWellFormed, "'<' in attribute value")
		case c == '&':
			r, err := s.ref()
			if err != nil {
				return "", "", err
			}
			v = utf8.AppendRune(v, r)
		case isSpace(c):
			v = append(v, ' ')
			s.i++
		case c < 0x20:
			return "", "", s.errorf(NotWellFormed, "control character in attribute value")
		case c < utf8.RuneSelf:
			v = append(v, c)
			s.i++
		default:
			r, size := utf8.DecodeRune(s.rest())
			if r == utf8.RuneError && size == 1 {
				return "", "", s.errorf(NotWellFormed, "invalid UTF-8")
			}
			if !isChar(r) {
				return "", "", s.errorf(NotWellFormed, "character not allowed in XML")
			}
			v = append(v, s.b[s.i:s.i+size]...)
			s.i += size
		}
	}
}

// ref scans a reference starting at '&': one of the five predefined
// entities or a character reference.
func (s *scanner) ref() (rune, *SyntaxError) {
	k := bytes.IndexByte(s.rest(), ';')
	if k < 0 {
		return 0, s.errorf(NotWellFormed, "unterminated reference")
	}
	body := string(s.b[s.i+1 : s.i+k])
	var r rune = -1
	switch body {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "quot":
		r = '"'
	case "apos":
		r = '\''
	default:
		if strings.HasPrefix(body, "#") {
			num, base := body[1:], 10
			if strings.HasPrefix(num, "x") {
				num, base = num[1:], 16
			}
			digits := "0123456789"
			if base == 16 {
				digits = "0123456789abcdefABCDEF"
			}
			if num == "" || strings.Trim(num, digits) != "" {
				return 0, s.errorf(NotWellFormed, "malformed character reference")
			}
			num = strings.TrimLeft(num, "0")
			v, err := strconv.ParseUint("0"+num, base, 32)
			if err != nil || v > utf8.MaxRune || !isChar(rune(v)) {
				return 0, s.errorf(NotWellFormed, "character reference to a character XML forbids")
			}
			r = rune(v)
		} else {
			sub := scanner{b: []byte(body)}
			if _, err := sub.name(); err != nil || !sub.eof() {
				return 0, s.errorf(NotWellFormed, "malformed reference")
			}
			return 0, s.errorf(RestrictedXML, "entity reference not allowed (RFC 6120 11.1)")
		}
	}
	s.i += k + 1
	return r, nil
}
