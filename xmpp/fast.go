package xmpp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// The fast path.
//
// Most of a stream is the inside of top-level elements: character data,
// start tags with a few attributes and end tags, all in one chunk. The fast
// path scans them a token at a time with tight loops (table-driven, or
// eight bytes at a time where runs are long: skip), and hands over to the
// byte state machine of Next at the first byte it does not handle: the end
// of the input (or of the unit's size limit), an error, or anything rare
// (comments, CDATA, white space in end tags or attribute values, non-ASCII
// names, long character references...).
//
// It never reports an error and never decides anything the state machine
// would decide differently: it hands over only at points where the state
// machine's state is simple to set (in character data, at the '<' of a tag,
// at the start of an attribute, inside an attribute value or after one), so
// that the state machine goes on from there as if it had scanned everything
// itself. A start tag's name is pushed only once it is complete.

// Stop bits of qtab: bytes that end a run inside an attribute value quoted
// with ' or ". Unlike cStopAttr, the other quote does not stop, and white
// space does (the fast path leaves it to the state machine).
const (
	qStopApos = 1 << iota // '\'', '<', '&', controls, non-ASCII
	qStopQuot             // '"', '<', '&', controls, non-ASCII
)

var qtab = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c < 0x20 || c >= 0x80 || c == '<' || c == '&' {
			t[c] = qStopApos | qStopQuot
		}
	}
	t['\''] |= qStopApos
	t['"'] |= qStopQuot
	return t
}()

// Results of startTag.
const (
	tagOpen  = iota // a start tag: character data follows
	tagEmpty        // an empty-element tag, already popped
	tagBail         // handed over to the state machine
)

// A stopSet is the set of bytes that end a run for skip: the bytes whose
// class in a table has one of some stop bits, copied into stops so that a
// lookup is one load from a fixed address, with what skip needs to test
// eight bytes at a time. The candidates of that test are every byte at or
// above 0x80, every control (below 0x20), and the printable ASCII bytes
// that stop, listed in eq, each repeated in all eight bytes of a word. All
// of them stop but the controls in pass (a bit per byte value): white space
// in character data.
type stopSet struct {
	stops [256]bool
	pass  uint32
	eq    [3]uint64
	// wide is the same test for skipStops32: the printable stop bytes
	// of eq (zero where unused), then 0x20, below which a byte is a
	// candidate as a signed byte (controls and non-ASCII).
	wide [4]byte
}

// Stop sets of the fast path's runs: character data, and attribute values
// quoted with ' or ".
var (
	textStops = newStopSet(&ctab, cStopText)
	aposStops = newStopSet(&qtab, qStopApos)
	quotStops = newStopSet(&qtab, qStopQuot)
)

// wideSkipMin is the shortest rest of the input that skip hands to its
// wide scan (skipStops32), which reads 32 bytes at a time.
const wideSkipMin = 32

// Word constants of skip: 0x01 and 0x80 repeated in all eight bytes.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// newStopSet returns the stop set of the bytes whose class in tab has a bit
// of stop. It panics if a non-ASCII byte does not stop, or more than
// len(eq) printable ASCII bytes do (the word test would need another
// term): the tables are fixed, so any test run finds that.
func newStopSet(tab *[256]uint8, stop uint8) stopSet {
	var s stopSet
	for c := range s.stops {
		s.stops[c] = tab[c]&stop != 0
	}
	for c := 0; c < 0x20; c++ {
		if tab[c]&stop == 0 {
			s.pass |= 1 << c
		}
	}
	// Unused entries of eq stay zero: they flag NUL bytes, which are
	// controls and candidates anyway.
	n := 0
	for c := 0x20; c < 0x80; c++ {
		if tab[c]&stop == 0 {
			continue
		}
		if n == len(s.eq) {
			panic("xmpp: too many printable stop bytes for skip")
		}
		s.eq[n] = swarLo * uint64(c)
		s.wide[n] = byte(c)
		n++
	}
	for c := 0x80; c < 0x100; c++ {
		if tab[c]&stop == 0 {
			panic("xmpp: a non-ASCII byte does not stop skip")
		}
	}
	s.wide[3] = 0x20
	return s
}

