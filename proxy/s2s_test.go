package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/policy"
)

// The bytes of a federation stream before TLS, as Prosody and ejabberd
// send them: the remote server (remote.example) opens a stream to
// example.net, whose server answers with STARTTLS required and dialback.
const (
	s2sFeatures  = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
	proceedReply = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	dbResult     = "<db:result from='remote.example' to='example.net'>37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643</db:result>"
)

// s2sHeader is a remote server's stream header, from one domain to another.
func s2sHeader(from, to string) string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='" +
		from + "' to='" + to + "' version='1.0'>"
}

// s2sReply is the receiving server's header in answer to s2sHeader(to, from).
func s2sReply(from, to string) string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' id='s1' from='" +
		from + "' to='" + to + "' version='1.0'>"
}

// s2sGuardHeader matches Guard's own header toward a remote server: to its
// domain, from the one it asked for.
var s2sGuardHeader = regexp.MustCompile(`^<\?xml version='1\.0'\?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx\.jabber\.org/streams'( to='[^']*')?( from='[^']*')? id='[0-9a-f]{16}' version='1\.0' xml:lang='en'>`)

// checkS2SError reads c to its end and checks that it carries Guard's own
// s2s header (to = to, from = from, each left out when empty) when
// withHeader, then exactly the stream error, then a FIN.
func checkS2SError(c net.Conn, withHeader bool, to, from, wantError string) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	if err != nil {
		return fmt.Errorf("the stream ended with %v (after %q); want a stream error then EOF", err, buf.Bytes())
	}
	s := buf.String()
	if withHeader {
		m := s2sGuardHeader.FindStringSubmatch(s)
		if m == nil {
			return fmt.Errorf("got %q\nwant Guard's jabber:server header first", s)
		}
		if want := attr("to", to) + attr("from", from); m[1]+m[2] != want {
			return fmt.Errorf("Guard's header %q: want%s", m[0], want)
		}
		s = s[len(m[0]):]
	}
	if s != wantError {
		return fmt.Errorf("got  %q\nwant %q", s, wantError)
	}
	c.Close()
	return nil
}

func attr(name, value string) string {
	if value == "" {
		return ""
	}
	return " " + name + "='" + value + "'"
}

// s2sListener is an s2s listener serving example.net, on the backend at
// addr, and no other domain.
func s2sListener(addr string, cfg ListenerConfig) ListenerConfig {
	cfg.Stream = StreamServer
	b := cfg.Backend
	b.Name, b.Address = "example", addr
	cfg.Backend = Backend{}
	cfg.Routes = map[string]Backend{"example.net": b}
	return cfg
}

// openS2S opens a federation stream from "from" to example.net through
// Guard, up to the backend's features (unchanged unless features says
// otherwise), and returns both ends.
func openS2S(t *testing.T, b *testBackend, addr, from string) (c, bc *net.TCPConn) {
	t.Helper()
	c = dial(t, addr)
	write(t, c, s2sHeader(from, "example.net"))
	bc = b.accept(t)
	expect(t, bc, s2sHeader(from, "example.net"))
	write(t, bc, s2sReply("example.net", from)+s2sFeatures)
	expect(t, c, s2sReply("example.net", from)+s2sFeatures)
	return c, bc
}

