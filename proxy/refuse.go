package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is how Guard ends a connection before relaying without a
// reset: a refusal (its own stream header if the client has none, the
// stream error, </stream:stream>, a FIN), a quiet close where it cannot
// speak XMPP, and the lingering close after either, which reads the
// client's input until its FIN or half_close so that the close does not
// turn into a reset that could lose the error.

// refuse ends a connection before relaying: Guard opens the stream toward
// the client with its own header (from = the domain the client asked for)
// unless it has one, sends the stream error for ev and </stream:stream>,
// half-closes, and lingers. It returns the reason.
func (ss *session) refuse(cfg *ListenerConfig, ev policy.Event, text string) string {
	c := ss.front
	se := cfg.Policy.Decide(ev, policy.Context{TLSPending: ss.tlsPending})
	if se.Text == "" {
		se.Text = text // the parser's detail, where policy has no text
	}
	var frame []byte
	if !ss.streamOpen {
		frame = ss.ownHeader()
	}
	frame = se.AppendTo(frame)
	c.SetWriteDeadline(time.Now().Add(cfg.Timeouts.HalfClose))
	if _, err := c.Write(frame); err != nil {
		ss.closeClient()
		return eventReason(ev)
	}
	c.CloseWrite()
	ss.lingerClose(cfg)
	return eventReason(ev)
}

// closeQuietly ends a connection Guard cannot speak XMPP on (raw, or before
// Direct TLS) without a reset: a FIN, then the lingering close.
func (ss *session) closeQuietly(cfg *ListenerConfig, reason string) string {
	ss.front.CloseWrite() // no TLS on it yet, or passed through: the FIN
	ss.lingerClose(cfg)
	return reason
}

// lingerClose reads and discards the client's input until EOF, an error,
// or half_close, then closes the client's socket: aborted if half_close ran
// out with Guard's bytes still unacknowledged (a vanished client), so that
// no socket outlives half_close (see closeWithin).
func (ss *session) lingerClose(cfg *ListenerConfig) {
	if ss.front.lingerRead(cfg.Timeouts.HalfClose) {
		ss.closeClient()
		return
	}
	ss.front.closeAtExpiry()
}

// drainUntilFIN reads and discards c's input until EOF or an error (true),
// or until d has passed (false).
func drainUntilFIN(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := getBuf()
	defer putBuf(buf)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// closeBackendStream ends an open backend stream that will not be relayed
// (the client left as it was being opened): </stream:stream> and a FIN, then
// the backend's input dropped until its FIN, so that the stream's slot is
// freed only once the backend has closed its side; a backend that does not
// finish within half_close is reset, as the relay does.
func closeBackendStream(c *sideConn, hc time.Duration) {
	c.SetWriteDeadline(time.Now().Add(hc))
	c.Write(xmpp.StreamEnd)
	c.CloseWrite()
	if !drainUntilFIN(c, hc) {
		c.tcp.SetLinger(0)
	}
	closeWithin(c.tcp, hc)
}

// closeClient closes the client's socket, bounded by half_close in the
// kernel.
func (ss *session) closeClient() {
	var hc time.Duration
	if ss.st != nil {
		hc = ss.st.cfg.Timeouts.HalfClose
	}
	ss.front.closeWithin(hc)
}
