package proxy

import (
	"context"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// Drain ends the open streams with system-shutdown one by one, spread over
// the window, not all at once; none is reset.
func TestDrainSpreadsCloses(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	const n = 10
	const window = time.Second
	clients := make([]*net.TCPConn, n)
	backends := make([]*net.TCPConn, n)
	for i := range clients {
		clients[i], backends[i] = openStream(t, b, addr)
	}
	// The backends answer Guard's end of stream like a server does.
	for _, bc := range backends {
		go func() {
			bc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			for {
				if _, err := bc.Read(buf); err != nil {
					break
				}
			}
			bc.Write([]byte(streamEnd))
			bc.Close()
		}()
	}
	ended := make([]time.Time, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := checkStreamError(c, "", false, "", "system-shutdown", ""); err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			ended[i] = time.Now()
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Drain(ctx, window); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].Before(ended[j]) })
	// With n streams the first is ended at once and the last at
	// window×(n-1)/n: the span can only be shorter if Guard ended them in
	// a burst (a slow machine makes it longer, never shorter).
	if span := ended[n-1].Sub(ended[0]); span < window/2 {
		t.Fatalf("closes spanned %v; want them spread over the %v window", span, window)
	}
	if s.Open() != 0 {
		t.Fatalf("%d open after Drain", s.Open())
	}
}

// A drain whose context ends closes what remains at once.
func TestDrainDeadline(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	for i := 0; i < 3; i++ {
		openStream(t, b, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Drain(ctx, time.Hour); err == nil {
		t.Fatal("Drain returned nil although its deadline cut it short")
	}
	if s.Open() != 0 {
		t.Fatalf("%d open after the deadline", s.Open())
	}
}

// Apply changes limits for new connections, adds and removes listeners, and
// drops no established stream.
func TestApplyReload(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s := New(Options{Logger: testLogger(t)})
	t.Cleanup(func() { s.Close() })
	a := ListenerConfig{Name: "a", Address: "127.0.0.1:0", Backend: Backend{Name: "b", Address: b.addr()}}
	if err := s.Apply([]ListenerConfig{a}); err != nil {
		t.Fatal(err)
	}
	addrA := s.Listeners()["a"]
	c1, bc1 := openStreamFrom(t, b, addrA, "127.0.0.6")

	// Reload: a now allows one connection per address; b is new.
	a.Address = addrA // the same socket
	a.Limits.MaxConnsPerIP = 1
	bl := ListenerConfig{Name: "b", Address: "127.0.0.1:0", Backend: Backend{Name: "b", Address: b.addr()}}
	if err := s.Apply([]ListenerConfig{a, bl}); err != nil {
		t.Fatal(err)
	}
	if got := s.Listeners()["a"]; got != addrA {
		t.Fatalf("listener a moved from %s to %s", addrA, got)
	}
	addrB := s.Listeners()["b"]
	if addrB == "" {
		t.Fatal("listener b did not start")
	}
	// The established stream still relays both ways.
	write(t, c1, message)
	expect(t, bc1, message)
	write(t, bc1, message)
	expect(t, c1, message)
	// The new limit applies to new connections: one from the address is
	// let in (the limiter counted nothing while it had no limit), the next
	// is refused.
	c2, bc2 := openStreamFrom(t, b, addrA, "127.0.0.6")
	third := dialFrom(t, "127.0.0.6", addrA)
	expectStreamError(t, third, "", true, "", "policy-violation", "too many connections from your address")
	cB, bcB := openStreamFrom(t, b, addrB, "127.0.0.6")

	// Reload without b: it stops accepting; its stream runs on.
	if err := s.Apply([]ListenerConfig{a}); err != nil {
		t.Fatal(err)
	}
	// A backend no listener names any more is forgotten.
	a2 := a
	a2.Backend.Name = "b2"
	if err := s.Apply([]ListenerConfig{a2}); err != nil {
		t.Fatal(err)
	}
	if bs := s.Backends(); len(bs) != 1 || bs[0].Name != "b2" {
		t.Fatalf("backends after a reload that renamed the only one: %+v", bs)
	}
	if c, err := net.DialTimeout("tcp", addrB, time.Second); err == nil {
		c.Close()
		t.Fatal("removed listener b still accepts")
	}
	write(t, cB, message)
	expect(t, bcB, message)
	for _, c := range []*net.TCPConn{c1, bc1, c2, bc2, cB, bcB} {
		c.Close()
	}
	waitOpen(t, s, 0)
}

// A drain ends as soon as the streams have ended by themselves, whatever is
// left of its schedule.
func TestDrainEndsWhenStreamsEnd(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	var conns []*net.TCPConn
	for i := 0; i < 3; i++ {
		c, bc := openStream(t, b, addr)
		conns = append(conns, c, bc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Drain(ctx, time.Hour) }()
	for _, c := range conns {
		c.Close()
	}
	if err := <-errc; err != nil {
		t.Fatalf("Drain = %v; want nil once every stream had ended", err)
	}
}

// A kill (Server.Close, or a drain's deadline) does not wait for sessions
// still dialing the backend or waiting for its header: those phases end at
// once, whatever connect_timeout and reply_timeout say, and the backend is
// not counted as failed for it.
func TestKillDuringBackendSetup(t *testing.T) {
	leakcheck.Check(t)
	// A backend whose accept queue is full: SYNs go unanswered, a dial
	// hangs (Openfire at its listen backlog).
	full := listenBacklog(t, 0)
	var fillers []net.Conn
	for i := 0; i < 3; i++ {
		if c, err := net.DialTimeout("tcp", full.Addr().String(), 300*time.Millisecond); err == nil {
			fillers = append(fillers, c)
		}
	}
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	// A backend that accepts and never answers.
	silent := newTestBackend(t)

	long := Backend{ConnectTimeout: 30 * time.Second, ReplyTimeout: 30 * time.Second}
	for _, tc := range []struct{ name, backend string }{
		{"dialing", full.Addr().String()},
		{"waiting for the header", silent.addr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ListenerConfig{Backend: long}
			s, addr := startGuard(t, tc.backend, cfg)
			c := dial(t, addr)
			write(t, c, clientHeader)
			if tc.backend == silent.addr() {
				bc := silent.accept(t)
				expect(t, bc, clientHeader)
			} else {
				time.Sleep(300 * time.Millisecond) // the dial is under way
			}
			start := time.Now()
			s.Close()
			// Well under the 30 s timeouts however loaded the machine: only
			// a Close that waited for them is this slow.
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("Close took %v with a session in its backend setup (timeouts 30 s)", el)
			}
			readAll(t, c, 5*time.Second)
			if n := s.Open(); n != 0 {
				t.Fatalf("%d sessions open after Close", n)
			}
			for _, st := range s.Backends() {
				for _, n := range st.Nodes {
					if n.Ejected {
						t.Fatalf("node %s ejected for a kill", n.Address)
					}
				}
			}
		})
	}
}
