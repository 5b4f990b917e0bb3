package slixtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/slixtest"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

func TestEchoThroughProsody(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	r := slixtest.Echo(t, slixtest.Options{Addr: srv.Addr, JID: "alice@" + srv.Domain, Password: "alice-pw", Timeout: 10 * time.Second})
	if !r.OK() || !r.Connected || !r.LoggedIn || !r.Echo || r.StreamError != "" {
		t.Fatalf("%v\nstderr: %s", r, r.Stderr)
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	r := slixtest.Echo(t, slixtest.Options{Addr: srv.Addr, JID: "alice@" + srv.Domain, Password: "nope", Timeout: 10 * time.Second})
	if r.OK() || !r.Connected || r.LoggedIn || r.DisconnectReason != "authentication failed" {
		t.Fatalf("%v", r)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	srv.Stop()
	r := slixtest.Echo(t, slixtest.Options{Addr: srv.Addr, JID: "alice@localhost", Password: "alice-pw", Timeout: 5 * time.Second})
	if r.OK() || r.Connected || !strings.Contains(r.DisconnectReason, "connection failed") {
		t.Fatalf("%v", r)
	}
}

// --hold: the server ends the session mid-way and the client reports the
// stream error it was sent. A second login with the same resource makes
// Prosody send <conflict/> to the first, reliably (Prosody 0.12 on SIGTERM
// sometimes exits before flushing its <system-shutdown/>).
func TestHoldSeesStreamError(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	args, err := slixtest.Options{Addr: srv.Addr, JID: "bob@localhost/held", Password: "bob-pw", Timeout: 10 * time.Second, Hold: 20 * time.Second}.Args()
	if err != nil {
		t.Fatal(err)
	}
	type out struct {
		r   slixtest.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := slixtest.RunContext(context.Background(), args...)
		done <- out{r, err}
	}()
	// Wait (bounded) until the echo has gone through Prosody.
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(srv.Log(), "Sending[c2s]: <message") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no echo within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := xmppclient.DialOptions(ctx, srv.Addr, srv.Domain, "bob", "bob-pw", xmppclient.Options{Resource: "held"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var o out
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("slixmpp did not finish")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if !o.r.OK() || !o.r.Echo || o.r.StreamError != "conflict" || o.r.Held {
		t.Fatalf("%v\nstderr: %s", o.r, o.r.Stderr)
	}
}
