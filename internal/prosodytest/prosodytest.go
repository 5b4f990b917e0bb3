// Package prosodytest starts a private, real Prosody XMPP server for one test.
//
// Each Server has its own configuration file, data directory, log file and
// loopback c2s port under t.TempDir(), so tests in many packages may run at
// once. Only c2s is enabled: no s2s, components or TLS, and HTTP only with
// Options.WebSocket (XMPP over WebSocket, RFC 7395, through Prosody's own
// mod_websocket, on a second loopback port). Plaintext SASL (SCRAM-SHA-1
// and PLAIN) is allowed so that tests need no certificates.
//
// Integration tests are not optional: when prosody is not installed, Start
// fails the test with instructions instead of skipping it.
package prosodytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// Binaries used to run Prosody. They are variables so that a test machine
// with a non-Debian layout can point them elsewhere.
var (
	ProsodyBin    = "prosody"
	ProsodyctlBin = "prosodyctl"
)

const (
	startTimeout = 10 * time.Second // until the port answers a stream header
	stopTimeout  = 5 * time.Second  // SIGTERM until SIGKILL
	startTries   = 3                // a free port may be taken by another package in between
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Domain is the single VirtualHost. Default "localhost".
	Domain string
	// Users maps user name to password. Default alice/alice-pw and bob/bob-pw.
	Users map[string]string
	// LogLevel is Prosody's minimum log level ("debug", "info", ...).
	// Default "debug": the log is only read when a test fails.
	LogLevel string
	// Addr is the c2s listen address as host:port. Default: a free port on
	// 127.0.0.1. A fixed port is not retried when taken.
	Addr string
	// WebSocket enables Prosody's HTTP server and mod_websocket on a free
	// loopback port (Server.HTTPAddr; the endpoint is
	// Server.WebSocketURL()), plain ws:// treated as secure and any Origin
	// accepted, so that a browser page served from another port may
	// connect.
	WebSocket bool
}

// Server is a running Prosody.
type Server struct {
	Addr   string // c2s address, 127.0.0.1:PORT
	Domain string
	// HTTPAddr is the HTTP (WebSocket) address, 127.0.0.1:PORT, with
	// Options.WebSocket; "" without.
	HTTPAddr string
	Dir      string // configuration, data and log live here
	// The process: PID, Stop, Kill, Running.
	*childproc.Process

	logPath string
}

// DefaultUsers are the accounts created when Options.Users is nil.
func DefaultUsers() map[string]string {
	return map[string]string{"alice": "alice-pw", "bob": "bob-pw"}
}

