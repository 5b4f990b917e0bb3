package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

// The latency benchmark: a real Prosody as backend; N authenticated clients
// (SCRAM-SHA-1, one account, distinct resources) per peer each send chat
// messages to their own full JID at a fixed total rate, open loop, and time
// each message from just before it is written until it comes back. Three
// peers run in the same run: direct to Prosody, through Guard and through
// HAProxy. All three sets of clients stay connected for the whole run and
// the measured time is cut into slices that rotate over the peers, so slow
// drift of the machine hits all of them alike.

const (
	latUser     = "bench"
	latPassword = "bench-pw"

	// Histogram: latHistBuckets log-spaced buckets from latHistMin to
	// latHistMax (seconds); values outside go to the first or last bucket.
	latHistBuckets = 100
	latHistMin     = 10e-6
	latHistMax     = 10.0

	latDrainTimeout = 3 * time.Second // after a slice, for replies in flight
	latWarmup       = 500 * time.Millisecond
)

type latencySettings struct {
	Clients         int     `json:"clients"`
	Rate            int     `json:"rate_msgs_per_s"`
	DurationSeconds float64 `json:"duration_seconds_per_peer"`
	Slices          int     `json:"slices_per_peer"`
	Smoke           bool    `json:"smoke"`
	duration        time.Duration
}

func latencySettingsFromEnv() latencySettings {
	s := latencySettings{Clients: 50, Rate: envInt("GUARD_BENCH_RATE", 1000), duration: 10 * time.Second}
	if d, err := time.ParseDuration(os.Getenv("GUARD_BENCH_DURATION")); err == nil && d > 0 {
		s.duration = d
	}
	s.Clients = envInt("GUARD_BENCH_LATENCY_CLIENTS", s.Clients)
	if testing.Short() || os.Getenv("GUARD_BENCH_SMOKE") == "1" {
		s = latencySettings{Clients: 5, Rate: envInt("GUARD_BENCH_RATE", 1000), duration: time.Second, Smoke: true}
	}
	// Slices of about 2 s each, so that the peers alternate a few times.
	s.Slices = max(1, int(s.duration/(2*time.Second)))
	s.DurationSeconds = s.duration.Seconds()
	return s
}

// latPeer is one way to Prosody: its address and the PID of the proxy (0 for
// direct), and its connected clients.
type latPeer struct {
	Name    string
	addr    string
	pid     int
	clients []*latClient
	res     latResult
	lats    []time.Duration
}

// latClient is one session; its reader records round trips into the
// current slice's collector.
type latClient struct {
	c    *xmppclient.Client
	jid  string
	sent atomic.Int64
	recv atomic.Int64
	mu   sync.Mutex
	lats []time.Duration
	err  atomic.Value // error from the reader
}

// latEpoch is the origin of the timestamps carried in message bodies; the
// clients are in this process, so the monotonic clock is shared.
var latEpoch = time.Now()

func (lc *latClient) read() {
	for {
		_, body, err := lc.c.ReadMessage(context.Background())
		if err != nil {
			lc.err.Store(err)
			return
		}
		now := time.Since(latEpoch)
		ts, ok := strings.CutPrefix(body, "t=")
		if !ok {
			continue
		}
		ns, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		lc.mu.Lock()
		lc.lats = append(lc.lats, now-time.Duration(ns))
		lc.mu.Unlock()
		lc.recv.Add(1)
	}
}

