package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
)

// Two Guard processes, replicas A and B, share one acme.storage directory in front of Pebble
// (Debian's package: pebble and its pebble-challtestsrv, here only the DNS server that answers
// every name with 127.0.0.1). Everything runs in a network namespace of the test's own, so
// that port 443, where the CA validates tls-alpn-01 as it does on the Internet, is free, and
// only one process can hold it: which replica answered a validation is then a matter of who
// listens there, not a guess.
//
//  1. A starts and orders the certificate of guard.test. Nothing listens on 443 yet, so
//     certmagic's own solver in A binds :443 and answers. B starts as soon as A holds the
//     issuing lock: it waits on the lock and then loads A's certificate from the storage.
//     Pebble issued one certificate; A and B serve it, the same serial.
//  2. B's Direct TLS listener is on 127.0.0.1:443. A is reloaded with a second domain,
//     xmpp.guard.test, and orders it; its solver cannot bind :443 (B holds it), so Pebble's
//     validation reaches B, which did not start the order and answers it from the challenge
//     that A wrote into the shared storage (certmagic's distributed solving). B is reloaded
//     with the same domains while A still holds the lock: it waits and loads, orders nothing.
func TestACMEReplicasShareStorage(t *testing.T) {
	start := time.Now()
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (Debian package pebble): %v", bin, err)
			}
			t.Skipf("%s not installed (apt-get install pebble): %v", bin, err)
		}
	}
	ns := newNetns(t)
	dir := t.TempDir()
	p := startPebbleIn(t, ns, dir)
	storage := filepath.Join(dir, "shared-storage")

	const (
		aListen, aAdmin = "127.0.0.1:5223", "127.0.0.1:9090"
		bListen, bAdmin = "127.0.0.1:443", "127.0.0.1:9091" // B holds the validation port
	)
	ra := replica{listen: aListen, admin: aAdmin, storage: storage, challenge: "tls-alpn-01"}
	rb := replica{listen: bListen, admin: bAdmin, storage: storage, challenge: "tls-alpn-01"}
	aCfg := filepath.Join(dir, "a.hcl")
	bCfg := filepath.Join(dir, "b.hcl")
	ra.writeConfig(t, aCfg, p, "guard.test")
	rb.writeConfig(t, bCfg, p, "guard.test")

	// 1. A orders; B, started while A holds the lock, waits and loads.
	a, aLog := startIn(t, ns, "replica A", guardBin, "-config", aCfg)
	waitLine(t, "replica A", aLog, 20*time.Second, "lock acquired", "identifier=guard.test")
	b, bLog := startIn(t, ns, "replica B", guardBin, "-config", bCfg)
	waitLine(t, "replica A", aLog, 30*time.Second, "guard started")
	waitLine(t, "replica B", bLog, 30*time.Second, "guard started")
	if n := p.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates for two replicas starting together, want 1", n)
	}
	if lines(aLog.String(), "obtaining certificate", "identifier=guard.test") != 1 {
		t.Errorf("replica A did not order guard.test exactly once")
	}
	if n := lines(bLog.String(), "obtaining certificate"); n != 0 {
		t.Errorf("replica B ordered %d certificates; it should have loaded A's from the storage", n)
	}
	waitedB := lines(bLog.String(), "certificate already exists in storage", "identifier=guard.test") == 1
	t.Logf("phase 1: pebble issued %d certificate(s); B waited on A's lock and then loaded: %v", p.issued(), waitedB)

	root := p.root(t)
	serialA := serve(t, ns, aListen, "guard.test", root)
	serialB := serve(t, ns, bListen, "guard.test", root)
	if serialA != serialB {
		t.Fatalf("guard.test: A serves serial %s, B serves %s: two certificates", serialA, serialB)
	}
	t.Logf("phase 1: A and B serve guard.test serial %s", serialA)

	// 2. A orders a new name; Pebble validates at 443, where only B listens.
	ra.writeConfig(t, aCfg, p, "guard.test", "xmpp.guard.test")
	rb.writeConfig(t, bCfg, p, "guard.test", "xmpp.guard.test")
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, "replica A", aLog, 20*time.Second, "lock acquired", "identifier=xmpp.guard.test")
	if err := b.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, "replica A", aLog, 30*time.Second, "configuration reloaded")
	waitLine(t, "replica B", bLog, 30*time.Second, "configuration reloaded")

	if n := p.issued(); n != 2 {
		t.Errorf("pebble issued %d certificates in all, want 2 (guard.test, then xmpp.guard.test)", n)
	}
	if n := lines(bLog.String(), "obtaining certificate"); n != 0 {
		t.Errorf("replica B ordered %d certificates; it should have loaded A's from the storage", n)
	}
	// B answered the validation of an order it did not start, from the storage.
	answered := lines(bLog.String(), "served key authentication certificate", "server_name=xmpp.guard.test", "distributed=true")
	if answered == 0 {
		t.Errorf("replica B did not answer the tls-alpn-01 validation of xmpp.guard.test from the shared storage")
	}
	if n := lines(aLog.String(), "served key authentication certificate", "server_name=xmpp.guard.test"); n != 0 {
		t.Errorf("replica A answered %d validations of xmpp.guard.test itself; Pebble should only reach B on 443", n)
	}
	challengesB := closedACME(t, ns, bAdmin)
	challengesA := closedACME(t, ns, aAdmin)
	if challengesB == 0 || challengesA != 0 {
		t.Errorf("acme_challenge connections: A %v, B %v; want only B", challengesA, challengesB)
	}
	waitedB2 := lines(bLog.String(), "certificate already exists in storage", "identifier=xmpp.guard.test") == 1
	t.Logf("phase 2: pebble issued %d certificate(s) in all; B answered %d tls-alpn-01 validation(s) for xmpp.guard.test from the storage "+
		"(acme_challenge closes: A %v, B %v); B waited on A's lock and then loaded: %v",
		p.issued(), answered, challengesA, challengesB, waitedB2)

	serialA = serve(t, ns, aListen, "xmpp.guard.test", root)
	serialB = serve(t, ns, bListen, "xmpp.guard.test", root)
	if serialA != serialB {
		t.Fatalf("xmpp.guard.test: A serves serial %s, B serves %s: two certificates", serialA, serialB)
	}
	t.Logf("phase 2: A and B serve xmpp.guard.test serial %s; %s in all", serialA, time.Since(start).Round(100*time.Millisecond))
}

