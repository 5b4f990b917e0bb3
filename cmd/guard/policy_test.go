package main

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// guardHeader is the stream header Guard sends when it speaks first.
var guardHeader = regexp.MustCompile(`^<\?xml version='1\.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx\.jabber\.org/streams' from='localhost' id='[0-9a-f]{16}' version='1\.0' xml:lang='en'>`)

// readToEOF reads c to its end (a FIN: a reset is an error) and returns
// what came, Guard's own header cut off when withHeader.
func readToEOF(t *testing.T, c net.Conn, withHeader bool) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %q, %v; want a stream error and EOF", got, err)
	}
	s := string(got)
	if withHeader {
		m := guardHeader.FindString(s)
		if m == "" {
			t.Fatalf("got %q; want Guard's stream header first", s)
		}
		s = s[len(m):]
	}
	return s
}

// The policy block of config.hcl reaches the wire: the overload and
// shutdown redirects (see-other-host, with the configured host) and an
// event block's condition and text, byte for byte, as a client reads them.
func TestPolicyOverridesOnTheWire(t *testing.T) {
	leakcheck.Check(t)
	up := holdingBackend(t)
	down := freeAddr(t) // nothing listens: backend-refused
	listenUp, listenDown, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = %q
}
shutdown {
  accept_delay  = "0s"
  drain_timeout = "0s"
  deadline      = "10s"
}
policy {
  see_other_host = "xmpp2.example.net:5222"
  overload       = "see-other-host"
  shutdown       = "see-other-host"
  event "backend-refused" {
    condition = "remote-connection-failed"
    text      = "node down <for now> & back soon"
  }
}
listener "up" {
  address = %q
  backend = "up"
}
listener "down" {
  address = %q
  backend = "down"
}
backend "up" {
  address     = %q
  max_streams = 1
  queue_size  = 0
}
backend "down" {
  address = %q
  retries = 0
}
`, admin, listenUp, listenDown, up, down))
	waitListening(t, listenUp)
	waitListening(t, listenDown)
	const (
		redirect     = "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp2.example.net:5222</see-other-host></stream:error></stream:stream>"
		fullRedirect = "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp2.example.net:5222</see-other-host>" +
			"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the server is at capacity; try again later</text></stream:error></stream:stream>"
	)

	// The one slot of "up" taken, the next client is sent elsewhere
	// (overload = see-other-host, with the event's default text), after
	// Guard's own header.
	held := openStream(t, listenUp)
	full, err := net.Dial("tcp", listenUp)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	io.WriteString(full, clientHeader)
	if got := readToEOF(t, full, true); got != fullRedirect {
		t.Errorf("overloaded: got  %q\nwant %q\n%s", got, fullRedirect, stderr)
	}

	// The event block: its condition and its text, escaped.
	refused, err := net.Dial("tcp", listenDown)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	io.WriteString(refused, clientHeader)
	want := "<stream:error><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>node down &lt;for now&gt; &amp; back soon</text></stream:error></stream:stream>"
	if got := readToEOF(t, refused, true); got != want {
		t.Errorf("backend refused: got  %q\nwant %q\n%s", got, want, stderr)
	}

	// Draining (SIGTERM): the open stream is redirected too, after the
	// backend's header it already has (no header of Guard's).
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readToEOF(t, held, false); got != redirect {
		t.Errorf("drain: got  %q\nwant %q\n%s", got, redirect, stderr)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("guard exited with %v\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("guard did not exit after its drain\n%s", stderr)
	}
}
