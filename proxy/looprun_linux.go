package proxy

import (
	"io"
	"os"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"golang.org/x/sys/unix"
)

// This file is what a loop does with its streams: the goroutine that waits
// for the epoll set, its tasks and timers, and for one stream the turn of
// a direction (read, forward, and the ends), the writes that waited, the
// client's timer and the closes made elsewhere (a drain, half_close).

// register adds ls's sockets to the loop, starting the loop if it is
// stopped, and has the loop take the stream's first turn.
func (lp *loop) register(ls *loopStream) {
	lp.mu.Lock()
	if !lp.running && !lp.open() {
		lp.mu.Unlock()
		// No epoll instance: the stream cannot be watched. Close it; its
		// end is reported as for failed sockets.
		ls.closed.Store(true)
		for _, c := range ls.conn {
			c.ls = nil
		}
		ls.conn[sideClient].closeWithin(ls.r.cfg.Timeouts.HalfClose)
		ls.conn[sideBackend].reset()
		ls.r.pumpDone()
		ls.r.pumpDone()
		return
	}
	lp.streams++
	for s := sideClient; s <= sideBackend; s++ {
		c := ls.conn[s]
		c.mu.Lock()
		c.epfd = int32(lp.epfd)
		c.events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
		if len(c.pending) > 0 {
			c.events |= unix.EPOLLOUT
		}
		if c.fd >= 0 {
			unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, c.fd, c.event())
		}
		c.mu.Unlock()
	}
	lp.post(ls.begin)
	lp.mu.Unlock()
}

// post queues f for the loop goroutine and wakes it. Under lp.mu.
func (lp *loop) post(f func()) {
	lp.tasks = append(lp.tasks, f)
	if lp.running && !lp.woken {
		lp.woken = true
		one := [8]byte{1}
		unix.Write(lp.efd, one[:])
	}
}

// postLocking is post for callers that do not hold lp.mu.
func (lp *loop) postLocking(f func()) {
	lp.mu.Lock()
	lp.post(f)
	lp.mu.Unlock()
}

// open creates the epoll instance, in Go's poller, with an eventfd in it
// that post writes to wake the loop, and starts the loop goroutine. Under
// lp.mu.
func (lp *loop) open() bool {
	f, epfd, rc, ok := newEpoll("guard-loop-epoll")
	if !ok {
		return false
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		f.Close()
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // key 0: no stream has id 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		f.Close()
		return false
	}
	lp.epfd, lp.efd, lp.running, lp.woken = epfd, efd, true, false
	go lp.run(f, rc)
	return true
}

// run is the loop goroutine, until the loop has no stream left. It waits
// for the epoll set in Go's poller (no thread of its own blocks: a thread
// in epoll_wait would keep the runtime's monitor polling, a sleep every
// few microseconds), and does the loop's work inside the poller's
// callback, which it leaves only when the earliest timer is due, to wait
// again: once per wake-up, one epoll_wait of the runtime's and one of the
// loop's, then the reads and writes of every stream that has events.
func (lp *loop) run(f *os.File, rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 256)
	lp.scratch = make([]byte, bufSize)
	var deadline time.Time
	for {
		if lp.stopIfIdle(f) {
			return
		}
		// A deadline already passed fails the wait before the callback
		// runs: the timers due go first.
		lp.work(time.Now())
		if next := lp.timers.next(); !next.Equal(deadline) {
			deadline = next
			f.SetReadDeadline(next)
		}
		rc.Read(func(fd uintptr) bool {
			for {
				n, err := unix.EpollWait(int(fd), events, 0)
				if err != nil {
					n = 0 // EINTR
				}
				for _, ev := range events[:n] {
					if ev.Fd == 0 && ev.Pad == 0 {
						lp.drainWake()
						continue
					}
					lp.dispatch(ev)
				}
				lp.work(time.Now())
				if n == len(events) || len(lp.again) > 0 {
					continue // more may be ready
				}
				if next := lp.timers.next(); !next.Equal(deadline) {
					deadline = next
					f.SetReadDeadline(next)
				}
				lp.mu.Lock()
				done := lp.streams == 0 && len(lp.tasks) == 0
				lp.mu.Unlock()
				return done // false: wait for the epoll set, or the deadline
			}
		})
	}
}

