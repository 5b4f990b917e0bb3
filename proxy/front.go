package proxy

import (
	"net"
	"net/netip"
	"time"
)

// This file is the seam between a session and its two sides: peerConn is
// what the relay and the refusals need of either side's connection, and
// front is the client side as a whole, the transport a client's stream
// comes in on. The TCP front (the socket, or TLS over it: handshake.go) is
// the one today; a WebSocket front end, one message per unit with <open/>
// and <close/> for the stream's header and end, plugs in beside it without
// branching the session or the relay.

// peerConn is one side's connection as the relay uses it: whole units
// written, Guard's half ended, and the socket closed without outliving
// half_close.
type peerConn interface {
	Write(b []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	// CloseWrite ends Guard's half: TLS's close_notify if any, the FIN.
	CloseWrite() error
	// closeWithin closes the connection so that the kernel keeps it no
	// longer than d; closeAtExpiry closes it at the end of a lingering
	// close, aborted if the peer has not acknowledged everything; reset
	// closes it with an RST.
	closeWithin(d time.Duration)
	closeAtExpiry()
	reset()
	// keepalive probes a quiet peer: a whitespace keepalive, or the
	// transport's own (a WebSocket Ping). An error wrapping ETIMEDOUT
	// means the peer is gone (connection-timeout).
	keepalive(now time.Time) error
}

// front is the client side of a session.
type front interface {
	peerConn
	// handshake takes the connection to the client's stream header, whole,
	// within the handshake timeout (the transport's own handshake, TLS,
	// included). It returns the pipe of the client's units and the scan
	// holding the header; the pipe, once made, even with an error.
	handshake(ss *session, cfg *ListenerConfig) (*pipe, scan, error)
	// lingerRead reads and discards the client's input until its FIN or an
	// error (true), or until d has passed (false): the lingering close.
	lingerRead(d time.Duration) bool
	// terminatesTLS reports whether Guard holds the client's TLS, so that
	// the backend's <starttls/> is removed from the features it forwards.
	terminatesTLS() bool
	// admitsLater reports whether the client's address comes with the
	// handshake (a trusted reverse proxy's header), so that the
	// per-address limits wait for it instead of applying at accept.
	admitsLater(cfg *ListenerConfig, remote netip.AddrPort) bool
}

// newFront returns the front of a client accepted on c.
func newFront(cfg *ListenerConfig, c *net.TCPConn) front {
	if cfg.WebSocket != nil {
		return wsFront{newSideConn(c)}
	}
	return tcpFront{newSideConn(c)}
}

// tcpFront is a client on a TCP socket, with TLS over it where the
// listener terminates TLS.
type tcpFront struct{ *sideConn }

func (f tcpFront) handshake(ss *session, cfg *ListenerConfig) (*pipe, scan, error) {
	return ss.handshakeTCP(cfg, f.sideConn)
}

func (f tcpFront) terminatesTLS() bool { return f.tls() != nil }

func (f tcpFront) admitsLater(*ListenerConfig, netip.AddrPort) bool { return false }
