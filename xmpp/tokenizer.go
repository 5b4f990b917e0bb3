package xmpp

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// Kind says what a unit reported by [Tokenizer.Next] is.
type Kind uint8

// The kinds of unit of an XMPP stream.
const (
	// KindNone: no unit ended; feed more bytes.
	KindNone Kind = iota
	// KindDecl: the XML declaration <?xml version='1.0'?>, allowed right
	// before a stream header (also before a restart header).
	KindDecl
	// KindHeader: a stream header start tag <stream:stream ...>, the first
	// one of a stream or a restart (after STARTTLS or SASL success).
	KindHeader
	// KindElement: a complete top-level element (a stanza, features, SASL
	// or other first-level child of the stream), from '<' to its end tag.
	KindElement
	// KindSpace: white space between top-level units, e.g. a keepalive.
	KindSpace
	// KindEnd: the closing </stream:stream> tag.
	KindEnd
)

var kindNames = [...]string{"none", "decl", "header", "element", "space", "end"}

// String returns the kind's lower-case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Default limits of a Tokenizer.
const (
	// DefaultMaxUnit is the largest top-level element NewTokenizer(0) accepts.
	DefaultMaxUnit = 256 << 10
	// DefaultMaxHeader is the default limit of a stream header start tag.
	DefaultMaxHeader = 4 << 10
	// maxDecl is the limit of an XML declaration, whose bytes the tokenizer
	// keeps to validate them.
	maxDecl = 128
)

// state is the scanner's position in the XML grammar.
type state uint8

const (
	sTop         state = iota // between units
	sSpace                    // white space between units
	sOpen                     // after '<'
	sStartName                // element name of a start tag
	sTag                      // in a start tag after white space: attribute, '/' or '>'
	sAfterValue               // after an attribute value's closing quote
	sAttrName                 // attribute name
	sAttrEq                   // white space before '='
	sAttrQuote                // white space between '=' and the opening quote
	sAttrValue                // attribute value
	sEmptyEnd                 // after '/' of a self-closing tag: want '>'
	sEndName                  // end tag name, compared with the open element
	sEndSpace                 // white space before an end tag's '>'
	sText                     // character data inside a top-level element
	sTextBracket              // after ']' in character data (watching for "]]>")
	sRef                      // after '&'
	sRefName                  // entity name
	sRefHash                  // after "&#"
	sRefDec                   // decimal character reference
	sRefHex                   // hexadecimal character reference
	sUTF8                     // inside a multi-byte UTF-8 sequence split across calls
	sBang                     // after "<!"
	sCDATAOpen                // matching "[CDATA["
	sCDATA                    // CDATA section content
	sCDATAEnd                 // after ']' in a CDATA section
	sPI                       // after "<?": matching "xml"
	sDecl                     // XML declaration
)

var streamsNSBytes = []byte(StreamsNS)

// A Tokenizer splits one direction of an XMPP stream into units: XML
// declarations, stream headers, top-level elements, white space and the
// stream's end tag. It checks well-formedness and the restricted XML profile
// of RFC 6120 section 11.1 as it goes, without building a tree and, once
// warmed up, without allocating.
//
// The tokenizer is incremental: [Tokenizer.Next] is given only bytes it has
// not seen, and the caller keeps the bytes of the unit in progress. A unit
// split at any byte boundary gives the same result.
//
// Rules where XML leaves room:
//   - Before the first header only an XML declaration, white space and the
//     header are allowed. The declaration may also come right before a
//     restart header, at most once per header, and must then be followed by
//     that header.
//   - A stream header is a start tag named P:stream whose prefix P is bound
//     on that tag to [StreamsNS]. A restart is a start tag, between
//     top-level elements, with the same qualified name as the stream's
//     header; it may omit the binding, which it inherits. An unprefixed
//     header is rejected with bad-namespace-prefix, a prefix bound to another
//     namespace with invalid-namespace.
//   - Between top-level elements only literal white space is allowed (no
//     character references or CDATA).
//   - After </stream:stream> only white space is allowed; a new stream needs
//     [Tokenizer.Reset].
//   - Element and attribute names follow XML 1.0 fifth edition and must be
//     QNames (at most one ':', not first or last), as RFC 6120 11.2 asks for
//     namespace-well-formed XML. "]]>" in character data is rejected.
//   - Limits: a top-level element may have maxUnit bytes, a header
//     MaxHeader, an XML declaration 128; white space runs are cut into units
//     of at most maxUnit bytes rather than rejected.
//   - An attribute name may appear once in a start tag (XML 1.0, "Unique
//     Att Spec"): a repeated one is not-well-formed. Unbound namespace
//     prefixes inside stanzas are left to the server.
//   - Nesting is bounded only by the size limit unless MaxDepth is set
//     (XMPP servers bound the stanza's size, not its depth; the stack of
//     open names is part of the stanza's bytes).
//
// A Tokenizer is not safe for concurrent use.
type Tokenizer struct {
	// MaxHeader limits the size of a stream header start tag in bytes;
	// zero means DefaultMaxHeader. Set it before the first call to Next.
	MaxHeader int
	// MaxDepth limits element nesting within a top-level element, which is
	// at depth 1; zero means no limit beyond the size of the element. A
	// deeper element is a policy-violation whose text names the limit.
	MaxDepth int

	maxUnit int
	state   state
	ret     state // state to return to after a reference or split rune
	kind    Kind  // kind of the unit in progress, once known
	cap     int   // size limit of the unit in progress
	unitLen int   // bytes of the unit in progress given to earlier calls
	off     int64 // stream offset of the next byte Next is given
	err     *SyntaxError

	// The stack of open elements: names holds their names back to back and
	// ends[i] the end of the i-th name. The stream header is at depth 1.
	names []byte
	ends  []int32

	// The attribute names of the start tag being scanned, back to back:
	// attrEnds[i] is the end of the i-th in attrs. Past attrLinear of them
	// a hash table of their indices (attrIndex, open addressing, -1 for
	// empty) finds a repeated one: a start tag may carry thousands.
	attrs     []byte
	attrEnds  []int32
	attrIndex []int32

	closed     bool // </stream:stream> seen
	needHeader bool // an XML declaration was seen: a header must follow

	nameLen int  // bytes of the name being scanned
	colon   int  // nameLen after the name's ':', 0 if none
	quote   byte // quote of the attribute value being scanned
	count   int  // ']' run, match position or end tag position, by state

	refVal rune // value of the character reference being scanned
	refLen int  // digits or name bytes of the reference being scanned
	refBuf [4]byte

	u8  [utf8.UTFMax]byte // a rune split across calls
	u8n uint8

	// Header namespace check: on a header candidate (hdr), attribute names
	// are compared with want ("xmlns:" + prefix) and the value of a match
	// with StreamsNS.
	hdr        bool
	want       []byte
	cmpNS      bool // the target is StreamsNS, not want
	cmpPos     int
	cmpBad     bool
	isNSDecl   bool
	nsDeclared bool
	nsOK       bool

	// The XML declaration being scanned, allocated for it and dropped
	// after it (it comes once per stream start): a held stream keeps
	// none.
	decl  *[maxDecl]byte
	declN int
}

