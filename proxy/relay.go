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

// This file is the relay's pumps: two goroutines per stream, one per
// direction, that read whole units, forward them, and report to the close
// state machine (relaycore.go) what they see; relayend.go carries out what
// it answers, relaytimer.go runs the idle limit and the probes.

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

// relaySide is one peer of a relayed connection.
type relaySide struct {
	conn peerConn   // its socket, or TLS over it
	pipe *pipe      // reads from it
	wmu  sync.Mutex // serialises writes to it: whole units only, so an error never lands mid-stanza
}

// relay moves whole XMPP units both ways between a client and a backend.
//
// Closing begins with any of: EOF from a side, </stream:stream> from a side,
// a stream error Guard sends, a hard idle timeout, shutdown. From then on
// the half_close timer runs; when both sides have sent their FIN, or the
// timer fires, both sockets are closed (relaycore.go says who ends and
// what Guard writes last). After Guard ends a side's stream, that side's
// input is read and discarded (a lingering close: a socket closed with
// unread input would reset the peer and might lose the error it was just
// sent). When the timer fires, a backend that has not sent its FIN is reset
// (SO_LINGER 0): Guard keeps no FIN_WAIT2 socket toward it; a client's
// socket is closed with a FIN, and TCP_LINGER2 bounds its orphan.
//
// Lock order: a side's wmu before mu, and never both sides' wmu at once.
type relay struct {
	side    [2]relaySide // sideClient, sideBackend
	cfg     *ListenerConfig
	metrics *listenerMetrics
	log     *connLog
	shaper  *limits.Shaper // paces reads from the client; nil: unlimited

	terminatesTLS bool // the client's TLS is Guard's: the backend's <starttls/> is not offered

	lastActive atomic.Int64 // unix nanoseconds of the last unit relayed either way
	lastProbe  atomic.Int64 // unix nanoseconds of the last keepalive sent
	// relayedBytes counts the bytes forwarded in each direction.
	relayedBytes [2]atomic.Int64
	running      atomic.Int32 // pumps still running
	done         func(reason string)

	mu    sync.Mutex
	core  closeState
	timer *time.Timer // half_close, armed once the close starts
}

// newRelay returns the relay of a connection whose client and backend
// streams are open: cp reads from the client, bp from the backend. raw: no
// XMPP framing, bytes pass as they come and every end is a bare FIN.
func newRelay(client front, backend *sideConn, cp, bp *pipe, cfg *ListenerConfig, m *listenerMetrics, log *connLog, domain string, raw bool) *relay {
	r := &relay{cfg: cfg, metrics: m, log: log}
	r.side[sideClient].conn, r.side[sideClient].pipe = client, cp
	r.side[sideBackend].conn, r.side[sideBackend].pipe = backend, bp
	r.core.domain, r.core.raw, r.core.stream = domain, raw, cfg.Stream
	r.terminatesTLS = client.terminatesTLS()
	if !raw {
		r.shaper = limits.NewShaper(cfg.Limits.ClientBytesPerSecond, 0)
	}
	return r
}

// start relays in two new goroutines, one per direction, and returns at
// once; done runs once, with the reason, after both directions have ended.
// Fresh goroutines keep an idle stream's stacks small: the goroutine that
// accepted and dialed grew its stack doing so, and it exits here.
func (r *relay) start(done func(reason string)) {
	r.lastActive.Store(time.Now().UnixNano())
	r.done = done
	r.running.Store(2)
	r.armClientTimer()
	go r.pump(clientToBackend)
	go r.pump(backendToClient)
}

// enableParking lets the pumps park when their sources are quiet. Called
// before anything else can see the relay (a kill would unpark).
func (r *relay) enableParking() {
	for d := clientToBackend; d <= backendToClient; d++ {
		p := r.side[d.from()].pipe
		p.park = newParker(p.wait.rc, func() { r.pump(d) })
	}
}

// pumpDone is called by each pump as it returns; the last one reports.
func (r *relay) pumpDone() {
	if r.running.Add(-1) != 0 {
		return
	}
	r.closeAll("", false, false) // normally closed already; never leave a socket open
	r.side[sideClient].pipe.discardAll()
	r.side[sideBackend].pipe.discardAll()
	r.mu.Lock()
	reason := r.core.reason
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
	p := r.side[d.from()].pipe
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
			if !r.forward(d, p.units(s.fwd), s) {
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
				p.setReadDeadline(time.Time{})
			}
			// Keep reading (and discarding) until the peer's FIN or the
			// timer: the lingering half of the close.
			if r.discardUntilEOF(p) {
				r.on(func(c *closeState) actions { return c.drained(d) })
			}
			return false
		}
		if !r.readResult(d, err) {
			return false
		}
	}
}

