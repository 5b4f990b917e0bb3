package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// direction names one half of a relayed connection.
type direction int

const (
	clientToBackend direction = iota
	backendToClient
)

func (d direction) String() string {
	if d == clientToBackend {
		return "client_to_backend"
	}
	return "backend_to_client"
}

// relay moves whole XMPP units both ways between a client and a backend and
// runs the close state machine of one connection.
//
// Closing begins with any of: EOF from a side, </stream:stream> from a side,
// a stream error Guard sends, a hard idle timeout, shutdown. From then on
// the half_close timer runs; when both sides have sent their FIN, or the
// timer fires, both sockets are closed. On the way:
//
//   - EOF from one side is passed on with CloseWrite. A backend that ends
//     TCP without </stream:stream> is a failure: the client gets a stream
//     error. A client that does so gets its stream completed toward the
//     backend (</stream:stream>), so the backend sees a clean end.
//   - Guard ends a side's stream (endClient, endBackend) at a unit
//     boundary: writes to each socket are serialised and whole units only,
//     so an error is never written into the middle of a stanza. After that
//     the side's further input is read and discarded (a lingering close: a
//     socket closed with unread input would reset the peer and might lose
//     the error it was just sent).
//   - When the timer fires, a backend that has not sent its FIN is reset
//     (SO_LINGER 0): Guard keeps no FIN_WAIT2 socket toward it. A client's
//     socket is closed with a FIN; TCP_LINGER2 bounds its orphan.
//   - A read or write error closes both sockets at once, after telling the
//     other side what it can.
type relay struct {
	client  *sideConn
	backend *sideConn
	cp, bp  *pipe // client→backend and backend→client pipes
	cfg     *ListenerConfig
	metrics *listenerMetrics
	log     *connLog

	lastActive atomic.Int64 // unix nanoseconds of the last unit relayed either way
	lastProbe  atomic.Int64 // unix nanoseconds of the last keepalive sent
	// relayedBytes counts the bytes forwarded in each direction.
	relayedBytes [2]atomic.Int64
	running      atomic.Int32 // pumps still running
	done         func(reason string)

	cw sync.Mutex // serialises writes to the client
	bw sync.Mutex // serialises writes to the backend

	domain string         // the domain the client asked for, for Guard's own header
	shaper *limits.Shaper // paces reads from the client; nil: unlimited
	raw    bool           // no XMPP framing: bytes pass as they come, ends are bare FINs

	mu          sync.Mutex
	eof         [2]bool // direction reached EOF
	ended       [2]bool // direction forwarded </stream:stream>
	awaitHeader bool    // the client restarted its stream and has not seen the backend's new header
	clientEnded bool    // Guard sent the client its last bytes and a FIN
	backendEnd  bool    // Guard sent the backend its last bytes and a FIN
	closed      bool
	reason      string
	timer       *time.Timer
}

// start relays in two new goroutines, one per direction, and returns at
// once; done runs once, with the reason, after both directions have ended.
// Fresh goroutines keep an idle stream's stacks small: the goroutine that
// accepted and dialed grew its stack doing so, and it exits here.
func (r *relay) start(done func(reason string)) {
	r.lastActive.Store(time.Now().UnixNano())
	r.done = done
	r.running.Store(2)
	r.armClientTimer(time.Now())
	go r.pump(clientToBackend)
	go r.pump(backendToClient)
}

// enableParking lets the pumps park when their sources are quiet. Called
// before anything else can see the relay (a kill would unpark).
func (r *relay) enableParking() {
	r.cp.park = newParker(r.cp.wait.rc, func() { r.pump(clientToBackend) })
	r.bp.park = newParker(r.bp.wait.rc, func() { r.pump(backendToClient) })
}

// pumpDone is called by each pump as it returns; the last one reports.
func (r *relay) pumpDone() {
	if r.running.Add(-1) != 0 {
		return
	}
	r.closeAll("", false) // normally closed already; never leave a socket open
	r.cp.discardAll()
	r.bp.discardAll()
	r.mu.Lock()
	reason := r.reason
	r.mu.Unlock()
	r.done(reason)
}

// pump moves one direction until EOF, an error, or the relay being closed.
// A pump that parks (its source quiet) returns and is called again, in a new
// goroutine, when the source has input or its deadline passes.
func (r *relay) pump(d direction) {
	if !r.run(d) {
		r.pumpDone()
	}
}

