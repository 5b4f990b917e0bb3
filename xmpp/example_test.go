package xmpp_test

import (
	"errors"
	"fmt"

	"github.com/guard-xmpp/guard/xmpp"
)

// A relay keeps the bytes of the unit in progress and forwards each unit
// whole, so that a stream error can always be written at a unit boundary.
func ExampleTokenizer() {
	stream := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
		"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>" +
		"<message to='romeo@example.net'><body>hi &lt;3</body></message> " +
		"<!-- sneaky -->"

	tk := xmpp.NewTokenizer(64 << 10)
	var unit []byte // bytes of the unit in progress
	for chunk := range chunks([]byte(stream), 40) {
		for len(chunk) > 0 {
			n, kind, err := tk.Next(chunk)
			unit = append(unit, chunk[:n]...)
			chunk = chunk[n:]
			if err != nil {
				var se *xmpp.SyntaxError
				errors.As(err, &se)
				fmt.Printf("error: %s at byte %d: %s\n", se.Condition, se.Offset, se.Msg)
				fmt.Printf("send: %s\n", se.StreamError().AppendTo(nil))
				return
			}
			if kind != xmpp.KindNone {
				fmt.Printf("%-7s %q\n", kind, truncate(unit, 40))
				unit = unit[:0]
			}
		}
	}
	// Output:
	// decl    "<?xml version='1.0'?>"
	// header  "<stream:stream xmlns='jabber:client' xml..."
	// element "<message to='romeo@example.net'><body>hi..."
	// space   " "
	// error: restricted-xml at byte 203: comment not allowed (RFC 6120 11.1)
	// send: <stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>comment not allowed (RFC 6120 11.1)</text></stream:error></stream:stream>
}

// chunks splits b into pieces of n bytes, as reads from a socket would.
func chunks(b []byte, n int) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func ExampleStreamError_AppendTo() {
	buf := make([]byte, 0, 256)
	buf = xmpp.ErrSystemShutdown.AppendTo(buf[:0])
	fmt.Println(string(buf))

	redirect := xmpp.StreamError{Condition: xmpp.SeeOtherHost, SeeOtherHost: "xmpp2.example.net:5222"}
	fmt.Println(string(redirect.AppendTo(buf[:0])))

	err := fmt.Errorf("admission: %w", xmpp.StreamError{Condition: xmpp.ResourceConstraint, Text: "queue full"})
	fmt.Println(errors.Is(err, xmpp.ErrResourceConstraint))
	// Output:
	// <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>
	// <stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp2.example.net:5222</see-other-host></stream:error></stream:stream>
	// true
}

func ExampleParseHeader() {
	h, err := xmpp.ParseHeader([]byte("<stream:stream xmlns='jabber:client' " +
		"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='2.0'>"))
	fmt.Println(h.To, h.Version, errors.Is(err, xmpp.ErrUnsupportedVersion))

	// Answer with Guard's own header, then the error.
	resp := xmpp.Header{From: h.To, ID: "c2s-1", Version: "1.0", Lang: "en"}
	fmt.Println(string(resp.AppendTo(nil)))
	// Output:
	// example.com 2.0 true
	// <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='c2s-1' version='1.0' xml:lang='en'>
}