// skip returns the index of the first byte of p at or after i in s, or
// len(p).
//
// Most runs are short (an id, a name, a word between tags), and skip looks
// at their first eight bytes one at a time, as skipBytes does: the exit of
// a table loop is a branch, which the CPU predicts well where run lengths
// recur (the same ids and element names stanza after stanza), while the
// exit of the word loop below waits for its arithmetic. Starting with the
// word loop was 5-14% slower on the repeated stanzas of the benchmarks.
//
// Longer runs go on eight bytes at a time (SWAR, SIMD within a register):
// for a word w, the high bit of each byte of w-0x20… is set where that byte
// is a control, that of (w^e)-0x01… where it equals e's byte, and that of
// w where it is non-ASCII. A byte that is none of these only sets a high
// bit through a borrow from a lower byte that is one, so the lowest high
// bit found is the first candidate of the word; bytes above it may be
// flagged wrongly, but they are never looked at. Nothing is missed: the
// lowest byte of any of the three kinds sets its bit, as no borrow reaches
// it. The candidate is taken from the word rather than looked up in the
// table, which would add two dependent loads to every return. A candidate
// in s.pass (white space in character data) hands the rest of the run to
// skipBytes: in text broken into lines, a mispredicted branch at every
// line break made the word loop 30% slower than the table loop.
//
// Before the word loop, a run with at least 32 bytes left goes to the wide
// scan where the CPU has one (skipStops32: AVX2 on amd64, 32 bytes per
// compare, about 20 GB/s on plain text against 3 for the word loop): the
// same candidates, a signed compare below 0x20 taking the controls and the
// non-ASCII bytes at once; a candidate in s.pass goes on with the scan.
// Fewer than 32 bytes left, the word loop finishes the run.
//
// The words are addressed with unsafe, as bounds-checked slicing of p costs
// 10-20% of the word loop's time; encoding/binary still reads them
// little-endian (one load on amd64 and arm64), so that the lowest high bit
// is the first byte on any machine. The loads stay within p: the unsigned
// comparison admits only 0 <= i <= len(p)-8, and the loop ends once i
// passes len(p)-8 (a bad i goes to skipBytes, which panics as skip always
// did).
func skip(p []byte, i int, s *stopSet) int {
	if n := len(p) - 8; n >= 0 && uint(i) <= uint(n) {
		stops := &s.stops
		b := p[i : i+8 : i+8]
		if stops[b[0]] {
			return i
		}
		if stops[b[1]] {
			return i + 1
		}
		if stops[b[2]] {
			return i + 2
		}
		if stops[b[3]] {
			return i + 3
		}
		if stops[b[4]] {
			return i + 4
		}
		if stops[b[5]] {
			return i + 5
		}
		if stops[b[6]] {
			return i + 6
		}
		if stops[b[7]] {
			return i + 7
		}
		i += 8
		pass := s.pass
		base := unsafe.Pointer(unsafe.SliceData(p))
		if wideSkip && len(p)-i >= wideSkipMin {
			for {
				k, found := skipStops32(unsafe.Add(base, i), len(p)-i, &s.wide)
				i += k
				if !found {
					break // fewer than 32 bytes left
				}
				if c := p[i]; c >= 0x20 || pass>>c&1 == 0 {
					return i
				}
				if i++; len(p)-i < wideSkipMin {
					break
				}
			}
		}
		if i > n {
			return skipBytes(p, i, s)
		}
		e0, e1, e2 := s.eq[0], s.eq[1], s.eq[2]
		for {
			w := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(base, i))[:])
			if x := ((w - 0x20*swarLo) | (w ^ e0 - swarLo) | (w ^ e1 - swarLo) | (w ^ e2 - swarLo) | w) & swarHi; x != 0 {
				k := bits.TrailingZeros64(x) &^ 7
				if c := uint8(w >> k); c >= 0x20 || pass>>c&1 == 0 {
					return i + k>>3
				}
				return skipBytes(p, i+k>>3+1, s)
			}
			if i += 8; i > n {
				break
			}
		}
	}
	return skipBytes(p, i, s)
}

