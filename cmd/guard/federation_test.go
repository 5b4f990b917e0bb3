package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
	"github.com/guard-xmpp/guard/internal/fedtest"
	"github.com/guard-xmpp/guard/internal/sockstat"
)

// Where prosody.test resolves in the federation tests (Guard's s2s
// listener), and where Prosody's own s2s port is (Guard's backend).
var (
	fedGuard   = netip.MustParseAddrPort("127.0.0.2:5269")
	fedProsody = netip.MustParseAddrPort("127.0.0.3:5269")
)

// startFedGuard runs the guard binary in f's namespace with an s2s listener
// at fedGuard that routes prosody.test to Prosody's s2s port, and waits
// until it listens. It returns the process and its log.
func startFedGuard(t *testing.T, f *fedtest.Fed) (*childproc.Process, *childproc.Buffer) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "guard.hcl")
	src := fmt.Sprintf(`log {
  level = "debug"
}
admin {
  address = ""
}
listener "s2s" {
  address = %q
  stream  = "server"
  timeouts {
    half_close = "1s"
  }
  limits {
    max_streams_per_domain = 10
  }
  route %q {
    backend = "prosody-s2s"
  }
}
backend "prosody-s2s" {
  address = %q
}
`, fedGuard, f.Prosody.Domain, fedProsody)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := f.Netns.Command(guardBin, "-config", cfg)
	out := &childproc.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := childproc.Start(cmd, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("Guard's log, last lines:\n%s", childproc.Tail(out.String(), 60))
		}
	})
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := f.Netns.DialContext(ctx, "tcp", fedGuard.String())
		cancel()
		if err == nil {
			c.Close()
			return p, out
		}
		if i == 100 {
			t.Fatalf("Guard does not listen at %s: %v\n%s", fedGuard, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Real federation through Guard: Prosody serves prosody.test behind Guard's
// s2s listener, ejabberd serves ejabberd.test and reaches prosody.test only
// through Guard (its message streams and its dialback checks). A message
// goes each way, once with dialback and once with certificates from a
// test CA (SASL EXTERNAL), which only works because Guard passes the TLS
// after <proceed/> unchanged: Prosody sees ejabberd's certificate.
func TestFederationThroughGuard(t *testing.T) {
	for _, mode := range []fedtest.Mode{fedtest.Dialback, fedtest.External} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			f := fedtest.Start(t, fedtest.Options{Mode: mode, ProsodyAddr: fedGuard.Addr(), ProsodyS2S: fedProsody})
			_, log := startFedGuard(t, f)
			alice := f.Prosody.Login(t, "alice")
			bob := f.Ejabberd.Login(t, "bob")
			exchangeFed(t, bob, alice, "1")
			auths, ok := f.WaitAuths(10*time.Second, func(a []fedtest.Auth) bool { return outboundVia(a, fedGuard.Addr()) > 0 })
			if !ok {
				t.Fatalf("ejabberd's outbound s2s stream did not go through Guard at %s: %+v", fedGuard.Addr(), auths)
			}
			for _, a := range auths {
				if a.Mechanism != mode.Mechanism() {
					t.Errorf("a stream authenticated with %s in %s mode: %+v", a.Mechanism, mode, a)
				}
			}
			if got := f.ProsodyMechanisms(); !got[mode.Mechanism()] || len(got) != 1 {
				t.Errorf("Prosody's log shows mechanisms %v, want only %s", got, mode.Mechanism())
			}
			if s := log.String(); !strings.Contains(s, "relaying: listener=s2s") || !strings.Contains(s, "to=prosody.test from=ejabberd.test") {
				t.Errorf("Guard's log does not show the s2s stream from ejabberd.test relayed:\n%s", childproc.Tail(s, 40))
			}
		})
	}
}

