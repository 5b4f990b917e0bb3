package ejabberdtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/xmppclient"
	"github.com/guard-xmpp/guard/proxyproto"

	"github.com/guard-xmpp/guard/internal/childproc"
)

func TestEjabberdStartAnswersAndStops(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	if s.Domain != "localhost" || s.PID <= 0 || !strings.HasPrefix(s.Addr, "127.0.0.1:") ||
		!strings.HasPrefix(s.ProxyAddr, "127.0.0.1:") || !strings.HasSuffix(s.Node, "@localhost") {
		t.Fatalf("unexpected server %+v", s)
	}
	if err := probe(s.Addr, s.Domain); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// Everything is under the test's directory, the system's is untouched.
	for _, p := range []string{s.ConfigPath(), s.LogPath(), filepath.Join(s.Dir, "spool", "schema.DAT"),
		filepath.Join(s.Dir, "home", ".erlang.cookie")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%v", err)
		}
	}
	// The PID is the Erlang VM itself (erl execs it), so signals reach it.
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID)); err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
		t.Errorf("PID %d is %q (%v), want beam.smp", s.PID, comm, err)
	}
	if out, err := s.Ctl("registered_users", s.Domain); err != nil || out != "alice\nbob" {
		t.Errorf("registered_users: %q, %v; want alice and bob", out, err)
	}
	if !strings.Contains(s.Log(), "Start accepting TCP connections at "+s.Addr+" for ejabberd_c2s") {
		t.Errorf("log lacks the c2s listener:\n%s", s.Log())
	}
	s.Stop()
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if !strings.Contains(s.Log(), "is stopped in the node "+s.Node) {
		t.Errorf("no clean shutdown in the log:\n%s", childproc.Tail(s.Log(), 20))
	}
	for _, addr := range []string{s.Addr, s.ProxyAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still answers after Stop", addr)
		}
	}
	s.Stop() // idempotent
}

// Both SASL mechanisms the Go client speaks work over plaintext, a message
// goes from one user to the other, and connected_users_info shows both
// sessions with the address they came from.
func TestEjabberdLoginMessageSessions(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, err := xmppclient.DialOptions(ctx, s.Addr, s.Domain, "alice", "alice-pw", xmppclient.Options{Mechanism: "PLAIN"})
	if err != nil {
		t.Fatalf("alice (PLAIN): %v", err)
	}
	defer alice.Close()
	bob, err := xmppclient.DialOptions(ctx, s.Addr, s.Domain, "bob", "bob-pw", xmppclient.Options{Mechanism: "SCRAM-SHA-1"})
	if err != nil {
		t.Fatalf("bob (SCRAM-SHA-1): %v", err)
	}
	defer bob.Close()
	if err := alice.SendMessage(bob.JID(), "hi bob"); err != nil {
		t.Fatal(err)
	}
	if from, body, err := bob.ReadMessage(ctx); err != nil || body != "hi bob" || !strings.HasPrefix(from, "alice@localhost/") {
		t.Fatalf("bob read %q from %q, %v", body, from, err)
	}
	ss, err := s.Sessions()
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("sessions %+v, want alice's and bob's", ss)
	}
	for _, se := range ss {
		if se.IP != "127.0.0.1" || se.Connection != "c2s" || se.Node != s.Node {
			t.Errorf("session %+v", se)
		}
	}
}

// The PROXY listener takes the header's source as the client's address.
func TestEjabberdProxyListener(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: map[string]string{"carol": "c-pw"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", s.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := proxyproto.Header{Command: proxyproto.Proxy, Source: netip.MustParseAddrPort("203.0.113.7:4242"),
		Dest: netip.MustParseAddrPort("192.0.2.1:5222")}
	if _, err := conn.Write(h.AppendV2(nil)); err != nil {
		t.Fatal(err)
	}
	c, err := xmppclient.New(ctx, conn, s.Domain, "carol", "c-pw")
	if err != nil {
		t.Fatalf("carol after a PROXY v2 header: %v", err)
	}
	defer c.Close()
	ss, err := s.Sessions()
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].IP != "203.0.113.7" || ss[0].Port != 4242 || !strings.HasPrefix(ss[0].JID, "carol@localhost/") {
		t.Fatalf("sessions %+v, want carol's from 203.0.113.7:4242", ss)
	}
}

