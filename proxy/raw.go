package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/tlshello"
)

// This file is the raw mode (TLS passthrough, and the framing benchmarks'
// baseline): Guard waits for the client's first bytes (bounded by the
// handshake timeout), admits and dials as for a framed stream, and passes
// bytes as they come, keeping the close state machine, timeouts and limits.
// Guard cannot speak XMPP on such a connection; every end is a FIN.

// serveRaw runs the phases of a raw connection up to the relay.
func (ss *session) serveRaw(cfg *ListenerConfig) error {
	c := ss.client
	cp, err := newPipe(c, nil)
	if err != nil {
		return closed(ReasonClientError)
	}
	deadline := time.Now().Add(cfg.Timeouts.Handshake)
	c.SetReadDeadline(deadline)
	err = cp.wait.wait()
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return rawWaitError(err)
	}
	// Direct TLS passed through to an s2s backend, or to routes: the
	// ClientHello, read whole, names the domain (SNI) the stream is routed
	// by; it is held until the backend is connected, then goes first.
	var hello int
	if cfg.TLS.Mode == TLSPassthrough && (cfg.Stream == StreamServer || len(cfg.Routes) > 0) {
		if err := ss.readHello(cp, deadline); err != nil {
			return err
		}
		hello = cp.n
	}
	ss.mu.Lock()
	ss.headerSeen = true
	ss.mu.Unlock()
	// The same admission and pool as a framed stream; only the answers
	// differ: without XMPP, a refusal is a bare close (endWith).
	var routed bool
	if ss.bk, ss.bst, routed = ss.st.routeFor(ss.domain); !routed {
		ss.log.Info("no backend for the domain", "domain", ss.domain)
		return refused(policy.HostUnknown, "")
	}
	if err := ss.admit(cp); err != nil {
		return err
	}
	raw := *ss.bk
	raw.TLS = nil // passthrough: the client's TLS goes to the backend as it is
	setup, endSetup := ss.setupPhase()
	bc, ev := ss.connectBackend(setup, raw, nil, scan{})
	endSetup()
	if ev != "" {
		if ev != policy.Shutdown {
			ss.log.Warn("no backend connection", "backend", raw.Name, "event", ev)
		}
		return refused(ev, "")
	}
	if hello > 0 {
		bc.conn.SetWriteDeadline(time.Now().Add(cfg.Timeouts.Handshake))
		_, err := bc.conn.Write(cp.units(hello))
		bc.conn.SetWriteDeadline(time.Time{})
		cp.consume(hello)
		if err != nil {
			bc.conn.reset()
			return refused(backendEvent(err), "")
		}
	}
	bp, err := newPipe(bc.conn.tcp, nil)
	if err != nil {
		bc.conn.tcp.Close()
		return closed(ReasonBackendError)
	}
	return ss.startRelay(newRelay(ss.front, bc.conn, cp, bp, cfg, ss.l.metrics, &ss.log, "", true), bc.conn)
}

// rawWaitError is why a raw connection ends whose first bytes did not
// come: err from the wait.
func rawWaitError(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return closed(eventReason(policy.HandshakeTimeout))
	case errors.Is(err, net.ErrClosed):
		return closed(ReasonShutdown)
	default:
		return closed(ReasonClientError)
	}
}

// readHello reads the client's TLS ClientHello, whole, into cp within the
// deadline, and takes the domain the stream is routed by from its server
// name. Bytes that are no ClientHello end the connection with a FIN:
// nothing of them reaches the backend.
func (ss *session) readHello(cp *pipe, deadline time.Time) error {
	cp.setReadDeadline(deadline)
	defer cp.setReadDeadline(time.Time{})
	for {
		if cp.n > 0 {
			h, err := tlshello.Parse(cp.buf[:cp.n])
			if err == nil {
				ss.domain = h.ServerName
				ss.log.to = h.ServerName
				ss.log.Debug("TLS passed through", "sni", h.ServerName, "alpn", h.ALPN)
				return nil
			}
			if err != tlshello.ErrShort {
				ss.log.Info("no TLS ClientHello on a passthrough listener", "error", err)
				return quiet(ReasonTLSFailed)
			}
		}
		if _, err := cp.fill(); err != nil {
			if err == io.EOF {
				return closed(ReasonClientError)
			}
			return rawWaitError(err)
		}
	}
}
