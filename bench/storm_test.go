package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The storm benchmark: N clients open a stream at once through a proxy in
// front of an Openfire-like backend that resets every connection above its
// capacity C. It counts what each client saw.
const (
	// stormBackendEnv makes the test binary run as the storm backend; its
	// value is "CAPACITY,HOLD", e.g. "200,200ms".
	stormBackendEnv = "GUARD_BENCH_STORM_BACKEND"

	stormBackendHeader = "<?xml version='1.0'?><stream:stream from='localhost' id='storm' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	stormFeatures      = "<stream:features/>"
	stormStreamEnd     = "</stream:stream>"

	// stormClientTimeout bounds each client, from the start of the storm;
	// stormWatchdog bounds the whole storm.
	stormClientTimeout = 30 * time.Second
	stormWatchdog      = stormClientTimeout + 15*time.Second
	stormQueueTimeout  = 5 * time.Second
)

// Outcome classes of a storm client.
const (
	outServed      = "served"        // features, then a clean </stream:stream> and EOF
	outStreamError = "stream_error"  // a <stream:error/>, whatever its condition
	outReset       = "reset"         // ECONNRESET or EPIPE
	outSilentClose = "silent_close"  // EOF without a stream error
	outTimeout     = "timeout"       // the client's deadline passed
	outOther       = "other"         // anything else (e.g. ECONNREFUSED)
	outUnclean     = "unclean_error" // a stream error not followed by </stream:stream> and EOF (also counted in stream_error)
)

// stormSettings is the size of one storm.
type stormSettings struct {
	Capacity     int    `json:"capacity"`
	Clients      int    `json:"clients"`
	Hold         string `json:"backend_hold"`
	QueueSize    int    `json:"guard_queue_size"`
	QueueTimeout string `json:"queue_timeout"`
	Smoke        bool   `json:"smoke"`
	hold         time.Duration
}

func stormSettingsFromEnv() stormSettings {
	s := stormSettings{Capacity: 200, Clients: 2000, hold: 200 * time.Millisecond}
	if testing.Short() || os.Getenv("GUARD_BENCH_SMOKE") == "1" {
		s = stormSettings{Capacity: 5, Clients: 50, hold: 200 * time.Millisecond, Smoke: true}
	} else {
		s.Capacity = envInt("GUARD_BENCH_STORM_C", s.Capacity)
		s.Clients = envInt("GUARD_BENCH_STORM_N", 10*s.Capacity)
	}
	if d, err := time.ParseDuration(os.Getenv("GUARD_BENCH_STORM_HOLD")); err == nil && d > 0 {
		s.hold = d
	}
	s.Hold = s.hold.String()
	s.QueueSize = 4 * s.Capacity
	s.QueueTimeout = stormQueueTimeout.String()
	return s
}

// stormTally is what one proxy's clients saw, summed over rounds.
type stormTally struct {
	Proxy        string         `json:"proxy"`
	Clients      int            `json:"clients"`
	Served       int            `json:"served"`
	StreamErrors int            `json:"stream_errors"`
	Conditions   map[string]int `json:"stream_error_conditions,omitempty"`
	Unclean      int            `json:"stream_errors_not_closed_cleanly"`
	Resets       int            `json:"resets"`
	SilentCloses int            `json:"silent_closes"`
	Timeouts     int            `json:"timeouts"`
	Other        int            `json:"other"`
	OtherSamples []string       `json:"other_samples,omitempty"`
	// SlowestSeconds is, per outcome, the longest a client took to reach it.
	SlowestSeconds map[string]float64 `json:"slowest_seconds"`
	StormSeconds   float64            `json:"storm_seconds"`

	BackendMaxStreams int `json:"backend_max_streams"`
	BackendResets     int `json:"backend_resets"`
	BackendAccepted   int `json:"backend_accepted"`
	BackendServed     int `json:"backend_served"`

	// HAProxyTermination counts HAProxy's log termination states (%ts),
	// e.g. "sQ" for a server queue timeout.
	HAProxyTermination map[string]int `json:"haproxy_termination_states,omitempty"`
}