// NewTokenizer returns a Tokenizer expecting a stream header, which reports a
// policy-violation for any top-level element longer than maxUnit bytes
// (DefaultMaxUnit if maxUnit <= 0).
func NewTokenizer(maxUnit int) *Tokenizer {
	if maxUnit <= 0 {
		maxUnit = DefaultMaxUnit
	}
	return &Tokenizer{
		MaxHeader: DefaultMaxHeader,
		maxUnit:   maxUnit,
		names:     make([]byte, 0, 64),
		ends:      make([]int32, 0, 8),
		want:      make([]byte, 0, 16),
	}
}

// Reset returns t to the start of a fresh stream, expecting an XML
// declaration or a stream header, as after TLS is established. It clears an
// error and sets the offset back to zero; limits are kept.
func (t *Tokenizer) Reset() {
	*t = Tokenizer{
		MaxHeader: t.MaxHeader,
		MaxDepth:  t.MaxDepth,
		maxUnit:   t.maxUnit,
		names:     t.names[:0],
		ends:      t.ends[:0],
		want:      t.want[:0],
		attrs:     t.attrs[:0],
		attrEnds:  t.attrEnds[:0],
		attrIndex: t.attrIndex[:0],
	}
}

// UnitLen returns the number of bytes of the unit in progress, the bytes the
// caller must keep until the unit is complete.
func (t *Tokenizer) UnitLen() int { return t.unitLen }

// Offset returns the number of stream bytes consumed since the last Reset.
func (t *Tokenizer) Offset() int64 { return t.off }

// Depth returns the number of open elements, the stream element included:
// 0 before the stream header and after the stream's end, 1 between
// top-level elements.
func (t *Tokenizer) Depth() int { return len(t.ends) }

// MaxUnit returns the size limit of a top-level element.
func (t *Tokenizer) MaxUnit() int { return t.maxUnit }

// Err returns the error that stopped t, or nil.
func (t *Tokenizer) Err() error {
	if t.err == nil {
		return nil
	}
	return t.err
}

