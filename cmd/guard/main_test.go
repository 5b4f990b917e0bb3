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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
func startProcess(t *testing.T, cfg string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guard.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(guardBin, "-config", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
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

// SIGTERM: /readyz turns 503, new connections are refused, open streams run
// on for the drain time and are then ended with system-shutdown (a FIN, not
// a reset), and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	leakcheck.Check(t)
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
log {
  level = "debug"
}
admin {
  address = %q
}
shutdown {
  drain_timeout = "1s"
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
	const n = 5
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
	for _, name := range []string{"guard_connections_open", "guard_connections_accepted_total", "guard_relayed_bytes_total"} {
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
	// Readiness flips at once; listening stops.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := httpGet(t, "http://"+admin+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after SIGTERM", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("guard still accepts connections while draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every open stream ends with system-shutdown and a FIN.
	for i, c := range streams {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != shutdownError {
			t.Errorf("stream %d: read %q, %v; want %q then EOF", i, got, err, shutdownError)
		}
		c.Close()
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("streams ended %v after SIGTERM, before drain_timeout (1s)", el)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("guard exited with %v\n%s", err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("guard did not exit\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "draining") {
		t.Errorf("no drain in the log:\n%s", stderr)
	}
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
