// Package fedtest sets up real XMPP federation (server-to-server, RFC 6120)
// between a real Prosody and a real ejabberd for one test, inside a network
// namespace of the test's own, so that a proxy can later be put in front of
// one server's s2s port by changing one address.
//
// Everything runs in the namespace and talks over its loopback only: both
// servers (started with ip netns exec), the DNS server the test runs for
// them, and the test's clients (internal/xmppclient over sockets made on a
// thread switched into the namespace). Each domain resolves to an address
// the caller chooses (Options.ProsodyAddr, Options.EjabberdAddr; see Netns
// for how each server's resolver is served), and each server's s2s port
// listens where the caller chooses (Options.ProsodyS2S,
// Options.EjabberdS2S). No SRV records exist, so a server dials the peer's
// domain at its address, port 5269. By default the two are the same; to put
// a proxy in front of Prosody, make ProsodyAddr X and ProsodyS2S Y, listen
// on X:5269 in the namespace (Netns.Listen, or a child process started with
// Netns.Command) and forward to Y: ejabberd's streams to prosody.test (its
// messages and its dialback verifications) then pass through the proxy,
// while Prosody's own streams go straight to ejabberd.
//
// Two modes: Dialback, where each server's certificate comes from a CA the
// peer does not trust, so that the streams are encrypted (STARTTLS is
// required) and authenticated with Server Dialback (XEP-0220); and External,
// where one test CA issues both certificates and both servers trust it and
// nothing else and refuse dialback, so that the streams authenticate with
// SASL EXTERNAL (XEP-0178). Fed.Auths reads which one each stream used from
// ejabberd's log, which sees every stream: it is one end of each.
//
// A server can be killed by PID and restarted with the same configuration,
// data and addresses (Server.Kill, Server.Restart) to test reconnection.
// The servers' logs are kept (Server.Log) and their tails are logged when
// the test fails.
//
// The namespace needs root: without it the test is skipped, or failed when
// CI is set. Prosody, ejabberd and iproute2 are not optional: when one is
// missing the test fails with instructions.
package fedtest

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/testcert"
)

// Mode is how the servers authenticate each other's streams.
type Mode int

const (
	// Dialback: certificates the peer does not trust, Server Dialback.
	Dialback Mode = iota
	// External: certificates from a CA both trust, SASL EXTERNAL, no
	// dialback.
	External
)

