package xmpp

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// The fast path.
//
// Most of a stream is the inside of top-level elements: character data,
// start tags with a few attributes and end tags, all in one chunk. The fast
// path scans them a token at a time with tight table-driven loops (unrolled
// where runs are long), and hands over to the byte state machine of Next at
// the first byte it does not handle: the end of the input (or of the unit's
// size limit), an error, or anything rare (comments, CDATA, white space in
// end tags or attribute values, non-ASCII names, long character
// references...).
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

// skip returns the index of the first byte of p at or after i whose class
// in tab has a bit of stop, or len(p).
func skip(p []byte, i int, tab *[256]uint8, stop uint8) int {
	for ; i+8 <= len(p); i += 8 {
		b := p[i : i+8 : i+8]
		if tab[b[0]]&stop != 0 {
			return i
		}
		if tab[b[1]]&stop != 0 {
			return i + 1
		}
		if tab[b[2]]&stop != 0 {
			return i + 2
		}
		if tab[b[3]]&stop != 0 {
			return i + 3
		}
		if tab[b[4]]&stop != 0 {
			return i + 4
		}
		if tab[b[5]]&stop != 0 {
			return i + 5
		}
		if tab[b[6]]&stop != 0 {
			return i + 6
		}
		if tab[b[7]]&stop != 0 {
			return i + 7
		}
	}
	for i < len(p) && tab[p[i]]&stop == 0 {
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
		if i < len(p) && p[i] != '<' {
			i = skip(p, i, &ctab, cStopText)
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

	// Attributes. p[i] is white space, '>' or '/'.
	for {
		c = p[i]
		if isSpace(c) {
			i = span(p, i+1, cSpace)
			if i >= len(p) {
				t.state = sTag
				return i, tagBail
			}
			c = p[i]
			if ctab[c]&(cNameStart|cNameFast) == cNameStart|cNameFast {
				var ok bool
				if i, ok = t.attr(p, i); !ok {
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
		t.state = sTag
		return i, tagBail
	}
}

// attr scans the attribute starting at p[i] in a start tag. It returns the
// index after its value and true if white space, '>' or '/' follows, or the
// index where the state machine goes on and false, with t.state set for it.
func (t *Tokenizer) attr(p []byte, i int) (int, bool) {
	e := span(p, i+1, cNameFast)
	if e < len(p) && p[e] == ':' {
		e = scanLocal(p, e)
	}
	if e < 0 || e >= len(p) {
		t.state = sTag
		return i, false
	}
	e = span(p, e, cSpace)
	if e >= len(p) || p[e] != '=' {
		t.state = sTag
		return i, false
	}
	e = span(p, e+1, cSpace)
	if e >= len(p) || (p[e] != '\'' && p[e] != '"') {
		t.state = sTag
		return i, false
	}
	q := p[e]
	stop := uint8(qStopApos)
	if q == '"' {
		stop = qStopQuot
	}
	i = e + 1
	for {
		i = skip(p, i, &qtab, stop)
		if i >= len(p) {
			break
		}
		c := p[i]
		if c == q {
			i++
			if i >= len(p) {
				t.state = sAfterValue
				return i, false
			}
			if c = p[i]; ctab[c]&cNameEnd == 0 {
				t.state = sAfterValue
				return i, false
			}
			return i, true
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
	return i, false
}
