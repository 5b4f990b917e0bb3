package xmpp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// hdr is a typical client stream header.
const hdr = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"

// unit is one unit reported by a Tokenizer, with its bytes.
type unit struct {
	kind Kind
	data string
}

func (u unit) String() string { return fmt.Sprintf("%v:%q", u.kind, u.data) }

// chunker returns the size of the next chunk to feed.
type chunker func() int

func whole() int      { return 1 << 30 }
func byteByByte() int { return 1 }
func randomSplits(seed uint64) chunker {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() int { return 1 + r.IntN(17) }
}

// tokenize feeds in to tk in chunks, as a relay would: it keeps the bytes of
// the unit in progress and forwards each unit whole. Adjacent space units
// are merged, since their coalescing depends on the chunking. An incomplete
// last unit is returned with KindNone.
func tokenize(tb testing.TB, tk *Tokenizer, in []byte, next chunker) ([]unit, error) {
	tb.Helper()
	var units []unit
	var pending []byte
	limit := max(tk.MaxUnit(), tk.MaxHeader, maxDecl)
	for len(in) > 0 {
		n := min(next(), len(in))
		p := in[:n]
		in = in[n:]
		for len(p) > 0 {
			m, k, err := tk.Next(p)
			if m < 0 || m > len(p) {
				tb.Fatalf("Next returned n=%d for %d bytes", m, len(p))
			}
			pending = append(pending, p[:m]...)
			if err != nil {
				return units, err
			}
			if len(pending) > limit {
				tb.Fatalf("unit of %d bytes exceeds the limit %d", len(pending), limit)
			}
			if tk.UnitLen() != 0 && k != KindNone {
				tb.Fatalf("UnitLen %d after a complete unit", tk.UnitLen())
			}
			p = p[m:]
			if k == KindNone {
				if m == 0 {
					tb.Fatalf("Next made no progress")
				}
				if tk.UnitLen() != len(pending) {
					tb.Fatalf("UnitLen %d, kept %d bytes", tk.UnitLen(), len(pending))
				}
				continue
			}
			if k == KindSpace && len(units) > 0 && units[len(units)-1].kind == KindSpace {
				units[len(units)-1].data += string(pending)
			} else {
				units = append(units, unit{k, string(pending)})
			}
			pending = pending[:0]
		}
	}
	if len(pending) > 0 {
		units = append(units, unit{KindNone, string(pending)})
	}
	return units, nil
}

// kinds renders the kinds of units as a space-separated list.
func kinds(units []unit) string {
	var b strings.Builder
	for i, u := range units {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(u.kind.String())
	}
	return b.String()
}

// errString renders an error with its condition and offset, for comparison.
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	var se *SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s@%d(%s)", se.Condition, se.Offset, se.Msg)
	}
	return err.Error()
}

type tokCase struct {
	name  string
	in    string
	kinds string    // expected kinds of the units (before the error)
	cond  Condition // expected error condition, "" for none
	setup func(*Tokenizer)
}

