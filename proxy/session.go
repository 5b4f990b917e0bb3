package proxy

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the life of one client connection: its phases in order
// (serve), and the one place that ends a connection that did not reach the
// relay (endWith) and releases what it held (finish). The phases live in
// handshake.go, admission.go, connect.go; refusals in refuse.go; the relay
// in relay*.go.

// session is one client connection from accept to the close of both sockets.
type session struct {
	srv    *Server
	l      *listener
	client *net.TCPConn // the accepted socket
	front  front        // the client's side: tcpFront, or wsFront on a WebSocket listener
	id     uint64
	log    connLog   // tags every line with the connection
	start  time.Time // when the connection was accepted

	// bk and bst are the backend the client's stream goes to (after its
	// header: routing by domain) and its shared state; node is the pool
	// node the stream was dialed to.
	bk   *Backend
	bst  *backendState
	node *nodeState

	// remote is the client's address: the socket's peer, or the source a
	// trusted load balancer reported in a PROXY protocol header; local is
	// the address it connected to, from that header (nil without one: a
	// session held for hours is kept small).
	remote     netip.AddrPort
	local      *netip.AddrPort
	domain     string         // the to of the client's last stream header: Guard's own header is from it
	peerDomain string         // s2s: the from of the remote server's header, for the per-domain limits
	tlsPending bool           // a TLS listener, before TLS is established
	streamOpen bool           // Guard has sent the client a stream header of its own
	st         *listenerState // the listener's configuration when the client came

	// Released when the session ends: the per-address count and the
	// backend slot.
	releaseAddr, releaseSlot, releaseDomain func()
	// queueDeadline is when the stream's wait for admission ends; a
	// requeued stream keeps the one of its first wait.
	queueDeadline time.Time

	mu         sync.Mutex
	headerSeen bool               // the client has sent its stream header
	relay      *relay             // set once relaying starts
	since      int64              // when relaying started, in Unix nanoseconds
	closed     bool               // Shutdown or Close asked this session to end
	killed     bool               // by closeNow: nothing more is said
	stopWait   context.CancelFunc // ends a wait in the admission queue
	abortSetup context.CancelFunc // ends the backend's dial and header phase (closeNow)
}

// How a phase ends a connection before the relay; endWith carries it out.
type (
	// refusedError: Guard refuses the client with ev's stream error, or,
	// where it cannot speak XMPP (raw, before Direct TLS), with a FIN and
	// a lingering close.
	refusedError struct {
		ev   policy.Event
		text string // the parser's detail, where policy has no text
	}
	// closedError: the connection ends without a word (the client left, a
	// failed TLS handshake, Guard closing): the client's socket is closed.
	closedError struct{ reason string }
	// quietError: the connection ends without XMPP but with what was
	// written (an HTTP error), then a FIN and the lingering close.
	quietError struct{ reason string }
)

func (e *refusedError) Error() string { return "refused: " + string(e.ev) }
func (e *closedError) Error() string  { return "closed: " + e.reason }
func (e *quietError) Error() string   { return "quiet close: " + e.reason }

func refused(ev policy.Event, text string) error { return &refusedError{ev, text} }
func closed(reason string) error                 { return &closedError{reason} }
func quiet(reason string) error                  { return &quietError{reason} }

// run takes the connection through its phases. It returns when relaying
// starts; the relay's goroutines then end the session.
func (ss *session) run() {
	ss.front = newFront(&ss.st.cfg, ss.client)
	if err := ss.serve(&ss.st.cfg); err != nil {
		ss.finish(ss.endWith(&ss.st.cfg, err))
	}
}

// serve runs the phases of the connection up to the relay. It returns nil
// once the relay has started (which calls finish when it ends), or what
// ended the connection.
func (ss *session) serve(cfg *ListenerConfig) error {
	ss.tlsPending = cfg.TLS.Mode == TLSStartTLS || cfg.TLS.Mode == TLSDirect
	// A PROXY protocol header, from a trusted load balancer only: anyone
	// else's bytes go to the tokenizer, where a header is not XMPP.
	if len(cfg.ProxyProtocol.Trusted) > 0 && cfg.ProxyProtocol.Trusted.Contains(ss.remote.Addr()) {
		if err := ss.readProxyHeader(cfg); err != nil {
			return err
		}
	}
	// Per-address limits, at once: a flood from one address costs Guard
	// no more than an accept and a short answer.
	if !ss.front.admitsLater(cfg, ss.remote) {
		if err := ss.admitAddress(); err != nil {
			return err
		}
	}
	if cfg.Raw {
		return ss.serveRaw(cfg)
	}
	return ss.serveXMPP(cfg)
}

