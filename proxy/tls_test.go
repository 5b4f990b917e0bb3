package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// testCert makes a self-signed certificate for localhost and the pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func tlsListener(t *testing.T, mode TLSMode) (TLS, *tls.Config) {
	cert, pool := testCert(t)
	server := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"xmpp-client"}}
	client := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"xmpp-client"}}
	return TLS{Mode: mode, Config: server}, client
}

const (
	startTLSCommand    = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	backendTLSFeatures = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
	rewrittenFeatures  = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
)

// expectGuardStartTLS reads Guard's own header and its STARTTLS features.
func expectGuardStartTLS(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 512)
	for !strings.HasSuffix(string(got), "</stream:features>") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read %q, %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	c.SetReadDeadline(time.Time{})
	m := guardHeader.FindString(string(got))
	if m == "" || !strings.Contains(m, " from='localhost'") || string(got[len(m):]) != startTLSFeatures {
		t.Fatalf("got %q\nwant Guard's header (from='localhost') then %q", got, startTLSFeatures)
	}
}

// STARTTLS: Guard answers the first stream, upgrades, and only then opens
// the backend's stream with the client's restarted header; the backend's
// <starttls/> is removed from the features the client sees.
func TestStartTLS(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	ltls, ctls := tlsListener(t, TLSStartTLS)
	s, addr := startGuard(t, b.addr(), ListenerConfig{TLS: ltls})
	raw := dial(t, addr)
	write(t, raw, clientHeader)
	expectGuardStartTLS(t, raw)
	b.noConn(t) // no backend before TLS
	write(t, raw, startTLSCommand)
	expect(t, raw, proceedTLS)
	c := tls.Client(raw, ctls)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	write(t, c, clientHeader)
	bc := b.accept(t)
	expect(t, bc, clientHeader)
	write(t, bc, backendHeader+backendTLSFeatures)
	expect(t, c, backendHeader+rewrittenFeatures)
	write(t, c, message)
	expect(t, bc, message)
	write(t, bc, message)
	expect(t, c, message)
	// A clean end through TLS.
	write(t, c, streamEnd)
	c.CloseWrite()
	raw.CloseWrite()
	expectEOF(t, bc, streamEnd)
	write(t, bc, streamEnd)
	bc.Close()
	expectEOF(t, c, streamEnd)
	waitOpen(t, s, 0)
}

// A client that does not start TLS where it is required hears
// policy-violation in the stream Guard opened; the backend never sees it.
func TestStartTLSRequired(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	ltls, _ := tlsListener(t, TLSStartTLS)
	s, addr := startGuard(t, b.addr(), ListenerConfig{TLS: ltls})
	c := dial(t, addr)
	write(t, c, clientHeader)
	expectGuardStartTLS(t, c)
	write(t, c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
	expectStreamError(t, c, "", false, "", "policy-violation", "TLS is required")
	b.noConn(t)
	waitOpen(t, s, 0)
}

// Direct TLS (XEP-0368): TLS from the first byte, ALPN xmpp-client.
func TestDirectTLS(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	ltls, ctls := tlsListener(t, TLSDirect)
	s, addr := startGuard(t, b.addr(), ListenerConfig{TLS: ltls})
	c := tls.Client(dial(t, addr), ctls)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "xmpp-client" {
		t.Fatalf("ALPN %q, want xmpp-client", p)
	}
	write(t, c, clientHeader)
	bc := b.accept(t)
	expect(t, bc, clientHeader)
	write(t, bc, backendHeader+backendTLSFeatures)
	expect(t, c, backendHeader+rewrittenFeatures)
	// Many stanzas in quick succession: TLS reads ahead, the relay must
	// not wait on a quiet socket while records are buffered.
	var all strings.Builder
	for i := 0; i < 200; i++ {
		all.WriteString(message)
	}
	go c.Write([]byte(all.String()))
	expect(t, bc, all.String())
	go bc.Write([]byte(all.String()))
	expect(t, c, all.String())
	// The backend dies: the client hears it through TLS.
	bc.SetLinger(0)
	bc.Close()
	expectStreamError(t, c, "", false, "", "internal-server-error", "backend connection reset")
	waitOpen(t, s, 0)
}

// A client that stalls in the TLS handshake is cut by the handshake
// timeout; a garbage hello gets a clean close (an alert and a FIN, never a
// reset) — on both kinds of TLS listener.
func TestTLSHandshakeFailures(t *testing.T) {
	leakcheck.Check(t)
	for _, mode := range []TLSMode{TLSDirect, TLSStartTLS} {
		b := newTestBackend(t)
		ltls, _ := tlsListener(t, mode)
		const handshake = 400 * time.Millisecond
		s, addr := startGuard(t, b.addr(), ListenerConfig{TLS: ltls, Timeouts: Timeouts{Handshake: handshake}})
		// open dials and returns the connection and a time taken before
		// the dial: Guard's handshake clock starts at its accept, after it.
		open := func(t *testing.T) (net.Conn, time.Time) {
			start := time.Now()
			c := dial(t, addr)
			if mode == TLSStartTLS {
				write(t, c, clientHeader)
				expectGuardStartTLS(t, c)
				write(t, c, startTLSCommand)
				expect(t, c, proceedTLS)
			}
			return c, start
		}
		t.Run("stall", func(t *testing.T) {
			c, start := open(t)
			write(t, c, "\x16\x03\x01\x00") // the start of a ClientHello, then nothing
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("stalled handshake ended with %v; want EOF", err)
			}
			if el := time.Since(start); el < handshake {
				t.Fatalf("cut after %v; handshake timeout is %v", el, handshake)
			}
		})
		t.Run("garbage", func(t *testing.T) {
			c, _ := open(t)
			write(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.ReadAll(c)
			if errors.Is(err, syscall.ECONNRESET) || err != nil {
				t.Fatalf("garbage hello: %v; want an alert and EOF", err)
			}
		})
		b.noConn(t)
		waitOpen(t, s, 0)
	}
}

// TLS toward the backend (re-encryption): the stream works through a
// verified TLS connection; a backend whose certificate does not verify is
// refused like an unreachable one, never used.
func TestBackendTLS(t *testing.T) {
	leakcheck.Check(t)
	cert, pool := testCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Run("verified", func(t *testing.T) {
		s, addr := startGuard(t, ln.Addr().String(), ListenerConfig{Backend: Backend{TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}}})
		c := dial(t, addr)
		write(t, c, clientHeader)
		bc := <-conns
		defer bc.Close()
		expect(t, bc, clientHeader)
		write(t, bc, backendHeader+features)
		expect(t, c, backendHeader+features)
		write(t, c, message)
		expect(t, bc, message)
		write(t, bc, streamEnd)
		bc.Close()
		expectEOF(t, c, streamEnd)
		c.Close()
		waitOpen(t, s, 0)
	})
	t.Run("unverified", func(t *testing.T) {
		s, addr := startGuard(t, ln.Addr().String(), ListenerConfig{Backend: Backend{TLS: &tls.Config{ServerName: "localhost"}}})
		c := dial(t, addr)
		write(t, c, clientHeader)
		go func() {
			if bc := <-conns; bc != nil {
				bc.(*tls.Conn).Handshake()
				bc.Close()
			}
		}()
		expectStreamError(t, c, "", true, "localhost", "internal-server-error", "backend unreachable")
		waitOpen(t, s, 0)
	})
}

