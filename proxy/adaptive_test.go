package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/limits"
)

// learned returns the learned cap of the backend's one node.
func learned(s *Server) int {
	for _, b := range s.Backends() {
		for _, n := range b.Nodes {
			return n.LearnedMaxStreams
		}
	}
	return -1
}

// The storm of 10×C clients against an Openfire-like backend (resets above
// C) with no max_streams: Guard learns the cap from the resets of its first
// opens, and then holds the backend under it. The resets of the learning
// phase never reach a client: their streams queue again. Every client is
// served (or hears resource-constraint after queue_timeout).
func TestAdaptiveAdmissionLearnsTheCap(t *testing.T) {
	leakcheck.Check(t)
	const (
		capacity = 5
		clients  = 10 * capacity
	)
	b := newOpenfireBackend(t, capacity, 100*time.Millisecond)
	s, addr, _ := startGuardMetrics(t, ListenerConfig{Backend: Backend{
		Address: b.addr(), Retries: 2, Adaptive: &limits.AdaptiveConfig{},
		Admission: Admission{QueueSize: clients, QueueTimeout: 20 * time.Second},
	}})
	outcomes := storm(addr, clients, 0, nil)
	waitOpen(t, s, 0)
	served, refused := tally(t, outcomes)
	onlyRefused(t, refused, "resource-constraint")
	maxOpen, resets, conns := b.stats()
	cap := learned(s)
	t.Logf("%d clients: %d served, refused %v; backend: max %d open of %d, %d resets in %d connections; learned cap %d",
		clients, served, refused, maxOpen, capacity, resets, conns, cap)
	if served < capacity {
		t.Errorf("%d served, want at least %d", served, capacity)
	}
	if cap > capacity || cap < 1 {
		t.Errorf("learned cap %d, want at most the backend's capacity %d", cap, capacity)
	}
	// Learning costs the resets of a few rounds of opens above the cap,
	// not one per client.
	if resets > 2*limits.DefaultAdaptiveInitial {
		t.Errorf("%d resets while learning a cap of %d", resets, capacity)
	}
}

