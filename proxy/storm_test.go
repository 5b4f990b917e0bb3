package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

// overloadedBackend behaves like an Openfire node at capacity: a listen
// backlog of 50, and every connection beyond capacity concurrent streams is
// reset at once. A served stream gets a header and features, is held until
// release is closed, and is closed by the backend after </stream:stream>.
type overloadedBackend struct {
	ln       net.Listener
	sessions capacityCount
	release  <-chan struct{}

	mu    sync.Mutex
	order []string // the client's from attribute, in the order streams were served
	wg    sync.WaitGroup
}

// capacityCount is a server's count of its sessions, against its capacity.
type capacityCount struct {
	capacity int

	mu      sync.Mutex
	open    int
	maxOpen int
	resets  int
}

// enter counts a new session, or reports false (and counts a reset) when
// the server is at capacity.
func (cc *capacityCount) enter() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.open >= cc.capacity {
		cc.resets++
		return false
	}
	cc.open++
	cc.maxOpen = max(cc.maxOpen, cc.open)
	return true
}

// current returns the sessions open now.
func (cc *capacityCount) current() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.open
}

// setCapacity changes the capacity (a server under other load).
func (cc *capacityCount) setCapacity(c int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.capacity = c
}

func (cc *capacityCount) leave() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.open--
}

func (cc *capacityCount) stats() (maxOpen, resets int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.maxOpen, cc.resets
}

var fromAttr = regexp.MustCompile(` from='([^']*)'`)

func newOverloadedBackend(t *testing.T, capacity int, release <-chan struct{}) *overloadedBackend {
	t.Helper()
	b := &overloadedBackend{ln: listenBacklog(t, 50), sessions: capacityCount{capacity: capacity}, release: release}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := b.ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() { defer b.wg.Done(); b.serve(c.(*net.TCPConn)) }()
		}
	}()
	t.Cleanup(func() { b.ln.Close(); b.wg.Wait() })
	return b
}

// listenBacklog opens a loopback listener with a given accept backlog.
func listenBacklog(t *testing.T, backlog int) net.Listener {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "backlog-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	// Closed by the test, not left to a finalizer: a leak check after the
	// test must not depend on the garbage collector having run.
	t.Cleanup(func() { ln.Close() })
	return ln
}

func (b *overloadedBackend) serve(c *net.TCPConn) {
	if !b.sessions.enter() {
		resetConn(c)
		return
	}
	closed := false
	done := func() {
		if !closed {
			closed = true
			b.sessions.leave()
		}
	}
	defer c.Close()
	defer done()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for !bytes.HasSuffix(hdr, []byte(">")) || !bytes.Contains(hdr, []byte("<stream:stream")) {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		hdr = append(hdr, buf[:n]...)
	}
	if m := fromAttr.FindSubmatch(hdr); m != nil {
		b.mu.Lock()
		b.order = append(b.order, string(m[1]))
		b.mu.Unlock()
	}
	io.WriteString(c, backendHeader+features)
	<-b.release
	rest, _ := io.ReadAll(io.LimitReader(c, 1<<16))
	_ = rest
	// The client's </stream:stream> and FIN came: answer, count the stream
	// as gone, then close.
	io.WriteString(c, streamEnd)
	done()
}

func (b *overloadedBackend) stats() (maxOpen, resets int, order []string) {
	maxOpen, resets = b.sessions.stats()
	b.mu.Lock()
	defer b.mu.Unlock()
	return maxOpen, resets, append([]string(nil), b.order...)
}

// stormOutcome is what one storm client saw.
type stormOutcome struct {
	served  bool   // got the backend's header and a clean end
	refused string // the stream error condition, if refused
	err     error  // anything else: a reset, a silent close, a timeout
}

var conditionRE = regexp.MustCompile(`<stream:error><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-streams'`)

// storm runs n stormClients against addr, started spacing apart (client i
// resets once served if reset(i); reset may be nil), and returns what each
// saw, by arrival.
func storm(addr string, n int, spacing time.Duration, reset func(int) bool) []stormOutcome {
	outcomes := make([]stormOutcome, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = stormClient(addr, fmt.Sprintf("c%02d", i), reset != nil && reset(i))
		}()
		time.Sleep(spacing)
	}
	wg.Wait()
	return outcomes
}

