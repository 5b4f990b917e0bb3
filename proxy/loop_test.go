package proxy

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// A client that does not read gets no more than the kernel's buffers and
// Guard's one pending write: Guard stops reading from the backend (its
// writes back up into the backend's socket), and the loop goes on relaying
// every other stream meanwhile, those on the same loop included (the pumps
// too: a blocked write is back-pressure). Once the client reads, everything
// arrives, in order.
func TestLoopBackPressure(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	slow, slowB := openStream(t, b, addr)
	// More streams than loops, so that some share the slow one's loop.
	var others [][2]*net.TCPConn
	for range 2 * runtime.GOMAXPROCS(0) {
		c, bc := openStream(t, b, addr)
		others = append(others, [2]*net.TCPConn{c, bc})
	}

	// The backend writes 80 MiB of stanzas toward a client that reads
	// none: far more than the kernel's buffers on the way hold.
	stanza := "<message><body>" + strings.Repeat("x", 4000) + "</body></message>"
	const n = 20000
	wrote := make(chan int, 1)
	finished := make(chan error, 1)
	go func() {
		slowB.SetWriteDeadline(time.Now().Add(3 * time.Second))
		i := 0
		for ; i < n; i++ {
			k, err := slowB.Write([]byte(stanza))
			if err != nil {
				// The write backed up: back-pressure reached the backend.
				// The stanza it cut goes out whole once the client reads.
				if k == 0 {
					wrote <- i
					finished <- nil
					return
				}
				wrote <- i + 1
				slowB.SetWriteDeadline(time.Time{})
				_, err = slowB.Write([]byte(stanza[k:]))
				finished <- err
				return
			}
		}
		wrote <- i
		finished <- nil
	}()
	got := <-wrote
	if got == n {
		t.Fatalf("the backend wrote all %d stanzas (%d MiB) to a client that reads nothing: Guard buffered them", n, n*len(stanza)>>20)
	}
	t.Logf("the backend's writes backed up after %d stanzas (%.1f MiB)", got, float64(got*len(stanza))/(1<<20))

	// Every other stream relays both ways meanwhile.
	for _, o := range others {
		write(t, o[0], message)
		expect(t, o[1], message)
		write(t, o[1], message)
		expect(t, o[0], message)
	}

	// The client reads: every stanza the backend wrote arrives, whole and
	// in order.
	want := bytes.Repeat([]byte(stanza), got)
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(slow, buf); err != nil || !bytes.Equal(buf, want) {
		t.Fatalf("the slow client read %v; want the %d stanzas in order", err, got)
	}
	if err := <-finished; err != nil {
		t.Fatalf("the backend's last stanza: %v", err)
	}
	closeCleanly(t, slow, slowB)
	for _, o := range others {
		closeCleanly(t, o[0], o[1])
	}
	waitOpen(t, s, 0)
}

// Idle streams on the loops hold no goroutine: a hundred open streams add
// none to the process (the pumps add two each, until they park).
func TestLoopStreamsHoldNoGoroutine(t *testing.T) {
	if !loopRelays {
		t.Skip("GUARD_TEST_PUMPS=1: the pumps relay")
	}
	leakcheck.Check(t)
	withParkAfter(t, time.Hour) // pumps would keep their goroutines
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	c0, bc0 := openStream(t, b, addr) // the loops run from the first stream
	base := runtime.NumGoroutine()
	var ends [][2]*net.TCPConn
	for range 100 {
		c, bc := openStream(t, b, addr)
		write(t, c, message)
		expect(t, bc, message)
		ends = append(ends, [2]*net.TCPConn{c, bc})
	}
	// The session goroutines that set the streams up end as relaying
	// starts; none is left per stream.
	waitFor(t, "the setup goroutines to end", func() bool { return runtime.NumGoroutine() <= base+runtime.GOMAXPROCS(0) })
	for _, e := range ends {
		closeCleanly(t, e[0], e[1])
	}
	closeCleanly(t, c0, bc0)
	waitOpen(t, s, 0)
}
