package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// certFiles lays out a certificate and key the way a test case wants them on disk.
type certFiles interface {
	paths() (certFile, keyFile string)
	write(t *testing.T, c *testCert)
}

// plainFiles are two regular files rewritten in place, certificate first.
type plainFiles struct{ dir string }

func (p plainFiles) paths() (string, string) {
	return filepath.Join(p.dir, "tls.crt"), filepath.Join(p.dir, "tls.key")
}

func (p plainFiles) write(t *testing.T, c *testCert) {
	certFile, keyFile := p.paths()
	writeFile(t, certFile, c.certPEM)
	writeFile(t, keyFile, c.keyPEM)
}

// secretVolume mimics a Kubernetes secret volume: tls.crt -> ..data/tls.crt, ..data -> a
// timestamped directory, and an update is a new directory plus an atomic rename of ..data.
type secretVolume struct {
	dir string
	gen *int
}

func (s secretVolume) paths() (string, string) {
	return filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")
}

func (s secretVolume) write(t *testing.T, c *testCert) {
	*s.gen++
	ts := filepath.Join(s.dir, "..2026_01_01_00_00_0"+string(rune('0'+*s.gen)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ts, "tls.crt"), c.certPEM)
	writeFile(t, filepath.Join(ts, "tls.key"), c.keyPEM)
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFilesReload serves a certificate from files, replaces the files, and shows that a later
// connection gets the new certificate from the same Manager and listener.
func TestFilesReload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout func(dir string) certFiles
	}{
		{"in place", func(dir string) certFiles { return plainFiles{dir} }},
		{"kubernetes secret", func(dir string) certFiles { return secretVolume{dir, new(int)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			files := tc.layout(t.TempDir())
			old := newCert(t, nil, false, []string{"guard.test"})
			renewed := newCert(t, nil, false, []string{"guard.test"})
			files.write(t, old)

			log, logs := testLogger(t)
			certFile, keyFile := files.paths()
			const interval = 10 * time.Millisecond
			m, err := New(context.Background(), Options{
				Logger:         log,
				CertFile:       certFile,
				KeyFile:        keyFile,
				ReloadInterval: interval,
				Storage:        t.TempDir(),
				NextProtos:     []string{"xmpp-client"},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)

			roots := x509.NewCertPool()
			roots.AddCert(old.cert)
			roots.AddCert(renewed.cert)
			client := &tls.Config{ServerName: "guard.test", RootCAs: roots, NextProtos: []string{"xmpp-client"}}
			served := func() *x509.Certificate {
				t.Helper()
				cs, err := dialTLS(addr, client)
				if err != nil {
					t.Fatal(err)
				}
				if cs.NegotiatedProtocol != "xmpp-client" {
					t.Errorf("ALPN %q, want xmpp-client", cs.NegotiatedProtocol)
				}
				return cs.PeerCertificates[0]
			}
			if got := served(); !got.Equal(old.cert) {
				t.Fatalf("served serial %x, want the first certificate's %x", got.SerialNumber, old.cert.SerialNumber)
			}

			files.write(t, renewed)
			deadline := time.Now().Add(5 * time.Second)
			for {
				got := served()
				if got.Equal(renewed.cert) {
					break
				}
				if !got.Equal(old.cert) {
					t.Fatalf("served serial %x: neither certificate", got.SerialNumber)
				}
				if time.Now().After(deadline) {
					t.Fatal("the replaced certificate is still served after 5s")
				}
				time.Sleep(interval)
			}
			if !strings.Contains(logs.String(), "certificate files reloaded") {
				t.Error("no reload logged")
			}
		})
	}
}

// TestFilesBrokenPairKeepsServing shows that a replacement that does not load (a certificate
// beside a key that is not its own) leaves the previous certificate in service, and that the
// completed update is picked up.
func TestFilesBrokenPairKeepsServing(t *testing.T) {
	dir := t.TempDir()
	files := plainFiles{dir}
	old := newCert(t, nil, false, []string{"guard.test"})
	renewed := newCert(t, nil, false, []string{"guard.test"})
	files.write(t, old)
	certFile, keyFile := files.paths()
	log, logs := testLogger(t)
	m, err := New(context.Background(), Options{
		Logger: log, CertFile: certFile, KeyFile: keyFile, Storage: t.TempDir(),
		ReloadInterval: time.Hour, // the test drives the checks
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := serveTLS(t, "127.0.0.1:0", m.TLSConfig(), nil)
	roots := x509.NewCertPool()
	roots.AddCert(old.cert)
	roots.AddCert(renewed.cert)
	client := &tls.Config{ServerName: "guard.test", RootCAs: roots}

	writeFile(t, certFile, renewed.certPEM) // the key still is old's
	m.files.check(context.Background())
	if !strings.Contains(logs.String(), "previous certificate stays in service") {
		t.Errorf("broken pair not logged; log:\n%s", logs)
	}
	cs, err := dialTLS(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.PeerCertificates[0].Equal(old.cert) {
		t.Fatalf("served serial %x, want the previous %x", cs.PeerCertificates[0].SerialNumber, old.cert.SerialNumber)
	}

	writeFile(t, keyFile, renewed.keyPEM)
	m.files.check(context.Background())
	cs, err = dialTLS(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.PeerCertificates[0].Equal(renewed.cert) {
		t.Fatalf("served serial %x, want the renewed %x", cs.PeerCertificates[0].SerialNumber, renewed.cert.SerialNumber)
	}
}

func TestOptionsValidate(t *testing.T) {
	acme := &ACMEOptions{Email: "a@guard.test", Domains: []string{"guard.test"}}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"nothing", Options{}, "neither"},
		{"both", Options{CertFile: "c", KeyFile: "k", ACME: acme}, "exclusive"},
		{"cert only", Options{CertFile: "c"}, "go together"},
		{"TLS 1.1", Options{CertFile: "c", KeyFile: "k", MinVersion: tls.VersionTLS11}, "minimum TLS version"},
		{"acme-tls/1 listed", Options{CertFile: "c", KeyFile: "k", NextProtos: []string{"acme-tls/1"}}, "must not list"},
		{"no email", Options{ACME: &ACMEOptions{Domains: []string{"guard.test"}}}, "email"},
		{"no domains", Options{ACME: &ACMEOptions{Email: "a@guard.test"}}, "domains"},
		{"no challenge", Options{ACME: &ACMEOptions{Email: "a@guard.test", Domains: []string{"guard.test"}, DisableTLSALPN: true}}, "no challenge"},
		{"missing file", Options{CertFile: "/nonexistent/c", KeyFile: "/nonexistent/k"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(context.Background(), tc.o)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}
