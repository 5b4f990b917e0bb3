package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/guard-xmpp/guard/xmpp"
)

// session is one client connection from accept to the close of both sockets.
type session struct {
	srv    *Server
	l      *listener
	client *net.TCPConn // the accepted socket
	conn   *sideConn    // the client's connection: the socket, or TLS over it
	id     uint64

	// bk and bst are the backend the client's stream goes to (after its
	// header: routing by domain) and its shared state; node is the pool
	// node the stream was dialed to.
	bk   *Backend
	bst  *backendState
	node *nodeState

	// remote is the client's address: the socket's peer, or the source a
	// trusted load balancer reported in a PROXY protocol header; local is
	// the address it connected to, from that header.
	remote, local netip.AddrPort
	tlsPending    bool           // a TLS listener, before TLS is established
	streamOpen    bool           // Guard has sent the client a stream header of its own
	st            *listenerState // the listener's configuration when the client came

	// Released when the session ends: the per-address count and the
	// backend slot.
	releaseAddr, releaseSlot func()
	admitEvent               policy.Event // why admission refused the client
	// queueDeadline is when the stream's wait for admission ends; a
	// requeued stream keeps the one of its first wait.
	queueDeadline time.Time

	mu         sync.Mutex
	headerSeen bool               // the client has sent its stream header
	relay      *relay             // set once relaying starts
	since      time.Time          // when relaying started
	log        *connLog           // set with relay: the client and the stream's to
	closed     bool               // Shutdown or Close asked this session to end
	stopWait   context.CancelFunc // ends a wait in the admission queue
	abortSetup context.CancelFunc // ends the backend's dial and header phase (kill)
}

// run takes the connection through its phases. It returns when relaying
// starts; the relay's goroutines then end the session.
func (ss *session) run() {
	ss.st = ss.l.state.Load()
	cfg := &ss.st.cfg // the listener state is never changed once stored: no copy
	ss.remote = addrPort(ss.client.RemoteAddr())
	log := &connLog{base: ss.l.log, id: ss.id, client: ss.remote}
	start := time.Now()
	end := func(reason string) {
		if ss.node != nil {
			ss.node.open.Add(-1)
		}
		if ss.releaseSlot != nil {
			ss.releaseSlot()
		}
		if ss.releaseAddr != nil {
			ss.releaseAddr()
		}
		ss.l.metrics.connClosed(reason)
		ss.srv.recent.ended(reason, time.Now())
		ss.logEnd(cfg.ConnLog, log, reason, start)
		ss.srv.sessionDone(ss)
	}
	if reason := ss.serve(cfg, log, end); reason != "" {
		end(reason)
	}
}

