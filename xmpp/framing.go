package xmpp

import (
	"bytes"
	"encoding/xml"
	"io"
)

// This file is the framing of XMPP over WebSocket (RFC 7395 3.3): <open/>
// and <close/> in the framing namespace stand for the stream header and
// </stream:stream>, and every message is one element that declares the
// namespaces it needs.

// FramingNS is the namespace of <open/> and <close/>.
const FramingNS = "urn:ietf:params:xml:ns:xmpp-framing"

// FramingClose is the <close/> element that ends a stream over WebSocket.
var FramingClose = []byte("<close xmlns='" + FramingNS + "'/>")

// AppendClose appends the <close/> element that ends a stream over
// WebSocket, redirecting the client to seeOtherURI if it is not ""
// (RFC 7395 3.6.1).
func AppendClose(b []byte, seeOtherURI string) []byte {
	if seeOtherURI == "" {
		return append(b, FramingClose...)
	}
	b = append(b, "<close xmlns='"+FramingNS+"'"...)
	b = appendAttr(b, "see-other-uri", seeOtherURI)
	return append(b, "/>"...)
}

// AppendOpen appends h as the <open/> element that opens (or restarts) a
// stream over WebSocket.
func (h Header) AppendOpen(b []byte) []byte {
	b = append(b, "<open xmlns='"+FramingNS+"'"...)
	b = appendAttr(b, "to", h.To)
	b = appendAttr(b, "from", h.From)
	b = appendAttr(b, "id", h.ID)
	b = appendAttr(b, "version", h.Version)
	b = appendAttr(b, "xml:lang", h.Lang)
	return append(b, "/>"...)
}

// FramingKind tells <open/> (KindHeader) and <close/> (KindEnd) from any
// other element (KindElement), by the name of the element b starts with;
// b holds one message, leading white space trimmed.
func FramingKind(b []byte) Kind {
	switch {
	case framingName(b, "open"):
		return KindHeader
	case framingName(b, "close"):
		return KindEnd
	}
	return KindElement
}

func framingName(b []byte, name string) bool {
	if len(b) < len(name)+2 || b[0] != '<' || !bytes.HasPrefix(b[1:], []byte(name)) {
		return false
	}
	switch b[1+len(name)] {
	case ' ', '\t', '\r', '\n', '/', '>':
		return true
	}
	return false
}

// ParseOpen parses an <open/> element into the header it stands for, with
// the client namespace. An <open/> outside the framing namespace is an
// invalid-namespace error.
func ParseOpen(b []byte) (Header, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return Header{}, &SyntaxError{Condition: NotWellFormed, Msg: "an empty <open/>"}
		}
		if err != nil {
			return Header{}, &SyntaxError{Condition: NotWellFormed, Msg: "<open/> is not well-formed"}
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		h := Header{NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}
		ns := ""
		for _, a := range se.Attr {
			switch {
			case a.Name.Space == "" && a.Name.Local == "xmlns":
				ns = a.Value
			case a.Name.Space == "" && a.Name.Local == "to":
				h.To = a.Value
			case a.Name.Space == "" && a.Name.Local == "from":
				h.From = a.Value
			case a.Name.Space == "" && a.Name.Local == "version":
				h.Version = a.Value
			case a.Name.Space == "xml" && a.Name.Local == "lang":
				h.Lang = a.Value
			}
		}
		if se.Name.Space != "" || ns != FramingNS {
			return h, &SyntaxError{Condition: InvalidNamespace, Msg: "<open/> must be in " + FramingNS}
		}
		if h.Version != "1.0" {
			return h, &SyntaxError{Condition: UnsupportedVersion, Msg: "<open/> must have version='1.0'"}
		}
		return h, nil
	}
}

// AppendNamespaces appends the element el, a top-level element of a stream
// in the client namespace, with the namespace declarations it relies on
// added to its start tag (RFC 7395 3.3.3): the stream prefix for
// <stream:features/> and <stream:error/>, else the default namespace
// jabber:client unless it declares one itself.
func AppendNamespaces(b, el []byte) []byte {
	at, decl := NamespaceDecl(el)
	b = append(b, el[:at]...)
	b = append(b, decl...)
	return append(b, el[at:]...)
}

// NamespaceDecl returns the declarations AppendNamespaces adds to el and
// where (after the element's name), so that a caller can write the element
// with them without a copy; "" when el needs none.
func NamespaceDecl(el []byte) (at int, decl string) {
	end := startTagEnd(el)
	name := nameEnd(el)
	if end < 0 || name < 0 {
		return 0, ""
	}
	tag := el[:end]
	switch {
	case bytes.HasPrefix(el[1:name], []byte("stream:")):
		if !bytes.Contains(tag, []byte("xmlns:stream=")) {
			return name, " xmlns:stream='" + StreamsNS + "'"
		}
	case !hasDefaultNS(tag[name:]):
		return name, " xmlns='" + ClientNS + "'"
	}
	return name, ""
}

// nameEnd returns where the name of the element at the start of el ends.
func nameEnd(el []byte) int {
	if len(el) < 2 || el[0] != '<' {
		return -1
	}
	for i := 1; i < len(el); i++ {
		switch el[i] {
		case ' ', '\t', '\r', '\n', '/', '>':
			return i
		}
	}
	return -1
}

// startTagEnd returns the index of the '>' that ends el's start tag, with
// quoted attribute values skipped.
func startTagEnd(el []byte) int {
	var q byte
	for i, c := range el {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '>':
			return i
		}
	}
	return -1
}

// hasDefaultNS reports whether the attributes of a start tag declare the
// default namespace.
func hasDefaultNS(attrs []byte) bool {
	for i := 0; i+6 <= len(attrs); i++ {
		if isSpace(attrs[i]) && bytes.HasPrefix(attrs[i+1:], []byte("xmlns")) {
			j := i + 6
			for j < len(attrs) && isSpace(attrs[j]) {
				j++
			}
			if j < len(attrs) && attrs[j] == '=' {
				return true
			}
		}
	}
	return false
}
