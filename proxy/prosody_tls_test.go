package proxy

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/slixtest"
)

// Integration: Guard terminates TLS (STARTTLS and Direct TLS) in front of a
// real, plaintext Prosody; slixmpp and a hand-driven Go TLS client log in
// through it.

// writeCAFile writes the (self-signed) certificate of a listener made by
// tlsListener as PEM, for clients that trust a root from a file.
func writeCAFile(t *testing.T, ltls TLS) string {
	t.Helper()
	if ltls.Config == nil || len(ltls.Config.Certificates) == 0 {
		t.Fatal("listener TLS config has no certificate")
	}
	der := ltls.Config.Certificates[0].Certificate[0]
	path := filepath.Join(t.TempDir(), "guard-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// slixmppTLS logs slixmpp in through a TLS listener of Guard (mode) in front
// of Prosody and checks the echo, the TLS version, SCRAM and the features.
func slixmppTLS(t *testing.T, mode TLSMode, tlsArg string) {
	leakcheck.Check(t)
	srv := prosodytest.Start(t, prosodytest.Options{})
	ltls, _ := tlsListener(t, mode)
	ca := writeCAFile(t, ltls)
	s, addr := startGuard(t, srv.Addr, ListenerConfig{TLS: ltls})

	r := slixtest.Echo(t, slixtest.Options{Addr: addr, JID: "alice@" + srv.Domain, Password: "alice-pw",
		TLS: tlsArg, CAFile: ca})
	if !r.OK() || !r.Connected || !r.LoggedIn || !r.Echo || r.StreamError != "" {
		t.Fatalf("%v\nstderr:\n%s\nprosody log:\n%s", r, r.Stderr, srv.Log())
	}
	t.Logf("%v", r)
	// Go and OpenSSL 3 both speak TLS 1.3: anything else is a downgrade.
	if r.TLS != "TLSv1.3" {
		t.Errorf("negotiated TLS %q, want TLSv1.3", r.TLS)
	}
	if !strings.HasPrefix(r.Mechanism, "SCRAM-SHA-") || strings.HasSuffix(r.Mechanism, "-PLUS") {
		t.Errorf("SASL mechanism %q, want SCRAM-SHA-1 or SCRAM-SHA-256 (no -PLUS)", r.Mechanism)
	}
	// The features slixmpp saw inside TLS are Prosody's, as Guard rewrote
	// them: SASL, and no <starttls/> (slixmpp would otherwise try it).
	if !contains(r.Features, "mechanisms") || contains(r.Features, "starttls") {
		t.Errorf("features after TLS %q: want mechanisms and no starttls", r.Features)
	}
	if mode == TLSDirect && r.ALPN != "xmpp-client" {
		t.Errorf("ALPN %q, want xmpp-client", r.ALPN)
	}

	// Once more, without trusting Guard's certificate: the handshake must
	// fail, and Prosody never sees a login.
	bad := slixtest.Echo(t, slixtest.Options{Addr: addr, JID: "bob@" + srv.Domain, Password: "bob-pw",
		TLS: tlsArg, Timeout: 5 * time.Second})
	if bad.OK() || bad.LoggedIn || bad.Mechanism != "" {
		t.Errorf("slixmpp logged in without trusting Guard's certificate: %v\nstderr:\n%s", bad, bad.Stderr)
	}
	t.Logf("untrusted: %v", bad)

	waitOpen(t, s, 0)
	waitNoLingering(t, addr, srv.Addr, 3*time.Second)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// (a) slixmpp negotiates STARTTLS with Guard, then SCRAM with Prosody.
func TestProsodySlixmppStartTLS(t *testing.T) { slixmppTLS(t, TLSStartTLS, "starttls") }

// (b) slixmpp connects with Direct TLS (XEP-0368), then SCRAM with Prosody.
func TestProsodySlixmppDirectTLS(t *testing.T) { slixmppTLS(t, TLSDirect, "direct") }

// readFeatures reads a stream header and the stream features that follow it.
func readFeatures(t *testing.T, c net.Conn) (header, features string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(got), "</stream:features>") {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q, %v; want a header and </stream:features>", got, err)
		}
	}
	s := string(got)
	i := strings.Index(s, "<stream:features")
	if i < 0 {
		t.Fatalf("no <stream:features> in %q", s)
	}
	return s[:i], s[i:]
}

// streamHeader matches a stream header and captures its from attribute.
var streamHeader = regexp.MustCompile(`^(?:<\?xml[^>]*\?>)?<stream:stream [^>]*?\bfrom=['"]([^'"]*)['"][^>]*>$`)

// (c) The features a client sees inside Guard's TLS are the backend's,
// rewritten: no <starttls/> (the client already has TLS, with Guard) and
// SASL untouched, -PLUS mechanisms included.
//
// Prosody cannot be made to offer <starttls/> on its plaintext port here:
// internal/prosodytest disables mod_tls and gives it no certificate. So the
// Prosody subtests check what a client sees from a real server (SASL there,
// no starttls, Guard's own TLS underneath), and the scripted backend, which
// offers <starttls><required/></starttls> and SCRAM-SHA-1-PLUS like a
// Prosody with a certificate does, checks the removal byte for byte.
func TestProsodyTLSFeatures(t *testing.T) {
	leakcheck.Check(t)
	// handshake opens a client connection through a listener of mode and
	// returns it after TLS and the client's (re)started header.
	handshake := func(t *testing.T, mode TLSMode, addr string, ctls *tls.Config) *tls.Conn {
		t.Helper()
		raw := dial(t, addr)
		if mode == TLSStartTLS {
			write(t, raw, clientHeader)
			expectGuardStartTLS(t, raw)
			write(t, raw, startTLSCommand)
			expect(t, raw, proceedTLS)
		}
		c := tls.Client(raw, ctls)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Time{})
		st := c.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want TLS 1.3", st.Version)
		}
		if mode == TLSDirect && st.NegotiatedProtocol != "xmpp-client" {
			t.Errorf("ALPN %q, want xmpp-client", st.NegotiatedProtocol)
		}
		write(t, c, clientHeader)
		return c
	}

	for _, tc := range []struct {
		name string
		mode TLSMode
	}{{"starttls", TLSStartTLS}, {"direct", TLSDirect}} {
		t.Run("prosody/"+tc.name, func(t *testing.T) {
			srv := prosodytest.Start(t, prosodytest.Options{})
			// What Prosody offers on its plaintext port, straight.
			direct := dial(t, srv.Addr)
			write(t, direct, clientHeader)
			_, plain := readFeatures(t, direct)
			direct.Close()
			if strings.Contains(plain, "<starttls") {
				t.Logf("Prosody offers STARTTLS on its plaintext port: %q", plain)
			}

			ltls, ctls := tlsListener(t, tc.mode)
			s, addr := startGuard(t, srv.Addr, ListenerConfig{TLS: ltls})
			c := handshake(t, tc.mode, addr, ctls)
			hdr, feats := readFeatures(t, c)
			if m := streamHeader.FindStringSubmatch(hdr); m == nil || m[1] != srv.Domain {
				t.Fatalf("header %q: want Prosody's stream header from %q", hdr, srv.Domain)
			}
			if strings.Contains(feats, "<starttls") {
				t.Errorf("features inside TLS offer STARTTLS again: %q", feats)
			}
			for _, want := range []string{"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>", "<mechanism>SCRAM-SHA-1</mechanism>"} {
				if !strings.Contains(feats, want) {
					t.Errorf("features %q lack %s", feats, want)
				}
			}
			// Apart from a <starttls/>, Guard passes Prosody's features on
			// as they are.
			if want, _ := rewriteFeatures([]byte(plain), 0, len(plain)); feats != string(want) {
				t.Errorf("features through Guard:\n%q\nProsody's plaintext port, rewritten:\n%q", feats, want)
			}
			// The XMPP end: Prosody answers </stream:stream> and closes.
			write(t, c, streamEnd)
			got, err := readAll(t, c, 10*time.Second)
			if err != nil || !strings.HasSuffix(string(got), streamEnd) {
				t.Fatalf("after </stream:stream> read %q, %v; want Prosody's </stream:stream> then EOF", got, err)
			}
			c.Close()
			waitOpen(t, s, 0)
		})
	}

	const (
		prosodyLikeFeatures = "<stream:features>" +
			"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" +
			"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>PLAIN</mechanism></mechanisms>" +
			"</stream:features>"
		prosodyLikeRewritten = "<stream:features>" +
			"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>PLAIN</mechanism></mechanisms>" +
			"</stream:features>"
	)
	for _, tc := range []struct {
		name string
		mode TLSMode
	}{{"starttls", TLSStartTLS}, {"direct", TLSDirect}} {
		t.Run("scripted/"+tc.name, func(t *testing.T) {
			b := newTestBackend(t)
			ltls, ctls := tlsListener(t, tc.mode)
			reg := prometheus.NewRegistry()
			s := New(Options{Logger: testLogger(t), Metrics: NewMetrics(reg)})
			cfg := ListenerConfig{Name: "test", Address: "127.0.0.1:0", TLS: ltls}
			cfg.Backend.Name, cfg.Backend.Address = "b", b.addr()
			laddr, err := s.Listen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			c := handshake(t, tc.mode, laddr.String(), ctls)
			bc := b.accept(t)
			expect(t, bc, clientHeader)
			write(t, bc, backendHeader+prosodyLikeFeatures)
			expect(t, c, backendHeader+prosodyLikeRewritten)
			if n := counterSum(t, reg, "guard_backend_channel_binding_offered_total"); n != 1 {
				t.Errorf("guard_backend_channel_binding_offered_total = %v, want 1", n)
			}
			write(t, c, streamEnd)
			expect(t, bc, streamEnd)
			write(t, bc, streamEnd)
			bc.Close()
			expectEOF(t, c, streamEnd)
			c.Close()
			waitOpen(t, s, 0)
		})
	}
}

// counterSum adds up the counters of the family name in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
