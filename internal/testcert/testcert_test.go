package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// The files form a pair crypto/tls accepts, for the names asked.
func TestWrite(t *testing.T) {
	certFile, keyFile := Write(t, t.TempDir(), "example.net", "xmpp.example.net")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("xmpp.example.net"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("other.example.net"); err == nil {
		t.Error("the certificate also matches a name it was not made for")
	}
}

// A leaf of the CA verifies against the CA's file, for the names asked, as
// a server and as a client; it does not verify against another CA.
func TestCAIssue(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t, dir, "test root")
	certFile, keyFile := ca.Issue(t, filepath.Join(dir, "leaf"), "a.test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pemCA, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		t.Fatal("ca.crt holds no certificate")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "a.test", Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if err := leaf.VerifyHostname("b.test"); err == nil {
		t.Error("the certificate also matches a name it was not made for")
	}
	other := x509.NewCertPool()
	other.AddCert(NewCA(t, t.TempDir(), "other root").Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other}); err == nil {
		t.Error("the leaf verifies against another CA")
	}
}
