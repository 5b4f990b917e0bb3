package proxy

import (
	"errors"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/policy"
)

// This file is the relay's clock on the client side: the idle limit and
// the whitespace keepalives that, with TCP_USER_TIMEOUT, find a vanished
// client. Both are the client socket's read deadline, set to whichever is
// due first.

// armClientTimer sets the client's read deadline to the next moment a probe
// or the idle limit is due, counted from the last activity.
func (r *relay) armClientTimer() {
	r.side[sideClient].pipe.setReadDeadline(r.nextClientDeadline())
}

// nextClientDeadline is when the next probe or the idle limit is due; zero:
// never.
func (r *relay) nextClientDeadline() time.Time {
	last := time.Unix(0, r.lastActive.Load())
	var next time.Time
	if p := r.cfg.Timeouts.Probe; p > 0 {
		next = last.Add(p)
		if pr := r.lastProbe.Load(); pr != 0 && time.Unix(0, pr).After(last) {
			next = time.Unix(0, pr).Add(p)
		}
	}
	if i := r.cfg.Timeouts.Idle; i > 0 {
		if t := last.Add(i); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// clientTimer runs when the client's read deadline passes: it sends a probe
// or ends an idle stream. It reports whether the pump goes on.
func (r *relay) clientTimer() bool {
	now := time.Now()
	last := time.Unix(0, r.lastActive.Load())
	if i := r.cfg.Timeouts.Idle; i > 0 && now.Sub(last) >= i {
		r.log.Debug("idle timeout", "idle", i)
		r.on(func(c *closeState) actions { return c.endBoth(policy.IdleTimeout, "") })
		return r.drainClient()
	}
	if p := r.cfg.Timeouts.Probe; p > 0 {
		if !now.Before(r.nextClientDeadline()) {
			if err := r.probe(now); err != nil {
				// The transport's own probe found the client gone (a
				// WebSocket Ping unanswered).
				r.ioError(clientToBackend, true, err)
				return false
			}
		}
	}
	r.armClientTimer()
	return true
}

// probe sends the client a keepalive, between units: whitespace, or the
// front's own (a WebSocket Ping). The kernel's TCP_USER_TIMEOUT turns a
// keepalive that is never acknowledged into ETIMEDOUT on the socket, which
// ends the stream with connection-timeout (RFC 6120 4.9.3.4 and 4.6.1). It
// returns an error only for a client the front itself found gone.
func (r *relay) probe(now time.Time) error {
	r.lastProbe.Store(now.UnixNano())
	c := &r.side[sideClient]
	if !c.wmu.TryLock() {
		return nil // a write to the client is under way: no need to probe
	}
	defer c.wmu.Unlock()
	r.mu.Lock()
	ok := r.core.mayProbe()
	r.mu.Unlock()
	if !ok {
		return nil
	}
	c.conn.SetWriteDeadline(now.Add(r.cfg.Timeouts.HalfClose))
	err := c.conn.keepalive(now)
	c.conn.SetWriteDeadline(time.Time{})
	r.metrics.probed()
	if errors.Is(err, syscall.ETIMEDOUT) {
		return err
	}
	if err != nil {
		r.log.Debug("keepalive failed", "error", err)
	}
	return nil
}

var keepalive = []byte(" ")
