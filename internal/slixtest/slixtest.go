// Package slixtest runs the slixmpp test client (testdata/clients/slixmpp_echo.py),
// a real third-party XMPP client, and decodes its one-line JSON report.
//
// The script needs Debian's python3-slixmpp, so it runs under /usr/bin/python3
// (a python3 earlier on PATH may not see Debian's packages).
package slixtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Python is the interpreter that can import slixmpp.
var Python = "/usr/bin/python3"

// Result is the script's report plus how the process ended.
type Result struct {
	Connected        bool    `json:"connected"`
	LoggedIn         bool    `json:"logged_in"`
	Echo             bool    `json:"echo"`
	StreamError      string  `json:"stream_error"` // condition, "" if none
	StreamErrorText  string  `json:"stream_error_text"`
	DisconnectReason string  `json:"disconnect_reason"`
	Held             bool    `json:"held"` // --hold elapsed without a disconnect
	Elapsed          float64 `json:"elapsed"`
	TLS              string  `json:"tls"`       // negotiated version ("TLSv1.3"), "" without TLS
	ALPN             string  `json:"alpn"`      // negotiated ALPN protocol, "" if none
	Mechanism        string  `json:"mechanism"` // SASL mechanism that succeeded, "" if none
	// Features are the local names of the last stream features seen before
	// authentication (after TLS when TLS was used); nil if none were seen.
	Features []string `json:"features,omitempty"`

	ExitCode int    `json:"-"`
	Stdout   string `json:"-"`
	Stderr   string `json:"-"`
}

// OK reports a successful echo (exit status 0).
func (r Result) OK() bool { return r.ExitCode == 0 }

func (r Result) String() string {
	return fmt.Sprintf("slixmpp: exit=%d connected=%v logged_in=%v echo=%v stream_error=%q disconnect=%q tls=%q alpn=%q mechanism=%q features=%q elapsed=%.2fs",
		r.ExitCode, r.Connected, r.LoggedIn, r.Echo, r.StreamError, r.DisconnectReason, r.TLS, r.ALPN, r.Mechanism, r.Features, r.Elapsed)
}

// Options build the script's command line.
type Options struct {
	Addr     string        // host:port to connect to
	JID      string        // e.g. alice@localhost
	Password string        //
	Body     string        // default "hello from slixmpp"
	Timeout  time.Duration // connect+login+echo; default 15s
	Hold     time.Duration // stay connected after the echo
	Debug    bool          // slixmpp debug log into Result.Stderr
	// TLS is "" or "none" (plaintext), "starttls" (STARTTLS required) or
	// "direct" (TLS from the first byte, XEP-0368). With TLS the script
	// only uses SCRAM-SHA-1 or SCRAM-SHA-256 and checks the certificate
	// against the JID's domain.
	TLS    string
	CAFile string // PEM root(s) to trust; "" for the system's
	// Source is the local address to connect from (e.g. "127.0.0.7");
	// "" lets the kernel choose.
	Source string
}

// Args renders o as script arguments.
func (o Options) Args() ([]string, error) {
	host, port, err := splitHostPort(o.Addr)
	if err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	args := []string{"--host", host, "--port", port, "--jid", o.JID, "--password", o.Password,
		"--timeout", secs(o.Timeout)}
	if o.Body != "" {
		args = append(args, "--body", o.Body)
	}
	if o.Hold > 0 {
		args = append(args, "--hold", secs(o.Hold))
	}
	if o.Debug {
		args = append(args, "--debug")
	}
	switch o.TLS {
	case "", "none":
	case "starttls", "direct":
		args = append(args, "--tls", o.TLS)
	default:
		return nil, fmt.Errorf("slixtest: TLS %q: want none, starttls or direct", o.TLS)
	}
	if o.CAFile != "" {
		args = append(args, "--ca", o.CAFile)
	}
	if o.Source != "" {
		args = append(args, "--source", o.Source)
	}
	return args, nil
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func splitHostPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("slixtest: address %q has no port", addr)
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], nil
}

// Echo runs the script with opts and fails the test if it could not run.
// A failed echo is not a test failure here: check the Result.
func Echo(t testing.TB, opts Options) Result {
	t.Helper()
	args, err := opts.Args()
	if err != nil {
		t.Fatal(err)
	}
	return Run(t, args...)
}

// Run runs the script with raw arguments; see Echo.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	r, err := RunContext(context.Background(), args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Stderr)
	}
	return r
}

// RunContext runs the script; it is safe to call from any goroutine. The run
// is bounded by the script's own --timeout and --hold, plus a margin, and by
// ctx. The error is about running the script (missing interpreter, no JSON),
// not about the XMPP outcome.
func RunContext(ctx context.Context, args ...string) (Result, error) {
	var r Result
	script, err := Script()
	if err != nil {
		return r, err
	}
	if _, err := os.Stat(Python); err != nil {
		return r, fmt.Errorf("slixtest: %v: install python3-slixmpp (apt-get install -y python3-slixmpp)", err)
	}
	bound := 30 * time.Second
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--timeout" || args[i] == "--hold" {
			if f, err := strconv.ParseFloat(args[i+1], 64); err == nil {
				bound += time.Duration(f * float64(time.Second))
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, Python, append([]string{script}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exit) && exit.Exited():
		r.ExitCode = exit.ExitCode()
	default:
		return r, fmt.Errorf("slixtest: %s: %v (ctx: %v)", script, runErr, ctx.Err())
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return r, fmt.Errorf("slixtest: no JSON report (exit %d): %v\nstdout: %s", r.ExitCode, err, r.Stdout)
	}
	if strings.Contains(r.Stderr, "No module named 'slixmpp'") {
		return r, errors.New("slixtest: install python3-slixmpp (apt-get install -y python3-slixmpp)")
	}
	return r, nil
}

// Script returns the absolute path of testdata/clients/slixmpp_echo.py,
// found by walking up from the working directory to go.mod.
func Script() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", "clients", "slixmpp_echo.py"), nil
}

// RepoRoot walks up from the working directory to the directory with go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 64; i++ {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("slixtest: go.mod not found above the working directory")
}
