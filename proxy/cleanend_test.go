package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/sockstat"
)

// lingering are the states of a socket one side has begun to close that the
// kernel keeps while it waits for the peer.
var lingering = []sockstat.State{sockstat.FinWait1, sockstat.FinWait2, sockstat.CloseWait, sockstat.LastAck, sockstat.Closing}

// nsSockets reads the TCP table of the namespace (from a thread inside it)
// and returns the sockets whose local port is port: Guard's side of its
// client connections, closed ones the kernel still keeps included.
func (ns *netns) sockets(t *testing.T, port uint16) []sockstat.Entry {
	t.Helper()
	var entries []sockstat.Entry
	ns.do(t, func() {
		f, err := os.Open("/proc/thread-self/net/tcp")
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		all, err := sockstat.Parse(f)
		if err != nil {
			t.Error(err)
			return
		}
		for _, e := range all {
			if e.Local.Port() == port && e.State != sockstat.Listen {
				entries = append(entries, e)
			}
		}
	})
	return entries
}

// A client that vanished (its link goes down: no FIN, no reset, no ACK) is
// cut by the idle timeout. Guard writes connection-timeout to it and begins a
// lingering close; when half_close is over with its bytes unacknowledged, it
// aborts the socket rather than leave it to retransmit in FIN_WAIT1 for
// probe_timeout. A live client cut the same way gets the exact error frame.
func TestVanishedClientSocketFreedOnGuardsClock(t *testing.T) {
	ns := newNetns(t)
	leakcheck.Check(t)
	b := newTestBackend(t)
	const (
		idle      = 300 * time.Millisecond
		halfClose = time.Second
	)
	s := New(Options{Logger: testLogger(t)})
	t.Cleanup(func() { s.Close() })
	ln := ns.listen(t)
	gp := port(t, ln.Addr().String())
	err := s.Serve(ln, ListenerConfig{
		Name:    "ns",
		Backend: Backend{Name: "b", Address: b.addr()},
		// Probes as by default: on main the aborted socket lived for
		// probe_timeout.
		Timeouts: Timeouts{Idle: idle, HalfClose: halfClose, Probe: time.Minute, ProbeTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*net.TCPConn, *net.TCPConn) {
		c := ns.dial(t, ln.Addr().String())
		write(t, c, clientHeader)
		bc := b.accept(t)
		expect(t, bc, clientHeader)
		write(t, bc, backendHeader+features)
		expect(t, c, backendHeader+features)
		return c, bc
	}

	// A live client: the exact frame, and nothing of Guard's lingers.
	c, bc := open()
	expectStreamError(t, c, "", false, "", "connection-timeout", "idle too long")
	expectEOF(t, bc, streamEnd)
	bc.Close()
	waitOpen(t, s, 0)
	sockstat.WaitUntil(t, halfClose, func([]sockstat.Entry) bool {
		return len(sockstat.InState(ns.sockets(t, gp), lingering...)) == 0
	})

	// A vanished client.
	c, bc = open()
	ns.ip(t, "-n", ns.name, "link", "set", "lo", "down")
	// The backend hears a clean end of the stream ...
	expectEOF(t, bc, streamEnd)
	write(t, bc, streamEnd)
	bc.Close()
	// ... Guard waits half_close for the client's FIN, then lets go ...
	waitOpen(t, s, 0)
	closed := time.Now()
	// ... and its socket is gone with it, not left in FIN_WAIT1.
	var left []sockstat.Entry
	for time.Since(closed) < halfClose {
		left = sockstat.InState(ns.sockets(t, gp), lingering...)
		if len(left) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("Guard's socket of a vanished client still kept %v after the stream ended: %s", halfClose, sockstat.Format(left))
	}
	c.Close()
}

// scriptedBackend accepts connections and runs one function per connection,
// by its number (0 first); it records the bytes each connection received
// before the function took it over.
type scriptedBackend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	n    int
	head [][]byte
}

func newScriptedBackend(t *testing.T, serve func(i int, c *net.TCPConn)) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveScripted(t, ln, true, serve)
}