func (t *stormTally) add(u stormTally) {
	t.Clients += u.Clients
	t.Served += u.Served
	t.StreamErrors += u.StreamErrors
	t.Unclean += u.Unclean
	t.Resets += u.Resets
	t.SilentCloses += u.SilentCloses
	t.Timeouts += u.Timeouts
	t.Other += u.Other
	t.StormSeconds += u.StormSeconds
	t.BackendMaxStreams = max(t.BackendMaxStreams, u.BackendMaxStreams)
	t.BackendResets += u.BackendResets
	t.BackendAccepted += u.BackendAccepted
	t.BackendServed += u.BackendServed
	for k, v := range u.Conditions {
		if t.Conditions == nil {
			t.Conditions = map[string]int{}
		}
		t.Conditions[k] += v
	}
	for k, v := range u.HAProxyTermination {
		if t.HAProxyTermination == nil {
			t.HAProxyTermination = map[string]int{}
		}
		t.HAProxyTermination[k] += v
	}
	for k, v := range u.SlowestSeconds {
		if t.SlowestSeconds == nil {
			t.SlowestSeconds = map[string]float64{}
		}
		t.SlowestSeconds[k] = max(t.SlowestSeconds[k], v)
	}
	for _, s := range u.OtherSamples {
		if len(t.OtherSamples) < 5 {
			t.OtherSamples = append(t.OtherSamples, s)
		}
	}
}

// stormProxy is one system under test in front of the storm backend. start
// returns the address clients dial and a stop function that returns what
// the proxy logged (HAProxy only).
type stormProxy struct {
	name  string
	start func(b *testing.B, s stormSettings, backend string) (addr string, stop func() []byte)
}

// The storm's peers. guard and haproxy are told the backend's capacity C
// (max_streams, server maxconn); guard-adaptive and haproxy-nomaxconn are
// not: Guard learns it (adaptive admission, on by default), HAProxy passes
// every client on.
const (
	stormGuard            = "guard"
	stormGuardAdaptive    = "guard-adaptive"
	stormHAProxy          = "haproxy"
	stormHAProxyNoMaxconn = "haproxy-nomaxconn"
	stormDirect           = "direct"
)

// isStormGuard reports whether peer is Guard, which promises every client a
// stream or a stream error.
func isStormGuard(peer string) bool { return peer == stormGuard || peer == stormGuardAdaptive }

func isStormHAProxy(peer string) bool { return peer == stormHAProxy || peer == stormHAProxyNoMaxconn }

func stormProxies(b *testing.B) []stormProxy {
	ps := []stormProxy{
		{stormGuard, func(b *testing.B, s stormSettings, be string) (string, func() []byte) {
			return startStormGuard(b, s, be, true)
		}},
		{stormGuardAdaptive, func(b *testing.B, s stormSettings, be string) (string, func() []byte) {
			return startStormGuard(b, s, be, false)
		}},
	}
	if haveHAProxy(b) {
		ps = append(ps,
			stormProxy{stormHAProxy, func(b *testing.B, s stormSettings, be string) (string, func() []byte) {
				return startStormHAProxy(b, s, be, true)
			}},
			stormProxy{stormHAProxyNoMaxconn, func(b *testing.B, s stormSettings, be string) (string, func() []byte) {
				return startStormHAProxy(b, s, be, false)
			}})
	} else {
		b.Logf("haproxy not installed (apt-get install -y haproxy): storming Guard and the backend only")
	}
	ps = append(ps, stormProxy{stormDirect, func(*testing.B, stormSettings, string) (string, func() []byte) { return "", nil }})
	return ps
}

// startStormGuard starts Guard with the storm's queue; with capped, also
// max_streams = C as a fixed cap (adaptive admission off, as a careful
// operator sets HAProxy's maxconn), and without it no max_streams at all:
// adaptive admission, on by default, with its defaults learns the cap below
// the default ceiling.
func startStormGuard(b *testing.B, s stormSettings, backend string, capped bool) (string, func() []byte) {
	extra := fmt.Sprintf("  queue_size    = %d\n  queue_timeout = %q\n", s.QueueSize, s.QueueTimeout)
	if capped {
		extra = fmt.Sprintf("  max_streams   = %d\n", s.Capacity) + extra + "  adaptive {\n    enabled = false\n  }\n"
	}
	addr, _, stop := startGuardWith(b, backend, "", extra)
	return addr, func() []byte { stop(); return nil }
}

