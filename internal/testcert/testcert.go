// Package testcert writes throwaway certificates for tests that need
// certificate files on disk: self-signed ones (configuration files whose
// validation reads cert_file and key_file), and a small certificate
// authority whose leaves two servers can verify of each other (federation
// tests, where each server is both TLS server and TLS client).
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Write creates dir/tls.crt and dir/tls.key: a self-signed ECDSA P-256
// certificate for names, valid from an hour ago for a day, and its key, the
// names cert-manager and kubernetes.io/tls Secrets use. It returns the two
// paths and fails the test on any error.
func Write(t testing.TB, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "test certificate"},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writePair(t, dir, der, key)
}

// newKey makes an ECDSA P-256 key.
func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writePair writes the certificate der and its key as dir/tls.crt and
// dir/tls.key (PEM), creating dir if need be.
func writePair(t testing.TB, dir string, der []byte, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// CA is a throwaway certificate authority: an ECDSA P-256 root, valid from
// an hour ago for a day, that issues leaf certificates.
type CA struct {
	// CertFile is the root's PEM file, the one to give as a trust anchor
	// (cafile, ca_file).
	CertFile string
	// Cert is the root certificate.
	Cert *x509.Certificate

	key *ecdsa.PrivateKey
}

// NewCA makes a root named name (its subject's common name) and writes it
// to dir/ca.crt. It fails the test on any error.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{CertFile: filepath.Join(dir, "ca.crt"), Cert: cert, key: key}
	if err := os.WriteFile(ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

// Issue creates dir/tls.crt and dir/tls.key: a leaf certificate signed by
// the CA for names (DNS names; the first is also the common name), usable
// for both TLS server and TLS client authentication, as a server-to-server
// certificate must be (RFC 6120 section 13.7.1.2), and its key. It
// returns the two paths and fails the test on any error.
func (ca *CA) Issue(t testing.TB, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	if len(names) == 0 {
		t.Fatal("testcert: Issue needs at least one name")
	}
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return writePair(t, dir, der, key)
}

// ClientHello returns the first bytes a crypto/tls client with cfg sends:
// its ClientHello, one record written at once (the handshake then fails,
// with nobody to answer it).
func ClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tls.Client(c, cfg).Handshake() // fails when s closes
		c.Close()
	}()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := s.Read(buf) // net.Pipe: the whole write, the buffer being larger
	if err != nil {
		t.Fatalf("testcert: the client's hello: %v", err)
	}
	return buf[:n]
}
