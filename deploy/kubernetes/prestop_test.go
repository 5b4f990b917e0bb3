package kubernetes

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"

	"github.com/guard-xmpp/guard/admin"
)

// The preStop hook of the sidecar pod's main container, run as the kubelet
// runs it (/bin/sh -c SCRIPT) against Guard's admin handler on a real
// loopback socket: it asks for the drain with a POST (the only method
// /-/drain takes), with the admin token when the Secret's file is there,
// then waits until Guard's admin port closes, and returns soon after. Once
// with curl as the only HTTP client on PATH, once with wget; without a token,
// with one, and with a token Guard does not take (no drain: the hook waits
// out its bound).
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
		for _, tt := range []struct {
			name             string
			guardToken, file string // "": none; file is the content of the Secret's file
			drain            bool
		}{
			{"no token", "", "", true},
			{"token", "0123abcd-token", "0123abcd-token", true},
			{"token, file with a final newline", "0123abcd-token", "0123abcd-token\n", true},
			{"a Secret Guard does not use", "", "0123abcd-token\n", true},
			{"wrong token", "0123abcd-token", "another-token", false},
			{"no Secret, Guard wants a token", "0123abcd-token", "", false},
		} {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				bin := t.TempDir()
				for _, tool := range []string{client, "date", "sleep", "tr"} {
					p, err := exec.LookPath(tool)
					if err != nil {
						t.Skipf("%s is not installed", tool)
					}
					if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
						t.Fatal(err)
					}
				}
				tokenFile := filepath.Join(t.TempDir(), "token")
				if tt.file != "" {
					if err := os.WriteFile(tokenFile, []byte(tt.file), 0o444); err != nil {
						t.Fatal(err)
					}
				}
				runPreStop(t, cmdline, bin, tokenFile, tt.guardToken, tt.drain)
			})
		}
	}
}

// runPreStop runs the hook cmdline with only the tools in bin on PATH and
// tokenFile in place of the Secret's file, against an admin handler that
// wants token ("": none); drain says whether the hook must start the drain.
func runPreStop(t *testing.T, cmdline []string, bin, tokenFile, token string, drain bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	script := cmdline[2]
	for _, r := range []struct{ old, new string }{
		{"127.0.0.1:9090", "127.0.0.1:" + port},
		{"/etc/guard-admin/token", tokenFile},
		{"+ 40 ))", "+ 3 ))"}, // when no drain starts, the hook waits out its bound
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("the hook %q does not hold %q", script, r.old)
		}
		script = strings.ReplaceAll(script, r.old, r.new)
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
		Token:  func() string { return token },
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
	if !drain {
		if drains != 0 {
			t.Fatalf("the hook started %d drains, want none (requests %q)", drains, requests)
		}
		if elapsed < 2*time.Second || elapsed > 8*time.Second {
			t.Errorf("the hook returned after %v; want it to wait out its bound (3s here)", elapsed)
		}
		return
	}
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

// The admin token the sidecar's preStop hook sends is the one Guard reads:
// the hook's container and Guard's mount the same Secret at the directory of
// the file the hook reads, and Guard's ConfigMap names that file as
// token_file (commented out until the Secret exists).
func TestSidecarPreStopToken(t *testing.T) {
	docs := loadManifests(t)
	spec := sidecarPod(t, docs)
	re := regexp.MustCompile(`Bearer \$\(tr -d '\\r\\n' 2>/dev/null <(\S+)\)`)
	secretAt := func(c corev1.Container, dir string) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath != dir {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					return v.Secret.SecretName
				}
			}
		}
		return ""
	}
	var guard *corev1.Container
	for i, c := range spec.InitContainers {
		if isGuard(c) {
			guard = &spec.InitContainers[i]
		}
	}
	if guard == nil {
		t.Fatal("no Guard sidecar")
	}
	var configMap string
	for _, v := range spec.Volumes {
		for _, m := range guard.VolumeMounts {
			if m.Name == v.Name && m.MountPath == "/etc/guard" && v.ConfigMap != nil {
				configMap = v.ConfigMap.Name
			}
		}
	}
	var src string
	for _, d := range docs {
		if cm, ok := d.obj.(*corev1.ConfigMap); ok && cm.Name == configMap {
			src = cm.Data["config.hcl"]
		}
	}
	hooks := 0
	for _, c := range spec.Containers {
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
			continue
		}
		hooks++
		m := re.FindStringSubmatch(strings.Join(c.Lifecycle.PreStop.Exec.Command, " "))
		if m == nil {
			t.Errorf("%s: the preStop hook reads no admin token file", c.Name)
			continue
		}
		file, dir := m[1], filepath.Dir(m[1])
		hookSecret, guardSecret := secretAt(c, dir), secretAt(*guard, dir)
		if hookSecret == "" || hookSecret != guardSecret {
			t.Errorf("%s mounts Secret %q at %s, Guard %q: want the same Secret in both", c.Name, hookSecret, dir, guardSecret)
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == hookSecret && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				t.Errorf("the Secret %q is not optional: the pod would not start before someone creates it", hookSecret)
			}
		}
		if !regexp.MustCompile(`(?m)^\s*#?\s*token_file\s*=\s*"` + regexp.QuoteMeta(file) + `"`).MatchString(src) {
			t.Errorf("ConfigMap %s does not name token_file = %q, the file the hook sends", configMap, file)
		}
	}
	if hooks == 0 {
		t.Fatal("no preStop exec hook")
	}
}
