package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/ejabberdtest"
	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/slixtest"
)

// Integration: a real ejabberd behind Guard, a real slixmpp client in front,
// connecting from its own loopback address, 127.0.0.7, logs in and echoes
// a message through Guard. Without the PROXY protocol ejabberd sees Guard's
// address (127.0.0.1); with Guard sending a PROXY protocol header (v1 or v2)
// to ejabberd's use_proxy_protocol listener it sees the client's, port
// included.
func TestEjabberdSlixmppThroughGuard(t *testing.T) {
	leakcheck.Check(t)
	// At debug, ejabberd logs the stanzas it sends: the test waits for
	// the echo there.
	srv := ejabberdtest.Start(t, ejabberdtest.Options{LogLevel: "debug"})
	const source = "127.0.0.7"

	for _, tc := range []struct {
		name    string
		backend string
		version int
		wantIP  string // the session's address in ejabberd
	}{
		{"plain", srv.Addr, 0, "127.0.0.1"},
		{"proxy protocol v1", srv.ProxyAddr, 1, source},
		{"proxy protocol v2", srv.ProxyAddr, 2, source},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startGuard(t, tc.backend, ListenerConfig{Backend: Backend{ProxyProtocol: tc.version}})
			resource := fmt.Sprintf("guard-pp%d", tc.version)
			body := "hello ejabberd via " + resource
			args, err := slixtest.Options{Addr: addr, JID: "alice@" + srv.Domain + "/" + resource, Password: "alice-pw",
				Body: body, Timeout: 10 * time.Second, Hold: 20 * time.Second, Source: source}.Args()
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan slixtest.Result, 1)
			go func() {
				r, err := slixtest.RunContext(context.Background(), args...)
				if err != nil {
					r.DisconnectReason = err.Error()
				}
				done <- r
			}()

			// While the client holds its session, ask ejabberd where it
			// comes from.
			se := waitEjabberdSession(t, srv, resource, done)
			client := guardClientAddr(t, s)
			if client.Addr().String() != source {
				t.Fatalf("Guard saw the client at %v, want %s", client, source)
			}
			t.Logf("ejabberd's session %s: ip %s port %d (Guard's client %v)", se.JID, se.IP, se.Port, client)
			if se.IP != tc.wantIP {
				t.Fatalf("ejabberd sees the session from %s:%d, want %s (the client is %v)", se.IP, se.Port, tc.wantIP, client)
			}
			if tc.version != 0 {
				if se.Port != int(client.Port()) {
					t.Fatalf("ejabberd sees port %d, the client's is %d", se.Port, client.Port())
				}
				// ejabberd's own log names the PROXY header's source as
				// the connection's peer, and Guard's listener as where it
				// was accepted.
				accepted := fmt.Sprintf("Accepted proxied connection %v -> %s", client, addr)
				waitEjabberdLog(t, srv, accepted, func(line string) bool { return strings.Contains(line, accepted) })
			}

			// Once ejabberd has sent the echo, end the session from
			// ejabberd: the client hears ejabberd's stream error
			// (kick_session sends <conflict/>) through Guard.
			waitEjabberdLog(t, srv, "the echo", func(line string) bool {
				return strings.Contains(line, "Send XML on stream") && strings.Contains(line, "<body>"+body+"</body>")
			})
			if out, err := srv.Ctl("kick_session", "alice", srv.Domain, se.Resource, "test over"); err != nil {
				t.Fatalf("kick_session: %v: %s", err, out)
			}
			var r slixtest.Result
			select {
			case r = <-done:
			case <-time.After(40 * time.Second):
				t.Fatal("slixmpp did not finish")
			}
			if !r.OK() || !r.LoggedIn || !r.Echo || r.Held || r.StreamError != "conflict" || r.StreamErrorText != "test over" {
				t.Fatalf("%v (stream error text %q)\n%s", r, r.StreamErrorText, r.Stderr)
			}
			waitOpen(t, s, 0)
			waitNoLingering(t, addr, tc.backend, 3*time.Second)
		})
	}
}

// waitEjabberdSession polls connected_users_info (bounded) until the
// session with the resource is there; done reports a client that finished
// first.
func waitEjabberdSession(t *testing.T, srv *ejabberdtest.Server, resource string, done <-chan slixtest.Result) ejabberdtest.Session {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			t.Fatalf("slixmpp finished before its session was seen: %v\n%s", r, r.Stderr)
		default:
		}
		ss, err := srv.Sessions()
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range ss {
			if se.Resource == resource {
				return se
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no ejabberd session for resource %s within 15s", resource)
	return ejabberdtest.Session{}
}

// waitEjabberdLog waits (bounded) for a line of ejabberd's log. ejabberd's
// logger writes the file asynchronously: a line may appear a moment after
// the event it reports.
func waitEjabberdLog(t *testing.T, srv *ejabberdtest.Server, what string, match func(line string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, line := range strings.Split(srv.Log(), "\n") {
			if match(line) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ejabberd's log shows no %s within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guardClientAddr is the client address of s's one open session.
func guardClientAddr(t *testing.T, s *Server) netip.AddrPort {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []netip.AddrPort
	for ss := range s.sessions {
		addrs = append(addrs, ss.remote)
	}
	if len(addrs) != 1 {
		t.Fatalf("Guard has %d sessions (%v), want 1", len(addrs), addrs)
	}
	return addrs[0]
}
