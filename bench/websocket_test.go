package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/wsclient"
)

// The WebSocket benchmark (RFC 7395): web clients through Guard's
// WebSocket listener, which speaks plain c2s to Prosody's c2s port, against
// HAProxy (mode http, the upgrade passed through) in front of Prosody's own
// WebSocket endpoint (mod_websocket), and a direct connection to that
// endpoint as the baseline. One Prosody serves all three, in the same run.
//
//  1. Idle streams: per peer, N streams upgraded and opened (<open/>
//     answered with Prosody's features), held idle; the proxy's RSS growth
//     over its baseline (one warm-up stream) divided by N. Prosody's own
//     growth is recorded too (for direct it is the only figure). The peers
//     run one after the other; every stream is closed before the next.
//  2. Round trips: per peer, a few clients logged in over WebSocket (SASL
//     PLAIN, a bound resource) each send a message to their own full JID
//     and wait for it back, in a closed loop; the proxy's CPU time
//     (utime+stime, /proc/PID/stat) per 1,000 round trips, and p50/p99.
//     The peers alternate in slices, so drift of the machine hits them
//     alike.
//
// Settings (environment):
//
//	GUARD_BENCH_WS_STREAMS      idle streams per peer (default and most: 4000)
//	GUARD_BENCH_WS_CLIENTS      round-trip clients per peer (default 4: more
//	                            saturate Prosody, one Lua thread, and the
//	                            latencies measure its queue)
//	GUARD_BENCH_WS_ROUND_TRIPS  round trips per peer (default 20000)
//	GUARD_BENCH_SMOKE=1         as -short: 50 streams, 3 clients, 300 round trips
//
// Results go to results/websocket.json (websocket-smoke.json in smoke mode).
// Pass or fail is decided on behaviour only: every stream opened and still
// open (no data, no EOF, no reset) when measured, every round trip answered,
// every round-trip client's stream ended with <close/>, a Close frame and a
// FIN.

const (
	wsUser     = "bench"
	wsPassword = "bench-pw"
	wsPath     = "/xmpp-websocket"
	wsFraming  = "urn:ietf:params:xml:ns:xmpp-framing"

	wsMaxStreams  = 4000              // a proxy holds two descriptors a stream, of 20,000
	wsOpenTimeout = 120 * time.Second // the opening of one peer's idle streams
	wsReadTimeout = 10 * time.Second  // one frame, during login and each round trip
	wsRTTimeout   = 120 * time.Second // all the round trips of one peer's slice
	wsWorkers     = 32                // streams opened at once
	wsWarmupRTs   = 50                // round trips per client, per peer, discarded
)

type wsSettings struct {
	Streams    int  `json:"idle_streams"`
	Clients    int  `json:"rt_clients"`
	RoundTrips int  `json:"round_trips_per_peer"`
	Slices     int  `json:"slices_per_peer"`
	Smoke      bool `json:"smoke"`
}

func wsSettingsFromEnv(b testing.TB) wsSettings {
	s := wsSettings{
		Streams:    envInt("GUARD_BENCH_WS_STREAMS", 4000),
		Clients:    envInt("GUARD_BENCH_WS_CLIENTS", 4),
		RoundTrips: envInt("GUARD_BENCH_WS_ROUND_TRIPS", 20000),
		Slices:     5,
	}
	if idleSmoke() {
		s = wsSettings{Streams: 50, Clients: 3, RoundTrips: 300, Slices: 2, Smoke: true}
	}
	if s.Streams > wsMaxStreams {
		b.Fatalf("GUARD_BENCH_WS_STREAMS=%d: at most %d (a process may hold 20,000 descriptors)", s.Streams, wsMaxStreams)
	}
	if s.RoundTrips < s.Clients*s.Slices {
		b.Fatalf("GUARD_BENCH_WS_ROUND_TRIPS=%d: at least one per client and slice (%d clients, %d slices)", s.RoundTrips, s.Clients, s.Slices)
	}
	return s
}

