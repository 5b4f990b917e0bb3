package xmpp

// Byte classes for the scanner's fast loops. A loop skips bytes whose class
// lacks its stop bit and handles the rest one at a time.
const (
	cNameStart = 1 << iota // ASCII NameStartChar: letters, '_', ':'
	cName                  // ASCII NameChar: NameStartChar, digits, '-', '.'
	cSpace                 // XML white space: ' ', '\t', '\n', '\r'
	cStopText              // needs care in character data: '<' '&' ']', controls, non-ASCII
	cStopAttr              // needs care in attribute values: quotes, '<' '&', controls, non-ASCII
	cStopCDATA             // needs care in a CDATA section: ']', controls, non-ASCII
	cNameFast              // NameChar other than ':', which needs the namespace check
	cNameEnd               // may end a name in a start tag: white space, '>', '/'
)

var ctab = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		var f uint8
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
			f |= cNameStart | cName
		case c >= '0' && c <= '9', c == '-', c == '.':
			f |= cName
		case c == ' ', c == '\t', c == '\n', c == '\r':
			f |= cSpace
		}
		if f&cSpace != 0 || c == '>' || c == '/' {
			f |= cNameEnd
		}
		if f&cName != 0 && c != ':' {
			f |= cNameFast
		}
		if (c < 0x20 && f&cSpace == 0) || c >= 0x80 {
			f |= cStopText | cStopAttr | cStopCDATA
		}
		switch c {
		case '<', '&':
			f |= cStopText | cStopAttr
		case ']':
			f |= cStopText | cStopCDATA
		case '\'', '"':
			f |= cStopAttr
		}
		t[c] = f
	}
	return t
}()

// isSpace reports whether c is XML white space.
func isSpace(c byte) bool { return ctab[c]&cSpace != 0 }

// isChar reports whether r is a Char of XML 1.0: allowed in text and
// attribute values, directly or through a character reference.
func isChar(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// isNameStart reports whether r may begin an XML name (XML 1.0 fifth
// edition, production [4]).
func isNameStart(r rune) bool {
	if r < 0x80 {
		return ctab[r]&cNameStart != 0
	}
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameChar reports whether r may continue an XML name (production [4a]).
func isNameChar(r rune) bool {
	if r < 0x80 {
		return ctab[r]&cName != 0
	}
	if isNameStart(r) {
		return true
	}
	return r == 0xB7 || (r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}
