package proxy

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the reactor (Linux: epoll): the process-wide epoll set in
// which a quiet pump parks without a goroutine, resumed on input, at its
// deadline, or when the relay closes its socket.

// parkAfter is how long a relay direction's source may stay quiet before its
// pump gives up its goroutine and parks in the reactor. An idle stream then
// costs Guard no goroutine stack at all (two per stream before, about 5 KB),
// while a busy one never pays for parking: it waits in Go's poller as usual.
var parkAfter = time.Second

// The reactor watches the sockets of parked pumps with an epoll instance of
// its own and starts a fresh goroutine for a pump when its socket has input
// (data, a FIN, an error), when its read deadline passes, or when the relay
// closes the socket. A socket may be in several epoll sets: Go's poller keeps
// its own registration of it, untouched.
//
// The epoll descriptor is itself in Go's poller, so the reactor's loop is a
// goroutine like any other, not a thread blocked in epoll_wait; it exists only
// while a pump is parked (the descriptor too), so that a server with no idle
// streams keeps nothing.
type reactor struct {
	mu     sync.Mutex
	parked map[uint64]*parker // by id, the pumps parked now
	file   *os.File           // the epoll instance; nil when nothing is parked
	epfd   int                // file's descriptor (file.Fd would make it blocking)
	gen    uint64             // counts epoll instances, for parker.gen
	nextID uint64
}

var theReactor = reactor{parked: map[uint64]*parker{}}

// parker parks one pump: one direction of one relay.
type parker struct {
	rc     syscall.RawConn // the socket it waits on
	resume func()          // continues the pump, in the goroutine that calls it
	id     uint64

	state atomic.Int32 // parkRunning or parkParked

	// Under theReactor.mu:
	gen   uint64      // the epoll instance the socket was added to; 0: none
	timer *time.Timer // wakes the pump at its read deadline
}

const (
	parkRunning = iota
	parkParked
)

func newParker(rc syscall.RawConn, resume func()) *parker {
	r := &theReactor
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	return &parker{rc: rc, resume: resume, id: id}
}

// park hands the pump to the reactor: after park reports true, the caller
// must return at once without touching the pump's state, since a resumed
// pump may already be running in another goroutine. deadline (zero: none) is
// the socket's read deadline, at which the pump is resumed to see it pass.
// park reports false if the socket cannot be watched (it was closed, say):
// the caller goes on waiting as before.
func (p *parker) park(deadline time.Time) bool {
	r := &theReactor
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == nil && !r.open() {
		return false
	}
	epfd := r.epfd
	var armErr error
	err := p.rc.Control(func(fd uintptr) {
		// One-shot and level-triggered: input that is already there fires at
		// once, so none can slip in between the pump's last look and this.
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(p.id)),
			Pad:    int32(uint32(p.id >> 32)),
		}
		op := unix.EPOLL_CTL_MOD
		if p.gen != r.gen {
			op = unix.EPOLL_CTL_ADD
		}
		armErr = unix.EpollCtl(epfd, op, int(fd), &ev)
		if armErr == unix.ENOENT && op == unix.EPOLL_CTL_MOD {
			armErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil || armErr != nil {
		r.closeIfEmpty()
		return false
	}
	p.gen = r.gen
	p.state.Store(parkParked)
	r.parked[p.id] = p
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if p.timer == nil {
			p.timer = time.AfterFunc(d, p.wake)
		} else {
			p.timer.Reset(d)
		}
	}
	return true
}

// wake resumes a parked pump in a new goroutine; it does nothing if the pump
// is not parked. Wake-ups race (input, deadline, close): the first one wins,
// and one that comes late finds the pump running, or parked anew, in which
// case the pump looks, finds nothing, and parks again.
func (p *parker) wake() {
	if !p.state.CompareAndSwap(parkParked, parkRunning) {
		return
	}
	r := &theReactor
	r.mu.Lock()
	delete(r.parked, p.id)
	if p.timer != nil {
		p.timer.Stop()
	}
	if len(r.parked) == 0 && r.file != nil {
		// Let the loop see that nothing is parked, and end.
		r.file.SetReadDeadline(aLongTimeAgo)
	}
	r.mu.Unlock()
	go p.resume()
}

// open creates the epoll instance and starts the loop. Under r.mu.
func (r *reactor) open() bool {
	f, epfd, rc, ok := newEpoll("guard-reactor-epoll")
	if !ok {
		return false
	}
	r.file, r.epfd = f, epfd
	r.gen++
	go r.loop(f, rc)
	return true
}

// newEpoll creates an epoll instance in Go's poller, so that a goroutine
// waits for it (syscall.RawConn.Read) without holding a thread, and a read
// deadline set from elsewhere wakes it.
func newEpoll(name string) (*os.File, int, syscall.RawConn, bool) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, -1, nil, false
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, -1, nil, false
	}
	f := os.NewFile(uintptr(epfd), name)
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		// Not in Go's poller: the loop could not wait without a thread.
		f.Close()
		return nil, -1, nil, false
	}
	return f, epfd, rc, true
}

// closeIfEmpty ends the epoll instance when nothing is parked. Under r.mu.
func (r *reactor) closeIfEmpty() {
	if len(r.parked) == 0 && r.file != nil {
		r.file.SetReadDeadline(aLongTimeAgo)
	}
}

// loop waits for events on f and wakes their pumps, until nothing is parked.
func (r *reactor) loop(f *os.File, rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	wake := make([]*parker, 0, len(events))
	for {
		var n int
		rc.Read(func(fd uintptr) bool {
			k, err := unix.EpollWait(int(fd), events, 0)
			if err != nil || k == 0 {
				return false // nothing (or EINTR): wait in the poller
			}
			n = k
			return true
		})
		// Either events, or the deadline set to stop the loop.
		r.mu.Lock()
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if p := r.parked[id]; p != nil {
				wake = append(wake, p)
			}
		}
		// Nothing parked (the pumps of this batch's events are still in
		// r.parked until woken): end. Resetting the deadline instead could
		// undo the stop a wake-up set since the wait returned.
		if len(r.parked) == 0 && r.file == f {
			r.file = nil
			f.Close() // every registration in it goes with it
			r.mu.Unlock()
			return
		}
		f.SetReadDeadline(time.Time{})
		r.mu.Unlock()
		for i, p := range wake {
			p.wake()
			wake[i] = nil
		}
		wake = wake[:0]
	}
}
