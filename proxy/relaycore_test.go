package proxy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/policy"
)

// The close state machine without sockets: each case is a sequence of
// events, as the pumps, the timer and a drain report them, and the wire it
// must produce, as a driver that carries out every action at once (the
// relay, without the concurrency) would write it.

// coreWire carries out a closeState's actions the way relayend.go does,
// recording what would go on the wire instead of writing it.
type coreWire struct {
	c   closeState
	log []string
}

func (w *coreWire) emit(format string, args ...string) {
	w.log = append(w.log, strings.NewReplacer(args...).Replace(format))
}

func (w *coreWire) do(a actions) {
	for _, x := range a.all() {
		switch x.kind {
		case actEndClient:
			se := defaultPolicy.Decide(x.ev, policy.Context{})
			if se.Text == "" {
				se.Text = x.text
			}
			if frame, ok := w.c.lastToClient(x.ev, se); ok {
				if len(frame) > 0 {
					w.emit("client< " + string(frame))
				}
				w.emit("client< FIN")
			}
		case actFINClient:
			if w.c.finToClient() {
				w.emit("client< FIN")
			}
		case actStreamEndClient:
			if frame, ok := w.c.streamEndToClient(); ok {
				w.emit("client< " + string(frame))
				w.emit("client< FIN")
			}
		case actEndBackend:
			if streamEnd, ok := w.c.lastToBackend(); ok {
				if streamEnd {
					w.emit("backend< </stream:stream>")
				}
				w.emit("backend< FIN")
			}
		case actCloseClient:
			w.c.gone(sideClient)
			w.emit("client closed")
		case actResetBackend:
			w.c.gone(sideBackend)
			w.emit("backend reset")
		case actCloseAll:
			if w.c.close(x.reason) {
				switch {
				case x.reset:
					w.emit("close both, backend reset")
				default:
					w.emit("close both")
				}
			}
		case actCloseIfFIN:
			if w.c.bothFIN() && w.c.close("") {
				w.emit("close both")
			}
		}
	}
}

// step is one event of a sequence.
type step func(w *coreWire)

// unit: whole units read in direction d; end: they hold the side's
// </stream:stream>; header: a stream header (a restart).
func unit(d direction, text string, header, end bool) step {
	return func(w *coreWire) {
		if w.c.unit(d, header, end) {
			if d == clientToBackend {
				w.emit("backend< " + text)
			} else {
				w.emit("client< " + text)
			}
		}
	}
}

func finFrom(d direction, partial bool) step {
	return func(w *coreWire) { w.do(w.c.fin(d, partial)) }
}
func drainedFrom(d direction) step { return func(w *coreWire) { w.do(w.c.drained(d)) } }
func endBoth(ev policy.Event, text string) step {
	return func(w *coreWire) { w.do(w.c.endBoth(ev, text)) }
}
func drainStep(ev policy.Event) step    { return func(w *coreWire) { w.do(w.c.drain(ev)) } }
func backendBroke(ev policy.Event) step { return func(w *coreWire) { w.do(w.c.backendBroke(ev)) } }
func clientFailed(unanswered bool) step {
	return func(w *coreWire) { w.do(w.c.clientFailed(unanswered)) }
}
func writeFailed(s side) step { return func(w *coreWire) { w.c.writeFailed(s) } }
func halfCloseExpires() step  { return func(w *coreWire) { w.do(w.c.expired()) } }

const (
	cEnd = "</stream:stream>"
	msg  = "<message><body>hi</body></message>"
)

var streamID = regexp.MustCompile(` id='[^']*'`)