// Stanza cases are prefixed with hdr, so their kinds start with "header".
var tokCases = []tokCase{
	// Stream framing.
	{name: "header only", in: hdr, kinds: "header"},
	{name: "decl and header", in: "<?xml version='1.0'?>" + hdr, kinds: "decl header"},
	{name: "decl with encoding", in: "<?xml version=\"1.0\" encoding=\"utf-8\" standalone='yes' ?>\n" + hdr, kinds: "decl space header"},
	{name: "space before decl", in: "\n <?xml version='1.0'?>" + hdr, kinds: "space decl header"},
	{name: "whole stream", in: hdr + "<presence/> \n</stream:stream>\n", kinds: "header element space end space"},
	{name: "other prefix", in: "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><s:features/></s:stream>", kinds: "header element end"},
	{name: "stream ns by char ref", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/&#x73;tr&#101;ams'>", kinds: "header"},
	{name: "stream ns double quotes", in: `<stream:stream xmlns:stream="http://etherx.jabber.org/streams">`, kinds: "header"},
	{name: "restart", in: hdr + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + hdr + "<iq/>", kinds: "header element header element"},
	{name: "restart with decl", in: hdr + "<a/> <?xml version='1.0'?> " + hdr + "</stream:stream>", kinds: "header element space decl space header end"},
	{name: "restart without binding", in: hdr + "<stream:stream to='x'>", kinds: "header header"},
	{name: "incomplete stanza", in: hdr + "<message><body>hi", kinds: "header none"},
	{name: "incomplete header", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'", kinds: "none"},
	{name: "space after end", in: hdr + "</stream:stream> \r\n\t", kinds: "header end space"},

	// Well-formed stanzas.
	{name: "message", in: hdr + "<message to='juliet@example.com' type='chat'><body>Hello</body></message>", kinds: "header element"},
	{name: "self-closing", in: hdr + "<presence/><presence />", kinds: "header element element"},
	{name: "nested", in: hdr + "<iq><query xmlns='jabber:iq:roster'><item jid='a@b'><group>G</group></item></query></iq>", kinds: "header element"},
	{name: "attribute syntax", in: hdr + "<a x = '1' y=\"2\"\tz='a\"b' w=\"a'b\" v='>'/>", kinds: "header element"},
	{name: "end tag space", in: hdr + "<a></a \n>", kinds: "header element"},
	{name: "predefined entities", in: hdr + "<a t='&lt;&gt;&amp;&quot;&apos;'>&lt;b&gt; &amp; &quot;&apos;</a>", kinds: "header element"},
	{name: "char refs", in: hdr + "<a t='&#65;&#x42;'>&#x1F600;&#0000065;&#x0000041;&#9;&#xD;</a>", kinds: "header element"},
	{name: "cdata", in: hdr + "<a><![CDATA[<b>&nbsp; ]] ]]]></a>", kinds: "header element"},
	{name: "brackets in text", in: hdr + "<a>]] > ]>]]</a>", kinds: "header element"},
	{name: "utf8 text", in: hdr + "<a t='é'>日本語 😀 \u007f \uFFFD</a>", kinds: "header element"},
	{name: "utf8 names", in: hdr + "<é:ß ñ='1'/>", kinds: "header element"},
	{name: "fifth edition names", in: hdr + "<a\u203f \u2070='1'/>", kinds: "header element"},
	{name: "prefixed names", in: hdr + "<foo:bar xmlns:foo='urn:x' foo:a='1'><foo:baz/></foo:bar>", kinds: "header element"},
	{name: "stream-named stanza", in: hdr + "<s:stream xmlns:s='urn:x'/>", kinds: "header element"},
	{name: "keepalives", in: hdr + " \n <a/>\n\n", kinds: "header space element space"},

	// Before the header.
	{name: "text before header", in: "GET / HTTP/1.1\r\n", cond: NotWellFormed},
	{name: "stanza before header", in: "<message/>", cond: NotWellFormed},
	{name: "end before header", in: "</stream:stream>", cond: NotWellFormed},
	{name: "decl then stanza", in: "<?xml version='1.0'?><message/>", kinds: "decl", cond: NotWellFormed},
	{name: "unprefixed header", in: "<stream xmlns='http://etherx.jabber.org/streams'>", cond: BadNamespacePrefix},
	{name: "undeclared prefix", in: "<stream:stream xmlns='jabber:client'>", cond: BadNamespacePrefix},
	{name: "wrong stream ns", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streamz'>", cond: InvalidNamespace},
	{name: "stream ns prefix only", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/'>", cond: InvalidNamespace},
	{name: "stream ns too long", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streamss'>", cond: InvalidNamespace},
	{name: "self-closing header", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", cond: NotWellFormed},
	{name: "restart rebinding", in: hdr + "<stream:stream xmlns:stream='urn:x'>", kinds: "header", cond: InvalidNamespace},
	{name: "decl then end", in: hdr + "<?xml version='1.0'?></stream:stream>", kinds: "header decl", cond: NotWellFormed},
	{name: "decl then stanza in stream", in: hdr + "<?xml version='1.0'?><a/>", kinds: "header decl", cond: NotWellFormed},

	// Not well-formed stanzas.
	{name: "text at top", in: hdr + "hello", kinds: "header", cond: NotWellFormed},
	{name: "ref at top", in: hdr + "&#32;", kinds: "header", cond: NotWellFormed},
	{name: "cdata at top", in: hdr + "<![CDATA[ ]]>", kinds: "header", cond: NotWellFormed},
	{name: "mismatched end", in: hdr + "<a></b>", kinds: "header", cond: NotWellFormed},
	{name: "end tag longer", in: hdr + "<a></ab>", kinds: "header", cond: NotWellFormed},
	{name: "end tag shorter", in: hdr + "<ab></a>", kinds: "header", cond: NotWellFormed},
	{name: "wrong stream end", in: hdr + "</stream:streams>", kinds: "header", cond: NotWellFormed},
	{name: "space after <", in: hdr + "< a/>", kinds: "header", cond: NotWellFormed},
	{name: "space after </", in: hdr + "<a></ a>", kinds: "header", cond: NotWellFormed},
	{name: "digit name", in: hdr + "<1a/>", kinds: "header", cond: NotWellFormed},
	{name: "bad name char", in: hdr + "<a×/>", kinds: "header", cond: NotWellFormed},
	{name: "bad name start", in: hdr + "<·a/>", kinds: "header", cond: NotWellFormed},
	{name: "space in empty tag", in: hdr + "<a/ >", kinds: "header", cond: NotWellFormed},
	{name: "attr no space", in: hdr + "<a x='1'y='2'/>", kinds: "header", cond: NotWellFormed},
	{name: "attr unquoted", in: hdr + "<a x=1/>", kinds: "header", cond: NotWellFormed},
	{name: "attr no value", in: hdr + "<a x/>", kinds: "header", cond: NotWellFormed},
	{name: "attr bad name", in: hdr + "<a -x='1'/>", kinds: "header", cond: NotWellFormed},
	{name: "lt in attr", in: hdr + "<a x='<'/>", kinds: "header", cond: NotWellFormed},
	{name: "bare amp in text", in: hdr + "<a>a & b</a>", kinds: "header", cond: NotWellFormed},
	{name: "bare amp in attr", in: hdr + "<a x='&'/>", kinds: "header", cond: NotWellFormed},
	{name: "unterminated ref", in: hdr + "<a>&lt </a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref zero", in: hdr + "<a>&#0;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref surrogate", in: hdr + "<a>&#xD800;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref too big", in: hdr + "<a>&#x110000;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref huge", in: hdr + "<a>&#99999999999999999999;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref FFFE", in: hdr + "<a x='&#xFFFE;'/>", kinds: "header", cond: NotWellFormed},
	{name: "char ref empty", in: hdr + "<a>&#;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref empty hex", in: hdr + "<a>&#x;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref bad digit", in: hdr + "<a>&#12a;</a>", kinds: "header", cond: NotWellFormed},
	{name: "char ref upper X", in: hdr + "<a>&#X41;</a>", kinds: "header", cond: NotWellFormed},
	{name: "control in text", in: hdr + "<a>\x01</a>", kinds: "header", cond: NotWellFormed},
	{name: "nul in text", in: hdr + "<a>\x00</a>", kinds: "header", cond: NotWellFormed},
	{name: "control in attr", in: hdr + "<a x='\x1b'/>", kinds: "header", cond: NotWellFormed},
	{name: "control in cdata", in: hdr + "<a><![CDATA[\x02]]></a>", kinds: "header", cond: NotWellFormed},
	{name: "invalid utf8", in: hdr + "<a>\xff</a>", kinds: "header", cond: NotWellFormed},
	{name: "overlong utf8", in: hdr + "<a>\xc0\x80</a>", kinds: "header", cond: NotWellFormed},
	{name: "surrogate utf8", in: hdr + "<a>\xed\xa0\x80</a>", kinds: "header", cond: NotWellFormed},
	{name: "truncated utf8", in: hdr + "<a>\xe2\x82</a>", kinds: "header", cond: NotWellFormed},
	{name: "utf8 FFFF", in: hdr + "<a>\xef\xbf\xbf</a>", kinds: "header", cond: NotWellFormed},
	{name: "invalid utf8 attr", in: hdr + "<a x='\xfe'/>", kinds: "header", cond: NotWellFormed},
	{name: "invalid utf8 name", in: hdr + "<a\xff/>", kinds: "header", cond: NotWellFormed},
	{name: "two colons", in: hdr + "<a:b:c/>", kinds: "header", cond: NotWellFormed},
	{name: "double colon", in: hdr + "<A00::0/>", kinds: "header", cond: NotWellFormed},
	{name: "leading colon", in: hdr + "<:a/>", kinds: "header", cond: NotWellFormed},
	{name: "trailing colon", in: hdr + "<a:/>", kinds: "header", cond: NotWellFormed},
	{name: "attr two colons", in: hdr + "<a x:y:z='1'/>", kinds: "header", cond: NotWellFormed},
	{name: "attr trailing colon", in: hdr + "<a x:='1'/>", kinds: "header", cond: NotWellFormed},
	{name: "cdata end in text", in: hdr + "<a>x]]>y</a>", kinds: "header", cond: NotWellFormed},
	{name: "data after end", in: hdr + "</stream:stream><a/>", kinds: "header end", cond: NotWellFormed},
	{name: "text after end", in: hdr + "</stream:stream>x", kinds: "header end", cond: NotWellFormed},
	{name: "bad decl version", in: "<?xml version='2.0'?>", cond: NotWellFormed},
	{name: "bad decl attr", in: "<?xml foo='1'?>", cond: NotWellFormed},
	{name: "decl without version", in: "<?xml encoding='UTF-8'?>", cond: NotWellFormed},
	{name: "decl order", in: "<?xml encoding='UTF-8' version='1.0'?>", cond: NotWellFormed},
	{name: "decl with ref", in: "<?xml version='1&#46;0'?>", cond: NotWellFormed},

	// Restricted XML (RFC 6120 11.1).
	{name: "comment before header", in: "<!-- hi -->" + hdr, cond: RestrictedXML},
	{name: "comment at top", in: hdr + "<!-- hi -->", kinds: "header", cond: RestrictedXML},
	{name: "comment in stanza", in: hdr + "<a><!-- hi --></a>", kinds: "header", cond: RestrictedXML},
	{name: "doctype", in: "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>", kinds: "decl", cond: RestrictedXML},
	{name: "entity decl in stanza", in: hdr + "<a><!ENTITY x 'y'></a>", kinds: "header", cond: RestrictedXML},
	{name: "bad cdata open", in: hdr + "<a><![CDATX[x]]></a>", kinds: "header", cond: RestrictedXML},
	{name: "pi in stanza", in: hdr + "<a><?foo bar?></a>", kinds: "header", cond: RestrictedXML},
	{name: "decl in stanza", in: hdr + "<a><?xml version='1.0'?></a>", kinds: "header", cond: RestrictedXML},
	{name: "pi at top", in: hdr + "<?foo bar?>", kinds: "header", cond: RestrictedXML},
	{name: "pi before header", in: "<?xml-stylesheet href='x'?>" + hdr, cond: RestrictedXML},
	{name: "pi xmlfoo", in: "<?xmlfoo?>" + hdr, cond: RestrictedXML},
	{name: "second decl", in: "<?xml version='1.0'?><?xml version='1.0'?>", kinds: "decl", cond: RestrictedXML},
	{name: "entity ref", in: hdr + "<a>&nbsp;</a>", kinds: "header", cond: RestrictedXML},
	{name: "entity ref in attr", in: hdr + "<a x='&foo;'/>", kinds: "header", cond: RestrictedXML},
	{name: "long entity ref", in: hdr + "<a>&averyveryverylongentityname;</a>", kinds: "header", cond: RestrictedXML},
	{name: "entity ref prefix of amp", in: hdr + "<a>&am;</a>", kinds: "header", cond: RestrictedXML},
	{name: "entity ref longer than amp", in: hdr + "<a>&ampx;</a>", kinds: "header", cond: RestrictedXML},

	// Unsupported encoding (RFC 6120 11.6).
	{name: "latin1 decl", in: "<?xml version='1.0' encoding='ISO-8859-1'?>" + hdr, cond: UnsupportedEncoding},

	// Limits.
	{name: "stanza at limit", in: hdr + "<a>" + strings.Repeat("x", 57) + "</a>", kinds: "header element",
		setup: func(t *Tokenizer) { *t = *NewTokenizer(64) }},
	{name: "stanza over limit", in: hdr + "<a>" + strings.Repeat("x", 58) + "</a>", kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { *t = *NewTokenizer(64) }},
	{name: "stanza far over limit", in: hdr + "<a>" + strings.Repeat("x", 1000), kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { *t = *NewTokenizer(64) }},
	{name: "long name over limit", in: hdr + "<" + strings.Repeat("a", 100), kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { *t = *NewTokenizer(64) }},
	{name: "header over limit", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='" + strings.Repeat("x", 200) + "'>", cond: PolicyViolation,
		setup: func(t *Tokenizer) { t.MaxHeader = 128 }},
	{name: "restart over limit", in: hdr + "<stream:stream to='" + strings.Repeat("x", 200) + "'>", kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { t.MaxHeader = 128 }},
	{name: "decl over limit", in: "<?xml version='1.0'" + strings.Repeat(" ", 200) + "?>", cond: PolicyViolation},
	{name: "depth at limit", in: hdr + "<a><b><c/></b></a>", kinds: "header element",
		setup: func(t *Tokenizer) { t.MaxDepth = 3 }},
	{name: "depth over limit", in: hdr + "<a><b><c><d/></c></b></a>", kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { t.MaxDepth = 3 }},
	{name: "deep nesting", in: hdr + strings.Repeat("<a>", 500) + strings.Repeat("</a>", 500), kinds: "header element"},
	{name: "deep nesting over max_depth", in: hdr + strings.Repeat("<a>", 500), kinds: "header", cond: PolicyViolation,
		setup: func(t *Tokenizer) { t.MaxDepth = 64 }},

	// Unique Att Spec (XML 1.0 3.1).
	{name: "duplicate attribute", in: hdr + "<a x='1' x='2'/>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate attribute quotes", in: hdr + "<a x='1' x=\"1\"/>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate prefixed attribute", in: hdr + "<a xml:lang='en' id='1' xml:lang='de'></a>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate attribute nested", in: hdr + "<a><b to='x' type='chat' to='y'/></a>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate attribute spaced", in: hdr + "<a x = '1'\n x\t=\t'2'/>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate non-ascii attribute", in: hdr + "<a \u00e9t\u00e9='1' \u00e9t\u00e9='2'/>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate xmlns", in: hdr + "<a xmlns='x' xmlns='x'/>", kinds: "header", cond: NotWellFormed},
	{name: "duplicate attribute in header", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' to='b'>", cond: NotWellFormed},
	{name: "duplicate of many attributes", in: hdr + "<a" + manyAttrs(40) + " a7='x'/>", kinds: "header", cond: NotWellFormed},
	{name: "many distinct attributes", in: hdr + "<a" + manyAttrs(40) + "/>", kinds: "header element"},
	{name: "same name in sibling tags", in: hdr + "<a x='1'><b x='1'/><b x='1'/></a>", kinds: "header element"},
	{name: "prefixes differ", in: hdr + "<a xml:lang='en' lang='en' p:lang='en' xmlns:p='urn:p'/>", kinds: "header element"},
	{name: "attribute name prefix of another", in: hdr + "<a id='1' idx='2' i='3'/>", kinds: "header element"},
	{name: "space not limited", in: hdr + strings.Repeat(" ", 300) + "<a/>", kinds: "header space element",
		setup: func(t *Tokenizer) { *t = *NewTokenizer(64) }},
}

// chunkings are the ways every case is fed; all must agree.
func chunkings() map[string]chunker {
	m := map[string]chunker{"whole": whole, "bytes": byteByByte}
	for seed := uint64(1); seed <= 4; seed++ {
		m[fmt.Sprintf("random%d", seed)] = randomSplits(seed)
	}
	return m
}

func TestTokenizer(t *testing.T) {
	for _, tc := range tokCases {
		t.Run(tc.name, func(t *testing.T) {
			var ref []unit
			var refErr string
			for name, ch := range chunkings() {
				tk := NewTokenizer(0)
				if tc.setup != nil {
					tc.setup(tk)
				}
				units, err := tokenize(t, tk, []byte(tc.in), ch)
				if got := kinds(units); got != tc.kinds {
					t.Errorf("%s: kinds = %q, want %q (%v)", name, got, tc.kinds, units)
				}
				c, _ := ConditionOf(err)
				if c != tc.cond {
					t.Errorf("%s: error %v, want condition %q", name, err, tc.cond)
				}
				if err != nil {
					// The tokenizer stays failed.
					if _, _, err2 := tk.Next([]byte(" ")); err2 != err {
						t.Errorf("%s: after an error Next returned %v", name, err2)
					}
					if !errors.Is(err, StreamError{Condition: tc.cond}) {
						t.Errorf("%s: errors.Is(%v, %s) is false", name, err, tc.cond)
					}
				}
				var joined strings.Builder
				for _, u := range units {
					joined.WriteString(u.data)
				}
				if err == nil && joined.String() != tc.in {
					t.Errorf("%s: units do not add up to the input: %v", name, units)
				}
				if ref == nil {
					ref, refErr = units, errString(err)
					continue
				}
				if fmt.Sprint(units) != fmt.Sprint(ref) || errString(err) != refErr {
					t.Errorf("%s: result differs between chunkings:\n%v %s\n%v %s", name, units, errString(err), ref, refErr)
				}
			}
		})
	}
}

func TestTokenizerErrorOffset(t *testing.T) {
	tests := []struct {
		in  string
		off int64
	}{
		{hdr + "<a>&nbsp;</a>", int64(len(hdr) + 8)},
		{hdr + "<a><!--", int64(len(hdr) + 5)},
		{hdr + "<a>\xff", int64(len(hdr) + 3)},
		{hdr + "<a>\xe2\x82\xe2", int64(len(hdr) + 3)},
		{hdr + "hello", int64(len(hdr))},
		{"hello", 0},
	}
	for _, tc := range tests {
		for name, ch := range chunkings() {
			_, err := tokenize(t, NewTokenizer(0), []byte(tc.in), ch)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%q: %s: error %v is not a *SyntaxError", tc.in, name, err)
			}
			if se.Offset != tc.off {
				t.Errorf("%q: %s: offset %d, want %d", tc.in, name, se.Offset, tc.off)
			}
		}
	}
}

func TestTokenizerNext(t *testing.T) {
	tk := NewTokenizer(0)
	if n, k, err := tk.Next(nil); n != 0 || k != KindNone || err != nil {
		t.Fatalf("Next(nil) = %d, %v, %v", n, k, err)
	}
	in := []byte(hdr + "<presence/><message><body>x</body></message>")
	n, k, err := tk.Next(in)
	if n != len(hdr) || k != KindHeader || err != nil {
		t.Fatalf("Next = %d, %v, %v; want %d, header", n, k, err, len(hdr))
	}
	if tk.Depth() != 1 {
		t.Errorf("Depth = %d after the header", tk.Depth())
	}
	in = in[n:]
	n, k, _ = tk.Next(in)
	if string(in[:n]) != "<presence/>" || k != KindElement {
		t.Fatalf("Next = %q, %v", in[:n], k)
	}
	in = in[n:]
	n, k, _ = tk.Next(in[:10])
	if n != 10 || k != KindNone || tk.UnitLen() != 10 {
		t.Fatalf("partial Next = %d, %v, UnitLen %d", n, k, tk.UnitLen())
	}
	n, k, _ = tk.Next(in[10:])
	if n != len(in)-10 || k != KindElement || tk.UnitLen() != 0 {
		t.Fatalf("rest Next = %d, %v, UnitLen %d", n, k, tk.UnitLen())
	}
	if tk.Offset() != int64(len(hdr)+len("<presence/><message><body>x</body></message>")) {
		t.Errorf("Offset = %d", tk.Offset())
	}
}

func TestTokenizerReset(t *testing.T) {
	tk := NewTokenizer(100)
	tk.MaxDepth = 5
	if _, err := tokenize(t, tk, []byte(hdr+"<a>"), whole); err != nil {
		t.Fatal(err)
	}
	tk.Reset()
	if tk.Depth() != 0 || tk.UnitLen() != 0 || tk.Offset() != 0 {
		t.Fatalf("after Reset: depth %d, unit %d, offset %d", tk.Depth(), tk.UnitLen(), tk.Offset())
	}
	// A fresh stream may start with a declaration again.
	units, err := tokenize(t, tk, []byte("<?xml version='1.0'?>"+hdr+"</stream:stream>"), whole)
	if err != nil || kinds(units) != "decl header end" {
		t.Fatalf("after Reset: %v %v", units, err)
	}
	// After an error, Reset makes the tokenizer usable again.
	if _, err := tokenize(t, tk, []byte("<a/>"), whole); err == nil {
		t.Fatal("data after the end accepted")
	}
	if tk.Err() == nil {
		t.Fatal("Err() is nil after an error")
	}
	tk.Reset()
	if tk.Err() != nil || tk.MaxDepth != 5 || tk.MaxUnit() != 100 {
		t.Fatalf("Reset lost limits or kept the error: %v %d %d", tk.Err(), tk.MaxDepth, tk.MaxUnit())
	}
	if _, err := tokenize(t, tk, []byte(hdr+"<a/>"), whole); err != nil {
		t.Fatal(err)
	}
}

// clientStream is a client's side of a Prosody/Openfire session: TLS is
// assumed done, SASL PLAIN, a restart, resource binding, messages,
// presence, keepalives and the close.
const clientStream = "<?xml version='1.0'?>" +
	"<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' version='1.0'>" +
	"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>" +
	"<?xml version='1.0'?>" +
	"<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' version='1.0'>" +
	"<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>" +
	"<iq type='get' id='roster_1'><query xmlns='jabber:iq:roster'/></iq>" +
	"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='QHnPpXuZ0Z2CRN4yTP7a/8QXEFE='/></presence>" +
	"\n" +
	"<message to='romeo@example.net' type='chat' id='m1' xml:lang='en'><body>Wherefore art thou? &lt;3 &#x1F339; &amp; caf&#233;</body>" +
	"<active xmlns='http://jabber.org/protocol/chatstates'/></message>" +
	" " +
	"<message to='romeo@example.net' type='chat' id='m2'><body>Ça va? 日本語</body></message>" +
	"\n\n" +
	"<presence type='unavailable'/>" +
	"</stream:stream>"

// serverStream is Prosody's side of the same session.
const serverStream = "<?xml version='1.0'?>" +
	"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='4c9b8d3a-5e1f' from='example.com' version='1.0' xml:lang='en'>" +
	"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
	"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" +
	"<?xml version='1.0'?>" +
	"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='71ab' from='example.com' version='1.0' xml:lang='en'>" +
	"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>" +
	"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' ver='tjGXMo8ysvvLFvD0q9eD5cr9cJc='/></stream:features>" +
	"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/balcony</jid></bind></iq>" +
	"<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='1'><item jid='romeo@example.net' subscription='both' name='Romeo'><group>Friends</group></item></query></iq>" +
	" " +
	"<message from='romeo@example.net/orchard' to='juliet@example.com/balcony' type='chat'><body>&quot;Hi&quot; &apos;there&apos;</body><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>" +
	"</stream:stream>"

func TestTokenizerRealTraffic(t *testing.T) {
	tests := []struct {
		name, in, kinds string
	}{
		{"client", clientStream, "decl header element decl header element element element space element space element space element end"},
		{"server", serverStream, "decl header element element decl header element element element space element end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, ch := range chunkings() {
				units, err := tokenize(t, NewTokenizer(0), []byte(tc.in), ch)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := kinds(units); got != tc.kinds {
					t.Errorf("%s: kinds\n got %s\nwant %s", name, got, tc.kinds)
				}
				for _, u := range units {
					if u.kind != KindHeader {
						continue
					}
					if _, err := ParseHeader([]byte(u.data)); err != nil {
						t.Errorf("%s: ParseHeader(%q): %v", name, u.data, err)
					}
				}
			}
		})
	}
}

// TestTokenizerAllocs checks that a warmed-up tokenizer allocates nothing
// per stanza.
func TestTokenizerAllocs(t *testing.T) {
	tk := NewTokenizer(0)
	if _, _, err := tk.Next([]byte(hdr)); err != nil {
		t.Fatal(err)
	}
	stanzas := benchStanzas()
	feed := func() {
		for _, s := range stanzas {
			p := s.data
			for len(p) > 0 {
				n, _, err := tk.Next(p)
				if err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
		}
	}
	feed() // warm up: the element stack grows to its working size
	if a := testing.AllocsPerRun(100, feed); a != 0 {
		t.Errorf("%v allocations per stanza mix, want 0", a)
	}
	// Also when every stanza arrives in small chunks.
	chunked := func() {
		for _, s := range stanzas {
			p := s.data
			for len(p) > 0 {
				c := p[:min(len(p), 7)]
				n, _, err := tk.Next(c)
				if err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
		}
	}
	if a := testing.AllocsPerRun(100, chunked); a != 0 {
		t.Errorf("%v allocations per chunked stanza mix, want 0", a)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNone: "none", KindDecl: "decl", KindHeader: "header", KindElement: "element", KindSpace: "space", KindEnd: "end", 42: "kind(42)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// manyAttrs returns n distinct attributes, a0 to a(n-1).
func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d='%d'", i, i)
	}
	return b.String()
}

// The errors of the limits name the limit; a duplicate attribute names the
// attribute.
func TestTokenizerLimitMessages(t *testing.T) {
	for _, tc := range []struct {
		in    string
		depth int
		cond  Condition
		msg   string
	}{
		{hdr + "<a><b><c/></b></a>", 2, PolicyViolation, "element nesting exceeds max_depth (2)"},
		{hdr + "<a x='1' y='2' x='3'/>", 0, NotWellFormed, "duplicate attribute x"},
		{hdr + "<a" + manyAttrs(20) + " a13='1'/>", 0, NotWellFormed, "duplicate attribute a13"},
	} {
		for name, chunk := range chunkings() {
			tk := NewTokenizer(0)
			tk.MaxDepth = tc.depth
			_, err := tokenize(t, tk, []byte(tc.in), chunk)
			var se *SyntaxError
			if !errors.As(err, &se) || se.Condition != tc.cond || se.Msg != tc.msg {
				t.Errorf("%s %q: error %v, want %s %q", name, tc.in, err, tc.cond, tc.msg)
			}
		}
	}
}