// Passthrough keeps admission: a client over the backend's cap is closed
// (Guard cannot speak XMPP inside TLS it does not terminate), never let
// through, and the relayed bytes pass untouched.
func TestPassthroughAdmission(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{
		TLS:     TLS{Mode: TLSPassthrough},
		Backend: Backend{Admission: Admission{MaxStreams: 1, QueueSize: 0}},
	})
	first := dial(t, addr)
	write(t, first, "\x16\x03\x01 not parsed")
	bc := b.accept(t)
	expect(t, bc, "\x16\x03\x01 not parsed")
	second := dial(t, addr)
	write(t, second, "\x16\x03\x01")
	if got, err := readAll(t, second, 5*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("over the cap: read %q, %v; want a bare close", got, err)
	}
	second.Close()
	b.noConn(t)
	first.Close()
	bc.Close()
	waitOpen(t, s, 0)
}

// STARTTLS tolerates whitespace keepalives before <starttls/> and a
// <starttls/> pipelined right after the header.
func TestStartTLSWhitespaceAndPipelining(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	ltls, ctls := tlsListener(t, TLSStartTLS)
	s, addr := startGuard(t, b.addr(), ListenerConfig{TLS: ltls})
	for _, first := range []string{clientHeader + startTLSCommand, clientHeader} {
		raw := dial(t, addr)
		write(t, raw, first)
		if first == clientHeader {
			expectGuardStartTLS(t, raw)
			write(t, raw, " ")
			time.Sleep(20 * time.Millisecond)
			write(t, raw, "\n"+startTLSCommand)
			expect(t, raw, proceedTLS)
		} else {
			// Pipelined: Guard's features and <proceed/> may come in one read.
			raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			var got []byte
			buf := make([]byte, 1024)
			for !strings.HasSuffix(string(got), proceedTLS) {
				n, err := raw.Read(buf)
				if err != nil {
					t.Fatalf("read %q, %v", got, err)
				}
				got = append(got, buf[:n]...)
			}
			raw.SetReadDeadline(time.Time{})
			if !strings.Contains(string(got), startTLSFeatures+proceedTLS) {
				t.Fatalf("got %q", got)
			}
		}
		c := tls.Client(raw, ctls)
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		write(t, c, clientHeader)
		bc := b.accept(t)
		expect(t, bc, clientHeader)
		c.Close()
		bc.Close()
	}
	waitOpen(t, s, 0)
}
