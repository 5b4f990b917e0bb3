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

// With a token, POST /-/drain and POST /-/reload need it: a request without
// it, with another token, or with another scheme gets 401 with
// WWW-Authenticate: Bearer and changes nothing; the right one passes. The
// token is asked for on every request, so a reload that changes it applies
// at once. The read-only endpoints stay open.
func TestToken(t *testing.T) {
	f := &fake{}
	var token atomic.Pointer[string]
	first := "s3cret-token_1"
	token.Store(&first)
	opts := f.options()
	opts.Token = func() string { return *token.Load() }
	base := serve(t, opts)

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	refused := []struct {
		name   string
		header http.Header
		given  bool // a bearer token was sent: the challenge says invalid_token
	}{
		{"no Authorization", nil, false},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, false}, // the server trims it to "Bearer": no token
		{"wrong token", bearer("s3cret-token_2"), true},
		{"a prefix of the token", bearer("s3cret-token_"), true},
		{"the token and more", bearer("s3cret-token_1x"), true},
		{"another scheme", http.Header{"Authorization": {"Basic " + first}}, false},
		{"the bare token", http.Header{"Authorization": {first}}, false},
	}
	for _, path := range []string{"/-/drain", "/-/reload"} {
		for _, tt := range refused {
			resp, body := do(t, http.MethodPost, base+path, tt.header)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s, %s: %s %q, want 401", path, tt.name, resp.Status, body)
			}
			want := `Bearer realm="guard"`
			if tt.given {
				want += `, error="invalid_token"`
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("POST %s, %s: WWW-Authenticate %q, want %q", path, tt.name, got, want)
			}
		}
		// The method is checked first: a GET is refused even with the token.
		if resp, _ := do(t, http.MethodGet, base+path, bearer(first)); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s with the token: %s, want 405", path, resp.Status)
		}
	}
	if n, m := f.drains.Load(), f.reloads.Load(); n != 0 || m != 0 {
		t.Fatalf("refused requests drained %d and reloaded %d times", n, m)
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n", "/backends": "[]\n"} {
		if resp, body := do(t, http.MethodGet, base+path, nil); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("GET %s without a token: %s %q, want 200", path, resp.Status, body)
		}
	}
	if resp, _ := do(t, http.MethodGet, base+"/metrics", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics without a token: %s, want 200", resp.Status)
	}

	if resp, body := do(t, http.MethodPost, base+"/-/reload", bearer(first)); resp.StatusCode != http.StatusOK || f.reloads.Load() != 1 {
		t.Errorf("POST /-/reload with the token: %s %q, %d reloads", resp.Status, body, f.reloads.Load())
	}
	// The scheme is case-insensitive (RFC 9110).
	if resp, body := do(t, http.MethodPost, base+"/-/reload", http.Header{"Authorization": {"bearer " + first}}); resp.StatusCode != http.StatusOK {
		t.Errorf("POST /-/reload with \"bearer\": %s %q", resp.Status, body)
	}

	// A new token (a reload read a new file): the old one is refused.
	second := "an0ther.token"
	token.Store(&second)
	if resp, _ := do(t, http.MethodPost, base+"/-/drain", bearer(first)); resp.StatusCode != http.StatusUnauthorized || f.drains.Load() != 0 {
		t.Errorf("POST /-/drain with the old token: %s, %d drains", resp.Status, f.drains.Load())
	}
	if resp, body := do(t, http.MethodPost, base+"/-/drain", bearer(second)); resp.StatusCode != http.StatusAccepted || f.drains.Load() != 1 {
		t.Errorf("POST /-/drain with the new token: %s %q, %d drains", resp.Status, body, f.drains.Load())
	}
}

// An empty token requires none.
func TestEmptyTokenRequiresNone(t *testing.T) {
	f := &fake{}
	opts := f.options()
	opts.Token = func() string { return "" }
	base := serve(t, opts)
	if resp, body := do(t, http.MethodPost, base+"/-/drain", nil); resp.StatusCode != http.StatusAccepted || f.drains.Load() != 1 {
		t.Errorf("POST /-/drain: %s %q, %d drains", resp.Status, body, f.drains.Load())
	}
}

// A cross-origin POST from a browser (a form on another site: the browser
// marks it with Sec-Fetch-Site or Origin) gets 403 and changes nothing, even
// without a token; requests without those headers (curl, wget, guard drain,
// the kubelet) and same-origin ones pass.
func TestCrossOriginPOSTRefused(t *testing.T) {
	f := &fake{}
	base := serve(t, f.options())
	host := strings.TrimPrefix(base, "http://")
	for _, path := range []string{"/-/drain", "/-/reload"} {
		for name, h := range map[string]http.Header{
			"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}},
			"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": {"same-site"}},
			"another Origin":            {"Origin": {"http://attacker.example"}},
			"another port":              {"Origin": {"http://127.0.0.1:1"}},
		} {
			if resp, body := do(t, http.MethodPost, base+path, h); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s, %s: %s %q, want 403", path, name, resp.Status, body)
			}
		}
	}
	if n, m := f.drains.Load(), f.reloads.Load(); n != 0 || m != 0 {
		t.Fatalf("cross-origin requests drained %d and reloaded %d times", n, m)
	}
	for name, h := range map[string]http.Header{
		"Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": {"same-origin"}},
		"the same Origin":            {"Origin": {"http://" + host}},
		"no browser headers":         nil,
	} {
		if resp, body := do(t, http.MethodPost, base+"/-/reload", h); resp.StatusCode != http.StatusOK {
			t.Errorf("POST /-/reload, %s: %s %q, want 200", name, resp.Status, body)
		}
	}
	if m := f.reloads.Load(); m != 3 {
		t.Errorf("%d reloads, want 3", m)
	}
}