// Start starts Prosody, waits until it answers an XMPP stream header,
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
		opts.LogLevel = "debug"
	}
	prosody, err := exec.LookPath(ProsodyBin)
	if err != nil {
		t.Fatalf("prosodytest: %v: install prosody (apt-get install -y prosody)", err)
	}
	prosodyctl, err := exec.LookPath(ProsodyctlBin)
	if err != nil {
		t.Fatalf("prosodytest: %v: install prosody (apt-get install -y prosody)", err)
	}

	base := t.TempDir()
	var lastErr error
	for try := 1; try <= startTries; try++ {
		dir := filepath.Join(base, fmt.Sprintf("prosody-%d", try))
		addr := opts.Addr
		if addr == "" {
			addr, err = freeAddr()
			if err != nil {
				t.Fatalf("prosodytest: free port: %v", err)
			}
		}
		httpAddr := ""
		if opts.WebSocket {
			if httpAddr, err = freeAddr(); err != nil {
				t.Fatalf("prosodytest: free port: %v", err)
			}
		}
		s, err := start(prosody, prosodyctl, dir, addr, httpAddr, opts)
		if err == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("prosodytest: Prosody log (%s), last lines:\n%s", s.logPath, childproc.Tail(s.Log(), 60))
				}
			})
			return s
		}
		lastErr = err
		if opts.Addr != "" || !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("prosodytest: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

func start(prosody, prosodyctl, dir, addr, httpAddr string, opts Options) (*Server, error) {
	host, port, err := splitPort(addr)
	if err != nil {
		return nil, err
	}
	httpHost, httpPort := "", 0
	if httpAddr != "" {
		if httpHost, httpPort, err = splitPort(httpAddr); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s := &Server{
		Addr:     addr,
		Domain:   opts.Domain,
		Dir:      dir,
		HTTPAddr: httpAddr,
		logPath:  filepath.Join(dir, "prosody.log"),
	}
	cfgPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgPath, []byte(configText(dir, host, port, httpHost, httpPort, opts)), 0o644); err != nil {
		return nil, err
	}

	// Register before starting: prosodyctl writes the account files
	// directly, and the server reads them on login.
	users := make([]string, 0, len(opts.Users))
	for u := range opts.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	// One prosodyctl per user, at once: each is a Lua start-up (~0.3s).
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := childproc.Run(exec.Command(prosodyctl, "--config", cfgPath, "register", u, opts.Domain, opts.Users[u]), 10*time.Second)
			if err != nil {
				errs[i] = fmt.Errorf("prosodyctl register %s: %v\n%s", u, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	out, err := os.Create(filepath.Join(dir, "prosody.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own copy
	cmd := exec.Command(prosody, "-F", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "HOME="+dir)
	// Prosody dies with the test binary.
	if s.Process, err = childproc.Start(cmd, stopTimeout); err != nil {
		return nil, err
	}

	if err := s.waitReady(); err != nil {
		s.Kill()
		log := s.Log()
		if strings.Contains(log, "Failed to open server port") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("prosody on %s not ready: %w\nprosody output:\n%s\nprosody log:\n%s",
			addr, err, childproc.ReadFile(filepath.Join(dir, "prosody.out")), childproc.Tail(log, 40))
	}
	return s, nil
}

// splitPort splits host:port and parses the port.
func splitPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %v", portStr, err)
	}
	return host, port, nil
}

// configText renders a self-contained Prosody 0.12 configuration; HTTP and
// mod_websocket listen on httpHost:httpPort when httpPort is not 0.
func configText(dir, host string, port int, httpHost string, httpPort int, opts Options) string {
	q := luaQuote
	modules := `"roster", "saslauth", "disco", "ping", "presence", "message", "iq"`
	httpPorts, httpInterfaces, websocket := "", "", ""
	if httpPort != 0 {
		// mod_websocket loads mod_http. Lua 5.4 needs no bit library
		// (util.bitcompat uses the native operators).
		modules += `, "websocket"`
		httpPorts, httpInterfaces = strconv.Itoa(httpPort), q(httpHost)
		websocket = `
-- XMPP over WebSocket (RFC 7395) at /xmpp-websocket on the HTTP port.
-- Plain ws:// on loopback counts as secure, and pages from any origin
-- (a test's own HTTP server) may connect.
consider_websocket_secure = true
cross_domain_websocket = true
`
	}
	var b strings.Builder
	fmt.Fprintf(&b, `-- Generated by internal/prosodytest for one test.
-- Tests run as root in CI; Prosody refuses to unless told otherwise, and
-- prosodyctl would otherwise try to switch to the 'prosody' user.
run_as_root = true
daemonize = false
pidfile = %s
data_path = %s
certificates = %s
log = { { levels = { min = %s }, to = "file", filename = %s } }

-- c2s only (and WebSocket when asked): no s2s, components, TLS or offline storage.
modules_enabled = { %s }
modules_disabled = { "s2s", "s2s_auth_certs", "offline", "tls", "dialback" }
c2s_ports = { %d }
c2s_interfaces = { %s }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
s2s_interfaces = { }
http_ports = { %s }
http_interfaces = { %s }
https_ports = { }
https_interfaces = { }
%s
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed" -- offers SCRAM-SHA-1 and PLAIN
storage = "internal"
allow_registration = false

VirtualHost %s
`, q(filepath.Join(dir, "prosody.pid")), q(filepath.Join(dir, "data")), q(filepath.Join(dir, "certs")),
		q(opts.LogLevel), q(filepath.Join(dir, "prosody.log")), modules, port, q(host),
		httpPorts, httpInterfaces, websocket, q(opts.Domain))
	return b.String()
}

// luaQuote renders s as a Lua string literal.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// waitReady polls until the c2s port answers a stream header with features.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for i := 0; time.Now().Before(deadline) && i < 1000; i++ {
		select {
		case <-s.Exited():
			return fmt.Errorf("prosody exited: %v", s.WaitErr())
		default:
		}
		if lastErr = s.probeAll(); lastErr == nil {
			return nil
		}
		if errors.Is(lastErr, errPortTaken) {
			return lastErr
		}
		if strings.Contains(s.Log(), "Failed to open server port") {
			return errors.New("prosody could not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no stream header within %v: %v", startTimeout, lastErr)
}

// probeAll probes c2s and, with WebSocket, the HTTP endpoint, and checks
// that this Prosody holds both listening sockets: another process may have
// taken a port since it was picked (then the error wraps errPortTaken).
func (s *Server) probeAll() error {
	if err := probe(s.Addr, s.Domain); err != nil {
		return err
	}
	addrs := []string{s.Addr}
	if s.HTTPAddr != "" {
		if err := probeHTTP(s.HTTPAddr); err != nil {
			return err
		}
		addrs = append(addrs, s.HTTPAddr)
	}
	for _, a := range addrs {
		if err := s.Listens(a); err != nil {
			if errors.Is(err, childproc.ErrNotOwner) {
				return fmt.Errorf("%w: %v", errPortTaken, err)
			}
			return err
		}
	}
	return nil
}

// WebSocketPath is where mod_websocket answers on the HTTP port.
const WebSocketPath = "/xmpp-websocket"

// WebSocketURL is the ws:// URL of Prosody's own WebSocket endpoint, or ""
// without Options.WebSocket.
func (s *Server) WebSocketURL() string {
	if s.HTTPAddr == "" {
		return ""
	}
	return "ws://" + s.HTTPAddr + WebSocketPath
}

// probeHTTP asks mod_websocket's path for its plain-HTTP answer (a GET
// without Upgrade gets a short page).
func probeHTTP(addr string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + WebSocketPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("WebSocket")) {
		return fmt.Errorf("GET %s: %s %q", WebSocketPath, resp.Status, body)
	}
	return nil
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

// Log returns the Prosody log so far.
func (s *Server) Log() string { return childproc.ReadFile(s.logPath) }

// LogPath is the file Prosody logs to.
func (s *Server) LogPath() string { return s.logPath }

// ConfigPath is Prosody's configuration file.
func (s *Server) ConfigPath() string { return filepath.Join(s.Dir, "prosody.cfg.lua") }

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// Register adds (or changes the password of) a user on the running server.
func (s *Server) Register(t testing.TB, user, password string) {
	t.Helper()
	out, err := childproc.Run(exec.Command(ProsodyctlBin, "--config", s.ConfigPath(), "register", user, s.Domain, password), 10*time.Second)
	if err != nil {
		t.Fatalf("prosodyctl register %s: %v\n%s", user, err, out)
	}
}
