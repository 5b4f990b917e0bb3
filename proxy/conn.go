package proxy

import (
	"crypto/tls"
	"net"
	"time"
)

// This file is one side's connection: the TCP socket, and TLS over it
// where Guard terminates the client's TLS or speaks TLS to the backend.

// acmeTLSALPN is the ALPN protocol of ACME's tls-alpn-01 validation (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// sideConn is one side of a relayed connection: the TCP socket, and TLS
// over it where Guard terminates the client's TLS or speaks TLS to the
// backend. Bytes are read and written through Conn; socket options, waiting,
// resets and closing go to the socket.
type sideConn struct {
	net.Conn              // the socket itself, or *tls.Conn over it
	tcp      *net.TCPConn // the socket
}

func newSideConn(c *net.TCPConn) *sideConn { return &sideConn{Conn: c, tcp: c} }

// startTLS puts a TLS server connection over the socket. The handshake
// happens on first use or on handshake.
func (c *sideConn) startTLS(cfg *tls.Config) *tls.Conn {
	tc := tls.Server(c.tcp, cfg)
	c.Conn = tc
	return tc
}

// startClientTLS puts a TLS client connection over the socket (toward a
// backend).
func (c *sideConn) startClientTLS(cfg *tls.Config) *tls.Conn {
	tc := tls.Client(c.tcp, cfg)
	c.Conn = tc
	return tc
}

// tls returns the TLS connection, or nil.
func (c *sideConn) tls() *tls.Conn {
	tc, _ := c.Conn.(*tls.Conn)
	return tc
}

// CloseWrite ends Guard's half of the connection: TLS's close_notify, then
// the TCP FIN (tls.Conn.CloseWrite alone sends only the alert).
func (c *sideConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && c.Conn != net.Conn(c.tcp) {
		cw.CloseWrite() // TLS's close_notify; a WebSocket's Close frame (and its TLS's)
	}
	return c.tcp.CloseWrite()
}

// layered reports whether bytes pass through a layer over the socket (TLS,
// a WebSocket) that may hold some it read ahead.
func (c *sideConn) layered() bool { return c.Conn != net.Conn(c.tcp) }

// closeWithin closes the socket so that the kernel keeps it no longer than
// d after the close (see sockclose_linux.go).
func (c *sideConn) closeWithin(d time.Duration) { closeWithin(c.tcp, d) }

// closeAtExpiry closes the socket at the end of a lingering close: aborted
// if the peer has not acknowledged everything Guard sent.
func (c *sideConn) closeAtExpiry() { closeAtExpiry(c.tcp) }

// keepalive writes a whitespace keepalive, between units.
func (c *sideConn) keepalive(time.Time) error {
	_, err := c.Write(keepalive)
	return err
}

// reset closes the socket with an RST (SO_LINGER 0).
func (c *sideConn) reset() {
	c.tcp.SetLinger(0)
	c.tcp.Close()
}

// lingerRead reads and discards the peer's input until its FIN or an error
// (true), or until d has passed (false).
func (c *sideConn) lingerRead(d time.Duration) bool { return drainUntilFIN(c, d) }