// wsPeer is one way to Prosody over WebSocket: the address and path the
// clients upgrade at, and the proxy's PID (0 for direct).
type wsPeer struct {
	name    string
	addr    string
	pid     int
	clients []*wsRTClient
	rt      wsRTResult
	lats    []time.Duration
}

// wsIdleResult is one peer's idle streams. The proxy's figures are 0 for
// direct.
type wsIdleResult struct {
	Peer                  string  `json:"peer"`
	Streams               int     `json:"streams"`
	OpenSeconds           float64 `json:"open_seconds"`
	ProxyBaseRSS          int64   `json:"proxy_baseline_rss_bytes"`
	ProxyRSS              int64   `json:"proxy_rss_bytes"`
	ProxyBytesPerStream   float64 `json:"proxy_bytes_per_stream"`
	ProsodyBaseRSS        int64   `json:"prosody_baseline_rss_bytes"`
	ProsodyRSS            int64   `json:"prosody_rss_bytes"`
	ProsodyBytesPerStream float64 `json:"prosody_bytes_per_stream"`
}

// wsRTResult is one peer's round trips, summed over slices.
type wsRTResult struct {
	Peer                  string  `json:"peer"`
	RoundTrips            int64   `json:"round_trips"`
	Answered              int64   `json:"answered"`
	Seconds               float64 `json:"seconds"`
	ProxyCPUSeconds       float64 `json:"proxy_cpu_seconds"`
	ProxyCPUmsPer1000RT   float64 `json:"proxy_cpu_ms_per_1000_rt"`
	ProsodyCPUSeconds     float64 `json:"prosody_cpu_seconds"`
	ProsodyCPUmsPer1000RT float64 `json:"prosody_cpu_ms_per_1000_rt"`
	P50us                 float64 `json:"p50_us"`
	P90us                 float64 `json:"p90_us"`
	P99us                 float64 `json:"p99_us"`
	Maxus                 float64 `json:"max_us"`
	Meanus                float64 `json:"mean_us"`
	CleanCloses           int     `json:"clean_closes"`
}

