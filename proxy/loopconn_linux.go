package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// This file is one side of a stream on an event loop (loop_linux.go): the
// socket as a raw descriptor of Guard's own, taken over from the
// net.TCPConn after the handshake so that an idle stream keeps no poll
// descriptor, netFD or address of the runtime's, and written without ever
// blocking: what the kernel does not take at once waits in a buffer of the
// side's own until the socket is writable again, and meanwhile the loop
// reads nothing more toward it (back-pressure, as a blocked write is for a
// goroutine).

// fdConn is a socket on a loop. mu serialises every use of fd with its
// close, so that a descriptor number the kernel reuses is never touched.
type fdConn struct {
	mu      sync.Mutex
	fd      int         // -1 once closed
	pending []byte      // written and not yet taken by the kernel; nil when empty
	err     error       // the write error that broke the side, once seen
	ls      *loopStream // told when the socket closes (not under mu); nil: nobody

	// The socket's registration in its loop's epoll set: EPOLLOUT is in
	// events only while bytes are pending (edge-triggered, it would
	// report every acknowledgement that frees room). The event's data is
	// the stream's id and the side (loopKey). An idle stream holds two
	// fdConns: they are kept to 80 bytes.
	epfd    int32 // 0: not registered
	events  uint32
	side    uint8
	finWait bool // CloseWrite asked for while bytes were pending
}

// event is the socket's registration in its loop's epoll set.
func (c *fdConn) event() *unix.EpollEvent {
	key := c.ls.id<<1 | uint64(c.side)
	return &unix.EpollEvent{Events: c.events, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
}

// watchOut adds or removes EPOLLOUT from the socket's events. Under mu.
func (c *fdConn) watchOut(on bool) {
	if c.epfd <= 0 || c.fd < 0 {
		return
	}
	if on {
		c.events |= unix.EPOLLOUT
	} else {
		c.events &^= unix.EPOLLOUT
	}
	unix.EpollCtl(int(c.epfd), unix.EPOLL_CTL_MOD, c.fd, c.event())
}

// dupFD returns a descriptor of Guard's own for c's socket (a duplicate:
// the same socket, O_NONBLOCK included, since that is the open file's);
// closing c afterwards sends nothing and gives its poll descriptor back to
// the runtime.
func dupFD(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return nfd, nil
}

var errFDClosed = net.ErrClosed

// Write takes b whole: what the kernel does not accept now is kept and
// written when the socket is writable (flush). It fails only once the side
// is broken or closed.
func (c *fdConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, errFDClosed
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) > 0 {
		c.pending = append(c.pending, b...)
		return len(b), nil
	}
	n, err := writeFD(c.fd, b)
	if err != nil {
		c.err = err
		return n, err
	}
	if n < len(b) {
		c.pending = append(getBuf()[:0], b[n:]...)
		c.watchOut(true) // reported at once if there is room already
	}
	return len(b), nil
}

// writeFD writes b to fd without blocking: the bytes taken, and an error
// other than "not now".
func writeFD(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(fd, b[done:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return done, nil
		case err != nil:
			return done, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)}
		}
		done += n
	}
	return done, nil
}

// flush writes what is pending; it reports whether nothing is left, and
// the error that broke the side.
func (c *fdConn) flush() (empty bool, err error) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return true, nil
	}
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return true, nil
	}
	n, err := writeFD(c.fd, c.pending)
	if err != nil {
		c.err = err
		c.dropPending()
		c.mu.Unlock()
		return true, err
	}
	rest := copy(c.pending, c.pending[n:])
	c.pending = c.pending[:rest]
	if rest > 0 {
		c.mu.Unlock()
		return false, nil
	}
	c.dropPending()
	c.watchOut(false)
	if c.finWait {
		c.finWait = false
		unix.Shutdown(c.fd, unix.SHUT_WR)
	}
	c.mu.Unlock()
	return true, nil
}

func (c *fdConn) dropPending() {
	if cap(c.pending) == bufSize {
		putBuf(c.pending[:bufSize])
	}
	c.pending = nil
}

// hasPending reports whether bytes wait for the socket.
func (c *fdConn) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}

// read reads into b without blocking: errWouldBlock when there is nothing
// yet, io.EOF at the peer's FIN.
func (c *fdConn) read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, errFDClosed
	}
	for {
		n, err := unix.Read(c.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// errWouldBlock: nothing to read now; the loop waits for the socket.
var errWouldBlock = errors.New("would block")

// SetWriteDeadline does nothing: a write never blocks (Write); a side
// that does not read is bounded by half_close, which closes it.
func (c *fdConn) SetWriteDeadline(time.Time) error { return nil }

// CloseWrite sends the FIN after whatever is pending.
func (c *fdConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return errFDClosed
	}
	if len(c.pending) > 0 {
		c.finWait = true
		return nil
	}
	return unix.Shutdown(c.fd, unix.SHUT_WR)
}

// closeFD closes the socket, first running set on its descriptor.
func (c *fdConn) closeFD(set func(fd int)) {
	c.mu.Lock()
	if c.fd < 0 {
		c.mu.Unlock()
		return
	}
	if set != nil {
		set(c.fd)
	}
	unix.Close(c.fd)
	c.fd = -1
	c.dropPending()
	c.mu.Unlock()
	if c.ls != nil {
		c.ls.onClose()
	}
}

// closeWithin closes the socket so that the kernel keeps it no longer than
// d (sockclose_linux.go).
func (c *fdConn) closeWithin(d time.Duration) {
	c.closeFD(func(fd int) { boundUserTimeout(fd, d) })
}

// closeAtExpiry closes the socket at the end of a lingering close, aborted
// if the peer has not acknowledged everything.
func (c *fdConn) closeAtExpiry() {
	c.closeFD(func(fd int) {
		if unackedFD(fd) > 0 {
			abortOnClose(fd)
		}
	})
}

// reset closes the socket with an RST.
func (c *fdConn) reset() { c.closeFD(abortOnClose) }

// keepalive writes a whitespace keepalive unless bytes are pending (they
// probe the peer as well).
func (c *fdConn) keepalive(time.Time) error {
	if c.hasPending() {
		return nil
	}
	_, err := c.Write(keepalive)
	return err
}