// tally counts the clients served and those refused, by condition; a client
// that saw anything else (a reset, a silent close) fails the test.
func tally(t *testing.T, outcomes []stormOutcome) (served int, refused map[string]int) {
	t.Helper()
	refused = map[string]int{}
	for i, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("client %d: %v", i, o.err)
		case o.served:
			served++
		default:
			refused[o.refused]++
		}
	}
	return served, refused
}

// onlyRefused fails the test for refusals with another condition than want.
func onlyRefused(t *testing.T, refused map[string]int, want ...string) {
	t.Helper()
	for cond, n := range refused {
		if !slices.Contains(want, cond) {
			t.Errorf("%d clients refused with %s; want only %v", n, cond, want)
		}
	}
}

// stormClient opens a stream as client id and reports how it ended. Once
// served, a client that resets drops its connection with an RST instead of
// ending its stream.
func stormClient(addr, id string, reset bool) stormOutcome {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return stormOutcome{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := fmt.Sprintf("<?xml version='1.0'?><stream:stream to='localhost' from='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", id)
	if _, err := io.WriteString(c, hdr); err != nil {
		return stormOutcome{err: err}
	}
	got := make([]byte, 0, 1024)
	buf := make([]byte, 1024)
	for !bytes.Contains(got, []byte(features)) && !bytes.Contains(got, []byte("</stream:error>")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return stormOutcome{err: fmt.Errorf("after %q: %w", got, err)}
		}
	}
	if m := conditionRE.FindSubmatch(got); m != nil {
		rest, err := io.ReadAll(c)
		if err != nil {
			return stormOutcome{err: fmt.Errorf("after the stream error: %w", err)}
		}
		if !bytes.HasSuffix(append(got, rest...), []byte("</stream:error></stream:stream>")) {
			return stormOutcome{err: fmt.Errorf("stream error not closed: %q", append(got, rest...))}
		}
		return stormOutcome{refused: string(m[1])}
	}
	if reset {
		resetConn(c.(*net.TCPConn))
		return stormOutcome{served: true}
	}
	io.WriteString(c, streamEnd)
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != streamEnd {
		return stormOutcome{err: fmt.Errorf("ending a served stream: %q, %v", rest, err)}
	}
	return stormOutcome{served: true}
}

