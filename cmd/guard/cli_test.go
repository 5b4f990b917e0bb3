package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// guardCmd runs the guard binary with args in dir ("" for this directory)
// and returns its exit code and output.
func guardCmd(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(guardBin, args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("guard %q did not exit\n%s%s", args, o.String(), e.String())
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// The subcommands, as the usage text and the README's Commands list them.
var subcommands = []string{"run", "validate", "drain", "reload", "health", "version", "help"}

// guard -h, -help, --help and help print the usage on stdout, naming every
// subcommand and the exit codes, and exit 0; an unknown command exits 2
// with the usage on stderr, and a word that is a file is pointed at run.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help", "help"} {
		code, stdout, stderr := guardCmd(t, "", arg)
		if code != 0 || stderr != "" {
			t.Errorf("guard %s: exit %d, stderr %q; want 0 and nothing", arg, code, stderr)
		}
		for _, sub := range subcommands {
			if !strings.Contains(stdout, "guard "+sub) {
				t.Errorf("guard %s does not list guard %s:\n%s", arg, sub, stdout)
			}
		}
		if !strings.Contains(stdout, "Exit codes:") {
			t.Errorf("guard %s does not give the exit codes:\n%s", arg, stdout)
		}
	}
	code, stdout, stderr := guardCmd(t, "", "frobnicate")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.Contains(stderr, "Usage:") {
		t.Errorf("guard frobnicate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = guardCmd(t, "../..", "config.hcl")
	if code != 2 || !strings.Contains(stderr, "guard run config.hcl") {
		t.Errorf("guard config.hcl: exit %d, stderr %q; want 2 and a pointer to guard run", code, stderr)
	}
	// A subcommand's -h prints its flags and exits 0.
	for _, sub := range []string{"run", "validate", "health"} {
		if code, _, stderr := guardCmd(t, "", sub, "-h"); code != 0 || !strings.Contains(stderr, "-config") && sub != "health" {
			t.Errorf("guard %s -h: exit %d, stderr %q", sub, code, stderr)
		}
	}
}

// The README's Commands section lists every subcommand the binary has, and
// the exit codes.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Commands\n")
	if !ok {
		t.Fatal("README.md has no ## Commands section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, sub := range subcommands {
		if !strings.Contains(section, "guard "+sub) {
			t.Errorf("README.md's Commands section does not list guard %s", sub)
		}
	}
	for _, code := range []string{"`0`", "`1`", "`2`"} {
		if !strings.Contains(section, code) {
			t.Errorf("README.md's Commands section does not explain exit code %s", code)
		}
	}
}

// guard version, --version and -version print one line and exit 0.
func TestVersionFlags(t *testing.T) {
	var first string
	for _, arg := range []string{"version", "--version", "-version"} {
		code, stdout, stderr := guardCmd(t, "", arg)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "guard ") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("guard %s: exit %d, stdout %q, stderr %q", arg, code, stdout, stderr)
		}
		if first == "" {
			first = stdout
		} else if stdout != first {
			t.Errorf("guard %s: %q, guard version: %q", arg, stdout, first)
		}
	}
	if code, _, _ := guardCmd(t, "", "version", "extra"); code != 2 {
		t.Errorf("guard version extra: exit %d, want 2", code)
	}
}

// The version comes from -X main.version, else from the build
// information's module version, else "devel"; the commit is added when the
// version does not hold it.
func TestVersionOf(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	bi := func(v string, settings ...debug.BuildSetting) *debug.BuildInfo {
		b := &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings}
		b.Main.Version = v
		return b
	}
	vcs := debug.BuildSetting{Key: "vcs.revision", Value: rev}
	for _, tt := range []struct {
		set  string
		bi   *debug.BuildInfo
		want string
	}{
		{"", nil, "devel"},
		{"", bi("(devel)"), "devel go1.26.8"},
		{"", bi(""), "devel go1.26.8"},
		{"", bi("(devel)", vcs), "devel (0123456789ab) go1.26.8"},
		{"", bi("v1.2.3"), "v1.2.3 go1.26.8"},
		{"", bi("v0.0.0-20261203064935-0123456789ab+dirty", vcs), "v0.0.0-20261203064935-0123456789ab+dirty go1.26.8"},
		{"1.0.0", bi("v1.2.3", vcs), "1.0.0 (0123456789ab) go1.26.8"},
		{"1.0.0", nil, "1.0.0"},
	} {
		if got := versionOf(tt.set, tt.bi); got != tt.want {
			t.Errorf("versionOf(%q, %+v) = %q, want %q", tt.set, tt.bi, got, tt.want)
		}
	}
}