func (m Mode) String() string {
	switch m {
	case Dialback:
		return "dialback"
	case External:
		return "EXTERNAL"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Mechanism is the name ejabberd logs for streams authenticated in this
// mode ("dialback" or "EXTERNAL"), as Auth.Mechanism holds it.
func (m Mode) Mechanism() string { return m.String() }

// Defaults of Options. The .test names are reserved (RFC 2606) and both
// servers accept them.
const (
	DefaultProsodyDomain  = "prosody.test"
	DefaultEjabberdDomain = "ejabberd.test"
)

// Default addresses, all in the namespace; the s2s ports are the ones a
// server dials when there is no SRV record.
var (
	DefaultProsodyS2S  = netip.MustParseAddrPort("127.0.0.10:5269")
	DefaultProsodyC2S  = netip.MustParseAddrPort("127.0.1.10:5222")
	DefaultEjabberdS2S = netip.MustParseAddrPort("127.0.0.20:5269")
	DefaultEjabberdC2S = netip.MustParseAddrPort("127.0.1.20:5222")
)

// Options configure a federation. The zero value is usable: dialback,
// prosody.test and ejabberd.test, each resolving to its own s2s address.
type Options struct {
	Mode Mode

	// ProsodyDomain is Prosody's domain (default prosody.test),
	// EjabberdDomain ejabberd's (default ejabberd.test).
	ProsodyDomain, EjabberdDomain string

	// ProsodyAddr is the address ProsodyDomain resolves to in the
	// namespace: ejabberd dials it, port 5269. Default ProsodyS2S's
	// address. EjabberdAddr is the same for EjabberdDomain.
	ProsodyAddr, EjabberdAddr netip.Addr

	// ProsodyS2S is where Prosody's s2s port listens (default
	// 127.0.0.10:5269); when it is not ProsodyAddr:5269, only something
	// that listens there and forwards to it (a proxy) lets ejabberd reach
	// Prosody. EjabberdS2S is the same for ejabberd (default
	// 127.0.0.20:5269).
	ProsodyS2S, EjabberdS2S netip.AddrPort

	// ProsodyC2S and EjabberdC2S are the servers' client ports (defaults
	// 127.0.1.10:5222 and 127.0.1.20:5222).
	ProsodyC2S, EjabberdC2S netip.AddrPort

	// Users are registered on both servers. Default alice/alice-pw and
	// bob/bob-pw.
	Users map[string]string
}

// Fed is a running federation.
type Fed struct {
	Mode     Mode
	Netns    *Netns
	Prosody  *Server
	Ejabberd *Server
	// CAFiles are the trust anchors each server was given, by domain.
	CAFiles map[string]string
}

// Start makes the namespace and the certificates for opts.Mode, and starts
// Prosody and ejabberd, both at once; everything is undone at cleanup. It
// fails the test if either does not start (skips it without root, see
// NewNetns).
func Start(t testing.TB, opts Options) *Fed {
	t.Helper()
	if opts.ProsodyDomain == "" {
		opts.ProsodyDomain = DefaultProsodyDomain
	}
	if opts.EjabberdDomain == "" {
		opts.EjabberdDomain = DefaultEjabberdDomain
	}
	def := func(ap *netip.AddrPort, d netip.AddrPort) {
		if !ap.IsValid() {
			*ap = d
		}
	}
	def(&opts.ProsodyS2S, DefaultProsodyS2S)
	def(&opts.EjabberdS2S, DefaultEjabberdS2S)
	def(&opts.ProsodyC2S, DefaultProsodyC2S)
	def(&opts.EjabberdC2S, DefaultEjabberdC2S)
	if !opts.ProsodyAddr.IsValid() {
		opts.ProsodyAddr = opts.ProsodyS2S.Addr()
	}
	if !opts.EjabberdAddr.IsValid() {
		opts.EjabberdAddr = opts.EjabberdS2S.Addr()
	}
	if opts.Users == nil {
		opts.Users = DefaultUsers()
	}

	ns := NewNetns(t, map[string]netip.Addr{
		strings.ToLower(opts.ProsodyDomain):  opts.ProsodyAddr,
		strings.ToLower(opts.EjabberdDomain): opts.EjabberdAddr,
	})

	po := ServerOptions{Domain: opts.ProsodyDomain, C2S: opts.ProsodyC2S, S2S: opts.ProsodyS2S, Users: opts.Users}
	eo := ServerOptions{Domain: opts.EjabberdDomain, C2S: opts.EjabberdC2S, S2S: opts.EjabberdS2S, Users: opts.Users}
	dir := t.TempDir()
	switch opts.Mode {
	case Dialback:
		// Each server's certificate comes from its own CA, which only it
		// trusts: each verifies its own chain, never the peer's.
		for _, o := range []*ServerOptions{&po, &eo} {
			d := filepath.Join(dir, o.Domain)
			ca := testcert.NewCA(t, t.TempDir(), o.Domain+" private root")
			o.CertFile, o.KeyFile = ca.Issue(t, d, o.Domain)
			o.CAFile = ca.CertFile
		}
	case External:
		ca := testcert.NewCA(t, dir, "fedtest root")
		for _, o := range []*ServerOptions{&po, &eo} {
			o.CertFile, o.KeyFile = ca.Issue(t, filepath.Join(dir, o.Domain), o.Domain)
			o.CAFile = ca.CertFile
			o.SecureAuth = true
		}
	default:
		t.Fatalf("fedtest: unknown mode %v", opts.Mode)
	}

	f := &Fed{Mode: opts.Mode, Netns: ns, CAFiles: map[string]string{po.Domain: po.CAFile, eo.Domain: eo.CAFile}}
	// ejabberd takes a few seconds to start, Prosody about one: both at
	// once, each on its own goroutine, waited for here.
	type result struct {
		s   *Server
		msg string
	}
	run := func(start func(testing.TB, *Netns, ServerOptions) *Server, o ServerOptions) <-chan result {
		c := make(chan result, 1)
		go func() {
			rec := &fatalRecorder{TB: t}
			defer func() {
				if r := recover(); r != nil && r != errFatal {
					panic(r)
				}
				if rec.msg != "" {
					c <- result{msg: rec.msg}
				}
			}()
			c <- result{s: start(rec, ns, o)}
		}()
		return c
	}
	pc, ec := run(StartProsody, po), run(StartEjabberd, eo)
	var msgs []string
	for _, c := range []<-chan result{pc, ec} {
		// Each start is bounded by its own readiness timeout; this bound
		// only guards against a start that hangs before it.
		select {
		case r := <-c:
			if r.msg != "" {
				msgs = append(msgs, r.msg)
			} else if r.s.Kind == "prosody" {
				f.Prosody = r.s
			} else {
				f.Ejabberd = r.s
			}
		case <-time.After(2 * ejabberdStartTimeout):
			t.Fatal("fedtest: a server did not start within 60 s")
		}
	}
	if len(msgs) > 0 {
		t.Fatal(strings.Join(msgs, "\n"))
	}
	return f
}

// Auth is one s2s stream authentication, as ejabberd logs it.
type Auth struct {
	// Direction is "inbound" (the peer connected to ejabberd) or
	// "outbound" (ejabberd connected to the peer), as ejabberd sees it.
	Direction string
	// Mechanism is "EXTERNAL" or "dialback".
	Mechanism string
	// From and To are the domains: the stream's initiating server first.
	From, To string
	// Peer is the remote address ejabberd saw (a proxy's, with one in
	// between).
	Peer string
}

var authLine = regexp.MustCompile(`Accepted (inbound|outbound) s2s (\S+) authentication (\S+) -> (\S+) \(([^)]*)\)`)

// Auths returns every s2s authentication in ejabberd's log so far, in
// order, across restarts. ejabberd is one end of every stream of the
// federation, so this is all of them.
func (f *Fed) Auths() []Auth {
	var out []Auth
	for _, m := range authLine.FindAllStringSubmatch(f.Ejabberd.Log(), -1) {
		a := Auth{Direction: m[1], Mechanism: m[2], Peer: m[5]}
		// ejabberd logs the remote server first for inbound streams and
		// the local one first for outbound: both are initiator -> receiver.
		a.From, a.To = m[3], m[4]
		out = append(out, a)
	}
	return out
}

// WaitAuths polls Auths every 100 ms until cond holds of them or timeout
// passes, and returns the last ones read with whether cond held. ejabberd
// writes its log with a delay (Erlang's logger buffers file writes for up
// to a couple of seconds), so a stream that just authenticated may not be
// in the log yet.
func (f *Fed) WaitAuths(timeout time.Duration, cond func([]Auth) bool) ([]Auth, bool) {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		auths := f.Auths()
		if cond(auths) {
			return auths, true
		}
		if i >= 1000 || !time.Now().Before(deadline) {
			return auths, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	prosodyExternal = regexp.MustCompile(`Accepting SASL EXTERNAL identity from \S+|SASL EXTERNAL with \S+ succeeded`)
	prosodyDialback = regexp.MustCompile(`sent dialback key on outgoing s2s stream|verified dialback key\.\.\. it is valid`)
)

// ProsodyMechanisms returns which mechanisms Prosody's log shows s2s
// streams authenticated with so far: "EXTERNAL" when it accepted or
// completed SASL EXTERNAL, "dialback" when it sent a dialback key or
// confirmed one of its own. It is the other end's view of what Auths
// reports (Prosody logs at once, without buffering).
func (f *Fed) ProsodyMechanisms() map[string]bool {
	log := f.Prosody.Log()
	got := map[string]bool{}
	if prosodyExternal.MatchString(log) {
		got["EXTERNAL"] = true
	}
	if prosodyDialback.MatchString(log) {
		got["dialback"] = true
	}
	return got
}

// errFatal unwinds a goroutine whose fatalRecorder was failed.
var errFatal = fmt.Errorf("fedtest: fatal")

// fatalRecorder lets a start run on another goroutine than the test's:
// Fatal and Fatalf record the message and unwind with a panic the
// goroutine recovers, and the test's goroutine fails the test with it
// (testing.T.FailNow must be called from the test's goroutine).
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	panic(errFatal)
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(errFatal)
}

func (r *fatalRecorder) Helper() {}