// latResult is one peer's figures, summed over slices and iterations.
type latResult struct {
	Peer            string  `json:"peer"`
	Sent            int64   `json:"sent"`
	Received        int64   `json:"received"`
	Lost            int64   `json:"lost"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	AchievedRate    float64 `json:"achieved_rate_msgs_per_s"`
	P50us           float64 `json:"p50_us"`
	P90us           float64 `json:"p90_us"`
	P99us           float64 `json:"p99_us"`
	P999us          float64 `json:"p99_9_us"`
	Maxus           float64 `json:"max_us"`
	Meanus          float64 `json:"mean_us"`
	// ProxyCPUSeconds is the proxy's utime+stime over the measured slices
	// (0 for direct); ProsodyCPUSeconds the backend's.
	ProxyCPUSeconds     float64 `json:"proxy_cpu_seconds"`
	ProxyCPUmsPer1000RT float64 `json:"proxy_cpu_ms_per_1000_rt"`
	ProsodyCPUSeconds   float64 `json:"prosody_cpu_seconds"`
	ProsodyCPUmsPer1000 float64 `json:"prosody_cpu_ms_per_1000_rt"`
	// SyscallsPer1000RT is the proxy's system calls per 1,000 round trips,
	// counted by strace -c over a slice of its own after the measured ones
	// (strace slows the proxy: that slice's times are not kept); 0: not
	// counted (no strace, or the direct peer).
	SyscallsPer1000RT float64 `json:"proxy_syscalls_per_1000_rt"`
	// Slices are the measured slices in the order they ran, so that a stall
	// (of the proxy, or of a shared machine) can be told from a tail.
	Slices []latSliceStat `json:"slices"`
	// Histogram counts round trips per log-spaced bucket; bucket i covers
	// [edges_us[i], edges_us[i+1]).
	Histogram latHistogram `json:"histogram"`
}

type latSliceStat struct {
	// Seq is the slice's place in the whole run, across peers.
	Seq      int     `json:"seq"`
	Received int     `json:"received"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Maxus    float64 `json:"max_us"`
	CPUms    float64 `json:"proxy_cpu_ms"`
}

type latHistogram struct {
	EdgesUs []float64 `json:"edges_us"`
	Counts  []int64   `json:"counts"`
}

func newLatHistogram(lats []time.Duration) latHistogram {
	h := latHistogram{EdgesUs: make([]float64, latHistBuckets+1), Counts: make([]int64, latHistBuckets)}
	lmin, lmax := math.Log10(latHistMin), math.Log10(latHistMax)
	for i := range h.EdgesUs {
		h.EdgesUs[i] = math.Round(math.Pow(10, lmin+(lmax-lmin)*float64(i)/latHistBuckets)*1e6*1000) / 1000
	}
	for _, d := range lats {
		x := (math.Log10(max(d.Seconds(), 1e-12)) - lmin) / (lmax - lmin) * latHistBuckets
		i := min(max(int(math.Floor(x)), 0), latHistBuckets-1)
		h.Counts[i]++
	}
	return h
}

