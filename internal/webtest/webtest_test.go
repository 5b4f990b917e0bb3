package webtest_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/webtest"
)

// Two real web clients on Prosody's own WebSocket endpoint (mod_websocket):
// Converse.js in Chromium as alice, @xmpp/client under Node as bob. They
// log in and exchange a message both ways, each seen by the other; then
// Prosody is killed and each says what its user is told. Directly on
// Prosody that is a bare drop: no stream error, no close frame, and
// Converse shows no text at all, only a spinner, while it reconnects.
// WEBTEST_SCREENSHOTS=DIR keeps pictures of Converse's page.
func TestWebClientsOnProsody(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{WebSocket: true})
	ws := srv.WebSocketURL()

	start := time.Now()
	alice := webtest.StartConverseWith(t, ws, "alice@localhost", "alice-pw",
		webtest.ConverseOptions{Screenshots: os.Getenv("WEBTEST_SCREENSHOTS")})
	bob := webtest.StartXMPPJS(t, ws, "bob@localhost", "bob-pw")
	aliceJID := alice.WaitLoggedIn(60 * time.Second)
	bobJID := bob.WaitLoggedIn(30 * time.Second)
	t.Logf("logged in after %v: %s, %s", time.Since(start).Round(time.Millisecond), aliceJID, bobJID)

	start = time.Now()
	bob.Send("alice@localhost", "hello from xmpp.js")
	alice.WaitMessage("bob@localhost", "hello from xmpp.js", 20*time.Second)
	alice.Send("bob@localhost", "hello from Converse")
	bob.WaitMessage("alice@localhost", "hello from Converse", 20*time.Second)
	t.Logf("exchanged both ways in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	srv.Kill()
	reason, shown := bob.WaitDisconnected(30 * time.Second)
	t.Logf("xmppjs: after %v: reason %q, shown %q", time.Since(start).Round(time.Millisecond), reason, shown)
	if ev, _ := bob.LastDisconnect(); ev.Code != 1006 || ev.Clean || shown != "" {
		t.Errorf("xmppjs on a killed Prosody: want a bare drop (1006, not clean, nothing to show), got %s", ev.Raw)
	}

	reason, shown = alice.WaitDisconnected(30 * time.Second)
	ev, _ := alice.LastDisconnect()
	t.Logf("converse: after %v: reason %q, shown %q, states %v", time.Since(start).Round(time.Millisecond), reason, shown, ev.Statuses)
	if ev.Status != "RECONNECTING" || reason != "The connection has dropped, attempting to reconnect." || shown != "" {
		t.Errorf("converse on a killed Prosody: want it to reconnect, showing no text, got %s", ev.Raw)
	}
}

// Converse.js with auto_reconnect off: when Prosody is killed it ends the
// session. Directly on Prosody it gives no reason, and a moment later the
// page is blank: no text at all for the user.
func TestConverseNoReconnectOnProsody(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.Options{WebSocket: true})
	alice := webtest.StartConverseWith(t, srv.WebSocketURL(), "alice@localhost", "alice-pw",
		webtest.ConverseOptions{Settings: map[string]any{"auto_reconnect": false}, Screenshots: os.Getenv("WEBTEST_SCREENSHOTS")})
	alice.WaitLoggedIn(60 * time.Second)

	start := time.Now()
	srv.Kill()
	reason, shown := alice.WaitDisconnected(30 * time.Second)
	ev, _ := alice.LastDisconnect()
	t.Logf("converse: after %v: reason %q, shown %q, states %v, event %s", time.Since(start).Round(time.Millisecond), reason, shown, ev.Statuses, ev.Raw)
	if !slices.Contains(ev.Statuses, "DISCONNECTED") || reason != "" || shown != "" {
		t.Errorf("converse without reconnection on a killed Prosody: want DISCONNECTED, no reason, no text; got %s", ev.Raw)
	}
}