// serveScripted runs serve on every connection ln accepts, after reading the
// client's header if readHeader.
func serveScripted(t *testing.T, ln net.Listener, readHeader bool, serve func(i int, c *net.TCPConn)) *scriptedBackend {
	b := &scriptedBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			i := b.n
			b.n++
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if readHeader {
					hdr := make([]byte, len(clientHeader))
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					b.mu.Lock()
					b.head = append(b.head, hdr)
					b.mu.Unlock()
				}
				serve(i, c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *scriptedBackend) addr() string { return b.ln.Addr().String() }

func (b *scriptedBackend) conns() (int, [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, append([][]byte(nil), b.head...)
}

func resetConn(c *net.TCPConn) { c.SetLinger(0); c.Close() }

// serveStream answers a stream and holds it until the client's end.
func serveStream(c *net.TCPConn) {
	io.WriteString(c, backendHeader+features)
	io.Copy(io.Discard, c)
}

// startGuardMetrics is startGuard with a metrics registry to read.
func startGuardMetrics(t *testing.T, cfg ListenerConfig) (*Server, string, *prometheus.Registry) {
	t.Helper()
	cfg.Name = "test"
	cfg.Address = "127.0.0.1:0"
	if cfg.Backend.Name == "" {
		cfg.Backend.Name = "b"
	}
	reg := prometheus.NewRegistry()
	s := New(Options{Logger: testLogger(t), Metrics: NewMetrics(reg)})
	addr, err := s.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String(), reg
}

// A backend connection that fails before the backend's header is tried
// again, with the client's header replayed byte for byte each time, up to
// retries; the client hears nothing of the failures it was spared, and the
// exact stream error when every try failed. Stalls are not retried.
func TestBackendFailuresBeforeTheHeaderAreRetried(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name     string
		fail     func(c *net.TCPConn) // how a failing connection fails
		failing  int                  // connections that fail, from the first
		retries  int
		conns    int    // connections the backend sees
		reason   string // the retries' metric label
		retried  int
		errText  string // "" when the client is served
		oneNodes bool
	}{
		{"reset, then served", resetConn, 2, 2, 3, "backend_reset", 2, "", true},
		{"closed, then served", func(c *net.TCPConn) { c.Close() }, 1, 2, 2, "backend_closed", 1, "", true},
		{"reset every time", resetConn, 10, 2, 3, "backend_reset", 2, "backend connection reset", true},
		{"no retries", resetConn, 10, 0, 1, "backend_reset", 0, "backend connection reset", true},
		{"stall is not retried", func(c *net.TCPConn) { io.Copy(io.Discard, c) }, 10, 2, 1, "backend_stalled", 0, "backend did not answer in time", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newScriptedBackend(t, func(i int, c *net.TCPConn) {
				if i < tt.failing {
					tt.fail(c)
					return
				}
				serveStream(c)
			})
			s, addr, reg := startGuardMetrics(t, ListenerConfig{Backend: Backend{
				Address: b.addr(), Retries: tt.retries, ReplyTimeout: 300 * time.Millisecond,
			}})
			c := dial(t, addr)
			write(t, c, clientHeader)
			if tt.errText != "" {
				expectStreamError(t, c, "", true, "localhost", "internal-server-error", tt.errText)
			} else {
				expect(t, c, backendHeader+features)
				c.Close()
			}
			waitOpen(t, s, 0)
			n, heads := b.conns()
			if n != tt.conns {
				t.Errorf("the backend saw %d connections, want %d", n, tt.conns)
			}
			for i, h := range heads {
				if string(h) != clientHeader {
					t.Errorf("connection %d got %q, want the client's header", i, h)
				}
			}
			if got := counterValue(t, reg, "guard_backend_retries_total", tt.reason); got != float64(tt.retried) {
				t.Errorf("guard_backend_retries_total{reason=%s} = %v, want %d", tt.reason, got, tt.retried)
			}
		})
	}
}

// A retry goes to another node where the pool has one: a node that resets
// (an Openfire over its capacity) costs the client nothing while the other
// serves; the resetting node is not ejected (a reset is not a dead node).
func TestRetryGoesToAnotherNode(t *testing.T) {
	leakcheck.Check(t)
	shedding := newScriptedBackend(t, func(_ int, c *net.TCPConn) { resetConn(c) })
	serving := newScriptedBackend(t, func(_ int, c *net.TCPConn) { serveStream(c) })
	s, addr, reg := startGuardMetrics(t, ListenerConfig{Backend: Backend{Name: "pool", Retries: 1,
		Nodes: []Node{{Address: shedding.addr()}, {Address: serving.addr()}}}})
	const clients = 2 * ejectAfter
	for i := 0; i < clients; i++ {
		c := dial(t, addr)
		write(t, c, clientHeader)
		expect(t, c, backendHeader+features)
		c.Close()
		waitOpen(t, s, 0)
	}
	shed, _ := shedding.conns()
	served, _ := serving.conns()
	if served != clients || shed == 0 {
		t.Errorf("shedding node saw %d connections, serving node %d; want every client served by the second", shed, served)
	}
	if got := counterValue(t, reg, "guard_backend_retries_total", "backend_reset"); got != float64(shed) {
		t.Errorf("retries = %v, want one per reset (%d)", got, shed)
	}
	if n := nodeOf(s, "pool", shedding.addr()); n.Ejected {
		t.Errorf("the node that resets under load was ejected: %+v", n)
	}
}

