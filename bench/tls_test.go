package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The TLS benchmarks: Guard (listener tls mode "direct") and HAProxy (bind
// ... ssl, mode tcp) terminate Direct TLS (XEP-0368) in front of the same
// sink backend, in the same run, interleaved. The clients are crypto/tls in
// the benchmark process.
//
// Settings (environment):
//
//	GUARD_BENCH_TLS_DURATION      how long each proxy is driven per scenario (default 5s)
//	GUARD_BENCH_TLS_WORKERS       concurrent handshaking clients (default 8)
//	GUARD_BENCH_TLS_GROUPS        "x25519" (default: X25519 then P-256, so that both
//	                              proxies do the same key exchange) or "go" (crypto/tls's default preferences,
//	                              with which Guard negotiates X25519MLKEM768 and
//	                              HAProxy's OpenSSL 3.0 X25519)
//	GUARD_BENCH_TLS_STREAM=1      after each handshake, open an XMPP stream (client
//	                              header → sink header) before closing, so that
//	                              both proxies also connect to the backend
//	GUARD_BENCH_IDLE_TLS_STREAMS  streams held by BenchmarkIdleTLSStreamRSS (default 9000)
//	GUARD_BENCH_SMOKE=1           as -short: 1s per proxy, 100 idle streams

// tlsSettings is the size and shape of one TLS benchmark run.
type tlsSettings struct {
	Duration   string `json:"duration_per_proxy"`
	Workers    int    `json:"workers"`
	Groups     string `json:"client_groups"`
	Stream     bool   `json:"stream_per_connection"`
	Smoke      bool   `json:"smoke"`
	GoVersion  string `json:"go"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUs       int    `json:"cpus"`
	HAProxy    string `json:"haproxy,omitempty"`
	duration   time.Duration
}

func tlsSmoke() bool { return testing.Short() || os.Getenv("GUARD_BENCH_SMOKE") == "1" }

func tlsSettingsFromEnv() tlsSettings {
	s := tlsSettings{
		duration:   5 * time.Second,
		Workers:    envInt("GUARD_BENCH_TLS_WORKERS", 8),
		Groups:     "x25519",
		Stream:     os.Getenv("GUARD_BENCH_TLS_STREAM") == "1",
		Smoke:      tlsSmoke(),
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUs:       runtime.NumCPU(),
	}
	if d, err := time.ParseDuration(os.Getenv("GUARD_BENCH_TLS_DURATION")); err == nil && d > 0 {
		s.duration = d
	}
	if s.Smoke {
		s.duration = time.Second
	}
	if os.Getenv("GUARD_BENCH_TLS_GROUPS") == "go" {
		s.Groups = "go"
	}
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		s.HAProxy, _, _ = strings.Cut(string(out), "\n")
	}
	s.Duration = s.duration.String()
	return s
}

// tlsCert is one server certificate on disk, in the shapes both proxies
// want, and the pool a client trusts it with.
type tlsCert struct {
	name     string // "ecdsa" or "rsa"
	certFile string // the certificate (PEM)
	keyFile  string // the key (PEM, PKCS #8)
	bothFile string // certificate and key in one PEM, for HAProxy's crt
	pool     *x509.CertPool
}

// newTLSCert writes a self-signed certificate for localhost and 127.0.0.1
// with a P-256 ("ecdsa") or RSA-2048 ("rsa") key into dir.
func newTLSCert(b testing.TB, dir, kind string) *tlsCert {
	var (
		key  any
		pub  any
		ku   = x509.KeyUsageDigitalSignature
		errK error
	)
	switch kind {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, pub, errK = k, &k.PublicKey, err
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		key, pub, errK = k, &k.PublicKey, err
		ku |= x509.KeyUsageKeyEncipherment
	default:
		b.Fatalf("unknown key type %q", kind)
	}
	if errK != nil {
		b.Fatal(errK)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     ku,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		b.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	c := &tlsCert{
		name:     kind,
		certFile: filepath.Join(dir, kind+"-cert.pem"),
		keyFile:  filepath.Join(dir, kind+"-key.pem"),
		bothFile: filepath.Join(dir, kind+".pem"),
		pool:     x509.NewCertPool(),
	}
	for path, data := range map[string][]byte{
		c.certFile: certPEM,
		c.keyFile:  keyPEM,
		c.bothFile: slices.Concat(certPEM, keyPEM),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	c.pool.AddCert(leaf)
	return c
}

// clientConfig is the clients' configuration against c: verified, SNI
// localhost, ALPN xmpp-client (XEP-0368), at most version maxVersion.
func (c *tlsCert) clientConfig(s tlsSettings, maxVersion uint16, cache tls.ClientSessionCache) *tls.Config {
	cfg := &tls.Config{
		ServerName:         "localhost",
		RootCAs:            c.pool,
		NextProtos:         []string{"xmpp-client"},
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         maxVersion,
		ClientSessionCache: cache,
	}
	if s.Groups == "x25519" {
		// X25519 is the key exchange; P-256 is listed because in TLS 1.2
		// supported_groups also says which ECDSA certificates the client
		// accepts (a server with a P-256 certificate refuses a client
		// without it), and no key share is sent for it.
		cfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	return cfg
}

// tlsProxy is one TLS-terminating system under test.
type tlsProxy struct {
	name  string
	start func(b testing.TB, backend string, c *tlsCert) (addr string, pid int, stop func())
}

func tlsProxies(b testing.TB) []tlsProxy {
	ps := []tlsProxy{{"guard", startGuardTLS}}
	if haveHAProxy(b) {
		ps = append(ps, tlsProxy{"haproxy", startHAProxyTLS})
	} else {
		b.Logf("haproxy not installed (apt-get install -y haproxy): measuring Guard only")
	}
	return ps
}

// startGuardTLS starts Guard with a Direct TLS listener.
func startGuardTLS(b testing.TB, backend string, c *tlsCert) (string, int, func()) {
	return startGuardWith(b, backend, fmt.Sprintf(`  tls {
    mode      = "direct"
    cert_file = %q
    key_file  = %q
  }
`, c.certFile, c.keyFile), "")
}

// startHAProxyTLS starts HAProxy terminating TLS in mode tcp, configured as
// BenchmarkIdleStreamRSS's HAProxy plus ssl on the bind line: TLS 1.2 and
// up, the default session cache (tune.ssl.cachesize) and session tickets
// (on unless no-tls-tickets), ALPN xmpp-client as Guard offers it.
func startHAProxyTLS(b testing.TB, backend string, c *tlsCert) (string, int, func()) {
	addr := freePort(b)
	cfg := fmt.Sprintf(`
global
  maxconn 9800
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode tcp
  maxconn 9800
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout client-fin 5s
  timeout server-fin 5s
  timeout queue 10s
frontend xmpp
  bind %s ssl crt %s alpn xmpp-client
  default_backend sink
backend sink
  server s1 %s maxconn 9800
`, addr, c.bothFile, backend)
	return runHAProxy(b, addr, cfg)
}

// procCPU returns the user+system CPU time process pid has used, threads
// included, from /proc/PID/stat (in clock ticks of 1/100 s).
func procCPU(b testing.TB, pid int) time.Duration {
	u, s := procCPUSplit(b, pid)
	return u + s
}

// procCPUSplit is procCPU as user and system time.
func procCPUSplit(b testing.TB, pid int) (user, sys time.Duration) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	const clockTicks = 100 // USER_HZ, fixed at 100 for /proc on Linux
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks
}

// tlsRun is what one proxy did in one scenario (summed over iterations).
type tlsRun struct {
	Proxy   string `json:"proxy"`
	Cert    string `json:"cert"`
	Version string `json:"tls_version"`
	Kind    string `json:"kind"` // "full" or "resumed"

	Seconds         float64 `json:"seconds"`
	Handshakes      int     `json:"handshakes"`
	Resumed         int     `json:"resumed"`
	NotResumed      int     `json:"not_resumed"`
	ResumedFraction float64 `json:"resumed_fraction"`
	// PerSecond counts the handshakes of the scenario's kind: every
	// handshake for "full", the resumed ones for "resumed".
	PerSecond float64 `json:"handshakes_per_s"`
	P50Ms     float64 `json:"latency_p50_ms"`
	P99Ms     float64 `json:"latency_p99_ms"`
	// ProxyCPUSeconds is the proxy's utime+stime over the run; per
	// handshake, in microseconds, in ProxyCPUMicros.
	ProxyCPUSeconds  float64  `json:"proxy_cpu_s"`
	ProxySysSeconds  float64  `json:"proxy_cpu_system_s"` // the kernel's share of ProxyCPUSeconds
	ProxyCPUMicros   float64  `json:"proxy_cpu_us_per_handshake"`
	ClientCPUSeconds float64  `json:"client_cpu_s"`
	Errors           int      `json:"errors"`
	ErrorSamples     []string `json:"error_samples,omitempty"`
	Group            string   `json:"group,omitempty"`
	CipherSuite      string   `json:"cipher_suite,omitempty"`
	ALPN             string   `json:"alpn,omitempty"`

	latencies []time.Duration
}

func (r *tlsRun) add(u *tlsRun) {
	r.Seconds += u.Seconds
	r.Handshakes += u.Handshakes
	r.Resumed += u.Resumed
	r.NotResumed += u.NotResumed
	r.ProxyCPUSeconds += u.ProxyCPUSeconds
	r.ProxySysSeconds += u.ProxySysSeconds
	r.ClientCPUSeconds += u.ClientCPUSeconds
	r.Errors += u.Errors
	for _, s := range u.ErrorSamples {
		if len(r.ErrorSamples) < 5 {
			r.ErrorSamples = append(r.ErrorSamples, s)
		}
	}
	r.Group, r.CipherSuite, r.ALPN = u.Group, u.CipherSuite, u.ALPN
	r.latencies = append(r.latencies, u.latencies...)
	r.finish()
}

// finish computes the derived figures.
func (r *tlsRun) finish() {
	if r.Handshakes > 0 {
		r.ResumedFraction = float64(r.Resumed) / float64(r.Handshakes)
		r.ProxyCPUMicros = r.ProxyCPUSeconds * 1e6 / float64(r.Handshakes)
	}
	n := r.Handshakes
	if r.Kind == "resumed" {
		n = r.Resumed
	}
	if r.Seconds > 0 {
		r.PerSecond = float64(n) / r.Seconds
	}
	if len(r.latencies) > 0 {
		slices.Sort(r.latencies)
		pct := func(p float64) float64 {
			i := min(len(r.latencies)-1, int(p*float64(len(r.latencies))))
			return float64(r.latencies[i].Microseconds()) / 1000
		}
		r.P50Ms, r.P99Ms = pct(0.50), pct(0.99)
	}
}

// tlsVersions are the client's maximum versions, by name.
var tlsVersions = []struct {
	name string
	max  uint16
}{{"tls1.3", tls.VersionTLS13}, {"tls1.2", tls.VersionTLS12}}

// BenchmarkTLSHandshakes drives Direct TLS handshakes through Guard and
// HAProxy, for an ECDSA P-256 and an RSA-2048 certificate, TLS 1.3 and 1.2:
// full handshakes (no session cache) and resumed ones (a shared session
// cache primed by one full handshake; session tickets). Each handshake is on
// a new connection, closed right after it (with GUARD_BENCH_TLS_STREAM=1,
// after an XMPP stream is opened through it). The figure to compare on a
// small box, where the clients compete for the CPU, is the proxy's CPU time
// per handshake. Results go to results/tls.json (tls-smoke.json in smoke
// mode), under "handshakes".
func BenchmarkTLSHandshakes(b *testing.B) {
	s := tlsSettingsFromEnv()
	dir := b.TempDir()
	certs := []*tlsCert{newTLSCert(b, dir, "ecdsa"), newTLSCert(b, dir, "rsa")}
	sink := startSink(b)
	ps := tlsProxies(b)
	var all []*tlsRun
	for _, c := range certs {
		for _, v := range tlsVersions {
			b.Run(c.name+"-"+v.name, func(b *testing.B) {
				runs := benchTLSHandshakes(b, s, ps, sink, c, v.name, v.max)
				all = slices.DeleteFunc(all, func(r *tlsRun) bool { return r.Cert == c.name && r.Version == v.name })
				all = append(all, runs...)
			})
		}
	}
	writeTLSResults(b, s.Smoke, "handshakes", struct {
		Benchmark string      `json:"benchmark"`
		Date      string      `json:"date"`
		Settings  tlsSettings `json:"settings"`
		Runs      []*tlsRun   `json:"runs"`
	}{"BenchmarkTLSHandshakes", time.Now().UTC().Format(time.RFC3339), s, all})

	// Behaviour, never timing.
	for _, r := range all {
		if r.Handshakes == 0 {
			b.Errorf("%s %s %s %s: no handshake completed (errors: %q)", r.Proxy, r.Cert, r.Version, r.Kind, r.ErrorSamples)
		}
		if r.Proxy == "guard" && r.Kind == "resumed" && r.Resumed == 0 {
			b.Errorf("guard %s %s: no handshake resumed", r.Cert, r.Version)
		}
	}
}

// benchTLSHandshakes runs one certificate and TLS version: b.N rounds, each
// of the full then the resumed scenario, each through every proxy in
// rotating order. It reports the metrics and returns the runs.
func benchTLSHandshakes(b *testing.B, s tlsSettings, ps []tlsProxy, sink string, c *tlsCert, version string, maxVersion uint16) []*tlsRun {
	type running struct {
		addr string
		pid  int
	}
	rs := make([]running, len(ps))
	for i, p := range ps {
		addr, pid, stop := p.start(b, sink, c)
		defer stop()
		rs[i] = running{addr, pid}
	}
	kinds := []string{"full", "resumed"}
	totals := map[string]*tlsRun{}
	for i := 0; i < b.N; i++ {
		for k, kind := range kinds {
			for j := range ps {
				x := (i + k + j) % len(ps)
				r := driveTLS(b, s, rs[x].addr, rs[x].pid, c, maxVersion, kind == "resumed")
				r.Proxy, r.Cert, r.Version, r.Kind = ps[x].name, c.name, version, kind
				key := ps[x].name + "/" + kind
				if totals[key] == nil {
					totals[key] = &tlsRun{Proxy: r.Proxy, Cert: r.Cert, Version: r.Version, Kind: r.Kind}
				}
				totals[key].add(r)
			}
		}
	}
	var out []*tlsRun
	for _, kind := range kinds {
		for _, p := range ps {
			r := totals[p.name+"/"+kind]
			out = append(out, r)
			pre := p.name + ":" + kind
			b.ReportMetric(r.PerSecond, p.name+":"+kind+"_hs_per_s")
			b.ReportMetric(r.ProxyCPUMicros, pre+"_cpu_us_per_hs")
			b.ReportMetric(r.P50Ms, pre+"_p50_ms")
			b.ReportMetric(r.P99Ms, pre+"_p99_ms")
			if kind == "resumed" {
				b.ReportMetric(r.ResumedFraction, p.name+":resumed_fraction")
			}
			b.Logf("%-7s %-5s %-6s %-7s %8.0f hs/s  %6.0f µs proxy CPU/hs  p50 %6.2f ms  p99 %6.2f ms  resumed %d/%d  errors %d  %s %s %s",
				p.name, c.name, version, kind, r.PerSecond, r.ProxyCPUMicros, r.P50Ms, r.P99Ms,
				r.Resumed, r.Handshakes, r.Errors, r.Group, r.CipherSuite, r.ALPN)
			if r.Errors > 0 {
				b.Logf("%-7s errors, e.g. %q", p.name, r.ErrorSamples)
			}
		}
		g, h := totals["guard/"+kind], totals["haproxy/"+kind]
		if g != nil && h != nil {
			if h.PerSecond > 0 {
				b.ReportMetric(g.PerSecond/h.PerSecond, "guard/haproxy:"+kind+"_hs_per_s")
			}
			if h.ProxyCPUMicros > 0 {
				b.ReportMetric(g.ProxyCPUMicros/h.ProxyCPUMicros, "guard/haproxy:"+kind+"_cpu_per_hs")
			}
		}
	}
	return out
}

// driveTLS runs s.Workers clients against addr for s.duration, each
// handshaking on a new connection and closing it, in a loop. With resume,
// the clients share a session cache primed by one full handshake.
func driveTLS(b *testing.B, s tlsSettings, addr string, pid int, c *tlsCert, maxVersion uint16, resume bool) *tlsRun {
	var cache tls.ClientSessionCache
	if resume {
		cache = tls.NewLRUClientSessionCache(64)
	}
	cfg := c.clientConfig(s, maxVersion, cache)
	// One connection first, with a stream opened through it: it checks the
	// path end to end, shows what was negotiated, and (TLS 1.3) reads the
	// session tickets that prime the cache.
	st, err := tlsStream(addr, cfg, true)
	if err != nil {
		b.Fatalf("%s: first connection: %v", addr, err)
	}
	r := &tlsRun{
		Group:       st.CurveID.String(),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ALPN:        st.NegotiatedProtocol,
	}
	time.Sleep(100 * time.Millisecond) // let the proxy settle

	type tally struct {
		full, resumed, errors int
		samples               []string
		lat                   []time.Duration
	}
	tallies := make([]tally, s.Workers)
	user0, sys0 := procCPUSplit(b, pid)
	self0 := procCPU(b, os.Getpid())
	start := time.Now()
	end := start.Add(s.duration)
	var wg sync.WaitGroup
	for w := range tallies {
		wg.Go(func() {
			t := &tallies[w]
			for time.Now().Before(end) {
				d, resumed, err := tlsHandshakeOnce(addr, cfg, s.Stream)
				if err != nil {
					t.errors++
					if len(t.samples) < 2 {
						t.samples = append(t.samples, err.Error())
					}
					time.Sleep(time.Millisecond)
					continue
				}
				t.lat = append(t.lat, d)
				if resumed {
					t.resumed++
				} else {
					t.full++
				}
			}
		})
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	user1, sys1 := procCPUSplit(b, pid)
	r.ProxyCPUSeconds = (user1 + sys1 - user0 - sys0).Seconds()
	r.ProxySysSeconds = (sys1 - sys0).Seconds()
	r.ClientCPUSeconds = (procCPU(b, os.Getpid()) - self0).Seconds()
	for _, t := range tallies {
		r.Handshakes += t.full + t.resumed
		r.Resumed += t.resumed
		r.NotResumed += t.full
		r.Errors += t.errors
		for _, e := range t.samples {
			if len(r.ErrorSamples) < 5 {
				r.ErrorSamples = append(r.ErrorSamples, e)
			}
		}
		r.latencies = append(r.latencies, t.lat...)
	}
	r.finish()
	return r
}

// tlsHandshakeOnce dials addr, handshakes, optionally opens a stream, and
// closes. It returns the handshake's duration (from the TCP connection
// to the end of the client's handshake) and whether it resumed a session.
func tlsHandshakeOnce(addr string, cfg *tls.Config, stream bool) (time.Duration, bool, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, false, err
	}
	tc := tls.Client(raw, cfg)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if err := tc.Handshake(); err != nil {
		return 0, false, fmt.Errorf("handshake: %w", err)
	}
	d := time.Since(start)
	resumed := tc.ConnectionState().DidResume
	if stream {
		if err := openTLSStream(tc); err != nil {
			return 0, false, err
		}
	}
	return d, resumed, nil
}

// tlsStream opens one TLS connection with a stream through it and returns
// the connection's state; with closeIt, it closes the connection.
func tlsStream(addr string, cfg *tls.Config, closeIt bool) (tls.ConnectionState, error) {
	tc, err := dialTLSStream(addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	st := tc.ConnectionState()
	if closeIt {
		tc.Close()
	}
	return st, nil
}

// dialTLSStream dials addr, handshakes and opens an XMPP stream (client
// header → sink header) inside TLS.
func dialTLSStream(addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := openTLSStream(tc); err != nil {
		tc.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

func openTLSStream(tc *tls.Conn) error {
	if _, err := io.WriteString(tc, clientHeader); err != nil {
		return fmt.Errorf("sending the header: %w", err)
	}
	buf := make([]byte, len(sinkHeader))
	if _, err := io.ReadFull(tc, buf); err != nil {
		return fmt.Errorf("reading the sink's header: %w", err)
	}
	return nil
}

// idleTLSStreams is how many streams BenchmarkIdleTLSStreamRSS holds: the
// clients are in this process, which may hold 20,000 descriptors.
var idleTLSStreams = envInt("GUARD_BENCH_IDLE_TLS_STREAMS", 9000)

// idleTLSResult is one proxy's figure in BenchmarkIdleTLSStreamRSS.
type idleTLSResult struct {
	Proxy          string  `json:"proxy"`
	Streams        int     `json:"streams"`
	BaseRSS        int64   `json:"base_rss_bytes"`
	RSS            int64   `json:"rss_bytes"`
	BytesPerStream float64 `json:"bytes_per_stream"`
	OpenSeconds    float64 `json:"open_seconds"`
	ProxyCPUMicros float64 `json:"proxy_cpu_us_per_stream_open"`
}

// BenchmarkIdleTLSStreamRSS is BenchmarkIdleStreamRSS over Direct TLS: each
// stream is a full TLS handshake (ECDSA P-256) through the proxy and an XMPP
// stream opened inside it (client header → sink header), then held idle.
// It reports the proxy's resident memory per stream. Results go to
// results/tls.json (tls-smoke.json in smoke mode), under "idle_streams".
func BenchmarkIdleTLSStreamRSS(b *testing.B) {
	s := tlsSettingsFromEnv()
	n := idleTLSStreams
	if s.Smoke {
		n = 100 // smoke: the machinery, not the figure
	}
	if n+500 > 20000 {
		b.Fatalf("GUARD_BENCH_IDLE_TLS_STREAMS=%d: the clients are in this process, which may hold 20,000 descriptors", n)
	}
	c := newTLSCert(b, b.TempDir(), "ecdsa")
	sink := startSink(b)
	var results []idleTLSResult
	for _, p := range tlsProxies(b) {
		b.Run(p.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := measureIdleTLS(b, s, p, sink, c, n)
				b.ReportMetric(r.BytesPerStream, "B/stream")
				b.ReportMetric(float64(r.RSS)/(1<<20), "MiB-rss")
				b.ReportMetric(r.ProxyCPUMicros, "cpu_us/stream_open")
				results = slices.DeleteFunc(results, func(x idleTLSResult) bool { return x.Proxy == p.name })
				results = append(results, r)
			}
		})
	}
	writeTLSResults(b, s.Smoke, "idle_streams", struct {
		Benchmark string          `json:"benchmark"`
		Date      string          `json:"date"`
		Smoke     bool            `json:"smoke"`
		Cert      string          `json:"cert"`
		Groups    string          `json:"client_groups"`
		Results   []idleTLSResult `json:"results"`
	}{"BenchmarkIdleTLSStreamRSS", time.Now().UTC().Format(time.RFC3339), s.Smoke, c.name, s.Groups, results})
}

func measureIdleTLS(b *testing.B, s tlsSettings, p tlsProxy, sink string, c *tlsCert, n int) idleTLSResult {
	addr, pid, stop := p.start(b, sink, c)
	defer stop()
	cfg := c.clientConfig(s, tls.VersionTLS13, nil)
	// Warm up with one stream so that the baseline includes fixed costs
	// (the TLS stack, the certificate loaded).
	warm := openTLSStreams(b, addr, cfg, 1)
	time.Sleep(200 * time.Millisecond)
	base := rss(b, pid)
	cpu0 := procCPU(b, pid)
	start := time.Now()
	conns := openTLSStreams(b, addr, cfg, n)
	open := time.Since(start)
	cpu := procCPU(b, pid) - cpu0
	time.Sleep(time.Second)
	after := rss(b, pid)
	var wg sync.WaitGroup
	all := append(conns, warm...)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(all); i += 16 {
				all[i].Close()
			}
		})
	}
	wg.Wait()
	// Let the proxy see the closes before it is stopped: Guard signalled
	// at once, while its sessions are ending, does not exit within
	// startProcess's 10s grace and is killed (BenchmarkIdleStreamRSS
	// shows it too); 500ms is ample.
	time.Sleep(500 * time.Millisecond)
	return idleTLSResult{
		Proxy:          p.name,
		Streams:        n,
		BaseRSS:        base,
		RSS:            after,
		BytesPerStream: float64(after-base) / float64(n),
		OpenSeconds:    open.Seconds(),
		ProxyCPUMicros: float64(cpu.Microseconds()) / float64(n),
	}
}

// openTLSStreams opens n streams over TLS through addr, 32 at a time.
func openTLSStreams(b *testing.B, addr string, cfg *tls.Config, n int) []*tls.Conn {
	conns := make([]*tls.Conn, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				tc, err := dialTLSStream(addr, cfg)
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				conns[i] = tc
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		b.Fatal(err)
	}
	return conns
}

// writeTLSResults stores section under key in results/tls.json (or
// tls-smoke.json), keeping the other benchmark's section.
func writeTLSResults(b *testing.B, smoke bool, key string, section any) {
	doc := map[string]json.RawMessage{}
	if !readResultsFile("tls", smoke, &doc) {
		doc = map[string]json.RawMessage{}
	}
	data, err := json.Marshal(section)
	if err != nil {
		b.Fatal(err)
	}
	doc[key] = data
	writeResults(b, "tls", smoke, doc)
}