// BenchmarkWebSocket compares Guard's WebSocket listener with HAProxy in
// front of Prosody's mod_websocket, and a direct connection to it: RSS per
// idle stream, and proxy CPU and latency per round trip (see above).
func BenchmarkWebSocket(b *testing.B) {
	b.StopTimer()
	s := wsSettingsFromEnv(b)
	srv := prosodytest.Start(b, prosodytest.Options{
		Users:     map[string]string{wsUser: wsPassword},
		LogLevel:  "warn",
		WebSocket: true,
	})
	if srv.HTTPAddr == "" {
		b.Fatal("prosodytest started Prosody without its WebSocket endpoint")
	}
	peers := []*wsPeer{{name: "direct", addr: srv.HTTPAddr}}
	{
		addr, pid, stop := startGuardWS(b, srv.Addr)
		b.Cleanup(stop)
		peers = append(peers, &wsPeer{name: "guard", addr: addr, pid: pid})
	}
	var hapCfg string
	if haveHAProxy(b) {
		addr, pid, cfg, stop := startHAProxyWS(b, srv.HTTPAddr)
		b.Cleanup(stop)
		hapCfg = cfg
		peers = append(peers, &wsPeer{name: "haproxy", addr: addr, pid: pid})
	} else {
		b.Logf("haproxy not installed (apt-get install -y haproxy): measuring Guard and direct only")
	}

	var idle []wsIdleResult
	for i := 0; i < b.N; i++ {
		idle = idle[:0]
		// Rotate the order over iterations; Prosody's heap grows with
		// the first peer's streams, so the first one is not always the same.
		for j := range peers {
			p := peers[(i+j)%len(peers)]
			b.StartTimer()
			idle = append(idle, measureWSIdle(b, s, p, srv.PID))
			b.StopTimer()
		}
	}
	slices.SortFunc(idle, func(x, y wsIdleResult) int { return peerIndex(peers, x.Peer) - peerIndex(peers, y.Peer) })

	// Round trips: log every peer's clients in, warm up, then alternate.
	for _, p := range peers {
		p.clients = dialWSRTClients(b, p, srv.Domain, s.Clients)
	}
	defer func() {
		for _, p := range peers {
			for _, c := range p.clients {
				c.c.Conn.Close()
			}
		}
	}()
	for _, p := range peers {
		runWSSlice(b, p, srv.PID, wsWarmupRTs, false)
	}
	perSlice := s.RoundTrips / (s.Clients * s.Slices)
	for i := 0; i < b.N; i++ {
		for k := 0; k < s.Slices; k++ {
			for j := range peers {
				p := peers[(i*s.Slices+k+j)%len(peers)]
				b.StartTimer()
				runWSSlice(b, p, srv.PID, perSlice, true)
				b.StopTimer()
			}
		}
	}
	// Every client ends its stream: <close/>, then the server's <close/>,
	// a Close frame and a FIN, never a reset.
	for _, p := range peers {
		for _, c := range p.clients {
			if err := c.closeClean(); err != nil {
				b.Errorf("%s %s: closing: %v", p.name, c.jid, err)
			} else {
				p.rt.CleanCloses++
			}
		}
		p.clients = nil
	}

	var rts []wsRTResult
	for _, p := range peers {
		r := p.rt
		r.Peer = p.name
		if st, ok := statsOf(p.lats); ok {
			r.P50us, r.P90us, r.P99us, r.Maxus, r.Meanus = st.p50, st.p90, st.p99, st.max, st.mean
		}
		if r.Answered > 0 {
			r.ProxyCPUmsPer1000RT = r.ProxyCPUSeconds * 1e6 / float64(r.Answered)
			r.ProsodyCPUmsPer1000RT = r.ProsodyCPUSeconds * 1e6 / float64(r.Answered)
		}
		rts = append(rts, r)
		b.ReportMetric(r.P50us, p.name+":p50-us")
		b.ReportMetric(r.P99us, p.name+":p99-us")
		if p.pid != 0 {
			b.ReportMetric(r.ProxyCPUmsPer1000RT, p.name+":cpu-ms/1000rt")
		}
		b.Logf("%-7s %6d round trips in %.1fs: p50 %6.0f µs  p90 %6.0f  p99 %6.0f  max %7.0f | proxy cpu %.1f ms/1000rt, prosody cpu %.1f ms/1000rt",
			p.name, r.Answered, r.Seconds, r.P50us, r.P90us, r.P99us, r.Maxus, r.ProxyCPUmsPer1000RT, r.ProsodyCPUmsPer1000RT)
	}
	for _, r := range idle {
		if r.Peer != "direct" {
			b.ReportMetric(r.ProxyBytesPerStream, r.Peer+":B/stream")
		}
		b.ReportMetric(r.ProsodyBytesPerStream, r.Peer+":prosody-B/stream")
	}

	ratios := map[string]float64{}
	if g, h := wsFind(idle, rts, "guard"), wsFind(idle, rts, "haproxy"); g != nil && h != nil {
		ratio := func(name string, x, y float64) {
			if y > 0 {
				ratios[name] = x / y
				b.ReportMetric(x/y, "guard/haproxy:"+name)
			}
		}
		ratio("idle_bytes_per_stream", g.idle.ProxyBytesPerStream, h.idle.ProxyBytesPerStream)
		ratio("cpu_per_1000_rt", g.rt.ProxyCPUmsPer1000RT, h.rt.ProxyCPUmsPer1000RT)
		ratio("p50", g.rt.P50us, h.rt.P50us)
		ratio("p99", g.rt.P99us, h.rt.P99us)
	}
	writeResults(b, "websocket", s.Smoke, wsResults{"BenchmarkWebSocket", time.Now().UTC().Format(time.RFC3339), s, b.N, hapCfg, idle, rts, ratios})

	// Behaviour, never timing.
	for _, r := range rts {
		if r.RoundTrips == 0 || r.Answered != r.RoundTrips {
			b.Errorf("%s: %d round trips, %d answered: want every one answered", r.Peer, r.RoundTrips, r.Answered)
		}
		if r.CleanCloses != s.Clients {
			b.Errorf("%s: %d of %d clients closed cleanly", r.Peer, r.CleanCloses, s.Clients)
		}
	}
	for _, r := range idle {
		if r.ProsodyRSS <= 0 || r.Peer != "direct" && (r.ProxyRSS <= 0 || r.ProxyBaseRSS <= 0) {
			b.Errorf("%s: RSS readings %+v", r.Peer, r)
		}
	}
}