// http-01 is different: Guard's http-01 solver listens on http_address only while that process
// has a challenge of its own pending, so a replica that did not start the order has nothing
// there to answer with, shared storage or not. Pebble's port 80 is a forwarder, the "load
// balancer", pointed first at A (which orders and answers guard.test itself), then at B while
// A orders xmpp.guard.test: the validation finds nothing listening behind B, the order fails,
// and A's reload is rejected (A keeps serving what it had).
func TestACMEReplicasHTTP01NeedsTheOrderingReplica(t *testing.T) {
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (Debian package pebble): %v", bin, err)
			}
			t.Skipf("%s not installed (apt-get install pebble): %v", bin, err)
		}
	}
	ns := newNetns(t)
	dir := t.TempDir()
	p := startPebbleIn(t, ns, dir)
	storage := filepath.Join(dir, "shared-storage")
	lb := ns.forward(t, "127.0.0.1:80")

	ra := replica{listen: "127.0.0.1:5223", admin: "127.0.0.1:9090", storage: storage, challenge: "http-01", httpAddress: "127.0.0.1:8080"}
	rb := replica{listen: "127.0.0.1:5224", admin: "127.0.0.1:9091", storage: storage, challenge: "http-01", httpAddress: "127.0.0.1:8081"}
	aCfg := filepath.Join(dir, "a.hcl")
	bCfg := filepath.Join(dir, "b.hcl")
	ra.writeConfig(t, aCfg, p, "guard.test")
	rb.writeConfig(t, bCfg, p, "guard.test")

	lb.to(ra.httpAddress)
	a, aLog := startIn(t, ns, "replica A", guardBin, "-config", aCfg)
	waitLine(t, "replica A", aLog, 30*time.Second, "guard started")
	_, bLog := startIn(t, ns, "replica B", guardBin, "-config", bCfg)
	waitLine(t, "replica B", bLog, 30*time.Second, "guard started")
	if n := p.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates, want 1", n)
	}
	if n := lines(bLog.String(), "obtaining certificate"); n != 0 {
		t.Errorf("replica B ordered %d certificates; it should have loaded A's from the storage", n)
	}
	root := p.root(t)
	if sa, sb := serve(t, ns, ra.listen, "guard.test", root), serve(t, ns, rb.listen, "guard.test", root); sa != sb {
		t.Fatalf("guard.test: A serves serial %s, B serves %s", sa, sb)
	}

	lb.to(rb.httpAddress)
	ra.writeConfig(t, aCfg, p, "guard.test", "xmpp.guard.test")
	if err := a.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, "replica A", aLog, 30*time.Second, "reload rejected")
	if n := p.issued(); n != 1 {
		t.Errorf("pebble issued %d certificates, want still 1", n)
	}
	if n := lines(bLog.String(), "served key authentication"); n != 0 {
		t.Errorf("replica B answered %d http-01 validations; it has no solver listening", n)
	}
	refused := lb.refused.Load()
	if refused == 0 {
		t.Error("no validation reached the forwarder to B")
	}
	// A still serves guard.test from its running configuration.
	serve(t, ns, ra.listen, "guard.test", root)
	t.Logf("http-01: pebble issued %d certificate(s); %d validation connection(s) to B found nothing on %s; A's reload was rejected",
		p.issued(), refused, rb.httpAddress)
}