// readResult handles the error of a fill in direction d; it reports
// whether the pump goes on.
func (r *relay) readResult(d direction, err error) bool {
	switch {
	case err == nil:
		return true
	case err == io.EOF:
		p := r.side[d.from()].pipe
		partial := p.pending()
		p.discardAll() // a partial unit is never forwarded
		r.on(func(c *closeState) actions { return c.fin(d, partial) })
		return false
	case errors.Is(err, syscall.ETIMEDOUT):
		// TCP_USER_TIMEOUT: sent data went unacknowledged. (Checked
		// first: syscall.Errno counts ETIMEDOUT as a deadline too.)
		r.ioError(d, true, err)
		return false
	case errors.Is(err, os.ErrDeadlineExceeded) && d == clientToBackend:
		return r.clientTimer()
	default:
		r.ioError(d, true, err)
		return false
	}
}

// forward writes whole units to direction d's destination, or drops them
// if Guard has already ended that side's stream. It reports false if the
// pump must stop.
func (r *relay) forward(d direction, b []byte, s scan) bool {
	to := &r.side[d.to()]
	to.wmu.Lock()
	r.mu.Lock()
	ok := r.core.unit(d, s.header, s.end)
	if s.toTLS && d == backendToClient {
		// <proceed/>: TLS between the remote server and the backend
		// from now on, which Guard cannot speak into.
		r.core.raw = true
	}
	r.armLocked()
	r.mu.Unlock()
	var err error
	if ok {
		if d == backendToClient {
			b = r.outgoing(b, s)
		}
		if _, err = to.conn.Write(b); err != nil {
			r.mu.Lock()
			r.core.writeFailed(d.to())
			r.mu.Unlock()
		}
	}
	to.wmu.Unlock()
	if err != nil {
		r.ioError(d, false, err)
		// A client that cannot be written to is gone, but the backend's
		// pump goes on (dropping what it reads) until the backend's FIN:
		// see closeState.clientFailed.
		return d == backendToClient && !r.isClosed()
	}
	r.lastActive.Store(time.Now().UnixNano())
	r.relayedBytes[d].Add(int64(len(b)))
	r.metrics.relayed(d, len(b))
	return true
}

// discardUntilEOF reads and discards p's input until EOF (true) or an error or close
// (false). It reads the socket itself: a layer over it (a WebSocket's
// decoder, TLS) may refuse again what it refused already, and a socket
// closed with unread input would reset the peer.
func (r *relay) discardUntilEOF(p *pipe) bool {
	for {
		if err := p.wait.wait(); err != nil {
			return false
		}
		buf := getBuf()
		_, err := p.sock.Read(buf)
		putBuf(buf)
		if err == io.EOF {
			return true
		}
		if err != nil {
			r.closeAll("", false, false)
			return false
		}
	}
}

// drainClient reads and discards the client's input after Guard ended its
// stream, then records the client's FIN. It returns false: the pump ends.
func (r *relay) drainClient() bool {
	p := r.side[sideClient].pipe
	p.setReadDeadline(time.Time{})
	p.discardAll()
	if r.discardUntilEOF(p) {
		r.on(func(c *closeState) actions { return c.drained(clientToBackend) })
	}
	return false
}

// syntaxError handles bytes a side sent that are not acceptable XMPP.
func (r *relay) syntaxError(d direction, se *xmpp.SyntaxError) {
	if d == backendToClient {
		r.log.Warn("backend sent malformed data", "error", se)
		r.on(func(c *closeState) actions { return c.backendBroke(policy.BackendGarbage) })
		return
	}
	ev := eventForSyntax(se)
	r.log.Info("client stream error", "event", ev, "error", se)
	r.on(func(c *closeState) actions { return c.endBoth(ev, se.Msg) })
}

// ioError handles a failed read (onRead) or write in direction d.
func (r *relay) ioError(d direction, onRead bool, err error) {
	if errors.Is(err, net.ErrClosed) {
		return // the close itself
	}
	clientSide := (d == clientToBackend) == onRead
	r.log.Debug("relay I/O error", "direction", d, "read", onRead, "error", err)
	if !clientSide {
		ev := backendEvent(err)
		r.on(func(c *closeState) actions { return c.backendBroke(ev) })
		return
	}
	// The client is gone or unresponsive (reset, TCP_USER_TIMEOUT).
	unanswered := errors.Is(err, syscall.ETIMEDOUT)
	r.on(func(c *closeState) actions { return c.clientFailed(unanswered) })
}

func (r *relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.core.closed
}