func peerIndex(peers []*wsPeer, name string) int {
	return slices.IndexFunc(peers, func(p *wsPeer) bool { return p.name == name })
}

type wsPeerFigures struct {
	idle *wsIdleResult
	rt   *wsRTResult
}

func wsFind(idle []wsIdleResult, rts []wsRTResult, name string) *wsPeerFigures {
	var f wsPeerFigures
	for i := range idle {
		if idle[i].Peer == name {
			f.idle = &idle[i]
		}
	}
	for i := range rts {
		if rts[i].Peer == name {
			f.rt = &rts[i]
		}
	}
	if f.idle == nil || f.rt == nil {
		return nil
	}
	return &f
}

// startGuardWS starts Guard with a WebSocket listener (Prosody's path) in
// front of backend, Prosody's c2s port.
func startGuardWS(b testing.TB, backend string) (string, int, func()) {
	return startGuardWith(b, backend, fmt.Sprintf("  websocket {\n    path = %q\n  }\n", wsPath), "")
}

// startHAProxyWS starts HAProxy in mode http in front of Prosody's HTTP
// port, as an operator configures it for XMPP over WebSocket: the upgrade
// passes through (HAProxy 2.x handles it by itself in HTX mode), `timeout
// tunnel` governs the upgraded connection, `timeout http-request` the
// upgrade request, and `timeout client-fin`/`server-fin` the half-closed
// sides. It returns the configuration too, for the results.
func startHAProxyWS(b testing.TB, backend string) (string, int, string, func()) {
	addr := freePort(b)
	cfg := fmt.Sprintf(`
global
  maxconn 9800
defaults
  mode http
  maxconn 9800
  timeout connect 2s
  timeout http-request 10s
  timeout http-keep-alive 10s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  timeout client-fin 5s
  timeout server-fin 5s
  timeout queue 10s
frontend xmpp_websocket
  bind %s
  default_backend prosody_websocket
backend prosody_websocket
  server s1 %s maxconn 9800
`, addr, backend)
	a, pid, stop := runHAProxy(b, addr, cfg)
	return a, pid, strings.TrimSpace(strings.ReplaceAll(cfg, addr, "ADDR")), stop
}

