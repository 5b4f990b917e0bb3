package testcert

import (
	"crypto/tls"
	"crypto/x509"
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
