package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/internal/sockstat"
)

// The bytes of a minimal XMPP c2s exchange, as Prosody sends them.
const (
	clientHeader  = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	backendHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='b1' from='localhost' version='1.0'>"
	features      = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
	message       = "<message to='bob@localhost' type='chat' id='m1'><body>hi &amp; bye</body></message>"
	streamEnd     = "</stream:stream>"
)

// testBackend is a scripted loopback backend: a test drives each connection
// Guard makes to it. It stands in for faults a real server cannot be made to
// produce on demand (reset mid-stanza, stall, garbage).
type testBackend struct {
	ln    net.Listener
	conns chan *net.TCPConn
	wg    sync.WaitGroup
}

func newTestBackend(t *testing.T) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{ln: ln, conns: make(chan *net.TCPConn, 64)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns <- c.(*net.TCPConn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
		close(b.conns)
		for c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *testBackend) addr() string { return b.ln.Addr().String() }

// accept returns the next connection Guard made to the backend.
func (b *testBackend) accept(t *testing.T) *net.TCPConn {
	t.Helper()
	select {
	case c := <-b.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("Guard did not connect to the backend")
		return nil
	}
}

// noConn asserts that Guard has not connected to the backend.
func (b *testBackend) noConn(t *testing.T) {
	t.Helper()
	select {
	case c := <-b.conns:
		c.Close()
		t.Fatal("Guard connected to the backend")
	default:
	}
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startGuard runs a Server with one listener in front of backend.
func startGuard(t *testing.T, backend string, cfg ListenerConfig) (*Server, string) {
	t.Helper()
	cfg.Name = "test"
	cfg.Address = "127.0.0.1:0"
	if cfg.Backend.Name == "" {
		cfg.Backend.Name = "b"
	}
	if backend != "" {
		cfg.Backend.Address = backend
	}
	s := New(Options{Logger: testLogger(t)})
	addr, err := s.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// openStream dials Guard and opens a stream through it to the scripted
// backend: the client's header reaches the backend unchanged, the backend's
// header and features reach the client unchanged.
func openStream(t *testing.T, b *testBackend, addr string) (c, bc *net.TCPConn) {
	t.Helper()
	c = dial(t, addr)
	write(t, c, clientHeader)
	bc = b.accept(t)
	expect(t, bc, clientHeader)
	write(t, bc, backendHeader+features)
	expect(t, c, backendHeader+features)
	return c, bc
}

// readAll reads until EOF or error within d and returns what came and how it ended.
func readAll(t *testing.T, c net.Conn, d time.Duration) ([]byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	return buf.Bytes(), err
}

// expect reads exactly len(want) bytes and compares them.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	if err := checkRead(c, want); err != nil {
		t.Fatal(err)
	}
}

// checkRead is expect for goroutines other than the test's: it returns
// what is wrong instead of failing the test (t.Fatal must be called from
// the test's goroutine).
func checkRead(c net.Conn, want string) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, len(want))
	n, err := io.ReadFull(c, b)
	c.SetReadDeadline(time.Time{})
	if err != nil || string(b) != want {
		return fmt.Errorf("read %q, %v\nwant %q", b[:n], err, want)
	}
	return nil
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// guardHeader matches the stream header Guard sends when it speaks first.
var guardHeader = regexp.MustCompile(`^<\?xml version='1\.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx\.jabber\.org/streams'( from='[^']*')? id='[0-9a-f]{16}' version='1\.0' xml:lang='en'>`)

// errorFrame is the exact stream error Guard must send for cond and text.
func errorFrame(cond, text string) string {
	s := "<stream:error><" + cond + " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
	if text != "" {
		s += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>" + xmlEscaper.Replace(text) + "</text>"
	}
	return s + "</stream:error></stream:stream>"
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// expectStreamError reads the client's connection to its end and asserts
// that it carries, after any bytes in before, Guard's own header when
// withHeader (from = domain), then exactly the stream error, then EOF: a
// FIN, not a reset.
func expectStreamError(t *testing.T, c net.Conn, before string, withHeader bool, domain, cond, text string) {
	t.Helper()
	if err := checkStreamError(c, before, withHeader, domain, cond, text); err != nil {
		t.Fatal(err)
	}
}

// checkStreamError is expectStreamError for goroutines other than the
// test's: it returns what is wrong instead of failing the test.
func checkStreamError(c net.Conn, before string, withHeader bool, domain, cond, text string) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	got := buf.Bytes()
	if err != nil {
		return fmt.Errorf("the stream ended with %v (after %q); want a stream error then EOF", err, got)
	}
	s := string(got)
	if !strings.HasPrefix(s, before) {
		return fmt.Errorf("got %q\nwant it to start with %q", s, before)
	}
	s = s[len(before):]
	if withHeader {
		m := guardHeader.FindString(s)
		if m == "" {
			return fmt.Errorf("got %q\nwant Guard's stream header first", s)
		}
		if domain != "" && !strings.Contains(m, " from='"+domain+"'") {
			return fmt.Errorf("Guard's header %q lacks from='%s'", m, domain)
		}
		s = s[len(m):]
	}
	if want := errorFrame(cond, text); s != want {
		return fmt.Errorf("got  %q\nwant %q", s, want)
	}
	c.Close() // as a client does after </stream:stream>
	return nil
}

// expectEOF asserts that c ends with a FIN after exactly want.
func expectEOF(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got, err := readAll(t, c, 10*time.Second)
	if err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q then EOF", got, err, want)
	}
}

// expectReset asserts that the peer of c reset the connection.
func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	var err error
	for i := 0; i < 50 && err == nil; i++ {
		_, err = c.Write([]byte(" "))
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after Guard's close: %v; want ECONNRESET or EPIPE", err)
	}
}

func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("open connections = %d, want %d", s.Open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// guardSockets returns the relay's sockets on Guard's side: those whose
// local port is the listener's (client side) and those whose remote port
// is the backend's (backend side), closed ones the kernel still keeps
// included. The test's own ends are the mirror images and are not matched.
func guardSockets(t *testing.T, guardAddr, backendAddr string) []sockstat.Entry {
	t.Helper()
	all, err := sockstat.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	// The table is the network namespace's: a socket another process holds
	// (a guard of a test running beside this one, to a port since reused)
	// is not Guard's. Orphans (inode 0) are nobody's and are kept.
	own, err := sockstat.OwnInodes()
	if err != nil {
		t.Fatal(err)
	}
	gp, bp := port(t, guardAddr), port(t, backendAddr)
	var out []sockstat.Entry
	for _, e := range all {
		if e.Inode != 0 && !own[e.Inode] {
			continue
		}
		if (e.Local.Port() == gp && e.State != sockstat.Listen) || e.Remote.Port() == bp {
			out = append(out, e)
		}
	}
	return out
}

func port(t *testing.T, addr string) uint16 {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(a.Port)
}

// waitNoLingering waits (bounded) until none of Guard's relay sockets is in
// CLOSE_WAIT or FIN_WAIT2, and fails listing them otherwise.
func waitNoLingering(t *testing.T, guardAddr, backendAddr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var bad []sockstat.Entry
		for _, e := range guardSockets(t, guardAddr, backendAddr) {
			if e.State == sockstat.CloseWait || e.State == sockstat.FinWait2 {
				bad = append(bad, e)
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Guard sockets still lingering after %v: %v", within, bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
