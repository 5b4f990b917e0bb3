package proxy

import (
	"crypto/tls"
	"net"
)

// acmeTLSALPN is the ALPN protocol of ACME's tls-alpn-01 validation (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// clientConn is a client's connection: the TCP socket, and, once Guard has
// terminated TLS on it, the TLS connection over that socket. Bytes are read
// and written through Conn; socket options, waiting and half-closing go to
// the socket.
type clientConn struct {
	net.Conn              // the socket itself, or *tls.Conn over it
	tcp      *net.TCPConn // the socket
}

func newClientConn(c *net.TCPConn) *clientConn { return &clientConn{Conn: c, tcp: c} }

// startTLS puts a TLS server connection over the socket. The handshake
// happens on first use or on handshake.
func (c *clientConn) startTLS(cfg *tls.Config) *tls.Conn {
	tc := tls.Server(c.tcp, cfg)
	c.Conn = tc
	return tc
}

// tls returns the TLS connection, or nil.
func (c *clientConn) tls() *tls.Conn {
	tc, _ := c.Conn.(*tls.Conn)
	return tc
}

// CloseWrite ends Guard's half of the connection: TLS's close_notify, then
// the TCP FIN (tls.Conn.CloseWrite alone sends only the alert).
func (c *clientConn) CloseWrite() error {
	if tc := c.tls(); tc != nil {
		tc.CloseWrite()
	}
	return c.tcp.CloseWrite()
}
