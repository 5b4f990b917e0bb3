package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// testCert is a certificate and its key, parsed and as PEM.
type testCert struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCert makes a certificate for names and ips, signed by parent (self-signed if nil). isCA
// makes it a CA.
func newCert(t testing.TB, parent *testCert, isCA bool, names []string, ips ...net.IP) *testCert {
	t.Helper()
	c, err := makeCert(parent, isCA, names, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeCert(parent *testCert, isCA bool, names []string, ips ...net.IP) (*testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "guard test " + serial.Text(16)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              names,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &testCert{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testLogger is an hclog logger that writes to the test log, and also to buf for assertions.
func testLogger(t testing.TB) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return hclog.New(&hclog.LoggerOptions{
		Name:   "tlsconf",
		Level:  hclog.Debug,
		Output: io.MultiWriter(tWriter{t}, buf),
	}), buf
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// syncBuffer collects a process's output; safe to read while it runs.
type syncBuffer = childproc.Buffer

// serveTLS accepts TLS connections on a loopback port with cfg until the test ends. Each
// connection completes its handshake and receives "ok", unless it is an ACME tls-alpn-01
// validation, which is closed right after the handshake and counted on challenges.
func serveTLS(t testing.TB, addr string, cfg *tls.Config, challenges chan<- struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				if IsACMEChallenge(tc.ConnectionState()) {
					if challenges != nil {
						select {
						case challenges <- struct{}{}:
						default:
						}
					}
					return
				}
				io.WriteString(tc, "ok")
				tc.CloseWrite()
				io.Copy(io.Discard, tc)
			})
		}
	})
	return ln.Addr().String()
}

// dialTLS connects with cfg, reads the server's "ok" (which also brings TLS 1.3 session
// tickets), and returns the connection state.
func dialTLS(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if string(b) != "ok" {
		return tls.ConnectionState{}, errors.New("server said " + string(b))
	}
	return c.ConnectionState(), nil
}

// writeSelfSigned writes a fresh self-signed certificate for name, for examples.
func writeSelfSigned(certFile, keyFile, name string) {
	c, err := makeCert(nil, false, []string{name})
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(certFile, c.certPEM, 0o600); err != nil {
		panic(err)
	}
	if err := os.WriteFile(keyFile, c.keyPEM, 0o600); err != nil {
		panic(err)
	}
}
