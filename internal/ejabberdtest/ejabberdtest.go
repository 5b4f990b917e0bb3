// Package ejabberdtest starts a private, real ejabberd XMPP server for one
// test.
//
// Each Server has its own ejabberd.yml, Mnesia spool directory, log
// directory, HOME with its own Erlang cookie, and Erlang node name under
// t.TempDir(), and listens on free loopback ports only: a plaintext c2s
// listener (Addr), a second c2s listener that takes a PROXY protocol header
// before the stream (ProxyAddr, use_proxy_protocol), and the node's Erlang
// distribution port, which ejabberdctl-style commands (Ctl) connect to.
// Only c2s is enabled: no s2s, HTTP, MQTT, STUN or TLS. SASL PLAIN and
// SCRAM are allowed over plaintext so that tests need no certificates.
//
// The Debian package's launcher, ejabberdctl, switches to the ejabberd user
// when run as root (the tests run as root in CI) and would then use the
// system's configuration and /var/lib/ejabberd. So the server is started the
// way ejabberdctl starts it (erl with ERL_LIBS and EJABBERD_* from the
// package's own ejabberdctl) but directly, as the current user, with every
// path explicit. No epmd is used or started: the node listens on a fixed
// distribution port (-erl_epmd_port, as ejabberdctl's ERL_DIST_PORT does) on
// 127.0.0.1, so nothing outlives the test and servers of parallel tests do
// not share a name server.
//
// Integration tests are not optional: when ejabberd is not installed, Start
// fails the test with instructions instead of skipping it.
package ejabberdtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// Ejabberdctl is the Debian package's launcher. It is read, not run: the
// Erlang runtime (ERL) and the library path (ERL_LIBS) it names are used
// to start the server. A variable so that a machine with another layout can
// point it elsewhere.
var Ejabberdctl = "/usr/sbin/ejabberdctl"

const (
	startTimeout = 30 * time.Second // until c2s answers a stream header
	ctlTimeout   = 15 * time.Second // one ejabberd_ctl command
	stopTimeout  = 10 * time.Second // SIGTERM until SIGKILL
	startTries   = 3                // a free port may be taken by another package in between
)

const installHint = "install ejabberd (apt-get install -y ejabberd, with a policy-rc.d that keeps its own service from starting; .ci/run does this)"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Domain is the single host. Default "localhost".
	Domain string
	// Users maps user name to password. Default alice/alice-pw and bob/bob-pw.
	Users map[string]string
	// LogLevel is ejabberd's log level (none, critical, error, warning,
	// notice, info, debug). Default "info": it logs each accepted
	// connection with its addresses, and each authentication.
	LogLevel string
}

// Server is a running ejabberd.
type Server struct {
	Addr      string // plaintext c2s, 127.0.0.1:PORT
	ProxyAddr string // c2s after a PROXY protocol header (v1 or v2), 127.0.0.1:PORT
	Domain    string
	Node      string // Erlang node name, guard_ejabberd_XXXX@localhost
	Dir       string // configuration, spool, logs and HOME live here
	// The Erlang VM (beam.smp; erl execs it): PID, Stop, Kill, Running.
	*childproc.Process

	erl      string
	erlLibs  string
	distPort int
	ctlSeq   atomic.Int64
}

// DefaultUsers are the accounts created when Options.Users is nil.
func DefaultUsers() map[string]string {
	return map[string]string{"alice": "alice-pw", "bob": "bob-pw"}
}

// Start starts ejabberd, waits until it answers an XMPP stream header,
// registers the users and arranges for t.Cleanup to stop it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if opts.Users == nil {
		opts.Users = DefaultUsers()
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	erl, erlLibs, err := RuntimePaths()
	if err != nil {
		t.Fatalf("ejabberdtest: %v: %s", err, installHint)
	}

	base := t.TempDir()
	var lastErr error
	for try := 1; try <= startTries; try++ {
		dir := filepath.Join(base, fmt.Sprintf("ejabberd-%d", try))
		s, err := start(erl, erlLibs, dir, opts)
		if err == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("ejabberdtest: ejabberd log (%s), last lines:\n%s", s.LogPath(), childproc.Tail(s.Log(), 60))
				}
			})
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("ejabberdtest: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

// InstallHint says how to install ejabberd, for a test that cannot find it.
const InstallHint = installHint

// RuntimePaths returns the Erlang runtime (erl) and the library path
// (ERL_LIBS) that Ejabberdctl starts ejabberd with, checked to exist, for
// harnesses that start ejabberd their own way (internal/fedtest).
func RuntimePaths() (erl, erlLibs string, err error) { return runtimePaths(Ejabberdctl) }

// runtimePaths reads ERL and ERL_LIBS from the package's ejabberdctl, the
// way it starts the server.
func runtimePaths(ctl string) (erl, erlLibs string, err error) {
	b, err := os.ReadFile(ctl)
	if err != nil {
		return "", "", err
	}
	erl = shellAssignment(b, "ERL")
	erlLibs = shellAssignment(b, "ERL_LIBS")
	if erl == "" || erlLibs == "" {
		return "", "", fmt.Errorf("%s names no ERL or ERL_LIBS", ctl)
	}
	if _, err := os.Stat(erl); err != nil {
		return "", "", err
	}
	if m, _ := filepath.Glob(filepath.Join(erlLibs, "ejabberd-*", "ebin", "ejabberd.app")); len(m) == 0 {
		return "", "", fmt.Errorf("no ejabberd-*/ebin/ejabberd.app under ERL_LIBS %s", erlLibs)
	}
	return erl, erlLibs, nil
}

// shellAssignment finds a line NAME="value" or NAME='value' (no expansion).
func shellAssignment(script []byte, name string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `=(?:"([^"$]*)"|'([^']*)')\s*$`)
	m := re.FindSubmatch(script)
	if m == nil {
		return ""
	}
	return string(m[1]) + string(m[2])
}

