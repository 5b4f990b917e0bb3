package proxy

import (
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the relay's close state machine, without I/O: what each side
// has done (its FIN, its </stream:stream>), whether Guard has sent a side its
// last bytes, who ends the connection and why, and what Guard writes last.
// The relay (relay.go) reports events to it and carries out the actions it
// returns; a table of event sequences tests it without sockets
// (relaycore_test.go).
//
// Events record what a side did and return actions. An action that writes
// a side's last bytes is resolved when it runs, under that side's write
// lock (lastToClient, lastToBackend, streamEndToClient), since a unit being
// forwarded at the same time may change what is owed: a backend's
// </stream:stream> that went out first leaves the client owed only a FIN.

// side names one peer of a relayed connection. Direction d reads from side
// d.from() and writes to d.to().
type side int

const (
	sideClient side = iota
	sideBackend
)

func (d direction) from() side { return side(d) }
func (d direction) to() side   { return 1 - side(d) }

// peerState is what one side has done, and what Guard has done to it.
type peerState struct {
	fin       bool // its FIN has been read (or its socket is gone)
	streamEnd bool // its </stream:stream> has been forwarded
	done      bool // Guard sent it its last bytes and a FIN, or cannot write to it: nothing more goes to it
}

// closeState is the close state machine of one relayed connection. Every
// method is called with the relay's mu held.
type closeState struct {
	peer        [2]peerState
	raw         bool       // no XMPP: nothing to say, every end is a FIN
	domain      string     // the domain the client asked for, for Guard's own header
	peerDomain  string     // s2s: the remote server's domain, the to of that header
	stream      StreamKind // c2s or s2s: the namespace of Guard's own header
	awaitHeader bool       // the client restarted its stream and has not had the backend's new header
	closing     bool       // the half_close timer runs (or ran)
	draining    bool       // ended by a drain: the client's units still go to the backend until its FIN
	closed      bool       // both sockets are closed
	reason      string     // why the connection ends; the first cause wins
}

// actionKind is one thing the relay does for the close state machine.
type actionKind uint8

const (
	// actEndClient: the stream error ev (after Guard's own header if the
	// client's restarted stream has none), then a FIN; see lastToClient.
	actEndClient actionKind = iota + 1
	// actFINClient: only a FIN to the client (the backend's clean end
	// passed on).
	actFINClient
	// actStreamEndClient: </stream:stream> and a FIN to a client still owed
	// them when half_close runs out; see streamEndToClient.
	actStreamEndClient
	// actEndBackend: </stream:stream> if the backend's stream is open, and a
	// FIN; see lastToBackend.
	actEndBackend
	// actCloseClient: the client's socket is closed now (it is gone).
	actCloseClient
	// actResetBackend: the backend's socket is reset and closed now (it
	// broke).
	actResetBackend
	// actCloseAll: both sockets are closed now; reset: the backend with
	// SO_LINGER 0; expiry: half_close ran out.
	actCloseAll
	// actCloseIfFIN: both sockets are closed now if both sides have sent
	// their FIN by the time it runs.
	actCloseIfFIN
)

// action is one step the relay takes.
type action struct {
	kind   actionKind
	ev     policy.Event // actEndClient: the stream error's event
	text   string       // actEndClient: the parser's detail
	reason string       // actCloseAll
	reset  bool         // actCloseAll
	expiry bool         // actCloseAll
}

// actions is a short list of actions, in the order they are taken, without
// an allocation.
type actions struct {
	list [4]action
	n    int
}

func (a *actions) add(x action) { a.list[a.n] = x; a.n++ }

func (a *actions) all() []action { return a.list[:a.n] }

// startClosing starts the close (the relay then arms the half_close timer)
// and sets the reason unless one is set.
func (c *closeState) startClosing(reason string) {
	if c.reason == "" {
		c.reason = reason
	}
	if !c.closed {
		c.closing = true
	}
}

// reasonFor is the reason a connection ends when direction d's side closes
// (its stream or TCP) first.
func reasonFor(d direction) string {
	if d == clientToBackend {
		return ReasonClientClosed
	}
	return ReasonBackendClosed
}

// unit records whole units read in direction d, which hold a stream header
// (a restart) or the side's </stream:stream>, and reports whether they are
// forwarded: not once Guard has sent the destination its last bytes.
func (c *closeState) unit(d direction, header, end bool) (forward bool) {
	if c.peer[d.to()].done {
		return false
	}
	if header {
		// A restart: the client waits for the backend's new header.
		c.awaitHeader = d == clientToBackend
	}
	if end {
		c.peer[d.from()].streamEnd = true
		c.startClosing(reasonFor(d))
	}
	return true
}

// writeFailed records that a write to s failed, perhaps after a part of a
// unit went out: nothing may follow it.
func (c *closeState) writeFailed(s side) { c.peer[s].done = true }

// fin handles the FIN of direction d's source; partial: it came in the
// middle of a unit, which is dropped. A backend that ends TCP without
// </stream:stream>, or mid-stanza, is a failure the client hears of; a
// client that does so gets its stream completed toward the backend.
func (c *closeState) fin(d direction, partial bool) (a actions) {
	if d == backendToClient {
		clean := c.peer[sideBackend].streamEnd || c.peer[sideClient].done || c.raw
		if !clean || partial {
			a.add(c.endClient(policy.BackendClosed, ""))
		} else {
			a.add(action{kind: actFINClient})
		}
	} else {
		a.add(action{kind: actEndBackend})
	}
	c.finished(d, &a)
	return a
}

// drained records the FIN of direction d's source after Guard had ended
// that side's stream and read and dropped its input: the lingering close is
// over.
func (c *closeState) drained(d direction) (a actions) {
	c.finished(d, &a)
	return a
}

// finished records the FIN in direction d: both sockets close once both
// sides have sent theirs; until then the close is under way.
func (c *closeState) finished(d direction, a *actions) {
	c.peer[d.from()].fin = true
	if c.bothFIN() {
		a.add(action{kind: actCloseAll})
		return
	}
	c.startClosing(reasonFor(d))
}

// endClient starts ending the client's stream with ev's stream error.
func (c *closeState) endClient(ev policy.Event, text string) action {
	c.startClosing(eventReason(ev))
	return action{kind: actEndClient, ev: ev, text: text}
}

// endBoth ends the client's stream with ev's stream error and the
// backend's cleanly: a client's bad input, the idle limit, a drain.
func (c *closeState) endBoth(ev policy.Event, text string) (a actions) {
	a.add(c.endClient(ev, text))
	a.add(action{kind: actEndBackend})
	return a
}

// drain ends the stream because Guard is draining: the client hears ev's
// stream error (system-shutdown, or the configured redirect), and what it
// sent before it heard, already on its way, still reaches the backend,
// whose stream is ended cleanly at the client's FIN (or when half_close
// runs out): no message a client sent before the signal is lost.
func (c *closeState) drain(ev policy.Event) (a actions) {
	c.draining = true
	a.add(c.endClient(ev, ""))
	return a
}

// backendBroke ends a connection whose backend failed (reset, stalled,
// garbage): the client gets ev's stream error and the backend's socket is
// reset; the client's input is drained until its FIN or half_close.
func (c *closeState) backendBroke(ev policy.Event) (a actions) {
	a.add(c.endClient(ev, ""))
	a.add(action{kind: actResetBackend})
	return a
}

// clientFailed ends a connection whose client socket failed: closed at
// once (after connection-timeout if unanswered, TCP_USER_TIMEOUT, is set),
// while the backend is told the stream is over and its socket stays open,
// its input dropped, until its FIN or half_close: the backend counts the
// stream until it has closed its side, and so does its admission slot.
func (c *closeState) clientFailed(unanswered bool) (a actions) {
	reason := ReasonClientError
	if unanswered {
		a.add(c.endClient(policy.ProbeUnanswered, ""))
		reason = eventReason(policy.ProbeUnanswered)
	}
	if c.closed {
		return a
	}
	if c.reason == "" {
		c.reason = reason
	}
	a.add(action{kind: actCloseClient})
	a.add(action{kind: actEndBackend})
	a.add(action{kind: actCloseIfFIN})
	return a
}

// expired handles the end of half_close: a client still owed
// </stream:stream> gets it (the backend never answered the client's end of
// stream, or Guard's), then both sockets close; a backend that has not sent
// its FIN is reset rather than waited on.
func (c *closeState) expired() (a actions) {
	a.add(action{kind: actStreamEndClient})
	if c.draining && !c.peer[sideBackend].done {
		// A drained client that never sent its FIN: the backend still
		// gets its clean end, then the close.
		a.add(action{kind: actEndBackend})
		a.add(action{kind: actCloseAll, reason: ReasonHalfCloseTimeout, expiry: true})
		return a
	}
	a.add(action{kind: actCloseAll, reason: ReasonHalfCloseTimeout, reset: !c.peer[sideBackend].fin, expiry: true})
	return a
}

// lastToClient resolves actEndClient under the client's write lock: the
// bytes Guard writes the client last, given the stream error se that
// policy decided for ev, and whether to write at all (with a FIN).
func (c *closeState) lastToClient(ev policy.Event, se xmpp.StreamError) (frame []byte, write bool) {
	if c.peer[sideClient].done || c.closed {
		return nil, false // perhaps after a failed write, mid-stanza: add nothing
	}
	c.peer[sideClient].done = true
	switch {
	case c.raw:
		// Nothing to say in a stream Guard does not parse.
	case c.peer[sideBackend].streamEnd:
		// The client has its </stream:stream> already: only the FIN is left.
	case c.awaitHeader:
		frame = se.AppendTo(c.ownHeader())
	default:
		frame = se.AppendTo(nil)
	}
	if len(frame) > 0 && (c.reason == ReasonClientClosed || c.reason == ReasonBackendClosed) {
		// A stream error ends what began as a clean close: it is the
		// reason (data after the client's </stream:stream>, a drain).
		c.reason = eventReason(ev)
	}
	return frame, true
}

// finToClient resolves actFINClient: whether the FIN is still to send.
func (c *closeState) finToClient() bool {
	if c.peer[sideClient].done {
		return false
	}
	c.peer[sideClient].done = true
	return true
}

// streamEndOwed reports whether the client is still owed </stream:stream>.
func (c *closeState) streamEndOwed() bool {
	return !c.raw && !c.closed && !c.peer[sideClient].done && !c.peer[sideBackend].streamEnd
}

// streamEndToClient resolves actStreamEndClient: the bytes to write, or
// false when nothing is owed any more.
func (c *closeState) streamEndToClient() (frame []byte, write bool) {
	if !c.streamEndOwed() {
		return nil, false
	}
	c.peer[sideClient].done = true
	if c.awaitHeader {
		// The client restarted its stream and has no header for it yet.
		return append(c.ownHeader(), xmpp.StreamEnd...), true
	}
	return xmpp.StreamEnd, true
}

// lastToBackend resolves actEndBackend under the backend's write lock:
// whether to write at all (a FIN), and whether </stream:stream> goes first.
func (c *closeState) lastToBackend() (streamEnd, write bool) {
	if c.peer[sideBackend].done || c.closed {
		return false, false
	}
	c.peer[sideBackend].done = true
	c.startClosing("")
	return !c.peer[sideClient].streamEnd && !c.raw, true
}

// gone records that Guard closed side s's socket (actCloseClient,
// actResetBackend): nothing more goes to it, nothing more comes from it.
func (c *closeState) gone(s side) {
	c.peer[s].done = true
	c.peer[s].fin = true
}

// ownHeader is Guard's stream header toward the client.
func (c *closeState) ownHeader() []byte {
	return ownHeader(c.domain, c.peerDomain, c.stream.ns())
}

// bothFIN reports whether both sides have sent their FIN (actCloseIfFIN).
func (c *closeState) bothFIN() bool { return c.peer[sideClient].fin && c.peer[sideBackend].fin }

// close records that both sockets close now with reason, and reports
// whether this is the first close.
func (c *closeState) close(reason string) bool {
	if c.closed {
		return false
	}
	c.closed = true
	switch {
	case c.reason == "":
		c.reason = reason
	case reason == ReasonHalfCloseTimeout && (c.reason == ReasonClientClosed || c.reason == ReasonBackendClosed):
		c.reason = reason // the other side never finished: worth telling apart
	}
	if c.reason == "" {
		c.reason = ReasonClientClosed
	}
	return true
}

// mayProbe reports whether a keepalive may go to the client: its stream
// is open both ways, and framed.
func (c *closeState) mayProbe() bool {
	// Not into a stream Guard does not parse: a space in TLS passed
	// through would break it.
	return !c.raw && !c.peer[sideClient].done && !c.closed && !c.peer[sideBackend].streamEnd
}