// serve runs the phases of the connection up to the relay. It returns the
// reason the connection ended, with every socket closed, or "" once the
// relay has started and taken over the call of end.
func (ss *session) serve(cfg *ListenerConfig, log *connLog, end func(string)) string {
	c := ss.conn
	var userTimeout time.Duration
	if cfg.Timeouts.Probe > 0 {
		userTimeout = cfg.Timeouts.ProbeTimeout
	}
	if err := tuneClient(ss.client, userTimeout); err != nil {
		log.Debug("setting socket options failed", "error", err)
	}
	ss.tlsPending = cfg.TLS.Mode == TLSStartTLS || cfg.TLS.Mode == TLSDirect
	// A PROXY protocol header, from a trusted load balancer only: anyone
	// else's bytes go to the tokenizer, where a header is not XMPP.
	if len(cfg.ProxyProtocol.Trusted) > 0 && cfg.ProxyProtocol.Trusted.Contains(ss.remote.Addr()) {
		if reason := ss.readProxyHeader(cfg, log); reason != "" {
			return reason
		}
	}
	// Per-address limits, at once: a flood from one address costs Guard
	// no more than an accept and a short answer.
	release, ev := ss.admitAddress()
	if ev != "" {
		ss.l.metrics.addrRejected(eventReason(ev))
		log.Info("refused by per-address limits", "event", ev)
		if cfg.Raw || cfg.TLS.Mode == TLSDirect {
			// No XMPP before TLS on these: a bare close.
			return ss.closeQuietly(cfg, eventReason(ev))
		}
		return ss.refuse(cfg, "", ev, "")
	}
	ss.releaseAddr = release
	if cfg.Raw {
		return ss.serveRaw(cfg, log, end)
	}
	ctok := xmpp.NewTokenizer(cfg.MaxStanzaSize)
	if cfg.MaxHeaderSize > 0 {
		ctok.MaxHeader = cfg.MaxHeaderSize
	}
	ctok.MaxDepth = cfg.MaxDepth
	var cp *pipe
	defer func() {
		if cp != nil && !ss.relayStarted() {
			cp.discardAll()
		}
	}()

	// 1. The client's stream header, whole, within the handshake deadline
	// (TLS included): a client sending a byte a second is cut as surely as
	// a silent one.
	deadline := time.Now().Add(cfg.Timeouts.Handshake)
	if cfg.TLS.Mode == TLSDirect {
		if reason := ss.handshakeTLS(cfg, deadline, log); reason != "" {
			return reason
		}
	}
	var err error
	if cp, err = newSidePipe(c, ctok); err != nil {
		ss.closeClient()
		return ReasonClientError
	}
	hdr, cs, reason := ss.readClientHeader(cfg, cp, deadline, log)
	if reason != "" {
		return reason
	}
	if cfg.TLS.Mode == TLSStartTLS {
		// Guard answers this first stream itself and upgrades it; the
		// backend only ever sees the stream that follows TLS.
		if reason := ss.startTLS(cfg, cp, hdr, cs, deadline, log); reason != "" {
			return reason
		}
		ctok.Reset()
		if cp, err = newSidePipe(c, ctok); err != nil {
			ss.closeClient()
			return ReasonClientError
		}
		if hdr, cs, reason = ss.readClientHeader(cfg, cp, deadline, log); reason != "" {
			return reason
		}
	}
	ss.mu.Lock()
	ss.headerSeen = true
	ss.mu.Unlock()
	log.to = hdr.To
	var routed bool
	if ss.bk, ss.bst, routed = ss.st.routeFor(hdr.To); !routed {
		log.Info("no backend for the domain", "domain", hdr.To)
		return ss.refuse(cfg, hdr.To, policy.HostUnknown, "")
	}

	// 2. Admission: a slot of the backend, in arrival order, within the
	// queue timeout; then the storm pacer.
	if reason, refused := ss.admit(cfg, cp, log); refused {
		if reason == "" {
			return ss.refuse(cfg, hdr.To, ss.admitEvent, "")
		}
		return reason
	}

	// 3. The backend: a node dialed, the client's header replayed, the
	// backend's header read; retried where that is safe (connect.go).
	setup, endSetup := ss.setupPhase()
	defer endSetup()
	bc, ev := ss.connectBackend(setup, *ss.bk, cp, cs, log)
	if ev != "" {
		if ev != policy.Shutdown {
			log.Warn("no backend connection", "backend", ss.bk.Name, "event", ev)
		}
		return ss.refuse(cfg, hdr.To, ev, "")
	}
	cp.consume(cs.fwd)
	endSetup()
	backend, bp, bs := bc.conn, bc.bp, bc.bs

	r := &relay{
		client:  c,
		backend: backend,
		cp:      cp,
		bp:      bp,
		cfg:     cfg,
		metrics: ss.l.metrics,
		log:     log,
		domain:  hdr.To,
		shaper:  limits.NewShaper(cfg.Limits.ClientBytesPerSecond, 0),
	}

	// 6. The backend's header to the client; from now on the client's
	// stream is open and errors need no header of Guard's.
	c.SetWriteDeadline(time.Now().Add(cfg.Timeouts.Handshake))
	_, err = c.Write(r.outgoing(bp.units(bs.fwd), bs))
	c.SetWriteDeadline(time.Time{})
	bp.consume(bs.fwd)
	ss.streamOpen = true // the backend's header is the client's now
	if err != nil {
		bp.discardAll()
		ss.closeClient()
		closeBackendStream(backend, cfg.Timeouts.HalfClose)
		return ReasonClientError
	}
	return ss.startRelay(r, log, end)
}

// readProxyHeader reads the PROXY protocol header a trusted load balancer
// sends first, within the handshake timeout, and takes the client's address
// from it. A LOCAL header (the balancer's own health check) keeps the
// socket's address.
func (ss *session) readProxyHeader(cfg *ListenerConfig, log *connLog) string {
	ss.client.SetReadDeadline(time.Now().Add(cfg.Timeouts.Handshake))
	h, err := proxyproto.Read(ss.client)
	ss.client.SetReadDeadline(time.Time{})
	if err != nil {
		log.Info("bad PROXY protocol header from a trusted address", "error", err)
		ss.closeClient()
		return ReasonProxyProtocol
	}
	if h.Command == proxyproto.Proxy && h.Source.IsValid() {
		ss.remote = h.Source
		ss.local = h.Dest
		log.client = h.Source
	}
	return ""
}

