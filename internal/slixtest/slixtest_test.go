package slixtest_test

import (
	"context"
	"net"
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

// --tls starttls means STARTTLS is required: against a server that offers
// none (the test Prosody has no TLS), the script refuses to authenticate in
// the clear. slixmpp 1.8 does not enforce force_starttls itself.
func TestTLSRequiredButNotOffered(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{})
	r := slixtest.Echo(t, slixtest.Options{Addr: srv.Addr, JID: "alice@" + srv.Domain, Password: "alice-pw",
		Timeout: 10 * time.Second, TLS: "starttls"})
	if r.OK() || !r.Connected || r.LoggedIn || r.Mechanism != "" || r.TLS != "" ||
		!strings.Contains(r.DisconnectReason, "TLS required") {
		t.Fatalf("%v\nstderr: %s", r, r.Stderr)
	}
	if strings.Contains(srv.Log(), "<auth") {
		t.Fatalf("the script sent <auth/> in the clear:\n%s", srv.Log())
	}
}

func TestTLSArgs(t *testing.T) {
	args, err := slixtest.Options{Addr: "127.0.0.1:5223", JID: "a@localhost", Password: "p", TLS: "direct", CAFile: "/tmp/ca.pem"}.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); !strings.HasSuffix(got, " --tls direct --ca /tmp/ca.pem") {
		t.Fatalf("args %q", got)
	}
	args, _ = slixtest.Options{Addr: "127.0.0.1:5222", JID: "a@localhost", Password: "p", TLS: "none"}.Args()
	if got := strings.Join(args, " "); strings.Contains(got, "--tls") || strings.Contains(got, "--ca") {
		t.Fatalf("plaintext args %q", got)
	}
	if _, err := (slixtest.Options{Addr: "127.0.0.1:5222", TLS: "ssl"}).Args(); err == nil {
		t.Fatal("TLS \"ssl\" accepted")
	}
}

// --source: the script connects from the given local address.
func TestSource(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	from := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			from <- err.Error()
			return
		}
		from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close() // not XMPP: the script reports a disconnect
	}()
	r := slixtest.Echo(t, slixtest.Options{Addr: l.Addr().String(), JID: "a@localhost", Password: "p",
		Timeout: 5 * time.Second, Source: "127.0.0.7"})
	if got := <-from; got != "127.0.0.7" {
		t.Fatalf("the script connected from %s, want 127.0.0.7 (%v)\n%s", got, r, r.Stderr)
	}
	if r.OK() || !r.Connected {
		t.Fatalf("%v", r)
	}
	args, _ := slixtest.Options{Addr: "127.0.0.1:5222", JID: "a@localhost", Password: "p"}.Args()
	if got := strings.Join(args, " "); strings.Contains(got, "--source") {
		t.Fatalf("args without a source %q", got)
	}
}
