// Package xmpp frames an XMPP byte stream into stream headers and top-level
// elements, and renders stream errors.
//
// The package is the XML-aware part of Guard's relay. It never builds a DOM:
// a [Tokenizer] scans the bytes of one direction of a stream incrementally and
// reports where each unit ends (an XML declaration, a stream header, a
// complete top-level stanza, whitespace between stanzas, or the closing
// </stream:stream>), so that the relay forwards only whole units and can put a
// stream error on the wire at a unit boundary. While it scans, the tokenizer
// enforces well-formedness, the restricted XML profile of RFC 6120 section
// 11.1 and size and depth limits, reporting violations as a [*SyntaxError]
// that carries the stream error [Condition] to answer with.
//
// [ParseHeader] reads the attributes of a stream header, [Header.AppendTo]
// renders Guard's own header, and [StreamError.AppendTo] renders the
// <stream:error/> frame that ends a stream (RFC 6120 section 4.9).
//
// The package uses only the standard library and allocates nothing per stanza
// once a Tokenizer has warmed up.
package xmpp