// startStormHAProxy starts HAProxy; with capped, the server line has
// maxconn C, and without it no maxconn (everything else the same).
func startStormHAProxy(b *testing.B, s stormSettings, backend string, capped bool) (string, func() []byte) {
	addr := freePort(b)
	// mode tcp as a careful operator sets it in front of an Openfire node
	// that holds C streams: maxconn C on the server line (HAProxy queues
	// the rest in the backend), a queue timeout, connect and data timeouts,
	// and timeouts for half-closed sides. The log line (to stderr) carries
	// the termination state, so that we can tell why a client was closed.
	// Without capped, the operator does not know C: the server line has no
	// maxconn, and HAProxy connects every client at once.
	server := fmt.Sprintf("server of1 %s", backend)
	if capped {
		server += fmt.Sprintf(" maxconn %d", s.Capacity)
	}
	cfg := fmt.Sprintf(`
global
  maxconn 9800
  log stderr format raw local0 info
defaults
  mode tcp
  log global
  log-format "%%ts %%Tw %%Tc %%Tt"
  maxconn 9800
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout client-fin 5s
  timeout server-fin 5s
  timeout queue %s
frontend xmpp
  bind %s
  default_backend openfire
backend openfire
  %s
`, s.QueueTimeout, addr, server)
	dir := b.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		b.Fatal(err)
	}
	_, _, stop := startProcessOutput(b, addr, logf, "haproxy", "-db", "-f", path)
	return addr, func() []byte {
		stop()
		logf.Close()
		out, _ := os.ReadFile(logf.Name())
		return out
	}
}

// BenchmarkStorm sends N = 10×C clients at once through Guard, HAProxy and
// no proxy at all (direct) to an Openfire-like backend that holds C streams
// and resets the rest, and reports, per proxy, what the clients saw. Guard
// and HAProxy run twice: told C (max_streams, server maxconn), and not told
// it (guard-adaptive: no max_streams, adaptive admission learns the cap;
// haproxy-nomaxconn: no maxconn on the server line). Each iteration is one
// round of storms, one per proxy, in rotating order. The outcome table goes
// to results/storm.json (storm-smoke.json in smoke mode).
//
// Then one more round against a backend that frees its slots slowly (each
// stream held GUARD_BENCH_STORM_SLOW_HOLD, 1 s by default), where queues run
// out of time: results/storm-slow.json.
//
// Whatever the timing, Guard's clients (guard and guard-adaptive) must all be
// served or refused with a stream error: no reset, no silent close, no
// internal-server-error. The resets guard-adaptive's learning costs happen
// at the backend, never at a client.
func BenchmarkStorm(b *testing.B) {
	b.StopTimer() // only the storms are timed
	s := stormSettingsFromEnv()
	if s.Clients+200 > 20000 {
		b.Fatalf("GUARD_BENCH_STORM_N=%d: the clients are in this process, which may hold 20,000 descriptors", s.Clients)
	}
	ps := stormProxies(b)
	stormScenario(b, s, ps, b.N, "storm")
	slow := s
	slow.hold = time.Second
	if s.Smoke {
		slow.hold = 500 * time.Millisecond
	}
	if d, err := time.ParseDuration(os.Getenv("GUARD_BENCH_STORM_SLOW_HOLD")); err == nil && d > 0 {
		slow.hold = d
	}
	slow.Hold = slow.hold.String()
	stormScenario(b, slow, ps, 1, "storm-slow")
}