// work runs the tasks posted, the timers due at now, and the turns left
// over from the last round.
func (lp *loop) work(now time.Time) {
	lp.runTasks()
	lp.fireTimers(now)
	turns := lp.again
	lp.again = nil
	for _, t := range turns {
		t.ls.step(t.d)
	}
}

// stopIfIdle ends the loop when it has no stream and nothing to do.
func (lp *loop) stopIfIdle(f *os.File) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.streams > 0 || len(lp.tasks) > 0 || len(lp.again) > 0 {
		return false
	}
	// The next loop goroutine starts from here (open, under lp.mu):
	// what this one owned is reset before. The stream table starts small
	// again: a Go map keeps the room of its largest size, after a burst
	// of thousands of streams too.
	lp.running, lp.scratch, lp.again = false, nil, nil
	lp.regs, lp.timers.h = map[uint64]*loopStream{}, nil
	unix.Close(lp.efd)
	f.Close() // the epoll instance
	return true
}

// drainWake resets the eventfd after post's wake-up.
func (lp *loop) drainWake() {
	var b [8]byte
	lp.mu.Lock()
	unix.Read(lp.efd, b[:])
	lp.woken = false
	lp.mu.Unlock()
}

// dispatch hands one event to its stream: input for the direction that
// reads the side, room for the side's waiting writes.
func (lp *loop) dispatch(ev unix.EpollEvent) {
	key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
	ls := lp.regs[key>>1]
	if ls == nil || ls.closed.Load() {
		return
	}
	s := side(key & 1)
	if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		ls.hup[s] = true // read to the end: a short read no longer means empty
	}
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		ls.writable(s)
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		ls.step(direction(s))
	}
}

func (lp *loop) runTasks() {
	for {
		lp.mu.Lock()
		tasks := lp.tasks
		lp.tasks = nil
		lp.mu.Unlock()
		if len(tasks) == 0 {
			return
		}
		for _, t := range tasks {
			t()
		}
	}
}

// unregister forgets an ended stream.
func (lp *loop) unregister(ls *loopStream) {
	lp.timers.remove(ls)
	delete(lp.regs, ls.id)
	lp.mu.Lock()
	lp.streams--
	lp.mu.Unlock()
}

// begin is a stream's first turn on the loop: its entry in the loop's
// table (events for it that came before are covered by this turn), its
// client timer, a flush of what was written to it meanwhile (a drain) and a
// read of each side (edge-triggered: bytes that came before the
// registration raise no event).
func (ls *loopStream) begin() {
	ls.lp.regs[ls.id] = ls
	ls.rearm()
	ls.writable(sideClient)
	ls.writable(sideBackend)
	ls.step(clientToBackend)
	ls.step(backendToClient)
}

// step takes direction d's turn: what its source has, up to loopBudget
// reads, each forwarded whole, and the end it comes to. It mirrors
// relay.run, with the waits turned into returns.
func (ls *loopStream) step(d direction) {
	r := ls.r
	for range loopBudget {
		switch {
		case ls.mode[d] == dirDone || ls.closed.Load():
			return
		case ls.mode[d] == dirDiscard:
			ls.discard(d)
			return
		case ls.paused[d]:
			return
		}
		p := r.side[d.from()].pipe
		s, err := p.fillLoop()
		if err == errWouldBlock {
			return
		}
		if s.fwd > 0 {
			if !r.forward(d, p.units(s.fwd), s) {
				if d == clientToBackend {
					ls.startDiscard(d)
				} else {
					ls.finish(d)
				}
				return
			}
			p.consume(s.fwd)
			if ls.conn[d.to()].hasPending() {
				ls.paused[d] = true
				return
			}
		}
		if s.serr != nil {
			r.syntaxError(d, s.serr)
			p.discardAll()
			ls.startDiscard(d)
			return
		}
		if err != nil {
			if !r.readResult(d, err) {
				ls.finish(d)
			}
			return
		}
		if s.drained && !ls.hup[d.from()] {
			return // a short read: the socket is empty until its next event
		}
	}
	ls.lp.again = append(ls.lp.again, loopTurn{ls, d})
}

