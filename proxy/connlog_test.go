package proxy

import (
	"bytes"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// ends returns the connection log's lines so far, decoded.
func (l *lockedBuffer) ends(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["@message"] == "stream ended" {
			out = append(out, m)
		}
	}
	return out
}

// startGuardLog runs a listener whose log, at info and in JSON, goes to
// the returned buffer.
func startGuardLog(t *testing.T, backend string, cfg ListenerConfig) (*Server, string, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	cfg.Name, cfg.Address, cfg.Backend.Name, cfg.Backend.Address = "test", "127.0.0.1:0", "b", backend
	s := New(Options{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: buf, JSONFormat: true})})
	addr, err := s.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String(), buf
}

// The connection log writes one line at info for every end, with why it
// ended, how long it ran, the bytes relayed each way, the backend and node,
// the client and the stream's domain.
func TestConnectionLog(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{Backend: Backend{Admission: Admission{MaxStreams: 1, QueueTimeout: time.Second}}})

	// A clean end, the client first.
	c, bc := openStream(t, b, addr)
	write(t, c, message)
	expect(t, bc, message)
	write(t, bc, message+message)
	expect(t, c, message+message)
	// A second client while the one slot is taken, with no queue: refused.
	c2 := dial(t, addr)
	write(t, c2, clientHeader)
	expectStreamError(t, c2, "", true, "localhost", "resource-constraint", "the server is at capacity; try again later")
	closeCleanly(t, c, bc)
	// Bad input.
	c3, bc3 := openStream(t, b, addr)
	write(t, c3, "<message><body>x</message>")
	got, _ := readAll(t, c3, 5*time.Second)
	if !bytes.Contains(got, []byte("<not-well-formed")) {
		t.Fatalf("got %q, want not-well-formed", got)
	}
	c3.Close()
	expectEOF(t, bc3, streamEnd)
	bc3.Close()
	waitOpen(t, s, 0)

	ends := logs.ends(t)
	byReason := map[string]map[string]any{}
	for _, e := range ends {
		byReason[e["reason"].(string)] = e
	}
	if len(ends) != 3 || len(byReason) != 3 {
		t.Fatalf("%d lines, want 3 (client_closed, queue_full, not_well_formed): %v", len(ends), ends)
	}
	clean := byReason["client_closed"]
	if clean == nil {
		t.Fatalf("no client_closed line: %v", ends)
	}
	for k, want := range map[string]any{
		"bytes_in": float64(len(message) + len(streamEnd)), "bytes_out": float64(2*len(message) + len(streamEnd)),
		"backend": "b", "node": b.addr(), "to": "localhost", "listener": "test",
	} {
		if clean[k] != want {
			t.Errorf("client_closed line: %s = %v, want %v (%v)", k, clean[k], want, clean)
		}
	}
	if _, ok := clean["duration"].(string); !ok {
		t.Errorf("client_closed line has no duration: %v", clean)
	}
	if c, _ := clean["client"].(string); c == "" {
		t.Errorf("client_closed line: client %q", c)
	}
	if q := byReason["queue_full"]; q == nil || q["node"] != nil || q["bytes_in"] != float64(0) {
		t.Errorf("queue_full line %v: want no node, no bytes", q)
	}
	if byReason["not_well_formed"] == nil {
		t.Errorf("no not_well_formed line: %v", ends)
	}
}

// connections = "errors" leaves out clean ends; "off" writes nothing.
func TestConnectionLogModes(t *testing.T) {
	leakcheck.Check(t)
	for _, tt := range []struct {
		mode ConnLogMode
		want []string
	}{
		{ConnLogErrors, []string{"not_well_formed"}},
		{ConnLogOff, nil},
	} {
		b := newTestBackend(t)
		s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{ConnLog: ConnLog{Mode: tt.mode}})
		c, bc := openStream(t, b, addr)
		closeCleanly(t, c, bc)
		c, bc = openStream(t, b, addr)
		write(t, c, "<a x='1' x='2'/>")
		readAll(t, c, 5*time.Second)
		c.Close()
		expectEOF(t, bc, streamEnd)
		bc.Close()
		waitOpen(t, s, 0)
		var got []string
		for _, e := range logs.ends(t) {
			got = append(got, e["reason"].(string))
		}
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
			t.Errorf("mode %d: lines %v, want %v", tt.mode, got, tt.want)
		}
	}
}

