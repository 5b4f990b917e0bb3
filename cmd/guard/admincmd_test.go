package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guard drain and guard reload against a running Guard with a token: the
// address and the token come from the file's admin block (read alone, so
// a file broken elsewhere still drains), or from -admin and -token-file;
// Guard's answer is printed, 2xx exits 0 and anything else 1, and a refused
// request changes nothing.
func TestDrainAndReloadCommands(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	_, adminPort, _ := net.SplitHostPort(admin)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	wrongToken := filepath.Join(dir, "wrong")
	emptyToken := filepath.Join(dir, "empty")
	for f, content := range map[string]string{tokenFile: "the-t0ken\n", wrongToken: "not-the-t0ken\n", emptyToken: ""} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An unspecified host, as in the Kubernetes ConfigMaps: the commands
	// ask loopback.
	src := fmt.Sprintf(`
admin {
  address    = "0.0.0.0:%s"
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
`, adminPort, tokenFile, listen, backend)
	cmd, stderr := startProcess(t, src)
	cfg := cmd.Args[len(cmd.Args)-1]
	waitListening(t, listen)
	waitListening(t, admin)
	c := openStream(t, listen)
	url := "http://127.0.0.1:" + adminPort

	type want struct {
		code           int
		stdout, stderr string // substrings; "" means empty
	}
	check := func(w want, args ...string) {
		t.Helper()
		code, stdout, errOut := guardCmd(t, "", args...)
		if code != w.code {
			t.Errorf("guard %q: exit %d, want %d\nstdout %q\nstderr %q", args, code, w.code, stdout, errOut)
		}
		for what, got := range map[string][2]string{"stdout": {stdout, w.stdout}, "stderr": {errOut, w.stderr}} {
			if got[1] == "" && got[0] != "" || !strings.Contains(got[0], got[1]) {
				t.Errorf("guard %q: %s %q, want %q", args, what, got[0], got[1])
			}
		}
	}
	notDrained := func() {
		t.Helper()
		if code, _ := httpGet(t, url+"/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz %d: Guard drains", code)
		}
	}

	// Refused: no token, a wrong one, an empty file (never sent).
	check(want{1, "", "POST " + url + "/-/drain: 401 Unauthorized: /-/drain needs the admin token"}, "drain", "-admin", admin)
	check(want{1, "", "Guard wants its admin token: give -token-file"}, "reload", "-admin", admin)
	check(want{1, "", "401 Unauthorized"}, "drain", "-admin", admin, "-token-file", wrongToken)
	check(want{1, "", "401 Unauthorized"}, "drain", "-token-file", wrongToken, cfg) // -token-file wins over the file's
	check(want{1, "", "-token-file: Empty token file"}, "drain", "-admin", admin, "-token-file", emptyToken)
	notDrained()

	// Bad usage: nothing is sent.
	check(want{2, "", "name different files"}, "drain", "-config", "../../config.hcl", cfg)
	check(want{2, "", "one configuration file at most"}, "drain", cfg, cfg+".other")
	check(want{2, "", "-timeout must be greater than zero"}, "drain", "-timeout", "0s", cfg)
	check(want{2, "", "want HOST:PORT"}, "drain", "-admin", "localhost")
	check(want{2, "", "flag provided but not defined: -addr"}, "drain", "-addr", admin)
	notDrained()

	// The file's address and token; then with the flags.
	check(want{0, "POST " + url + "/-/reload: 200 OK: reloaded", ""}, "reload", cfg)
	check(want{0, "200 OK: reloaded", ""}, "reload", "-config", cfg)
	check(want{0, "200 OK: reloaded", ""}, "reload", "-admin", admin, "-token-file", tokenFile)
	check(want{0, "200 OK: reloaded", ""}, "reload", "-admin", admin, cfg) // the file's token

	// A file broken outside its admin block: reload is rejected by Guard,
	// which answers with the diagnostics; drain still works.
	if err := os.WriteFile(cfg, []byte(src+"\nlistener \"c\" {\n  adress = \"x\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(want{1, "", "POST " + url + "/-/reload: 400 Bad Request\n" + cfg + ":18:1: error: Missing required argument"}, "reload", cfg)
	notDrained()
	check(want{0, "POST " + url + "/-/drain: 202 Accepted: draining", ""}, "drain", cfg)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != shutdownError {
		t.Fatalf("read %q, %v; want system-shutdown", got, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
	// Nothing answers any more.
	check(want{1, "", "POST " + url + "/-/drain: "}, "drain", cfg)
}

// Without a token, -admin alone is enough; a file that turns the endpoint
// off, or asks for a free port, names no address to ask.
func TestDrainCommandWithoutToken(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = %q
}
listener "c2s" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = %q
}
`, admin, listen, backend))
	waitListening(t, admin)
	dir := t.TempDir()
	off := filepath.Join(dir, "off.hcl")
	free := filepath.Join(dir, "free.hcl")
	os.WriteFile(off, []byte("admin {\n  address = \"\"\n}\n"), 0o644)
	os.WriteFile(free, []byte("admin {\n  address = \"127.0.0.1:0\"\n}\n"), 0o644)
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"reload", off}, 1, "turns the admin endpoint off"},
		{[]string{"reload", free}, 1, "picks a free port"},
		{[]string{"reload", "-admin", "127.0.0.1:0"}, 2, "picks a free port"},
		{[]string{"reload", filepath.Join(dir, "nope.hcl")}, 1, "nope.hcl: no such file or directory"},
	} {
		if code, _, errOut := guardCmd(t, "", tt.args...); code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("guard %q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.stderr)
		}
	}
	if code, stdout, errOut := guardCmd(t, "", "reload", "-admin", admin); code != 0 || !strings.Contains(stdout, "200 OK: reloaded") {
		t.Fatalf("guard reload -admin: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	if code, stdout, errOut := guardCmd(t, "", "drain", "-admin", admin); code != 0 || !strings.Contains(stdout, "202 Accepted: draining") {
		t.Fatalf("guard drain -admin: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
}
