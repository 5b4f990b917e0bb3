package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/proxy"
)

// s2sSrc returns a listener "s2s" on line 1 with extra on lines 4 and on,
// routing example.net to the backend "openfire-s2s".
func s2sSrc(extra string) string {
	return "listener \"s2s\" {\n  address = \"0.0.0.0:5269\"\n  stream  = \"server\"\n" + extra +
		"\n  route \"example.net\" {\n    backend = \"openfire-s2s\"\n  }\n}\nbackend \"openfire-s2s\" {\n  address = \"127.0.0.1:5270\"\n}\n"
}

func TestParseS2S(t *testing.T) {
	c, err := Parse("test.hcl", []byte(s2sSrc(`  limits {
    max_streams_per_domain  = 20
    stream_rate_per_domain  = "2/s"
    stream_burst_per_domain = 5
  }`)))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if l.Stream != proxy.StreamServer || l.TLS.Mode != proxy.TLSNone {
		t.Fatalf("stream %v, TLS mode %v; want server, none", l.Stream, l.TLS.Mode)
	}
	got := [3]float64{float64(l.Limits.MaxStreamsPerDomain), l.Limits.StreamRatePerDomain, float64(l.Limits.StreamBurstPerDomain)}
	if got != [3]float64{20, 2, 5} {
		t.Fatalf("per-domain limits %v; want [20 2 5]", got)
	}
	if !reflect.DeepEqual(l.Routes, []Route{{Domain: "example.net", Backend: "openfire-s2s"}}) {
		t.Fatalf("routes %+v", l.Routes)
	}
	// Direct TLS (XEP-0368) passes through; a listener without stream is c2s.
	if _, err := Parse("test.hcl", []byte(s2sSrc("  tls {\n    mode = \"passthrough\"\n  }"))); err != nil {
		t.Fatal(err)
	}
	if minimalListener(t).Stream != proxy.StreamClient {
		t.Fatal("a listener without stream takes client streams")
	}
}

func TestParseS2SRules(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
		detail    string
	}{
		{"another kind", strings.Replace(s2sSrc(""), `"server"`, `"s2s"`, 1), []string{"3,13 Invalid stream kind"}, `"client", "server"`},
		{"STARTTLS terminated", s2sSrc("  tls {\n    mode = \"starttls\"\n    cert_file = \"x\"\n  }"),
			[]string{"5,12 TLS mode for an s2s listener"}, `Set mode = "none"`},
		{"websocket", s2sSrc("  websocket {\n  }"), []string{"4,3 WebSocket on an s2s listener"}, "Remove the websocket block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v; want an *Error", err)
			}
			if got := diagLines(e.Diags); !reflect.DeepEqual(got[:1], tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q first\n%v", got, tt.want, e)
			}
			if !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
	// Per-domain limits on a client listener do nothing: a warning.
	c, err := Parse("test.hcl", []byte(strings.Replace(minimal, "backend = ", "limits {\n    max_streams_per_domain = 5\n  }\n  backend = ", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var w *Error
	if !errors.As(c.Warnings(), &w) || len(w.Diags) != 1 || w.Diags[0].Summary != "Unused max_streams_per_domain" {
		t.Fatalf("warnings %v; want Unused max_streams_per_domain", c.Warnings())
	}
}