// Next scans p, the stream bytes that follow those given to earlier calls.
// It returns how many bytes of p it consumed and, if a unit ended at p[n-1],
// the unit's kind. The unit is everything from the end of the previous unit
// through p[n-1]; the caller forwards it and passes p[n:] to the next call.
// With kind KindNone, n is len(p): the unit is incomplete and its bytes must
// be kept. White space between units is reported as soon as it is seen,
// coalesced within one call.
//
// An error is a [*SyntaxError]; n then counts the bytes before the offending
// one, and every later call returns the same error until Reset.
func (t *Tokenizer) Next(p []byte) (n int, kind Kind, err error) {
	if t.err != nil {
		return 0, KindNone, t.err
	}
	end := len(p)
	if t.state != sTop {
		end = t.limit(len(p))
	}
	i := 0
	for i < end {
		c := p[i]
		switch t.state {
		case sTop:
			if isSpace(c) {
				t.begin(KindSpace, t.maxUnit)
				end = t.limit(len(p))
				t.state = sSpace
				i++
				continue
			}
			switch {
			case t.closed:
				t.fail(i, NotWellFormed, "data after the end of the stream")
				t.err.AfterEnd = true
				return t.failed(i)
			case c != '<' && len(t.ends) == 0:
				return t.fail(i, NotWellFormed, "bytes before the stream header")
			case c != '<':
				return t.fail(i, NotWellFormed, "text between top-level elements")
			}
			if len(t.ends) == 0 {
				t.begin(KindNone, t.maxHeader())
			} else {
				t.begin(KindNone, t.maxUnit)
			}
			end = t.limit(len(p))
			if len(t.ends) > 0 {
				switch j, r := t.startTag(p[:end], i); {
				case r == tagEmpty:
					return t.emit(j, KindElement)
				case r == tagOpen:
					i = j
					t.state = sText
					continue
				case j > i:
					i = j
					continue
				}
			}
			t.state = sOpen
			i++

		case sSpace:
			for i < end && isSpace(p[i]) {
				i++
			}
			if i < end {
				return t.emit(i, KindSpace)
			}

		case sOpen:
			if !t.open(i, c) {
				return t.failed(i)
			}
			if t.state != sStartName {
				i++
			}

		case sStartName:
			j := i
			for j < end && ctab[p[j]]&cNameFast != 0 {
				j++
			}
			t.names = append(t.names, p[i:j]...)
			t.nameLen += j - i
			i = j
			if i == end {
				continue
			}
			c = p[i]
			if c >= utf8.RuneSelf {
				if i = t.scanRune(p, i, end, sStartName); t.err != nil {
					return t.failed(i)
				}
				continue
			}
			if c == ':' {
				if !t.nameColon(i) {
					return t.failed(i)
				}
				t.names = append(t.names, c)
				i++
				continue
			}
			if !(isSpace(c) || c == '>' || c == '/') {
				return t.fail(i, NotWellFormed, "invalid character in element name")
			}
			if !t.endName(i) || !t.classify(i) {
				return t.failed(i)
			}
			end = t.limit(len(p))
			if i >= end {
				continue // the unit is already too long
			}
			i++
			switch c {
			case '>':
				if k := t.startTagEnd(i-1, false); k != KindNone || t.err != nil {
					return t.done(i, k)
				}
			case '/':
				t.state = sEmptyEnd
			default:
				t.state = sTag
			}

		case sTag:
			for i < end && isSpace(p[i]) {
				i++
			}
			if i == end {
				continue
			}
			c = p[i]
			switch {
			case c == '>':
				i++
				if k := t.startTagEnd(i-1, false); k != KindNone || t.err != nil {
					return t.done(i, k)
				}
			case c == '/':
				t.state = sEmptyEnd
				i++
			case ctab[c]&cNameStart != 0 || c >= utf8.RuneSelf:
				t.beginAttr()
			default:
				return t.fail(i, NotWellFormed, "invalid character in start tag")
			}

		case sAfterValue:
			switch {
			case isSpace(c):
				t.state = sTag
			case c == '>':
				i++
				if k := t.startTagEnd(i-1, false); k != KindNone || t.err != nil {
					return t.done(i, k)
				}
				continue
			case c == '/':
				t.state = sEmptyEnd
			default:
				return t.fail(i, NotWellFormed, "missing white space between attributes")
			}
			i++

		case sAttrName:
			j := i
			for j < end && ctab[p[j]]&cNameFast != 0 {
				j++
			}
			t.attrs = append(t.attrs, p[i:j]...)
			if t.hdr {
				t.feed(p[i:j])
			}
			t.nameLen += j - i
			i = j
			if i == end {
				continue
			}
			c = p[i]
			if c >= utf8.RuneSelf {
				if i = t.scanRune(p, i, end, sAttrName); t.err != nil {
					return t.failed(i)
				}
				continue
			}
			if c == ':' {
				if !t.nameColon(i) {
					return t.failed(i)
				}
				t.attrs = append(t.attrs, ':')
				if t.hdr {
					t.feed(p[i : i+1])
				}
				i++
				continue
			}
			if !t.endName(i) || !t.endAttrName(i) {
				return t.failed(i)
			}
			switch {
			case isSpace(c):
				t.state = sAttrEq
			case c == '=':
				t.state = sAttrQuote
			default:
				return t.fail(i, NotWellFormed, "invalid character in attribute name")
			}
			i++

		case sAttrEq:
			switch {
			case isSpace(c):
			case c == '=':
				t.state = sAttrQuote
			default:
				return t.fail(i, NotWellFormed, "attribute without '='")
			}
			i++

		case sAttrQuote:
			switch {
			case isSpace(c):
			case c == '\'' || c == '"':
				t.quote = c
				t.state = sAttrValue
			default:
				return t.fail(i, NotWellFormed, "attribute value not quoted")
			}
			i++

		case sAttrValue:
			j := i
			for j < end && ctab[p[j]]&cStopAttr == 0 {
				j++
			}
			if t.hdr && t.isNSDecl {
				t.feed(p[i:j])
			}
			i = j
			if i == end {
				continue
			}
			switch c = p[i]; {
			case c == t.quote:
				t.endAttrValue()
				t.state = sAfterValue
			case c == '\'' || c == '"':
				if t.hdr && t.isNSDecl {
					t.feed(p[i : i+1])
				}
			case c == '<':
				return t.fail(i, NotWellFormed, "'<' in attribute value")
			case c == '&':
				t.ret = sAttrValue
				t.state = sRef
			case c >= utf8.RuneSelf:
				if i = t.scanRune(p, i, end, sAttrValue); t.err != nil {
					return t.failed(i)
				}
				continue
			default:
				return t.fail(i, NotWellFormed, "control character in attribute value")
			}
			i++

		case sEmptyEnd:
			if c != '>' {
				return t.fail(i, NotWellFormed, "'/' not followed by '>' in start tag")
			}
			i++
			if k := t.startTagEnd(i-1, true); k != KindNone || t.err != nil {
				return t.done(i, k)
			}

		case sEndName:
			top := t.top()
			for i < end && t.count < len(top) && p[i] == top[t.count] {
				i++
				t.count++
			}
			if i == end {
				continue
			}
			c = p[i]
			if t.count < len(top) || !(isSpace(c) || c == '>') {
				return t.fail(i, NotWellFormed, "end tag does not match <"+string(top)+">")
			}
			if c == '>' {
				i++
				if k := t.endTagEnd(); k != KindNone {
					return t.emit(i, k)
				}
				continue
			}
			t.state = sEndSpace
			i++

		case sEndSpace:
			switch {
			case isSpace(c):
			case c == '>':
				i++
				if k := t.endTagEnd(); k != KindNone {
					return t.emit(i, k)
				}
				continue
			default:
				return t.fail(i, NotWellFormed, "invalid character in end tag")
			}
			i++

		case sText:
			j, k := t.fast(p[:end], i)
			if k != KindNone {
				return t.emit(j, k)
			}
			if i = j; t.state != sText || i == end {
				continue
			}
			switch c = p[i]; {
			case c == '<':
				t.state = sOpen
			case c == '&':
				t.ret = sText
				t.state = sRef
			case c == ']':
				t.count = 1
				t.state = sTextBracket
			case c >= utf8.RuneSelf:
				if i = t.scanRune(p, i, end, sText); t.err != nil {
					return t.failed(i)
				}
				continue
			default:
				return t.fail(i, NotWellFormed, "control character in text")
			}
			i++

		case sTextBracket:
			// "]]>" must not appear in character data (XML 1.0 production [14]).
			switch c {
			case ']':
				t.count = 2
			case '>':
				if t.count >= 2 {
					return t.fail(i, NotWellFormed, "']]>' in text")
				}
				t.state = sText
			default:
				t.state = sText
				continue // rescan c as text
			}
			i++

		case sRef:
			switch {
			case c == '#':
				t.state = sRefHash
				i++
			case ctab[c]&cNameStart != 0:
				t.refLen = 0
				t.state = sRefName
			case c >= utf8.RuneSelf:
				return t.fail(i, RestrictedXML, "entity reference not allowed (RFC 6120 11.1)")
			default:
				return t.fail(i, NotWellFormed, "'&' not starting a reference")
			}

		case sRefName:
			j := i
			for j < end && ctab[p[j]]&cName != 0 {
				if t.refLen < len(t.refBuf) {
					t.refBuf[t.refLen] = p[j]
				}
				t.refLen++
				j++
			}
			i = j
			if i == end {
				continue
			}
			switch c = p[i]; {
			case c == ';':
				if !t.namedRef(i) {
					return t.failed(i)
				}
			case c >= utf8.RuneSelf:
				return t.fail(i, RestrictedXML, "entity reference not allowed (RFC 6120 11.1)")
			default:
				return t.fail(i, NotWellFormed, "unterminated entity reference")
			}
			i++

		case sRefHash:
			t.refVal, t.refLen = 0, 0
			switch {
			case c == 'x':
				t.state = sRefHex
				i++
			case c >= '0' && c <= '9':
				t.state = sRefDec
			default:
				return t.fail(i, NotWellFormed, "malformed character reference")
			}

		case sRefDec, sRefHex:
			if c == ';' && t.refLen > 0 {
				if !t.charRef(i) {
					return t.failed(i)
				}
				i++
				continue
			}
			d := digitVal(c)
			if d < 0 || (t.state == sRefDec && d > 9) {
				return t.fail(i, NotWellFormed, "malformed character reference")
			}
			base := rune(10)
			if t.state == sRefHex {
				base = 16
			}
			// Saturate past the last code point: leading zeros are legal,
			// so the digit count alone says nothing.
			if t.refVal = t.refVal*base + rune(d); t.refVal > utf8.MaxRune {
				t.refVal = utf8.MaxRune + 1
			}
			t.refLen++
			i++

		case sUTF8:
			t.u8[t.u8n] = c
			t.u8n++
			i++
			if utf8.FullRune(t.u8[:t.u8n]) {
				// Errors point at the rune's first byte, which may lie in
				// an earlier chunk (a negative index into p).
				start := i - int(t.u8n)
				r, size := utf8.DecodeRune(t.u8[:t.u8n])
				if r == utf8.RuneError && size == 1 {
					return t.fail(start, NotWellFormed, "invalid UTF-8")
				}
				t.state = t.ret
				if !t.acceptRune(start, r, t.u8[:size]) {
					return t.failed(start)
				}
			}

		case sBang:
			switch {
			case c == '-':
				return t.fail(i, RestrictedXML, "comment not allowed (RFC 6120 11.1)")
			case c != '[':
				return t.fail(i, RestrictedXML, "DTD or markup declaration not allowed (RFC 6120 11.1)")
			case len(t.ends) < 2:
				return t.fail(i, NotWellFormed, "CDATA section between top-level elements")
			}
			t.count = 1
			t.state = sCDATAOpen
			i++

		case sCDATAOpen:
			const open = "[CDATA["
			if c != open[t.count] {
				return t.fail(i, RestrictedXML, "DTD or markup declaration not allowed (RFC 6120 11.1)")
			}
			if t.count++; t.count == len(open) {
				t.state = sCDATA
			}
			i++

		case sCDATA:
			for i < end && ctab[p[i]]&cStopCDATA == 0 {
				i++
			}
			if i == end {
				continue
			}
			switch c = p[i]; {
			case c == ']':
				t.count = 1
				t.state = sCDATAEnd
			case c >= utf8.RuneSelf:
				if i = t.scanRune(p, i, end, sCDATA); t.err != nil {
					return t.failed(i)
				}
				continue
			default:
				return t.fail(i, NotWellFormed, "control character in CDATA section")
			}
			i++

		case sCDATAEnd:
			switch {
			case c == ']':
				t.count = 2
			case c == '>' && t.count == 2:
				t.state = sText
			default:
				t.state = sCDATA
				continue // rescan c as content
			}
			i++

		case sPI:
			if !t.pi(i, c) {
				return t.failed(i)
			}
			if t.state == sDecl {
				end = t.limit(len(p))
			}
			i++

		case sDecl:
			t.decl[t.declN] = c
			t.declN++
			i++
			if c == '>' && t.decl[t.declN-2] == '?' {
				if err := checkDecl(t.decl[:t.declN]); err != nil {
					// The declaration started declN bytes before p[i].
					return t.fail(i-t.declN+int(err.Offset), err.Condition, err.Msg)
				}
				t.needHeader = true
				t.decl = nil
				return t.emit(i, KindDecl)
			}
		}
	}
	if t.state == sSpace {
		return t.emit(i, KindSpace)
	}
	if i < len(p) {
		t.fail(i, PolicyViolation, t.capMsg())
		t.err.Limit = LimitSize
		return t.failed(i)
	}
	t.unitLen += i
	t.off += int64(i)
	return i, KindNone, nil
}