// readClientHeader reads and checks the client's stream header within the
// deadline. It returns the header and the scan holding it, or the reason
// the connection ended (refused or gone).
func (ss *session) readClientHeader(cfg *ListenerConfig, cp *pipe, deadline time.Time, log *connLog) (xmpp.Header, scan, string) {
	cp.setReadDeadline(deadline)
	hdr, cs, ev, text := readHeader(cp)
	cp.setReadDeadline(time.Time{})
	if ev == "" && hdr.NS != xmpp.ClientNS {
		ev, text = policy.BadNamespace, "a client stream must use jabber:client"
	}
	switch ev {
	case "":
		return hdr, cs, ""
	case closedEvent:
		ss.closeClient()
		return hdr, cs, ReasonShutdown
	case clientGoneEvent, eofEvent:
		ss.closeClient()
		return hdr, cs, ReasonClientError
	default:
		log.Debug("refusing stream", "event", ev, "detail", text)
		return hdr, cs, ss.refuse(cfg, hdr.To, ev, text)
	}
}

// startTLS answers the client's first stream on a STARTTLS listener: Guard's
// header and features offering <starttls/> as required, then, on the
// client's <starttls/>, <proceed/> and the TLS handshake, all within the
// handshake deadline. Anything else than <starttls/> is refused with
// policy-violation (RFC 6120 5.3.1).
func (ss *session) startTLS(cfg *ListenerConfig, cp *pipe, hdr xmpp.Header, cs scan, deadline time.Time, log *connLog) string {
	c := ss.conn
	// The plaintext header ends here; whole units the client sent right
	// after it (a pipelined <starttls/>) are judged like later ones.
	pending := cs.fwd - cp.hdrEnd
	cp.consume(cp.hdrEnd)
	c.SetWriteDeadline(deadline)
	_, err := c.Write(append(ownHeader(hdr.To), startTLSFeatures...))
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		ss.closeClient()
		return ReasonClientError
	}
	ss.streamOpen = true
	cp.setReadDeadline(deadline)
	defer cp.setReadDeadline(time.Time{})
	for {
		var s scan
		if pending > 0 {
			s, err = scan{fwd: pending}, nil
			pending = 0
		} else {
			s, err = cp.fill()
		}
		if s.fwd > 0 {
			units := cp.units(s.fwd)
			if len(bytes.TrimSpace(units)) == 0 {
				cp.consume(s.fwd) // whitespace keepalives: wait on
				continue
			}
			if !isStartTLS(units) {
				log.Info("client did not start TLS where it is required")
				cp.setReadDeadline(time.Time{})
				return ss.refuse(cfg, hdr.To, policy.TLSRequired, "")
			}
			if cp.n > s.fwd {
				// Bytes after <starttls/> and before <proceed/>: a client
				// that does not wait is broken, or an injection attempt.
				cp.setReadDeadline(time.Time{})
				return ss.refuse(cfg, hdr.To, policy.NotWellFormed, "data after <starttls/>")
			}
			cp.discardAll()
			break
		}
		if s.serr != nil {
			cp.setReadDeadline(time.Time{})
			return ss.refuse(cfg, hdr.To, eventForSyntax(s.serr), s.serr.Msg)
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			cp.setReadDeadline(time.Time{})
			return ss.refuse(cfg, hdr.To, policy.HandshakeTimeout, "")
		default:
			ss.closeClient()
			return ReasonClientError
		}
	}
	c.SetWriteDeadline(deadline)
	_, err = c.Write([]byte(proceedTLS))
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		ss.closeClient()
		return ReasonClientError
	}
	ss.streamOpen = false // TLS starts a new stream
	return ss.handshakeTLS(cfg, deadline, log)
}

