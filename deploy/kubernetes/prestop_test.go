package kubernetes

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/admin"
)

// The preStop hook of the sidecar pod's main container, run as the kubelet
// runs it (/bin/sh -c SCRIPT) against Guard's admin handler on a real
// loopback socket: it asks for the drain with a POST (the only method
// /-/drain takes), then waits until Guard's admin port closes, and returns
// soon after. Once with curl as the only HTTP client on PATH, once with wget.
func TestSidecarPreStopDrains(t *testing.T) {
	spec := sidecarPod(t, loadManifests(t))
	var cmdline []string
	for _, c := range spec.Containers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
			cmdline = c.Lifecycle.PreStop.Exec.Command
		}
	}
	if len(cmdline) != 3 || cmdline[0] != "/bin/sh" || cmdline[1] != "-c" {
		t.Fatalf("preStop exec command %q, want [/bin/sh -c SCRIPT]", cmdline)
	}
	for _, client := range []string{"curl", "wget"} {
		t.Run(client, func(t *testing.T) {
			bin := t.TempDir()
			for _, tool := range []string{client, "date", "sleep"} {
				p, err := exec.LookPath(tool)
				if err != nil {
					t.Skipf("%s is not installed", tool)
				}
				if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
					t.Fatal(err)
				}
			}
			runPreStop(t, cmdline, bin)
		})
	}
}

// runPreStop runs the hook cmdline with only the tools in bin on PATH.
func runPreStop(t *testing.T, cmdline []string, bin string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	script := strings.ReplaceAll(cmdline[2], "127.0.0.1:9090", "127.0.0.1:"+port)
	if script == cmdline[2] {
		t.Fatalf("the hook %q does not name Guard's admin address 127.0.0.1:9090", cmdline[2])
	}

	// Guard "exits" (its admin port closes) a moment after the drain starts.
	const exitAfter = 1500 * time.Millisecond
	var (
		mu       sync.Mutex
		requests []string
		drains   int
	)
	srv := &http.Server{}
	adm := admin.New(admin.Options{
		Logger: hclog.NewNullLogger(),
		Drain: func() bool {
			mu.Lock()
			defer mu.Unlock()
			drains++
			if drains == 1 {
				time.AfterFunc(exitAfter, func() { srv.Close() })
			}
			return drains == 1
		},
	})
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		adm.Handler().ServeHTTP(w, r)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	cmd := exec.Command(cmdline[0], cmdline[1], script)
	cmd.Env = []string{"PATH=" + bin}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	if drains != 1 {
		t.Fatalf("the hook started %d drains, want 1 (requests %q; hook: %v)\n%s", drains, requests, err, out)
	}
	var drainMethods []string
	for _, r := range requests {
		if strings.HasSuffix(r, " /-/drain") {
			drainMethods = append(drainMethods, strings.Fields(r)[0])
		}
	}
	if len(drainMethods) != 1 || drainMethods[0] != http.MethodPost {
		t.Errorf("requests to /-/drain: %q, want one POST", drainMethods)
	}
	if len(requests) < 2 || requests[len(requests)-1] != "GET /healthz" {
		t.Errorf("requests %q: the hook does not poll GET /healthz after the drain", requests)
	}
	if elapsed < exitAfter {
		t.Errorf("the hook returned after %v, before Guard's admin port closed (%v)", elapsed, exitAfter)
	}
	if elapsed > exitAfter+5*time.Second {
		t.Errorf("the hook returned %v after it started, long after Guard's admin port closed (%v)", elapsed, exitAfter)
	}
}
