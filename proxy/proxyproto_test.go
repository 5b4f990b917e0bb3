package proxy

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/proxyproto"
)

func proxyHeader(src string) string {
	h := proxyproto.Header{Command: proxyproto.Proxy, Source: netip.MustParseAddrPort(src), Dest: netip.MustParseAddrPort("192.0.2.1:5222")}
	return string(h.AppendV2(nil))
}

// From a trusted load balancer, the PROXY header's source is the client:
// per-address limits count it, not the balancer; the backend is told it too.
func TestProxyProtocolTrusted(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{
		ProxyProtocol: ProxyProtocol{Trusted: proxyproto.Trusted{netip.MustParsePrefix("127.0.0.0/8")}},
		Limits:        AddrLimits{MaxConnsPerIP: 1},
		Backend:       Backend{ProxyProtocol: 2},
	})
	open := func(src string) *net.TCPConn {
		c := dial(t, addr)
		write(t, c, proxyHeader(src)+clientHeader)
		return c
	}
	// Two clients behind the same balancer address, with different real
	// addresses: both admitted, each announced to the backend.
	for _, src := range []string{"203.0.113.7:4242", "198.51.100.9:5555"} {
		c := open(src)
		bc := b.accept(t)
		bc.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := proxyproto.Read(bc)
		if err != nil || h.Source.String() != src {
			t.Fatalf("backend's PROXY header: %+v, %v; want source %s", h, err, src)
		}
		expect(t, bc, clientHeader)
		write(t, bc, backendHeader)
		expect(t, c, backendHeader)
	}
	// A second connection from the first real address is over its limit.
	c := open("203.0.113.7:4343")
	expectStreamError(t, c, "", true, "", "policy-violation", "too many connections from your address")
	b.noConn(t)
	if s.Open() < 2 {
		t.Fatal("the admitted streams were dropped")
	}
}

// From anyone else, a PROXY header is not trusted: it is not XMPP, and the
// client is refused before the backend hears of it.
func TestProxyProtocolUntrusted(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{
		ProxyProtocol: ProxyProtocol{Trusted: proxyproto.Trusted{netip.MustParsePrefix("192.0.2.0/24")}},
	})
	c := dial(t, addr)
	write(t, c, proxyHeader("203.0.113.7:4242")+clientHeader)
	got, err := readAll(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("spoofed header: %v after %q; want a stream error and EOF", err, got)
	}
	if m := guardHeader.FindString(string(got)); m == "" || string(got[len(m):]) != errorFrame("not-well-formed", "expected a stream header") {
		t.Fatalf("spoofed header answered with %q", got)
	}
	b.noConn(t)
	c.Close()
	waitOpen(t, s, 0)
}
