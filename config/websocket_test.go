package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/proxy"
)

// wsSrc returns a listener "web" on line 1 whose websocket block, on line
// 4, has body on line 5, and whose tls block, on line 7, has tls on line 8.
func wsSrc(body, tls string) string {
	return "listener \"web\" {\n  address = \"0.0.0.0:5280\"\n  backend = \"xmpp\"\n  websocket {\n" + body +
		"\n  }\n  tls {\n" + tls + "\n  }\n}\nbackend \"xmpp\" {\n  address = \"127.0.0.1:5222\"\n}\n"
}

func TestParseWebSocket(t *testing.T) {
	c, err := Parse("test.hcl", []byte(wsSrc(`path = "/ws/"
    allowed_origins = ["https://chat.example.net/", "http://localhost:8080", "*"]
    trusted_proxies = ["10.0.0.0/8"]`, "")))
	if err != nil {
		t.Fatal(err)
	}
	want := &proxy.WebSocket{Path: "/ws/", AllowedOrigins: []string{"https://chat.example.net", "http://localhost:8080", "*"},
		TrustedProxies: prefixes("10.0.0.0/8")}
	if got := c.Listeners[0].WebSocket; !reflect.DeepEqual(got, want) {
		t.Fatalf("WebSocket = %+v, want %+v", got, want)
	}
	// The defaults: Prosody's path; wss with ALPN http/1.1, which browsers
	// ask for (xmpp-client would fail their handshake).
	pki := newPKI(t)
	c, err = Parse("test.hcl", []byte(wsSrc("", fmt.Sprintf("mode = \"direct\"\ncert_file = %q\nkey_file = %q", pki.certFile, pki.keyFile))))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Listeners[0]; l.WebSocket.Path != "/xmpp-websocket" || !reflect.DeepEqual(l.TLS.ALPN, []string{"http/1.1"}) {
		t.Fatalf("path %q, ALPN %v", l.WebSocket.Path, l.TLS.ALPN)
	}
	if c.Listeners[0].WebSocket == nil || minimalListener(t).WebSocket != nil {
		t.Fatal("a listener without a websocket block is c2s over TCP")
	}
}

func minimalListener(t *testing.T) Listener {
	c, err := Parse("test.hcl", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	return c.Listeners[0]
}

func TestParseWebSocketRules(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
		detail    string
	}{
		{"a path without its slash", wsSrc(`path = "ws"`, ""), []string{"5,8 Invalid path"}, `e.g. path = "/ws"`},
		{"an origin with a path", wsSrc(`allowed_origins = ["https://chat.example.net/app"]`, ""),
			[]string{"5,20 Invalid origin"}, "an origin has no path"},
		{"an origin of another scheme", wsSrc(`allowed_origins = ["ftp://chat.example.net"]`, ""),
			[]string{"5,20 Invalid origin"}, "an origin's scheme is http or https"},
		{"an origin as one string", wsSrc(`allowed_origins = "https://chat.example.net"`, ""),
			[]string{"5,19 Incorrect argument type"}, "put the value in brackets"},
		{"a trusted proxy that is no address", wsSrc(`trusted_proxies = ["proxy.local"]`, ""),
			[]string{"5,20 Invalid trusted proxy"}, "trusted_proxies = ["},
		{"STARTTLS", wsSrc("", `mode = "starttls"`), []string{"8,8 TLS mode for a WebSocket listener"}, `Set mode = "direct"`},
		{"passthrough", wsSrc("", `mode = "passthrough"`), []string{"8,8 TLS mode for a WebSocket listener"}, `cannot carry WebSocket`},
		{"an unknown key", wsSrc(`origins = ["*"]`, ""), []string{"5,1 Unsupported argument"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v; want an *Error", err)
			}
			if got := diagLines(e.Diags); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q\n%v", got, tt.want, e)
			}
			if !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestParseSeeOtherURI(t *testing.T) {
	src := func(uri string) string {
		return minimal + "policy {\n  see_other_host = \"xmpp2.example.net\"\n  see_other_uri = " + uri + "\n  shutdown = \"see-other-host\"\n}\n"
	}
	c, err := Parse("test.hcl", []byte(src(`"wss://xmpp2.example.net/xmpp-websocket"`)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.SeeOtherURI != "wss://xmpp2.example.net/xmpp-websocket" {
		t.Fatalf("SeeOtherURI = %q", c.Policy.SeeOtherURI)
	}
	for _, bad := range []string{`"https://xmpp2.example.net/ws"`, `"xmpp2.example.net"`, `"wss://x/'ws"`} {
		_, err := Parse("test.hcl", []byte(src(bad)))
		var e *Error
		if !errors.As(err, &e) || len(e.Diags) != 1 || e.Diags[0].Summary != "Invalid see_other_uri" {
			t.Errorf("%s: %v; want Invalid see_other_uri", bad, err)
		}
	}
}