// The backend's capacity halves mid-run and comes back, under a steady flow
// of clients: the learned cap follows it down and back up, and no client
// sees a reset or a stream error other than resource-constraint.
func TestAdaptiveAdmissionFollowsCapacity(t *testing.T) {
	leakcheck.Check(t)
	const capacity = 6
	b := newOpenfireBackend(t, capacity, 50*time.Millisecond)
	s, addr, _ := startGuardMetrics(t, ListenerConfig{Backend: Backend{
		Address: b.addr(), Retries: 2,
		Adaptive:  &limits.AdaptiveConfig{Min: 1, Initial: capacity, Reprobe: 300 * time.Millisecond},
		Admission: Admission{QueueSize: 1000, QueueTimeout: 20 * time.Second},
	}})
	var (
		mu       sync.Mutex
		outcomes []stormOutcome
		wg       sync.WaitGroup
		stop     atomic.Bool
	)
	flow := make(chan struct{})
	go func() {
		defer close(flow)
		for i := 0; i < 2000 && !stop.Load(); i++ { // bounded: at most 2000 clients
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := stormClient(addr, fmt.Sprintf("c%04d", i), false)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitFor(t, "a learned cap", func() bool { return learned(s) > 0 })
	b.sessions.setCapacity(capacity / 2)
	waitFor(t, "the learned cap down to the halved capacity", func() bool { return learned(s) <= capacity/2 })
	b.sessions.setCapacity(capacity)
	waitFor(t, "the learned cap up again", func() bool { return learned(s) > capacity/2 })
	stop.Store(true)
	<-flow
	wg.Wait()
	waitOpen(t, s, 0)
	mu.Lock()
	served, refused := tally(t, outcomes)
	onlyRefused(t, refused, "resource-constraint")
	mu.Unlock()
	_, resets, conns := b.stats()
	t.Logf("%d clients: %d served, refused %v; backend: %d resets in %d connections", len(outcomes), served, refused, resets, conns)
}

// A backend that slows down before it fails (stream-open latency ×5 above
// half its capacity, resets above it): the learned cap drops on the latency,
// before any reset.
func TestAdaptiveAdmissionDropsOnLatency(t *testing.T) {
	leakcheck.Check(t)
	const (
		capacity = 10
		clients  = 40
	)
	b := newOpenfireBackend(t, capacity, 200*time.Millisecond)
	b.slow = func(open int) time.Duration {
		if open > capacity/2 {
			return 50 * time.Millisecond
		}
		return 10 * time.Millisecond
	}
	s, addr, _ := startGuardMetrics(t, ListenerConfig{Backend: Backend{
		Address: b.addr(), Retries: 2,
		// Slack 5ms: the backend's latencies are 10 and 50ms.
		Adaptive:  &limits.AdaptiveConfig{Min: 2, Initial: 2, Slack: 5 * time.Millisecond},
		Admission: Admission{QueueSize: clients, QueueTimeout: 30 * time.Second},
	}})
	outcomes := storm(addr, clients, 0, nil)
	waitOpen(t, s, 0)
	served, refused := tally(t, outcomes)
	onlyRefused(t, refused)
	maxOpen, resets, _ := b.stats()
	t.Logf("%d clients: %d served; backend: max %d open of %d, %d resets; learned cap %d", clients, served, maxOpen, capacity, resets, learned(s))
	if resets > 0 {
		t.Errorf("the backend reset %d connections: the cap did not drop on the latency first", resets)
	}
	if served != clients {
		t.Errorf("%d of %d served", served, clients)
	}
}

// XMPP streams last hours. Clients that arrive one by one and stay, more of
// them than the initial cap, are all served promptly: with every stream
// open and none opening, a waiting client probes one above the learned cap.
// Without the probe the cap, reached by streams that do not end, would
// grow by no more than a fraction per open after slow start, and the
// clients above it would wait out queue_timeout.
func TestAdaptiveAdmissionGrowsUnderLongLivedStreams(t *testing.T) {
	leakcheck.Check(t)
	const (
		initial = 4
		clients = 30
	)
	b := newOpenfireBackend(t, 100, 0)
	// One slow open among the first: the latency gradient ends slow
	// start, and the cap grows by 1/cap per good open after it.
	b.slow = func(open int) time.Duration {
		if open == 2 {
			return 30 * time.Millisecond
		}
		return 0
	}
	s, addr, _ := startGuardMetrics(t, ListenerConfig{Backend: Backend{
		Address: b.addr(), Retries: 2,
		Adaptive:  &limits.AdaptiveConfig{Min: initial, Initial: initial},
		Admission: Admission{QueueSize: clients, QueueTimeout: 3 * time.Second},
	}})
	var conns []*net.TCPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range clients {
		c := dial(t, addr)
		conns = append(conns, c)
		write(t, c, fmt.Sprintf("<?xml version='1.0'?><stream:stream to='localhost' from='c%02d' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", i))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got := make([]byte, 0, 1024)
		buf := make([]byte, 1024)
		for !bytes.Contains(got, []byte(features)) {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("client %d of %d (learned cap %d, %d open): %q, %v", i+1, clients, learned(s), s.Open(), got, err)
			}
			if bytes.Contains(got, []byte("</stream:error>")) {
				t.Fatalf("client %d of %d refused: %q", i+1, clients, got)
			}
		}
	}
	if l := learned(s); l < clients {
		t.Errorf("learned cap %d with %d streams open", l, clients)
	}
	if maxOpen, resets, _ := b.stats(); maxOpen != clients || resets != 0 {
		t.Errorf("backend: max %d open, %d resets; want %d, 0", maxOpen, resets, clients)
	}
	for _, c := range conns {
		write(t, c, streamEnd)
		c.CloseWrite()
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rest, err := io.ReadAll(c); err != nil || !bytes.HasSuffix(rest, []byte(streamEnd)) {
			t.Errorf("ending a stream: %q, %v", rest, err)
		}
	}
	waitOpen(t, s, 0)
}

// A burst of long-lived streams, 32 opening at once, in two waves (a
// reconnect storm onto a backend with room for all): every one is served
// within its client's patience, though the opens of a burst are slower than
// those of a quiet node (Guard's own scheduling, not the backend's load).
func TestAdaptiveAdmissionServesABurstOfLongLivedStreams(t *testing.T) {
	leakcheck.Check(t)
	const (
		workers = 32
		each    = 4
		waves   = 2
	)
	b := newOpenfireBackend(t, 1000, 0)
	s, addr, _ := startGuardMetrics(t, ListenerConfig{Backend: Backend{
		Address: b.addr(), Retries: 2, Adaptive: &limits.AdaptiveConfig{},
		Admission: Admission{QueueSize: 1000, QueueTimeout: 10 * time.Second},
	}})
	var (
		mu    sync.Mutex
		conns []*net.TCPConn
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		waitOpen(t, s, 0)
	}()
	for wave := range waves {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream to='localhost' from='w%d-%d-%d' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", wave, w, i)
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					got := make([]byte, 0, 1024)
					buf := make([]byte, 1024)
					for !bytes.Contains(got, []byte(features)) {
						n, err := c.Read(buf)
						got = append(got, buf[:n]...)
						if err != nil || bytes.Contains(got, []byte("</stream:error>")) {
							t.Errorf("wave %d: a stream not served (learned cap %d, %d open): %q, %v", wave, learned(s), s.Open(), got, err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	if maxOpen, resets, _ := b.stats(); maxOpen != waves*workers*each || resets != 0 {
		t.Errorf("backend: max %d open, %d resets; want %d, 0", maxOpen, resets, waves*workers*each)
	}
	t.Logf("%d streams open; learned cap %d", waves*workers*each, learned(s))
}
