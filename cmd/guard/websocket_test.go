package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/wsclient"
)

// recordingBackend answers each stream header and keeps what every stream
// sent it; it answers </stream:stream> with its own.
type recordingBackend struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []*bytes.Buffer
	done chan struct{}
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBackend{ln: ln, done: make(chan struct{})}
	var wg sync.WaitGroup
	go func() {
		defer close(b.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				wg.Wait()
				return
			}
			buf := &bytes.Buffer{}
			b.mu.Lock()
			b.got = append(b.got, buf)
			b.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c, buf)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-b.done })
	return b
}

func (b *recordingBackend) serve(c net.Conn, buf *bytes.Buffer) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	p := make([]byte, 4096)
	answered := false
	for {
		n, err := c.Read(p)
		b.mu.Lock()
		buf.Write(p[:n])
		s := buf.String()
		b.mu.Unlock()
		if !answered && strings.Contains(s, "<stream:stream") && strings.Contains(s, "'>") {
			answered = true
			io.WriteString(c, backendHeader)
		}
		if strings.Contains(s, "</stream:stream>") {
			io.WriteString(c, "</stream:stream>")
			return
		}
		if err != nil {
			return
		}
	}
}

// received returns what all streams sent the backend.
func (b *recordingBackend) received() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all strings.Builder
	for _, buf := range b.got {
		all.WriteString(buf.String())
	}
	return all.String()
}

// SIGTERM with web clients connected: every one gets system-shutdown as a
// stream error message, <close/>, a Close frame of 1000 and a FIN, and
// every message a client sent before the signal reaches the backend.
func TestSIGTERMDrainsWebSockets(t *testing.T) {
	leakcheck.Check(t)
	backend := newRecordingBackend(t)
	listen := freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
shutdown {
  accept_delay  = "0s"
  drain_timeout = "1s"
  deadline      = "8s"
}
listener "web" {
  address = %q
  backend = "xmpp"
  websocket {}
}
backend "xmpp" {
  address = %q
}
`, listen, backend.ln.Addr()))
	waitListening(t, listen)
	const n = 6
	clients := make([]*wsclient.Client, n)
	for i := range clients {
		c, err := wsclient.DialXMPP(listen, "/xmpp-websocket")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Conn.Close() })
		c.Send(wsclient.OpText, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
		if _, p, err := c.NextData(); err != nil || !strings.HasPrefix(p, "<open ") {
			t.Fatalf("client %d: %q, %v; want the backend's <open/>", i, p, err)
		}
		clients[i] = c
	}
	// A message from each client, then the signal at once.
	for i, c := range clients {
		c.Send(wsclient.OpText, fmt.Sprintf("<message xmlns='jabber:client' to='bob@localhost' id='m%d'><body>last words</body></message>", i))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, p, err := c.NextData()
			if want := "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"; err != nil || p != want {
				t.Errorf("client %d: %q, %v; want %q", i, p, err, want)
				return
			}
			if _, p, err := c.NextData(); err != nil || p != "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" {
				t.Errorf("client %d: %q, %v; want <close/>", i, p, err)
				return
			}
			if err := c.ExpectClose(1000); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
	got := backend.received()
	for i := range n {
		if !strings.Contains(got, fmt.Sprintf("id='m%d'><body>last words</body></message>", i)) {
			t.Errorf("message m%d never reached the backend", i)
		}
	}
	if c := strings.Count(got, "</stream:stream>"); c != n {
		t.Errorf("the backend got %d clean ends of stream, want %d", c, n)
	}
}
