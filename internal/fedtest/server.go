package fedtest

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// ServerOptions configure one server of a federation. Domain, C2S and
// S2S are required; Start fills them in from Options.
type ServerOptions struct {
	// Domain is the server's one host (VirtualHost, hosts:).
	Domain string
	// C2S is where the server listens for clients (plaintext, SCRAM-SHA-1
	// and PLAIN allowed: the clients are the test's own).
	C2S netip.AddrPort
	// S2S is where the server listens for other servers. What its domain
	// resolves to is the Netns's business: the two differ when a proxy
	// sits in between.
	S2S netip.AddrPort
	// CertFile and KeyFile are the domain's certificate and key, used for
	// STARTTLS on s2s (as TLS server and as TLS client) and on c2s.
	CertFile, KeyFile string
	// CAFile is the PEM file of the roots the server trusts for the peer's
	// certificate. A peer whose certificate does not chain to it is
	// authenticated by dialback (XEP-0220), unless SecureAuth.
	CAFile string
	// SecureAuth requires a verified certificate of every peer, so SASL
	// EXTERNAL (XEP-0178), and disables dialback: Prosody's
	// s2s_secure_auth, ejabberd without mod_s2s_dialback.
	SecureAuth bool
	// Users maps user name to password; they are registered at the first
	// start. Default alice/alice-pw and bob/bob-pw.
	Users map[string]string
}

// Server is one running server (Prosody or ejabberd) in a Netns. It may be
// killed and restarted with the same configuration, data and addresses;
// the accounts survive.
type Server struct {
	// Kind is "prosody" or "ejabberd".
	Kind string
	ServerOptions
	// Dir holds the configuration, data and logs.
	Dir string

	ns *Netns
	// launch starts the process (not waiting for it to be ready);
	// ready waits until it is; register adds the users (first start).
	launch   func() (*childproc.Process, error)
	ready    func(p *childproc.Process) error
	register func() error
	logPath  string
	outPath  string // the process's standard output and error

	mu   sync.Mutex
	proc *childproc.Process
}

// DefaultUsers are the accounts created when ServerOptions.Users is nil.
func DefaultUsers() map[string]string {
	return map[string]string{"alice": "alice-pw", "bob": "bob-pw"}
}

// start launches the process and waits until it is ready, bounded by the
// readiness check's own timeout.
func (s *Server) start() error {
	p, err := s.launch()
	if err != nil {
		return err
	}
	if err := s.ready(p); err != nil {
		p.Kill()
		return fmt.Errorf("%s for %s not ready: %w\n%s output:\n%s\n%s log, last lines:\n%s", s.Kind, s.Domain, err,
			s.Kind, childproc.Tail(childproc.ReadFile(s.outPath), 40), s.Kind, childproc.Tail(s.Log(), 40))
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// boot starts the server for the first time, registers its users and
// arranges for t.Cleanup to stop it and, when the test failed, to log the
// tail of its log.
func (s *Server) boot(t testing.TB) {
	t.Helper()
	if s.Users == nil {
		s.Users = DefaultUsers()
	}
	// Prosody's accounts are files written before it starts; ejabberd's
	// are registered on the running node.
	if s.Kind == "prosody" {
		if err := s.register(); err != nil {
			t.Fatalf("fedtest: %v", err)
		}
	}
	if err := s.start(); err != nil {
		t.Fatalf("fedtest: %v", err)
	}
	t.Cleanup(func() {
		if p := s.process(); p != nil {
			p.Stop()
		}
		if t.Failed() {
			t.Logf("fedtest: %s log (%s), last lines:\n%s", s.Kind, s.logPath, childproc.Tail(s.Log(), 80))
		}
	})
	if s.Kind == "ejabberd" {
		if err := s.register(); err != nil {
			t.Fatalf("fedtest: %v", err)
		}
	}
}

func (s *Server) process() *childproc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// PID is the server process's PID (ip netns exec execs the server, so it
// is the server's own), 0 before the first start.
func (s *Server) PID() int {
	if p := s.process(); p != nil {
		return p.PID
	}
	return 0
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	p := s.process()
	return p != nil && p.Running()
}

// Kill sends SIGKILL to the server, by its PID, like a crash, and waits
// for it to exit (bounded by childproc). The kernel then closes its
// sockets: its peers see a FIN on their streams, not a stream error.
func (s *Server) Kill() {
	if p := s.process(); p != nil {
		p.Kill()
	}
}

// Stop ends the server with SIGTERM (SIGKILL after a bound): it closes its
// streams gracefully.
func (s *Server) Stop() {
	if p := s.process(); p != nil {
		p.Stop()
	}
}

// Restart stops the server if it still runs (SIGKILL: a crash), starts it
// again with the same configuration, data, log file and addresses, and
// waits until it answers on c2s and s2s; the users can log in again (on
// ejabberd they are registered again). It fails the test if it cannot.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		t.Fatalf("fedtest: restart: %v", err)
	}
	if s.Kind == "ejabberd" {
		if err := s.register(); err != nil {
			t.Fatalf("fedtest: restart: %v", err)
		}
	}
}

// Log returns the server's log so far (the log of every start, appended).
func (s *Server) Log() string { return childproc.ReadFile(s.logPath) }

// LogPath is the file the server logs to.
func (s *Server) LogPath() string { return s.logPath }

// JID is user's bare JID on this server.
func (s *Server) JID(user string) string { return user + "@" + s.Domain }

// Login logs user in on the server's c2s port, from inside the namespace,
// with the password it was registered with; the session is closed at
// cleanup. It fails the test if the login does not complete in 10 s.
func (s *Server) Login(t testing.TB, user string) *User {
	t.Helper()
	pw, ok := s.Users[user]
	if !ok {
		t.Fatalf("fedtest: %s has no user %q (have %v)", s.Domain, user, sortedKeys(s.Users))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := login(ctx, s.ns, s.C2S.String(), s.Domain, user, pw)
	if err != nil {
		t.Fatalf("fedtest: %s logs in on %s at %s: %v", s.JID(user), s.Kind, s.C2S, err)
	}
	t.Cleanup(u.Close)
	return u
}

// waitReady polls probe until it succeeds, the process exits or timeout
// passes; every 50 ms, at most 1000 times.
func waitReady(p *childproc.Process, timeout time.Duration, probe func() error) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		select {
		case <-p.Exited():
			return fmt.Errorf("exited: %v", p.WaitErr())
		default:
		}
		if lastErr = probe(); lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v: %v", timeout, lastErr)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