// forwarder is a TCP forwarder in the namespace, a stand-in for a load balancer: each
// connection goes to the target set last; one the target refuses is counted and closed.
type forwarder struct {
	ns      *testNetns
	target  atomic.Pointer[string]
	refused atomic.Int64
}

func (f *forwarder) to(addr string) { f.target.Store(&addr) }

func (ns *testNetns) forward(t *testing.T, addr string) *forwarder {
	t.Helper()
	var ln net.Listener
	var err error
	if nsErr := ns.do(func() { ln, err = net.Listen("tcp", addr) }); nsErr != nil {
		t.Fatal(nsErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ns: ns}
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
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				up, err := ns.dialContext(ctx, "tcp", *f.target.Load())
				if err != nil {
					f.refused.Add(1)
					return
				}
				defer up.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				up.SetDeadline(time.Now().Add(10 * time.Second))
				go func() {
					io.Copy(up, c)
					up.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, up)
			})
		}
	})
	return f
}

// replica is where one Guard replica listens and how it answers challenges.
type replica struct {
	listen, admin string
	storage       string
	challenge     string // "tls-alpn-01" or "http-01"
	httpAddress   string // the http-01 solver's address, with "http-01"
}

// writeConfig writes the replica's configuration: a Direct TLS listener whose certificates come
// from the acme block, against Pebble, with the shared storage.
func (r replica) writeConfig(t *testing.T, path string, p *nsPebble, domains ...string) {
	t.Helper()
	quoted, _ := json.Marshal(domains)
	httpAddress := ""
	if r.httpAddress != "" {
		httpAddress = fmt.Sprintf("http_address  = %q", r.httpAddress)
	}
	cfg := fmt.Sprintf(`
log {
  level = "info"
}
admin {
  address = %q
}
listener "xmpps" {
  address = %q
  backend = "xmpp"
  tls {
    mode = "direct"
  }
}
backend "xmpp" {
  address = "127.0.0.1:5262"
}
acme {
  ca            = %q
  email         = "admin@guard.test"
  domains       = %s
  storage       = %q
  trusted_roots = %q
  challenges    = [%q]
  %s
}
`, r.admin, r.listen, p.dir, quoted, r.storage, p.caFile, r.challenge, httpAddress)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serve makes a Direct TLS handshake with the listener at addr for name, verifies the chain
// against Pebble's root, and returns the leaf's serial number.
func serve(t *testing.T, ns *testNetns, addr, name string, root *x509.Certificate) string {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(root)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := ns.dialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"xmpp-client"}})
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS handshake with %s for %s: %v", addr, name, err)
	}
	leaf := c.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname(name); err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Text(16)
}