// maxHeader returns the header size limit, DefaultMaxHeader if unset.
func (t *Tokenizer) maxHeader() int {
	if t.MaxHeader > 0 {
		return t.MaxHeader
	}
	return DefaultMaxHeader
}

// maxDepth returns the nesting limit; without one, a depth no element
// within the size limit reaches.
func (t *Tokenizer) maxDepth() int {
	if t.MaxDepth > 0 {
		return t.MaxDepth
	}
	return math.MaxInt32
}

// begin starts a unit of kind k (KindNone until known) limited to max bytes.
func (t *Tokenizer) begin(k Kind, max int) {
	t.kind = k
	t.cap = max
	t.unitLen = 0
}

// limit returns how many bytes of a chunk of n the unit in progress may
// still take.
func (t *Tokenizer) limit(n int) int {
	if l := t.cap - t.unitLen; l < n {
		return l
	}
	return n
}

// capMsg describes the limit the unit in progress exceeded.
func (t *Tokenizer) capMsg() string {
	what := "top-level element"
	switch t.kind {
	case KindHeader:
		what = "stream header"
	case KindDecl:
		what = "XML declaration"
	case KindSpace:
		what = "white space"
	}
	return what + " longer than " + strconv.Itoa(t.cap) + " bytes"
}

// emit ends the unit in progress at p[n-1].
func (t *Tokenizer) emit(n int, k Kind) (int, Kind, error) {
	t.off += int64(n)
	t.unitLen = 0
	t.kind = KindNone
	t.state = sTop
	return n, k, nil
}