// stormScenario runs n rounds of storms with settings s, writes
// results/NAME.json and checks Guard's promise.
func stormScenario(b *testing.B, s stormSettings, ps []stormProxy, n int, name string) {
	totals := make([]stormTally, len(ps))
	var rounds [][]stormTally
	for i := 0; i < n; i++ {
		round := make([]stormTally, len(ps))
		for j := range ps {
			k := (i + j) % len(ps)
			round[k] = runStorm(b, s, ps[k])
			totals[k].add(round[k])
		}
		rounds = append(rounds, round)
	}
	per := float64(n)
	b.Logf("%s: %d round(s) of %d clients, C=%d, hold %v (counts summed over rounds; metrics are per round):", name, n, s.Clients, s.Capacity, s.hold)
	for k, p := range ps {
		t := totals[k]
		t.Proxy = p.name
		totals[k] = t
		metric := p.name + ":"
		if name != "storm" {
			metric = name + ":" + p.name + ":"
		}
		b.ReportMetric(float64(t.Served)/per, metric+"served")
		b.ReportMetric(float64(t.StreamErrors)/per, metric+"stream_errors")
		b.ReportMetric(float64(t.Resets)/per, metric+"resets")
		b.ReportMetric(float64(t.SilentCloses)/per, metric+"silent_closes")
		b.ReportMetric(float64(t.Timeouts)/per, metric+"timeouts")
		b.ReportMetric(float64(t.BackendMaxStreams), metric+"backend_max_streams")
		b.ReportMetric(float64(t.BackendResets)/per, metric+"backend_resets")
		if t.Other > 0 {
			b.ReportMetric(float64(t.Other)/per, metric+"other")
		}
		b.Logf("%-17s served %5d  stream_errors %5d %v  resets %5d  silent_closes %5d  timeouts %5d  other %d  | backend max %d streams, %d resets | slowest %v",
			p.name, t.Served, t.StreamErrors, t.Conditions, t.Resets, t.SilentCloses, t.Timeouts, t.Other,
			t.BackendMaxStreams, t.BackendResets, t.SlowestSeconds)
		if t.HAProxyTermination != nil {
			b.Logf("%-17s termination states %v", p.name, t.HAProxyTermination)
		}
		if t.Other > 0 {
			b.Logf("%-17s other outcomes, e.g. %q", p.name, t.OtherSamples)
		}
	}
	writeStormResults(b, s, n, totals, rounds, name)

	// Guard's promise, a behaviour rather than a timing: with a fixed cap
	// and while it learns one.
	for _, t := range totals {
		if !isStormGuard(t.Proxy) {
			continue
		}
		if t.Resets != 0 || t.SilentCloses != 0 || t.Served+t.StreamErrors != t.Clients {
			b.Errorf("%s (%s): %d clients, %d served, %d stream errors %v, %d resets, %d silent closes, %d timeouts, %d other %q: want every client served or refused with a stream error",
				t.Proxy, name, t.Clients, t.Served, t.StreamErrors, t.Conditions, t.Resets, t.SilentCloses, t.Timeouts, t.Other, t.OtherSamples)
		}
		if n := t.Conditions["internal-server-error"]; n > 0 {
			b.Errorf("%s (%s): %d clients got internal-server-error (stream errors %v): Guard failed, not the backend",
				t.Proxy, name, n, t.Conditions)
		}
	}
}

// runStorm runs one storm through p against a fresh backend.
func runStorm(b *testing.B, s stormSettings, p stormProxy) stormTally {
	be := startStormBackend(b, s.Capacity, s.hold)
	defer be.stop()
	addr, stop := p.start(b, s, be.addr)
	if addr == "" {
		addr = be.addr
	}
	// Starting a proxy may have touched the backend (HAProxy connects as
	// soon as a client does, and startProcess dials once to see it listen).
	be.waitIdle(b)
	be.command(b, "reset")

	b.StartTimer()
	start := time.Now()
	outcomes := storm(b, addr, s.Clients, start.Add(stormClientTimeout))
	elapsed := time.Since(start)
	b.StopTimer()

	be.waitIdle(b)
	st := be.stats(b)
	var logs []byte
	if stop != nil {
		logs = stop()
	}
	t := stormTally{
		Proxy:             p.name,
		Clients:           s.Clients,
		StormSeconds:      elapsed.Seconds(),
		BackendMaxStreams: st.MaxOpen,
		BackendResets:     st.Resets,
		BackendAccepted:   st.Accepted,
		BackendServed:     st.Served,
		SlowestSeconds:    map[string]float64{},
	}
	for _, o := range outcomes {
		switch o.kind {
		case outServed:
			t.Served++
		case outStreamError:
			t.StreamErrors++
			if t.Conditions == nil {
				t.Conditions = map[string]int{}
			}
			t.Conditions[o.cond]++
			if o.unclean {
				t.Unclean++
			}
		case outReset:
			t.Resets++
		case outSilentClose:
			t.SilentCloses++
		case outTimeout:
			t.Timeouts++
		default:
			t.Other++
			if len(t.OtherSamples) < 5 {
				t.OtherSamples = append(t.OtherSamples, o.detail)
			}
		}
		t.SlowestSeconds[o.kind] = max(t.SlowestSeconds[o.kind], roundMillis(o.took))
	}
	if isStormHAProxy(p.name) {
		t.HAProxyTermination = haproxyTerminations(logs)
	}
	return t
}

