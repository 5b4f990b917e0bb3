// Package webtest runs real web XMPP clients for WebSocket (RFC 7395) tests:
// Converse.js in Debian's headless Chromium (testdata/web/converse.mjs,
// driven by playwright-core) and @xmpp/client under Node
// (testdata/web/xmppjs.mjs). Each is a child process speaking JSON lines
// (testdata/web/lib.mjs describes them); a Client records what it reports
// and waits on it, each wait bounded.
//
// The Node project is testdata/web (package.json and its committed
// package-lock.json). NodeProject finds it and checks that node_modules
// matches the lockfile; outside CI it runs `npm ci` there when it does not.
// Under CI (CI set) a missing node, npm package or Chromium fails the test
// (.ci/run installs them); elsewhere it skips.
package webtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// Programs the clients run. Variables so that another layout can point
// them elsewhere.
var (
	Node     = "node"
	NPM      = "npm"
	Chromium = "/usr/bin/chromium"
)

const (
	npmCITimeout = 5 * time.Minute
	minNodeMajor = 20 // @xmpp/client 0.14 and playwright-core 1.65 need 20.10
	minNodeMinor = 10
)

// Env is what every npm and node child gets on top of the environment:
// no tool may download a browser of its own (Debian's Chromium is used),
// and npm asks nothing but the registry for the lockfile's packages.
var Env = []string{
	"PUPPETEER_SKIP_DOWNLOAD=1",
	"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
	"npm_config_audit=false",
	"npm_config_fund=false",
	"npm_config_update_notifier=false",
}

// unavailable fails under CI and skips elsewhere.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("webtest: %s", msg)
	}
	t.Skipf("webtest: %s", msg)
}

// NodeProject returns the absolute path of testdata/web, with node_modules
// installed from package-lock.json. It checks node (20.10 or newer); when
// node_modules is missing or does not match the lockfile it runs `npm ci`
// there (serialised across test binaries by a lock file), except under CI,
// where it fails and says to run `npm ci --prefix testdata/web` (.ci/run
// does, once, before the tests).
func NodeProject(t testing.TB) string {
	t.Helper()
	dir, err := projectDir()
	if err != nil {
		t.Fatalf("webtest: %v", err)
	}
	if err := checkNode(); err != nil {
		unavailable(t, "%v: install Node.js 20 (.ci/run says how)", err)
	}
	projectMu.Lock()
	defer projectMu.Unlock()
	stale := installed(dir)
	if stale == nil {
		return dir
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("webtest: %s: %v: run `npm ci --prefix testdata/web` (.ci/run does)", dir, stale)
	}
	if _, err := exec.LookPath(NPM); err != nil {
		unavailable(t, "%v: node_modules %v, and npm is needed to install it", err, stale)
	}
	if err := npmCI(t, dir); err != nil {
		t.Fatalf("webtest: npm ci in %s (node_modules: %v): %v", dir, stale, err)
	}
	if err := installed(dir); err != nil {
		t.Fatalf("webtest: after npm ci, node_modules still %v", err)
	}
	return dir
}

var projectMu sync.Mutex // one check or install at a time in this binary

// projectDir finds testdata/web from the working directory up to go.mod.
func projectDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			web := filepath.Join(d, "testdata", "web")
			if _, err := os.Stat(filepath.Join(web, "package-lock.json")); err != nil {
				return "", fmt.Errorf("no Node project: %v", err)
			}
			return web, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

var nodeVersionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.`)

func checkNode() error {
	path, err := exec.LookPath(Node)
	if err != nil {
		return err
	}
	out, err := childproc.Run(exec.Command(path, "--version"), 10*time.Second)
	if err != nil {
		return fmt.Errorf("%s --version: %v %s", path, err, out)
	}
	m := nodeVersionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("%s --version said %q", path, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major < minNodeMajor || major == minNodeMajor && minor < minNodeMinor {
		return fmt.Errorf("%s is %s, want %d.%d or newer", path, out, minNodeMajor, minNodeMinor)
	}
	return nil
}

// installed reports nil if every package the lockfile lists is in
// node_modules at the lockfile's version, else what is missing or differs.
func installed(dir string) error {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
			Link    bool   `json:"link"`
			Dev     bool   `json:"dev"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return fmt.Errorf("package-lock.json: %v", err)
	}
	n := 0
	for path, p := range lock.Packages {
		if path == "" || p.Link || p.Version == "" {
			continue // the project itself, a link, or a link's target in a package
		}
		var got struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join(dir, path, "package.json"))
		if err != nil {
			return fmt.Errorf("lacks %s", path)
		}
		if err := json.Unmarshal(b, &got); err != nil || got.Version != p.Version {
			return fmt.Errorf("has %s %s, the lockfile %s", path, got.Version, p.Version)
		}
		n++
	}
	if n == 0 {
		return errors.New("the lockfile lists no packages")
	}
	return nil
}

// npmCI runs `npm ci` in dir under an exclusive lock on a file beside it,
// so that test binaries of several packages install once, not at once.
func npmCI(t testing.TB, dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	deadline := time.Now().Add(npmCITimeout)
	for syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			return errors.New("another npm ci held the lock too long")
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if installed(dir) == nil { // another binary installed it meanwhile
		return nil
	}
	t.Logf("webtest: npm ci in %s", dir)
	start := time.Now()
	cmd := exec.Command(NPM, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), Env...)
	out, err := childproc.Run(cmd, npmCITimeout)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, childproc.Tail(string(out), 40))
	}
	t.Logf("webtest: npm ci took %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// chromium returns Debian's Chromium, failing under CI and skipping
// elsewhere when it is missing.
func chromium(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(Chromium)
	if err != nil {
		unavailable(t, "%v: install Debian's chromium (.ci/run does)", err)
	}
	return p
}