// skipBytes is skip a byte at a time: a table lookup per byte, unrolled by
// eight.
func skipBytes(p []byte, i int, s *stopSet) int {
	stops := &s.stops
	for ; i+8 <= len(p); i += 8 {
		b := p[i : i+8 : i+8]
		if stops[b[0]] {
			return i
		}
		if stops[b[1]] {
			return i + 1
		}
		if stops[b[2]] {
			return i + 2
		}
		if stops[b[3]] {
			return i + 3
		}
		if stops[b[4]] {
			return i + 4
		}
		if stops[b[5]] {
			return i + 5
		}
		if stops[b[6]] {
			return i + 6
		}
		if stops[b[7]] {
			return i + 7
		}
	}
	for i < len(p) && !stops[p[i]] {
		i++
	}
	return i
}

// span returns the index of the first byte of p at or after i that is not
// in class (a bit of ctab), or len(p).
func span(p []byte, i int, class uint8) int {
	tab := &ctab
	for ; i < len(p); i++ {
		if tab[p[i]]&class == 0 {
			break
		}
	}
	return i
}

// scanLocal returns the end of the local part of an ASCII QName whose
// prefix ends with the ':' at p[i], or -1 if the name is not an ASCII QName
// ending before the end of p. The common unprefixed name is scanned inline
// by span(p, i, cNameFast).
func scanLocal(p []byte, i int) int {
	// One ':' between two non-empty parts.
	if i+1 >= len(p) || ctab[p[i+1]]&cNameFast == 0 {
		return -1
	}
	i = span(p, i+2, cNameFast)
	if i >= len(p) || p[i] == ':' {
		return -1
	}
	return i
}

// refLen returns the length of the complete reference at the start of q,
// whose first byte is '&', if it is one of the predefined entities or a
// short character reference to a Char; 0 otherwise.
func refLen(q []byte) int {
	if len(q) < 4 {
		return 0
	}
	switch q[1] {
	case 'l', 'g':
		if q[2] == 't' && q[3] == ';' {
			return 4
		}
	case 'a':
		if len(q) >= 5 && q[2] == 'm' && q[3] == 'p' && q[4] == ';' {
			return 5
		}
		if len(q) >= 6 && string(q[2:6]) == "pos;" {
			return 6
		}
	case 'q':
		if len(q) >= 6 && string(q[2:6]) == "uot;" {
			return 6
		}
	case '#':
		j, base := 2, rune(10)
		if q[2] == 'x' {
			j, base = 3, 16
		}
		var v rune
		start := j
		for ; j < len(q) && j < start+6; j++ {
			d := digitVal(q[j])
			if d < 0 || d >= int(base) {
				break
			}
			v = v*base + rune(d)
		}
		if j > start && j < len(q) && q[j] == ';' && isChar(v) {
			return j + 1
		}
	}
	return 0
}

// charLen returns the length of the complete, valid UTF-8 encoding of a Char
// at the start of q, whose first byte is non-ASCII; 0 otherwise.
func charLen(q []byte) int {
	if !utf8.FullRune(q) {
		return 0
	}
	r, n := utf8.DecodeRune(q)
	if n == 1 || !isChar(r) {
		return 0
	}
	return n
}

// special returns the length of the reference, valid non-ASCII character or
// lone ']' at p[i], a byte that stops a run of character data, or 0 if the
// state machine must take over there.
func special(p []byte, i int) int {
	switch c := p[i]; {
	case c == '&':
		return refLen(p[i:])
	case c == ']':
		// "]]" may start "]]>"; a lone ']' is plain text.
		if i+1 < len(p) && p[i+1] != ']' {
			return 1
		}
	case c >= utf8.RuneSelf:
		return charLen(p[i:])
	}
	return 0
}

