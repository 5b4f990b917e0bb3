package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/guard-xmpp/guard/xmpp"
)

// Retries. A backend connection that fails before the backend's stream
// header (refused, reset, closed, a failed TLS handshake or write) has
// consumed nothing of the client's stream but its header, which Guard still
// holds. A failed dial moves on to the next untried node at once, without
// counting as a retry: a node that is down costs its clients nothing.
// Beyond that the stream is tried again, up to the backend's Retries times,
// on another usable node where the pool has one (else the same node), after
// a short jittered backoff. The session keeps its admission slot meanwhile,
// so retries never take the backend above its cap, and the backoff keeps a
// storm of retries from piling onto a backend that sheds load. A backend
// that stalls or sends garbage is not retried: it answered, badly.

// attempt is what one try at a backend connection came to.
type attempt struct {
	ev       policy.Event // "" on success; the client's event otherwise
	retry    bool         // worth another try
	failover bool         // the dial failed: the next node may be tried at once
	hard     bool         // counts toward the node's ejection (see nodeFailed)
	err      error        // for the log
}

// retryBackoff returns the pause before retry number n (1 for the first):
// 25 ms doubled per retry, at most 400 ms, jittered by ±50%.
func retryBackoff(n int) time.Duration {
	base := min(25*time.Millisecond<<(n-1), 400*time.Millisecond)
	return base/2 + rand.N(base)
}

// connected is an open backend connection: its socket, and, on a framed
// stream, the pipe holding the backend's stream header and the scan of it.
type connected struct {
	conn *sideConn
	bp   *pipe
	bs   scan
}

// connectBackend opens the client's stream on a node of the session's
// backend: the dial, and on a framed stream (cp not nil) the client's header
// replayed (cs.fwd bytes of cp) and the backend's header read within
// reply_timeout. It retries as described above and returns the connection,
// or the event the client is refused with.
func (ss *session) connectBackend(ctx context.Context, b Backend, cp *pipe, cs scan) (connected, policy.Event) {
	var tried []*nodeState
	var last attempt
	retries, requeues := 0, 0
	for {
		if ctx.Err() != nil {
			return connected{}, policy.Shutdown // killed
		}
		var n *nodeState
		var full bool
		if last.ev == "" || last.failover {
			// The first try; or a dial failed, and the next node is tried
			// at once: a node that is down costs its clients nothing.
			n, full = ss.bst.pick(tried) // reserves a stream on n
		}
		if n == nil && last.ev != "" {
			if retries >= b.Retries {
				return connected{}, last.ev
			}
			retries++
			ss.l.metrics.retried(b.Name, eventReason(last.ev))
			t := time.NewTimer(retryBackoff(retries))
			select {
			case <-ctx.Done():
				t.Stop()
				return connected{}, policy.Shutdown
			case <-t.C:
			}
			if n, full = ss.bst.pick(tried); n == nil {
				n, full = ss.bst.pick(nil) // no other node: the same again
			}
		}
		if n == nil {
			return connected{}, noNode(last, full)
		}
		tried = append(tried, n)
		b.Address = n.addr
		start := time.Now()
		n.opening.Add(1)
		c, a := ss.tryNode(ctx, b, cp, cs)
		n.opening.Add(-1)
		if a.ev == "" {
			n.succeeded()
			ss.node = n
			ss.bst.learnOpen(n, true, time.Since(start), ss.l.log)
			return c, ""
		}
		n.open.Add(-1)
		if a.ev == policy.Shutdown {
			return connected{}, a.ev
		}
		ss.bst.nodeFailed(n, a.hard, ss.l.log)
		learning := ss.bst.learnOpen(n, false, 0, ss.l.log)
		if learning && a.retry && !a.hard && requeues < maxRequeues {
			// Guard's probe of the node's capacity failed, not the
			// client's stream: back to the queue, no retry used.
			requeues++
			ss.log.Debug("backend node above its learned cap; queued again", "backend", b.Name, "node", n.addr, "event", a.ev, "error", a.err)
			if ev := ss.requeue(ctx); ev != "" {
				return connected{}, ev
			}
			tried, last = tried[:0], attempt{}
			continue
		}
		ss.log.Warn("backend connection failed", "backend", b.Name, "node", n.addr, "event", a.ev, "error", a.err, "retries", retries)
		if !a.retry {
			return connected{}, a.ev
		}
		last = a
	}
}

// noNode is the event of a stream for which no node is left to try, after
// the attempt last; full: every usable node is at its own cap.
func noNode(last attempt, full bool) policy.Event {
	switch {
	case last.ev != "":
		return last.ev
	case full:
		// Every usable node is at its own cap: overload, which the
		// policy may redirect to another cluster.
		return policy.PoolUnavailable
	default:
		// Every node is down (health checks): a backend failure.
		return policy.BackendRefused
	}
}