// serveXMPP runs the phases of a framed stream: the handshake (TLS, the
// client's header), routing, admission, the backend's stream, the relay.
func (ss *session) serveXMPP(cfg *ListenerConfig) error {
	cp, cs, err := ss.front.handshake(ss, cfg)
	if cp != nil {
		defer func() {
			if !ss.relayStarted() {
				cp.discardAll()
			}
		}()
	}
	if err != nil {
		return err
	}
	var routed bool
	if ss.bk, ss.bst, routed = ss.st.routeFor(ss.domain); !routed {
		ss.log.Info("no backend for the domain", "domain", ss.domain)
		return refused(policy.HostUnknown, "")
	}
	if cfg.Stream == StreamServer {
		if err := ss.admitDomain(); err != nil {
			return err
		}
	}
	// A slot of the backend, in arrival order, within the queue timeout;
	// then the storm pacer.
	if err := ss.admit(cp); err != nil {
		return err
	}
	// A node dialed, the client's header replayed, the backend's header
	// read; retried where that is safe (connect.go).
	setup, endSetup := ss.setupPhase()
	defer endSetup()
	bc, ev := ss.connectBackend(setup, *ss.bk, cp, cs)
	if ev != "" {
		if ev != policy.Shutdown {
			ss.log.Warn("no backend connection", "backend", ss.bk.Name, "event", ev)
		}
		return refused(ev, "")
	}
	cp.consume(cs.fwd)
	endSetup()
	r := newRelay(ss.front, bc.conn, cp, bc.bp, cfg, ss.l.metrics, &ss.log, ss.domain, false)
	if cfg.Stream == StreamServer {
		r.core.peerDomain = ss.peerDomain
		r.watchTLS()
	}
	if err := ss.sendBackendHeader(r, bc); err != nil {
		return err
	}
	return ss.startRelay(r, bc.conn)
}

// sendBackendHeader writes the backend's header (and features) to the
// client: from now on the client's stream is open and errors need no
// header of Guard's. A client that cannot take it gets the backend's
// stream ended cleanly.
func (ss *session) sendBackendHeader(r *relay, bc connected) error {
	c, bp, bs := ss.front, bc.bp, bc.bs
	c.SetWriteDeadline(time.Now().Add(ss.st.cfg.Timeouts.Handshake))
	_, err := c.Write(r.outgoing(bp.units(bs.fwd), bs))
	c.SetWriteDeadline(time.Time{})
	bp.consume(bs.fwd)
	ss.streamOpen = true // the backend's header is the client's now
	if err != nil {
		bp.discardAll()
		ss.closeClient() // first: the backend's clean end may take half_close
		closeBackendStream(bc.conn, ss.st.cfg.Timeouts.HalfClose)
		return closed(ReasonClientError)
	}
	return nil
}

// startRelay hands the connection to r; backend is r's backend
// connection. The relay is published (ss.relay) only once it runs, its
// sockets where it relays them from: an end asked for meanwhile (a drain,
// closeNow) is carried out on the running relay, never on sockets being
// moved to a loop. A stream asked to end while it was being set up is
// ended by the relay as it starts, both sides cleanly; one closed
// (closeNow) is closed at once.
func (ss *session) startRelay(r *relay, backend *sideConn) error {
	onLoop := eligibleForLoop(r, ss.front, backend)
	ss.mu.Lock()
	killed := ss.killed
	ss.mu.Unlock()
	if killed {
		r.side[sideBackend].pipe.discardAll()
		backend.reset()
		return closed(ReasonShutdown)
	}
	ss.log.Debug("relaying", "backend", backend.RemoteAddr().String(), "raw", r.core.raw, "transport", transport(r.cfg), "loop", onLoop)
	moved := onLoop && r.startOnLoop(ss.client, backend.tcp, ss.finish)
	if !moved {
		r.enableParking()
		r.start(ss.finish)
	}
	ss.mu.Lock()
	ss.relay = r
	ss.since = time.Now().UnixNano() // for the status page
	if moved {
		// The sockets are the loop's: the session keeps nothing of the
		// net.TCPConn it closed (an idle stream's memory).
		ss.client, ss.front = nil, nil
	}
	ending, killed := ss.closed, ss.killed
	ss.mu.Unlock()
	switch {
	case killed:
		r.closeNow()
	case ending:
		r.endStream(policy.Shutdown)
	}
	return nil
}

