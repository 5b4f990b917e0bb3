package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// fake is what the admin server drives: counters of the drains and
// reloads it asked for.
type fake struct {
	drains, reloads atomic.Int32
	reloadErr       atomic.Pointer[error]
}

func (f *fake) options() Options {
	return Options{
		Logger:   hclog.NewNullLogger(),
		Gatherer: prometheus.NewRegistry(),
		Ready:    func() bool { return f.drains.Load() == 0 },
		Drain:    func() bool { return f.drains.Add(1) == 1 },
		Reload: func() error {
			f.reloads.Add(1)
			if err := f.reloadErr.Load(); err != nil {
				return *err
			}
			return nil
		},
		Backends: func() any { return []string{} },
	}
}

// serve starts an admin server on a loopback socket and returns its base URL.
func serve(t *testing.T, opts Options) string {
	t.Helper()
	s := New(opts)
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + addr.String()
}

// do sends one request with header set and returns the response, its body
// read.
func do(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// /-/drain and /-/reload change Guard's state: every method but POST gets
// 405 with Allow: POST, and neither drains nor reloads; POST does.
func TestStateChangingEndpointsArePOSTOnly(t *testing.T) {
	f := &fake{}
	base := serve(t, f.options())
	for _, path := range []string{"/-/drain", "/-/reload"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			resp, body := do(t, m, base+path, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s %q, want 405", m, path, resp.Status, body)
			}
			if got := resp.Header.Get("Allow"); got != "POST" {
				t.Errorf("%s %s: Allow %q, want POST", m, path, got)
			}
		}
	}
	if n, m := f.drains.Load(), f.reloads.Load(); n != 0 || m != 0 {
		t.Fatalf("other methods than POST drained %d and reloaded %d times", n, m)
	}
	if resp, body := do(t, http.MethodGet, base+"/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz after the refused requests: %s %q", resp.Status, body)
	}

	resp, body := do(t, http.MethodPost, base+"/-/reload", nil)
	if resp.StatusCode != http.StatusOK || body != "reloaded\n" || f.reloads.Load() != 1 {
		t.Errorf("POST /-/reload: %s %q, %d reloads", resp.Status, body, f.reloads.Load())
	}
	bad := errors.New("t.hcl:1,1-2: Unsupported argument")
	f.reloadErr.Store(&bad)
	resp, body = do(t, http.MethodPost, base+"/-/reload", nil)
	if resp.StatusCode != http.StatusBadRequest || body != bad.Error() {
		t.Errorf("POST /-/reload, rejected: %s %q, want 400 with the diagnostics", resp.Status, body)
	}

	resp, body = do(t, http.MethodPost, base+"/-/drain", nil)
	if resp.StatusCode != http.StatusAccepted || body != "draining\n" || f.drains.Load() != 1 {
		t.Errorf("POST /-/drain: %s %q, %d drains", resp.Status, body, f.drains.Load())
	}
	resp, body = do(t, http.MethodPost, base+"/-/drain", nil)
	if resp.StatusCode != http.StatusAccepted || body != "already draining\n" {
		t.Errorf("POST /-/drain again: %s %q", resp.Status, body)
	}
	if resp, body := do(t, http.MethodGet, base+"/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while draining: %s %q, want 503", resp.Status, body)
	}
}

// The read-only endpoints answer GET.
func TestReadOnlyEndpoints(t *testing.T) {
	f := &fake{}
	base := serve(t, f.options())
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n", "/backends": "[]\n", "/metrics": ""} {
		resp, body := do(t, http.MethodGet, base+path, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, want) {
			t.Errorf("GET %s: %s %q, want 200 %q", path, resp.Status, body, want)
		}
	}
}