// run is the pump's loop; it reports whether the pump parked.
func (r *relay) run(d direction) (parked bool) {
	p, dst := r.cp, net.Conn(r.backend)
	if d == backendToClient {
		p, dst = r.bp, r.client
	}
	for {
		s, err := p.fill()
		if err == errParked {
			return true
		}
		if d == clientToBackend && r.shaper != nil && s.read > 0 {
			// Back-pressure, not loss: the client's TCP window closes
			// while Guard waits to read more.
			if delay := r.shaper.Delay(s.read, time.Now()); delay > 0 {
				time.Sleep(delay)
			}
		}
		if s.fwd > 0 {
			if !r.forward(d, dst, p.units(s.fwd), s) {
				if d == clientToBackend {
					r.drainClient()
				}
				return false
			}
			p.consume(s.fwd)
		}
		if s.serr != nil {
			r.syntaxError(d, s.serr)
			p.discardAll()
			if d == clientToBackend {
				r.cp.setReadDeadline(time.Time{})
			}
			// Keep reading (and discarding) until the peer's FIN or the
			// timer: the lingering half of the close.
			if !r.drain(d, p) {
				return false
			}
			r.finish(d)
			return false
		}
		switch {
		case err == nil:
		case err == io.EOF:
			r.sideEOF(d, p)
			return false
		case errors.Is(err, syscall.ETIMEDOUT):
			// TCP_USER_TIMEOUT: sent data went unacknowledged. (Checked
			// first: syscall.Errno counts ETIMEDOUT as a deadline too.)
			r.ioError(d, true, err)
			return false
		case errors.Is(err, os.ErrDeadlineExceeded) && d == clientToBackend:
			if !r.clientTimer() {
				return false
			}
		default:
			r.ioError(d, true, err)
			return false
		}
	}
}

// forward writes whole units to dst, or drops them if Guard has already
// ended that side's stream. It reports false if the pump must stop.
func (r *relay) forward(d direction, dst net.Conn, b []byte, s scan) bool {
	lock := &r.bw
	if d == backendToClient {
		lock = &r.cw
	}
	lock.Lock()
	r.mu.Lock()
	ended := r.backendEnd
	if d == backendToClient {
		ended = r.clientEnded
	}
	if s.header && !ended {
		// A restart: the client waits for the backend's new header.
		r.awaitHeader = d == clientToBackend
	}
	if s.end && !ended {
		r.ended[d] = true
		r.startClosingLocked(reasonFor(d))
	}
	r.mu.Unlock()
	var err error
	if !ended {
		if d == backendToClient {
			b = r.outgoing(b, s)
		}
		_, err = dst.Write(b)
		if err != nil {
			// Perhaps a part of the units went out: nothing may follow them.
			r.mu.Lock()
			if d == backendToClient {
				r.clientEnded = true
			} else {
				r.backendEnd = true
			}
			r.mu.Unlock()
		}
	}
	lock.Unlock()
	if err != nil {
		r.ioError(d, false, err)
		// A client that cannot be written to is gone, but the backend's
		// pump goes on (dropping what it reads) until the backend's FIN:
		// see clientGone.
		return d == backendToClient && !r.isClosed()
	}
	r.lastActive.Store(time.Now().UnixNano())
	r.relayedBytes[d].Add(int64(len(b)))
	r.metrics.relayed(d, len(b))
	return true
}

// drain reads and discards d's input until EOF (true) or an error or close
// (false).
func (r *relay) drain(d direction, p *pipe) bool {
	for {
		if err := p.wait.wait(); err != nil {
			return false
		}
		buf := getBuf()
		_, err := p.src.Read(buf)
		putBuf(buf)
		if err == io.EOF {
			return true
		}
		if err != nil {
			r.closeAll("", false)
			return false
		}
	}
}

// syntaxError handles bytes a side sent that are not acceptable XMPP.
func (r *relay) syntaxError(d direction, se *xmpp.SyntaxError) {
	if d == backendToClient {
		r.log.Warn("backend sent malformed data", "error", se)
		r.failBackend(policy.BackendGarbage)
		return
	}
	ev := eventForSyntax(se)
	r.log.Info("client stream error", "event", ev, "error", se)
	r.endClient(ev, se.Msg)
	r.endBackend()
}

// eventForSyntax maps a tokenizer error on client input to its policy event.
func eventForSyntax(se *xmpp.SyntaxError) policy.Event {
	if se.AfterEnd {
		return policy.ClientAfterEnd
	}
	switch se.Condition {
	case xmpp.RestrictedXML:
		return policy.RestrictedXML
	case xmpp.PolicyViolation:
		if se.Limit == xmpp.LimitDepth {
			return policy.NestingTooDeep
		}
		return policy.StanzaTooLarge
	case xmpp.InvalidNamespace, xmpp.BadNamespacePrefix:
		return policy.BadNamespace
	default:
		return policy.NotWellFormed
	}
}