func roundMillis(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// haproxyLogLine is our log-format: "%ts %Tw %Tc %Tt".
var haproxyLogLine = regexp.MustCompile(`(?m)^(\S\S) -?\d+ -?\d+ -?\d+$`)

func haproxyTerminations(logs []byte) map[string]int {
	m := map[string]int{}
	for _, l := range haproxyLogLine.FindAllSubmatch(logs, -1) {
		m[string(l[1])]++
	}
	return m
}

func writeStormResults(b *testing.B, s stormSettings, n int, totals []stormTally, rounds [][]stormTally, base string) {
	out := struct {
		Benchmark string         `json:"benchmark"`
		Date      string         `json:"date"`
		Settings  stormSettings  `json:"settings"`
		Rounds    int            `json:"rounds"`
		Totals    []stormTally   `json:"totals"`
		PerRound  [][]stormTally `json:"per_round,omitempty"`
	}{"BenchmarkStorm", time.Now().UTC().Format(time.RFC3339), s, n, totals, nil}
	if n > 1 {
		out.PerRound = rounds
	}
	writeResults(b, base, s.Smoke, out)
}

// stormOutcome is what one client saw.
type stormOutcome struct {
	kind    string
	cond    string // the stream error condition
	unclean bool   // a stream error not followed by </stream:stream> and EOF
	detail  string
	took    time.Duration
}

// storm starts n clients at once against addr and returns their outcomes.
// Each client gives up at deadline; the storm as a whole is bounded by a
// watchdog.
func storm(b *testing.B, addr string, n int, deadline time.Time) []stormOutcome {
	outcomes := make([]stormOutcome, n)
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			start := time.Now()
			outcomes[i] = stormClient(addr, deadline)
			outcomes[i].took = time.Since(start)
		}()
	}
	close(ready)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stormWatchdog):
		b.Fatalf("storm of %d clients through %s still running after %v", n, addr, stormWatchdog)
	}
	return outcomes
}

var stormCondition = regexp.MustCompile(`<stream:error>\s*<([a-zA-Z-]+)`)

// stormClient connects, sends a stream header and reads until features, a
// stream error, or the end. A served client closes its stream properly and
// waits for the server's </stream:stream>.
func stormClient(addr string, deadline time.Time) stormOutcome {
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return classify(err, "dial", nil)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, clientHeader); err != nil {
		return classify(err, "sending the header", nil)
	}
	got := make([]byte, 0, 1024)
	buf := make([]byte, 1024)
	for {
		if bytes.Contains(got, []byte("</stream:error>")) {
			o := stormOutcome{kind: outStreamError, cond: "?"}
			if m := stormCondition.FindSubmatch(got); m != nil {
				o.cond = string(m[1])
			}
			rest, err := io.ReadAll(c)
			all := append(got, rest...)
			if err != nil || !bytes.HasSuffix(bytes.TrimSpace(all), []byte(stormStreamEnd)) {
				o.unclean = true
			}
			return o
		}
		if bytes.Contains(got, []byte(stormFeatures)) || bytes.Contains(got, []byte("</stream:features>")) {
			break
		}
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return classify(err, "waiting for features", got)
		}
	}
	if _, err := io.WriteString(c, stormStreamEnd); err != nil {
		return classify(err, "served, sending </stream:stream>", got)
	}
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil {
		return classify(err, "served, closing", rest)
	}
	if !bytes.Contains(rest, []byte(stormStreamEnd)) {
		return classify(io.EOF, "served, closing", rest)
	}
	return stormOutcome{kind: outServed}
}

// classify turns a client's error into an outcome class.
func classify(err error, when string, got []byte) stormOutcome {
	detail := fmt.Sprintf("%s: %v", when, err)
	if len(got) > 0 {
		detail += fmt.Sprintf(" (after %q)", truncate(got, 200))
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return stormOutcome{kind: outReset, detail: detail}
	case errors.Is(err, io.EOF):
		return stormOutcome{kind: outSilentClose, detail: detail}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return stormOutcome{kind: outTimeout, detail: detail}
	}
	return stormOutcome{kind: outOther, detail: detail}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// stormBackendStats are the storm backend's counters since its last reset.
type stormBackendStats struct {
	Open     int `json:"open"`
	MaxOpen  int `json:"max_open"`
	Resets   int `json:"resets"`
	Accepted int `json:"accepted"`
	Served   int `json:"served"` // streams that got features
}

// stormBackendProc is the parent's handle on a storm backend process.
type stormBackendProc struct {
	addr string
	in   io.WriteCloser
	out  *bufio.Reader
	cmd  *exec.Cmd
	once sync.Once
}

func startStormBackend(b *testing.B, capacity int, hold time.Duration) *stormBackendProc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%s", stormBackendEnv, capacity, hold))
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &stormBackendProc{in: in, out: bufio.NewReader(stdout), cmd: cmd}
	b.Cleanup(p.stop)
	line, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("storm backend: %v", err)
	}
	p.addr = strings.TrimSpace(line)
	return p
}

