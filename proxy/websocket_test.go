package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/wsclient"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/websocket"
)

// XMPP over WebSocket through Guard, frame by frame: the upgrade and its
// refusals, the translation both ways, and every end Guard causes as a
// stream error message, <close/>, a Close frame and a FIN.

const (
	wsOpen  = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	wsClose = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
	// The stream header Guard sends the backend for wsOpen.
	wsBackendHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
	// The backend's header and features as the client gets them.
	wsBackendOpen = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='b1' version='1.0'/>"
	wsFeatures    = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)

// wsClient is a test's WebSocket client: wsclient.Client failing the test.
type wsClient struct {
	t *testing.T
	*wsclient.Client
}

// wsDial connects and sends an upgrade with extra header lines; it returns
// the client and the response.
func wsDial(t *testing.T, addr, path, extra string) (*wsClient, *http.Response) {
	t.Helper()
	c, resp, err := wsclient.Dial(addr, path, extra)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return &wsClient{t, c}, resp
}

// wsConnect upgrades with the xmpp subprotocol and asserts 101.
func wsConnect(t *testing.T, addr string) *wsClient {
	t.Helper()
	ws, resp := wsDial(t, addr, "/xmpp-websocket", "Sec-WebSocket-Protocol: xmpp\r\n")
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Fatalf("upgrade answered %s %v", resp.Status, resp.Header)
	}
	return ws
}

// send writes one masked frame.
func (w *wsClient) send(op websocket.Opcode, payload string) {
	w.t.Helper()
	if err := w.Send(byte(op), payload); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) next() (websocket.Opcode, string, error) {
	op, p, err := w.Next()
	return websocket.Opcode(op), p, err
}

func (w *wsClient) nextData() (websocket.Opcode, string, error) {
	op, p, err := w.NextData()
	return websocket.Opcode(op), p, err
}

// expect reads text messages and fails unless they are want, in order
// (Pings in between are answered and skipped).
func (w *wsClient) expect(want ...string) {
	w.t.Helper()
	for _, m := range want {
		op, p, err := w.nextData()
		if err != nil || op != websocket.OpText || p != m {
			w.t.Fatalf("got %v %q (%v)\nwant text %q", op, p, err, m)
		}
	}
}

var streamErrorMsg = regexp.MustCompile(`^<stream:error xmlns:stream='http://etherx\.jabber\.org/streams'><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>(?:<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>([^<]*)</text>)?</stream:error>$`)

// expectEnd reads Guard's end of the stream: optionally its own <open/>,
// the stream error message (cond, text), <close/>, a Close frame of 1000,
// then EOF (a FIN, not a reset).
func (w *wsClient) expectEnd(withOpen bool, cond, text string) {
	w.t.Helper()
	if withOpen {
		_, p, err := w.nextData()
		if err != nil || !regexp.MustCompile(`^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'( from='localhost')? id='[0-9a-f]{16}' version='1\.0' xml:lang='en'/>$`).MatchString(p) {
			w.t.Fatalf("got %q (%v); want Guard's <open/>", p, err)
		}
	}
	if cond != "" {
		_, p, err := w.nextData()
		m := streamErrorMsg.FindStringSubmatch(p)
		if err != nil || m == nil || m[1] != cond || m[2] != xmlEscaper.Replace(text) {
			w.t.Fatalf("got %q (%v); want the stream error %s %q as its own message", p, err, cond, text)
		}
	}
	w.expect(wsClose)
	w.expectCloseFrame(websocket.CloseNormal)
}

// expectCloseFrame reads a Close frame of code, then EOF, and answers as a
// browser does.
func (w *wsClient) expectCloseFrame(code uint16) {
	w.t.Helper()
	if err := w.ExpectClose(int(code)); err != nil {
		w.t.Fatal(err)
	}
}

// wsOpenStream upgrades, opens the stream and has the backend answer.
func wsOpenStream(t *testing.T, b *testBackend, addr string) (*wsClient, *net.TCPConn) {
	t.Helper()
	ws := wsConnect(t, addr)
	ws.send(websocket.OpText, wsOpen)
	bc := b.accept(t)
	expect(t, bc, wsBackendHeader)
	write(t, bc, backendHeader+features)
	ws.expect(wsBackendOpen, wsFeatures)
	return ws, bc
}

func wsListener() ListenerConfig {
	return ListenerConfig{WebSocket: &WebSocket{}}
}

