package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	clientHeader = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	sinkHeader   = "<?xml version='1.0'?><stream:stream from='localhost' id='sink' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)

// TestMain lets the test binary run as the sink backend in a child process
// (GUARD_BENCH_SINK=1), so that the backend's descriptors do not count
// against the benchmark process's limit.
func TestMain(m *testing.M) {
	if os.Getenv("GUARD_BENCH_SINK") == "1" {
		runSink()
		return
	}
	if spec := os.Getenv(stormBackendEnv); spec != "" {
		runStormBackend(spec)
		return
	}
	if spec := os.Getenv(idleHolderEnv); spec != "" {
		runIdleHolder(spec)
		return
	}
	if os.Getenv(throughputSinkEnv) == "1" {
		runThroughputSink()
		return
	}
	os.Exit(m.Run())
}

// runSink accepts streams, answers each client header with a stream header
// and then holds the stream until the client closes it. It prints its address
// on stdout and exits when stdin closes.
func runSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			buf := make([]byte, len(clientHeader))
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			io.WriteString(c, sinkHeader)
			io.Copy(io.Discard, c)
		}()
	}
}

// writeResults writes v, indented, to bench/results/NAME.json, or
// NAME-smoke.json for a smoke run (not committed).
func writeResults(b testing.TB, base string, smoke bool, v any) {
	name := base + ".json"
	if smoke {
		name = base + "-smoke.json"
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll("results", 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join("results", name)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("results written to bench/%s", path)
}

// readResults reads bench/results/NAME.json (NAME-smoke.json) into v, and
// reports whether there was one that parsed.
func readResultsFile(base string, smoke bool, v any) bool {
	name := base + ".json"
	if smoke {
		name = base + "-smoke.json"
	}
	old, err := os.ReadFile(filepath.Join("results", name))
	return err == nil && json.Unmarshal(old, v) == nil
}

// acceptEach accepts connections on ln in a goroutine of its own and hands
// each to handle (in that goroutine: handle starts its own for long work),
// until ln is closed; a failed accept (EMFILE, say) is retried after a
// millisecond.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(time.Millisecond)
				continue
			}
			handle(c)
		}
	}()
}

// startSink starts the sink backend process and returns its address.
func startSink(b testing.TB) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GUARD_BENCH_SINK=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line := make([]byte, 64)
	n, err := stdout.Read(line)
	if err != nil {
		b.Fatal(err)
	}
	return string(line[:n-1])
}

// proxy is one system under test: it starts in front of a backend and
// returns its listening address, its PID and a stop function.
type proxy struct {
	name  string
	start func(b testing.TB, backend string) (addr string, pid int, stop func())
}

func proxies(b testing.TB) []proxy {
	ps := []proxy{{"guard", startGuard}}
	if haveHAProxy(b) {
		ps = append(ps, proxy{"haproxy", startHAProxy})
	} else {
		b.Logf("haproxy not installed (apt-get install -y haproxy): measuring Guard only")
	}
	return ps
}

func freePort(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startGuard(b testing.TB, backend string) (string, int, func()) {
	return startGuardWith(b, backend, "", "")
}

// startGuardWith starts Guard with extra lines in its listener block (e.g.
// a tls block) and in its backend block (e.g. admission keys), after
// checking the file with guard validate.
func startGuardWith(b testing.TB, backend, listenerExtra, backendExtra string) (string, int, func()) {
	bin, err := buildGuard()
	if err != nil {
		b.Fatal(err)
	}
	addr := freePort(b)
	cfg := fmt.Sprintf(`
log {
  level = "warn"
}
admin {
  address = ""
}
listener "bench" {
  address = %q
  backend = "sink"
%s}
backend "sink" {
  address = %q
%s}
`, addr, listenerExtra, backend, backendExtra)
	path := filepath.Join(b.TempDir(), "guard.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", "-config", path).CombinedOutput(); err != nil {
		b.Fatalf("guard validate: %v\n%s", err, out)
	}
	return startProcessEnv(b, addr, guardEnv(), bin, "-config", path)
}

// guardEnv is Guard's environment: the benchmark's, plus the assignments
// in GUARD_BENCH_GUARD_ENV (e.g. "GOGC=50 GOMAXPROCS=1"), for tuning
// experiments that must not touch the benchmark's own clients.
func guardEnv() []string {
	return append(os.Environ(), strings.Fields(os.Getenv("GUARD_BENCH_GUARD_ENV"))...)
}

func startHAProxy(b testing.TB, backend string) (string, int, func()) {
	addr := freePort(b)
	// mode tcp as a careful operator configures it in front of XMPP: a
	// connection cap, a queue timeout, and timeouts for half-closed sides.
	cfg := fmt.Sprintf(`
global
  maxconn 9800
defaults
  mode tcp
  maxconn 9800
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout client-fin 5s
  timeout server-fin 5s
  timeout queue 10s
frontend xmpp
  bind %s
  default_backend sink
backend sink
  server s1 %s maxconn 9800
`, addr, backend)
	return runHAProxy(b, addr, cfg)
}

// runHAProxy writes cfg and runs HAProxy on it, in the foreground, until
// addr (a frontend of cfg) accepts connections.
func runHAProxy(b testing.TB, addr, cfg string) (string, int, func()) {
	path := filepath.Join(b.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return startProcess(b, addr, "haproxy", "-db", "-f", path)
}

// startProcess starts a proxy and waits until addr accepts connections.
func startProcess(b testing.TB, addr, name string, args ...string) (string, int, func()) {
	return startProcessOutput(b, addr, os.Stderr, name, args...)
}

// startProcessOutput is startProcess with the proxy's stdout and stderr
// going to out.
func startProcessOutput(b testing.TB, addr string, out io.Writer, name string, args ...string) (string, int, func()) {
	return startProcessFull(b, addr, out, nil, name, args...)
}

// startProcessEnv is startProcess with the environment env (nil: the
// benchmark's).
func startProcessEnv(b testing.TB, addr string, env []string, name string, args ...string) (string, int, func()) {
	return startProcessFull(b, addr, os.Stderr, env, name, args...)
}

func startProcessFull(b testing.TB, addr string, out io.Writer, env []string, name string, args ...string) (string, int, func()) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("%s did not listen on %s", name, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd.Process.Pid, stop
}

// haveHAProxy reports whether haproxy, the peer the benchmarks compare
// Guard with, is installed. Under CI (CI set), where .ci/run installs it, a
// missing haproxy fails the benchmark instead of quietly measuring Guard
// alone.
func haveHAProxy(b testing.TB) bool {
	b.Helper()
	if _, err := exec.LookPath("haproxy"); err == nil {
		return true
	}
	if os.Getenv("CI") != "" {
		b.Fatal("haproxy not installed (Debian package haproxy, which CI must install): the comparison with HAProxy cannot run")
	}
	return false
}