// sideEOF handles the FIN of direction d's source.
func (r *relay) sideEOF(d direction, p *pipe) {
	partial := p.pending()
	p.discardAll() // a partial unit is never forwarded
	if d == backendToClient {
		r.mu.Lock()
		clean := r.ended[backendToClient] || r.clientEnded || r.raw
		r.mu.Unlock()
		if !clean || partial {
			// The backend's TCP stream ended without </stream:stream>, or
			// in the middle of a stanza: complete the stream for the
			// client, with an error, since the session is gone.
			r.endClient(policy.BackendClosed, "")
		} else {
			r.finWrite(r.client, &r.cw, true)
		}
	} else {
		// The client left; give the backend a clean end of stream.
		r.endBackend()
	}
	r.finish(d)
}

// finish records EOF in direction d and closes both sockets once both
// directions have reached EOF.
func (r *relay) finish(d direction) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eof[d] = true
	if r.eof[clientToBackend] && r.eof[backendToClient] {
		r.closeLocked("", false)
		return
	}
	r.startClosingLocked(reasonFor(d))
}

// reasonFor is the reason a connection ends when direction d's side closes
// (its stream or TCP) first.
func reasonFor(d direction) string {
	if d == clientToBackend {
		return ReasonClientClosed
	}
	return ReasonBackendClosed
}

// startClosing starts the half_close timer, once, and sets the reason the
// connection ends with unless one is set.
func (r *relay) startClosing(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startClosingLocked(reason)
}

func (r *relay) startClosingLocked(reason string) {
	if r.reason == "" {
		r.reason = reason
	}
	if r.timer == nil && !r.closed {
		r.timer = time.AfterFunc(r.cfg.Timeouts.HalfClose, r.halfCloseExpired)
	}
}

func (r *relay) halfCloseExpired() {
	r.closeClientStream()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Debug("half_close expired", "client_fin", r.eof[clientToBackend], "backend_fin", r.eof[backendToClient])
	// A backend that has not sent its FIN is reset rather than waited on.
	r.closeLocked(ReasonHalfCloseTimeout, !r.eof[backendToClient])
}

// closeClientStream writes </stream:stream> and a FIN to a client still
// owed them when half_close runs out: the backend never answered the
// client's end of stream (or Guard's), and Guard, the client's peer, closes
// the stream itself (RFC 6120 4.4), at a unit boundary. The write is bounded
// tightly: a client that does not read by now is not waited on.
func (r *relay) closeClientStream() {
	r.mu.Lock()
	owed := !r.raw && !r.closed && !r.clientEnded && !r.ended[backendToClient]
	r.mu.Unlock()
	if !owed {
		return
	}
	// The deadline also ends a unit's write stuck on a client that does
	// not read, which holds cw.
	r.client.tcp.SetWriteDeadline(time.Now().Add(closeTagWrite))
	r.cw.Lock()
	defer r.cw.Unlock()
	r.mu.Lock()
	if r.clientEnded || r.closed {
		r.mu.Unlock()
		return
	}
	r.clientEnded = true
	frame := xmpp.StreamEnd
	if r.awaitHeader {
		// The client restarted its stream and has no header for it yet.
		frame = append(ownHeader(r.domain), xmpp.StreamEnd...)
	}
	r.mu.Unlock()
	r.client.tcp.SetWriteDeadline(time.Now().Add(closeTagWrite))
	r.client.Write(frame)
	r.client.CloseWrite()
}

// closeTagWrite bounds the write of Guard's own </stream:stream> when
// half_close is over.
const closeTagWrite = 100 * time.Millisecond