// done returns from Next after startTagEnd: an error, a completed unit, or
// (k == KindNone) nothing yet.
func (t *Tokenizer) done(n int, k Kind) (int, Kind, error) {
	if t.err != nil {
		return t.failed(n - 1)
	}
	return t.emit(n, k)
}

// fail records a syntax error at p[i] and returns it from Next.
func (t *Tokenizer) fail(i int, c Condition, msg string) (int, Kind, error) {
	t.setErr(i, c, msg)
	return t.failed(i)
}

// failed returns the recorded error from Next, with n = i.
func (t *Tokenizer) failed(i int) (int, Kind, error) {
	if i < 0 {
		i = 0
	}
	return i, KindNone, t.err
}

// setErr records a syntax error at p[i], the first byte t has not counted.
func (t *Tokenizer) setErr(i int, c Condition, msg string) {
	t.err = &SyntaxError{Condition: c, Offset: t.off + int64(i), Msg: msg}
}

// top returns the name of the innermost open element.
func (t *Tokenizer) top() []byte {
	d := len(t.ends)
	if d == 0 {
		return nil
	}
	start := int32(0)
	if d > 1 {
		start = t.ends[d-2]
	}
	return t.names[start:t.ends[d-1]]
}

// pop closes the innermost element.
func (t *Tokenizer) pop() {
	t.ends = t.ends[:len(t.ends)-1]
	if d := len(t.ends); d > 0 {
		t.names = t.names[:t.ends[d-1]]
	} else {
		t.names = t.names[:0]
	}
}