// measureWSIdle opens s.Streams idle streams through p (one warm-up stream
// first, for the baselines), waits until the RSS of the proxy and of
// Prosody settle, checks that every stream is still open, then closes them
// all and waits until Prosody has let them go.
func measureWSIdle(b *testing.B, s wsSettings, p *wsPeer, prosodyPID int) wsIdleResult {
	pids := []int{prosodyPID}
	if p.pid != 0 {
		pids = append(pids, p.pid)
	}
	prosodyFDs := countFDs(prosodyPID)
	warm, err := openWSStreams(p.addr, 1)
	if err != nil {
		b.Fatalf("%s: warm-up stream: %v", p.name, err)
	}
	proxyFDs := countFDs(p.pid)
	base, err := settleRSS(b, p.name+" websocket baseline", pids)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	conns, err := openWSStreams(p.addr, s.Streams)
	if err != nil {
		closeWS(warm)
		b.Fatalf("%s: opening %d idle WebSocket streams: %v", p.name, s.Streams, err)
	}
	opened := time.Since(start)
	after, err := settleRSS(b, fmt.Sprintf("%s %d websocket streams", p.name, s.Streams), pids)
	if err != nil {
		b.Fatal(err)
	}
	// Behaviour: every stream is still there, and nothing came on any.
	if err := checkWSIdle(conns); err != nil {
		b.Errorf("%s: %v", p.name, err)
	}
	if p.pid != 0 {
		checkRelaying(b, p.name+" websocket", p.pid, s.Streams)
	}
	if n := countFDs(prosodyPID); n < s.Streams {
		b.Errorf("%s: Prosody holds %d descriptors for %d streams: streams closed during the measurement", p.name, n, s.Streams)
	}
	r := wsIdleResult{Peer: p.name, Streams: s.Streams, OpenSeconds: opened.Seconds(), ProsodyBaseRSS: base[0], ProsodyRSS: after[0]}
	r.ProsodyBytesPerStream = float64(r.ProsodyRSS-r.ProsodyBaseRSS) / float64(s.Streams)
	if p.pid != 0 {
		r.ProxyBaseRSS, r.ProxyRSS = base[1], after[1]
		r.ProxyBytesPerStream = float64(r.ProxyRSS-r.ProxyBaseRSS) / float64(s.Streams)
	}
	b.Logf("%-7s %d idle websocket streams opened in %.1fs: proxy RSS %.1f → %.1f MiB (%.0f B/stream), Prosody %.1f → %.1f MiB (%.0f B/stream)",
		p.name, s.Streams, opened.Seconds(), float64(r.ProxyBaseRSS)/(1<<20), float64(r.ProxyRSS)/(1<<20), r.ProxyBytesPerStream,
		float64(r.ProsodyBaseRSS)/(1<<20), float64(r.ProsodyRSS)/(1<<20), r.ProsodyBytesPerStream)

	closeWS(append(conns, warm...))
	if p.pid != 0 {
		waitFDs(p.pid, proxyFDs-2, 20*time.Second)
	}
	waitFDs(prosodyPID, prosodyFDs, 30*time.Second)
	if n := countFDs(prosodyPID); n > prosodyFDs+s.Streams/100 {
		b.Logf("%s: Prosody still holds %d descriptors (%d before the streams)", p.name, n, prosodyFDs)
	}
	return r
}

// wsDialer has no TCP keepalive, as a browser's socket has none by default
// (see dialIdleStreams for why a keepalive would hurt here).
var wsDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1}

// dialWS connects to addr and upgrades at wsPath with the xmpp subprotocol.
// The reader's buffer is small: an idle stream holds it.
func dialWS(ctx context.Context, addr string) (*wsclient.Client, error) {
	c, err := wsDialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &wsclient.Client{Conn: c.(*net.TCPConn), BR: bufio.NewReaderSize(c, 1024), Timeout: wsReadTimeout}
	if _, err := fmt.Fprintf(c, wsclient.Upgrade, wsPath, addr, "Sec-WebSocket-Protocol: xmpp\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(wsReadTimeout))
	resp, err := http.ReadResponse(cl.BR, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		c.Close()
		return nil, fmt.Errorf("upgrade answered %s %v", resp.Status, resp.Header)
	}
	return cl, nil
}

func wsOpen(domain string) string {
	return "<open xmlns='" + wsFraming + "' to='" + domain + "' version='1.0'/>"
}

// wsExpect reads text messages (Pings answered) until one contains want;
// an error for anything else that ends or refuses the stream.
func wsExpect(c *wsclient.Client, want string) (string, error) {
	for range 8 {
		op, p, err := c.NextData()
		if err != nil {
			return "", fmt.Errorf("waiting for %s: %w", want, err)
		}
		if op != wsclient.OpText {
			return "", fmt.Errorf("waiting for %s: frame %#x %q", want, op, p)
		}
		if strings.Contains(p, want) {
			return p, nil
		}
		if strings.Contains(p, "<failure") || strings.Contains(p, "stream:error") || strings.HasPrefix(p, "<close") ||
			strings.Contains(p, "type='error'") || strings.Contains(p, `type="error"`) {
			return "", fmt.Errorf("waiting for %s: %q", want, p)
		}
	}
	return "", fmt.Errorf("no %s in 8 messages", want)
}

// openWSStream upgrades and opens one stream: <open/> answered with <open/>
// and Prosody's features.
func openWSStream(ctx context.Context, addr string) (*wsclient.Client, error) {
	c, err := dialWS(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := c.Send(wsclient.OpText, wsOpen("localhost")); err != nil {
		c.Conn.Close()
		return nil, err
	}
	if _, err := wsExpect(c, "features"); err != nil {
		c.Conn.Close()
		return nil, err
	}
	return c, nil
}

// openWSStreams opens n streams through addr, wsWorkers at a time, within
// wsOpenTimeout; at the first error it closes what it opened.
func openWSStreams(addr string, n int) ([]*wsclient.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wsOpenTimeout)
	defer cancel()
	cs := make([]*wsclient.Client, n)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(wsWorkers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := openWSStream(ctx, addr)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("stream %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				cs[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("not open within %s", wsOpenTimeout)
	}
	if firstErr != nil {
		closeWS(cs)
		return nil, firstErr
	}
	return cs, nil
}

// checkWSIdle checks that every idle stream is open and quiet: a short read
// times out, rather than returning data, EOF or a reset.
func checkWSIdle(cs []*wsclient.Client) error {
	var bad atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(cs); i += 16 {
				c := cs[i]
				c.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
				n, err := c.BR.Read(make([]byte, 1))
				var ne net.Error
				if n == 0 && errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				bad.Add(1)
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("stream %d: %d bytes, %v", i, n, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("%d of %d idle streams not open and quiet (first: %v)", bad.Load(), len(cs), first)
	}
	return nil
}

// closeWS closes the connections (nil ones skipped), 16 at a time.
func closeWS(cs []*wsclient.Client) {
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(cs); i += 16 {
				if cs[i] != nil {
					cs[i].Conn.Close()
				}
			}
		})
	}
	wg.Wait()
}

