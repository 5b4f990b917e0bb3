package proxy

import (
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the socket options Guard sets on Linux: TCP_LINGER2,
// TCP_USER_TIMEOUT and keepalive off on client sockets, and those of
// backend sockets.

// finWait2Lifetime bounds how long the kernel keeps a socket that Guard has
// closed in FIN_WAIT2 (TCP_LINGER2). Guard closes a socket before the peer's FIN
// only after the peer already had half_close to finish, so it gets no more.
const finWait2Lifetime = time.Second

// tuneClient sets the per-socket options for a client connection:
// TCP_USER_TIMEOUT so that data a vanished client never acknowledges fails the
// connection on Guard's clock, and TCP_LINGER2 so that no socket Guard closed
// lingers in FIN_WAIT2 for the system default of a minute.
//
// It also turns off the TCP keepalive Go enables on accepted sockets (every
// 15 s). With TCP_USER_TIMEOUT set, Linux ends a connection as soon as one
// keepalive probe is outstanding and the peer has been silent for the user
// timeout: no retries. A live client that runs keepalives of its own (Go
// clients do, every 15 s) sends probes that cross Guard's, and its answer to
// Guard's probe can be dropped (out-of-window ACKs are rate limited), so
// live, idle clients were cut 30 to 45 s into their streams. Guard's probe is
// the whitespace keepalive: data, retransmitted until TCP_USER_TIMEOUT.
//
// On a listener Guard opened (all but Serve's), Go's keepalive was never
// turned on and TCP_LINGER2 comes from the listening socket (tuneListener),
// so all (inherited false) leaves one system call per client, or none: the
// opening of 9,000 streams made fourteen setsockopt calls per stream where
// four do.
func tuneClient(c *net.TCPConn, userTimeout time.Duration, all bool) error {
	if all {
		if err := c.SetKeepAlive(false); err != nil {
			return err
		}
	}
	if !all && userTimeout <= 0 {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if all {
			serr = setLinger2(fd)
		}
		if serr == nil && userTimeout > 0 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// tuneListener is the Control of the listening sockets Guard opens: the
// sockets accept returns inherit TCP_LINGER2.
func tuneListener(network, address string, c syscall.RawConn) error {
	return controlLinger2(c)
}

// tuneBackend is the Control of the backend dialer: TCP_LINGER2 is set
// before the connect.
func tuneBackend(network, address string, c syscall.RawConn) error {
	return controlLinger2(c)
}

func controlLinger2(c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = setLinger2(fd) }); err != nil {
		return err
	}
	return serr
}

func setLinger2(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_LINGER2, int(finWait2Lifetime/time.Second))
}

// readWaiter blocks until a socket has input (data, a FIN or an error) without
// holding a buffer: an idle stream costs Guard no copy buffer, only the
// goroutine that waits. It peeks one byte with MSG_PEEK; the byte stays in the
// kernel for the Read that follows.
//
// A peek only answers "not yet": once the poller reports the socket readable,
// wait returns without peeking again and the Read that follows finds what is
// there, data, EOF or the socket's error (one system call per wake-up saved).
// A stale report (input already consumed) makes that Read wait in the poller
// until input comes or its deadline passes, which the relay sets no later
// than the moment to park.
type readWaiter struct {
	rc     syscall.RawConn
	fn     func(fd uintptr) bool // w.ready, bound once so that waiting does not allocate
	peek   [1]byte
	err    syscall.Errno // a socket error the peek consumed
	waited bool          // the peek said "not yet" and the poller was asked
}

func newReadWaiter(c *net.TCPConn) (*readWaiter, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &readWaiter{rc: rc}
	w.fn = w.ready
	return w, nil
}

// wait returns nil once the socket is readable, or the error of the wait
// (a deadline, the socket being closed) or of the socket (ECONNRESET,
// ETIMEDOUT from TCP_USER_TIMEOUT).
func (w *readWaiter) wait() error {
	w.waited = false
	if err := w.rc.Read(w.fn); err != nil {
		return err
	}
	if w.err != 0 {
		// The kernel hands a pending socket error to one receive call only,
		// and the peek was that call: the Read after it would see a plain
		// EOF. Report the error here instead.
		e := w.err
		w.err = 0
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("recvfrom", e)}
	}
	return nil
}

func (w *readWaiter) ready(fd uintptr) bool {
	if w.waited {
		return true // the poller says readable: the Read will tell what
	}
	_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case unix.EAGAIN:
		w.waited = true
		return false // nothing yet: let the poller wait
	case unix.EINTR:
		return false
	case 0:
		return true // a byte or EOF, for the Read that follows
	default:
		w.err = errno
		return true
	}
}

// gone reports, without waiting, whether the peer has closed or reset the
// connection: a peek that finds EOF or an error. Pending data means alive.
func (w *readWaiter) gone() bool {
	var dead bool
	w.rc.Read(func(fd uintptr) bool {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		dead = (errno == 0 && n == 0) || (errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR)
		return true
	})
	return dead
}