// BenchmarkLatency reports round-trip latency of chat messages through a
// real Prosody, direct and through each proxy, at a fixed offered rate, the
// latency each proxy adds, and each proxy's CPU time per 1000 round trips.
// The figures go to results/latency.json (latency-smoke.json in smoke mode),
// with a histogram per peer for plotting.
func BenchmarkLatency(b *testing.B) {
	b.StopTimer()
	s := latencySettingsFromEnv()
	if s.Rate < s.Clients {
		b.Fatalf("GUARD_BENCH_RATE=%d: at least one message per second per client (%d clients)", s.Rate, s.Clients)
	}
	srv := prosodytest.Start(b, prosodytest.Options{
		Users:    map[string]string{latUser: latPassword},
		LogLevel: "warn",
	})

	peers := []*latPeer{{Name: "direct", addr: srv.Addr}}
	for _, p := range proxies(b) {
		addr, pid, stop := p.start(b, srv.Addr)
		b.Cleanup(stop)
		peers = append(peers, &latPeer{Name: p.name, addr: addr, pid: pid})
	}
	for _, p := range peers {
		p.clients = dialLatClients(b, p, srv.Domain, s.Clients)
	}
	defer func() {
		for _, p := range peers {
			for _, lc := range p.clients {
				lc.c.Close()
			}
		}
	}()

	// Warm up every path (Prosody's caches, Guard's buffers, the JIT-less
	// Lua's first calls), then discard.
	for _, p := range peers {
		runLatSlice(b, s, p, srv.PID, latWarmup, nil)
	}

	sliceDur := s.duration / time.Duration(s.Slices)
	seq := 0
	for i := 0; i < b.N; i++ {
		for k := 0; k < s.Slices; k++ {
			for j := range peers {
				p := peers[(i*s.Slices+k+j)%len(peers)]
				b.StartTimer()
				runLatSlice(b, s, p, srv.PID, sliceDur, &p.res)
				b.StopTimer()
				p.res.Slices[len(p.res.Slices)-1].Seq = seq
				seq++
			}
		}
	}

	// The proxies' system calls, each in a slice of its own under strace.
	for _, p := range peers {
		if p.pid != 0 {
			p.res.SyscallsPer1000RT = countSyscalls(b, s, p, srv.PID, sliceDur)
		}
	}

	results := make([]latResult, len(peers))
	for k, p := range peers {
		r := p.res
		r.Peer = p.Name
		if st, ok := statsOf(p.lats); ok {
			r.P50us, r.P90us, r.P99us, r.P999us, r.Maxus, r.Meanus = st.p50, st.p90, st.p99, st.p999, st.max, st.mean
		}
		r.Lost = r.Sent - r.Received
		if r.MeasuredSeconds > 0 {
			r.AchievedRate = float64(r.Received) / r.MeasuredSeconds
		}
		if r.Received > 0 {
			r.ProxyCPUmsPer1000RT = r.ProxyCPUSeconds * 1e3 / float64(r.Received) * 1000
			r.ProsodyCPUmsPer1000 = r.ProsodyCPUSeconds * 1e3 / float64(r.Received) * 1000
		}
		lats := slices.Clone(p.lats)
		slices.Sort(lats)
		r.Histogram = newLatHistogram(lats)
		results[k] = r

		b.ReportMetric(r.P50us, p.Name+":p50-us")
		b.ReportMetric(r.P99us, p.Name+":p99-us")
		b.ReportMetric(r.Maxus, p.Name+":max-us")
		b.ReportMetric(r.AchievedRate, p.Name+":msgs/s")
		if p.pid != 0 {
			b.ReportMetric(r.ProxyCPUmsPer1000RT, p.Name+":cpu-ms/1000rt")
		}
		if r.Lost > 0 {
			b.ReportMetric(float64(r.Lost), p.Name+":lost")
		}
		if r.SyscallsPer1000RT > 0 {
			b.ReportMetric(r.SyscallsPer1000RT, p.Name+":syscalls/1000rt")
		}
		b.Logf("%-8s sent %6d recv %6d lost %d  %.0f msg/s  p50 %7.0f µs  p90 %7.0f  p99 %7.0f  p99.9 %7.0f  max %7.0f  | proxy cpu %.2f ms/1000rt, prosody cpu %.1f ms/1000rt",
			p.Name, r.Sent, r.Received, r.Lost, r.AchievedRate, r.P50us, r.P90us, r.P99us, r.P999us, r.Maxus,
			r.ProxyCPUmsPer1000RT, r.ProsodyCPUmsPer1000)
		var per []string
		for _, sl := range r.Slices {
			per = append(per, fmt.Sprintf("#%d %.0f/%.0f/%.0f", sl.Seq, sl.P50us, sl.P99us, sl.Maxus))
		}
		b.Logf("%-8s per slice p50/p99/max µs: %s", p.Name, strings.Join(per, "  "))
	}

	// Added latency over direct, and Guard against HAProxy.
	byName := map[string]latResult{}
	for _, r := range results {
		byName[r.Peer] = r
	}
	direct := byName["direct"]
	added := map[string]map[string]float64{}
	for _, r := range results {
		if r.Peer == "direct" {
			continue
		}
		a := map[string]float64{"p50_us": r.P50us - direct.P50us, "p99_us": r.P99us - direct.P99us}
		added[r.Peer] = a
		b.ReportMetric(a["p50_us"], r.Peer+":added-p50-us")
		b.ReportMetric(a["p99_us"], r.Peer+":added-p99-us")
	}
	ratios := map[string]float64{}
	if g, ok := byName["guard"]; ok {
		if h, ok := byName["haproxy"]; ok {
			ratio := func(name string, x, y float64) {
				if y != 0 {
					ratios[name] = x / y
					b.ReportMetric(x/y, "guard/haproxy:"+name)
				}
			}
			ratio("p50", g.P50us, h.P50us)
			ratio("p99", g.P99us, h.P99us)
			ratio("added-p50", added["guard"]["p50_us"], added["haproxy"]["p50_us"])
			ratio("added-p99", added["guard"]["p99_us"], added["haproxy"]["p99_us"])
			ratio("cpu", g.ProxyCPUmsPer1000RT, h.ProxyCPUmsPer1000RT)
		}
	}
	writeLatencyResults(b, s, b.N, results, added, ratios)

	// Behaviour, not timing: every message comes back through every peer.
	for _, r := range results {
		if r.Sent == 0 || r.Lost != 0 {
			b.Errorf("%s: sent %d, received %d: want every message back", r.Peer, r.Sent, r.Received)
		}
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// latStats are the quantiles of a set of round trips, in microseconds.
type latStats struct{ p50, p90, p99, p999, max, mean float64 }

// statsOf returns the quantiles of lats (not changed), false if empty.
func statsOf(lats []time.Duration) (latStats, bool) {
	if len(lats) == 0 {
		return latStats{}, false
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latStats{
		p50: us(percentile(s, 0.50)), p90: us(percentile(s, 0.90)), p99: us(percentile(s, 0.99)),
		p999: us(percentile(s, 0.999)), max: us(s[len(s)-1]), mean: us(sum / time.Duration(len(s))),
	}, true
}

// percentile of sorted lats (nearest rank).
func percentile(lats []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(lats)))) - 1
	return lats[min(max(i, 0), len(lats)-1)]
}