// tryNode makes one attempt at node b.Address.
func (ss *session) tryNode(ctx context.Context, b Backend, cp *pipe, cs scan) (connected, attempt) {
	c, err := ss.dialBackend(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return connected{}, attempt{ev: policy.Shutdown} // killed: not the node's fault
		}
		if errors.Is(err, syscall.ECONNRESET) {
			// Accepted and reset at once: a server shedding load.
			return connected{}, attempt{ev: policy.BackendReset, retry: true, err: err}
		}
		return connected{}, attempt{ev: policy.BackendRefused, retry: true, failover: true, hard: true, err: err}
	}
	if cp == nil {
		return connected{conn: c}, attempt{}
	}
	closeBackend := func() {
		c.tcp.SetLinger(0)
		c.tcp.Close()
	}
	// A kill closes the backend socket: the steps below end at once.
	stopKill := context.AfterFunc(ctx, closeBackend)

	// The client's header (and any whole units after it), replayed; the
	// client's pipe keeps it until the backend has answered.
	c.SetWriteDeadline(time.Now().Add(b.ReplyTimeout))
	_, err = c.Write(cp.units(cs.fwd))
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		stopKill()
		closeBackend()
		if ctx.Err() != nil {
			return connected{}, attempt{ev: policy.Shutdown}
		}
		return connected{}, attempt{ev: policy.BackendReset, retry: true, err: err}
	}

	// The backend's header within reply_timeout.
	bp, err := newSidePipe(c, xmpp.NewTokenizer(ss.st.cfg.MaxStanzaSize))
	if err != nil {
		stopKill()
		closeBackend()
		return connected{}, attempt{ev: policy.BackendReset, retry: true, err: err}
	}
	bp.rewrite = ss.front.terminatesTLS() || ss.st.cfg.Advertise // the features: <starttls/>, the stream limits
	bp.setReadDeadline(time.Now().Add(b.ReplyTimeout))
	_, bs, bev, btext := readHeader(bp)
	bp.setReadDeadline(time.Time{})
	if bev != "" {
		bp.discardAll()
		stopKill()
		closeBackend()
		if ctx.Err() != nil || bev == closedEvent {
			return connected{}, attempt{ev: policy.Shutdown}
		}
		a := attempt{ev: backendHeaderEvent(bev), err: errors.New(string(bev) + ": " + btext)}
		switch bev {
		case clientGoneEvent, eofEvent:
			// Reset or closed before its header: a node shedding load
			// (Openfire over its capacity) or restarting. Worth a retry;
			// not a sign the node is dead.
			a.retry = true
		default:
			// Stalled, or not XMPP: the node answers, badly.
			a.hard = true
		}
		return connected{}, a
	}
	if !stopKill() {
		// The kill came as the header did: the backend socket is closed.
		bp.discardAll()
		return connected{}, attempt{ev: policy.Shutdown}
	}
	return connected{conn: c, bp: bp, bs: bs}, attempt{}
}

// dialBackend connects to the backend within its connect timeout, with
// TLS over the socket when the backend is configured for it (the TLS
// handshake counts toward the same timeout).
func (ss *session) dialBackend(ctx context.Context, b Backend) (*sideConn, error) {
	c, err := dialTCP(ctx, b)
	if err != nil {
		return nil, err
	}
	if b.ProxyProtocol != 0 {
		// The client's address for the backend (Prosody's mod_net_proxy,
		// ejabberd's use_proxy_protocol), before any TLS.
		if err := ss.sendProxyHeader(c, b); err != nil {
			c.Close()
			return nil, fmt.Errorf("PROXY header: %w", err)
		}
	}
	sc := newSideConn(c)
	if b.TLS == nil {
		return sc, nil
	}
	tc := sc.startClientTLS(b.TLS)
	c.SetDeadline(time.Now().Add(b.ConnectTimeout))
	err = tc.HandshakeContext(ctx)
	c.SetDeadline(time.Time{})
	if err != nil {
		c.SetLinger(0)
		c.Close()
		return nil, fmt.Errorf("TLS to the backend: %w", err)
	}
	return sc, nil
}

// sendProxyHeader writes a PROXY protocol header of the backend's version
// with the client's address as the source.
func (ss *session) sendProxyHeader(c *net.TCPConn, b Backend) error {
	var dst netip.AddrPort
	if ss.local != nil {
		dst = *ss.local
	}
	if !dst.IsValid() {
		dst = addrPort(ss.client.LocalAddr())
	}
	h := proxyproto.Header{Command: proxyproto.Proxy, Source: ss.remote, Dest: dst}
	var buf []byte
	if b.ProxyProtocol == 1 {
		buf = h.AppendV1(nil)
	} else {
		buf = h.AppendV2(nil)
	}
	c.SetWriteDeadline(time.Now().Add(b.ConnectTimeout))
	_, err := c.Write(buf)
	c.SetWriteDeadline(time.Time{})
	return err
}

func dialTCP(ctx context.Context, b Backend) (*net.TCPConn, error) {
	// Go's kernel keepalive stays on toward the backend (probes after 15 s
	// of quiet): it finds a backend host that vanished under an idle stream.
	d := net.Dialer{Timeout: b.ConnectTimeout, Control: tuneBackend}
	c, err := d.DialContext(ctx, "tcp", b.Address)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
