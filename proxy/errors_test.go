package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/xmpp"
)

// tokenizerText returns the text Guard sends for input that a tokenizer
// with maxUnit rejects: the parser's own description.
func tokenizerText(t *testing.T, maxUnit int, input string) string {
	t.Helper()
	tok := xmpp.NewTokenizer(maxUnit)
	b := []byte(input)
	for len(b) > 0 {
		n, _, err := tok.Next(b)
		if err != nil {
			var se *xmpp.SyntaxError
			if !errors.As(err, &se) {
				t.Fatal(err)
			}
			return se.Msg
		}
		b = b[n:]
	}
	t.Fatalf("the tokenizer accepts %q", input)
	return ""
}

// Backend failures before the stream is open: the client hears Guard's own
// header (from = the domain it asked for), then the error.
func TestBackendFailsBeforeItsHeader(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name    string
		backend func(bc *net.TCPConn) error // runs on its own goroutine
		text    string
	}{
		{"reset", func(bc *net.TCPConn) error {
			if err := checkRead(bc, clientHeader); err != nil {
				return err
			}
			bc.SetLinger(0)
			return bc.Close()
		}, "backend connection reset"},
		{"closed", func(bc *net.TCPConn) error {
			if err := checkRead(bc, clientHeader); err != nil {
				return err
			}
			return bc.Close()
		}, "backend closed the connection"},
		{"stall", func(bc *net.TCPConn) error {
			if err := checkRead(bc, clientHeader); err != nil {
				return err
			}
			// says nothing: Guard gives up after reply_timeout and resets it
			bc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, bc); err == nil {
				return errors.New("Guard closed the stalled backend gracefully; want a reset")
			}
			return nil
		}, "backend did not answer in time"},
		{"garbage", func(bc *net.TCPConn) error {
			if err := checkRead(bc, clientHeader); err != nil {
				return err
			}
			_, err := bc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return err
		}, "backend sent malformed data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), ListenerConfig{Backend: Backend{ReplyTimeout: 300 * time.Millisecond}})
			c := dial(t, addr)
			write(t, c, clientHeader)
			backendErr := make(chan error, 1)
			bc := b.accept(t)
			go func() { backendErr <- tt.backend(bc) }()
			expectStreamError(t, c, "", true, "localhost", "internal-server-error", tt.text)
			if err := <-backendErr; err != nil {
				t.Fatalf("backend: %v", err)
			}
			waitOpen(t, s, 0)
		})
	}
}

func TestBackendRefused(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	s, addr := startGuard(t, dead, ListenerConfig{})
	c := dial(t, addr)
	write(t, c, clientHeader)
	expectStreamError(t, c, "", true, "localhost", "internal-server-error", "backend unreachable")
	waitOpen(t, s, 0)
}

// Backend failures mid-stream: the client gets every whole stanza the
// backend sent, never a part of one, then the error at that boundary.
func TestBackendFailsMidStream(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name  string
		fault func(bc *net.TCPConn)
		text  string
	}{
		{"reset between stanzas", func(bc *net.TCPConn) {
			bc.Write([]byte(message))
			time.Sleep(50 * time.Millisecond)
			bc.SetLinger(0)
			bc.Close()
		}, "backend connection reset"},
		{"reset mid-stanza", func(bc *net.TCPConn) {
			bc.Write([]byte(message + "<message to='bob@localhost'><body>half of it"))
			time.Sleep(50 * time.Millisecond)
			bc.SetLinger(0)
			bc.Close()
		}, "backend connection reset"},
		{"TCP close without stream end", func(bc *net.TCPConn) {
			bc.Write([]byte(message))
			bc.Close()
		}, "backend closed the connection"},
		{"TCP close mid-stanza", func(bc *net.TCPConn) {
			bc.Write([]byte(message + "<presence><sta"))
			bc.Close()
		}, "backend closed the connection"},
		{"garbage", func(bc *net.TCPConn) {
			bc.Write([]byte(message + "<message><body>x</mess<>"))
		}, "backend sent malformed data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), ListenerConfig{})
			c, bc := openStream(t, b, addr)
			tt.fault(bc)
			expectStreamError(t, c, message, false, "", "internal-server-error", tt.text)
			c.Close()
			waitOpen(t, s, 0)
		})
	}
}

