package proxyproto_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/guard-xmpp/guard/proxyproto"
)

// A balancer's connection starts with a version 2 header; Read consumes it
// and leaves the client's XMPP bytes in the reader.
func ExampleRead() {
	h := proxyproto.Header{
		Command: proxyproto.Proxy,
		Source:  netip.MustParseAddrPort("203.0.113.7:51234"),
		Dest:    netip.MustParseAddrPort("192.0.2.1:5222"),
	}
	conn := bytes.NewReader(append(h.AppendV2(nil), "<?xml version='1.0'?>"...))

	got, err := proxyproto.Read(conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	rest, _ := io.ReadAll(conn)
	fmt.Println(got.Version, got.Command, got.Source, got.Dest)
	fmt.Printf("%s\n", rest)

	_, err = proxyproto.Read(bytes.NewReader([]byte("<?xml version='1.0'?><stream:stream>")))
	fmt.Println(errors.Is(err, proxyproto.ErrNoHeader))
	// Output:
	// 2 PROXY 203.0.113.7:51234 192.0.2.1:5222
	// <?xml version='1.0'?>
	// true
}

// Guard sends a header to a backend before the client's first bytes.
func ExampleHeader_AppendV1() {
	h := proxyproto.Header{
		Command: proxyproto.Proxy,
		Source:  netip.MustParseAddrPort("[2001:db8::7]:51234"),
		Dest:    netip.MustParseAddrPort("[2001:db8::1]:5222"),
	}
	fmt.Printf("%q\n", h.AppendV1(nil))
	fmt.Printf("%q\n", proxyproto.Header{Command: proxyproto.Local}.AppendV1(nil))
	// Output:
	// "PROXY TCP6 2001:db8::7 2001:db8::1 51234 5222\r\n"
	// "PROXY UNKNOWN\r\n"
}

// Only the balancers may send a header. An IPv4 peer on a dual-stack
// listener shows up IPv4-mapped and still matches.
func ExampleTrusted_Contains() {
	trusted, err := proxyproto.ParseTrusted("10.0.0.0/8", "2001:db8::10")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, peer := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8::10", "198.51.100.9"} {
		fmt.Println(peer, trusted.Contains(netip.MustParseAddr(peer)))
	}
	// Output:
	// 10.1.2.3 true
	// ::ffff:10.1.2.3 true
	// 2001:db8::10 true
	// 198.51.100.9 false
}