// The storm: N = 10×C clients against a backend that resets everything
// above C. Guard admits C at a time, queues what its queue holds, in
// arrival order, and refuses the rest with resource-constraint. No client
// sees a reset; the backend never holds more than C.
//
// The arrival order is made by events, not by spacing: each client is
// launched only once the one before it has been served (the backend read
// its header), queued (the queue's length grew) or refused (it read its
// stream error), and the backend holds every stream until all have come.
func TestStormAgainstOverloadedBackend(t *testing.T) {
	leakcheck.Check(t)
	const (
		capacity  = 5
		clients   = 10 * capacity
		queueSize = 20
	)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	b := newOverloadedBackend(t, capacity, release)
	t.Cleanup(free) // before the backend's own cleanup, which waits for its streams
	s, addr := startGuard(t, b.ln.Addr().String(), ListenerConfig{
		Backend: Backend{Admission: Admission{MaxStreams: capacity, QueueSize: queueSize, QueueTimeout: 20 * time.Second}},
	})
	waiting := func() int {
		for _, st := range s.Backends() {
			return st.Waiting
		}
		return -1
	}
	served := func() int { _, _, order := b.stats(); return len(order) }

	outcomes := make([]stormOutcome, clients)
	done := make([]chan struct{}, clients)
	var wg sync.WaitGroup
	for i := range clients {
		done[i] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			outcomes[i] = stormClient(addr, fmt.Sprintf("c%02d", i), false)
		}()
		switch {
		case i < capacity:
			waitFor(t, fmt.Sprintf("c%02d at the backend", i), func() bool { return served() == i+1 })
		case i < capacity+queueSize:
			waitFor(t, fmt.Sprintf("c%02d queued", i), func() bool { return waiting() == i+1-capacity })
		default:
			select {
			case <-done[i]:
			case <-time.After(10 * time.Second):
				t.Fatalf("c%02d, past the queue, has no answer", i)
			}
			if o := outcomes[i]; o.err != nil || o.served || o.refused != "resource-constraint" {
				t.Fatalf("c%02d, with the slots and the queue full: %+v; want resource-constraint", i, o)
			}
		}
	}
	if n, w := served(), waiting(); n != capacity || w != queueSize {
		t.Fatalf("with every client come: %d at the backend, %d queued; want %d and %d", n, w, capacity, queueSize)
	}
	free()
	wg.Wait()

	served2, refusals := tally(t, outcomes)
	onlyRefused(t, refusals, "resource-constraint")
	refused := refusals["resource-constraint"]
	maxOpen, resets, order := b.stats()
	if maxOpen > capacity || resets > 0 {
		t.Errorf("backend held up to %d streams (capacity %d) and reset %d", maxOpen, capacity, resets)
	}
	if served2 != capacity+queueSize || refused != clients-served2 {
		t.Errorf("served %d, refused %d; want %d served (slots and queue) and the rest refused", served2, refused, capacity+queueSize)
	}
	// Those that waited were served in the order they came: the first
	// capacity+queueSize arrivals, and only they, were served. At the
	// backend the first capacity came one by one, in order; after them the
	// order may differ only among clients admitted together (slots freed
	// in the same instant), whose dials race: no client arrives there more
	// than capacity places early.
	for i, o := range outcomes {
		if o.served != (i < capacity+queueSize) {
			t.Errorf("client c%02d served=%v: the queue did not keep the arrival order", i, o.served)
		}
	}
	if len(order) != capacity+queueSize {
		t.Errorf("the backend served %d streams, want %d: %v", len(order), capacity+queueSize, order)
	}
	for i, id := range order {
		var n int
		fmt.Sscanf(id, "c%d", &n)
		if (i < capacity && n != i) || n > i+capacity-1 || n >= capacity+queueSize {
			t.Errorf("served out of arrival order (c%02d at place %d): %v", n, i, order)
			break
		}
	}
	t.Logf("storm: %d clients, %d served, %d resource-constraint, 0 resets; backend max %d streams", clients, served2, refused, maxOpen)
	waitOpen(t, s, 0)
}

// The same storm against a real Prosody, with Guard's cap set well below
// what the machine can hold: every client logs in or hears
// resource-constraint; none sees a reset.
func TestStormAgainstProsody(t *testing.T) {
	leakcheck.Check(t)
	srv := prosodytest.Start(t, prosodytest.Options{})
	const clients = 60
	s, addr := startGuard(t, srv.Addr, ListenerConfig{
		Backend: Backend{Admission: Admission{MaxStreams: 4, QueueSize: 16, QueueTimeout: 500 * time.Millisecond}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		ok   bool
		cond string
		err  error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := xmppclient.DialOptions(ctx, addr, srv.Domain, "alice", "alice-pw", xmppclient.Options{Resource: fmt.Sprintf("storm%d", i)})
			var se *xmppclient.StreamError
			switch {
			case errors.As(err, &se):
				results[i] = result{cond: se.Condition}
			case err != nil:
				results[i] = result{err: err}
			default:
				time.Sleep(100 * time.Millisecond) // hold the slot a little
				results[i] = result{ok: true, err: c.Close()}
			}
		}()
	}
	wg.Wait()
	served, refused := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil && errors.Is(r.err, syscall.ECONNRESET):
			t.Errorf("client %d saw a reset: %v", i, r.err)
		case r.err != nil:
			t.Errorf("client %d: %v", i, r.err)
		case r.ok:
			served++
		case r.cond == "resource-constraint":
			refused++
		default:
			t.Errorf("client %d: stream error %q", i, r.cond)
		}
	}
	if served == 0 || refused == 0 {
		t.Errorf("served %d, refused %d: the storm did not overload Guard's cap", served, refused)
	}
	t.Logf("prosody storm: %d clients, %d logged in, %d resource-constraint", clients, served, refused)
	waitOpen(t, s, 0)
}