// endClient sends the client the stream error for ev (opening the stream
// first if the client has not seen a header) and a FIN. Later units from the
// backend are dropped.
func (r *relay) endClient(ev policy.Event, text string) {
	se := r.cfg.Policy.Decide(ev, policy.Context{})
	if se.Text == "" {
		se.Text = text // the parser's detail, where policy has no text
	}
	r.mu.Lock()
	if r.clientEnded || r.closed {
		r.mu.Unlock()
		return
	}
	// The close is under way whatever happens next: the timer bounds it.
	r.startClosingLocked(eventReason(ev))
	r.mu.Unlock()
	// A unit being forwarded to a client that does not read holds cw:
	// bound that write, so this end (idle, drain, a fault) cannot hang.
	r.client.tcp.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
	r.cw.Lock()
	r.mu.Lock()
	if r.clientEnded || r.closed {
		// The stuck write failed, perhaps mid-stanza: add nothing to it.
		r.mu.Unlock()
		r.cw.Unlock()
		return
	}
	r.clientEnded = true
	var frame []byte
	switch {
	case r.raw:
		// Nothing to say in a stream Guard does not parse.
	case r.ended[backendToClient]:
		// The client has its </stream:stream> already: only the FIN is left.
	case r.awaitHeader:
		frame = se.AppendTo(ownHeader(r.domain))
	default:
		frame = se.AppendTo(nil)
	}
	if len(frame) > 0 && (r.reason == ReasonClientClosed || r.reason == ReasonBackendClosed) {
		// A stream error ends what began as a clean close: it is the
		// reason (data after the client's </stream:stream>, a drain).
		r.reason = eventReason(ev)
	}
	r.mu.Unlock()
	r.client.tcp.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
	r.client.Write(frame)
	r.client.CloseWrite()
	r.client.tcp.SetWriteDeadline(time.Time{})
	r.cw.Unlock()
}

// endBackend completes the backend's stream with </stream:stream> and a FIN,
// at a unit boundary. Later units from the client are dropped.
func (r *relay) endBackend() {
	r.bw.Lock()
	r.mu.Lock()
	if r.backendEnd || r.closed {
		r.mu.Unlock()
		r.bw.Unlock()
		return
	}
	r.backendEnd = true
	r.startClosingLocked("")
	streamOpen := !r.ended[clientToBackend] && !r.raw
	r.mu.Unlock()
	if streamOpen {
		r.backend.SetWriteDeadline(time.Now().Add(r.cfg.Timeouts.HalfClose))
		r.backend.Write(xmpp.StreamEnd)
		r.backend.SetWriteDeadline(time.Time{})
	}
	r.backend.CloseWrite()
	r.bw.Unlock()
}

// finWrite passes a FIN on to c (CloseWrite) under its write lock.
func (r *relay) finWrite(c interface{ CloseWrite() error }, lock *sync.Mutex, client bool) {
	lock.Lock()
	r.mu.Lock()
	if client {
		r.clientEnded = true
	} else {
		r.backendEnd = true
	}
	r.mu.Unlock()
	c.CloseWrite()
	lock.Unlock()
}

// failBackend ends a connection whose backend broke: the client gets the
// stream error for ev, the backend socket is reset, and the client's input is
// drained until its FIN or half_close.
func (r *relay) failBackend(ev policy.Event) {
	r.endClient(ev, "")
	r.mu.Lock()
	r.backendEnd = true
	r.eof[backendToClient] = true
	r.mu.Unlock()
	r.backend.tcp.SetLinger(0)
	r.backend.tcp.Close()
	r.bp.unpark()
}

// ioError handles a failed read (onRead) or write in direction d.
func (r *relay) ioError(d direction, onRead bool, err error) {
	if errors.Is(err, net.ErrClosed) {
		return // the close itself
	}
	clientSide := (d == clientToBackend) == onRead
	r.log.Debug("relay I/O error", "direction", d, "read", onRead, "error", err)
	if !clientSide {
		r.failBackend(backendEvent(err))
		return
	}
	// The client is gone or unresponsive (reset, TCP_USER_TIMEOUT).
	ev := policy.Event("")
	if errors.Is(err, syscall.ETIMEDOUT) {
		ev = policy.ProbeUnanswered
		r.endClient(ev, "")
	}
	reason := ReasonClientError
	if ev != "" {
		reason = eventReason(ev)
	}
	r.clientGone(reason)
}

// clientGone ends a connection whose client socket failed. The client's
// socket is closed at once; the backend is told the stream is over
// (</stream:stream>, FIN) and its socket stays open, its input read and
// dropped, until its FIN or half_close: the backend counts the stream until
// it has closed its side, and so does the stream's admission slot, which
// is given back only when the relay ends. Releasing it earlier let Guard
// admit a stream the backend still had no room for.
func (r *relay) clientGone(reason string) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if r.reason == "" {
		r.reason = reason
	}
	r.clientEnded = true
	r.eof[clientToBackend] = true
	r.mu.Unlock()
	closeWithin(r.client.tcp, r.cfg.Timeouts.HalfClose)
	r.cp.unpark() // a parked client pump wakes to the closed socket and ends
	r.endBackend()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.eof[backendToClient] {
		r.closeLocked("", false)
	}
}

