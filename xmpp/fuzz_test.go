package xmpp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTokenizer feeds any bytes in two chunkings, which must agree; every
// unit must respect the limits, every accepted element must parse with
// encoding/xml and every accepted header with ParseHeader.
func FuzzTokenizer(f *testing.F) {
	for _, tc := range tokCases {
		f.Add([]byte(tc.in), uint64(len(tc.name)))
	}
	f.Add([]byte(clientStream), uint64(1))
	f.Add([]byte(serverStream), uint64(2))
	for _, s := range benchStanzas()[:2] {
		f.Add(append([]byte(hdr), s.data...), uint64(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		newTk := func() *Tokenizer {
			tk := NewTokenizer(512)
			tk.MaxHeader = 300
			tk.MaxDepth = 8
			return tk
		}
		// tokenize fails the test on progress or limit violations.
		units, err := tokenize(t, newTk(), data, whole)
		units2, err2 := tokenize(t, newTk(), data, randomSplits(seed))
		if fmt.Sprint(units) != fmt.Sprint(units2) || errString(err) != errString(err2) {
			t.Fatalf("chunkings differ:\n%v %s\n%v %s", units, errString(err), units2, errString(err2))
		}
		var consumed strings.Builder
		for _, u := range units {
			consumed.WriteString(u.data)
		}
		if !strings.HasPrefix(string(data), consumed.String()) {
			t.Fatalf("units are not the input: %v", units)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || !se.Condition.Valid() || se.Msg == "" {
				t.Fatalf("bad error %#v", err)
			}
			// The error lies in the unit after the last complete one.
			if se.Offset < int64(consumed.Len()) || se.Offset > int64(len(data)) {
				t.Fatalf("error offset %d outside [%d, %d]", se.Offset, consumed.Len(), len(data))
			}
		}
		for _, u := range units {
			switch u.kind {
			case KindElement:
				if err := xmlParse(u.data); err != nil && !nameTableDiff(u.data, err) {
					t.Fatalf("encoding/xml rejects accepted element %q: %v", u.data, err)
				}
			case KindHeader:
				_, err := ParseHeader([]byte(u.data))
				var se *SyntaxError
				if errors.As(err, &se) && !strings.HasPrefix(se.Msg, "duplicate attribute") {
					t.Fatalf("ParseHeader rejects accepted header %q: %v", u.data, err)
				}
			}
		}
	})
}

// nameTableDiff reports whether encoding/xml rejected elem only for a
// non-ASCII name: it uses the name tables of XML 1.0 fourth edition, the
// tokenizer those of the fifth, which allow more characters.
func nameTableDiff(elem string, err error) bool {
	return strings.Contains(err.Error(), "invalid XML name") &&
		strings.IndexFunc(elem, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0
}

// FuzzParseHeader checks that ParseHeader never panics, that what it accepts
// survives a round trip through AppendTo, and that the tokenizer accepts it.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("<?xml version='1.0'?>" + hdr))
	f.Add([]byte("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='a&amp;b' id='&#x41;' version='1.0' xml:lang='en'>"))
	f.Add([]byte("<s:stream xmlns:s=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\" version=\"2.0\">"))
	f.Add([]byte("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>"))
	f.Add([]byte("<stream:stream xmlns='jabber:client' to='&nbsp;'>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			if _, ok := ConditionOf(err); !ok {
				t.Fatalf("error without a condition: %v", err)
			}
			return
		}
		out := h.AppendTo(nil)
		back, err := ParseHeader(out)
		if err != nil {
			t.Fatalf("ParseHeader(AppendTo(%+v)) = %v\n%s", h, err, out)
		}
		h.Prefix, h.StreamNS = "stream", StreamsNS
		if back != h {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, h)
		}
		if len(data) < DefaultMaxHeader {
			units, err := tokenize(t, NewTokenizer(0), data, whole)
			if err != nil || !strings.Contains(kinds(units), "header") {
				t.Fatalf("tokenizer: %v %v", units, err)
			}
		}
	})
}