func start(erl, erlLibs, dir string, opts Options) (*Server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("free ports: %v", err)
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{dir, filepath.Join(dir, "spool"), filepath.Join(dir, "log"), home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// Erlang reads the cookie from $HOME/.erlang.cookie and refuses one
	// that others may read.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(randomHex(16)), 0o400); err != nil {
		return nil, err
	}
	s := &Server{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		ProxyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		Domain:    opts.Domain,
		Node:      "guard_ejabberd_" + randomHex(4) + "@localhost",
		Dir:       dir,
		erl:       erl,
		erlLibs:   erlLibs,
		distPort:  ports[2],
	}
	if err := os.WriteFile(s.ConfigPath(), []byte(configText(ports[0], ports[1], opts)), 0o600); err != nil {
		return nil, err
	}

	out, err := os.Create(s.outPath())
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own copy
	// What ejabberdctl's "foreground" runs, with ERL_DIST_PORT set.
	args := append(s.distArgs(s.Node),
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"+K", "true", "+P", "250000",
		"-noinput",
		"-mnesia", "dir", strconv.Quote(filepath.Join(dir, "spool")),
		"-s", "ejabberd")
	cmd := exec.Command(erl, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(s.env(),
		"EJABBERD_CONFIG_PATH="+s.ConfigPath(),
		"EJABBERD_LOG_PATH="+s.LogPath(),
		"EJABBERD_PID_PATH="+filepath.Join(dir, "ejabberd.pid"),
		"ERL_CRASH_DUMP="+filepath.Join(dir, "log", "erl_crash.dump"),
		"ERL_MAX_PORTS=32000",
		"ERL_MAX_ETS_TABLES=1400",
		"CONTRIB_MODULES_PATH="+filepath.Join(dir, "modules"),
		"CONTRIB_MODULES_CONF_DIR="+filepath.Join(dir, "modules", "conf"),
	)
	// ejabberd dies with the test binary: erl execs the VM, so the signal
	// reaches beam.smp, and its port helpers exit with it.
	if s.Process, err = childproc.Start(cmd, stopTimeout); err != nil {
		return nil, err
	}

	fail := func(err error) (*Server, error) {
		s.Kill()
		output := childproc.ReadFile(s.outPath())
		if strings.Contains(output, "eaddrinuse") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("ejabberd %s on %s not ready: %w\nejabberd output:\n%s", s.Node, s.Addr, err, childproc.Tail(output, 60))
	}
	if err := s.waitReady(); err != nil {
		return fail(err)
	}
	users := make([]string, 0, len(opts.Users))
	for u := range opts.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	// One ejabberd_ctl per user, at once: each is an Erlang VM start.
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := s.Ctl("register", u, opts.Domain, opts.Users[u]); err != nil {
				errs[i] = fmt.Errorf("register %s: %v\n%s", u, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	return s, nil
}

// distArgs are the erl arguments that name a node and give it the
// distribution port instead of epmd.
func (s *Server) distArgs(node string) []string {
	return []string{"-sname", node,
		"-erl_epmd_port", strconv.Itoa(s.distPort), "-start_epmd", "false"}
}

// env is the environment for the server and for ctl commands: the test's,
// without inherited Erlang or ejabberd settings, with HOME (and so the
// cookie) in the server's directory.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "HOME" || strings.HasPrefix(name, "ERL_") || strings.HasPrefix(name, "EJABBERD") ||
			strings.HasPrefix(name, "CONTRIB_MODULES_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+filepath.Join(s.Dir, "home"), "ERL_LIBS="+s.erlLibs)
}

// configText renders a self-contained ejabberd 23.01 configuration.
func configText(c2sPort, proxyPort int, opts Options) string {
	q := strconv.Quote // valid YAML for a domain name
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by internal/ejabberdtest for one test.
loglevel: %s
log_rotate_count: 0
hide_sensitive_log_data: false
hosts:
  - %s

# c2s only, plaintext, on loopback: no s2s, HTTP, MQTT, STUN or TLS. No
# mod_stream_mgmt either: a session whose client is gone ends at once
# instead of waiting to be resumed, so Sessions shows only live clients.
listen:
  -
    port: %d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
    access: c2s
  -
    port: %d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
    access: c2s
    use_proxy_protocol: true

auth_method: internal
# Plain storage lets every SCRAM variant and PLAIN work.
auth_password_format: plain
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"

acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10

api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"

modules:
  mod_admin_extra: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
`, opts.LogLevel, q(opts.Domain), c2sPort, proxyPort)
	return b.String()
}

// waitReady polls until the c2s port answers a stream header with features
// and the node answers ejabberd_ctl.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-s.Exited():
			return fmt.Errorf("ejabberd exited: %v", s.WaitErr())
		default:
		}
		if lastErr = probe(s.Addr, s.Domain); lastErr == nil {
			// Answered, but by this ejabberd? Another process may have
			// taken a port since it was picked.
			for _, addr := range []string{s.Addr, s.ProxyAddr} {
				if err := s.Listens(addr); errors.Is(err, childproc.ErrNotOwner) {
					return fmt.Errorf("%w: %v", errPortTaken, err)
				} else if err != nil && lastErr == nil {
					lastErr = err
				}
			}
			if lastErr == nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		return fmt.Errorf("no stream features within %v: %v", startTimeout, lastErr)
	}
	for time.Now().Before(deadline) {
		out, err := s.ctl(time.Until(deadline), "status")
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("ejabberd_ctl status: %v: %s", err, out)
		time.Sleep(100 * time.Millisecond)
	}
	return lastErr
}

// probe opens a stream and reads until <stream:features>.
func probe(addr, domain string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' "+
		"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", domain)
	if err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte("<stream:features")) {
			conn.Write([]byte("</stream:stream>"))
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %q: %v", got, err)
		}
	}
	return fmt.Errorf("no features in %d bytes", len(got))
}

// Ctl runs an ejabberdctl command (register, connected_users_info, ...)
// against this node, the way ejabberdctl does (a hidden Erlang node running
// ejabberd_ctl), bounded by 15 seconds. It returns the command's output; a
// non-zero exit status is an error.
func (s *Server) Ctl(args ...string) (string, error) {
	return s.ctl(ctlTimeout, args...)
}

func (s *Server) ctl(bound time.Duration, args ...string) (string, error) {
	node := fmt.Sprintf("ctl_%d_%s@localhost", s.ctlSeq.Add(1), randomHex(3))
	a := append(s.distArgs(node), "-dist_listen", "false", "-hidden", "-noinput",
		"-s", "ejabberd_ctl", "-extra", s.Node)
	cmd := exec.Command(s.erl, append(a, args...)...)
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	out, err := childproc.Run(cmd, bound)
	return strings.TrimSpace(string(out)), err
}

// Register adds a user on the running server.
func (s *Server) Register(t testing.TB, user, password string) {
	t.Helper()
	if out, err := s.Ctl("register", user, s.Domain, password); err != nil {
		t.Fatalf("ejabberdtest: register %s: %v\n%s", user, err, out)
	}
}

// Session is one line of ejabberdctl connected_users_info.
type Session struct {
	JID        string // full JID
	Connection string // c2s, c2s_tls, ...
	IP         string // the client's address as ejabberd sees it
	Port       int
	Priority   int
	Node       string
	Uptime     int // seconds
	Status     string
	Resource   string
}

// Sessions returns the server's c2s sessions (connected_users_info).
func (s *Server) Sessions() ([]Session, error) {
	out, err := s.Ctl("connected_users_info")
	if err != nil {
		return nil, fmt.Errorf("connected_users_info: %v: %s", err, out)
	}
	return parseSessions(out)
}

func parseSessions(out string) ([]Session, error) {
	var ss []Session
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 9 {
			return nil, fmt.Errorf("connected_users_info line %q: %d fields, want 9 or more", line, len(f))
		}
		port, err1 := strconv.Atoi(f[3])
		prio, err2 := strconv.Atoi(f[4])
		up, err3 := strconv.Atoi(f[6])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("connected_users_info line %q: %v", line, err)
		}
		ss = append(ss, Session{JID: f[0], Connection: f[1], IP: f[2], Port: port, Priority: prio,
			Node: f[5], Uptime: up, Status: f[7], Resource: f[8]})
	}
	return ss, sc.Err()
}

// Log returns ejabberd's log so far.
func (s *Server) Log() string { return childproc.ReadFile(s.LogPath()) }

// LogPath is the file ejabberd logs to.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "log", "ejabberd.log") }

// ConfigPath is ejabberd's configuration file.
func (s *Server) ConfigPath() string { return filepath.Join(s.Dir, "ejabberd.yml") }

// outPath holds the VM's standard output and error.
func (s *Server) outPath() string { return filepath.Join(s.Dir, "ejabberd.out") }

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