func TestCloseStateSequences(t *testing.T) {
	c2b, b2c := clientToBackend, backendToClient
	cases := []struct {
		name   string
		raw    bool
		steps  []step
		wire   []string
		reason string
	}{{
		name:  "client closes first: </stream:stream> each way, client's FIN first",
		steps: []step{unit(c2b, cEnd, false, true), unit(b2c, cEnd, false, true), finFrom(c2b, false), finFrom(b2c, false)},
		wire: []string{"backend< " + cEnd, "client< " + cEnd,
			// The client's FIN is passed on with </stream:stream> already
			// sent by the client: only the FIN; then the backend's.
			"backend< FIN", "client< FIN", "close both"},
		reason: ReasonClientClosed,
	}, {
		name:   "client closes first: the backend's FIN first",
		steps:  []step{unit(c2b, cEnd, false, true), unit(b2c, cEnd, false, true), finFrom(b2c, false), finFrom(c2b, false)},
		wire:   []string{"backend< " + cEnd, "client< " + cEnd, "client< FIN", "backend< FIN", "close both"},
		reason: ReasonClientClosed,
	}, {
		name:   "backend closes first",
		steps:  []step{unit(b2c, cEnd, false, true), unit(c2b, cEnd, false, true), finFrom(b2c, false), finFrom(c2b, false)},
		wire:   []string{"client< " + cEnd, "backend< " + cEnd, "client< FIN", "backend< FIN", "close both"},
		reason: ReasonBackendClosed,
	}, {
		name: "a client's FIN without </stream:stream>: the backend gets a clean end",
		steps: []step{unit(c2b, msg, false, false), finFrom(c2b, false),
			unit(b2c, cEnd, false, true), finFrom(b2c, false)},
		wire: []string{"backend< " + msg, "backend< " + cEnd, "backend< FIN",
			"client< " + cEnd, "client< FIN", "close both"},
		reason: ReasonClientClosed,
	}, {
		name:  "the backend's FIN without </stream:stream> is a failure the client hears of",
		steps: []step{unit(b2c, msg, false, false), finFrom(b2c, false), finFrom(c2b, false)},
		wire: []string{"client< " + msg,
			"client< <stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>backend closed the connection</text></stream:error></stream:stream>",
			"client< FIN", "backend< </stream:stream>", "backend< FIN", "close both"},
		reason: "backend_closed",
	}, {
		name:  "the backend's FIN mid-stanza, after its </stream:stream>, still an error",
		steps: []step{unit(b2c, cEnd, false, true), finFrom(b2c, true), finFrom(c2b, false)},
		// The client has </stream:stream>: nothing more than the FIN; the
		// backend's stream, which the client did not close, is completed.
		wire:   []string{"client< " + cEnd, "client< FIN", "backend< " + cEnd, "backend< FIN", "close both"},
		reason: ReasonBackendClosed,
	}, {
		name:  "the backend ignores the client's close: half_close ends it, with </stream:stream> for the client",
		steps: []step{unit(c2b, cEnd, false, true), finFrom(c2b, false), halfCloseExpires()},
		wire: []string{"backend< " + cEnd, "backend< FIN",
			"client< " + cEnd, "client< FIN", "close both, backend reset"},
		reason: ReasonHalfCloseTimeout,
	}, {
		name:   "the client ignores the backend's close: half_close, the backend finished and is not reset",
		steps:  []step{unit(b2c, cEnd, false, true), finFrom(b2c, false), halfCloseExpires()},
		wire:   []string{"client< " + cEnd, "client< FIN", "close both"},
		reason: ReasonHalfCloseTimeout,
	}, {
		name: "bad input from the client mid-stanza: the error at the unit boundary, the backend ended cleanly",
		steps: []step{unit(c2b, msg, false, false), endBoth(policy.NotWellFormed, "bad"),
			unit(c2b, msg, false, false), unit(b2c, msg, false, false),
			drainedFrom(c2b), unit(b2c, cEnd, false, true), finFrom(b2c, false)},
		wire: []string{"backend< " + msg,
			"client< <stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad</text></stream:error></stream:stream>",
			"client< FIN", "backend< " + cEnd, "backend< FIN",
			// Nothing goes to a side Guard has ended.
			"close both"},
		reason: "not_well_formed",
	}, {
		name:  "the backend breaks: the client hears of it, the backend is reset",
		steps: []step{unit(b2c, msg, false, false), backendBroke(policy.BackendGarbage), drainedFrom(c2b)},
		wire: []string{"client< " + msg,
			"client< <stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>backend sent malformed data</text></stream:error></stream:stream>",
			"client< FIN", "backend reset", "close both"},
		reason: "backend_garbage",
	}, {
		name:  "a drain during half-close: the client's clean close becomes the shutdown",
		steps: []step{unit(c2b, cEnd, false, true), drainStep(policy.Shutdown), finFrom(b2c, false), finFrom(c2b, false)},
		wire: []string{"backend< " + cEnd,
			"client< <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
			"client< FIN", "backend< FIN", "close both"},
		reason: "shutdown",
	}, {
		name:   "a drain after the backend's </stream:stream>: only the FINs",
		steps:  []step{unit(b2c, cEnd, false, true), drainStep(policy.Shutdown), finFrom(b2c, false), finFrom(c2b, false)},
		wire:   []string{"client< " + cEnd, "client< FIN", "backend< " + cEnd, "backend< FIN", "close both"},
		reason: ReasonBackendClosed,
	}, {
		name:  "a drain while the client awaits the header of its restarted stream: Guard's own header first",
		steps: []step{unit(c2b, "<stream:stream>", true, false), drainStep(policy.Shutdown), finFrom(c2b, false)},
		wire: []string{"backend< <stream:stream>",
			"client< <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.net' id='X' version='1.0' xml:lang='en'><stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
			"client< FIN", "backend< " + cEnd, "backend< FIN"},
		reason: "shutdown",
	}, {
		name: "a drain: what the client sent before it heard still reaches the backend, ended at the client's FIN",
		steps: []step{drainStep(policy.Shutdown), unit(c2b, msg, false, false), unit(b2c, msg, false, false),
			finFrom(c2b, false), unit(b2c, cEnd, false, true), finFrom(b2c, false)},
		wire: []string{"client< <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
			"client< FIN", "backend< " + msg, "backend< " + cEnd, "backend< FIN", "close both"},
		reason: "shutdown",
	}, {
		name:  "a drained client that never sends its FIN: at half_close the backend still gets a clean end, not a reset",
		steps: []step{drainStep(policy.Shutdown), halfCloseExpires()},
		wire: []string{"client< <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
			"client< FIN", "backend< " + cEnd, "backend< FIN", "close both"},
		reason: "shutdown",
	}, {
		name:   "the client's socket fails: closed at once, the backend ended and waited for",
		steps:  []step{clientFailed(false), unit(b2c, msg, false, false), finFrom(b2c, false)},
		wire:   []string{"client closed", "backend< " + cEnd, "backend< FIN", "close both"},
		reason: ReasonClientError,
	}, {
		name:  "an unanswered probe: connection-timeout, then the client's socket closed",
		steps: []step{clientFailed(true), finFrom(b2c, false)},
		wire: []string{"client< <stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no answer to a keepalive</text></stream:error></stream:stream>",
			"client< FIN", "client closed", "backend< " + cEnd, "backend< FIN", "close both"},
		reason: "probe_unanswered",
	}, {
		name:   "a write to the client that failed mid-unit: nothing more is added to it",
		steps:  []step{writeFailed(sideClient), endBoth(policy.IdleTimeout, ""), finFrom(b2c, false), drainedFrom(c2b)},
		wire:   []string{"backend< " + cEnd, "backend< FIN", "close both"},
		reason: "idle_timeout",
	}, {
		name:   "raw: every end is a bare FIN",
		raw:    true,
		steps:  []step{unit(b2c, "bytes", false, false), finFrom(b2c, false), endBoth(policy.Shutdown, ""), drainedFrom(c2b)},
		wire:   []string{"client< bytes", "client< FIN", "backend< FIN", "close both"},
		reason: ReasonBackendClosed,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &coreWire{c: closeState{raw: tc.raw, domain: "example.net"}}
			for _, s := range tc.steps {
				s(w)
			}
			got := make([]string, len(w.log))
			for i, l := range w.log {
				got[i] = streamID.ReplaceAllString(l, " id='X'")
			}
			if strings.Join(got, "\n") != strings.Join(tc.wire, "\n") {
				t.Errorf("wire:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.wire, "\n  "))
			}
			if w.c.reason != tc.reason {
				t.Errorf("reason %q, want %q", w.c.reason, tc.reason)
			}
			if !w.c.closing {
				t.Error("the close never started: half_close would not bound it")
			}
		})
	}
}