// dialLatClients opens n sessions through p, a few at a time (SCRAM costs
// Prosody a PBKDF2 per login), and starts their readers.
func dialLatClients(b *testing.B, p *latPeer, domain string, n int) []*latClient {
	cs := make([]*latClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := xmppclient.DialOptions(ctx, p.addr, domain, latUser, latPassword, xmppclient.Options{
				Resource:  fmt.Sprintf("lat-%s-%d", p.Name, i),
				Mechanism: "SCRAM-SHA-1",
			})
			if err != nil {
				errs[i] = fmt.Errorf("%s client %d: %w", p.Name, i, err)
				return
			}
			cs[i] = &latClient{c: c, jid: c.JID()}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, lc := range cs {
				if lc != nil {
					lc.c.Close()
				}
			}
			b.Fatalf("%v (and %d more)", err, countErrs(errs[i+1:]))
		}
	}
	for _, lc := range cs {
		go lc.read()
	}
	return cs
}

func countErrs(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

// runLatSlice offers s.Rate messages per second through p's clients for d,
// waits for the replies in flight and adds what it measured to acc (nil:
// warm-up, discard).
func runLatSlice(b *testing.B, s latencySettings, p *latPeer, prosodyPID int, d time.Duration, acc *latResult) {
	for _, lc := range p.clients {
		if err, _ := lc.err.Load().(error); err != nil {
			b.Fatalf("%s %s: reader: %v", p.Name, lc.jid, err)
		}
		lc.mu.Lock()
		lc.lats = lc.lats[:0]
		lc.mu.Unlock()
		lc.sent.Store(0)
		lc.recv.Store(0)
	}
	proxyCPU0 := cpuSeconds(b, p.pid)
	prosodyCPU0 := cpuSeconds(b, prosodyPID)

	// Each client sends every n/rate seconds; the clients are staggered
	// evenly over one interval, so the total is smooth.
	n := len(p.clients)
	interval := time.Duration(float64(time.Second) * float64(n) / float64(s.Rate))
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	var sendErr atomic.Value
	for i, lc := range p.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(interval * time.Duration(i) / time.Duration(n))
			for next.Before(end) {
				time.Sleep(time.Until(next))
				body := "t=" + strconv.FormatInt(int64(time.Since(latEpoch)), 10)
				if err := lc.c.SendMessage(lc.jid, body); err != nil {
					sendErr.Store(err)
					return
				}
				lc.sent.Add(1)
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := sendErr.Load().(error); err != nil {
		b.Fatalf("%s: send: %v", p.Name, err)
	}

	// Drain: every message back, or the bound.
	drainEnd := time.Now().Add(latDrainTimeout)
	for time.Now().Before(drainEnd) {
		done := true
		for _, lc := range p.clients {
			if lc.recv.Load() < lc.sent.Load() {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	proxyCPU := cpuSeconds(b, p.pid) - proxyCPU0
	prosodyCPU := cpuSeconds(b, prosodyPID) - prosodyCPU0
	if acc == nil {
		return
	}
	acc.MeasuredSeconds += elapsed.Seconds()
	acc.ProxyCPUSeconds += proxyCPU
	acc.ProsodyCPUSeconds += prosodyCPU
	var sl []time.Duration
	for _, lc := range p.clients {
		lc.mu.Lock()
		sl = append(sl, lc.lats...)
		lc.mu.Unlock()
		acc.Sent += lc.sent.Load()
	}
	p.lats = append(p.lats, sl...)
	acc.Received += int64(len(sl))
	st := latSliceStat{Received: len(sl), CPUms: proxyCPU * 1e3}
	if len(sl) > 0 {
		slices.Sort(sl)
		st.P50us, st.P99us, st.Maxus = us(percentile(sl, 0.5)), us(percentile(sl, 0.99)), us(sl[len(sl)-1])
	}
	acc.Slices = append(acc.Slices, st)
}

// cpuSeconds is procCPU in seconds, 0 for pid 0 (direct: no proxy).
func cpuSeconds(b testing.TB, pid int) float64 {
	if pid == 0 {
		return 0
	}
	return procCPU(b, pid).Seconds()
}

func writeLatencyResults(b *testing.B, s latencySettings, n int, results []latResult, added map[string]map[string]float64, ratios map[string]float64) {
	out := struct {
		Benchmark string                        `json:"benchmark"`
		Date      string                        `json:"date"`
		Settings  latencySettings               `json:"settings"`
		Rounds    int                           `json:"rounds"`
		Peers     []latResult                   `json:"peers"`
		AddedUs   map[string]map[string]float64 `json:"added_over_direct"`
		Ratios    map[string]float64            `json:"guard_over_haproxy,omitempty"`
	}{"BenchmarkLatency", time.Now().UTC().Format(time.RFC3339), s, n, results, added, ratios}
	writeResults(b, "latency", s.Smoke, out)
}

// countSyscalls runs a slice of round trips through p with strace -c
// attached to every thread of the proxy and returns its system calls per
// 1,000 round trips; 0 without strace (apt-get install -y strace).
func countSyscalls(b *testing.B, s latencySettings, p *latPeer, prosodyPID int, d time.Duration) float64 {
	path, err := exec.LookPath("strace")
	if err != nil {
		b.Logf("strace not installed (apt-get install -y strace): system calls not counted")
		return 0
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "strace-"+p.Name+".txt")
	args := []string{"-c", "-f", "-q", "-o", out}
	for _, t := range tasks {
		args = append(args, "-p", t.Name())
	}
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // attached to every thread
	var r latResult
	runLatSlice(b, s, p, prosodyPID, d, &r)
	cmd.Process.Signal(os.Interrupt) // strace detaches and writes its summary
	waitBounded(cmd, 10*time.Second)
	calls, err := straceTotal(out)
	if err != nil || r.Received == 0 {
		b.Logf("%s: strace: %v (%d round trips)", p.Name, err, r.Received)
		return 0
	}
	b.Logf("%-8s %d system calls for %d round trips under strace:\n%s", p.Name, calls, r.Received, childproc.Tail(childproc.ReadFile(out), 14))
	return float64(calls) / float64(r.Received) * 1000
}

// straceTotal reads the calls of the total line of an strace -c summary.
func straceTotal(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// "100.00    0.047371           2     19873      2440 total"
		if len(f) >= 5 && f[len(f)-1] == "total" {
			return strconv.ParseInt(f[3], 10, 64)
		}
	}
	return 0, fmt.Errorf("no total line in %q", data)
}

// waitBounded waits for cmd, killing it (by PID) after limit.
func waitBounded(cmd *exec.Cmd, limit time.Duration) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
	}
}
