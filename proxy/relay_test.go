package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

func TestRelayBothWays(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	c, bc := openStream(t, b, addr)
	write(t, c, message)
	expect(t, bc, message)
	write(t, bc, message)
	expect(t, c, message)
	// A stanza split into many small writes arrives whole, and only once it
	// is complete: before its last piece, the backend gets nothing. (A
	// slow machine can only delay a wrongly forwarded piece past the 200ms
	// read, making the check miss a bug, never fail on correct code.) A
	// large one crosses many buffers intact.
	parts := []string{"<message><bo", "dy>x</b", "ody></mess", "age>"}
	for _, part := range parts[:len(parts)-1] {
		write(t, c, part)
		time.Sleep(5 * time.Millisecond)
	}
	bc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	early := make([]byte, 64)
	n, err := bc.Read(early)
	bc.SetReadDeadline(time.Time{})
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("before the stanza's last piece, the backend read %q, %v; want nothing", early[:n], err)
	}
	write(t, c, parts[len(parts)-1])
	expect(t, bc, "<message><body>x</body></message>")
	big := "<iq type='result' id='r1'><query xmlns='jabber:iq:roster'>" +
		strings.Repeat("<item jid='someone@example.net' name='Some One' subscription='both'/>", 2000) +
		"</query></iq>"
	go bc.Write([]byte(big))
	expect(t, c, big)
	c.Close()
	bc.Close()
	waitOpen(t, s, 0)
}

// The normal end of a session: the client's </stream:stream> and FIN reach
// the backend at once; the backend's answer still reaches the client; when
// both have closed, nothing of Guard's lingers.
func TestClientHalfClosePassedOn(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{HalfClose: 10 * time.Second}})
	c, bc := openStream(t, b, addr)
	write(t, c, streamEnd)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Long before half_close (10s), the backend has the close tag and EOF.
	start := time.Now()
	expectEOF(t, bc, streamEnd)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("the backend saw the FIN after %v", el)
	}
	// Half-closed, not closed: the backend's answer still reaches the client.
	write(t, bc, streamEnd)
	bc.Close()
	expectEOF(t, c, streamEnd)
	waitOpen(t, s, 0)
	waitNoLingering(t, addr, b.addr(), 3*time.Second)
}

// A client that vanishes with a bare FIN (no </stream:stream>): the backend
// gets a clean end of stream from Guard, then the FIN.
func TestClientFINCompletesBackendStream(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	c, bc := openStream(t, b, addr)
	write(t, c, "<message><body>half a sta")
	c.CloseWrite()
	// The partial stanza is never forwarded.
	expectEOF(t, bc, streamEnd)
	write(t, bc, streamEnd)
	bc.Close()
	expectEOF(t, c, streamEnd)
	waitOpen(t, s, 0)
}

// A backend that neither answers the client's </stream:stream> nor closes:
// after half_close Guard, the client's peer, completes the client's stream
// itself with </stream:stream> (RFC 6120 4.4) and a FIN, and resets the
// backend, so it keeps no FIN_WAIT2 socket toward it. The same whether the
// client half-closed after its </stream:stream> or waits with TCP open.
func TestBackendIgnoresClientClose(t *testing.T) {
	for _, clientFIN := range []bool{true, false} {
		t.Run(fmt.Sprintf("client_fin=%v", clientFIN), func(t *testing.T) {
			leakcheck.Check(t)
			b := newTestBackend(t)
			const halfClose = 300 * time.Millisecond
			s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{HalfClose: halfClose}})
			c, bc := openStream(t, b, addr)
			start := time.Now()
			write(t, c, streamEnd)
			if clientFIN {
				c.CloseWrite()
				expectEOF(t, bc, streamEnd)
			} else {
				expect(t, bc, streamEnd)
			}
			// The backend does nothing. After half_close the client gets
			// the closing tag from Guard, then its FIN ...
			expectEOF(t, c, streamEnd)
			if el := time.Since(start); el < halfClose {
				t.Fatalf("Guard closed after %v, before half_close (%v)", el, halfClose)
			}
			// ... and the backend a reset.
			expectReset(t, bc)
			c.Close()
			waitOpen(t, s, 0)
			waitNoLingering(t, addr, b.addr(), 3*time.Second)
		})
	}
}