// handshakeTLS terminates TLS on the client's connection within the
// deadline. A failed handshake ends the connection with TLS's own alert:
// no XMPP can be spoken to a client without TLS on a TLS listener.
func (ss *session) handshakeTLS(cfg *ListenerConfig, deadline time.Time, log *connLog) string {
	if cfg.TLS.Config == nil {
		log.Warn("TLS listener without a TLS configuration")
		ss.closeClient()
		return ReasonClientError
	}
	tc := ss.conn.startTLS(cfg.TLS.Config)
	ss.client.SetDeadline(deadline)
	err := tc.Handshake()
	ss.client.SetDeadline(time.Time{})
	if err != nil {
		log.Info("TLS handshake failed", "error", err)
		ss.closeClient()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return eventReason(policy.HandshakeTimeout)
		}
		return ReasonTLSFailed
	}
	ss.tlsPending = false
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acmeTLSALPN {
		// An ACME CA validating a tls-alpn-01 challenge, not a client.
		ss.closeClient()
		return ReasonACMEChallenge
	}
	log.Debug("TLS established", "version", tls.VersionName(st.Version), "alpn", st.NegotiatedProtocol, "sni", st.ServerName, "resumed", st.DidResume)
	return ""
}

// startRelay hands the connection to r, unless Shutdown came first.
func (ss *session) startRelay(r *relay, log *connLog, end func(string)) string {
	r.enableParking()
	ss.mu.Lock()
	closed := ss.closed
	if !closed {
		ss.relay = r
		ss.since, ss.log = time.Now(), log // for the status page
	}
	ss.mu.Unlock()
	if closed {
		r.bp.discardAll()
		r.backend.tcp.Close()
		if r.raw {
			r.client.Close()
			return ReasonShutdown
		}
		return ss.refuse(r.cfg, r.domain, policy.Shutdown, "")
	}
	log.Debug("relaying", "backend", r.backend.RemoteAddr().String(), "raw", r.raw)
	r.start(end)
	return ""
}

// serveRaw relays without XMPP framing: Guard waits for the client's first
// bytes (bounded by the handshake timeout), dials, and passes bytes as they
// come, keeping the close state machine, timeouts and limits. Guard cannot
// speak XMPP on such a connection; every end is a FIN.
func (ss *session) serveRaw(cfg *ListenerConfig, log *connLog, end func(string)) string {
	c := ss.client
	cp, err := newPipe(c, nil)
	if err != nil {
		c.Close()
		return ReasonClientError
	}
	c.SetReadDeadline(time.Now().Add(cfg.Timeouts.Handshake))
	err = cp.wait.wait()
	c.SetReadDeadline(time.Time{})
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.Close()
		return eventReason(policy.HandshakeTimeout)
	case errors.Is(err, net.ErrClosed):
		c.Close()
		return ReasonShutdown
	default:
		c.Close()
		return ReasonClientError
	}
	ss.mu.Lock()
	ss.headerSeen = true
	ss.mu.Unlock()
	// The same admission and pool as a framed stream; only the answers
	// differ: without XMPP, a refusal is a bare close.
	var routed bool
	if ss.bk, ss.bst, routed = ss.st.routeFor(""); !routed {
		return ss.closeQuietly(cfg, eventReason(policy.HostUnknown))
	}
	if reason, refused := ss.admit(cfg, cp, log); refused {
		if reason == "" {
			reason = eventReason(ss.admitEvent)
		}
		return ss.closeQuietly(cfg, reason)
	}
	raw := *ss.bk
	raw.TLS = nil // passthrough: the client's TLS goes to the backend as it is
	setup, endSetup := ss.setupPhase()
	bc, ev := ss.connectBackend(setup, raw, nil, scan{}, log)
	endSetup()
	if ev != "" && ev != policy.Shutdown {
		log.Warn("no backend connection", "backend", raw.Name, "event", ev)
	}
	if ev != "" {
		return ss.closeQuietly(cfg, eventReason(ev))
	}
	backend := bc.conn
	bp, err := newPipe(backend.tcp, nil)
	if err != nil {
		backend.tcp.Close()
		c.Close()
		return ReasonBackendError
	}
	r := &relay{client: ss.conn, backend: backend, cp: cp, bp: bp, cfg: cfg, metrics: ss.l.metrics, log: log, raw: true}
	return ss.startRelay(r, log, end)
}

func (ss *session) relayStarted() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.relay != nil
}

// Pseudo-events of readHeader that end a connection without a stream error.
const (
	closedEvent     policy.Event = "closed"      // Guard closed the socket
	clientGoneEvent policy.Event = "client-gone" // the peer reset the connection
	eofEvent        policy.Event = "eof"         // the peer closed the connection
)

