package proxy

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Closing a socket hands it to the kernel, which keeps it until the peer
// acknowledges what is left in its send queue (data and the FIN): to a peer
// that vanished, it retransmits for TCP_USER_TIMEOUT or, without one, for
// many minutes (FIN_WAIT1, LAST_ACK). Guard bounds that by half_close:
//
//   - closeWithin, on the ordinary closes: TCP_USER_TIMEOUT is lowered to
//     half_close first, so whatever is unacknowledged fails on that clock;
//   - closeAtExpiry, when a lingering close ran out (half_close is over):
//     a socket with anything unacknowledged is aborted (SO_LINGER 0, an
//     RST); one whose queue is empty is closed with a FIN as usual.

// closeWithin closes c so that the kernel keeps it no longer than d after
// the close, whatever the peer does (FIN_WAIT2 is bounded by TCP_LINGER2).
func closeWithin(c *net.TCPConn, d time.Duration) {
	if d > 0 {
		if rc, err := c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { boundUserTimeout(int(fd), d) })
		}
	}
	c.Close()
}

// closeAtExpiry closes c at the end of a lingering close: aborted if the
// peer has not acknowledged everything Guard sent.
func closeAtExpiry(c *net.TCPConn) {
	if unacked(c) > 0 {
		c.SetLinger(0)
	}
	c.Close()
}

// unacked returns the bytes of c's send queue the peer has not acknowledged
// (SIOCOUTQ; a FIN counts as one), or 0 if the socket cannot tell.
func unacked(c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n = unackedFD(int(fd)) })
	return n
}

// The same steps on a descriptor, for the sockets of the event loops
// (fdConn) as for those of net.TCPConns.

// boundUserTimeout lowers fd's TCP_USER_TIMEOUT to d (if d > 0), for a
// close that the kernel must not carry on longer than d.
func boundUserTimeout(fd int, d time.Duration) {
	if d > 0 {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, max(int(d/time.Millisecond), 1))
	}
}

// unackedFD is unacked for a descriptor.
func unackedFD(fd int) int {
	if v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
		return v
	}
	return 0
}

// abortOnClose sets SO_LINGER 0: the close that follows sends an RST.
func abortOnClose(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}