// startDiscard turns direction d to reading and dropping its source's
// input until its FIN (relay.drainClient, or after bad input), then takes
// the turn.
func (ls *loopStream) startDiscard(d direction) {
	ls.r.side[d.from()].pipe.discardAll()
	ls.mode[d] = dirDiscard
	if d == clientToBackend {
		ls.lp.timers.remove(ls) // no probe or idle limit while lingering
	}
	ls.discard(d)
}

// discard reads and drops what direction d's source has; at its FIN the
// lingering close is over (drained), at an error both sockets close.
func (ls *loopStream) discard(d direction) {
	for {
		_, err := ls.conn[d.from()].read(ls.lp.scratch)
		switch {
		case err == nil:
			continue
		case err == errWouldBlock:
			return
		case err == io.EOF:
			ls.r.on(func(c *closeState) actions { return c.drained(d) })
		default:
			ls.r.closeAll("", false, false)
		}
		ls.finish(d)
		return
	}
}

// finish ends direction d: no more reads, and the relay's end once both
// have (relay.pumpDone).
func (ls *loopStream) finish(d direction) {
	if ls.mode[d] == dirDone {
		return
	}
	ls.mode[d] = dirDone
	if d == clientToBackend {
		ls.lp.timers.remove(ls)
	}
	if ls.mode[clientToBackend] == dirDone && ls.mode[backendToClient] == dirDone {
		ls.closed.Store(true)
		ls.lp.unregister(ls)
	}
	ls.r.pumpDone()
}

// writable writes what waited for side s, and resumes the direction that
// waited on it; a write that fails is the failure relay.forward handles.
func (ls *loopStream) writable(s side) {
	empty, err := ls.conn[s].flush()
	d := direction(1 - s) // the direction that writes to s
	if err != nil {
		r := ls.r
		r.mu.Lock()
		r.core.writeFailed(s)
		r.mu.Unlock()
		r.ioError(d, false, err)
		ls.paused[d] = false
		if d == clientToBackend {
			ls.startDiscard(d)
		} else if r.isClosed() {
			ls.finish(d)
		} else {
			ls.step(d) // the backend's units are dropped from now on
		}
		return
	}
	if empty && ls.paused[d] {
		ls.paused[d] = false
		ls.step(d)
	}
}

// onClose runs when one of the stream's sockets is closed, on whatever
// goroutine closed it: the loop ends the directions reading from closed
// sockets, as a pump ends at its socket's close.
func (ls *loopStream) onClose() {
	ls.lp.postLocking(func() {
		for d := clientToBackend; d <= backendToClient; d++ {
			if ls.mode[d] != dirDone && ls.conn[d.from()].isClosed() {
				ls.finish(d)
			}
		}
	})
}

// rearm puts the client's next idle or probe time on the loop's heap.
func (ls *loopStream) rearm() {
	next := ls.r.nextClientDeadline()
	if next.IsZero() || ls.mode[clientToBackend] != dirRun {
		ls.lp.timers.remove(ls)
		return
	}
	ls.lp.timers.set(ls, next)
}

// timer runs the client's idle limit and probe when due (relay.clientTimer).
func (ls *loopStream) timer(now time.Time) {
	r := ls.r
	if ls.mode[clientToBackend] != dirRun || ls.closed.Load() {
		return
	}
	if next := r.nextClientDeadline(); !next.IsZero() && now.Before(next) {
		ls.lp.timers.set(ls, next) // activity since: not due yet
		return
	}
	last := time.Unix(0, r.lastActive.Load())
	if i := r.cfg.Timeouts.Idle; i > 0 && now.Sub(last) >= i {
		r.log.Debug("idle timeout", "idle", i)
		r.on(func(c *closeState) actions { return c.endBoth(policy.IdleTimeout, "") })
		ls.startDiscard(clientToBackend)
		return
	}
	if p := r.cfg.Timeouts.Probe; p > 0 {
		if err := r.probe(now); err != nil {
			r.ioError(clientToBackend, true, err)
			ls.finish(clientToBackend)
			return
		}
	}
	ls.rearm()
}

// fireTimers runs the timers due at now.
func (lp *loop) fireTimers(now time.Time) {
	for len(lp.timers.h) > 0 && !lp.timers.h[0].timerAt.After(now) {
		ls := lp.timers.h[0]
		lp.timers.remove(ls)
		ls.timer(now)
	}
}

// isClosed reports whether the socket is closed.
func (c *fdConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fd < 0
}