// Before TLS, Guard answers a remote server as it does a client: its own
// jabber:server header (to the remote domain, from the one asked for)
// where the stream is not open yet, the stream error, then a FIN.
func TestS2SRefusals(t *testing.T) {
	leakcheck.Check(t)
	t.Run("unknown domain", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{}))
		c := dial(t, addr)
		write(t, c, s2sHeader("remote.example", "other.example"))
		if err := checkS2SError(c, true, "remote.example", "other.example", errorFrame("host-unknown", "")); err != nil {
			t.Fatal(err)
		}
		b.noConn(t)
		waitOpen(t, s, 0)
	})
	t.Run("client stream", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{}))
		c := dial(t, addr)
		write(t, c, strings.Replace(clientHeader, "localhost", "example.net", 1))
		if err := checkS2SError(c, true, "", "example.net", errorFrame("invalid-namespace", "a server stream must use jabber:server")); err != nil {
			t.Fatal(err)
		}
		b.noConn(t)
		waitOpen(t, s, 0)
	})
	t.Run("domain limit", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{Limits: AddrLimits{MaxStreamsPerDomain: 1}}))
		first, firstB := openS2S(t, b, addr, "remote.example")
		c := dial(t, addr)
		write(t, c, s2sHeader("remote.example", "example.net"))
		if err := checkS2SError(c, true, "remote.example", "example.net", errorFrame("policy-violation", "too many streams from your domain")); err != nil {
			t.Fatal(err)
		}
		b.noConn(t)
		// Another domain has a count of its own; the first domain's
		// comes back when its stream ends.
		other, otherB := openS2S(t, b, addr, "third.example")
		closeCleanly(t, first, firstB)
		closeCleanly(t, other, otherB)
		waitOpen(t, s, 0)
		again, againB := openS2S(t, b, addr, "remote.example")
		closeCleanly(t, again, againB)
		waitOpen(t, s, 0)
	})
	t.Run("domain rate", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{Limits: AddrLimits{StreamRatePerDomain: 0.01, StreamBurstPerDomain: 1}}))
		first, firstB := openS2S(t, b, addr, "remote.example")
		closeCleanly(t, first, firstB)
		c := dial(t, addr)
		write(t, c, s2sHeader("remote.example", "example.net"))
		if err := checkS2SError(c, true, "remote.example", "example.net", errorFrame("policy-violation", "too many new streams from your domain; slow down")); err != nil {
			t.Fatal(err)
		}
		b.noConn(t)
		waitOpen(t, s, 0)
	})
	t.Run("overload", func(t *testing.T) {
		b := newTestBackend(t)
		cfg := s2sListener(b.addr(), ListenerConfig{Backend: Backend{Admission: Admission{MaxStreams: 1}}})
		s, addr := startGuard(t, "", cfg)
		first, firstB := openS2S(t, b, addr, "remote.example")
		c := dial(t, addr)
		write(t, c, s2sHeader("third.example", "example.net"))
		if err := checkS2SError(c, true, "third.example", "example.net", errorFrame("resource-constraint", "the server is at capacity; try again later")); err != nil {
			t.Fatal(err)
		}
		closeCleanly(t, first, firstB)
		waitOpen(t, s, 0)
	})
	t.Run("backend refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		s, addr := startGuard(t, "", s2sListener(dead, ListenerConfig{}))
		c := dial(t, addr)
		write(t, c, s2sHeader("remote.example", "example.net"))
		if err := checkS2SError(c, true, "remote.example", "example.net", errorFrame("internal-server-error", "backend unreachable")); err != nil {
			t.Fatal(err)
		}
		waitOpen(t, s, 0)
	})
	t.Run("drain", func(t *testing.T) {
		pol, err := policy.New(policy.Config{SeeOtherHost: "xmpp2.example.net",
			Overrides: map[policy.Event]policy.Override{policy.Shutdown: {Condition: "see-other-host"}}})
		if err != nil {
			t.Fatal(err)
		}
		b := newTestBackend(t)
		s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{Policy: pol}))
		c, bc := openS2S(t, b, addr, "remote.example")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Drain(ctx, 0) }()
		want := "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp2.example.net</see-other-host></stream:error></stream:stream>"
		if err := checkS2SError(c, false, "", "", want); err != nil {
			t.Fatal(err)
		}
		expectEOF(t, bc, streamEnd)
		bc.Close()
		if err := <-done; err != nil {
			t.Fatalf("drain: %v", err)
		}
		waitOpen(t, s, 0)
	})
}

// Before TLS the stream is framed: dialback passes unit by unit, and bad
// input is refused before it reaches the backend.
func TestS2SFramedBeforeTLS(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{}))
	c, bc := openS2S(t, b, addr, "remote.example")
	write(t, c, dbResult)
	expect(t, bc, dbResult)
	valid := "<db:result from='example.net' to='remote.example' type='valid'/>"
	write(t, bc, valid)
	expect(t, c, valid)
	write(t, c, "<message from='a@remote.example' to='b@example.net'><body>x</message>")
	if err := checkS2SError(c, false, "", "", errorFrame("not-well-formed", "end tag does not match <body>")); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, bc, streamEnd)
	bc.Close()
	waitOpen(t, s, 0)
}

// Guard's XEP-0478 limits go into the features before TLS too, beside the
// backend's <starttls/>, which stays: the TLS is the backend's.
func TestS2SStreamLimitsAdvertised(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, "", s2sListener(b.addr(), ListenerConfig{XMLLimits: XMLLimits{MaxStanzaSize: 10000, Advertise: true}}))
	c := dial(t, addr)
	write(t, c, s2sHeader("remote.example", "example.net"))
	bc := b.accept(t)
	expect(t, bc, s2sHeader("remote.example", "example.net"))
	write(t, bc, s2sReply("example.net", "remote.example")+s2sFeatures)
	expect(t, c, s2sReply("example.net", "remote.example")+strings.TrimSuffix(s2sFeatures, "</stream:features>")+limitsEl("10000", "")+"</stream:features>")
	closeCleanly(t, c, bc)
	waitOpen(t, s, 0)
}

