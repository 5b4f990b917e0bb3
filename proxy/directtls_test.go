package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/testcert"
)

// expectBareClose asserts that Guard ends c with a FIN and nothing before it.
func expectBareClose(t *testing.T, c net.Conn) {
	t.Helper()
	if got, err := readAll(t, c, 5*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("read %q, %v; want a bare close (FIN)", got, err)
	}
	c.Close()
}

// Direct TLS passed through (XEP-0368): Guard reads the ClientHello's
// server name without terminating TLS, routes the stream by it, and
// relays the TLS unchanged, so that the backend sees the remote server's
// certificate. An unknown name, or bytes that are no ClientHello, end
// with a FIN and reach no backend.
func TestDirectTLSPassthroughRoutedBySNI(t *testing.T) {
	leakcheck.Check(t)
	net1, net2 := newTestBackend(t), newTestBackend(t)
	cfg := ListenerConfig{Stream: StreamServer, TLS: TLS{Mode: TLSPassthrough}, Routes: map[string]Backend{
		"example.net": {Name: "one", Address: net1.addr()},
		"example.org": {Name: "two", Address: net2.addr()},
	}, Timeouts: Timeouts{HalfClose: 500 * time.Millisecond}}
	s, addr := startGuard(t, "", cfg)

	serverCert, _ := testCert(t)
	clientCert, _ := testCert(t)
	for _, tc := range []struct {
		sni string
		b   *testBackend
	}{{"example.org", net2}, {"example.net", net1}} {
		c := dial(t, addr)
		// The test certificate is for localhost: the remote server asks
		// for the domain and does not check the name here.
		remote := tls.Client(c, &tls.Config{ServerName: tc.sni, Certificates: []tls.Certificate{clientCert}, NextProtos: []string{"xmpp-server"},
			InsecureSkipVerify: true})
		errc := make(chan error, 1)
		go func() { errc <- remote.Handshake() }()
		bc := tc.b.accept(t)
		backend := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{"xmpp-server"}})
		if err := backend.Handshake(); err != nil {
			t.Fatalf("%s: TLS at the backend: %v", tc.sni, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: TLS through Guard: %v", tc.sni, err)
		}
		st := backend.ConnectionState()
		if st.ServerName != tc.sni || st.NegotiatedProtocol != "xmpp-server" || len(st.PeerCertificates) == 0 || !st.PeerCertificates[0].Equal(clientCert.Leaf) {
			t.Fatalf("%s: the backend got SNI %q, ALPN %q, %d certificates", tc.sni, st.ServerName, st.NegotiatedProtocol, len(st.PeerCertificates))
		}
		write(t, remote, s2sHeader("remote.example", tc.sni))
		expect(t, backend, s2sHeader("remote.example", tc.sni))
		// The backend fails: the remote server gets a FIN, never a reset.
		bc.SetLinger(0)
		bc.Close()
		remote.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(remote); err != nil || len(got) > 0 {
			t.Fatalf("%s: after the backend's reset the remote server read %q, %v; want EOF", tc.sni, got, err)
		}
		remote.Close()
	}

	unknown := dial(t, addr)
	write(t, unknown, string(testcert.ClientHello(t, &tls.Config{ServerName: "other.example"})))
	expectBareClose(t, unknown)
	plain := dial(t, addr)
	write(t, plain, s2sHeader("remote.example", "example.net"))
	expectBareClose(t, plain)
	net1.noConn(t)
	net2.noConn(t)
	waitOpen(t, s, 0)
	waitNoLingering(t, addr, net1.addr(), cfg.Timeouts.HalfClose+time.Second)
}