// open handles the byte c after '<'. It leaves the state at sStartName, without
// consuming c, when c begins an element name.
func (t *Tokenizer) open(i int, c byte) bool {
	d := len(t.ends)
	switch {
	case c == '/':
		switch {
		case d == 0:
			t.setErr(i, NotWellFormed, "bytes before the stream header")
			return false
		case d == 1 && t.needHeader:
			t.setErr(i, NotWellFormed, "XML declaration not followed by a stream header")
			return false
		case d == 1:
			t.kind = KindEnd
		}
		t.count = 0
		t.state = sEndName
	case c == '?':
		if d > 1 {
			t.setErr(i, RestrictedXML, "processing instruction not allowed (RFC 6120 11.1)")
			return false
		}
		t.count = 0
		t.state = sPI
	case c == '!':
		t.state = sBang
	case ctab[c]&cNameStart != 0 || c >= utf8.RuneSelf:
		// The top-level element is at depth 1 of MaxDepth; the stream
		// element is not counted.
		if d > t.maxDepth() {
			t.setErr(i, PolicyViolation, "element nesting exceeds max_depth ("+strconv.Itoa(t.maxDepth())+")")
			t.err.Limit = LimitDepth
			return false
		}
		t.nameLen, t.colon = 0, 0
		t.resetAttrs()
		t.state = sStartName
	default:
		t.setErr(i, NotWellFormed, "invalid character after '<'")
		return false
	}
	return true
}

// classify pushes the start tag name just scanned and, for a tag between
// top-level units, decides whether it opens a stream header or an element.
// p[i] is the byte after the name.
func (t *Tokenizer) classify(i int) bool {
	parent := len(t.ends)
	start := int32(0)
	if parent > 0 {
		start = t.ends[parent-1]
	}
	t.ends = append(t.ends, int32(len(t.names)))
	if parent > 1 {
		return true
	}
	name := t.names[start:]
	var prefix, local []byte = nil, name
	if k := bytes.IndexByte(name, ':'); k >= 0 {
		prefix, local = name[:k], name[k+1:]
	}
	switch {
	case parent == 1 && bytes.Equal(name, t.names[:t.ends[0]]):
		// A restart: same qualified name as the open stream.
	case parent == 1 && t.needHeader:
		t.setErr(i, NotWellFormed, "XML declaration not followed by a stream header")
		return false
	case parent == 1:
		t.kind = KindElement
		t.cap = t.maxUnit
		return true
	case string(local) != "stream":
		t.setErr(i, NotWellFormed, "bytes before the stream header")
		return false
	case len(prefix) == 0:
		t.setErr(i, BadNamespacePrefix, "stream header without the stream namespace prefix")
		return false
	}
	t.kind = KindHeader
	t.cap = t.maxHeader()
	t.hdr = true
	t.nsDeclared, t.nsOK, t.isNSDecl = false, false, false
	t.want = append(append(t.want[:0], "xmlns:"...), prefix...)
	return true
}

// startTagEnd handles the '>' at p[i] that ends a start tag and returns the
// kind of unit it completes, if any.
func (t *Tokenizer) startTagEnd(i int, selfClosing bool) Kind {
	if cap(t.attrs) > 4<<10 {
		t.resetAttrs() // a tag of a great many attributes: not kept
	}
	if t.hdr {
		t.hdr = false
		switch {
		case selfClosing:
			t.setErr(i, NotWellFormed, "self-closing stream header")
		case t.nsDeclared && !t.nsOK:
			t.setErr(i, InvalidNamespace, "stream prefix not bound to "+StreamsNS)
		case !t.nsDeclared && len(t.ends) == 1:
			t.setErr(i, BadNamespacePrefix, "stream namespace prefix not declared")
		}
		if t.err != nil {
			return KindNone
		}
		if len(t.ends) == 2 {
			// A restart replaces the stream it restarts.
			t.pop()
		}
		t.needHeader = false
		return KindHeader
	}
	if selfClosing {
		t.pop()
		if len(t.ends) == 1 {
			return KindElement
		}
	}
	t.state = sText
	return KindNone
}