func (p *stormBackendProc) stop() {
	p.once.Do(func() { p.in.Close(); p.cmd.Wait() })
}

func (p *stormBackendProc) command(b *testing.B, cmd string) string {
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		b.Fatalf("storm backend: %v", err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("storm backend: %v", err)
	}
	return strings.TrimSpace(line)
}

func (p *stormBackendProc) stats(b *testing.B) stormBackendStats {
	var st stormBackendStats
	if err := json.Unmarshal([]byte(p.command(b, "stats")), &st); err != nil {
		b.Fatalf("storm backend stats: %v", err)
	}
	return st
}

// waitIdle waits, for a while, until the backend holds no stream.
func (p *stormBackendProc) waitIdle(b *testing.B) {
	deadline := time.Now().Add(10 * time.Second)
	for p.stats(b).Open > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// runStormBackend is the storm backend process: an Openfire-like server
// with a listen backlog of 50 that resets (SO_LINGER 0, close) every
// connection above capacity concurrent streams. A served stream gets a
// header and features, is held for hold, and ends after the client's
// </stream:stream> with the backend's own. It prints its address, then
// answers "stats" (a JSON line) and "reset" on stdin, and exits when stdin
// closes.
func runStormBackend(spec string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "storm backend:", err)
		os.Exit(1)
	}
	cs, hs, _ := strings.Cut(spec, ",")
	capacity, err := strconv.Atoi(cs)
	if err != nil {
		fail(err)
	}
	hold, err := time.ParseDuration(hs)
	if err != nil {
		fail(err)
	}
	ln, err := listenBacklog(50)
	if err != nil {
		fail(err)
	}
	var (
		mu sync.Mutex
		st stormBackendStats
	)
	acceptEach(ln, func(c net.Conn) {
		tc := c.(*net.TCPConn)
		mu.Lock()
		st.Accepted++
		if st.Open >= capacity {
			st.Resets++
			mu.Unlock()
			tc.SetLinger(0)
			tc.Close()
			return
		}
		st.Open++
		st.MaxOpen = max(st.MaxOpen, st.Open)
		mu.Unlock()
		go func() {
			open := true
			end := func() {
				if open {
					open = false
					mu.Lock()
					st.Open--
					mu.Unlock()
				}
			}
			defer tc.Close()
			defer end()
			if serveStormStream(tc, hold) {
				mu.Lock()
				st.Served++
				mu.Unlock()
				// The stream has ended (the backend's </stream:stream>
				// is sent): the slot is free before the close, as for
				// a server that counts sessions.
				end()
			}
		}()
	})
	fmt.Println(ln.Addr().String())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "stats":
			mu.Lock()
			data, _ := json.Marshal(st)
			mu.Unlock()
			fmt.Println(string(data))
		case "reset":
			mu.Lock()
			st = stormBackendStats{Open: st.Open, MaxOpen: st.Open}
			mu.Unlock()
			fmt.Println("ok")
		default:
			fmt.Println("unknown command")
		}
	}
	ln.Close()
	os.Exit(0)
}

// serveStormStream serves one stream; it reports whether it sent features.
func serveStormStream(c *net.TCPConn, hold time.Duration) bool {
	c.SetDeadline(time.Now().Add(stormClientTimeout))
	got := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for !bytes.Contains(got, []byte("<stream:stream")) || !bytes.HasSuffix(got, []byte(">")) {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		got = append(got, buf[:n]...)
	}
	if _, err := io.WriteString(c, stormBackendHeader+stormFeatures); err != nil {
		return false
	}
	time.Sleep(hold)
	got = got[:0]
	for !bytes.Contains(got, []byte(stormStreamEnd)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return true // the client left without closing its stream
		}
	}
	io.WriteString(c, stormStreamEnd)
	return true
}

// listenBacklog opens a loopback listener with a given accept backlog.
func listenBacklog(backlog int) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "backlog-listener")
	defer f.Close()
	return net.FileListener(f)
}
