package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/guard-xmpp/guard/policy"
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
	c.SetReadDeadline(time.Now().Add(cfg.Timeouts.Handshake))
	err = cp.wait.wait()
	c.SetReadDeadline(time.Time{})
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		return closed(eventReason(policy.HandshakeTimeout))
	case errors.Is(err, net.ErrClosed):
		return closed(ReasonShutdown)
	default:
		return closed(ReasonClientError)
	}
	ss.mu.Lock()
	ss.headerSeen = true
	ss.mu.Unlock()
	// The same admission and pool as a framed stream; only the answers
	// differ: without XMPP, a refusal is a bare close (endWith).
	var routed bool
	if ss.bk, ss.bst, routed = ss.st.routeFor(""); !routed {
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
	bp, err := newPipe(bc.conn.tcp, nil)
	if err != nil {
		bc.conn.tcp.Close()
		return closed(ReasonBackendError)
	}
	return ss.startRelay(newRelay(ss.front, bc.conn, cp, bp, cfg, ss.l.metrics, &ss.log, "", true), bc.conn)
}