// s2sTLS takes an open s2s stream through STARTTLS to TLS between the
// remote server (c) and the backend (bc), with a client certificate as a
// server presenting its own for SASL EXTERNAL; Guard passes the TLS as it
// is, so the backend sees that certificate. It returns both TLS ends.
func s2sTLS(t *testing.T, c, bc net.Conn) (remote, backend *tls.Conn) {
	t.Helper()
	write(t, c, startTLSCommand)
	expect(t, bc, startTLSCommand)
	write(t, bc, proceedReply)
	expect(t, c, proceedReply)
	serverCert, pool := testCert(t)
	clientCert, _ := testCert(t)
	backend = tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert})
	remote = tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}})
	errc := make(chan error, 1)
	go func() { errc <- backend.Handshake() }()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := remote.Handshake(); err != nil {
		t.Fatalf("TLS through Guard: %v", err)
	}
	c.SetDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatalf("TLS at the backend: %v", err)
	}
	if got := backend.ConnectionState().PeerCertificates; len(got) == 0 || !got[0].Equal(clientCert.Leaf) {
		t.Fatal("the backend did not get the remote server's certificate")
	}
	// The stream restarts inside TLS and passes unchanged.
	write(t, remote, s2sHeader("remote.example", "example.net"))
	expect(t, backend, s2sHeader("remote.example", "example.net"))
	write(t, backend, s2sReply("example.net", "remote.example")+"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>")
	expect(t, remote, s2sReply("example.net", "remote.example")+"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>")
	return remote, backend
}

// After <proceed/> Guard relays the TLS between the remote server and the
// backend unchanged (the backend authenticates the remote server's
// certificate itself); it sends no keepalive into it. Every end Guard
// makes or passes on is then a FIN, never a reset, and no socket outlives
// half_close.
func TestS2SAfterTLS(t *testing.T) {
	leakcheck.Check(t)
	ends := []struct {
		name string
		end  func(t *testing.T, s *Server, remote, backend *tls.Conn, bc *net.TCPConn)
	}{
		{"backend reset", func(t *testing.T, s *Server, remote, backend *tls.Conn, bc *net.TCPConn) {
			bc.SetLinger(0)
			bc.Close()
			expectTLSEOF(t, remote)
		}},
		{"drain", func(t *testing.T, s *Server, remote, backend *tls.Conn, bc *net.TCPConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Drain(ctx, 0) }()
			expectTLSEOF(t, remote)
			expectTLSEOF(t, backend)
			if err := <-done; err != nil {
				t.Errorf("drain: %v", err)
			}
		}},
		{"remote closes", func(t *testing.T, s *Server, remote, backend *tls.Conn, bc *net.TCPConn) {
			write(t, remote, streamEnd)
			remote.CloseWrite() // close_notify, then the FIN
			expect(t, backend, streamEnd)
			expectTLSEOF(t, backend)
			write(t, backend, streamEnd)
			backend.CloseWrite()
			expect(t, remote, streamEnd)
			expectTLSEOF(t, remote)
		}},
	}
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			cfg := s2sListener(b.addr(), ListenerConfig{Timeouts: Timeouts{Probe: 20 * time.Millisecond, HalfClose: 500 * time.Millisecond}})
			s, addr := startGuard(t, "", cfg)
			c, bc := openS2S(t, b, addr, "remote.example")
			remote, backend := s2sTLS(t, c, bc)
			// Quiet for many probe intervals: a keepalive in the TLS
			// would break its next record.
			time.Sleep(200 * time.Millisecond)
			write(t, remote, dbResult)
			expect(t, backend, dbResult)
			tt.end(t, s, remote, backend, bc)
			remote.Close()
			backend.Close()
			waitOpen(t, s, 0)
			waitNoLingering(t, addr, b.addr(), cfg.Timeouts.HalfClose+time.Second)
		})
	}
}

// expectTLSEOF reads c to its end: the peer's FIN, with or without
// close_notify, and nothing before it; a reset fails.
func expectTLSEOF(t *testing.T, c *tls.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) > 0 {
		t.Fatalf("read %q, %v; want EOF", got, err)
	}
}

// The status page and the connection log tell s2s from c2s, with the
// remote server's domain.
func TestS2SStatusAndLog(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr, logs := startGuardLog(t, "", s2sListener(b.addr(), ListenerConfig{}))
	c, bc := openS2S(t, b, addr, "remote.example")
	waitFor(t, "the stream relaying", func() bool { return len(s.Status().Oldest) == 1 })
	st := s.Status()
	if l := st.Listeners[0]; l.Stream != "s2s" {
		t.Errorf("listener status %+v; want stream s2s", l)
	}
	if si := st.Oldest[0]; si.From != "remote.example" || si.To != "example.net" {
		t.Errorf("stream status %+v; want from remote.example to example.net", si)
	}
	closeCleanly(t, c, bc)
	waitOpen(t, s, 0)
	ends := logs.ends(t)
	if len(ends) != 1 || ends[0]["stream"] != "s2s" || ends[0]["from"] != "remote.example" || ends[0]["to"] != "example.net" || ends[0]["backend"] != "example" {
		t.Fatalf("connection log %v; want one line with stream s2s, from remote.example, to example.net, backend example", ends)
	}
}
