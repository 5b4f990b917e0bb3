package fedtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// deliverTimeout bounds one message's trip between the servers, the s2s
// connection and its authentication included (dialback makes a second
// connection back to the sender's domain).
const deliverTimeout = 15 * time.Second

// In each mode, a message goes from alice@prosody.test to bob@ejabberd.test
// and one comes back, over real s2s streams, each authenticated the way the
// mode says (both ends' logs agree) and none the other way.
func TestFederationDirect(t *testing.T) {
	for _, mode := range []Mode{Dialback, External} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			f := Start(t, Options{Mode: mode})
			alice := f.Prosody.Login(t, "alice")
			bob := f.Ejabberd.Login(t, "bob")
			exchange(t, alice, bob, "1")
			checkAuths(t, f, mode)
		})
	}
}

// After ejabberd is killed (SIGKILL, by PID) and restarted with the same
// configuration, a new message is delivered both ways again, over new
// streams authenticated again.
func TestFederationAfterRestart(t *testing.T) {
	t.Parallel()
	f := Start(t, Options{})
	alice := f.Prosody.Login(t, "alice")
	bob := f.Ejabberd.Login(t, "bob")
	exchange(t, alice, bob, "before")
	before := len(f.Auths())

	oldPID := f.Ejabberd.PID()
	f.Ejabberd.Kill()
	if f.Ejabberd.Running() {
		t.Fatalf("ejabberd (PID %d) still runs after SIGKILL", oldPID)
	}
	f.Ejabberd.Restart(t)
	if f.Ejabberd.PID() == oldPID {
		t.Fatalf("ejabberd has the same PID %d after a restart", oldPID)
	}
	bob = f.Ejabberd.Login(t, "bob")
	exchange(t, alice, bob, "after")
	if got, ok := f.WaitAuths(5*time.Second, func(a []Auth) bool { return len(a) >= before+2 }); !ok {
		t.Errorf("after the restart, %d new s2s authentications, want 2 or more (both directions): %+v", len(got)-before, got[before:])
	}
}

// exchange sends a message from a to b and one from b to a, and waits for
// each (bounded by deliverTimeout).
func exchange(t *testing.T, a, b *User, tag string) {
	t.Helper()
	for _, leg := range []struct{ from, to *User }{{a, b}, {b, a}} {
		body := fmt.Sprintf("%s from %s to %s", tag, leg.from.BareJID(), leg.to.BareJID())
		start := time.Now()
		if err := leg.from.SendMessage(leg.to.JID(), body); err != nil {
			t.Fatal(err)
		}
		m, err := leg.to.Await(body, deliverTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.From, leg.from.BareJID()+"/") {
			t.Errorf("%q arrived from %s, want %s", body, m.From, leg.from.JID())
		}
		t.Logf("%s: delivered in %v", body, time.Since(start).Round(time.Millisecond))
	}
}

// checkAuths checks that every s2s stream ejabberd saw (it is one end of
// each) authenticated with the mode's mechanism, in both directions, and
// that Prosody's log shows that mechanism and not the other.
func checkAuths(t *testing.T, f *Fed, mode Mode) {
	t.Helper()
	auths, ok := f.WaitAuths(5*time.Second, func(auths []Auth) bool {
		dirs := map[string]bool{}
		for _, a := range auths {
			dirs[a.Direction] = true
		}
		return dirs["inbound"] && dirs["outbound"]
	})
	if !ok {
		t.Errorf("ejabberd logged authentications %+v: want inbound and outbound", auths)
	}
	for _, a := range auths {
		if a.Mechanism != mode.Mechanism() {
			t.Errorf("a stream authenticated with %s in %s mode: %+v", a.Mechanism, mode, a)
		}
	}
	got := f.ProsodyMechanisms()
	if !got[mode.Mechanism()] || len(got) != 1 {
		t.Errorf("Prosody's log shows mechanisms %v, want only %s", got, mode.Mechanism())
	}
	t.Logf("%s: %+v; DNS queries: %v", mode, auths, f.Netns.Queries())
}
