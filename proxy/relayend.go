package proxy

import (
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file carries out the close state machine's actions on the sockets
// (relaycore.go decides them), and holds the relay's two verbs for ending a
// stream from outside: endStream (a stream error, </stream:stream>, FIN)
// and closeNow.

// on runs an event of the close state machine and carries out its actions.
func (r *relay) on(event func(*closeState) actions) {
	r.mu.Lock()
	a := event(&r.core)
	r.armLocked()
	r.mu.Unlock()
	r.do(a)
}

// armLocked starts the half_close timer once the close has started.
func (r *relay) armLocked() {
	if r.core.closing && r.timer == nil && !r.core.closed {
		r.timer = time.AfterFunc(r.cfg.Timeouts.HalfClose, r.halfCloseExpired)
	}
}

// do carries out actions in order.
func (r *relay) do(a actions) {
	for _, x := range a.all() {
		switch x.kind {
		case actEndClient:
			r.endClient(x.ev, x.text)
		case actFINClient:
			r.finClient()
		case actStreamEndClient:
			r.streamEndClient()
		case actEndBackend:
			r.endBackend()
		case actCloseClient:
			r.closeClient()
		case actResetBackend:
			r.resetBackend()
		case actCloseAll:
			r.closeAll(x.reason, x.reset, x.expiry)
		case actCloseIfFIN:
			r.mu.Lock()
			both := r.core.bothFIN()
			r.mu.Unlock()
			if both {
				r.closeAll("", false, false)
			}
		}
	}
}

// endStream ends the stream from outside, because Guard is draining or
// shutting down: the client hears ev's stream error (system-shutdown, or
// the configured redirect); what it had sent still reaches the backend,
// which gets a clean end at the client's FIN; half_close bounds the rest
// (closeState.drain).
func (r *relay) endStream(ev policy.Event) {
	r.on(func(c *closeState) actions { return c.drain(ev) })
}

// closeNow closes both sockets at once, the backend's with a reset.
func (r *relay) closeNow() { r.closeAll(ReasonShutdown, true, false) }

func (r *relay) halfCloseExpired() {
	r.mu.Lock()
	r.log.Debug("half_close expired", "client_fin", r.core.peer[sideClient].fin, "backend_fin", r.core.peer[sideBackend].fin)
	a := r.core.expired()
	r.mu.Unlock()
	r.do(a)
}

// endClient sends the client the stream error for ev (opening the stream
// first if the client has not seen a header) and a FIN.
func (r *relay) endClient(ev policy.Event, text string) {
	se := r.cfg.Policy.Decide(ev, policy.Context{})
	if se.Text == "" {
		se.Text = text // the parser's detail, where policy has no text
	}
	c := &r.side[sideClient]
	r.mu.Lock()
	over := r.core.peer[sideClient].done || r.core.closed
	r.mu.Unlock()
	if over {
		return
	}
	// A unit being forwarded to a client that does not read holds wmu:
	// bound that write, so this end (idle, drain, a fault) cannot hang.
	c.conn.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	r.mu.Lock()
	frame, write := r.core.lastToClient(ev, se)
	r.mu.Unlock()
	if !write {
		return
	}
	c.conn.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
	if len(frame) > 0 {
		c.conn.Write(frame)
	}
	c.conn.CloseWrite()
	c.conn.SetWriteDeadline(time.Time{})
}

// finClient passes the backend's clean FIN on to the client.
func (r *relay) finClient() {
	c := &r.side[sideClient]
	c.wmu.Lock()
	defer c.wmu.Unlock()
	r.mu.Lock()
	fin := r.core.finToClient()
	r.mu.Unlock()
	if fin {
		c.conn.CloseWrite()
	}
}

// streamEndClient writes </stream:stream> and a FIN to a client still owed
// them when half_close runs out: Guard, the client's peer, closes the stream
// itself (RFC 6120 4.4), at a unit boundary. The write is bounded tightly:
// a client that does not read by now is not waited on.
func (r *relay) streamEndClient() {
	c := &r.side[sideClient]
	r.mu.Lock()
	owed := r.core.streamEndOwed()
	r.mu.Unlock()
	if !owed {
		return
	}
	// The deadline also ends a unit's write stuck on a client that does
	// not read, which holds wmu.
	c.conn.SetWriteDeadline(time.Now().Add(closeTagWrite))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	r.mu.Lock()
	frame, write := r.core.streamEndToClient()
	r.mu.Unlock()
	if !write {
		return
	}
	c.conn.SetWriteDeadline(time.Now().Add(closeTagWrite))
	c.conn.Write(frame)
	c.conn.CloseWrite()
}

// closeTagWrite bounds the write of Guard's own </stream:stream> when
// half_close is over.
const closeTagWrite = 100 * time.Millisecond

// endBackend completes the backend's stream with </stream:stream> and a FIN,
// at a unit boundary.
func (r *relay) endBackend() {
	b := &r.side[sideBackend]
	b.wmu.Lock()
	defer b.wmu.Unlock()
	r.mu.Lock()
	streamEnd, write := r.core.lastToBackend()
	r.armLocked()
	r.mu.Unlock()
	if !write {
		return
	}
	if streamEnd {
		b.conn.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
		b.conn.Write(xmpp.StreamEnd)
		b.conn.SetWriteDeadline(time.Time{})
	}
	b.conn.CloseWrite()
}

// closeClient closes the socket of a client that is gone, bounded by
// half_close in the kernel; a parked client pump wakes to the closed socket
// and ends.
func (r *relay) closeClient() {
	r.mu.Lock()
	r.core.gone(sideClient)
	r.mu.Unlock()
	r.side[sideClient].conn.closeWithin(r.cfg.Timeouts.HalfClose)
	r.side[sideClient].pipe.unpark()
}

// resetBackend resets and closes the socket of a backend that broke.
func (r *relay) resetBackend() {
	r.mu.Lock()
	r.core.gone(sideBackend)
	r.mu.Unlock()
	r.side[sideBackend].conn.reset()
	r.side[sideBackend].pipe.unpark()
}

// closeAll closes both sockets now, with reason unless one is set; reset:
// the backend's with SO_LINGER 0; expiry: half_close ran out.
func (r *relay) closeAll(reason string, reset, expiry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.core.close(reason) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	// The sockets, not TLS over them: tls.Conn.Close would write
	// close_notify, which can block, and this runs under r.mu. Every
	// graceful path has sent close_notify with its CloseWrite already.
	// Neither socket outlives half_close in the kernel (see closeWithin).
	for s := sideClient; s <= sideBackend; s++ {
		switch c := r.side[s].conn; {
		case s == sideBackend && reset:
			c.reset()
		case expiry:
			c.closeAtExpiry()
		default:
			c.closeWithin(r.cfg.Timeouts.HalfClose)
		}
	}
	// A parked pump is not in the poller: the close does not wake it.
	r.side[sideClient].pipe.unpark()
	r.side[sideBackend].pipe.unpark()
}