// When the backend behind Guard (Prosody) is killed mid-stream, the remote
// server (ejabberd) sees a clean end of its TLS-carrying stream, a FIN and
// never a reset (Guard's side of each such connection ends in TIME_WAIT,
// the mark of its FIN, and none lingers past half_close), and once Prosody
// is back, ejabberd reconnects through Guard and delivers again.
func TestFederationBackendKilledBehindGuard(t *testing.T) {
	t.Parallel()
	f := fedtest.Start(t, fedtest.Options{Mode: fedtest.External, ProsodyAddr: fedGuard.Addr(), ProsodyS2S: fedProsody})
	guard, log := startFedGuard(t, f)
	alice := f.Prosody.Login(t, "alice")
	bob := f.Ejabberd.Login(t, "bob")
	exchangeFed(t, bob, alice, "before")

	relayed := guardStreams(t, guard.PID, sockstat.Established)
	if len(relayed) == 0 {
		t.Fatal("no s2s stream through Guard before the kill")
	}
	f.Prosody.Kill()
	// Each relayed connection closes by Guard's FIN within half_close
	// and a little: TIME_WAIT on Guard's side, nothing else.
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := guardStreams(t, guard.PID)
		var bad, tw int
		for _, e := range now {
			for _, r := range relayed {
				if e.Remote == r.Remote {
					if e.State == sockstat.TimeWait {
						tw++
					} else {
						bad++
					}
				}
			}
		}
		if bad == 0 && tw == len(relayed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Prosody was killed, Guard's side of the s2s streams %v is\n%s\nwant each in TIME_WAIT (closed by Guard's FIN)", relayed, sockstat.Format(now))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := f.Ejabberd.Log(); strings.Contains(s, "econnreset") {
		t.Errorf("ejabberd saw a reset:\n%s", childproc.Tail(s, 20))
	}

	f.Prosody.Restart(t)
	alice = f.Prosody.Login(t, "alice")
	exchangeFed(t, bob, alice, "after")
	again := guardStreams(t, guard.PID, sockstat.Established)
	for _, e := range again {
		for _, r := range relayed {
			if e.Remote == r.Remote {
				t.Errorf("a stream of before the kill is still open through Guard: %v", e)
			}
		}
	}
	if len(again) == 0 {
		t.Error("ejabberd did not reconnect through Guard")
	}
	if s := log.String(); !strings.Contains(s, "reason=backend_closed") && !strings.Contains(s, "reason=backend_reset") {
		t.Errorf("Guard's connection log has no backend end for the killed streams:\n%s", childproc.Tail(s, 40))
	}
}

// guardStreams returns the TCP sockets of Guard's s2s listener address in
// its namespace (read through its /proc entry), in any of states (all but
// LISTEN when none are given).
func guardStreams(t *testing.T, pid int, states ...sockstat.State) []sockstat.Entry {
	t.Helper()
	fh, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	all, err := sockstat.Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	var out []sockstat.Entry
	for _, e := range all {
		if e.Local != fedGuard || e.State == sockstat.Listen {
			continue
		}
		if len(states) == 0 || len(sockstat.InState([]sockstat.Entry{e}, states...)) == 1 {
			out = append(out, e)
		}
	}
	return out
}

// outboundVia counts ejabberd's outbound streams that went to addr.
func outboundVia(auths []fedtest.Auth, addr netip.Addr) int {
	n := 0
	for _, a := range auths {
		if a.Direction == "outbound" && a.Peer == addr.String() {
			n++
		}
	}
	return n
}

// exchangeFed sends a message from a to b and one back, each waited for.
func exchangeFed(t *testing.T, a, b *fedtest.User, tag string) {
	t.Helper()
	for _, leg := range []struct{ from, to *fedtest.User }{{a, b}, {b, a}} {
		body := fmt.Sprintf("%s from %s to %s", tag, leg.from.BareJID(), leg.to.BareJID())
		start := time.Now()
		if err := leg.from.SendMessage(leg.to.JID(), body); err != nil {
			t.Fatal(err)
		}
		if _, err := leg.to.Await(body, 20*time.Second); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		t.Logf("%s: delivered in %v", body, time.Since(start).Round(time.Millisecond))
	}
}