// The other kinds of end, each with its line: the backend closing first,
// an idle timeout, a backend that refuses, and a client that never sends
// its header.
func TestConnectionLogKinds(t *testing.T) {
	leakcheck.Check(t)
	reasons := func(logs *lockedBuffer) []string {
		var got []string
		for _, e := range logs.ends(t) {
			got = append(got, e["reason"].(string))
		}
		return got
	}
	t.Run("backend_closed", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{})
		c, bc := openStream(t, b, addr)
		closeCleanly(t, bc, c)
		waitOpen(t, s, 0)
		if got := reasons(logs); len(got) != 1 || got[0] != "backend_closed" {
			t.Errorf("lines %v, want one backend_closed", got)
		}
	})
	t.Run("idle_timeout", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Idle: 200 * time.Millisecond, HalfClose: time.Second}})
		c, bc := openStream(t, b, addr)
		readAll(t, c, 5*time.Second)
		c.Close()
		readAll(t, bc, 5*time.Second)
		bc.Close()
		waitOpen(t, s, 0)
		if got := reasons(logs); len(got) != 1 || got[0] != "idle_timeout" {
			t.Errorf("lines %v, want one idle_timeout", got)
		}
	})
	t.Run("backend_refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close() // nothing listens there now
		s, addr, logs := startGuardLog(t, dead, ListenerConfig{})
		c := dial(t, addr)
		write(t, c, clientHeader)
		readAll(t, c, 10*time.Second)
		c.Close()
		waitOpen(t, s, 0)
		got := logs.ends(t)
		if len(got) != 1 || got[0]["reason"] != "backend_refused" || got[0]["node"] != nil {
			t.Errorf("lines %v, want one backend_refused without a node", got)
		}
	})
	t.Run("handshake_timeout", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Handshake: 200 * time.Millisecond, HalfClose: time.Second}})
		c := dial(t, addr)
		readAll(t, c, 5*time.Second)
		c.Close()
		waitOpen(t, s, 0)
		if got := reasons(logs); len(got) != 1 || got[0] != "handshake_timeout" {
			t.Errorf("lines %v, want one handshake_timeout", got)
		}
	})
}

// Data after the client's </stream:stream> is the event client-after-end:
// its stream error on the wire, its reason in the log; the backend sees
// the end of the stream and nothing after it.
func TestClientDataAfterEnd(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr, logs := startGuardLog(t, b.addr(), ListenerConfig{})
	c, bc := openStream(t, b, addr)
	write(t, c, streamEnd+"<message/>")
	expectStreamError(t, c, "", false, "", "not-well-formed", "data after the end of the stream")
	expectEOF(t, bc, streamEnd)
	bc.Close()
	waitOpen(t, s, 0)
	got := logs.ends(t)
	if len(got) != 1 || got[0]["reason"] != "client_after_end" {
		t.Errorf("lines %v, want one client_after_end", got)
	}
}

// closeCleanly ends a relayed stream the way a well-behaved pair does:
// first sends </stream:stream> and its FIN, second answers in kind, and
// each sees exactly the other's end.
func closeCleanly(t *testing.T, first, second *net.TCPConn) {
	t.Helper()
	write(t, first, streamEnd)
	first.CloseWrite()
	expect(t, second, streamEnd)
	write(t, second, streamEnd)
	second.CloseWrite()
	expectEOF(t, first, streamEnd)
	first.Close()
	second.Close()
}
