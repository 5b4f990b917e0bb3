package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/guard-xmpp/guard/internal/childproc"
	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// guardBin is the binary built once for these tests, as the README builds it.
var guardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "guard-cmd-test-")
	if err != nil {
		panic(err)
	}
	guardBin = filepath.Join(dir, "guard")
	if out, err := exec.Command("go", "build", "-o", guardBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(guardBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "guard ") {
		t.Fatalf("guard version: %q, %v", out, err)
	}
}

// guard validate prints exactly the golden diagnostics of the config
// package for each broken file, and exits 1; a good file exits 0.
func TestValidate(t *testing.T) {
	files, err := filepath.Glob("../../config/testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		t.Run(name, func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(f, ".hcl") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(guardBin, "validate", "-config", "testdata/invalid/"+name+".hcl")
			cmd.Dir = "../../config"
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit code %d (%v), want 1", code, err)
			}
			// The CLI writes without wrapping; compare the words, which the
			// golden wraps at 78 columns.
			if got, want := strings.Fields(stderr.String()), strings.Fields(string(golden)); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("stderr:\n%s\nwant (golden, wrapped):\n%s", stderr.String(), golden)
			}
			if !strings.Contains(stderr.String(), "testdata/invalid/"+name+".hcl:") {
				t.Errorf("no FILE:LINE:COL in %q", stderr.String())
			}
		})
	}
	out, err := exec.Command(guardBin, "validate", "-config", "../../config.hcl").CombinedOutput()
	if err != nil {
		t.Fatalf("the repository's config.hcl: %v\n%s", err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const (
	clientHeader  = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	backendHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='b1' from='localhost' version='1.0'>"
	shutdownError = "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
)

// holdingBackend accepts streams, answers each header and holds the stream
// open until the peer closes; it answers </stream:stream> with its own.
func holdingBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, len(clientHeader))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				io.WriteString(c, backendHeader)
				rest, _ := io.ReadAll(c)
				if bytes.Contains(rest, []byte("</stream:stream>")) {
					io.WriteString(c, "</stream:stream>")
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// startProcess runs guard with a generated config file and returns the
// command, with its stderr collected.
// syncBuffer collects a process's output; safe to read while it runs.
type syncBuffer = childproc.Buffer

func startProcess(t *testing.T, cfg string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guard.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(guardBin, "-config", path)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stderr
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func openStream(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, clientHeader)
	buf := make([]byte, len(backendHeader))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != backendHeader {
		t.Fatalf("opening a stream through guard: %q, %v", buf, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// SIGTERM: /readyz turns 503 at once; connections are still accepted for
// accept_delay, then refused; every open stream ends with system-shutdown
// (a FIN, not a reset), the closes spread over drain_timeout; the process
// exits 0 within its deadline.
func TestSIGTERMDrains(t *testing.T) {
	leakcheck.Check(t)
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	const (
		acceptDelay = time.Second
		window      = 2 * time.Second
		deadline    = 6 * time.Second
	)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
log {
  level = "debug"
}
admin {
  address = %q
}
shutdown {
  accept_delay  = "1s"
  drain_timeout = "2s"
  deadline      = "6s"
}
listener "c2s" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = %q
}
`, admin, listen, backend))
	waitListening(t, listen)
	waitListening(t, admin)
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d %q", code, body)
	}
	const n = 8
	var streams []net.Conn
	for i := 0; i < n; i++ {
		streams = append(streams, openStream(t, listen))
	}

	// Metrics: the documented names, parsed with Prometheus's own parser.
	code, body := httpGet(t, "http://"+admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"guard_connections_open", "guard_connections_accepted_total", "guard_relayed_bytes_total",
		"guard_backend_streams", "guard_backend_streams_limit", "guard_admission_queue_length", "guard_admission_admitted_total",
		"guard_admission_wait_seconds", "guard_config_last_reload_successful"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if g := families["guard_connections_open"]; g == nil || g.Metric[0].GetGauge().GetValue() != n {
		t.Errorf("guard_connections_open = %v, want %d", g, n)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness flips first ...
	deadlineAt := time.Now().Add(5 * time.Second)
	for {
		code, _ := httpGet(t, "http://"+admin+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadlineAt) {
			t.Fatalf("/readyz still %d after SIGTERM", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... while Guard still accepts, for accept_delay (checked on its own,
	// without a race against the clock, by TestSIGTERMAcceptsDuringAcceptDelay),
	// then it stops accepting.
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Since(start) > deadline {
			t.Fatal("guard still accepts connections while draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if el := time.Since(start); el < acceptDelay {
		t.Errorf("stopped accepting %v after SIGTERM, before accept_delay (%v)", el, acceptDelay)
	}
	// Every open stream ends with system-shutdown and a FIN; the ends are
	// spread over the window, not one burst.
	ended := make([]time.Time, len(streams))
	var wg sync.WaitGroup
	for i, c := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			got, err := io.ReadAll(c)
			ended[i] = time.Now()
			if err != nil || string(got) != shutdownError {
				t.Errorf("stream %d: read %q, %v; want %q then EOF", i, got, err, shutdownError)
			}
			c.Close()
		}()
	}
	wg.Wait()
	sort.Slice(ended, func(i, j int) bool { return ended[i].Before(ended[j]) })
	if span := ended[len(ended)-1].Sub(ended[0]); span < window/2 {
		t.Errorf("the %d streams ended within %v; want them spread over drain_timeout (%v)", len(ended), span, window)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("guard exited with %v\n%s", err, stderr)
		}
	case <-time.After(deadline + 5*time.Second):
		t.Fatalf("guard did not exit\n%s", stderr)
	}
	if el := time.Since(start); el > deadline+2*time.Second {
		t.Errorf("guard exited %v after SIGTERM; its deadline is %v", el, deadline)
	}
	if !strings.Contains(stderr.String(), "draining") {
		t.Errorf("no drain in the log:\n%s", stderr)
	}
}

// During accept_delay Guard still accepts and relays new streams though
// /readyz says 503. The delay is long enough that only a bug could end it
// before the test has opened its stream, however slow the machine; a second
// SIGTERM then cuts the drain short.
func TestSIGTERMAcceptsDuringAcceptDelay(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = %q
}
shutdown {
  accept_delay  = "10m"
  drain_timeout = "0s"
  deadline      = "20m"
}
listener "c2s" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = %q
}
`, admin, listen, backend))
	waitListening(t, listen)
	waitListening(t, admin)
	before := openStream(t, listen)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadlineAt := time.Now().Add(10 * time.Second)
	for {
		code, _ := httpGet(t, "http://"+admin+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadlineAt) {
			t.Fatalf("/readyz still %d after SIGTERM\n%s", code, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The drain has begun (readiness is off): a new stream still opens,
	// header answered by the backend, through Guard.
	during := openStream(t, listen)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The second signal closes every stream at once (a FIN; the
	// system-shutdown error is not promised then).
	for i, c := range []net.Conn{before, during} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(c); err != nil || (len(got) > 0 && string(got) != shutdownError) {
			t.Errorf("stream %d: read %q, %v; want EOF, after at most %q", i, got, err, shutdownError)
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("guard exited with %v\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("guard did not exit after a second SIGTERM\n%s", stderr)
	}
}

// POST /-/drain (a Kubernetes preStop hook) starts the same drain; a GET
// (a link or an image on a web page) is refused with 405 and changes
// nothing.
func TestAdminDrain(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = %q
}
shutdown {
  drain_timeout = "0s"
  deadline      = "5s"
}
listener "c2s" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = %q
}
`, admin, listen, backend))
	waitListening(t, listen)
	waitListening(t, admin)
	c := openStream(t, listen)
	if code, body := httpGet(t, "http://"+admin+"/-/drain"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/drain: %d %q, want 405", code, body)
	}
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after GET /-/drain: %d %q; want 200, no drain", code, body)
	}
	openStream(t, listen) // still accepting
	if code, body := httpPost(t, "http://"+admin+"/-/drain"); code != http.StatusAccepted {
		t.Fatalf("POST /-/drain: %d %q", code, body)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != shutdownError {
		t.Fatalf("read %q, %v; want system-shutdown", got, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
}

// SIGHUP reloads: new limits apply to new connections, a new listener
// opens, established streams carry on; a broken file is rejected, reported,
// and the running configuration stays.
func TestReload(t *testing.T) {
	backend := echoBackend(t)
	listenA, listenB, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgA := fmt.Sprintf(`
admin {
  address = %q
}
listener "a" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = %q
}
`, admin, listenA, backend)
	cmd, stderr := startProcess(t, cfgA)
	path := cmd.Args[len(cmd.Args)-1]
	waitListening(t, listenA)
	waitListening(t, admin)
	first := openStream(t, listenA)

	// A second listener, and a cap of one stream for the backend.
	cfgB := strings.Replace(cfgA, "backend \"xmpp\" {", fmt.Sprintf(`listener "b" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  max_streams = 2
  queue_size  = 0`, listenB), 1)
	if err := os.WriteFile(path, []byte(cfgB), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitListening(t, listenB)
	// The established stream was not dropped: it still relays both ways.
	echoes(t, first, "<presence id='after-reload'/>")
	// The new cap (2, one taken by the first stream) applies: one more is
	// admitted, the next is refused with resource-constraint.
	openStream(t, listenB)
	c, err := net.Dial("tcp", listenA)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, clientHeader)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if !strings.Contains(string(got), "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") {
		t.Fatalf("over the reloaded cap: got %q, want resource-constraint", got)
	}

	// A broken file is rejected; Guard keeps serving with what it had.
	if err := os.WriteFile(path, []byte(cfgB+"\nlistener \"c\" {\n  adress = \"x\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := httpPost(t, "http://"+admin+"/-/reload")
	if code != http.StatusBadRequest || !strings.Contains(body, "adress") {
		t.Fatalf("POST /-/reload with a broken file: %d %q; want 400 with the diagnostics", code, body)
	}
	_, metrics := httpGet(t, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, "guard_config_last_reload_successful 0") {
		t.Errorf("reload failure not in the metrics")
	}
	if !strings.Contains(stderr.String(), "reload rejected") {
		t.Errorf("reload failure not in the log:\n%s", stderr)
	}
	echoes(t, first, "<presence id='after-rejected-reload'/>")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// echoBackend accepts streams, answers each header and then sends back
// everything the peer sends, until the peer closes.
func echoBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, len(clientHeader))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				io.WriteString(c, backendHeader)
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// echoes writes stanza on a stream to echoBackend and reads it back.
func echoes(t *testing.T, c net.Conn, stanza string) {
	t.Helper()
	if _, err := io.WriteString(c, stanza); err != nil {
		t.Fatalf("writing %s: %v", stanza, err)
	}
	got := make([]byte, len(stanza))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if n, err := io.ReadFull(c, got); err != nil || string(got) != stanza {
		t.Fatalf("the backend's echo of %s: read %q, %v", stanza, got[:n], err)
	}
}

func httpPost(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// guard run --listen --backend serves one listener with the defaults.
func TestRunQuickStart(t *testing.T) {
	backend := holdingBackend(t)
	listen := freeAddr(t)
	cmd := exec.Command(guardBin, "run", "--listen", listen, "--backend", backend)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// The default admin address may be taken on a developer's machine;
	// this test does not need it, and Guard must not depend on it.
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitListening(t, listen)
	c := openStream(t, listen)
	io.WriteString(c, "</stream:stream>")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "</stream:stream>" {
		t.Fatalf("read %q, %v\n%s", got, err, stderr.String())
	}
}
