package proxy

import (
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// TestMain lets GUARD_TEST_PARK_AFTER (a duration) shorten parkAfter for the
// whole package, so that every relay test can be run with pumps parking
// between nearly all reads: `GUARD_TEST_PARK_AFTER=2ms go test -race ./proxy`.
// GUARD_TEST_PUMPS=1 relays plaintext streams with the pumps too, as TLS
// and WebSocket streams are, instead of on the event loops: `make test`
// runs the package's tests both ways.
func TestMain(m *testing.M) {
	if d, err := time.ParseDuration(os.Getenv("GUARD_TEST_PARK_AFTER")); err == nil && d > 0 {
		parkAfter = d
	}
	if os.Getenv("GUARD_TEST_PUMPS") == "1" {
		loopRelays = false
	}
	os.Exit(m.Run())
}

// withPumps relays one test's plaintext streams with the pumps, not on the
// event loops: the tests of parking, which only pumps do.
func withPumps(t *testing.T) {
	old := loopRelays
	loopRelays = false
	t.Cleanup(func() { loopRelays = old })
}

// withParkAfter sets parkAfter for one test.
func withParkAfter(t *testing.T, d time.Duration) {
	old := parkAfter
	parkAfter = d
	t.Cleanup(func() { parkAfter = old })
}

// parkedPumps counts the relay pumps parked in the reactor.
func parkedPumps() int {
	theReactor.mu.Lock()
	defer theReactor.mu.Unlock()
	return len(theReactor.parked)
}

// Idle streams give up their goroutines: with 40 quiet streams open, the
// process has fewer goroutines than with none of them relaying, and every
// pump is parked. Each stream then still relays both ways, byte for byte, in
// any order of wake-ups, and ends cleanly; the reactor's goroutine and epoll
// descriptor go away with the last parked pump (leakcheck).
func TestIdleStreamsPark(t *testing.T) {
	withPumps(t)
	leakcheck.Check(t)
	withParkAfter(t, 50*time.Millisecond)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	const n = 40
	before := runtime.NumGoroutine()
	type pair struct{ c, bc *net.TCPConn }
	cs := make([]pair, n)
	for i := range cs {
		cs[i].c, cs[i].bc = openStream(t, b, addr)
	}
	waitFor(t, "every pump parked", func() bool { return parkedPumps() == 2*n })
	// The test's own goroutines (the backend's acceptor) are in before; a
	// relaying stream with running pumps would add two each.
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Fatalf("%d goroutines with %d parked streams, %d before them: pumps kept goroutines", g, n, before)
	}
	// Wake them in turns: client side, backend side, both at once.
	for i, p := range cs {
		switch i % 3 {
		case 0:
			write(t, p.c, message)
			expect(t, p.bc, message)
		case 1:
			write(t, p.bc, message)
			expect(t, p.c, message)
		default:
			go p.bc.Write([]byte("<presence/>"))
			write(t, p.c, message)
			expect(t, p.bc, message)
			expect(t, p.c, "<presence/>")
		}
	}
	waitFor(t, "parked again", func() bool { return parkedPumps() == 2*n })
	// A large unit crossing many reads wakes and re-parks cleanly.
	big := "<iq type='set' id='v1'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + strings.Repeat("QUJD", 20000) + "</BINVAL></PHOTO></vCard></iq>"
	go cs[0].c.Write([]byte(big))
	expect(t, cs[0].bc, big)
	// The normal end, from parked pumps: the client's end of stream and FIN
	// reach the backend, the backend's reach the client.
	for _, p := range cs {
		write(t, p.c, streamEnd)
		p.c.CloseWrite()
		expectEOF(t, p.bc, streamEnd)
		write(t, p.bc, streamEnd)
		p.bc.CloseWrite()
		expectEOF(t, p.c, streamEnd)
	}
	waitOpen(t, s, 0)
	if k := parkedPumps(); k != 0 {
		t.Fatalf("%d pumps still parked after every stream ended", k)
	}
}

// A parked client pump is woken at its read deadline: the keepalive goes out
// after probe of silence, and the idle limit ends the stream with
// connection-timeout, although the pump spent the quiet time parked.
func TestParkedTimers(t *testing.T) {
	withPumps(t)
	leakcheck.Check(t)
	withParkAfter(t, 30*time.Millisecond)
	b := newTestBackend(t)
	const probe, idle = 500 * time.Millisecond, 800 * time.Millisecond
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Probe: probe, Idle: idle}})
	c := dial(t, addr)
	write(t, c, clientHeader)
	bc := b.accept(t)
	expect(t, bc, clientHeader)
	// The stream's last activity, from which Guard counts the probe and
	// the idle limit, is its relaying of the backend's header: after this.
	start := time.Now()
	write(t, bc, backendHeader+features)
	expect(t, c, backendHeader+features)
	waitFor(t, "both pumps parked", func() bool { return parkedPumps() == 2 })
	expect(t, c, " ")
	if el := time.Since(start); el < probe {
		t.Fatalf("keepalive after %v, probe is %v", el, probe)
	}
	waitFor(t, "parked again after the keepalive", func() bool { return parkedPumps() == 2 })
	expectStreamError(t, c, "", false, "", "connection-timeout", "idle too long")
	expectEOF(t, bc, streamEnd)
	if el := time.Since(start); el < idle {
		t.Fatalf("idle end after %v, idle is %v", el, idle)
	}
	bc.Close()
	waitOpen(t, s, 0)
}

// Faults and ends that reach parked pumps: a backend reset between stanzas
// gives the client its stream error; a drain ends parked streams with
// system-shutdown; a kill (Server.Close) closes parked streams' sockets and
// their sessions end.
func TestParkedFaultsAndEnds(t *testing.T) {
	withPumps(t)
	leakcheck.Check(t)
	withParkAfter(t, 30*time.Millisecond)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{HalfClose: time.Second}})

	c, bc := openStream(t, b, addr)
	waitFor(t, "parked", func() bool { return parkedPumps() == 2 })
	bc.SetLinger(0)
	bc.Close()
	expectStreamError(t, c, "", false, "", "internal-server-error", "backend connection reset")
	c.Close()
	waitOpen(t, s, 0)

	var cs, bcs []*net.TCPConn
	for range 3 {
		c, bc := openStream(t, b, addr)
		cs, bcs = append(cs, c), append(bcs, bc)
	}
	waitFor(t, "parked", func() bool { return parkedPumps() == 6 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Drain(ctx, 0) }()
	for i := range cs {
		expectStreamError(t, cs[i], "", false, "", "system-shutdown", "")
		expectEOF(t, bcs[i], streamEnd)
		cs[i].Close()
		bcs[i].Close()
	}
	<-done
	waitOpen(t, s, 0)

	s2, addr2 := startGuard(t, b.addr(), ListenerConfig{})
	c, bc = openStream(t, b, addr2)
	waitFor(t, "parked", func() bool { return parkedPumps() == 2 })
	s2.Close()
	if got, _ := readAll(t, c, 5*time.Second); len(got) != 0 {
		t.Fatalf("killed stream sent %q", got)
	}
	readAll(t, bc, 5*time.Second)
	waitOpen(t, s2, 0)
	if k := parkedPumps(); k != 0 {
		t.Fatalf("%d pumps still parked after the kill", k)
	}
}
