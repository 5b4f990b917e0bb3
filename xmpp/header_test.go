package xmpp

import (
	"errors"
	"regexp"
	"testing"
)

func TestParseHeader(t *testing.T) {
	const ns = " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
	tests := []struct {
		name string
		in   string
		want Header
		cond Condition
	}{
		{name: "client", in: "<stream:stream" + ns + " to='example.com' from='juliet@example.com' version='1.0' xml:lang='en'>",
			want: Header{To: "example.com", From: "juliet@example.com", Version: "1.0", Lang: "en", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "with decl", in: "<?xml version='1.0' encoding='UTF-8'?>\n<stream:stream" + ns + " to='example.com' version='1.0'>\n",
			want: Header{To: "example.com", Version: "1.0", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "server", in: "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' from='im.example.com' version='1.0'>",
			want: Header{ID: "++TR84Sm6A3hnt3Q065SnAbbk3Y=", From: "im.example.com", Version: "1.0", NS: ServerNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "other prefix", in: "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns=\"jabber:client\" to=\"a\">",
			want: Header{To: "a", NS: ClientNS, StreamNS: StreamsNS, Prefix: "s"}},
		{name: "references", in: "<stream:stream" + ns + " to='a&amp;b&#x41;&#66;&lt;' from='x\ty'>",
			want: Header{To: "a&bAB<", From: "x y", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "no version", in: "<stream:stream" + ns + ">",
			want: Header{NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "version leading zeros", in: "<stream:stream" + ns + " version='01.000'>",
			want: Header{Version: "01.000", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "version 1.99", in: "<stream:stream" + ns + " version='1.99'>",
			want: Header{Version: "1.99", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},

		{name: "version 2", in: "<stream:stream" + ns + " to='a' version='2.0'>", cond: UnsupportedVersion,
			want: Header{To: "a", Version: "2.0", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "bad version", in: "<stream:stream" + ns + " version='one'>", cond: BadFormat,
			want: Header{Version: "one", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "version no minor", in: "<stream:stream" + ns + " version='1'>", cond: BadFormat,
			want: Header{Version: "1", NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "wrong stream ns", in: "<stream:stream xmlns='jabber:client' xmlns:stream='urn:x' to='a'>", cond: InvalidNamespace,
			want: Header{To: "a", NS: ClientNS, StreamNS: "urn:x", Prefix: "stream"}},
		{name: "wrong content ns", in: "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>", cond: InvalidNamespace,
			want: Header{NS: "jabber:component:accept", StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "no content ns", in: "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", cond: InvalidNamespace,
			want: Header{StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "not stream", in: "<stream:streams" + ns + ">", cond: InvalidNamespace,
			want: Header{NS: ClientNS, StreamNS: StreamsNS, Prefix: "stream"}},
		{name: "no prefix", in: "<stream xmlns='http://etherx.jabber.org/streams'>", cond: BadNamespacePrefix,
			want: Header{NS: StreamsNS}},
		{name: "undeclared prefix", in: "<stream:stream xmlns='jabber:client'>", cond: BadNamespacePrefix,
			want: Header{NS: ClientNS, Prefix: "stream"}},

		{name: "empty", in: "", cond: NotWellFormed},
		{name: "not a tag", in: "GET / HTTP/1.1", cond: NotWellFormed},
		{name: "unterminated", in: "<stream:stream" + ns, cond: NotWellFormed},
		{name: "self-closing", in: "<stream:stream" + ns + "/>", cond: NotWellFormed},
		{name: "trailing data", in: "<stream:stream" + ns + "><a/>", cond: NotWellFormed},
		{name: "duplicate attribute", in: "<stream:stream" + ns + " to='a' to='b'>", cond: NotWellFormed},
		{name: "no space", in: "<stream:stream xmlns='jabber:client'to='a'>", cond: NotWellFormed},
		{name: "unquoted", in: "<stream:stream to=a>", cond: NotWellFormed},
		{name: "lt in value", in: "<stream:stream to='<'>", cond: NotWellFormed},
		{name: "bare amp", in: "<stream:stream to='a&b'>", cond: NotWellFormed},
		{name: "bad char ref", in: "<stream:stream to='&#0;'>", cond: NotWellFormed},
		{name: "bad decimal ref", in: "<stream:stream to='&#1a;'>", cond: NotWellFormed},
		{name: "entity ref", in: "<stream:stream to='&nbsp;'>", cond: RestrictedXML},
		{name: "control char", in: "<stream:stream to='\x01'>", cond: NotWellFormed},
		{name: "invalid utf8", in: "<stream:stream to='\xff'>", cond: NotWellFormed},
		{name: "latin1", in: "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream" + ns + ">", cond: UnsupportedEncoding},
		{name: "unterminated decl", in: "<?xml version='1.0'", cond: NotWellFormed},
		{name: "bad decl", in: "<?xml version='1.0' foo='bar'?><stream:stream" + ns + ">", cond: NotWellFormed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader([]byte(tc.in))
			c, _ := ConditionOf(err)
			if c != tc.cond {
				t.Fatalf("error %v, want condition %q", err, tc.cond)
			}
			if tc.cond != "" && !errors.Is(err, StreamError{Condition: tc.cond}) {
				t.Errorf("errors.Is(%v, %s) is false", err, tc.cond)
			}
			if (tc.cond == "" || tc.want != Header{}) && h != tc.want {
				t.Errorf("header\n got %+v\nwant %+v", h, tc.want)
			}
		})
	}
}

func TestVersionNumbers(t *testing.T) {
	tests := []struct {
		v            string
		major, minor int
		ok           bool
	}{
		{"", 0, 9, true}, {"1.0", 1, 0, true}, {"01.010", 1, 10, true}, {"2.3", 2, 3, true},
		{"1", 0, 0, false}, {"1.", 0, 0, false}, {".1", 0, 0, false}, {"1.0.0", 0, 0, false}, {"-1.0", 0, 0, false},
	}
	for _, tc := range tests {
		major, minor, ok := Header{Version: tc.v}.VersionNumbers()
		if major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("VersionNumbers(%q) = %d, %d, %v; want %d, %d, %v", tc.v, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
	// Huge numbers saturate instead of overflowing into small ones.
	if major, _, ok := (Header{Version: "99999999999999999999999.0"}).VersionNumbers(); !ok || major <= 1 {
		t.Errorf("huge version: major %d, ok %v", major, ok)
	}
}

func TestHeaderAppendTo(t *testing.T) {
	h := Header{From: "example.com", To: "juliet@example.com", ID: "abc", Version: "1.0", Lang: "en"}
	want := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='juliet@example.com' from='example.com' id='abc' version='1.0' xml:lang='en'>"
	if got := string(h.AppendTo(nil)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Escaping, and the result parses back to the same header.
	h = Header{From: "a'b\"<&>", ID: "x\ty\xff", NS: ServerNS}
	out := h.AppendTo([]byte("prefix"))
	back, err := ParseHeader(out[len("prefix"):])
	if err != nil {
		t.Fatalf("ParseHeader(%s): %v", out, err)
	}
	if back.From != h.From || back.ID != "x\ty\uFFFD" || back.NS != ServerNS {
		t.Errorf("round trip: %+v", back)
	}
	// The tokenizer accepts it as a header.
	units, err := tokenize(t, NewTokenizer(0), out[len("prefix"):], whole)
	if err != nil || kinds(units) != "decl header" {
		t.Errorf("tokenizer: %v %v", units, err)
	}
}

func TestNewStreamID(t *testing.T) {
	a, b := NewStreamID(), NewStreamID()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a) || a == b {
		t.Errorf("NewStreamID: %q, %q", a, b)
	}
}