// closedACME is guard_connections_closed_total{reason="acme_challenge"} on an admin endpoint.
func closedACME(t *testing.T, ns *testNetns, admin string) float64 {
	t.Helper()
	resp, err := ns.httpClient(nil).Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	if f := families["guard_connections_closed_total"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "reason" && l.GetValue() == "acme_challenge" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// lines counts the lines of log that hold every one of subs.
func lines(log string, subs ...string) int {
	n := 0
next:
	for _, l := range strings.Split(log, "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// waitLine waits until a line of buf holds every one of subs.
func waitLine(t *testing.T, who string, buf *syncBuffer, timeout time.Duration, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for lines(buf.String(), subs...) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line with %q after %s; output:\n%s", who, subs, timeout, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testNetns is a network namespace of the test's own with only a loopback interface (as in
// proxy/deadpeer_test.go): processes run in it with ip netns exec, and the test's own sockets
// are made on a thread switched into it.
type testNetns struct {
	name string
}

func newNetns(t *testing.T) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to create a network namespace, and CI runs as root")
		}
		t.Skip("needs root to create a network namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs ip from iproute2 (apt-get install -y iproute2)")
	}
	ns := &testNetns{name: fmt.Sprintf("guardacme-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
	if out, err := exec.Command("ip", "-n", ns.name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	return ns
}

// do runs fn on an OS thread switched into the namespace, so that the sockets fn makes live
// there (a socket keeps its namespace for life). The thread is never unlocked: it ends with its
// goroutine, so nothing else ever runs in the namespace.
func (ns *testNetns) do(fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns.name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	return <-errc
}

// dialContext connects from inside the namespace.
func (ns *testNetns) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if nsErr := ns.do(func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) }); nsErr != nil {
		return nil, nsErr
	}
	return c, err
}

// httpClient is an HTTP client whose connections are made in the namespace.
func (ns *testNetns) httpClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:       ns.dialContext,
		TLSClientConfig:   tc,
		DisableKeepAlives: true,
	}}
}

// startIn runs a command in the namespace (ip netns exec execs it: the PID is the command's),
// with its output collected; it is killed, by its PID, when the test ends.
func startIn(t *testing.T, ns *testNetns, who, name string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", who, out.String())
		}
	})
	return cmd, out
}

// nsPebble is Pebble running in the namespace.
type nsPebble struct {
	dir    string // directory URL
	mgmt   string // management base URL
	caFile string // PEM of the CA of Pebble's own HTTPS endpoints
	client *http.Client
	out    *syncBuffer
}

// startPebbleIn runs pebble-challtestsrv as the DNS server (every A query answered with
// 127.0.0.1, no AAAA) and Pebble with it, validating tls-alpn-01 on port 443.
func startPebbleIn(t *testing.T, ns *testNetns, dir string) *nsPebble {
	t.Helper()
	caKey, ca := selfCA(t)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "pebble"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	p := &nsPebble{caFile: filepath.Join(dir, "pebble-ca.pem")}
	write := func(name string, b []byte) {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	write(filepath.Join(dir, "pebble-cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	write(filepath.Join(dir, "pebble-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER}))
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:14000",
		"managementListenAddress":        "127.0.0.1:15000",
		"certificate":                    filepath.Join(dir, "pebble-cert.pem"),
		"privateKey":                     filepath.Join(dir, "pebble-key.pem"),
		"httpPort":                       80,
		"tlsPort":                        443,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	write(filepath.Join(dir, "pebble.json"), conf)

	startIn(t, ns, "pebble-challtestsrv", "pebble-challtestsrv",
		"-dns01", "127.0.0.1:8053", "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", "127.0.0.1:8055", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	cmd := exec.Command("ip", "netns", "exec", ns.name, "pebble", "-config", filepath.Join(dir, "pebble.json"), "-dnsserver", "127.0.0.1:8053")
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated again
	)
	p.out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", p.out.String())
		}
	})

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	p.client = ns.httpClient(&tls.Config{RootCAs: roots})
	p.dir = "https://127.0.0.1:14000/dir"
	p.mgmt = "https://127.0.0.1:15000"
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := p.client.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready after 15s: %v\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// issued counts the certificates Pebble has issued (its log line for each).
func (p *nsPebble) issued() int {
	return lines(p.out.String(), "Issued certificate serial")
}

// root fetches the root that signs Pebble's certificates (a new one every run).
func (p *nsPebble) root(t *testing.T) *x509.Certificate {
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
	blk, _ := pem.Decode(body)
	if blk == nil {
		t.Fatalf("pebble root: no PEM in %q", body)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func selfCA(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "guard test CA for pebble"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}
