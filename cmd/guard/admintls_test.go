package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/testcert"
)

// admin { tls { cert_file, key_file } } makes the admin endpoint HTTPS: a
// plain HTTP request gets no answer it could act on, `guard health -cert`
// and `guard drain` (which finds the certificate in the file) speak HTTPS
// and trust exactly that certificate, and a certificate that is not the
// file's is refused.
func TestAdminTLS(t *testing.T) {
	backend := holdingBackend(t)
	listen, admin := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "guard-admin.internal")
	otherDir := filepath.Join(dir, "other")
	os.Mkdir(otherDir, 0o755)
	otherCert, _ := testcert.Write(t, otherDir, "guard-admin.internal")
	src := fmt.Sprintf(`
admin {
  address = %q
  tls {
    cert_file = %q
    key_file  = %q
  }
}
listener "c2s" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" { address = %q }
`, admin, cert, key, listen, backend)
	cfg := filepath.Join(dir, "guard.hcl")
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := startProcess(t, src)
	waitListening(t, admin)

	// Plain HTTP gets a TLS error answer, never the endpoint.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + admin + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP: %s, want no answer from the endpoint", resp.Status)
		}
	}
	// HTTPS with the certificate.
	c, err := tls.Dial("tcp", admin, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with the admin endpoint: %v", err)
	}
	c.Close()

	if code, out, errOut := guardCmd(t, "", "health", "-addr", admin, "-cert", cert); code != 0 || !strings.Contains(out, "https://") {
		t.Errorf("guard health -cert: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := guardCmd(t, "", "health", "-addr", admin, "-cert", otherCert); code != 1 || !strings.Contains(errOut, "is not the one in") {
		t.Errorf("guard health with another certificate: exit %d, %q; want 1 and a refused certificate", code, errOut)
	}
	if code, _, errOut := guardCmd(t, "", "health", "-addr", admin); code != 1 {
		t.Errorf("guard health over plain HTTP: exit %d, %q; want 1", code, errOut)
	}
	if code, out, errOut := guardCmd(t, "", "drain", cfg); code != 0 || !strings.Contains(out, "https://") || !strings.Contains(out, "202 Accepted") {
		t.Errorf("guard drain with the file's certificate: exit %d, %q %q", code, out, errOut)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("guard exited with %v\n%s", err, stderr)
	}
}
