package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/slixtest"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

// Integration: real Prosody behind Guard, real clients in front.

func TestProsodyGoClientsThroughGuard(t *testing.T) {
	leakcheck.Check(t)
	srv := prosodytest.Start(t, prosodytest.Options{})
	s, addr := startGuard(t, srv.Addr, ListenerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	alice, err := xmppclient.Dial(ctx, addr, srv.Domain, "alice", "alice-pw")
	if err != nil {
		t.Fatalf("alice logging in through Guard (SCRAM, bind): %v\n%s", err, srv.Log())
	}
	bob, err := xmppclient.Dial(ctx, addr, srv.Domain, "bob", "bob-pw")
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	if err := alice.SendMessage(bob.JID(), "hello bob & co <3"); err != nil {
		t.Fatal(err)
	}
	from, body, err := bob.ReadMessage(ctx)
	if err != nil || body != "hello bob & co <3" || from == "" {
		t.Fatalf("bob read %q from %q, %v", body, from, err)
	}
	// Both end their streams the XMPP way; Prosody answers and closes.
	if err := alice.Close(); err != nil {
		t.Errorf("alice close: %v", err)
	}
	if err := bob.Close(); err != nil {
		t.Errorf("bob close: %v", err)
	}
	waitOpen(t, s, 0)
	waitNoLingering(t, addr, srv.Addr, 3*time.Second)
}

func TestProsodySlixmppThroughGuard(t *testing.T) {
	leakcheck.Check(t)
	srv := prosodytest.Start(t, prosodytest.Options{})
	s, addr := startGuard(t, srv.Addr, ListenerConfig{})
	r := slixtest.Echo(t, slixtest.Options{Addr: addr, JID: "alice@" + srv.Domain, Password: "alice-pw"})
	if !r.OK() || !r.LoggedIn || !r.Echo {
		t.Fatalf("%v\n%s\nprosody log:\n%s", r, r.Stderr, srv.Log())
	}
	waitOpen(t, s, 0)
	waitNoLingering(t, addr, srv.Addr, 3*time.Second)
}

// When Prosody dies mid-session, the client hears a stream error from Guard,
// not a reset: slixmpp and the Go client both see internal-server-error.
func TestProsodyKilledMidSession(t *testing.T) {
	leakcheck.Check(t)
	t.Run("go client", func(t *testing.T) {
		srv := prosodytest.Start(t, prosodytest.Options{})
		s, addr := startGuard(t, srv.Addr, ListenerConfig{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		alice, err := xmppclient.Dial(ctx, addr, srv.Domain, "alice", "alice-pw")
		if err != nil {
			t.Fatal(err)
		}
		defer alice.Close()
		srv.Kill()
		_, _, err = alice.ReadMessage(ctx)
		var se *xmppclient.StreamError
		if !errors.As(err, &se) || se.Condition != "internal-server-error" {
			t.Fatalf("after the kill the client read %v; want stream error internal-server-error", err)
		}
		alice.Close()
		waitOpen(t, s, 0)
	})
	t.Run("slixmpp", func(t *testing.T) {
		srv := prosodytest.Start(t, prosodytest.Options{})
		s, addr := startGuard(t, srv.Addr, ListenerConfig{})
		done := make(chan slixtest.Result, 1)
		go func() {
			args, _ := slixtest.Options{Addr: addr, JID: "alice@" + srv.Domain, Password: "alice-pw", Hold: 30 * time.Second}.Args()
			r, err := slixtest.RunContext(context.Background(), args...)
			if err != nil {
				r.DisconnectReason = err.Error()
			}
			done <- r
		}()
		// Once the session is up and has echoed its message (a login and
		// one round trip on loopback; generously bounded), kill Prosody.
		waitFor(t, "slixmpp connected through Guard", func() bool { return s.Open() == 1 })
		// The echo is done when the backend→client traffic has settled.
		var last int64
		var stableSince time.Time
		waitFor(t, "the echo", func() bool {
			n := relayedBackToClient(s)
			if n != last || n < 1000 {
				last, stableSince = n, time.Now()
				return false
			}
			return time.Since(stableSince) > time.Second
		})
		srv.Kill()
		var r slixtest.Result
		select {
		case r = <-done:
		case <-time.After(40 * time.Second):
			t.Fatal("slixmpp did not finish")
		}
		if !r.Echo || r.StreamError != "internal-server-error" {
			t.Fatalf("%v\nstderr:\n%s", r, r.Stderr)
		}
		waitOpen(t, s, 0)
	})
}

// relayedBackToClient sums the backend→client bytes of s's open relays.
func relayedBackToClient(s *Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for ss := range s.sessions {
		ss.mu.Lock()
		if ss.relay != nil {
			n += ss.relay.relayedBytes[backendToClient].Load()
		}
		ss.mu.Unlock()
	}
	return n
}