// endTagEnd closes the innermost element at the '>' of its end tag and
// returns the kind of unit that completes, if any.
func (t *Tokenizer) endTagEnd() Kind {
	t.pop()
	switch len(t.ends) {
	case 0:
		t.closed = true
		return KindEnd
	case 1:
		return KindElement
	}
	t.state = sText
	return KindNone
}

// nameColon accepts the ':' at p[i] in a name if it can separate a prefix
// from a local name: names must be QNames (Namespaces in XML 1.0, which
// RFC 6120 11.2 requires).
func (t *Tokenizer) nameColon(i int) bool {
	if t.nameLen == 0 || t.colon != 0 {
		t.setErr(i, NotWellFormed, "name is not a qualified name")
		return false
	}
	t.nameLen++
	t.colon = t.nameLen
	return true
}

// endName checks the end of a name at p[i]: it must not end with ':'.
func (t *Tokenizer) endName(i int) bool {
	if t.colon == t.nameLen && t.colon != 0 {
		t.setErr(i, NotWellFormed, "name is not a qualified name")
		return false
	}
	return true
}

// beginAttr starts scanning an attribute name.
func (t *Tokenizer) beginAttr() {
	t.attrStart()
	t.nameLen, t.colon = 0, 0
	t.state = sAttrName
	if t.hdr {
		t.cmpNS, t.cmpPos, t.cmpBad = false, 0, false
	}
}

// endAttrName records the attribute name just scanned, at p[i], failing if
// the tag already has it, and notes whether it binds the stream prefix, so
// that its value is compared with StreamsNS.
func (t *Tokenizer) endAttrName(i int) bool {
	if !t.addAttr() {
		t.setErr(i, NotWellFormed, "duplicate attribute "+string(t.attrs[t.lastAttrStart():]))
		return false
	}
	if t.hdr {
		t.isNSDecl = t.matched()
		t.cmpNS, t.cmpPos, t.cmpBad = true, 0, false
	}
	return true
}

// endAttrValue records the stream prefix binding if the value just ended
// was one.
func (t *Tokenizer) endAttrValue() {
	if t.hdr && t.isNSDecl {
		t.nsDeclared = true
		t.nsOK = t.matched()
		t.isNSDecl = false
	}
}

// feed compares the next bytes of a header attribute name or value with
// the comparison target.
func (t *Tokenizer) feed(b []byte) {
	if t.cmpBad {
		return
	}
	target := t.cmpTarget()
	if t.cmpPos+len(b) > len(target) || !bytes.Equal(target[t.cmpPos:t.cmpPos+len(b)], b) {
		t.cmpBad = true
		return
	}
	t.cmpPos += len(b)
}

// matched reports whether the bytes fed equal the whole comparison target.
func (t *Tokenizer) matched() bool {
	return !t.cmpBad && t.cmpPos == len(t.cmpTarget())
}

// cmpTarget is what feed compares with: want, or StreamsNS. (A flag, not
// a slice: every stream holds two tokenizers for as long as it lives.)
func (t *Tokenizer) cmpTarget() []byte {
	if t.cmpNS {
		return streamsNSBytes
	}
	return t.want
}

// scanRune handles the non-ASCII byte p[i] in state ret (which is also the
// current state). It returns the index after the rune, or end when the rune
// continues in the next call.
func (t *Tokenizer) scanRune(p []byte, i, end int, ret state) int {
	q := p[i:end]
	if !utf8.FullRune(q) {
		t.u8n = uint8(copy(t.u8[:], q))
		t.ret = ret
		t.state = sUTF8
		return end
	}
	r, size := utf8.DecodeRune(q)
	if r == utf8.RuneError && size == 1 {
		t.setErr(i, NotWellFormed, "invalid UTF-8")
		return i
	}
	if !t.acceptRune(i, r, q[:size]) {
		return i
	}
	return i + size
}

// acceptRune checks the non-ASCII rune r, encoded as enc and starting at
// p[i], in the current state.
func (t *Tokenizer) acceptRune(i int, r rune, enc []byte) bool {
	switch t.state {
	case sStartName, sAttrName:
		ok := isNameChar(r)
		if t.nameLen == 0 {
			ok = isNameStart(r)
		}
		if !ok {
			t.setErr(i, NotWellFormed, "invalid character in name")
			return false
		}
		t.nameLen += len(enc)
		if t.state == sStartName {
			t.names = append(t.names, enc...)
		} else {
			t.attrs = append(t.attrs, enc...)
			if t.hdr {
				t.feed(enc)
			}
		}
		return true
	}
	if !isChar(r) {
		t.setErr(i, NotWellFormed, "character not allowed in XML")
		return false
	}
	if t.state == sAttrValue && t.hdr && t.isNSDecl {
		t.feed(enc)
	}
	return true
}

