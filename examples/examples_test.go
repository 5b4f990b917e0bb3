// Package examples holds configuration files for common setups (*.hcl in
// this directory, described in README.md) and the test that checks each
// one with the real `guard validate`, built from ./cmd/guard.
package examples

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/internal/testcert"
	"github.com/guard-xmpp/guard/proxy"
)

// certDir is where the examples expect their certificate files. The test
// points it at a throwaway pair: validation reads the files.
const certDir = "/etc/guard/tls/"

// guard is the binary built from ./cmd/guard by TestMain.
var guard string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "guard-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guard = filepath.Join(dir, "guard")
	out, err := exec.Command("go", "build", "-o", guard, "github.com/guard-xmpp/guard/cmd/guard").CombinedOutput()
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/guard: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// localCopy writes the example name to dir with its certificate paths
// pointed at a pair generated in dir, and returns the copy's path.
func localCopy(t *testing.T, name, dir string) string {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	certFile, _ := testcert.Write(t, dir, "example.net", "xmpp.example.net", "chat.example.org")
	src = bytes.ReplaceAll(src, []byte(certDir), []byte(filepath.Dir(certFile)+"/"))
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// validate runs `guard validate -config path` and returns its exit code,
// stdout and stderr.
func validate(t *testing.T, path string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(guard, "validate", "-config", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("guard validate: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// Each example, what `guard validate` counts in it, and what makes it the
// setup its name promises.
var examples = []struct {
	file                string
	listeners, backends int
	check               func(*config.Config) error
}{
	{"starttls-files.hcl", 1, 1, func(c *config.Config) error {
		if l := c.Listeners[0]; l.TLS.Mode != proxy.TLSStartTLS || l.TLS.CertFile == "" {
			return fmt.Errorf("listener %q: tls mode %q, cert_file %q: want starttls with files", l.Name, l.TLS.Mode, l.TLS.CertFile)
		}
		return nil
	}},
	{"direct-tls-acme.hcl", 2, 1, func(c *config.Config) error {
		if c.ACME == nil {
			return fmt.Errorf("no acme block")
		}
		direct := false
		for _, l := range c.Listeners {
			if l.TLS.CertFile != "" {
				return fmt.Errorf("listener %q has cert_file: the ACME certificate would not be served there", l.Name)
			}
			if l.TLS.Mode == proxy.TLSDirect && strings.HasSuffix(l.Address, ":443") {
				direct = true // answers tls-alpn-01, which the CA sends to port 443
			}
		}
		if !direct {
			return fmt.Errorf("no Direct TLS listener on port 443")
		}
		return nil
	}},
	{"pool.hcl", 1, 1, func(c *config.Config) error {
		if b := c.Backends[0]; len(b.Nodes) < 2 || b.Health.Interval == 0 || b.Retries == 0 {
			return fmt.Errorf("backend %q: %d nodes, health check %v, retries %d: want a pool with health checks that retries", b.Name, len(b.Nodes), b.Health.Interval != 0, b.Retries)
		}
		return nil
	}},
	{"proxy-protocol.hcl", 1, 1, func(c *config.Config) error {
		if l := c.Listeners[0]; len(l.ProxyProtocol.Trusted) == 0 {
			return fmt.Errorf("listener %q trusts no load balancer", l.Name)
		}
		if c.Shutdown.AcceptDelay == 0 {
			return fmt.Errorf("shutdown.accept_delay is 0: the balancer would send clients to a Guard that stopped accepting")
		}
		return nil
	}},
	{"federation.hcl", 3, 3, func(c *config.Config) error {
		var s2s, direct bool
		for _, l := range c.Listeners {
			switch {
			case l.Stream != proxy.StreamServer:
			case l.TLS.Mode == proxy.TLSPassthrough:
				direct = true
			case l.Limits.MaxStreamsPerDomain > 0:
				s2s = true
			}
		}
		if !s2s || !direct {
			return fmt.Errorf("s2s listener with per-domain limits: %v, Direct TLS s2s passed through: %v; want both", s2s, direct)
		}
		return nil
	}},
	{"routing.hcl", 1, 2, func(c *config.Config) error {
		if l := c.Listeners[0]; len(l.Routes) < 2 {
			return fmt.Errorf("listener %q has %d routes, want 2", l.Name, len(l.Routes))
		}
		return nil
	}},
}

func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, ex := range examples {
		listed[ex.file] = true
	}
	for _, f := range files {
		if !listed[f] {
			t.Errorf("%s is not in the test's table of examples", f)
		}
	}
	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			path := localCopy(t, ex.file, t.TempDir())
			code, stdout, stderr := validate(t, path)
			if code != 0 {
				t.Fatalf("guard validate exited %d:\n%s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("guard validate wrote diagnostics (warnings):\n%s", stderr)
			}
			want := fmt.Sprintf("%s: valid (%d listeners, %d backends)\n", path, ex.listeners, ex.backends)
			if stdout != want {
				t.Errorf("guard validate printed %q, want %q", stdout, want)
			}
			cfg, err := config.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := ex.check(cfg); err != nil {
				t.Error(err)
			}
		})
	}
}

// The check above can fail: an example whose certificate files are missing
// is rejected with a diagnostic at the file's line, as an operator would see.
func TestValidateRejectsMissingCertificate(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("starttls-files.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "starttls-files.hcl")
	if err := os.WriteFile(path, bytes.ReplaceAll(src, []byte(certDir), []byte(dir+"/missing/")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := validate(t, path)
	if code != 1 {
		t.Fatalf("guard validate exited %d, want 1; stderr:\n%s", code, stderr)
	}
	line := 1 + bytes.Count(src[:bytes.Index(src, []byte("cert_file"))], []byte("\n"))
	if !strings.Contains(stderr, fmt.Sprintf("%s:%d:", path, line)) || !strings.Contains(stderr, "cert_file") {
		t.Errorf("the diagnostic does not point at cert_file (line %d):\n%s", line, stderr)
	}
}

// haproxy.cfg, the balancer of proxy-protocol.hcl, is checked by HAProxy
// itself (Debian's haproxy, which CI installs).
func TestHAProxyConfig(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/haproxy"); err2 != nil {
			t.Fatalf("haproxy is not installed (Debian package haproxy; .ci/run installs it): %v", err)
		}
		haproxy = "/usr/sbin/haproxy"
	}
	out, err := exec.Command(haproxy, "-c", "-f", "haproxy.cfg").CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f haproxy.cfg: %v\n%s", err, out)
	}
	src, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("send-proxy-v2")) {
		t.Error("haproxy.cfg sends no PROXY protocol header: proxy-protocol.hcl would close every connection")
	}
}

// README.md names every example.
func TestReadmeListsExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.hcl")
	files = append(files, "haproxy.cfg")
	for _, f := range files {
		if !bytes.Contains(readme, []byte("("+f+")")) {
			t.Errorf("README.md does not link %s", f)
		}
	}
}
