// Package systemd holds Guard's systemd unit (guard.service) and the test
// that checks it: the keys the unit's comments promise, its stop timeout
// against the shutdown deadlines of the repository's configurations, and
// systemd's own `systemd-analyze verify`.
package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/config"
)

// unit is a parsed unit file: section → key → values, in file order (a key
// may repeat, as ExecReload does).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, src []byte) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("guard.service:%d: %q is neither a section nor key=value", n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// one returns the single value of section.key, failing when it is absent
// or repeated.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Errorf("[%s] %s: %d values %q, want one", section, key, len(vs), vs)
		return ""
	}
	return vs[0]
}

func loadUnit(t *testing.T) ([]byte, unit) {
	t.Helper()
	src, err := os.ReadFile("guard.service")
	if err != nil {
		t.Fatal(err)
	}
	return src, parseUnit(t, src)
}

const (
	binary     = "/usr/local/bin/guard"
	configPath = "/etc/guard/config.hcl"
)

func TestUnitKeys(t *testing.T) {
	_, u := loadUnit(t)
	const s = "Service"

	if got := u.one(t, s, "ExecStart"); got != binary+" -config "+configPath {
		t.Errorf("ExecStart=%s, want %s -config %s", got, binary, configPath)
	}
	if got := u.one(t, s, "ExecStartPre"); got != binary+" validate -config "+configPath {
		t.Errorf("ExecStartPre=%s: want the file checked before the start", got)
	}
	// Reload: check the file, then SIGHUP to the main process.
	reload := u[s]["ExecReload"]
	if len(reload) != 2 || reload[0] != binary+" validate -config "+configPath || !strings.HasSuffix(reload[1], "kill -HUP $MAINPID") {
		t.Errorf("ExecReload=%q, want guard validate, then kill -HUP $MAINPID", reload)
	}
	if got := u.one(t, s, "Type"); got != "exec" && got != "simple" {
		t.Errorf("Type=%s: Guard does not notify systemd (want exec)", got)
	}
	if got := u.one(t, s, "KillSignal"); got != "SIGTERM" {
		t.Errorf("KillSignal=%s, want SIGTERM (Guard's drain)", got)
	}
	if got := u.one(t, s, "Restart"); got != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", got)
	}
	// Two descriptors a stream: 100,000 streams need well over 65,536.
	if n, err := strconv.Atoi(u.one(t, s, "LimitNOFILE")); err != nil || n < 262144 {
		t.Errorf("LimitNOFILE=%s, want a number of at least 262144", u[s]["LimitNOFILE"])
	}
	if got := u.one(t, s, "User"); got == "" || got == "root" {
		t.Errorf("User=%q: Guard must not run as root", got)
	}
	if got := u.one(t, s, "WorkingDirectory"); got != "/var/lib/"+u.one(t, s, "StateDirectory") {
		t.Errorf("WorkingDirectory=%s is not the StateDirectory: relative paths (acme storage) would not be writable", got)
	}

	for key, want := range map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"SystemCallFilter":        "@system-service",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
	} {
		if got := u.one(t, s, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	families := strings.Fields(u.one(t, s, "RestrictAddressFamilies"))
	for _, f := range []string{"AF_INET", "AF_INET6"} {
		if !strings.Contains(" "+strings.Join(families, " ")+" ", " "+f+" ") {
			t.Errorf("RestrictAddressFamilies=%v lacks %s", families, f)
		}
	}
	if _, ok := u[s]["ProcSubset"]; ok {
		t.Error("ProcSubset hides /proc/sys/net/core/somaxconn: Go would fall back to a small listen backlog")
	}
	if got := u.one(t, "Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy=%s, want multi-user.target", got)
	}
}

// TimeoutStopSec outlasts the shutdown deadline of every configuration in
// the repository (config.hcl and the examples): systemd must never kill
// Guard in the middle of its drain.
func TestStopTimeoutCoversDeadline(t *testing.T) {
	_, u := loadUnit(t)
	stop, err := time.ParseDuration(u.one(t, "Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	files, err := filepath.Glob("../../examples/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	files = append(files, "../../config.hcl")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Only the shutdown block matters here: parse a file holding it
		// and a minimal listener, so certificate files are not needed.
		block := shutdownBlock(src)
		cfg, err := config.Parse(f, []byte(block+"\nlistener \"l\" {\n  address = \"127.0.0.1:0\"\n  backend = \"b\"\n}\nbackend \"b\" {\n  address = \"127.0.0.1:1\"\n}\n"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if stop <= cfg.Shutdown.Deadline {
			t.Errorf("%s: shutdown.deadline %v is not below TimeoutStopSec %v", f, cfg.Shutdown.Deadline, stop)
		}
	}
}

// shutdownBlock returns the text of the top-level shutdown block of src, or
// "" when there is none (the default deadline then applies).
func shutdownBlock(src []byte) string {
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "shutdown {") {
			for j := i; j < len(lines); j++ {
				if lines[j] == "}" {
					return strings.Join(lines[i:j+1], "\n")
				}
			}
		}
	}
	return ""
}

// systemd's own check of the unit, with the binary path pointed at a real
// guard built from ./cmd/guard (verify requires the executables to exist).
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (Debian package systemd; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "guard")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/guard-xmpp/guard/cmd/guard").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/guard: %v\n%s", err, out)
	}
	src, _ := loadUnit(t)
	unitFile := filepath.Join(dir, "guard.service")
	if err := os.WriteFile(unitFile, bytes.ReplaceAll(src, []byte(binary), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(analyze, "verify", unitFile)
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s%s", err, out, stderr.String())
	}

	// The check can fail: a misspelt key is reported.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, bytes.Replace(src, []byte("NoNewPrivileges="), []byte("NoNewPrivilege="), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(analyze, "verify", bad).CombinedOutput()
	if !bytes.Contains(out, []byte("NoNewPrivilege")) {
		t.Errorf("systemd-analyze verify did not report a misspelt key:\n%s", out)
	}
}

// ProtectSystem=strict leaves only the StateDirectory writable: an example
// with an acme block keeps its storage there (a relative path lands there
// too, through WorkingDirectory), or certmagic could not save the account
// and the certificates.
func TestACMEStorageIsWritable(t *testing.T) {
	_, u := loadUnit(t)
	state := "/var/lib/" + u.one(t, "Service", "StateDirectory")
	files, err := filepath.Glob("../../examples/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte("\nacme {")) {
			continue
		}
		cfg, err := config.LoadFile(f) // ACME examples read no certificate files
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		checked++
		if s := cfg.ACME.Storage; filepath.IsAbs(s) && !strings.HasPrefix(filepath.Clean(s)+"/", state+"/") {
			t.Errorf("%s: acme storage %q is outside %s, the unit's only writable directory", f, s, state)
		}
	}
	if checked == 0 {
		t.Error("no example has an acme block")
	}
}
