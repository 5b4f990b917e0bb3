package proxy

import (
	"container/heap"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the event loop that relays plaintext streams (TCP, framed
// or raw, without TLS or shaping): after the handshake a stream's two
// sockets move to one of GOMAXPROCS loops, each an epoll set of raw
// descriptors (edge-triggered, registered once) watched by one goroutine,
// so that a stream costs no goroutine, no runtime poll descriptor and no
// per-stream timer, busy or idle. The loop drives the same relay as the
// pumps of relay.go do (framing, the close state machine of relaycore.go,
// the actions of relayend.go): it reads what a socket has into the pipe's
// pooled buffer (a short read means drained: no read just to see EAGAIN),
// forwards whole units with writes that never block (loopconn_linux.go),
// stops reading toward a side whose writes wait, and runs the client's
// idle and probe times on a heap of its own. TLS and WebSocket streams stay
// on goroutines.

// loopRelays turns the loop on for eligible streams; a test turns it off
// to exercise the pumps (parking_test.go).
var loopRelays = true

// loopBudget bounds the reads one direction takes per turn, so that a busy
// stream does not starve the others of its loop.
const loopBudget = 16

// loop is one event loop. It runs while it has streams: the first stream
// starts it, the last one's end stops it (nothing is left running between
// tests, and an idle Guard holds no loop).
type loop struct {
	mu      sync.Mutex
	tasks   []func() // run by the loop goroutine, in order
	running bool     // the loop goroutine runs, with epfd and efd open
	woken   bool     // efd was written and the loop has not read it yet
	epfd    int      // the epoll instance
	efd     int      // an eventfd in it, written to wake the loop (post)
	streams int      // registered and not ended

	// Owned by the loop goroutine:
	regs    map[uint64]*loopStream // the streams by id, from their first turn
	timers  loopTimers
	again   []loopTurn // directions whose budget ran out, for the next turn
	scratch []byte     // discarded input
}

type loopTurn struct {
	ls *loopStream
	d  direction
}

var (
	loopsOnce sync.Once
	loops     []*loop
	loopNext  atomic.Uint32
	loopIDs   atomic.Uint64
)

// pickLoop returns the next loop, round robin.
func pickLoop() *loop {
	loopsOnce.Do(func() {
		loops = make([]*loop, runtime.GOMAXPROCS(0))
		for i := range loops {
			loops[i] = &loop{regs: map[uint64]*loopStream{}}
		}
	})
	return loops[int(loopNext.Add(1))%len(loops)]
}

// Direction states on a loop.
const (
	dirRun     = iota // reading and forwarding
	dirDiscard        // reading and dropping, until the peer's FIN (the lingering half of a close)
	dirDone           // no more reads
)

// loopStream is one relayed stream on a loop.
type loopStream struct {
	r      *relay
	lp     *loop
	id     uint64
	conn   [2]*fdConn // by side
	mode   [2]uint8   // by direction
	paused [2]bool    // by direction: its destination has writes waiting
	hup    [2]bool    // by side: its FIN or an error was signalled, to be read

	timerIdx int32 // in loop.timers; -1: not in it
	closed   atomic.Bool

	timerAt time.Time // when the client's idle or probe time is next due; zero: none
}

// eligibleForLoop reports whether r's stream can be relayed on a loop:
// plaintext on both sides, no shaping.
func eligibleForLoop(r *relay, client peerConn, backend *sideConn) bool {
	if !loopRelays || r.shaper != nil || backend.layered() {
		return false
	}
	f, ok := client.(tcpFront)
	return ok && !f.layered()
}

// startOnLoop moves r's sockets to a loop and starts relaying there; done
// runs once both directions have ended, as with start. It reports false
// (nothing changed) if the sockets could not be moved.
func (r *relay) startOnLoop(client *net.TCPConn, backend *net.TCPConn, done func(reason string)) bool {
	cfd, err := dupFD(client)
	if err != nil {
		return false
	}
	bfd, err := dupFD(backend)
	if err != nil {
		unix.Close(cfd)
		return false
	}
	client.Close()
	backend.Close()
	lp := pickLoop()
	ls := &loopStream{r: r, lp: lp, id: loopIDs.Add(1), timerIdx: -1}
	r.mu.Lock()
	if r.core.closed {
		// Closed (closeNow) while the sockets were being moved.
		r.mu.Unlock()
		unix.Close(cfd)
		unix.Close(bfd)
		return false
	}
	for s, fd := range [2]int{cfd, bfd} {
		c := &fdConn{fd: fd, ls: ls, side: uint8(s)}
		ls.conn[s] = c
		r.side[s].conn = c
		p := r.side[s].pipe
		// The closed net.TCPConn, its netFD and addresses are garbage now.
		p.fc, p.src, p.sock, p.wait = c, nil, nil, nil
	}
	r.mu.Unlock()
	r.lastActive.Store(time.Now().UnixNano())
	r.done = done
	r.running.Store(2)
	lp.register(ls)
	return true
}

// loopTimers is a loop's heap of client timers, one entry per stream.
type loopTimers struct{ h []*loopStream }

func (t *loopTimers) Len() int           { return len(t.h) }
func (t *loopTimers) Less(i, j int) bool { return t.h[i].timerAt.Before(t.h[j].timerAt) }
func (t *loopTimers) Swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.h[i].timerIdx, t.h[j].timerIdx = int32(i), int32(j)
}
func (t *loopTimers) Push(x any) {
	ls := x.(*loopStream)
	ls.timerIdx = int32(len(t.h))
	t.h = append(t.h, ls)
}
func (t *loopTimers) Pop() any {
	ls := t.h[len(t.h)-1]
	t.h[len(t.h)-1] = nil
	t.h = t.h[:len(t.h)-1]
	ls.timerIdx = -1
	return ls
}

func (t *loopTimers) set(ls *loopStream, at time.Time) {
	ls.timerAt = at
	if ls.timerIdx >= 0 {
		heap.Fix(t, int(ls.timerIdx))
		return
	}
	heap.Push(t, ls)
}

func (t *loopTimers) remove(ls *loopStream) {
	if ls.timerIdx >= 0 {
		heap.Remove(t, int(ls.timerIdx))
	}
}

// next is when the earliest timer is due; zero: none.
func (t *loopTimers) next() time.Time {
	if len(t.h) == 0 {
		return time.Time{}
	}
	return t.h[0].timerAt
}

// fillLoop is pipe.fill for a stream on a loop: one read of what the
// socket has, without waiting (errWouldBlock when it has nothing), scanned.
func (p *pipe) fillLoop() (scan, error) {
	switch {
	case p.buf == nil && p.busy:
		p.buf = getBigBuf()
	case p.buf == nil:
		p.buf = getBuf()
	case p.busy && len(p.buf) < bigBufSize:
		p.moveTo(getBigBuf()) // a busy stream keeps part of a unit
	case p.n == len(p.buf):
		p.grow()
	}
	avail := len(p.buf) - p.n
	k, rerr := p.fc.read(p.buf[p.n:])
	p.n += k
	p.busy = k == avail
	s := p.scan()
	s.read = k
	s.drained = rerr == nil && k < avail
	if p.n == 0 {
		p.release()
	}
	return s, rerr
}