// wsRTClient is one logged-in session over WebSocket.
type wsRTClient struct {
	c   *wsclient.Client
	jid string
	seq int
}

// dialWSRTClient upgrades, opens, authenticates with SASL PLAIN, restarts
// the stream and binds resource.
func dialWSRTClient(addr, domain, user, password, resource string) (*wsRTClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := openWSStream(ctx, addr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*wsRTClient, error) {
		c.Conn.Close()
		return nil, err
	}
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.Send(wsclient.OpText, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+cred+"</auth>"); err != nil {
		return fail(err)
	}
	if _, err := wsExpect(c, "<success"); err != nil {
		return fail(err)
	}
	if err := c.Send(wsclient.OpText, wsOpen(domain)); err != nil {
		return fail(err)
	}
	if _, err := wsExpect(c, "features"); err != nil {
		return fail(err)
	}
	if err := c.Send(wsclient.OpText, "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+resource+"</resource></bind></iq>"); err != nil {
		return fail(err)
	}
	p, err := wsExpect(c, "</jid>")
	if err != nil {
		return fail(err)
	}
	_, rest, _ := strings.Cut(p, "<jid>")
	jid, _, _ := strings.Cut(rest, "</jid>")
	if jid == "" {
		return fail(fmt.Errorf("bind answered %q", p))
	}
	return &wsRTClient{c: c, jid: jid}, nil
}

// dialWSRTClients logs n clients in through p, a few at a time.
func dialWSRTClients(b *testing.B, p *wsPeer, domain string, n int) []*wsRTClient {
	cs := make([]*wsRTClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range cs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialWSRTClient(p.addr, domain, wsUser, wsPassword, fmt.Sprintf("ws-%s-%d", p.name, i))
			if err != nil {
				errs[i] = fmt.Errorf("%s client %d: %w", p.name, i, err)
				return
			}
			cs[i] = c
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range cs {
			if c != nil {
				c.c.Conn.Close()
			}
		}
		b.Fatal(err)
	}
	return cs
}