// A backend close reaches the client; a client that never closes its half is
// cut after half_close, and Guard keeps no socket in CLOSE_WAIT or FIN_WAIT2.
func TestClientIgnoresBackendClose(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{HalfClose: 300 * time.Millisecond}})
	c, bc := openStream(t, b, addr)
	write(t, bc, streamEnd)
	bc.Close()
	expectEOF(t, c, streamEnd)
	// The client does nothing; Guard ends it after half_close.
	waitOpen(t, s, 0)
	waitNoLingering(t, addr, b.addr(), 3*time.Second)
}

func TestIdleTimeout(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	const idle = 600 * time.Millisecond
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Idle: idle}})
	c, bc := openStream(t, b, addr)
	// Traffic in one direction only keeps the stream open past idle: a
	// stanza every idle/20, for twice idle (the gaps are far from idle,
	// however loaded the machine, so only Guard can close the stream).
	var last time.Time // before the last byte Guard relayed: Guard's idle clock starts after it
	for start := time.Now(); time.Since(start) < 2*idle; {
		time.Sleep(idle / 20)
		last = time.Now()
		write(t, bc, "<presence/>")
		expect(t, c, "<presence/>")
	}
	if s.Open() != 1 {
		t.Fatal("a stream with traffic was closed by the idle timeout")
	}
	// Silence ends it: the client hears connection-timeout, the backend a
	// clean end of stream.
	expectStreamError(t, c, "", false, "", "connection-timeout", "idle too long")
	expectEOF(t, bc, streamEnd)
	bc.Close()
	if el := time.Since(last); el < idle {
		t.Fatalf("closed %v after the last byte, idle is %v", el, idle)
	}
	waitOpen(t, s, 0)
}

// Shutdown lets open streams finish within the drain time and ends the rest
// with system-shutdown when it ends; new connections are refused at once.
func TestShutdownDrains(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	finishing, bf := openStream(t, b, addr)
	staying, bs := openStream(t, b, addr)
	silent := dial(t, addr) // no header yet: closed at once by Shutdown
	waitOpen(t, s, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()

	expectEOF(t, silent, "")
	waitFor(t, "draining", s.Draining)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted during the drain")
	}
	// The finishing stream still relays, then ends by itself.
	write(t, bf, message)
	expect(t, finishing, message)
	write(t, finishing, streamEnd)
	expect(t, bf, streamEnd)
	write(t, bf, streamEnd)
	finishing.Close()
	bf.Close()
	// The staying stream is ended with system-shutdown when the drain ends,
	// and the backend gets a clean end of its stream.
	expectStreamError(t, staying, "", false, "", "system-shutdown", "")
	expectEOF(t, bs, streamEnd)
	bs.Close()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if s.Open() != 0 {
		t.Fatalf("%d connections open after Shutdown", s.Open())
	}
}

// A client that stops reading while the backend sends cannot pin its
// session: the idle limit still ends it (the stuck write is bounded), and
// so does a drain.
func TestClientNotReading(t *testing.T) {
	leakcheck.Check(t)
	for _, how := range []string{"idle", "drain"} {
		t.Run(how, func(t *testing.T) {
			b := newTestBackend(t)
			to := Timeouts{HalfClose: 500 * time.Millisecond}
			if how == "idle" {
				to.Idle = 500 * time.Millisecond
			}
			s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: to})
			c, bc := openStream(t, b, addr)
			_ = c // never read from again
			flood := strings.Repeat(message, 1000)
			go func() {
				for i := 0; i < 200; i++ {
					bc.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if _, err := bc.Write([]byte(flood)); err != nil {
						return
					}
				}
			}()
			time.Sleep(300 * time.Millisecond) // the client's window fills
			if how == "drain" {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- s.Drain(ctx, 0) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Drain hung on a client that does not read")
				}
			}
			waitOpen(t, s, 0)
			bc.Close()
		})
	}
}
