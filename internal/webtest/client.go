// Client: one web client process (converse.mjs or xmppjs.mjs), what it
// reported, and the bounded waits on it.

package webtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

const (
	maxSeconds   = 300              // the script ends by itself after this
	sendTimeout  = 30 * time.Second // a send, typed and shown in Converse
	quitTimeout  = 15 * time.Second // quit command until SIGTERM
	stopTimeout  = 5 * time.Second  // SIGTERM until SIGKILL
	maxEvents    = 10000            // events kept; later ones are dropped
	maxStderr    = 64 << 10
	maxLineBytes = 1 << 20
)

// Event is one line a client reported. Fields a given event lacks are
// zero; Raw holds the whole line.
type Event struct {
	Event   string `json:"event"`
	T       int    `json:"t"` // ms since the script started
	JID     string `json:"jid"`
	From    string `json:"from"`
	To      string `json:"to"`
	Body    string `json:"body"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Shown   string `json:"shown"`
	Fatal   bool   `json:"fatal"`
	// Visible: Converse showed the message in its chat.
	Visible bool `json:"visible"`
	// Statuses: the connection states Converse went through as the
	// session was lost (the first is Status).
	Statuses []string `json:"statuses"`
	// Code and Clean: the WebSocket close @xmpp/client saw.
	Code  int  `json:"code"`
	Clean bool `json:"clean"`

	At  time.Time `json:"-"` // when the harness read it
	Raw string    `json:"-"`
}

// Client is a running web client. Its methods fail the test (t.Fatalf)
// when what they wait for does not come in time, or the client ends first;
// call them from the test's goroutine.
type Client struct {
	Name  string // "converse" or "xmppjs"
	JID   string // the account it logs in as (bare)
	PID   int    // the node process
	Start time.Time

	t       testing.TB
	proc    *childproc.Process
	stdin   io.WriteCloser
	stdinMu sync.Mutex

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on each event
	done    bool          // stdout closed
	stderr  limitedBuffer

	closeOnce sync.Once
	server    *httptest.Server // the page's server (Converse)
}

// StartConverse starts Converse.js in headless Chromium, logging in to
// wsURL as jid with password (auto_login) with Converse's default
// settings otherwise (so auto_reconnect is on).
func StartConverse(t testing.TB, wsURL, jid, password string) *Client {
	t.Helper()
	return StartConverseWith(t, wsURL, jid, password, ConverseOptions{})
}

// ConverseOptions tune StartConverseWith.
type ConverseOptions struct {
	// Settings are Converse settings over the page's, for example
	// {"auto_reconnect": false}.
	Settings map[string]any
	// Screenshots, if not "", is a directory the page is saved to as PNG
	// on login and on each disconnect.
	Screenshots string
}

// StartConverseWith is StartConverse with options.
func StartConverseWith(t testing.TB, wsURL, jid, password string, o ConverseOptions) *Client {
	t.Helper()
	dir := NodeProject(t)
	browser := chromium(t)
	settings, err := json.Marshal(o.Settings)
	if err != nil || o.Settings == nil {
		settings = []byte("{}")
	}
	srv := pageServer(t, dir)
	args := []string{filepath.Join(dir, "converse.mjs"),
		"--page", srv.URL + "/", "--ws", wsURL, "--jid", jid, "--password", password,
		"--settings", string(settings), "--chromium", browser,
		"--max-seconds", fmt.Sprint(maxSeconds)}
	if o.Screenshots != "" {
		args = append(args, "--screenshots", o.Screenshots)
	}
	c := start(t, "converse", dir, jid, args)
	c.server = srv
	return c
}

// XMPPJSOptions tune StartXMPPJSWith.
type XMPPJSOptions struct {
	Resource  string // default "xmppjs"
	Reconnect bool   // keep @xmpp/client's own reconnection (off by default)
}

// StartXMPPJS starts @xmpp/client under Node, logging in to wsURL as jid
// with password, its reconnection off: a lost connection stays lost.
func StartXMPPJS(t testing.TB, wsURL, jid, password string) *Client {
	t.Helper()
	return StartXMPPJSWith(t, wsURL, jid, password, XMPPJSOptions{})
}

// StartXMPPJSWith is StartXMPPJS with options.
func StartXMPPJSWith(t testing.TB, wsURL, jid, password string, o XMPPJSOptions) *Client {
	t.Helper()
	dir := NodeProject(t)
	args := []string{filepath.Join(dir, "xmppjs.mjs"),
		"--ws", wsURL, "--jid", jid, "--password", password, "--max-seconds", fmt.Sprint(maxSeconds)}
	if o.Resource != "" {
		args = append(args, "--resource", o.Resource)
	}
	if o.Reconnect {
		args = append(args, "--reconnect")
	}
	return start(t, "xmppjs", dir, jid, args)
}

// pageServer serves converse.html at / and Converse's browser build
// (node_modules/converse.js/dist) at /dist/, on loopback.
func pageServer(t testing.TB, dir string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "converse.html"))
	})
	dist := filepath.Join(dir, "node_modules", "converse.js", "dist")
	mux.Handle("/dist/", http.StripPrefix("/dist/", http.FileServer(http.Dir(dist))))
	srv := httptest.NewServer(mux) // 127.0.0.1:0
	t.Cleanup(srv.Close)
	return srv
}

func start(t testing.TB, name, dir, jid string, args []string) *Client {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(Node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(Env, "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Name: name, JID: bare(jid), t: t, stdin: stdin, changed: make(chan struct{}), Start: time.Now()}
	cmd.Stderr = &c.stderr
	// Stop sends SIGTERM (the script closes its browser on it), then SIGKILL.
	c.proc, err = childproc.Start(cmd, stopTimeout)
	if err != nil {
		t.Fatalf("webtest: %v", err)
	}
	c.PID = c.proc.PID
	go c.read(stdout)
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("webtest: %s (pid %d) reported:\n%s\nstderr:\n%s", c.Name, c.PID, c.EventLog(), childproc.Tail(c.stderr.String(), 40))
		}
	})
	return c
}

func (c *Client) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for sc.Scan() {
		line := sc.Text()
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			ev = Event{Event: "unparsed", Message: line}
		}
		ev.At, ev.Raw = time.Now(), line
		c.mu.Lock()
		if len(c.events) < maxEvents {
			c.events = append(c.events, ev)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.done = true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Events returns what the client reported so far.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// EventLog renders the events, one a line, for a failure message.
func (c *Client) EventLog() string {
	var b strings.Builder
	for _, e := range c.Events() {
		fmt.Fprintf(&b, "  %s\n", e.Raw)
	}
	return b.String()
}

// wait returns the first event from index from on that match accepts,
// failing the test after timeout or once the client has ended without one.
func (c *Client) wait(what string, from int, timeout time.Duration, match func(Event) bool) (Event, int) {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i := from; i < len(c.events); i++ {
			if match(c.events[i]) {
				e := c.events[i]
				c.mu.Unlock()
				return e, i
			}
		}
		from = len(c.events)
		done, changed := c.done, c.changed
		c.mu.Unlock()
		if done {
			c.t.Fatalf("webtest: %s ended before %s:\n%s\nstderr:\n%s", c.Name, what, c.EventLog(), childproc.Tail(c.stderr.String(), 40))
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("webtest: %s: no %s within %v:\n%s\nstderr:\n%s", c.Name, what, timeout, c.EventLog(), childproc.Tail(c.stderr.String(), 40))
		}
	}
}

// WaitLoggedIn waits until the client's session is up and returns its
// full JID.
func (c *Client) WaitLoggedIn(timeout time.Duration) string {
	c.t.Helper()
	e, _ := c.wait("login", 0, timeout, func(e Event) bool {
		return e.Event == "logged_in" || e.Event == "error" && e.Fatal || e.Event == "disconnected"
	})
	if e.Event != "logged_in" {
		c.t.Fatalf("webtest: %s: login failed: %s", c.Name, e.Raw)
	}
	return e.JID
}

// Send sends body to the JID to (as a chat message) and returns once the
// client says it has (Converse: typed, Enter pressed, shown in the chat).
func (c *Client) Send(to, body string) {
	c.t.Helper()
	c.mu.Lock()
	from := len(c.events)
	c.mu.Unlock()
	c.command(map[string]any{"cmd": "send", "to": to, "body": body})
	e, _ := c.wait(fmt.Sprintf("sent %q to %s", body, to), from, sendTimeout, func(e Event) bool {
		return e.Event == "sent" && e.To == to && e.Body == body ||
			e.Event == "error" && strings.HasPrefix(e.Message, "send:")
	})
	if e.Event == "error" {
		c.t.Fatalf("webtest: %s: send %q to %s: %s", c.Name, body, to, e.Message)
	}
}

// WaitMessage waits for a message with body from the JID from (bare, or
// full to match one resource), received at any time since the start; for
// Converse, one shown in its chat with from.
func (c *Client) WaitMessage(from, body string, timeout time.Duration) {
	c.t.Helper()
	c.wait(fmt.Sprintf("message %q from %s", body, from), 0, timeout, func(e Event) bool {
		return e.Event == "message" && e.Body == body && (e.From == from || bare(e.From) == from) &&
			(e.Visible || c.Name != "converse")
	})
}

// WaitDisconnected waits for the client to report that its session ended
// and returns the client's reason (Converse's disconnection message, or the
// WebSocket close reason for @xmpp/client) and the text the user is shown
// ("" if none).
func (c *Client) WaitDisconnected(timeout time.Duration) (reason, shownText string) {
	c.t.Helper()
	e, _ := c.wait("disconnect", 0, timeout, func(e Event) bool { return e.Event == "disconnected" })
	return e.Reason, e.Shown
}

// LastDisconnect returns the last "disconnected" event so far (all its
// fields in Raw), and whether there was one.
func (c *Client) LastDisconnect() (Event, bool) {
	evs := c.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Event == "disconnected" {
			return evs[i], true
		}
	}
	return Event{}, false
}

// Sync sends a wait command of ms milliseconds and waits for it to end:
// every command before it has been carried out.
func (c *Client) Sync(ms int) {
	c.t.Helper()
	c.mu.Lock()
	from := len(c.events)
	c.mu.Unlock()
	c.command(map[string]any{"cmd": "wait", "ms": ms})
	c.wait("wait", from, time.Duration(ms)*time.Millisecond+sendTimeout, func(e Event) bool { return e.Event == "waited" })
}

func (c *Client) command(cmd map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("webtest: %s: command %s: %v", c.Name, b, err)
	}
}

// Close asks the client to quit (Converse closes its browser), then ends
// the node process and everything it started by PID: SIGTERM, SIGKILL
// after a bound. Safe to call more than once; t.Cleanup calls it.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		// The processes this client started (Chromium and its helpers),
		// found before node exits and they are orphaned.
		tree := descendants(c.PID)
		c.stdinMu.Lock()
		_, err := io.WriteString(c.stdin, `{"cmd":"quit"}`+"\n")
		c.stdin.Close()
		c.stdinMu.Unlock()
		if err == nil {
			select {
			case <-c.proc.Exited():
			case <-time.After(quitTimeout):
			}
		}
		c.proc.Stop()
		if left := killLeft(tree, stopTimeout); len(left) > 0 {
			c.t.Errorf("webtest: %s: processes it started outlived SIGKILL: %v", c.Name, left)
		}
		if c.server != nil {
			c.server.Close()
		}
	})
}

// Exited is closed once the node process has exited.
func (c *Client) Exited() <-chan struct{} { return c.proc.Exited() }

// Stderr is what the process wrote to stderr (the first 64 KiB).
func (c *Client) Stderr() string { return c.stderr.String() }

func bare(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[:i]
	}
	return jid
}

// limitedBuffer keeps the first maxStderr bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxStderr - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