// endWith ends a connection that did not reach the relay, as err says, and
// returns the reason for metrics and the connection log.
func (ss *session) endWith(cfg *ListenerConfig, err error) string {
	switch e := err.(type) {
	case *refusedError:
		if cfg.Raw || (cfg.TLS.Mode == TLSDirect && ss.tlsPending) {
			// No XMPP before TLS, nor on a raw stream: a bare close.
			return ss.closeQuietly(cfg, eventReason(e.ev))
		}
		return ss.refuse(cfg, e.ev, e.text)
	case *closedError:
		ss.closeClient()
		return e.reason
	case *quietError:
		return ss.closeQuietly(cfg, e.reason)
	default:
		ss.log.Warn("connection ended by an unexpected error", "error", err)
		ss.closeClient()
		return ReasonClientError
	}
}

// finish releases what the session holds once its connection has ended
// for reason: the node's count, the backend slot, the per-address count.
func (ss *session) finish(reason string) {
	if ss.node != nil {
		ss.node.open.Add(-1)
	}
	if ss.releaseSlot != nil {
		ss.releaseSlot()
	}
	if ss.releaseAddr != nil {
		ss.releaseAddr()
	}
	if ss.releaseDomain != nil {
		ss.releaseDomain()
	}
	ss.l.metrics.connClosed(reason)
	ss.srv.recent.ended(reason, time.Now())
	ss.logEnd(ss.st.cfg.ConnLog, reason)
	ss.srv.sessionDone(ss)
}

func (ss *session) relayStarted() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.relay != nil
}

// setupPhase returns the context of the backend's dial and header phase,
// which closeNow cancels, and the function that ends the phase
// (idempotent). A session already closed gets a context canceled from the
// start.
func (ss *session) setupPhase() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ss.mu.Lock()
	if ss.closed && ss.relay == nil {
		cancel()
	}
	ss.abortSetup = cancel
	ss.mu.Unlock()
	return ctx, func() {
		ss.mu.Lock()
		ss.abortSetup = nil
		ss.mu.Unlock()
		cancel()
	}
}

// The two verbs for ending a session from outside (Shutdown, Drain, Close).

// closeIfHandshaking closes the connection if the client has not sent its
// stream header: there is no stream to end.
func (ss *session) closeIfHandshaking() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.headerSeen {
		ss.closed = true
		ss.client.Close()
	}
}

// endStream ends the connection's stream: a relayed stream gets the
// shutdown stream error and </stream:stream> (the backend a clean end); a
// stream still being set up gets it as the relay would start, or at once
// from its wait in the queue; a client without a header is closed.
func (ss *session) endStream() {
	ss.mu.Lock()
	r := ss.relay
	ss.closed = true
	if r == nil && !ss.headerSeen {
		ss.client.Close()
	}
	if ss.stopWait != nil {
		ss.stopWait()
	}
	ss.mu.Unlock()
	if r != nil {
		r.endStream(policy.Shutdown)
	}
}

// closeNow closes the connection's sockets at once, whatever its phase.
func (ss *session) closeNow() {
	ss.mu.Lock()
	r := ss.relay
	ss.closed, ss.killed = true, true
	if ss.stopWait != nil {
		ss.stopWait()
	}
	if ss.abortSetup != nil {
		ss.abortSetup()
	}
	ss.mu.Unlock()
	if r != nil {
		r.closeNow()
		return
	}
	ss.client.Close()
}

// ownHeader renders the stream header Guard sends when it must speak before
// the backend has: from is the domain the client asked for; to, on an s2s
// stream, the remote server's domain (RFC 6120 4.7.2); ns the stream's
// content namespace.
func ownHeader(from, to, ns string) []byte {
	h := xmpp.Header{From: from, To: to, ID: xmpp.NewStreamID(), Version: "1.0", NS: ns, Lang: "en"}
	return h.AppendTo(make([]byte, 0, 512))
}

// ownHeader is Guard's header toward this session's client.
func (ss *session) ownHeader() []byte {
	return ownHeader(ss.domain, ss.peerDomain, ss.st.cfg.Stream.ns())
}

// addrPort converts a TCP address.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
