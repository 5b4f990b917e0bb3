package xmppclient_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/sockstat"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip makes sure Prosody has read all our input: a process that closes
// or dies with unread input makes the kernel send RST instead of FIN, and the
// RST discards what we have not read yet (the stream error included).
func roundTrip(t *testing.T, ctx context.Context, c *xmppclient.Client) {
	t.Helper()
	if err := c.SendMessage(c.JID(), "ping"); err != nil {
		t.Fatal(err)
	}
	if _, body, err := c.ReadMessage(ctx); err != nil || body != "ping" {
		t.Fatalf("round trip: %q, %v", body, err)
	}
}

func TestProsodySelfAndPeer(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)

	alice, err := xmppclient.Dial(ctx, srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if !strings.HasPrefix(alice.JID(), "alice@localhost/") {
		t.Errorf("JID = %q", alice.JID())
	}
	bob, err := xmppclient.DialOptions(ctx, srv.Addr, srv.Domain, "bob", "bob-pw", xmppclient.Options{Mechanism: "PLAIN", Resource: "phone"})
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	if bob.JID() != "bob@localhost/phone" {
		t.Errorf("JID = %q", bob.JID())
	}

	// alice to herself (bare JID: routed to her available resource).
	if err := alice.SendMessage(alice.BareJID(), "hello me <&'\">"); err != nil {
		t.Fatal(err)
	}
	from, body, err := alice.ReadMessage(ctx)
	if err != nil || from != alice.JID() || body != "hello me <&'\">" {
		t.Fatalf("self: from=%q body=%q err=%v", from, body, err)
	}

	// alice to bob.
	if err := alice.SendMessage("bob@localhost", "hi bob"); err != nil {
		t.Fatal(err)
	}
	from, body, err = bob.ReadMessage(ctx)
	if err != nil || from != alice.JID() || body != "hi bob" {
		t.Fatalf("peer: from=%q body=%q err=%v", from, body, err)
	}

	if err := alice.Close(); err != nil {
		t.Errorf("alice close: %v", err)
	}
	if err := bob.Close(); err != nil {
		t.Errorf("bob close: %v", err)
	}
	if err := bob.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestProsodyWrongPassword(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	for _, mech := range []string{"SCRAM-SHA-1", "PLAIN"} {
		_, err := xmppclient.DialOptions(ctxT(t, 10*time.Second), srv.Addr, srv.Domain, "alice", "wrong", xmppclient.Options{Mechanism: mech})
		var se *xmppclient.SASLError
		if !errors.As(err, &se) || se.Condition != "not-authorized" {
			t.Errorf("%s: err = %v, want SASL not-authorized", mech, err)
		}
	}
}

// Prosody says goodbye with <system-shutdown/> on SIGTERM. Prosody 0.12
// sometimes exits before that error leaves its buffer (its log says
// "Sending" but the peer sees only FIN), so a bare EOF is accepted too.
func TestProsodyShutdownStreamError(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)
	c, err := xmppclient.Dial(ctx, srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, ctx, c)
	srv.Stop()
	_, _, err = c.ReadMessage(ctx)
	var se *xmppclient.StreamError
	switch {
	case errors.As(err, &se) && se.Condition == "system-shutdown":
	case errors.Is(err, io.ErrUnexpectedEOF):
		t.Logf("Prosody exited before flushing its stream error: %v", err)
	default:
		t.Fatalf("err = %v, want stream error system-shutdown", err)
	}
}

// A second login with the same resource: Prosody (resource_conflict =
// "kick_old") ends the first stream with <conflict/>, reliably.
func TestProsodyConflictStreamError(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)
	opts := xmppclient.Options{Resource: "same"}
	first, err := xmppclient.DialOptions(ctx, srv.Addr, srv.Domain, "alice", "alice-pw", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := xmppclient.DialOptions(ctx, srv.Addr, srv.Domain, "alice", "alice-pw", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, _, err = first.ReadMessage(ctx)
	var se *xmppclient.StreamError
	if !errors.As(err, &se) || se.Condition != "conflict" {
		t.Fatalf("err = %v, want stream error conflict", err)
	}
}

// A crash ends the TCP stream without </stream:stream>.
func TestProsodyKilled(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)
	c, err := xmppclient.Dial(ctx, srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, ctx, c)
	srv.Kill()
	_, _, err = c.ReadMessage(ctx)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
}

// Malformed input is answered with a stream error by Prosody.
func TestProsodyNotWellFormed(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)
	c, err := xmppclient.Dial(ctx, srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendRaw("<message><body>x</bogus>"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage(ctx)
	var se *xmppclient.StreamError
	if !errors.As(err, &se) || se.Condition != "not-well-formed" {
		t.Fatalf("err = %v, want stream error not-well-formed", err)
	}
}

func TestReadMessageContextCancel(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	c, err := xmppclient.Dial(ctxT(t, 10*time.Second), srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = c.ReadMessage(ctx)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want a timeout soon", err, time.Since(start))
	}
	// The stream is still usable after a timed-out read? No: the decoder
	// may have been mid-token. Close must still end the connection.
	c.Close()
}

// A scripted server: the stream error is parsed with its text.
func TestStreamErrorFromFakeServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1024)
		conn.Read(buf)
		io.WriteString(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"+
			"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too fast</text></stream:error></stream:stream>")
		conn.(*net.TCPConn).CloseWrite()
		conn.Read(buf)
	}()
	_, err = xmppclient.Dial(ctxT(t, 5*time.Second), l.Addr().String(), "localhost", "alice", "pw")
	var se *xmppclient.StreamError
	if !errors.As(err, &se) || se.Condition != "policy-violation" || se.Text != "too fast" {
		t.Fatalf("err = %v, want policy-violation with text", err)
	}
	<-done
}

// Not parallel: leakcheck counts process-wide. A graceful Close leaves no
// goroutine, no fd and no socket of ours in CLOSE_WAIT.
func TestCloseLeavesNothing(t *testing.T) {
	leakcheck.Check(t)
	srv := prosodytest.Start(t, prosodytest.Options{})
	ctx := ctxT(t, 20*time.Second)
	c, err := xmppclient.Dial(ctx, srv.Addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ctx, c)
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	_, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	sockstat.WaitUntil(t, 5*time.Second, func(es []sockstat.Entry) bool {
		own, err := sockstat.Own(sockstat.Filter(es, uint16(p)))
		return err == nil && len(own) == 0
	})
}