// The last usable node of a pool is never ejected, however often its dials
// fail: Guard keeps dialing it, and a client that comes once it is back is
// served instead of hearing "no server is available" for ejectFor.
func TestLastNodeIsNeverEjected(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, gaddr := startGuard(t, addr, ListenerConfig{})
	for i := 0; i < ejectAfter+1; i++ {
		c := dial(t, gaddr)
		write(t, c, clientHeader)
		expectStreamError(t, c, "", true, "localhost", "internal-server-error", "backend unreachable")
	}
	if n := nodeOf(s, "b", addr); n.Ejected || !n.Up {
		t.Fatalf("the lone node after %d failed dials: %+v; want it kept", ejectAfter+1, n)
	}
	// It comes back: the next client is served at once.
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	b := &testBackend{ln: back, conns: make(chan *net.TCPConn, 4)}
	go func() {
		if c, err := back.Accept(); err == nil {
			b.conns <- c.(*net.TCPConn)
		}
	}()
	t.Cleanup(func() { back.Close() })
	c, bc := openStream(t, b, gaddr)
	c.Close()
	bc.Close()
	waitOpen(t, s, 0)
}

// openfireBackend behaves like an Openfire node at its capacity: it counts a
// stream from accept until its own close, resets every connection above
// capacity at once, and after the client's end of stream (or its FIN) takes
// a moment (work) before it answers and closes.
type openfireBackend struct {
	*scriptedBackend
	sessions capacityCount
	work     time.Duration
	// slow, if set, delays the stream header by what it returns for the
	// sessions open (this one included): a server slowing under load.
	slow func(open int) time.Duration
}

func newOpenfireBackend(t *testing.T, capacity int, work time.Duration) *openfireBackend {
	b := &openfireBackend{sessions: capacityCount{capacity: capacity}, work: work}
	b.scriptedBackend = serveScripted(t, listenBacklog(t, 50), false, func(_ int, c *net.TCPConn) { b.serve(c) })
	return b
}

func (b *openfireBackend) serve(c *net.TCPConn) {
	if !b.sessions.enter() {
		resetConn(c)
		return
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, 0, 512)
	buf := make([]byte, 512)
	answered := false
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if !answered && bytes.Contains(got, []byte("<stream:stream")) && bytes.HasSuffix(got, []byte(">")) {
			answered = true
			if b.slow != nil {
				time.Sleep(b.slow(b.sessions.current()))
			}
			io.WriteString(c, backendHeader+features)
		}
		if err != nil || bytes.Contains(got, []byte(streamEnd)) {
			break
		}
	}
	time.Sleep(b.work)
	io.WriteString(c, streamEnd)
	// The session is gone from the server's count as it closes.
	b.sessions.leave()
	c.Close()
}

func (b *openfireBackend) stats() (maxOpen, resets, conns int) {
	maxOpen, resets = b.sessions.stats()
	n, _ := b.conns()
	return maxOpen, resets, n
}

// The storm of 10×C clients against a backend that resets above C, a third
// of them resetting their connections once served. With max_streams = C,
// Guard frees a slot only once the backend has closed the stream's
// connection: the backend never holds more than C, and every client is
// served or hears resource-constraint, none internal-server-error. Without
// a cap the backend sheds load by resets; Guard retries them with backoff,
// within clients×(1+retries) connections, never ejects the lone node, and
// every client is served or hears a stream error: never a reset, never
// resource-constraint while the node serves.
func TestStormAgainstOpenfireLikeBackend(t *testing.T) {
	const (
		capacity = 5
		clients  = 10 * capacity
		retries  = 2
		work     = 50 * time.Millisecond
	)
	for _, capped := range []bool{true, false} {
		t.Run(fmt.Sprintf("max_streams=%v", map[bool]string{true: "C", false: "none"}[capped]), func(t *testing.T) {
			leakcheck.Check(t)
			b := newOpenfireBackend(t, capacity, work)
			adm := Admission{QueueSize: clients, QueueTimeout: 20 * time.Second}
			if capped {
				adm.MaxStreams = capacity
			}
			s, addr, reg := startGuardMetrics(t, ListenerConfig{Backend: Backend{Address: b.addr(), Retries: retries, Admission: adm}})
			outcomes := storm(addr, clients, 2*time.Millisecond, func(i int) bool { return i%3 == 0 })
			waitOpen(t, s, 0)
			served, refused := tally(t, outcomes)
			maxOpen, resets, conns := b.stats()
			retried := counterSum(t, reg, "guard_backend_retries_total")
			t.Logf("capped=%v: %d clients, %d served, refused %v; backend: max %d open (capacity %d), %d resets, %d connections; %v retries",
				capped, clients, served, refused, maxOpen, capacity, resets, conns, retried)
			if capped {
				if maxOpen > capacity || resets > 0 {
					t.Errorf("the backend held up to %d streams (capacity %d) and reset %d", maxOpen, capacity, resets)
				}
				onlyRefused(t, refused, "resource-constraint")
				return
			}
			if refused["resource-constraint"] > 0 {
				t.Errorf("%d clients heard resource-constraint while the lone node served", refused["resource-constraint"])
			}
			onlyRefused(t, refused, "internal-server-error", "resource-constraint")
			if served == 0 {
				t.Error("no client served")
			}
			if conns > clients*(1+retries) || float64(conns) != float64(clients)+retried {
				t.Errorf("the backend saw %d connections for %d clients and %v retries; want one per client and retry, at most %d", conns, clients, retried, clients*(1+retries))
			}
		})
	}
}
