package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed localhost certificate and key as PEM files.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// featuresBackend answers one stream header with the given features.
func featuresBackend(t *testing.T, features string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				c.Read(buf)
				io.WriteString(c, backendHeader+features)
				io.ReadAll(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// guard validate -probe reports a backend whose -PLUS mechanisms cannot
// work behind a TLS-terminating listener, and an unreachable backend.
func TestValidateProbe(t *testing.T) {
	certFile, keyFile := writeCert(t)
	plus := featuresBackend(t, "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")
	plain := featuresBackend(t, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")
	for _, tt := range []struct {
		name, backend, want string
		code                int
	}{
		{"plus behind TLS", plus, "PROBLEM: offers SASL -PLUS mechanisms", 1},
		{"clean", plain, `opened a stream for "localhost"`, 0},
		{"unreachable", freeAddr(t), "unreachable", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fmt.Sprintf(`
listener "c2s" {
  address = "127.0.0.1:5222"
  backend = "xmpp"
  tls {
    mode      = "starttls"
    cert_file = %q
    key_file  = %q
  }
}
backend "xmpp" {
  address = %q
}
`, certFile, keyFile, tt.backend)
			path := filepath.Join(t.TempDir(), "guard.hcl")
			os.WriteFile(path, []byte(cfg), 0o644)
			// One run: its exit code and its own output.
			cmd := exec.Command(guardBin, "validate", "-config", path, "-probe")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("guard validate -probe did not run: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tt.code, tt.want)
			}
		})
	}
}

// A Direct TLS listener serves the certificate from its files, and a
// certificate replaced on disk is served to the next connection without a
// restart.
func TestTLSCertificateFromFilesReloaded(t *testing.T) {
	certFile, keyFile := writeCert(t)
	backend := holdingBackend(t)
	listen := freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = ""
}
listener "c2s-tls" {
  address = %q
  backend = "xmpp"
  tls {
    mode      = "direct"
    cert_file = %q
    key_file  = %q
  }
}
backend "xmpp" {
  address = %q
}
`, listen, certFile, keyFile, backend))
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	waitListening(t, listen)
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", listen, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
		if err != nil {
			t.Fatalf("TLS to guard: %v\n%s", err, stderr)
		}
		defer c.Close()
		if c.ConnectionState().NegotiatedProtocol != "xmpp-client" {
			t.Errorf("ALPN %q", c.ConnectionState().NegotiatedProtocol)
		}
		io.WriteString(c, clientHeader)
		buf := make([]byte, len(backendHeader))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != backendHeader {
			t.Fatalf("stream through TLS: %q, %v", buf, err)
		}
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	first := served()
	// Replace the pair on disk (a new key and certificate).
	newCert, newKey := writeCert(t)
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(f[1]+".new", f[1])
	}
	want, _ := os.ReadFile(newCert)
	block, _ := pem.Decode(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := served()
		if string(got) == string(block.Bytes) {
			break
		}
		if string(got) != string(first) || time.Now().After(deadline) {
			t.Fatalf("after replacing the files Guard serves neither the old nor the new certificate, or still the old one after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Routes and pools from config.hcl reach the proxy: a stream to a routed
// domain goes to its backend's pool, an unknown domain gets host-unknown,
// and GET /backends shows the pool.
func TestRoutesAndPoolsFromConfig(t *testing.T) {
	const features = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
	a, b := featuresBackend(t, features), featuresBackend(t, features)
	listen, admin := freeAddr(t), freeAddr(t)
	cmd, stderr := startProcess(t, fmt.Sprintf(`
admin {
  address = %q
}
listener "c2s" {
  address = %q
  route "aaaa.test" {
    backend = "a"
  }
}
backend "a" {
  node %q {}
  node %q {
    max_streams = 5
  }
  health_check {
    interval = "1s"
    timeout  = "500ms"
    domain   = "aaaa.test"
  }
}
`, admin, listen, a, b))
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	waitListening(t, listen)
	waitListening(t, admin)
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, strings.Replace(clientHeader, "to='localhost'", "to='aaaa.test'", 1))
	buf := make([]byte, len(backendHeader))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != backendHeader {
		t.Fatalf("routed stream: %q, %v\n%s", buf, err, stderr)
	}
	u, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	io.WriteString(u, strings.Replace(clientHeader, "to='localhost'", "to='x.test'", 1))
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(u)
	if !strings.Contains(string(got), "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") || !strings.Contains(string(got), "from='x.test'") {
		t.Fatalf("unknown domain: got %q, want Guard's header from x.test and host-unknown", got)
	}
	code, body := httpGet(t, "http://"+admin+"/backends")
	if code != 200 || !strings.Contains(body, a) || !strings.Contains(body, `"max_streams": 5`) {
		t.Fatalf("GET /backends: %d %s", code, body)
	}
}
