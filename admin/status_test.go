package admin

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/proxy"
)

const (
	testClientHeader  = "<?xml version='1.0'?><stream:stream to='example.net' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	testBackendHeader = "<?xml version='1.0'?><stream:stream from='example.net' id='s1' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features/>"
)

// xmppBackend answers every stream with a header and features, echoes
// nothing and holds the stream until the test ends.
func xmppBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				var got []byte
				for !bytes.Contains(got, []byte("version='1.0'>")) {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					got = append(got, buf[:n]...)
				}
				io.WriteString(c, testBackendHeader)
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// openClient opens a stream through Guard and returns the connection and
// what Guard answered first.
func openClient(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, testClientHeader)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("features/>")) && !bytes.Contains(got, []byte("</stream:stream>")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	return c, string(got)
}

// chromium returns the path of Debian's Chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// headless runs Chromium headless on url with args, for at most a minute.
func headless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + dir, "--window-size=1100,1400",
	}, append(args, url)...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return out
}

// The status page in a real browser: a live stream and a refusal are on
// it, and its script refreshes it in place.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	srv := proxy.New(proxy.Options{Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen(proxy.ListenerConfig{Name: "c2s", Address: "127.0.0.1:0", Backend: proxy.Backend{
		Name: "openfire", Address: xmppBackend(t), Adaptive: &limits.AdaptiveConfig{},
		Admission: proxy.Admission{MaxStreams: 1, QueueTimeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, got := openClient(t, addr.String())
	if !strings.Contains(got, "features/>") {
		t.Fatalf("the first client was not served: %q", got)
	}
	io.WriteString(c, "<message to='a@example.net'><body>hello</body></message>")
	refused, got := openClient(t, addr.String())
	if !strings.Contains(got, "resource-constraint") {
		t.Fatalf("the second client was not refused: %q", got)
	}
	refused.Close() // as a client does after </stream:stream>
	for deadline := time.Now().Add(5 * time.Second); len(srv.Status().Ends) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the refusal did not end")
		}
	}
	adm := New(Options{Logger: hclog.NewNullLogger(), Status: srv.Status})
	aaddr, err := adm.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Shutdown(context.Background()) })
	url := "http://" + aaddr.String() + "/status"

	// The DOM after the page's script has run for a few (virtual) seconds.
	dom := string(headless(t, bin, url, "--virtual-time-budget=5000", "--dump-dom"))
	for _, want := range []string{"c2s", "Backend openfire", "1 streams admitted of 1", "queue_full", c.LocalAddr().String(), "example.net"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	m := regexp.MustCompile(`<span id="render">(\d+)</span>`).FindStringSubmatch(dom)
	if m == nil || m[1] == "1" {
		t.Errorf("the page was not refreshed in place (render %v)", m)
	}
	if t.Failed() {
		t.Logf("the page:\n%s", dom)
	}

	// A screenshot, for the docs when asked for.
	shot := filepath.Join(t.TempDir(), "status.png")
	headless(t, bin, url, "--virtual-time-budget=3000", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 10000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if dst := os.Getenv("GUARD_STATUS_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// GET /status.json is the page's data.
func TestStatusJSON(t *testing.T) {
	adm := New(Options{Logger: hclog.NewNullLogger(), Status: func() proxy.Status {
		return proxy.Status{Open: 3, Ends: []proxy.ReasonCount{{Reason: "queue_full", Count: 2}}}
	}})
	for path, want := range map[string]string{"/status.json": `"queue_full"`, "/": "<main id=\"s\">", "/status?part=body": "<h1>Guard</h1>"} {
		rec := &recorder{h: http.Header{}}
		req, _ := http.NewRequest("GET", path, nil)
		adm.Handler().ServeHTTP(rec, req)
		if rec.code != 0 && rec.code != 200 || !strings.Contains(rec.b.String(), want) {
			t.Errorf("GET %s: %d %q, want %q", path, rec.code, rec.b.String(), want)
		}
	}
}

type recorder struct {
	h    http.Header
	code int
	b    bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorder) WriteHeader(code int)        { r.code = code }