// guard validate takes the file as -config FILE or as its last argument;
// both at once must name the same file, or it exits 2 without checking
// either; flags may follow the file.
func TestValidateFileArgument(t *testing.T) {
	good, _ := filepath.Abs("../../config.hcl")
	warn := "testdata/warning/unused_backend.hcl" // relative to ../../config
	bad := "testdata/invalid/typo.hcl"
	const dir = "../../config"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" means empty
		stderr string // substring; "" means empty
	}{
		{"positional", []string{"validate", good}, 0, good + ": valid", ""},
		{"flag", []string{"validate", "-config", good}, 0, good + ": valid", ""},
		{"both, the same path", []string{"validate", "-config", good, good}, 0, ": valid", ""},
		{"both, the same file by two paths", []string{"validate", "-config", "../config.hcl", good}, 0, ": valid", ""},
		{"both, different files", []string{"validate", "-config", bad, good}, 2, "", `-config "` + bad + `" and "` + good + `" name different files`},
		{"both, different files, the valid one first", []string{"validate", "-config", good, bad}, 2, "", "name different files"},
		{"two files", []string{"validate", good, bad}, 2, "", "one configuration file at most"},
		{"positional, invalid", []string{"validate", bad}, 1, "", bad + ":4:3: error: Unsupported argument"},
		{"missing file", []string{"validate", "nope.hcl"}, 1, "", "nope.hcl"},
		{"warnings pass", []string{"validate", warn}, 0, warn + ": valid", "warning: Unused backend"},
		{"-strict fails on warnings", []string{"validate", "-strict", warn}, 1, "", warn + ": not valid with -strict: 1 warning"},
		{"-strict after the file", []string{"validate", warn, "-strict"}, 1, "", "not valid with -strict"},
		{"-strict, no warnings", []string{"validate", "-strict", good}, 0, ": valid", ""},
		{"unknown flag", []string{"validate", "-strikt", good}, 2, "", "flag provided but not defined: -strikt"},
		{"after --", []string{"validate", "--", good}, 0, ": valid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := guardCmd(t, dir, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout %q\nstderr %q", code, tt.code, stdout, stderr)
			}
			for what, got := range map[string][2]string{"stdout": {stdout, tt.stdout}, "stderr": {stderr, tt.stderr}} {
				if got[1] == "" && got[0] != "" || !strings.Contains(got[0], got[1]) {
					t.Errorf("%s %q, want %q", what, got[0], got[1])
				}
			}
			if tt.code == 2 && strings.Contains(stdout, "valid") {
				t.Errorf("a usage error checked a file: %q", stdout)
			}
		})
	}
}

// guard validate prints each diagnostic once, as the operator reads it: its
// FILE:LINE:COL line with the summary, the source line, the detail (where a
// position is FILE:LINE:COL too); the summary is not repeated on an
// "Error: Summary" line.
func TestValidateDiagnostics(t *testing.T) {
	const file = "testdata/invalid/several.hcl" // relative to ../../config
	code, stdout, stderr := guardCmd(t, "../../config", "validate", file)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	for _, d := range []struct{ header, source, detail string }{
		{file + ":3:12: error: Invalid log level\n", `   3:   level  = "loud"`, `"loud" is not a log level.`},
		{file + ":16:5: error: Unsupported argument\n", `  16:     idel      = "5m"`, `An argument named "idel" is not expected here. Did you mean "idle"?`},
		{file + ":20:1: error: Duplicate listener name\n", `  20: listener "c2s" {`, `A listener named "c2s" is already defined at ` + file + `:11:1.`},
	} {
		i := strings.Index(stderr, d.header)
		if i < 0 || i > 0 && !strings.HasSuffix(stderr[:i], "\n\n") {
			t.Errorf("no diagnostic opens with %q:\n%s", d.header, stderr)
			continue
		}
		rest, _, _ := strings.Cut(stderr[i+len(d.header):], "\n"+file+":")
		if !strings.Contains(rest, d.source+"\n") || !strings.Contains(rest, "\n\n"+d.detail) {
			t.Errorf("the diagnostic %q lacks its source line %q or its detail %q:\n%s", d.header, d.source, d.detail, rest)
		}
		summary := d.header[strings.Index(d.header, "error: ")+len("error: ") : len(d.header)-1]
		if n := strings.Count(stderr, summary); n != 1 {
			t.Errorf("%q is printed %d times, want once:\n%s", summary, n, stderr)
		}
	}
	if strings.Contains(stderr, "\nError: ") || strings.HasPrefix(stderr, "Error: ") {
		t.Errorf("a summary is repeated on an Error: line:\n%s", stderr)
	}
}

// guard run FILE runs with FILE; two different files, or a file with the
// quick start's --listen, exit 2 before anything listens.
func TestRunFileArgument(t *testing.T) {
	backend := holdingBackend(t)
	listen := freeAddr(t)
	path := filepath.Join(t.TempDir(), "guard.hcl")
	src := fmt.Sprintf("admin {\n  address = \"\"\n}\nlistener \"c2s\" {\n  address = %q\n  backend = \"xmpp\"\n}\nbackend \"xmpp\" {\n  address = %q\n}\n", listen, backend)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "-config", "../../config.hcl", path},
		{"-config", path, "../../config.hcl"},
		{"run", path, "../../config.hcl"},
		{"run", "--listen", listen, "--backend", backend, path},
		{"run", "-config", path, "--listen", listen, "--backend", backend},
	} {
		code, _, stderr := guardCmd(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "guard run: ") {
			t.Errorf("guard %q: exit %d, stderr %q; want 2", args, code, stderr)
		}
		if c, err := net.DialTimeout("tcp", listen, 100*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("guard %q listened on %s", args, listen)
		}
	}

	cmd := exec.Command(guardBin, "run", path)
	var stderr syncBuffer
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
	waitListening(t, listen)
	openStream(t, listen)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard run FILE: %v\n%s", err, stderr.String())
	}
}