// Bad client input is answered with its stream error and never reaches the
// backend, which gets a clean end of its stream instead.
func TestBadClientInput(t *testing.T) {
	leakcheck.Check(t)
	const maxStanza = 1024
	oversize := "<message><body>" + strings.Repeat("x", 2*maxStanza) + "</body></message>"
	tests := []struct {
		name  string
		input string
		cond  string
	}{
		{"not well-formed", "<message><body>x</message>", "not-well-formed"},
		{"entity reference", "<message><body>&lol;</body></message>", "restricted-xml"},
		{"comment", "<!-- hello --><message/>", "restricted-xml"},
		{"processing instruction", "<?php echo 1; ?>", "restricted-xml"},
		{"oversize stanza", oversize, "policy-violation"},
		{"text at stream level", "hello", "not-well-formed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), ListenerConfig{XMLLimits: XMLLimits{MaxStanzaSize: maxStanza}})
			c, bc := openStream(t, b, addr)
			write(t, c, message) // a good stanza first: it is delivered
			expect(t, bc, message)
			write(t, c, tt.input)
			text := tokenizerText(t, maxStanza, clientHeader+tt.input)
			if tt.cond == "policy-violation" {
				text = "stanza too large"
			}
			expectStreamError(t, c, "", false, "", tt.cond, text)
			// The backend saw nothing of the bad input: only the end of stream.
			expectEOF(t, bc, streamEnd)
			bc.Close()
			waitOpen(t, s, 0)
		})
	}
}

// Bad input before or in the stream header: Guard answers with its own
// header first, and never dials the backend.
func TestBadHeader(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name, input, cond, text string
	}{
		{"bytes before the header", "GET / HTTP/1.1\r\n\r\n", "not-well-formed", "expected a stream header"},
		{"DTD", "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "restricted-xml", ""},
		{"wrong stream namespace", "<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0'>", "invalid-namespace", ""},
		{"server namespace on c2s", "<stream:stream to='localhost' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "invalid-namespace", "a client stream must use jabber:client"},
		{"version 2", "<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>", "unsupported-version", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), ListenerConfig{})
			c := dial(t, addr)
			write(t, c, tt.input)
			got, err := readAll(t, c, 5*time.Second)
			if err != nil {
				t.Fatalf("ended with %v after %q", err, got)
			}
			m := guardHeader.FindString(string(got))
			if m == "" {
				t.Fatalf("got %q, want Guard's header first", got)
			}
			rest := string(got[len(m):])
			prefix := "<stream:error><" + tt.cond + " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
			if !strings.HasPrefix(rest, prefix) || !strings.HasSuffix(rest, "</stream:error></stream:stream>") {
				t.Fatalf("got %q\nwant %s…</stream:error></stream:stream>", rest, prefix)
			}
			if tt.text != "" && rest != errorFrame(tt.cond, tt.text) {
				t.Fatalf("got %q\nwant %q", rest, errorFrame(tt.cond, tt.text))
			}
			c.Close()
			b.noConn(t)
			waitOpen(t, s, 0)
		})
	}
}

// A slowloris client, sending its header a byte at a time, is cut when the
// whole-header deadline passes, however steadily it sends.
func TestHandshakeTimeoutSlowloris(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	const handshake = 400 * time.Millisecond
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Handshake: handshake}})
	for _, name := range []string{"silent", "slowloris"} {
		t.Run(name, func(t *testing.T) {
			// Before the dial: Guard's clock starts at its accept, after
			// it; taken later, a descheduled test could see the cut early.
			start := time.Now()
			c := dial(t, addr)
			stop := make(chan struct{})
			if name == "slowloris" {
				go func() {
					for i := 0; i < len(clientHeader); i++ {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
						if _, err := c.Write([]byte{clientHeader[i]}); err != nil {
							return
						}
					}
				}()
			}
			expectStreamError(t, c, "", true, "", "connection-timeout", "no stream header in time")
			close(stop)
			if el := time.Since(start); el < handshake {
				t.Fatalf("cut after %v, before the handshake timeout %v", el, handshake)
			}
		})
	}
	b.noConn(t)
	waitOpen(t, s, 0)
}

// A quiet stream is probed with whitespace keepalives; the probes are not
// activity, and a live client is never cut by them.
func TestProbeSendsKeepalives(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Probe: 100 * time.Millisecond}})
	c, bc := openStream(t, b, addr)
	expect(t, c, " ")
	expect(t, c, " ")
	// The stream still works both ways after the probes.
	write(t, c, message)
	expect(t, bc, message)
	write(t, bc, message)
	buf := make([]byte, 0, len(message))
	for len(buf) < len(message) || strings.TrimLeft(string(buf), " ") != message {
		one := make([]byte, 1)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(one); err != nil {
			t.Fatal(err)
		}
		buf = append(buf, one[0])
		if len(buf) > 64+len(message) {
			t.Fatalf("read %q", buf)
		}
	}
	if s.Open() != 1 {
		t.Fatal("a live client was cut")
	}
	c.Close()
	bc.Close()
	waitOpen(t, s, 0)
}
