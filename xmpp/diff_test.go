package xmpp

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// xmlParse parses a top-level element with encoding/xml, inside a stream
// element that declares the stream namespace.
func xmlParse(elem string) error {
	doc := "<stream:stream xmlns='jabber:client' xmlns:stream='" + StreamsNS + "'>" + elem + "</stream:stream>"
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lenientInStdlib names the cases that are not well-formed by XML 1.0 but
// that encoding/xml accepts: they are rejected by the tokenizer alone.
var lenientInStdlib = map[string]bool{
	"text at top":                true, // character data between elements
	"ref at top":                 true,
	"cdata at top":               true,
	"attr no space":              true, // <a x='1'y='2'/>
	"char ref surrogate":         true, // &#xD800; becomes U+FFFD
	"decl then stanza in stream": true, // the declaration is a processing instruction
	"leading colon":              true, // names that are not QNames
	"trailing colon":             true,
	"attr trailing colon":        true,
	// encoding/xml does not check Unique Att Spec.
	"duplicate attribute":           true,
	"duplicate attribute quotes":    true,
	"duplicate prefixed attribute":  true,
	"duplicate attribute nested":    true,
	"duplicate attribute spaced":    true,
	"duplicate non-ascii attribute": true,
	"duplicate xmlns":               true,
	"duplicate of many attributes":  true,
}

// TestDifferential checks the tokenizer against encoding/xml: every element
// the tokenizer accepts parses, and the not-well-formed stanzas of the table
// tests are rejected by both.
func TestDifferential(t *testing.T) {
	var accepted []string
	for _, tc := range tokCases {
		tk := NewTokenizer(0)
		if tc.setup != nil {
			tc.setup(tk)
		}
		units, err := tokenize(t, tk, []byte(tc.in), whole)
		for _, u := range units {
			if u.kind == KindElement {
				accepted = append(accepted, u.data)
			}
		}
		if tc.cond != NotWellFormed || !strings.HasPrefix(tc.in, hdr) {
			continue
		}
		if lenientInStdlib[tc.name] {
			if xmlParse(tc.in[len(hdr):]) != nil {
				t.Errorf("%s: encoding/xml rejects it: drop it from lenientInStdlib", tc.name)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
		if xmlParse(tc.in[len(hdr):]) == nil {
			t.Errorf("%s: encoding/xml accepts %q", tc.name, tc.in[len(hdr):])
		}
	}
	for _, s := range []string{clientStream, serverStream} {
		units, err := tokenize(t, NewTokenizer(0), []byte(s), whole)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			if u.kind == KindElement {
				accepted = append(accepted, u.data)
			}
		}
	}
	for _, s := range benchStanzas() {
		accepted = append(accepted, string(s.data))
	}
	for _, e := range accepted {
		if err := xmlParse(e); err != nil && !nameTableDiff(e, err) {
			t.Errorf("encoding/xml rejects accepted element %q: %v", e, err)
		}
	}
}
