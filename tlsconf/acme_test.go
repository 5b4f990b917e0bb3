package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pebble is a running Pebble ACME test CA (Debian's package, /usr/bin/pebble).
type pebble struct {
	dir      string // directory URL
	mgmt     string // management base URL
	caFile   string // PEM of the CA that signed Pebble's own HTTPS certificate
	client   *http.Client
	tlsPort  int // where Pebble's VA connects for tls-alpn-01
	httpPort int // where Pebble's VA connects for http-01
}

// startPebble runs Pebble on loopback ports, with validations done for real against
// 127.0.0.1 (Pebble resolves "localhost" through /etc/hosts). Debian's package ships no
// certificates for Pebble's own HTTPS listeners, so the test makes a CA and a localhost
// certificate. Pebble is killed, by its PID, when the test ends.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pebble not installed (Debian package pebble): ", err)
		}
		t.Skip("pebble not installed (apt-get install pebble): ", err)
	}
	// The ports were free a moment ago; should another process take one
	// meanwhile, Pebble cannot listen and exits: try again on new ports.
	for attempt := 1; ; attempt++ {
		p, out, err := tryPebble(t, bin)
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(out, "address already in use") {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("pebble could not listen on a port picked free (attempt %d); trying new ports", attempt)
	}
}

// tryPebble starts Pebble once on ports picked free; an error says why it
// is not ready, with its output.
func tryPebble(t *testing.T, bin string) (*pebble, string, error) {
	dir := t.TempDir()
	ca := newCert(t, nil, true, nil)
	leaf := newCert(t, ca, false, []string{"localhost"}, net.IPv4(127, 0, 0, 1))
	p := &pebble{caFile: filepath.Join(dir, "ca.pem"), tlsPort: freePort(t), httpPort: freePort(t)}
	writeFile(t, p.caFile, ca.certPEM)
	writeFile(t, filepath.Join(dir, "cert.pem"), leaf.certPEM)
	writeFile(t, filepath.Join(dir, "key.pem"), leaf.keyPEM)
	listen, mgmt := freePort(t), freePort(t)
	conf, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       p.httpPort,
		"tlsPort":                        p.tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pebble.json"), conf)

	out := &childproc.Buffer{}
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "pebble.json"))
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated again
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(p.client.CloseIdleConnections)
	p.dir = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	p.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := p.client.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, "", nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			return nil, out.String(), errors.New("pebble exited")
		default:
		}
		if time.Now().After(deadline) {
			return nil, out.String(), fmt.Errorf("pebble not ready after 15s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// root fetches the root that signs Pebble's certificates (a new one every run).
func (p *pebble) root(t *testing.T) *x509.Certificate {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %s %v", resp.Status, err)
	}
	certs, err := x509.ParseCertificates(pemDER(t, body))
	if err != nil || len(certs) == 0 {
		t.Fatalf("pebble root: %v in %q", err, body)
	}
	return certs[0]
}

// TestACMEPebble obtains a certificate for localhost from Pebble through a real tls-alpn-01
// challenge, serves it, verifies the served chain against Pebble's root, then renews it with the
// challenge answered by the serving listener itself.
func TestACMEPebble(t *testing.T) {
	p := startPebble(t)
	log, logs := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// During New no listener holds the challenge port: certmagic answers on it itself.
	opts := Options{
		Logger:     log,
		Storage:    t.TempDir(),
		NextProtos: []string{"xmpp-client"},
		ACME: &ACMEOptions{
			CA:               p.dir,
			Email:            "admin@guard.test",
			Domains:          []string{"localhost"},
			TrustedRootsFile: p.caFile,
			ListenHost:       "127.0.0.1",
			TLSALPNPort:      p.tlsPort,
		},
	}
	m, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	challenges := make(chan struct{}, 16)
	addr := serveTLS(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.tlsPort)), m.TLSConfig(), challenges)

	root := p.root(t)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	check := func(addr string) *x509.Certificate {
		t.Helper()
		cs, err := dialTLS(addr, &tls.Config{ServerName: "localhost", RootCAs: roots, NextProtos: []string{"xmpp-client"}})
		if err != nil {
			t.Fatalf("served certificate does not verify against pebble's root: %v", err)
		}
		if cs.NegotiatedProtocol != "xmpp-client" {
			t.Errorf("ALPN %q, want xmpp-client", cs.NegotiatedProtocol)
		}
		chain := cs.VerifiedChains[0]
		if !chain[len(chain)-1].Equal(root) {
			t.Error("verified chain does not end at pebble's root")
		}
		if err := chain[0].VerifyHostname("localhost"); err != nil {
			t.Error(err)
		}
		return chain[0]
	}
	first := check(addr)
	t.Logf("served %s, serial %x, issued by %q", first.DNSNames, first.SerialNumber, first.Issuer.CommonName)

	// Renewal while Guard holds the port: certmagic cannot bind it, so Pebble's validation
	// reaches the listener above, whose TLSConfig answers "acme-tls/1".
	if err := m.cfg.RenewCertSync(ctx, "localhost", true); err != nil {
		t.Fatalf("renewal through the serving listener: %v", err)
	}
	select {
	case <-challenges:
	default:
		t.Fatalf("renewed without a tls-alpn-01 validation on the serving listener; log:\n%s", logs)
	}
	m.Close()

	// A restart loads the renewed certificate from Storage: nothing is obtained.
	before := strings.Count(logs.String(), "certificate obtained successfully")
	m2, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if after := strings.Count(logs.String(), "certificate obtained successfully"); after != before {
		t.Error("restart obtained a certificate instead of loading it from Storage")
	}
	renewed := check(serveTLS(t, "127.0.0.1:0", m2.TLSConfig(), nil))
	if renewed.Equal(first) {
		t.Error("restart serves the first certificate, not the renewed one")
	}
}

func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	var der []byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return der
		}
		der = append(der, blk.Bytes...)
	}
}