func TestEjabberdKill(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Domain: "example.test", Users: map[string]string{}})
	s.Kill()
	if s.Running() {
		t.Fatal("still running after Kill")
	}
	if strings.Contains(s.Log(), "is stopped in the node") {
		t.Error("a SIGKILLed ejabberd should not log a clean shutdown")
	}
}

// Several servers at once: unique ports, directories and node names.
func TestEjabberdParallelServers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		s := Start(t, Options{Users: map[string]string{}})
		for _, k := range []string{s.Addr, s.ProxyAddr, s.Dir, s.Node} {
			if seen[k] {
				t.Fatalf("reused %s", k)
			}
			seen[k] = true
		}
	}
}

func TestEjabberdParseSessions(t *testing.T) {
	out := "alice@localhost/r1\tc2s\t127.0.0.7\t49844\t0\tn@localhost\t2\tavailable\tr1\t\n" +
		"bob@localhost/r2\tc2s\t::1\t1\t5\tn@localhost\t30\taway\tr2\tgone fishing"
	ss, err := parseSessions(out)
	if err != nil || len(ss) != 2 {
		t.Fatalf("%+v, %v", ss, err)
	}
	want := Session{JID: "alice@localhost/r1", Connection: "c2s", IP: "127.0.0.7", Port: 49844, Node: "n@localhost",
		Uptime: 2, Status: "available", Resource: "r1"}
	if ss[0] != want || ss[1].IP != "::1" || ss[1].Priority != 5 || ss[1].Status != "away" {
		t.Fatalf("%+v", ss)
	}
	if ss, err := parseSessions(""); err != nil || len(ss) != 0 {
		t.Fatalf("empty: %+v, %v", ss, err)
	}
	if _, err := parseSessions("alice\tc2s"); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestEjabberdShellAssignment(t *testing.T) {
	script := []byte("#!/bin/bash\nERL=\"/usr/bin/erl\"\n  ERL_LIBS='/usr/lib/x86_64-linux-gnu'\nERLX=\"$HOME\"\n")
	if got := shellAssignment(script, "ERL"); got != "/usr/bin/erl" {
		t.Errorf("ERL = %q", got)
	}
	if got := shellAssignment(script, "ERL_LIBS"); got != "/usr/lib/x86_64-linux-gnu" {
		t.Errorf("ERL_LIBS = %q", got)
	}
	if got := shellAssignment(script, "ERLX"); got != "" {
		t.Errorf("an expansion was taken: %q", got)
	}
}

// The runtime comes from the package's launcher; without the package the
// error names what is missing (Start adds how to install it).
func TestEjabberdRuntimePaths(t *testing.T) {
	if _, _, err := runtimePaths(filepath.Join(t.TempDir(), "ejabberdctl")); !os.IsNotExist(err) {
		t.Errorf("missing launcher: %v", err)
	}
	script := filepath.Join(t.TempDir(), "ejabberdctl")
	os.WriteFile(script, []byte("#!/bin/sh\nERL=\"/usr/bin/erl\"\n"), 0o755)
	if _, _, err := runtimePaths(script); err == nil || !strings.Contains(err.Error(), "ERL_LIBS") {
		t.Errorf("launcher without ERL_LIBS: %v", err)
	}
	erl, libs, err := runtimePaths(Ejabberdctl)
	if err != nil || erl == "" || libs == "" {
		t.Fatalf("%s: %q %q %v (%s)", Ejabberdctl, erl, libs, err, installHint)
	}
}
