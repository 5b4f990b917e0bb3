package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/internal/testcert"
	"github.com/guard-xmpp/guard/proxy"
	"github.com/guard-xmpp/guard/tlsconf"
)

// A reload that changes a listener's certificate closes the manager of the
// old one (its file checks, or an ACME manager's renewals, would otherwise
// run on for the life of the process); a rejected reload closes the ones
// it created and keeps the running one.
func TestReloadClosesUnusedCertificateManagers(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "a"), 0o755)
	os.Mkdir(filepath.Join(dir, "b"), 0o755)
	certA, keyA := testcert.Write(t, filepath.Join(dir, "a"), "localhost")
	certB, keyB := testcert.Write(t, filepath.Join(dir, "b"), "localhost")
	file := filepath.Join(dir, "guard.hcl")
	load := func(cert, key string) *config.Config {
		t.Helper()
		src := fmt.Sprintf(`admin { address = "" }
listener "c2s" {
  address = "127.0.0.1:0"
  backend = "xmpp"
  tls {
    mode      = "starttls"
    cert_file = %q
    key_file  = %q
  }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, cert, key)
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	g := &guard{logger: hclog.NewNullLogger(), srv: proxy.New(proxy.Options{Logger: hclog.NewNullLogger()}),
		tls: make(map[string]*tlsconf.Manager)}
	t.Cleanup(func() { g.srv.Close(); g.closeTLS() })
	if err := g.apply(load(certA, keyA)); err != nil {
		t.Fatal(err)
	}
	if len(g.tls) != 1 {
		t.Fatalf("%d managers after the first load, want 1", len(g.tls))
	}
	if err := g.apply(load(certB, keyB)); err != nil {
		t.Fatal(err)
	}
	if len(g.tls) != 1 {
		t.Errorf("%d managers after a reload with another certificate, want 1 (the old one closed)", len(g.tls))
	}
	for key := range g.tls {
		if !g.tlsInUse[key] {
			t.Errorf("manager %s kept but not in use", key)
		}
	}
	// A certificate that does not load: the reload is rejected, and the
	// running manager stays the only one.
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	cfg := load(certB, keyB)
	cfg.Listeners[0].TLS.CertFile = bad // past the file's checks: tlsconf refuses it
	if err := g.apply(cfg); err == nil {
		t.Fatal("a reload with a broken certificate was applied")
	}
	if len(g.tls) != 1 {
		t.Errorf("%d managers after a rejected reload, want 1", len(g.tls))
	}
}
