package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
)

// filesManager serves a fresh self-signed certificate for guard.test from files.
func filesManager(t *testing.T, o Options) (*Manager, *testCert) {
	t.Helper()
	dir := t.TempDir()
	c := newCert(t, nil, false, []string{"guard.test"})
	o.CertFile, o.KeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, o.CertFile, c.certPEM)
	writeFile(t, o.KeyFile, c.keyPEM)
	if o.Logger == nil {
		o.Logger, _ = testLogger(t)
	}
	o.Storage = t.TempDir()
	m, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, c
}

// TestTLSDefaults checks what the server configuration refuses and accepts.
func TestTLSDefaults(t *testing.T) {
	m, c := filesManager(t, Options{})
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(c.cert)

	for _, tc := range []struct {
		name    string
		client  *tls.Config
		refused string // "" = must succeed; else a word of the client's error
	}{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "protocol version"},
		{"TLS 1.2 CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		}}, "handshake failure"},
		{"TLS 1.2 AEAD", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		}}, ""},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		}}, ""},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.client.Clone()
			cfg.ServerName, cfg.RootCAs = "guard.test", roots
			_, err := dialTLS(addr, cfg)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatal("accepted")
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Errorf("error %q, want %q", err, tc.refused)
			}
		})
	}
}

// TestTLS13Minimum checks Options.MinVersion.
func TestTLS13Minimum(t *testing.T) {
	m, c := filesManager(t, Options{MinVersion: tls.VersionTLS13})
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(c.cert)
	if _, err := dialTLS(addr, &tls.Config{ServerName: "guard.test", RootCAs: roots, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 accepted with MinVersion TLS 1.3")
	}
	if _, err := dialTLS(addr, &tls.Config{ServerName: "guard.test", RootCAs: roots}); err != nil {
		t.Error(err)
	}
}

// TestSessionResumption checks that a session ticket from one connection resumes on the next,
// for both TLS versions: TLSConfig is one shared configuration.
func TestSessionResumption(t *testing.T) {
	m, c := filesManager(t, Options{})
	if m.TLSConfig() != m.TLSConfig() {
		t.Fatal("TLSConfig returns a new configuration per call: session ticket keys would not be shared")
	}
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(c.cert)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		client := &tls.Config{ServerName: "guard.test", RootCAs: roots, MaxVersion: v,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i, want := range []bool{false, true} {
			cs, err := dialTLS(addr, client)
			if err != nil {
				t.Fatal(err)
			}
			if cs.Version != v || cs.DidResume != want {
				t.Errorf("%s connection %d: DidResume %v, want %v", tls.VersionName(cs.Version), i, cs.DidResume, want)
			}
		}
	}
}

// TestServerNames checks that a client without SNI, or with a name the certificate lacks,
// still gets the certificate (and can judge the mismatch itself).
func TestServerNames(t *testing.T) {
	m, c := filesManager(t, Options{})
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	for _, name := range []string{"", "other.test"} {
		cfg := &tls.Config{ServerName: name, InsecureSkipVerify: true}
		cs, err := dialTLS(addr, cfg)
		if err != nil {
			t.Fatalf("server name %q: %v", name, err)
		}
		if !cs.PeerCertificates[0].Equal(c.cert) {
			t.Errorf("server name %q: another certificate served", name)
		}
	}
}

// TestALPN checks NextProtos: a client offering xmpp-client gets it; one offering nothing
// Guard speaks is refused (crypto/tls); "acme-tls/1" is not answered without ACME.
func TestALPN(t *testing.T) {
	m, c := filesManager(t, Options{NextProtos: []string{"xmpp-client"}})
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(c.cert)
	for _, tc := range []struct {
		offer []string
		want  string // negotiated; "!" = refused
	}{
		{nil, ""},
		{[]string{"xmpp-client"}, "xmpp-client"},
		{[]string{"h2", "xmpp-client"}, "xmpp-client"},
		{[]string{"xmpp-server"}, "!"},
		{[]string{ACMETLSALPNProtocol}, "!"},
	} {
		cs, err := dialTLS(addr, &tls.Config{ServerName: "guard.test", RootCAs: roots, NextProtos: tc.offer})
		switch {
		case tc.want == "!" && err == nil:
			t.Errorf("offer %q: accepted with %q", tc.offer, cs.NegotiatedProtocol)
		case tc.want != "!" && err != nil:
			t.Errorf("offer %q: %v", tc.offer, err)
		case tc.want != "!" && cs.NegotiatedProtocol != tc.want:
			t.Errorf("offer %q: negotiated %q, want %q", tc.offer, cs.NegotiatedProtocol, tc.want)
		}
	}
}
