package xmpp

import (
	"errors"
	"testing"
)

func TestParseOpen(t *testing.T) {
	h, err := ParseOpen([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.net" version="1.0" xml:lang="de"/>`))
	if err != nil || h.To != "example.net" || h.Lang != "de" || h.NS != ClientNS {
		t.Fatalf("ParseOpen = %+v, %v", h, err)
	}
	got := string(h.AppendTo(nil))
	want := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.net' version='1.0' xml:lang='de'>"
	if got != want {
		t.Fatalf("header %s\nwant   %s", got, want)
	}
	for in, c := range map[string]Condition{
		`<open to="example.net" version="1.0"/>`:                                      InvalidNamespace,
		`<open xmlns="jabber:client" to="example.net" version="1.0"/>`:                InvalidNamespace,
		`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.net"/>`:        UnsupportedVersion,
		`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.net" version=`: NotWellFormed,
	} {
		_, err := ParseOpen([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) || se.Condition != c {
			t.Errorf("%s: %v, want %s", in, err, c)
		}
	}
}

func TestAppendOpenAndKinds(t *testing.T) {
	h := Header{From: "example.net", ID: "abc", Version: "1.0", Lang: "en"}
	if got := string(h.AppendOpen(nil)); got != "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.net' id='abc' version='1.0' xml:lang='en'/>" {
		t.Fatal(got)
	}
	if got := string(AppendClose(nil, "")); got != "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" {
		t.Fatal(got)
	}
	if got := string(AppendClose(nil, "wss://b.example/ws?a=1&b=2")); got != "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://b.example/ws?a=1&amp;b=2'/>" {
		t.Fatal(got)
	}
	for in, k := range map[string]Kind{"<open/>": KindHeader, "<open xmlns='x'/>": KindHeader, "<close/>": KindEnd,
		"<opener/>": KindElement, "<message/>": KindElement, "<closed/>": KindElement} {
		if got := FramingKind([]byte(in)); got != k {
			t.Errorf("%s: %v, want %v", in, got, k)
		}
	}
}

func TestAppendNamespaces(t *testing.T) {
	for in, want := range map[string]string{
		"<message to='a@b'><body>hi</body></message>":             "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>",
		"<iq xmlns='jabber:client' type='get'/>":                  "<iq xmlns='jabber:client' type='get'/>",
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</auth>": "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</auth>",
		"<stream:features><bind xmlns='x'/></stream:features>":    "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='x'/></stream:features>",
		"<stream:error><x/></stream:error>":                       "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><x/></stream:error>",
		"<presence/>":                                             "<presence xmlns='jabber:client'/>",
		"<message xmlns:foo='bar' to='x'/>":                       "<message xmlns='jabber:client' xmlns:foo='bar' to='x'/>",
		"<r xmlns=\"urn:xmpp:sm:3\"/>":                            "<r xmlns=\"urn:xmpp:sm:3\"/>",
	} {
		if got := string(AppendNamespaces(nil, []byte(in))); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}

// FuzzParseOpen: no input panics; an <open/> accepted renders a header the
// stream parser accepts with the same to.
func FuzzParseOpen(f *testing.F) {
	f.Add([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.net" version="1.0"/>`))
	f.Add([]byte(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a&amp;b' version='1.0' xml:lang='en'/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseOpen(b)
		if err != nil {
			return
		}
		hdr := h.AppendTo(nil)
		got, err := ParseHeader(hdr[len("<?xml version='1.0'?>"):])
		if err != nil || got.To != h.To {
			t.Fatalf("%q: rendered %q: %v, to %q", b, hdr, err, got.To)
		}
	})
}
