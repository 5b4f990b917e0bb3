package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// guard health answers the way an exec probe needs: exit 0 and one line on
// stdout for 200, exit 1 and one line on stderr for anything else, including
// no answer at all.
func TestHealth(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("draining\n"))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// An address where nothing listens: bind a port, then free it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring; "" means stdout must be empty
		stderr   string // substring; "" means stderr must be empty
		maxDelay time.Duration
	}{
		{"200", []string{"-addr", addr}, 0, "healthy: GET http://" + addr + "/healthz: 200 OK: ok", "", 2 * time.Second},
		{"path flag", []string{"-addr", addr, "-path", "/healthz"}, 0, "200 OK", "", 2 * time.Second},
		{"503", []string{"-addr", addr, "-path", "/readyz"}, 1, "", "unhealthy: GET http://" + addr + "/readyz: 503 Service Unavailable: draining", 2 * time.Second},
		{"404", []string{"-addr", addr, "-path", "/nope"}, 1, "", "404 Not Found", 2 * time.Second},
		{"nothing listening", []string{"-addr", deadAddr}, 1, "", "unhealthy: GET http://" + deadAddr + "/healthz", 2 * time.Second},
		{"no answer in time", []string{"-addr", addr, "-path", "/slow", "-timeout", "200ms"}, 1, "", "unhealthy: GET http://" + addr + "/slow", 2 * time.Second},
		{"bad addr", []string{"-addr", "localhost"}, 2, "", "want HOST:PORT", time.Second},
		{"extra argument", []string{"-addr", addr, "/healthz"}, 2, "", "unexpected argument", time.Second},
		{"bad flag", []string{"-port", "9090"}, 2, "", "flag provided but not defined", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := realMain(append([]string{"health"}, tt.args...), &stdout, &stderr)
			if d := time.Since(start); d > tt.maxDelay {
				t.Errorf("took %v, want at most %v", d, tt.maxDelay)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", code, tt.code, stdout.String(), stderr.String())
			}
			check := func(what, got, want string) {
				t.Helper()
				if want == "" {
					if got != "" {
						t.Errorf("%s: %q, want nothing", what, got)
					}
					return
				}
				if !strings.Contains(got, want) {
					t.Errorf("%s: %q, want it to contain %q", what, got, want)
				}
			}
			check("stdout", stdout.String(), tt.stdout)
			check("stderr", stderr.String(), tt.stderr)
			// Probes keep one line: the result is exactly one line.
			if tt.code < 2 {
				out := stdout.String() + stderr.String()
				if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
					t.Errorf("output %q is not exactly one line", out)
				}
			}
		})
	}
}

// An admin address copied from config.hcl as it is (0.0.0.0, :port, [::])
// is asked on loopback.
func TestHealthURL(t *testing.T) {
	for _, tt := range []struct{ addr, path, want string }{
		{"127.0.0.1:9090", "/healthz", "http://127.0.0.1:9090/healthz"},
		{"0.0.0.0:9090", "/readyz", "http://127.0.0.1:9090/readyz"},
		{":9090", "/healthz", "http://127.0.0.1:9090/healthz"},
		{"[::]:9090", "/healthz", "http://[::1]:9090/healthz"},
		{"[::1]:9090", "healthz", "http://[::1]:9090/healthz"},
		{"10.1.2.3:9090", "/healthz", "http://10.1.2.3:9090/healthz"},
		{"guard.example.net:9090", "/healthz", "http://guard.example.net:9090/healthz"},
	} {
		got, err := adminURL(tt.addr, tt.path, false)
		if err != nil || got != tt.want {
			t.Errorf("adminURL(%q, %q) = %q, %v; want %q", tt.addr, tt.path, got, err, tt.want)
		}
	}
	for _, bad := range []string{"9090", "localhost", "127.0.0.1:", ""} {
		if got, err := adminURL(bad, "/healthz", false); err == nil {
			t.Errorf("adminURL(%q) = %q, want an error", bad, got)
		}
	}
}

// The built binary answers the same way: a distroless exec probe runs it.
func TestHealthBinary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	out, err := exec.Command(guardBin, "health", "-addr", srv.Listener.Addr().String()).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "healthy: ") {
		t.Fatalf("guard health: %q, %v", out, err)
	}
	out, err = exec.Command(guardBin, "health", "-addr", srv.Listener.Addr().String(), "-path", "/readyz").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.HasPrefix(string(out), "unhealthy: ") {
		t.Fatalf("guard health -path /readyz: %q, %v; want exit 1", out, err)
	}
}
