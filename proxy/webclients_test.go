package proxy

import (
	"slices"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/webtest"
)

// Real web clients through Guard's WebSocket listener to a real Prosody's
// c2s port: Converse.js in Chromium (alice) and @xmpp/client under Node
// (bob) log in and exchange a message both ways; when Prosody is killed,
// each hears a stream error from Guard and a clean close, where directly on
// Prosody they see a bare drop (internal/webtest's tests).
func TestWebClientsThroughGuard(t *testing.T) {
	// mod_blocklist, which Converse needs to show a message from a
	// stranger, comes with Prosody's WebSocket mode; Guard uses its c2s port.
	srv := prosodytest.Start(t, prosodytest.Options{WebSocket: true})
	cfg := ListenerConfig{WebSocket: &WebSocket{AllowedOrigins: []string{"*"}}}
	_, addr := startGuard(t, srv.Addr, cfg)
	ws := "ws://" + addr + "/xmpp-websocket"

	alice := webtest.StartConverse(t, ws, "alice@localhost", "alice-pw")
	bob := webtest.StartXMPPJS(t, ws, "bob@localhost", "bob-pw")
	alice.WaitLoggedIn(60 * time.Second)
	bob.WaitLoggedIn(30 * time.Second)
	bob.Send("alice@localhost", "hello through Guard")
	alice.WaitMessage("bob@localhost", "hello through Guard", 20*time.Second)
	alice.Send("bob@localhost", "hello back from Converse")
	bob.WaitMessage("alice@localhost", "hello back from Converse", 20*time.Second)

	srv.Kill()
	// @xmpp/client: Guard's stream error, then a clean WebSocket close.
	reason, shown := bob.WaitDisconnected(30 * time.Second)
	ev, _ := bob.LastDisconnect()
	t.Logf("xmppjs: reason %q, shown %q, event %s", reason, shown, ev.Raw)
	if ev.Code != 1000 || !ev.Clean || shown != "internal-server-error: backend closed the connection" {
		t.Errorf("xmppjs on a killed Prosody behind Guard: want internal-server-error and a clean close (1000), got %s", ev.Raw)
	}
	// Converse: an error from the server (Strophe's ERROR, with Converse's
	// words for it), not the dropped connection it reports without Guard.
	reason, shown = alice.WaitDisconnected(30 * time.Second)
	ev, _ = alice.LastDisconnect()
	t.Logf("converse: reason %q, shown %q, states %v, event %s", reason, shown, ev.Statuses, ev.Raw)
	if ev.Status != "ERROR" || reason != "An error occurred while connecting to the chat server." {
		t.Errorf("converse on a killed Prosody behind Guard: want the server's error, got %s", ev.Raw)
	}
}

// Converse.js with auto_reconnect off: the session ends on Guard's stream
// error, where directly on Prosody it ends with no reason at all.
func TestConverseNoReconnectThroughGuard(t *testing.T) {
	srv := prosodytest.Start(t, prosodytest.Options{WebSocket: true})
	_, addr := startGuard(t, srv.Addr, ListenerConfig{WebSocket: &WebSocket{AllowedOrigins: []string{"*"}}})
	alice := webtest.StartConverseWith(t, "ws://"+addr+"/xmpp-websocket", "alice@localhost", "alice-pw",
		webtest.ConverseOptions{Settings: map[string]any{"auto_reconnect": false}})
	alice.WaitLoggedIn(60 * time.Second)
	srv.Kill()
	reason, shown := alice.WaitDisconnected(30 * time.Second)
	ev, _ := alice.LastDisconnect()
	t.Logf("converse: reason %q, shown %q, states %v, event %s", reason, shown, ev.Statuses, ev.Raw)
	if ev.Status != "ERROR" || reason != "An error occurred while connecting to the chat server." || slices.Contains(ev.Statuses, "CONNFAIL") {
		t.Errorf("converse without reconnection, Prosody killed behind Guard: want the server's error, no dropped connection; got %s", ev.Raw)
	}
}