func TestWebSocketRelay(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), wsListener())
	ws, bc := wsOpenStream(t, b, addr)
	// A stanza each way: as it is toward the backend, with its namespace
	// declared toward the client; a whitespace keepalive from the backend
	// is no message; the backend's -PLUS mechanism is not offered.
	ws.send(websocket.OpText, "<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>")
	expect(t, bc, "<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>")
	write(t, bc, " "+message+" ")
	ws.expect("<message xmlns='jabber:client'" + message[len("<message"):])
	// A restart after SASL: a new <open/> is a new header.
	write(t, bc, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	ws.expect("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	ws.send(websocket.OpText, wsOpen)
	expect(t, bc, wsBackendHeader)
	write(t, bc, backendHeader+"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
	ws.expect(wsBackendOpen, wsFeatures)
	// The client's <close/> is the backend's </stream:stream>; the
	// backend's answer is <close/>, then Guard's Close frame and FIN.
	ws.send(websocket.OpText, wsClose)
	expect(t, bc, streamEnd)
	write(t, bc, streamEnd)
	bc.CloseWrite()
	ws.expect(wsClose)
	ws.expectCloseFrame(websocket.CloseNormal)
	expectEOF(t, bc, "")
	ws.Conn.Close()
	waitOpen(t, s, 0)
}

func TestWebSocketUpgradeRefused(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	_, addr := startGuard(t, b.addr(), ListenerConfig{WebSocket: &WebSocket{AllowedOrigins: []string{"https://chat.example.net"}}})
	cases := []struct {
		name, path, extra string
		status            int
		body              string
	}{
		{"no subprotocol", "/xmpp-websocket", "", 400, "the xmpp subprotocol is required (RFC 7395)\n"},
		{"another subprotocol", "/xmpp-websocket", "Sec-WebSocket-Protocol: mqtt\r\n", 400, "the xmpp subprotocol is required (RFC 7395)\n"},
		{"a foreign origin", "/xmpp-websocket", "Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://evil.example.com\r\n", 403, "this origin may not open XMPP streams here\n"},
		{"another path", "/ws", "Sec-WebSocket-Protocol: xmpp\r\n", 404, "XMPP over WebSocket is at /xmpp-websocket\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, resp := wsDial(t, addr, tc.path, tc.extra)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("%s %q; want %d %q", resp.Status, body, tc.status, tc.body)
			}
			if _, err := ws.BR.ReadByte(); err != io.EOF {
				t.Fatalf("after the refusal: %v; want EOF (a FIN)", err)
			}
		})
	}
	// The listed origin is let in.
	ws, resp := wsDial(t, addr, "/xmpp-websocket", "Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://chat.example.net\r\n")
	if resp.StatusCode != 101 {
		t.Fatalf("the listed origin got %s", resp.Status)
	}
	ws.Conn.Close()
	b.noConn(t)
}

