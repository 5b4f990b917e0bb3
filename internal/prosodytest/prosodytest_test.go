package prosodytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartAnswersAndStops(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	if s.Domain != "localhost" || s.PID <= 0 || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("unexpected server %+v", s)
	}
	if err := probe(s.Addr, s.Domain); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if !strings.Contains(s.Log(), "Activated service 'c2s'") {
		t.Errorf("log lacks c2s activation:\n%s", s.Log())
	}
	s.Stop()
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still answers after Stop")
	}
	s.Stop() // idempotent
}

func TestKill(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Domain: "example.test", Users: map[string]string{"carol": `pa"ss\word`}})
	s.Kill()
	if s.Running() {
		t.Fatal("still running after Kill")
	}
	if strings.Contains(s.Log(), "Shutdown complete") {
		t.Error("a SIGKILLed Prosody should not log a clean shutdown")
	}
}

// Several servers at once: unique ports and directories.
func TestParallelServers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		s := Start(t, Options{})
		if seen[s.Addr] || seen[s.Dir] {
			t.Fatalf("reused %s or %s", s.Addr, s.Dir)
		}
		seen[s.Addr], seen[s.Dir] = true, true
	}
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		`a`:     `"a"`,
		`a"b\c`: `"a\"b\\c"`,
		"x\ny":  `"x\010y"`,
	} {
		if got := luaQuote(in); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// With WebSocket, Prosody's own mod_websocket answers the RFC 7395
// handshake (101, subprotocol xmpp) on a second loopback port; without it,
// no HTTP port is configured.
func TestWebSocketEndpoint(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{WebSocket: true})
	if !strings.HasPrefix(s.HTTPAddr, "127.0.0.1:") || s.HTTPAddr == s.Addr {
		t.Fatalf("HTTPAddr %q (c2s %q)", s.HTTPAddr, s.Addr)
	}
	if want := "ws://" + s.HTTPAddr + "/xmpp-websocket"; s.WebSocketURL() != want {
		t.Fatalf("WebSocketURL() = %q, want %q", s.WebSocketURL(), want)
	}
	c, err := net.DialTimeout("tcp", s.HTTPAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: xmpp\r\nOrigin: http://127.0.0.1:1\r\n\r\n", s.HTTPAddr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" ||
		resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake answered %s %v", resp.Status, resp.Header)
	}

	plain := Start(t, Options{})
	if plain.HTTPAddr != "" || plain.WebSocketURL() != "" {
		t.Fatalf("without WebSocket: HTTPAddr %q, URL %q", plain.HTTPAddr, plain.WebSocketURL())
	}
	if !strings.Contains(s.Log(), "Activated service 'http'") {
		t.Errorf("log lacks http activation:\n%s", s.Log())
	}
	if strings.Contains(plain.Log(), "Activated service 'http'") {
		t.Error("HTTP activated without WebSocket")
	}
}