func (r *relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func backendEvent(err error) policy.Event {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return policy.BackendStalled
	}
	return policy.BackendReset
}

// closeAll closes both sockets now.
func (r *relay) closeAll(reason string, resetBackend bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked(reason, resetBackend)
}

func (r *relay) closeLocked(reason string, resetBackend bool) {
	if r.closed {
		return
	}
	r.closed = true
	switch {
	case r.reason == "":
		r.reason = reason
	case reason == ReasonHalfCloseTimeout && (r.reason == ReasonClientClosed || r.reason == ReasonBackendClosed):
		r.reason = reason // the other side never finished: worth telling apart
	}
	if r.reason == "" {
		r.reason = ReasonClientClosed
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	if resetBackend {
		r.backend.tcp.SetLinger(0)
	}
	// The socket, not TLS over it: tls.Conn.Close would write close_notify,
	// which can block, and this runs under r.mu. Every graceful path has
	// sent close_notify with its CloseWrite already. Neither socket outlives
	// half_close in the kernel (see closeWithin).
	if reason == ReasonHalfCloseTimeout {
		closeAtExpiry(r.client.tcp)
		closeAtExpiry(r.backend.tcp)
	} else {
		closeWithin(r.client.tcp, r.cfg.Timeouts.HalfClose)
		closeWithin(r.backend.tcp, r.cfg.Timeouts.HalfClose)
	}
	// A parked pump is not in the poller: the close does not wake it.
	r.cp.unpark()
	r.bp.unpark()
}

// shutdown ends the stream because Guard is draining: the client hears
// system-shutdown (or the configured redirect), the backend a clean end;
// half_close bounds the rest.
func (r *relay) shutdown() {
	r.endClient(policy.Shutdown, "")
	r.endBackend()
}

// eventReason turns a policy event into a metrics reason label.
func eventReason(ev policy.Event) string {
	b := []byte(ev)
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// armClientTimer sets the client's read deadline to the next moment a probe
// or the idle limit is due, counted from the last activity.
func (r *relay) armClientTimer(now time.Time) {
	next := r.nextClientDeadline()
	if next.IsZero() {
		r.cp.setReadDeadline(time.Time{})
		return
	}
	r.cp.setReadDeadline(next)
}

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
		r.endClient(policy.IdleTimeout, "")
		r.endBackend()
		return r.drainClient()
	}
	if p := r.cfg.Timeouts.Probe; p > 0 {
		next := r.nextClientDeadline()
		if !now.Before(next) {
			r.probe(now)
		}
	}
	r.armClientTimer(now)
	return true
}

// drainClient reads and discards the client's input after Guard ended its
// stream, then records the client's FIN.
func (r *relay) drainClient() bool {
	r.cp.setReadDeadline(time.Time{})
	r.cp.discardAll()
	if r.drain(clientToBackend, r.cp) {
		r.finish(clientToBackend)
	}
	return false
}

// probe sends a whitespace keepalive to the client, between units. The
// kernel's TCP_USER_TIMEOUT turns a keepalive that is never acknowledged
// into ETIMEDOUT on the socket, which ends the stream with
// connection-timeout (RFC 6120 4.9.3.4 and 4.6.1).
func (r *relay) probe(now time.Time) {
	r.lastProbe.Store(now.UnixNano())
	if !r.cw.TryLock() {
		return // a write to the client is under way: no need to probe
	}
	defer r.cw.Unlock()
	r.mu.Lock()
	ended := r.clientEnded || r.closed || r.ended[backendToClient]
	r.mu.Unlock()
	if ended {
		return
	}
	r.client.SetWriteDeadline(now.Add(r.cfg.Timeouts.HalfClose))
	_, err := r.client.Write(keepalive)
	r.client.SetWriteDeadline(time.Time{})
	if err != nil {
		r.log.Debug("keepalive failed", "error", err)
	}
	r.metrics.probed()
}

var keepalive = []byte(" ")

// outgoing returns the units to write to the client: the backend's stream
// features rewritten where Guard terminates TLS (no <starttls/>), with a
// backend offering SASL -PLUS mechanisms reported.
func (r *relay) outgoing(b []byte, s scan) []byte {
	if s.featEnd == 0 {
		return b
	}
	out, plus := rewriteFeatures(b, s.featStart, s.featEnd)
	if plus {
		r.metrics.channelBindingOffered()
		r.log.Warn("the backend offers SASL -PLUS mechanisms (channel binding), which cannot work through a TLS-terminating proxy; turn them off on the backend (docs/tls.md)")
	}
	return out
}