// readHeader reads until p's peer has sent a whole stream header, and
// returns it parsed, with the scan that holds it; or the event that ends
// the connection instead, with a detail for the log and the error text.
func readHeader(p *pipe) (xmpp.Header, scan, policy.Event, string) {
	for {
		s, err := p.fill()
		if s.header {
			h, herr := xmpp.ParseHeader(p.buf[p.hdrStart:p.hdrEnd])
			if herr != nil {
				return h, s, headerEvent(herr), errText(herr)
			}
			if s.serr != nil {
				return h, s, eventForSyntax(s.serr), s.serr.Msg
			}
			return h, s, "", ""
		}
		if s.serr != nil {
			ev := eventForSyntax(s.serr)
			if ev == policy.NotWellFormed && p.tok.Offset() < 64 && s.serr.Offset < 64 {
				ev = policy.BytesBeforeHeader
			}
			return xmpp.Header{}, s, ev, s.serr.Msg
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			return xmpp.Header{}, s, policy.HandshakeTimeout, ""
		case errors.Is(err, net.ErrClosed):
			return xmpp.Header{}, s, closedEvent, ""
		case err == io.EOF:
			return xmpp.Header{}, s, eofEvent, "EOF before the stream header"
		default:
			return xmpp.Header{}, s, clientGoneEvent, err.Error()
		}
	}
}

func errText(err error) string {
	var se *xmpp.SyntaxError
	if errors.As(err, &se) {
		return se.Msg
	}
	var ste xmpp.StreamError
	if errors.As(err, &ste) {
		return ste.Text
	}
	return ""
}

// headerEvent maps a header the parser rejects to its policy event.
func headerEvent(err error) policy.Event {
	c, _ := xmpp.ConditionOf(err)
	switch c {
	case xmpp.InvalidNamespace, xmpp.BadNamespacePrefix:
		return policy.BadNamespace
	case xmpp.UnsupportedVersion:
		return policy.BadVersion
	case xmpp.RestrictedXML:
		return policy.RestrictedXML
	case xmpp.PolicyViolation:
		return policy.StanzaTooLarge
	default:
		return policy.NotWellFormed
	}
}

// backendHeaderEvent maps what went wrong while waiting for the backend's
// header to the event the client hears of.
func backendHeaderEvent(ev policy.Event) policy.Event {
	switch ev {
	case policy.HandshakeTimeout:
		return policy.BackendStalled
	case clientGoneEvent:
		return policy.BackendReset
	case eofEvent:
		return policy.BackendClosed
	case closedEvent:
		return policy.Shutdown
	default:
		return policy.BackendGarbage
	}
}

// refuse ends a connection before relaying: Guard opens the stream toward
// the client with its own header (from = the domain the client asked for),
// sends the stream error for ev and </stream:stream>, half-closes, and reads
// and discards the client's input for a bounded time so that the close does
// not turn into a reset that could lose the error.
func (ss *session) refuse(cfg *ListenerConfig, domain string, ev policy.Event, text string) string {
	c := ss.conn
	se := cfg.Policy.Decide(ev, policy.Context{TLSPending: ss.tlsPending})
	if se.Text == "" {
		se.Text = text // the parser's detail, where policy has no text
	}
	var frame []byte
	if !ss.streamOpen {
		frame = ownHeader(domain)
	}
	frame = se.AppendTo(frame)
	c.SetWriteDeadline(time.Now().Add(cfg.Timeouts.HalfClose))
	_, err := c.Write(frame)
	if err != nil {
		ss.closeClient()
		return eventReason(ev)
	}
	c.CloseWrite()
	ss.lingerClose(c, cfg)
	return eventReason(ev)
}

// closeQuietly ends a connection Guard cannot speak XMPP on (raw, or before
// Direct TLS) without a reset: a FIN, then the client's input read and
// discarded for a bounded time before the close, since closing a socket
// with unread input makes the kernel send RST.
func (ss *session) closeQuietly(cfg *ListenerConfig, reason string) string {
	ss.client.CloseWrite()
	ss.lingerClose(ss.client, cfg)
	return reason
}

// lingerClose reads and discards c's input until EOF, an error, or
// half_close, then closes the client's socket: aborted if half_close ran
// out with Guard's bytes still unacknowledged (a vanished client), so that
// no socket outlives half_close (see closeWithin).
func (ss *session) lingerClose(c net.Conn, cfg *ListenerConfig) {
	if drainUntilFIN(c, cfg.Timeouts.HalfClose) {
		ss.closeClient()
		return
	}
	closeAtExpiry(ss.client)
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
	closeWithin(ss.client, hc)
}

