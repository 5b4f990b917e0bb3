package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxy"
)

// FuzzParse checks that Parse never panics, that it returns exactly one of
// a Config and an error, that every error carries diagnostics, that every
// snippet of HCL a diagnostic suggests parses, and that a Config it accepts
// keeps its promises.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*/*.hcl")
	paths = append(paths, "../config.hcl")
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(minimal))
	f.Add([]byte(`listener "c2s" {
  address = ":5222"
  route "chat.example.net" { backend = "chat" }
}
backend "chat" {
  node "10.0.0.1:5262" { max_streams = 10 }
  node "10.0.0.2:5262" {}
  health_check {
    interval = "5s"
    timeout  = "1s"
    domain   = "chat.example.net"
  }
  tls {}
}
`))
	// Files that exist and load, so that the checks past reading them run too.
	p := newPKI(f)
	f.Add([]byte(tlsListener(fmt.Sprintf("mode = \"direct\"\ncert_file = %q\nkey_file = %q\nalpn = [\"xmpp-client\"]", p.certFile, p.keyFile))))
	f.Add([]byte(tlsListener(fmt.Sprintf("mode = \"starttls\"\ncert_file = %q\nkey_file = %q", p.expiredCert, p.otherKey)) +
		fmt.Sprintf(`acme {
  ca            = "https://localhost:14000/dir"
  email         = "admin@guard.test"
  domains       = ["guard.test"]
  trusted_roots = %q
  challenges    = ["http-01", "tls-alpn-01"]
  http_address  = ":5002"
}
`, p.rootFile)))
	fakeLookup(f) // host names in listen addresses are never looked up on the network
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.hcl", src)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", c, err)
		}
		diags := err
		if c != nil {
			diags = c.Warnings()
		}
		if e, ok := diags.(*Error); ok {
			for _, d := range e.Diags {
				for _, s := range suggestions(d) {
					if why := checkSnippet(s); why != "" {
						t.Fatalf("%s suggests %q, which is not HCL to paste: %s", d.Summary, s, why)
					}
				}
			}
		}
		if err != nil {
			e, ok := err.(*Error)
			if !ok || !e.Diags.HasErrors() {
				t.Fatalf("error %T %v has no error diagnostics", err, err)
			}
			var out strings.Builder
			if werr := WriteDiagnostics(&out, err, 78, false); werr != nil {
				t.Fatal(werr)
			}
			return
		}
		if len(c.Listeners) == 0 {
			t.Fatal("accepted a config without listeners")
		}
		for _, l := range c.Listeners {
			if _, ok := c.Backend(l.Backend); !ok && (l.Backend != "" || len(l.Routes) == 0) {
				t.Fatalf("listener %q names missing backend %q", l.Name, l.Backend)
			}
			domains := map[string]bool{}
			for _, r := range l.Routes {
				if _, ok := c.Backend(r.Backend); !ok || r.Domain == "" || domains[strings.ToLower(r.Domain)] {
					t.Fatalf("listener %q has bad route %+v", l.Name, r)
				}
				domains[strings.ToLower(r.Domain)] = true
			}
			tt := l.Timeouts
			if tt.Handshake <= 0 || tt.HalfClose <= 0 || tt.Idle < 0 || tt.Probe < 0 || tt.ProbeTimeout <= 0 {
				t.Fatalf("listener %q has bad timeouts %+v", l.Name, l.Timeouts)
			}
			if lim := l.Limits; lim.MaxStanzaSize < 1<<10 || lim.MaxStanzaSize > 16<<20 ||
				lim.MaxHeaderSize < 512 || lim.MaxHeaderSize > 64<<10 ||
				lim.MaxConnsPerIP < 0 || !goodRate(lim.ConnRatePerIP, lim.ConnBurstPerIP) ||
				lim.TrackedAddresses < 1000 || lim.TrackedAddresses > 10000000 ||
				lim.ClientBytesPerSecond != 0 && (lim.ClientBytesPerSecond < 1<<10 || lim.ClientBytesPerSecond > 1<<30) {
				t.Fatalf("listener %q has bad limits %+v", l.Name, l.Limits)
			}
			if !goodTLS(l.TLS, c.ACME != nil) {
				t.Fatalf("listener %q has bad tls %+v", l.Name, l.TLS)
			}
		}
		if a := c.ACME; a != nil {
			if !strings.HasPrefix(a.CA, "https://") || a.Email == "" || len(a.Domains) == 0 || slices.Contains(a.Domains, "") ||
				a.Storage == "" || len(a.Challenges) == 0 || slices.Contains(a.Challenges, "http-01") == (a.HTTPAddress == "") {
				t.Fatalf("bad acme %+v", a)
			}
			for _, ch := range a.Challenges {
				if ch != "tls-alpn-01" && ch != "http-01" {
					t.Fatalf("acme has challenge %q", ch)
				}
			}
		}
		for _, b := range c.Backends {
			if b.ConnectTimeout <= 0 || b.ReplyTimeout <= 0 {
				t.Fatalf("backend %q has connect timeout %v, reply timeout %v", b.Name, b.ConnectTimeout, b.ReplyTimeout)
			}
			if (b.Address == "") == (len(b.Nodes) == 0) {
				t.Fatalf("backend %q has address %q and nodes %+v", b.Name, b.Address, b.Nodes)
			}
			nodes := map[string]bool{}
			for _, n := range b.Nodes {
				if n.Address == "" || n.MaxStreams < 0 || nodes[n.Address] {
					t.Fatalf("backend %q has bad node %+v", b.Name, n)
				}
				nodes[n.Address] = true
			}
			if h := b.Health; h != (proxy.HealthCheck{}) && (h.Interval <= 0 || h.Timeout <= 0 || h.Timeout >= h.Interval || h.Domain == "") {
				t.Fatalf("backend %q has bad health check %+v", b.Name, h)
			}
			if b.TLS != nil && b.TLS.ServerName == "" {
				t.Fatalf("backend %q has no server name", b.Name)
			}
			if a := b.Admission; a.MaxStreams < 0 || a.QueueSize < 0 || a.QueueTimeout <= 0 || !goodRate(a.NewStreamsPerSecond, a.NewStreamsBurst) {
				t.Fatalf("backend %q has bad admission limits %+v", b.Name, b)
			}
		}
		if _, err := policy.New(c.Policy); err != nil {
			t.Fatalf("policy.New rejects the accepted policy: %v", err)
		}
	})
}

// goodTLS reports whether t is a tls block Guard can serve: a known mode
// and version; in the modes that terminate TLS, a certificate from files or
// from ACME; in the others, no files and no ALPN.
func goodTLS(t TLS, acme bool) bool {
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" || (t.CertFile == "") != (t.KeyFile == "") ||
		slices.Contains(t.ALPN, "") || slices.Contains(t.ALPN, "acme-tls/1") {
		return false
	}
	switch t.Mode {
	case proxy.TLSStartTLS, proxy.TLSDirect:
		return (t.CertFile != "" || acme) && (t.Mode == proxy.TLSDirect || t.ALPN == nil)
	case proxy.TLSNone, proxy.TLSPassthrough:
		return t.CertFile == "" && t.ALPN == nil
	}
	return false
}

// goodRate reports whether a rate (a second) and its burst are what the
// limits package expects: a finite rate of at most 1000000, and a burst of
// at least 1 exactly when the rate is not 0.
func goodRate(rate float64, burst int) bool {
	if !(rate >= 0 && rate <= 1000000) {
		return false
	}
	return (rate == 0) == (burst == 0) && burst >= 0
}