// fast scans p, the input up to the unit's limit, from p[i] in character
// data (state sText). It returns where the state machine goes on, with
// t.state set for it, and the kind of unit that ended at p[n-1] if any.
func (t *Tokenizer) fast(p []byte, i int) (n int, kind Kind) {
	for {
		// The first byte is looked up here: in non-ASCII text and between
		// tags, runs are often empty.
		if i < len(p) && ctab[p[i]]&cStopText == 0 {
			i = skip(p, i+1, &textStops)
		}
		if i >= len(p) {
			return i, KindNone
		}
		if p[i] != '<' {
			k := special(p, i)
			if k == 0 {
				return i, KindNone
			}
			i += k
			continue
		}
		if i+1 < len(p) && p[i+1] == '/' {
			// An end tag, inline: endTag.
			d := len(t.ends)
			if d < 2 {
				return i, KindNone
			}
			start, stop := t.ends[d-2], t.ends[d-1]
			n := int(stop - start)
			e := i + 2 + n
			if e >= len(p) || p[e] != '>' {
				return i, KindNone
			}
			if n <= 8 && i+10 <= len(p) && int(start)+8 <= cap(t.names) {
				x := binary.LittleEndian.Uint64(p[i+2:]) ^ binary.LittleEndian.Uint64(t.names[start:start+8])
				if x<<(64-8*uint(n)) != 0 {
					return i, KindNone
				}
			} else if !bytes.Equal(p[i+2:e], t.names[start:stop]) {
				return i, KindNone
			}
			t.ends = t.ends[:d-1]
			t.names = t.names[:start]
			i = e + 1
			if d == 2 {
				return i, KindElement
			}
			continue
		}
		j, r := t.startTag(p, i)
		switch r {
		case tagEmpty:
			if len(t.ends) == 1 {
				return j, KindElement
			}
		case tagBail:
			if j == i {
				t.state = sText
			}
			return j, KindNone
		}
		i = j
	}
}

// startTag scans the start tag at p[i] == '<' and pushes its element. It
// returns the index after the tag and tagOpen or tagEmpty, or tagBail and
// the index where the state machine goes on, with t.state set for it unless
// that index is i (the tag's '<', in state sTop or sText).
func (t *Tokenizer) startTag(p []byte, i int) (int, int) {
	lt := i
	d := len(t.ends)
	if i+1 >= len(p) || ctab[p[i+1]]&(cNameStart|cNameFast) != cNameStart|cNameFast || d > t.maxDepth() {
		return lt, tagBail
	}
	e := span(p, i+2, cNameFast)
	if e < len(p) && p[e] == ':' {
		e = scanLocal(p, e)
	}
	if e < 0 || e >= len(p) {
		return lt, tagBail
	}
	c := p[e]
	if ctab[c]&cNameEnd == 0 {
		return lt, tagBail
	}
	if d == 1 {
		// A top-level element, unless it restarts the stream.
		if t.needHeader || bytes.Equal(p[i+1:e], t.names[:t.ends[0]]) {
			return lt, tagBail
		}
		t.kind = KindElement
	}
	if n, l := len(t.names), e-(i+1); l <= 8 && n+8 <= cap(t.names) && i+9 <= len(p) {
		// Copy the name as one word, into t.names' spare capacity.
		binary.LittleEndian.PutUint64(t.names[n:n+8], binary.LittleEndian.Uint64(p[i+1:]))
		t.names = t.names[:n+l]
	} else {
		t.names = append(t.names, p[i+1:e]...)
	}
	t.ends = append(t.ends, int32(len(t.names)))
	i = e
	from := e // the attributes

	// Attributes. p[i] is white space, '>' or '/'.
	// Unique Att Spec: a 64-bit Bloom filter of the tag's attribute names
	// (their first byte and length), which a new name almost always
	// misses. On a hit the names go to t.attrs (scanned again from the
	// tag), handed, and are compared there for the rest of the tag, as
	// when the state machine is left to finish the tag.
	var (
		bloom  uint64
		handed bool
	)
	for {
		c = p[i]
		if isSpace(c) {
			i = span(p, i+1, cSpace)
			if i >= len(p) {
				if !handed {
					t.collectAttrs(p, from, i)
				}
				t.state = sTag
				return i, tagBail
			}
			c = p[i]
			if ctab[c]&(cNameStart|cNameFast) == cNameStart|cNameFast {
				at := i
				j, bit, ok := t.attr(p, i)
				if bloom&bit != 0 {
					if t.attrRepeated(p, from, at, handed) {
						// The state machine reports it.
						t.state = sTag
						return at, tagBail
					}
					handed, bloom = true, ^uint64(0)
				}
				bloom |= bit
				if i = j; !ok {
					if !handed {
						t.collectAttrs(p, from, at)
						if bit != 0 && t.attrRepeated(p, from, at, true) {
							t.state = sTag
							return at, tagBail
						}
					}
					return i, tagBail
				}
				continue
			}
		}
		if c == '>' {
			return i + 1, tagOpen
		}
		if c == '/' && i+1 < len(p) && p[i+1] == '>' {
			t.ends = t.ends[:len(t.ends)-1]
			t.names = t.names[:t.ends[len(t.ends)-1]]
			return i + 2, tagEmpty
		}
		if !handed {
			t.collectAttrs(p, from, i)
		}
		t.state = sTag
		return i, tagBail
	}
}

