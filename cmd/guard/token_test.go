package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpPostToken POSTs to url with Authorization: Bearer token ("": none).
func httpPostToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// admin { token_file } in a running Guard: POST /-/drain and POST /-/reload
// need the file's token (401 and no change without it), read-only
// endpoints do not; a reload reads the file again, and a reload that finds
// it empty is rejected with its FILE:LINE:COL while the running token stays.
func TestAdminToken(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	tokenFile := filepath.Join(t.TempDir(), "guard-admin-token")
	if err := os.WriteFile(tokenFile, []byte("first-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address    = %q
  token_file = %q
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
`, admin, tokenFile, listen, backend))
	cfgPath := cmd.Args[len(cmd.Args)-1]
	waitListening(t, listen)
	waitListening(t, admin)
	c := openStream(t, listen)
	base := "http://" + admin

	for _, path := range []string{"/-/drain", "/-/reload"} {
		for _, tok := range []string{"", "first-t0ken2", "second-t0ken", "first-t0ke"} {
			if code, body := httpPostToken(t, base+path, tok); code != http.StatusUnauthorized {
				t.Errorf("POST %s with token %q: %d %q, want 401", path, tok, code, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/backends"} {
		if code, body := httpGet(t, base+path); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %q", path, code, body)
		}
	}
	if code, body := httpPostToken(t, base+"/-/drain", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("POST /-/drain with a wrong token: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after refused drains: %d, want 200", code)
	}
	openStream(t, listen) // still accepting

	// A new token in the file: the reload (authorized by the old one) reads it.
	if err := os.WriteFile(tokenFile, []byte("second-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := httpPostToken(t, base+"/-/reload", "first-t0ken"); code != http.StatusOK {
		t.Fatalf("POST /-/reload with the token: %d %q", code, body)
	}
	if code, body := httpPostToken(t, base+"/-/drain", "first-t0ken"); code != http.StatusUnauthorized {
		t.Fatalf("POST /-/drain with the old token after the reload: %d %q, want 401", code, body)
	}

	// An empty file: the reload is rejected, the running token stays.
	if err := os.WriteFile(tokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := httpPostToken(t, base+"/-/reload", "second-t0ken")
	if want := cfgPath + ":4:16: error: Empty token file"; code != http.StatusBadRequest || !strings.Contains(body, want) {
		t.Fatalf("POST /-/reload with an empty token file: %d %q; want 400 with %q", code, body, want)
	}

	if code, body := httpPostToken(t, base+"/-/drain", "second-t0ken"); code != http.StatusAccepted {
		t.Fatalf("POST /-/drain with the running token: %d %q", code, body)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != shutdownError {
		t.Fatalf("read %q, %v; want system-shutdown", got, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "admin request refused") {
		t.Errorf("no refused request in the log:\n%s", stderr)
	}
	if strings.Contains(stderr.String(), "t0ken") {
		t.Errorf("the log shows a token:\n%s", stderr)
	}
}

// An empty token file keeps Guard from starting: exit 1, the diagnostic at
// the token_file value.
func TestAdminTokenEmptyAtStart(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "guard.hcl")
	src := fmt.Sprintf("admin {\n  address    = %q\n  token_file = %q\n}\nlistener \"c2s\" {\n  address = %q\n  backend = \"xmpp\"\n}\nbackend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\n",
		freeAddr(t), tokenFile, freeAddr(t))
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(guardBin, "-config", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("guard with an empty token file: %v, want exit 1\n%s", err, out)
	}
	if want := cfg + ":3:16: error: Empty token file"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
