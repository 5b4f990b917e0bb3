package proxy

import (
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
			r.probe(now)
		}
	}
	r.armClientTimer()
	return true
}

// probe sends a whitespace keepalive to the client, between units. The
// kernel's TCP_USER_TIMEOUT turns a keepalive that is never acknowledged
// into ETIMEDOUT on the socket, which ends the stream with
// connection-timeout (RFC 6120 4.9.3.4 and 4.6.1).
func (r *relay) probe(now time.Time) {
	r.lastProbe.Store(now.UnixNano())
	c := &r.side[sideClient]
	if !c.wmu.TryLock() {
		return // a write to the client is under way: no need to probe
	}
	defer c.wmu.Unlock()
	r.mu.Lock()
	ok := r.core.mayProbe()
	r.mu.Unlock()
	if !ok {
		return
	}
	c.conn.SetWriteDeadline(now.Add(r.cfg.Timeouts.HalfClose))
	_, err := c.conn.Write(keepalive)
	c.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		r.log.Debug("keepalive failed", "error", err)
	}
	r.metrics.probed()
}

var keepalive = []byte(" ")