// attrRepeated records the name of the attribute at p[at] in t.attrs,
// after those of the tag before it (p[from:at]) unless handed says they are
// there, and reports whether the tag already has it.
func (t *Tokenizer) attrRepeated(p []byte, from, at int, handed bool) bool {
	if !handed {
		t.collectAttrs(p, from, at)
	}
	ne := at
	for p[ne] != '=' && !isSpace(p[ne]) {
		ne++
	}
	t.attrs = append(t.attrs, p[at:ne]...)
	if !t.addAttr() {
		t.attrStart()
		return true
	}
	return false
}

// collectAttrs puts the names of the attributes in p[from:end], complete
// attributes of a start tag the fast path scanned, into t.attrs.
func (t *Tokenizer) collectAttrs(p []byte, from, end int) {
	t.resetAttrs()
	for k := from; ; {
		for k < end && isSpace(p[k]) {
			k++
		}
		if k >= end {
			return
		}
		n := k
		for p[k] != '=' && !isSpace(p[k]) {
			k++
		}
		t.attrs = append(t.attrs, p[n:k]...)
		t.attrEnds = append(t.attrEnds, int32(len(t.attrs)))
		for p[k] != '\'' && p[k] != '"' {
			k++
		}
		k += 1 + bytes.IndexByte(p[k+1:end], p[k]) + 1
	}
}

// attr scans the attribute starting at p[i] in a start tag. It returns the
// index after its value and true if white space, '>' or '/' follows, or the
// index where the state machine goes on and false, with t.state set for it;
// and, once past the attribute's name (its '=' and quote seen), the name's
// bit in the tag's Bloom filter (see startTag), else 0.
func (t *Tokenizer) attr(p []byte, i int) (next int, bit uint64, ok bool) {
	e := span(p, i+1, cNameFast)
	if e < len(p) && p[e] == ':' {
		e = scanLocal(p, e)
	}
	if e < 0 || e >= len(p) {
		t.state = sTag
		return i, 0, false
	}
	name := p[i:e]
	e = span(p, e, cSpace)
	if e >= len(p) || p[e] != '=' {
		t.state = sTag
		return i, 0, false
	}
	e = span(p, e+1, cSpace)
	if e >= len(p) || (p[e] != '\'' && p[e] != '"') {
		t.state = sTag
		return i, 0, false
	}
	bit = 1 << ((uint(p[i]) + 4*uint(len(name))) & 63)
	q := p[e]
	stops := &aposStops
	if q == '"' {
		stops = &quotStops
	}
	i = e + 1
	for {
		i = skip(p, i, stops)
		if i >= len(p) {
			break
		}
		c := p[i]
		if c == q {
			i++
			if i >= len(p) {
				t.state = sAfterValue
				return i, bit, false
			}
			if c = p[i]; ctab[c]&cNameEnd == 0 {
				t.state = sAfterValue
				return i, bit, false
			}
			return i, bit, true
		}
		k := 0
		if c == '&' {
			k = refLen(p[i:])
		} else if c >= utf8.RuneSelf {
			k = charLen(p[i:])
		}
		if k == 0 {
			break
		}
		i += k
	}
	t.quote = q
	t.state = sAttrValue
	return i, bit, false
}