// namedRef resolves the entity reference ending with the ';' at p[i]: only
// the five predefined entities are allowed.
func (t *Tokenizer) namedRef(i int) bool {
	var c byte
	if t.refLen <= len(t.refBuf) {
		switch string(t.refBuf[:t.refLen]) {
		case "lt":
			c = '<'
		case "gt":
			c = '>'
		case "amp":
			c = '&'
		case "quot":
			c = '"'
		case "apos":
			c = '\''
		}
	}
	if c == 0 {
		t.setErr(i, RestrictedXML, "entity reference not allowed (RFC 6120 11.1)")
		return false
	}
	if t.ret == sAttrValue && t.hdr && t.isNSDecl {
		t.feed([]byte{c})
	}
	t.state = t.ret
	return true
}

// charRef checks the character reference ending with the ';' at p[i].
func (t *Tokenizer) charRef(i int) bool {
	if !isChar(t.refVal) {
		t.setErr(i, NotWellFormed, "character reference to a character XML forbids")
		return false
	}
	if t.ret == sAttrValue && t.hdr && t.isNSDecl {
		t.feed(utf8.AppendRune(t.u8[:0], t.refVal))
	}
	t.state = t.ret
	return true
}

// pi handles byte c at p[i] after "<?" between top-level units: "<?xml"
// followed by white space starts an XML declaration where one is allowed;
// everything else is a processing instruction, which RFC 6120 forbids.
func (t *Tokenizer) pi(i int, c byte) bool {
	const target = "xml"
	if t.count < len(target) {
		if c != target[t.count] {
			t.setErr(i, RestrictedXML, "processing instruction not allowed (RFC 6120 11.1)")
			return false
		}
		t.count++
		return true
	}
	if !isSpace(c) {
		t.setErr(i, RestrictedXML, "processing instruction not allowed (RFC 6120 11.1)")
		return false
	}
	if t.needHeader {
		t.setErr(i, RestrictedXML, "XML declaration not allowed here (RFC 6120 11.1)")
		return false
	}
	t.kind = KindDecl
	t.cap = maxDecl
	if t.decl == nil {
		t.decl = new([maxDecl]byte)
	}
	t.declN = copy(t.decl[:], "<?xml")
	t.decl[t.declN] = c
	t.declN++
	t.state = sDecl
	return true
}

// digitVal returns the value of the hexadecimal digit c, or -1.
func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// attrLinear is how many attribute names of one start tag are compared one
// by one; past it a hash table finds a repeated name.
const attrLinear = 8

// resetAttrs forgets the attribute names at the start of a start tag. The
// buffers of a tag with a great many attributes are dropped rather than
// kept for the stream's life.
func (t *Tokenizer) resetAttrs() {
	if cap(t.attrs) > 4<<10 {
		t.attrs, t.attrEnds, t.attrIndex = nil, nil, nil
	}
	t.attrs, t.attrEnds, t.attrIndex = t.attrs[:0], t.attrEnds[:0], t.attrIndex[:0]
}

// lastAttrStart is where the name after the recorded ones starts in attrs.
func (t *Tokenizer) lastAttrStart() int32 {
	if n := len(t.attrEnds); n > 0 {
		return t.attrEnds[n-1]
	}
	return 0
}

// attrStart begins a new attribute name in attrs.
func (t *Tokenizer) attrStart() { t.attrs = t.attrs[:t.lastAttrStart()] }

// attrName returns the k-th recorded attribute name.
func (t *Tokenizer) attrName(k int32) []byte {
	start := int32(0)
	if k > 0 {
		start = t.attrEnds[k-1]
	}
	return t.attrs[start:t.attrEnds[k]]
}

// addAttr records the name at the end of attrs, or reports false if the
// start tag already has it.
func (t *Tokenizer) addAttr() bool {
	name := t.attrs[t.lastAttrStart():]
	n := int32(len(t.attrEnds))
	if n < attrLinear {
		prev := int32(0)
		for _, e := range t.attrEnds {
			if bytes.Equal(t.attrs[prev:e], name) {
				return false
			}
			prev = e
		}
		t.attrEnds = append(t.attrEnds, int32(len(t.attrs)))
		return true
	}
	if len(t.attrIndex) < 2*int(n+1) {
		t.rehash(4 * int(n+1))
	}
	mask := uint32(len(t.attrIndex) - 1)
	for h := hashName(name) & mask; ; h = (h + 1) & mask {
		k := t.attrIndex[h]
		if k < 0 {
			t.attrIndex[h] = n
			break
		}
		if bytes.Equal(t.attrName(k), name) {
			return false
		}
	}
	t.attrEnds = append(t.attrEnds, int32(len(t.attrs)))
	return true
}

// rehash sizes the attribute index for at least size slots (a power of two)
// and enters every recorded name.
func (t *Tokenizer) rehash(size int) {
	n := 16
	for n < size {
		n <<= 1
	}
	if cap(t.attrIndex) >= n {
		t.attrIndex = t.attrIndex[:n]
	} else {
		t.attrIndex = make([]int32, n)
	}
	for i := range t.attrIndex {
		t.attrIndex[i] = -1
	}
	mask := uint32(n - 1)
	for k := range int32(len(t.attrEnds)) {
		h := hashName(t.attrName(k)) & mask
		for t.attrIndex[h] >= 0 {
			h = (h + 1) & mask
		}
		t.attrIndex[h] = k
	}
}

// hashName is FNV-1a.
func hashName(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}