// Every end Guard causes, in WebSocket form; nothing of bad input reaches
// the backend.
func TestWebSocketEnds(t *testing.T) {
	t.Run("backend refused", func(t *testing.T) {
		leakcheck.Check(t)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := ln.Addr().String()
		ln.Close()
		_, addr := startGuard(t, dead, ListenerConfig{WebSocket: &WebSocket{}, Backend: Backend{Retries: -1}})
		ws := wsConnect(t, addr)
		ws.send(websocket.OpText, wsOpen)
		ws.expectEnd(true, "internal-server-error", "backend unreachable")
	})
	t.Run("no <open/> in time", func(t *testing.T) {
		leakcheck.Check(t)
		b := newTestBackend(t)
		cfg := wsListener()
		cfg.Timeouts.Handshake = 200 * time.Millisecond
		_, addr := startGuard(t, b.addr(), cfg)
		ws := wsConnect(t, addr)
		ws.expectEnd(true, "connection-timeout", "no stream header in time")
		b.noConn(t)
	})
	t.Run("a stanza before <open/>", func(t *testing.T) {
		leakcheck.Check(t)
		b := newTestBackend(t)
		_, addr := startGuard(t, b.addr(), wsListener())
		ws := wsConnect(t, addr)
		ws.send(websocket.OpText, "<message xmlns='jabber:client'><body>hi</body></message>")
		ws.expectEnd(true, "not-well-formed", "expected a stream header")
		b.noConn(t)
	})
	for _, tc := range []struct {
		name, cond, text string
		send             func(ws *wsClient) // nil: nothing, the idle limit
	}{
		{"idle", "connection-timeout", "idle too long", nil},
		{"not well-formed", "not-well-formed", "end tag does not match <body>", func(ws *wsClient) {
			ws.send(websocket.OpText, "<message xmlns='jabber:client'><body>x</message>")
		}},
		{"two elements in a message", "policy-violation", "a message must hold exactly one element (RFC 7395 3.3.3)", func(ws *wsClient) {
			ws.send(websocket.OpText, "<presence/><presence/>")
		}},
		{"a binary frame", "policy-violation", "a binary frame: XMPP over WebSocket takes text messages", func(ws *wsClient) {
			ws.send(websocket.OpBinary, "<presence/>")
		}},
		{"oversize", "policy-violation", "stanza too large", func(ws *wsClient) {
			ws.send(websocket.OpText, "<message><body>"+strings.Repeat("x", 2000)+"</body></message>")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			b := newTestBackend(t)
			cfg := wsListener()
			cfg.MaxStanzaSize = 1024
			if tc.send == nil {
				cfg.Timeouts.Idle = 200 * time.Millisecond
			}
			s, addr := startGuard(t, b.addr(), cfg)
			ws, bc := wsOpenStream(t, b, addr)
			if tc.send != nil {
				tc.send(ws)
			}
			ws.expectEnd(false, tc.cond, tc.text)
			// The backend gets a clean end, and nothing of the bad input.
			expectEOF(t, bc, streamEnd)
			bc.Close()
			waitOpen(t, s, 0)
		})
	}
	t.Run("backend killed mid-session", func(t *testing.T) {
		leakcheck.Check(t)
		b := newTestBackend(t)
		s, addr := startGuard(t, b.addr(), wsListener())
		ws, bc := wsOpenStream(t, b, addr)
		write(t, bc, "<message><bo")
		bc.SetLinger(0)
		bc.Close()
		ws.expectEnd(false, "internal-server-error", "backend connection reset")
		waitOpen(t, s, 0)
	})
	t.Run("drain", func(t *testing.T) {
		leakcheck.Check(t)
		b := newTestBackend(t)
		s, addr := startGuard(t, b.addr(), wsListener())
		ws, bc := wsOpenStream(t, b, addr)
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() { done <- s.Drain(ctx, 0) }()
		ws.expectEnd(false, "system-shutdown", "")
		expectEOF(t, bc, streamEnd)
		bc.Close()
		if err := <-done; err != nil {
			t.Fatalf("Drain: %v", err)
		}
	})
}

// A client that does not answer Pings is ended with connection-timeout.
func TestWebSocketMissingPong(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	cfg := wsListener()
	cfg.Timeouts.Probe = 100 * time.Millisecond
	cfg.Timeouts.ProbeTimeout = 100 * time.Millisecond
	s, addr := startGuard(t, b.addr(), cfg)
	ws, bc := wsOpenStream(t, b, addr)
	pings := 0
	for {
		op, p, err := ws.next()
		if err != nil {
			t.Fatal(err)
		}
		if op == websocket.OpPing {
			pings++ // not answered
			continue
		}
		m := streamErrorMsg.FindStringSubmatch(p)
		if op != websocket.OpText || m == nil || m[1] != "connection-timeout" || m[2] != "no answer to a keepalive" {
			t.Fatalf("got %v %q; want connection-timeout", op, p)
		}
		break
	}
	if pings == 0 {
		t.Fatal("no Ping before the timeout")
	}
	// The client is gone for Guard: its socket closed at once (no <close/>
	// owed to a dead peer), the backend ended cleanly.
	expectEOF(t, bc, streamEnd)
	bc.Close()
	waitOpen(t, s, 0)
}

// The transport and the stream kind are on guard_listener_info, and on the
// connection log's line; a reload that changes them leaves no stale series.
func TestWebSocketTransportMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Options{Logger: testLogger(t), Metrics: NewMetrics(reg)})
	t.Cleanup(func() { s.Close() })
	cfg := ListenerConfig{Name: "web", Address: "127.0.0.1:0", Backend: Backend{Name: "b", Address: "127.0.0.1:1"}, WebSocket: &WebSocket{}}
	if err := s.Apply([]ListenerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	want := "guard_listener_info{listener=\"web\",stream=\"c2s\",transport=\"websocket\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP guard_listener_info 1 for each listener, with the transport its clients come in on (tcp, websocket) and the kind of stream it takes (c2s, s2s): join on listener to split any listener metric by transport or stream.\n# TYPE guard_listener_info gauge\n"+want), "guard_listener_info"); err != nil {
		t.Fatal(err)
	}
	cfg.Address, cfg.WebSocket, cfg.Stream = s.Listeners()["web"], nil, StreamServer
	if err := s.Apply([]ListenerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	want = "guard_listener_info{listener=\"web\",stream=\"s2s\",transport=\"tcp\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP guard_listener_info 1 for each listener, with the transport its clients come in on (tcp, websocket) and the kind of stream it takes (c2s, s2s): join on listener to split any listener metric by transport or stream.\n# TYPE guard_listener_info gauge\n"+want), "guard_listener_info"); err != nil {
		t.Fatal(err)
	}
}