// ownHeader renders the stream header Guard sends when it must speak before
// the backend has: from is the domain the client asked for.
func ownHeader(domain string) []byte {
	h := xmpp.Header{From: domain, ID: xmpp.NewStreamID(), Version: "1.0", NS: xmpp.ClientNS, Lang: "en"}
	return h.AppendTo(make([]byte, 0, 512))
}

// dialBackend connects to the backend within its connect timeout, with
// TLS over the socket when the backend is configured for it (the TLS
// handshake counts toward the same timeout).
func (ss *session) dialBackend(ctx context.Context, b Backend) (*sideConn, error) {
	c, err := dialTCP(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := tuneBackend(c); err != nil {
		ss.l.log.Debug("setting backend socket options failed", "error", err)
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
	dst := ss.local
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

// addrPort converts a TCP address.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func dialTCP(ctx context.Context, b Backend) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: b.ConnectTimeout}
	c, err := d.DialContext(ctx, "tcp", b.Address)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// setupPhase returns the context of the backend's dial and header phase,
// which a kill cancels, and the function that ends the phase (idempotent).
// A session already killed gets a context canceled from the start.
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

// kill closes the connection's sockets at once, whatever its phase.
func (ss *session) kill() {
	ss.mu.Lock()
	r := ss.relay
	ss.closed = true
	if ss.stopWait != nil {
		ss.stopWait()
	}
	if ss.abortSetup != nil {
		ss.abortSetup()
	}
	ss.mu.Unlock()
	if r != nil {
		r.closeAll(ReasonShutdown, true)
		return
	}
	ss.client.Close()
}

// forceClose ends the connection now: a relayed stream gets its shutdown
// stream error; a stream still being set up gets it as the relay would start.
func (ss *session) forceClose() {
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
		r.shutdown()
	}
}

// errClientGone ends a client's wait in the admission queue when it has
// closed or reset its connection.
var errClientGone = errors.New("client gone")

// watchGone watches the client's socket while the session waits for
// admission, and calls gone if the client closes or resets it: a client that
// gave up must not keep its place in the queue (a storm of clients that time
// out and reconnect would fill it with places nobody takes). Bytes from a
// live client (pipelined stanzas) end the watch: they stay in the socket for
// the relay. stop ends the watch and returns once it has.
func watchGone(cp *pipe, gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := cp.wait.wait()
		if err == nil && !cp.wait.gone() {
			return // data: alive
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, syscall.ETIMEDOUT) {
			return // stopped
		}
		gone()
	}()
	return func() {
		// A deadline in the past wakes the wait; the socket gets the
		// session's own deadline back.
		cp.setPollDeadline(aLongTimeAgo)
		<-done
		cp.setPollDeadline(cp.deadline)
	}
}

// admit runs the backend admission of a client whose header has arrived.
// It reports refused with a reason when the connection ended (client gone,
// shutdown), or with "" when the client must be refused with ss.admitEvent.
func (ss *session) admit(cfg *ListenerConfig, cp *pipe, log *connLog) (reason string, refused bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		ss.admitEvent = policy.Shutdown
		return "", true
	}
	ss.stopWait = func() { cancel(nil) }
	ss.mu.Unlock()
	stopWatch := func() {}
	if ss.bst.mayWait() {
		stopWatch = watchGone(cp, func() { cancel(errClientGone) })
	}
	release, ev := ss.admitBackend(ctx, ss.bk.Admission, false)
	stopWatch()
	ss.mu.Lock()
	ss.stopWait = nil
	closed := ss.closed
	ss.mu.Unlock()
	if ev != "" && !closed && context.Cause(ctx) == errClientGone {
		// It left the queue with its place: the next client moves up.
		log.Debug("client left while queued")
		ss.closeClient()
		return ReasonClientError, true
	}
	if ev != "" {
		if closed {
			ev = policy.Shutdown
		}
		log.Info("admission refused", "event", ev)
		ss.admitEvent = ev
		return "", true
	}
	ss.releaseSlot = release
	// A client that gave up while it waited is not worth a backend stream.
	if gone := cp.wait.gone(); gone {
		ss.closeClient()
		return ReasonClientError, true
	}
	return "", false
}