// A queued client that closes or resets its connection gives its place in
// the queue up at once: the next client is queued, not refused, and the
// backend is never dialed for those that left.
func TestQueuedClientThatLeavesFreesItsPlace(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{
		Backend: Backend{Admission: Admission{MaxStreams: 1, QueueSize: 2, QueueTimeout: 20 * time.Second}},
	})
	waiting := func() int {
		for _, st := range s.Backends() {
			return st.Waiting
		}
		return -1
	}
	queue := func() *net.TCPConn {
		c := dial(t, addr)
		write(t, c, clientHeader)
		return c
	}
	c0, bc0 := openStream(t, b, addr) // holds the one slot
	q1 := queue()
	waitFor(t, "one queued", func() bool { return waiting() == 1 })
	q2 := queue()
	waitFor(t, "two queued", func() bool { return waiting() == 2 })
	full := queue()
	expectStreamError(t, full, "", true, "localhost", "resource-constraint", "the server is at capacity; try again later")

	q1.Close() // a FIN
	waitFor(t, "the closed client's place freed", func() bool { return waiting() == 1 })
	q2.SetLinger(0)
	q2.Close() // a reset
	waitFor(t, "the reset client's place freed", func() bool { return waiting() == 0 })
	q3 := queue()
	waitFor(t, "a new client queued", func() bool { return waiting() == 1 })
	q4 := queue()
	waitFor(t, "two new clients queued, none refused", func() bool { return waiting() == 2 })
	b.noConn(t)

	// The slot comes free: the first live client in line gets it.
	write(t, c0, streamEnd)
	c0.CloseWrite()
	expectEOF(t, bc0, streamEnd)
	write(t, bc0, streamEnd)
	bc0.Close()
	expectEOF(t, c0, streamEnd)
	bc3 := b.accept(t)
	expect(t, bc3, clientHeader)
	write(t, bc3, backendHeader+features)
	expect(t, q3, backendHeader+features)
	if n := waiting(); n != 1 {
		t.Fatalf("%d waiting after q3 was admitted, want 1 (q4)", n)
	}
	q3.Close()
	bc3.Close()
	q4.Close()
	waitOpen(t, s, 0)
}

// The storm pacer end to end (new_streams_per_second, new_streams_burst):
// a storm of clients that all come at once is paced, not refused: every
// client is served, none is refused, and the backend never sees more
// streams than the pacer allows, burst + rate × elapsed, at each of its
// accepts. The clock starts before the first dial, so elapsed can only be
// longer than the pacer's own: the bound holds however slow the machine.
func TestStormPacer(t *testing.T) {
	leakcheck.Check(t)
	const (
		rate    = 10.0 // streams a second
		burst   = 2
		clients = 10
	)
	var (
		mu      sync.Mutex
		arrived []time.Time // when each backend stream's header came, in order
	)
	b := newScriptedBackend(t, func(_ int, c *net.TCPConn) {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		io.WriteString(c, backendHeader+features)
		io.Copy(io.Discard, c) // to the client's end, forwarded with its FIN
		io.WriteString(c, streamEnd)
	})
	s, addr, reg := startGuardMetrics(t, ListenerConfig{Backend: Backend{Address: b.addr(), Admission: Admission{
		NewStreamsPerSecond: rate, NewStreamsBurst: burst, QueueTimeout: 30 * time.Second,
	}}})

	start := time.Now()
	outcomes := storm(addr, clients, 0, nil)
	served, refused := tally(t, outcomes)
	if served != clients || len(refused) > 0 {
		t.Errorf("served %d of %d, refused %v: the pacer must delay streams, not refuse them", served, clients, refused)
	}
	if got := counterSum(t, reg, "guard_admission_rejected_total"); got != 0 {
		t.Errorf("guard_admission_rejected_total = %v, want 0", got)
	}
	if got := counterSum(t, reg, "guard_admission_admitted_total"); got != clients {
		t.Errorf("guard_admission_admitted_total = %v, want %d", got, clients)
	}
	mu.Lock()
	times := slices.Clone(arrived)
	mu.Unlock()
	if len(times) != clients {
		t.Fatalf("the backend saw %d streams, want %d", len(times), clients)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i, at := range times {
		el := at.Sub(start)
		if allowed := burst + rate*el.Seconds() + 1; float64(i+1) > allowed {
			t.Errorf("stream %d reached the backend %v after the first dial: more than burst %d + %v/s (at most %.1f by then)", i+1, el, burst, rate, allowed)
		}
	}
	t.Logf("%d streams at %v/s, burst %d: the last reached the backend after %v", clients, rate, burst, times[len(times)-1].Sub(start))
	waitOpen(t, s, 0)
}