// wsStormClient opens a stream over WebSocket as client id and reports how
// it ended, without failing the test (it runs in its own goroutine): served
// (the backend's features, then a clean close both ways) or refused with a
// stream error message, <close/> and a Close frame of 1000, then a FIN;
// anything else (a Close without its code, a close without a Close frame:
// a browser's 1006, a reset) is an error.
func wsStormClient(addr, id string) stormOutcome {
	c, err := wsclient.DialXMPP(addr, "/xmpp-websocket")
	if err != nil {
		return stormOutcome{err: err}
	}
	defer c.Conn.Close()
	c.Send(wsclient.OpText, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' from='"+id+"' version='1.0'/>")
	var out stormOutcome
	for step := 0; ; step++ {
		op, p, err := c.Next()
		switch {
		case err != nil:
			return stormOutcome{err: fmt.Errorf("after %d messages: %w (a browser would see 1006)", step, err)}
		case op == wsclient.OpClose:
			if wsclient.CloseCode(p) != websocket.CloseNormal {
				return stormOutcome{err: fmt.Errorf("Close frame %q", p)}
			}
			if _, err := c.BR.ReadByte(); err != io.EOF {
				return stormOutcome{err: fmt.Errorf("after the Close frame: %v, not a FIN", err)}
			}
			if !out.served {
				c.Send(wsclient.OpClose, p)
			}
			if out.refused == "" && !out.served {
				return stormOutcome{err: errors.New("closed without a stream error")}
			}
			return out
		case p == wsFeatures:
			// Served: the client ends its stream and, not waiting for
			// the answer, its WebSocket (the overloaded backend answers
			// only once Guard has passed the FIN on).
			out.served = true
			c.Send(wsclient.OpText, wsClose)
			c.Send(wsclient.OpClose, "\x03\xe8")
		case streamErrorMsg.MatchString(p):
			out.refused = streamErrorMsg.FindStringSubmatch(p)[1]
		}
	}
}

// A storm of web clients against a backend over its capacity: every client
// is served or hears resource-constraint, as a stream error message with
// its Close frame; no client sees a close without one, or a reset; the
// backend never holds more than its capacity.
func TestWebSocketStorm(t *testing.T) {
	leakcheck.Check(t)
	const (
		capacity  = 5
		clients   = 40
		queueSize = 15
	)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	b := newOverloadedBackend(t, capacity, release)
	t.Cleanup(free)
	cfg := wsListener()
	cfg.Backend = Backend{Admission: Admission{MaxStreams: capacity, QueueSize: queueSize, QueueTimeout: 20 * time.Second}}
	s, addr := startGuard(t, b.ln.Addr().String(), cfg)
	outcomes := make([]stormOutcome, clients)
	var wg sync.WaitGroup
	var answered atomic.Int32
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = wsStormClient(addr, fmt.Sprintf("w%02d", i))
			answered.Add(1)
		}()
	}
	// Held by the backend and the queue until every other client has had
	// its answer, then let go.
	waitFor(t, "the refusals", func() bool { return answered.Load() == clients-capacity-queueSize })
	free()
	wg.Wait()
	served, refusals := tally(t, outcomes)
	onlyRefused(t, refusals, "resource-constraint")
	if maxOpen, resets, _ := b.stats(); maxOpen > capacity || resets > 0 {
		t.Errorf("backend held up to %d streams (capacity %d) and reset %d", maxOpen, capacity, resets)
	}
	if served != capacity+queueSize {
		t.Errorf("served %d, want %d (slots and queue)", served, capacity+queueSize)
	}
	waitOpen(t, s, 0)
}

// With see_other_uri, a drain that redirects sends web clients
// <close see-other-uri/> instead of a see-other-host stream error.
func TestWebSocketSeeOtherURI(t *testing.T) {
	leakcheck.Check(t)
	pol, err := policy.New(policy.Config{SeeOtherHost: "xmpp2.example.net", SeeOtherURI: "wss://xmpp2.example.net/xmpp-websocket",
		Overrides: map[policy.Event]policy.Override{policy.Shutdown: {Condition: "see-other-host"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t)
	cfg := wsListener()
	cfg.Policy = pol
	s, addr := startGuard(t, b.addr(), cfg)
	ws, bc := wsOpenStream(t, b, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Drain(ctx, 0) }()
	ws.expect("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://xmpp2.example.net/xmpp-websocket'/>")
	ws.expectCloseFrame(websocket.CloseNormal)
	expectEOF(t, bc, streamEnd)
	bc.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