// roundTrip sends a message to the client's own full JID and waits for it.
func (c *wsRTClient) roundTrip() (time.Duration, error) {
	c.seq++
	body := "rt-" + strconv.Itoa(c.seq)
	msg := "<message xmlns='jabber:client' to='" + c.jid + "' type='chat' id='" + body + "'><body>" + body + "</body></message>"
	want := ">" + body + "</body>"
	start := time.Now()
	if err := c.c.Send(wsclient.OpText, msg); err != nil {
		return 0, err
	}
	if _, err := wsExpect(c.c, want); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// closeClean ends the stream as a web client does and checks the server's
// end: its <close/>, a Close frame, then a FIN (EOF), not a reset.
func (c *wsRTClient) closeClean() error {
	defer c.c.Conn.Close()
	if err := c.c.Send(wsclient.OpText, "<close xmlns='"+wsFraming+"'/>"); err != nil {
		return err
	}
	sawClose := false
	for range 8 {
		op, p, err := c.c.NextData()
		if err != nil {
			return fmt.Errorf("before the Close frame (after <close/>: %v): %w", sawClose, err)
		}
		if op == wsclient.OpText {
			sawClose = sawClose || strings.HasPrefix(p, "<close")
			continue
		}
		if op != wsclient.OpClose {
			return fmt.Errorf("frame %#x %q before the Close frame", op, p)
		}
		if !sawClose {
			return errors.New("a Close frame without <close/> first")
		}
		c.c.Conn.SetReadDeadline(time.Now().Add(wsReadTimeout))
		n, err := c.c.BR.Read(make([]byte, 1))
		if err != io.EOF {
			if errors.Is(err, syscall.ECONNRESET) {
				return errors.New("reset after the Close frame")
			}
			return fmt.Errorf("after the Close frame: %d bytes, %v; want EOF (a FIN)", n, err)
		}
		c.c.Send(wsclient.OpClose, p)
		return nil
	}
	return errors.New("no Close frame in 8 frames")
}

// runWSSlice has each of p's clients make n round trips, one after the
// other, and adds them to p's figures when measure is set.
func runWSSlice(b *testing.B, p *wsPeer, prosodyPID, n int, measure bool) {
	ctx, cancel := context.WithTimeout(context.Background(), wsRTTimeout)
	defer cancel()
	proxyCPU0 := cpuSeconds(b, p.pid)
	prosodyCPU0 := cpuSeconds(b, prosodyPID)
	lats := make([][]time.Duration, len(p.clients))
	errs := make([]error, len(p.clients))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range p.clients {
		lats[i] = make([]time.Duration, 0, n)
		wg.Go(func() {
			for range n {
				if ctx.Err() != nil {
					errs[i] = fmt.Errorf("%s: %d of %d round trips within %s", c.jid, len(lats[i]), n, wsRTTimeout)
					return
				}
				d, err := c.roundTrip()
				if err != nil {
					errs[i] = fmt.Errorf("%s: round trip %d: %w", c.jid, len(lats[i])+1, err)
					return
				}
				lats[i] = append(lats[i], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	proxyCPU := cpuSeconds(b, p.pid) - proxyCPU0
	prosodyCPU := cpuSeconds(b, prosodyPID) - prosodyCPU0
	if !measure {
		if err := errors.Join(errs...); err != nil {
			b.Fatalf("%s warm-up: %v", p.name, err)
		}
		return
	}
	p.rt.RoundTrips += int64(n * len(p.clients))
	p.rt.Seconds += elapsed.Seconds()
	p.rt.ProxyCPUSeconds += proxyCPU
	p.rt.ProsodyCPUSeconds += prosodyCPU
	for _, l := range lats {
		p.rt.Answered += int64(len(l))
		p.lats = append(p.lats, l...)
	}
	if err := errors.Join(errs...); err != nil {
		b.Errorf("%s: %v", p.name, err)
	}
}

// wsResults is results/websocket.json, as BenchmarkWebSocket writes it and
// the report reads it.
type wsResults struct {
	Benchmark string             `json:"benchmark"`
	Date      string             `json:"date"`
	Settings  wsSettings         `json:"settings"`
	Rounds    int                `json:"rounds"`
	HAProxy   string             `json:"haproxy_config,omitempty"`
	Idle      []wsIdleResult     `json:"idle"`
	RoundTrip []wsRTResult       `json:"round_trip"`
	Ratios    map[string]float64 `json:"guard_over_haproxy,omitempty"`
}
