package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The idle-streams benchmarks: how much resident memory a proxy needs per
// open, relayed, idle XMPP stream.
//
//	BenchmarkIdleStreamRSS  one process per proxy, streams opened in steps
//	                        (the curve: RSS against open streams)
//	BenchmarkIdleFleet      50,000 streams through K processes of one kind,
//	                        each with its own sink and its own client holder
//
// One process may hold at most 20,000 descriptors here and a relay needs two
// per stream, so one proxy process holds at most about 9,000 streams; the
// fleet spreads more over several. Settings (environment):
//
//	GUARD_BENCH_IDLE_STREAMS   the curve's top step (default 9000)
//	GUARD_BENCH_IDLE_STEPS     the curve's steps, e.g. "1000,5000,9000" (default
//	                           1000, 3000, 5000, 7000 below the top, then the top)
//	GUARD_BENCH_FLEET_STREAMS  the fleet's streams (default 50000), over
//	                           ceil(streams/8500) processes of each proxy
//	GUARD_BENCH_SMOKE=1        as -short: 100 then 200 streams for the curve,
//	                           2 processes × 100 streams for the fleet
//
// Results go to results/idle.json (idle-smoke.json in smoke mode): the
// curve under "settings" and "peers", the fleet under "fleet"; each
// benchmark keeps the other's section.

// idleStreams is the curve's top step.
var idleStreams = envInt("GUARD_BENCH_IDLE_STREAMS", 9000)

const (
	// idleSources is how many source addresses the clients dial from
	// (127.0.0.1 … 127.0.0.4 for the curve), round robin.
	idleSources = 4
	// fleetPerProcess is the most streams the fleet puts through one proxy.
	fleetPerProcess = 8500
	// idleOpenTimeout bounds the opening of one step, or of the whole fleet.
	idleOpenTimeout = 120 * time.Second
	// idleWorkers is how many streams one client process opens at once.
	idleWorkers = 32

	// The settling of RSS after streams open: wait idleSettleMin, then read
	// RSS every idleSettlePoll until two consecutive readings differ by less
	// than 1%, or until idleSettleMax has passed since the streams opened.
	// Go parks idle streams, and its garbage collector and scavenger
	// return memory lazily (Guard gives a burst's memory back itself, a
	// couple of seconds after the stream count settles): a reading right
	// after the opening is not the steady state.
	idleSettleMin  = 5 * time.Second
	idleSettlePoll = 500 * time.Millisecond
	idleSettleMax  = 10 * time.Second
	// idleAfterClose is how long after the last stream closed the RSS is
	// read again: does the memory of a burst go back?
	idleAfterClose = time.Minute

	// idleHolderEnv makes the test binary run as a client holder (the
	// fleet's clients); its value is "ADDR N SRC,SRC,...".
	idleHolderEnv = "GUARD_BENCH_IDLE_HOLDER"
)

func idleSmoke() bool { return testing.Short() || os.Getenv("GUARD_BENCH_SMOKE") == "1" }

// The results file, results/idle.json.
type idleFile struct {
	Date     string        `json:"date,omitempty"` // when it was last written, UTC, RFC 3339
	Settings *idleSettings `json:"settings,omitempty"`
	Peers    []idlePeer    `json:"peers,omitempty"`
	Fleet    *idleFleet    `json:"fleet,omitempty"`
}

type idleSettings struct {
	Steps           []int `json:"steps"`
	SourceAddresses int   `json:"source_addresses"`
	Smoke           bool  `json:"smoke"`
}

// idlePeer is one proxy's curve. BaseRSS is its RSS with one warm-up
// stream; BytesPerStream is (RSS at the top step − BaseRSS) / the top
// step's streams; Slope is the RSS growth per stream from the first step to
// the last.
type idlePeer struct {
	Peer           string      `json:"peer"`
	BaseRSS        int64       `json:"baseline_rss_bytes"`
	Points         []idlePoint `json:"points"`
	BytesPerStream float64     `json:"bytes_per_stream"`
	Slope          float64     `json:"slope_bytes_per_stream"`
	// AfterCloseRSS is the RSS idleAfterClose after every stream closed
	// (the warm-up stream too); 0: not measured.
	AfterCloseRSS int64 `json:"after_close_rss_bytes"`
	// OpenCPUSeconds is the proxy's CPU time (utime+stime) while the
	// steps' streams opened (from each step's first dial to its last
	// stream answered, summed over the steps); SettleCPUSeconds its CPU
	// time while the readings settled after each step (Guard's collection
	// and return of a burst's memory falls there).
	OpenCPUSeconds   float64 `json:"open_cpu_seconds"`
	SettleCPUSeconds float64 `json:"settle_cpu_seconds"`
}

type idlePoint struct {
	Streams int   `json:"streams"`
	RSS     int64 `json:"rss_bytes"`
}

type idleFleet struct {
	Streams   int             `json:"streams"`
	Processes int             `json:"processes"`
	Peers     []idleFleetPeer `json:"peers"`
}

// idleFleetPeer is one proxy kind's fleet: the RSS of its processes summed,
// with the streams held and with one warm-up stream each (the baseline).
type idleFleetPeer struct {
	Peer           string  `json:"peer"`
	RSSTotal       int64   `json:"rss_bytes_total"`
	BaseTotal      int64   `json:"baseline_rss_bytes_total"`
	BytesPerStream float64 `json:"bytes_per_stream"`
}

// idleProxies are the curve's systems under test: Guard framing XMPP (the
// default listener), Guard relaying bytes (tls mode "passthrough": no XMPP
// framing), and HAProxy in mode tcp when it is installed.
func idleProxies(b testing.TB) []proxy {
	ps := []proxy{
		{"guard", startGuard},
		{"guard-raw", startGuardRaw},
	}
	if haveHAProxy(b) {
		ps = append(ps, proxy{"haproxy", startHAProxy})
	} else {
		b.Logf("haproxy not installed (apt-get install -y haproxy): measuring Guard only")
	}
	return ps
}

// startGuardRaw starts Guard with a passthrough listener: it relays bytes
// as they come, without reading the XMPP inside.
func startGuardRaw(b testing.TB, backend string) (string, int, func()) {
	return startGuardWith(b, backend, "  tls {\n    mode = \"passthrough\"\n  }\n", "")
}

// idleSteps returns the curve's steps.
func idleSteps(b testing.TB) []int {
	if idleSmoke() {
		return []int{100, 200} // smoke: the machinery, not the figure
	}
	var steps []int
	if v := os.Getenv("GUARD_BENCH_IDLE_STEPS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("GUARD_BENCH_IDLE_STEPS=%q: want increasing stream counts, e.g. 1000,5000,9000", v)
			}
			steps = append(steps, n)
		}
	} else {
		for _, n := range []int{1000, 3000, 5000, 7000} {
			if n < idleStreams {
				steps = append(steps, n)
			}
		}
		steps = append(steps, idleStreams)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] <= steps[i-1] {
			b.Fatalf("steps %v: want increasing stream counts", steps)
		}
	}
	if top := steps[len(steps)-1]; 2*top+500 > 20000 {
		b.Fatalf("top step %d: a proxy process may hold 20,000 descriptors, two per stream", top)
	}
	return steps
}

// BenchmarkIdleStreamRSS opens idle, relayed XMPP streams through each proxy
// in steps up to idleStreams and records the proxy's resident memory (VmRSS)
// at each step, once it has settled. The clients are in this process and
// dial from 127.0.0.1 … 127.0.0.4 in turn; each proxy has its own sink
// backend process. It reports bytes per stream: (RSS at the top step − RSS
// with one warm-up stream) / streams.
func BenchmarkIdleStreamRSS(b *testing.B) {
	smoke := idleSmoke()
	steps := idleSteps(b)
	srcs := sourceAddrs(0, idleSources)
	var peers []idlePeer
	for _, p := range idleProxies(b) {
		b.Run(p.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := measureIdleCurve(b, p, steps, srcs)
				top := r.Points[len(r.Points)-1]
				b.ReportMetric(r.BytesPerStream, "B/stream")
				b.ReportMetric(r.Slope, "slope-B/stream")
				b.ReportMetric(float64(top.RSS)/(1<<20), "MiB-rss")
				b.ReportMetric(r.OpenCPUSeconds*1e6/float64(top.Streams), "open-cpu-µs/stream")
				peers = slices.DeleteFunc(peers, func(x idlePeer) bool { return x.Peer == p.name })
				peers = append(peers, r)
			}
		})
	}
	// Behaviour, never memory figures: every step opened all its streams
	// (measureIdleCurve fails otherwise) and every reading is positive.
	for _, r := range peers {
		if r.BaseRSS <= 0 || len(r.Points) != len(steps) {
			b.Errorf("%s: baseline %d, %d points for %d steps", r.Peer, r.BaseRSS, len(r.Points), len(steps))
		}
		for _, pt := range r.Points {
			if pt.RSS <= 0 {
				b.Errorf("%s: RSS %d at %d streams", r.Peer, pt.RSS, pt.Streams)
			}
		}
	}
	if len(peers) == 0 {
		return
	}
	writeIdleResults(b, smoke, func(f *idleFile) {
		f.Settings = &idleSettings{Steps: steps, SourceAddresses: len(srcs), Smoke: smoke}
		f.Peers = peers
	})
}

// measureIdleCurve starts p in front of its own sink, opens one warm-up
// stream, reads the baseline, then opens streams up to each step and reads
// the settled RSS there; then it closes them all and reads the RSS again
// idleAfterClose later.
func measureIdleCurve(b *testing.B, p proxy, steps []int, srcs []net.IP) idlePeer {
	sink := startSink(b)
	addr, pid, stop := p.start(b, sink)
	defer stop()
	// Warm up with one stream so that the baseline includes the fixed costs.
	warm := openStreams(b, addr, 1)
	baseFDs := countFDs(pid)
	base, err := settleRSS(b, p.name+" baseline", []int{pid})
	if err != nil {
		b.Fatal(err)
	}
	r := idlePeer{Peer: p.name, BaseRSS: base[0]}
	var conns []net.Conn
	closed := false
	closeStreams := func() {
		if closed {
			return
		}
		closed = true
		start := time.Now()
		closeAll(append(conns, warm...))
		// Let the proxy see the closes before it is stopped: Guard
		// signalled while its sessions are ending may outlast
		// startProcess's grace and be killed.
		waitFDs(pid, baseFDs-2, 10*time.Second)
		b.Logf("%-9s streams closed in %.1fs: %d descriptors left (%d with the warm-up stream)", p.name,
			time.Since(start).Seconds(), countFDs(pid), baseFDs)
	}
	defer closeStreams()
	for _, step := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), idleOpenTimeout)
		start := time.Now()
		cpu0 := procCPU(b, pid)
		more, err := dialIdleStreams(ctx, addr, step-len(conns), srcs, len(conns), idleWorkers)
		cancel()
		if err != nil {
			b.Fatalf("%s: opening streams %d to %d: %v", p.name, len(conns)+1, step, err)
		}
		conns = append(conns, more...)
		opened := time.Since(start)
		cpu1 := procCPU(b, pid)
		r.OpenCPUSeconds += (cpu1 - cpu0).Seconds()
		v, err := settleRSS(b, fmt.Sprintf("%s %d streams", p.name, step), []int{pid})
		if err != nil {
			b.Fatal(err)
		}
		r.SettleCPUSeconds += (procCPU(b, pid) - cpu1).Seconds()
		r.Points = append(r.Points, idlePoint{Streams: step, RSS: v[0]})
		checkRelaying(b, p.name, pid, step)
		b.Logf("%-9s %5d streams (opened in %4.1fs, settled in %4.1fs): RSS %6.1f MiB, %5d descriptors", p.name, step,
			opened.Seconds(), (time.Since(start) - opened).Seconds(), float64(v[0])/(1<<20), countFDs(pid))
	}
	first, last := r.Points[0], r.Points[len(r.Points)-1]
	r.BytesPerStream = float64(last.RSS-r.BaseRSS) / float64(last.Streams)
	if last.Streams > first.Streams {
		r.Slope = float64(last.RSS-first.RSS) / float64(last.Streams-first.Streams)
	} else {
		r.Slope = r.BytesPerStream // one step: from the baseline
	}
	b.Logf("%-9s baseline %.1f MiB; %.0f B/stream at %d streams; slope %.0f B/stream from %d to %d; CPU %.0f ms opening them, %.0f ms settling",
		p.name, float64(r.BaseRSS)/(1<<20), r.BytesPerStream, last.Streams, r.Slope, first.Streams, last.Streams,
		r.OpenCPUSeconds*1e3, r.SettleCPUSeconds*1e3)
	closeStreams()
	wait := idleAfterClose
	if idleSmoke() {
		wait = time.Second
	}
	time.Sleep(wait)
	after, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	r.AfterCloseRSS = after
	b.Logf("%-9s %s after closing every stream: RSS %.1f MiB (baseline %.1f MiB, %.2f×)", p.name, wait,
		float64(after)/(1<<20), float64(r.BaseRSS)/(1<<20), float64(after)/float64(r.BaseRSS))
	return r
}

// BenchmarkIdleFleet holds GUARD_BENCH_FLEET_STREAMS (default 50,000) idle
// streams through K = ceil(streams/8500) proxy processes of one kind, for
// Guard and for HAProxy. Each proxy has its own sink process and its own
// client holder process (this test binary, idleHolderEnv), which dials from
// its own four source addresses; the K groups open their streams in
// parallel. It reports the proxies' RSS growth over their baselines (one
// warm-up stream each), summed, per stream.
func BenchmarkIdleFleet(b *testing.B) {
	smoke := idleSmoke()
	total := envInt("GUARD_BENCH_FLEET_STREAMS", 50000)
	k := (total + fleetPerProcess - 1) / fleetPerProcess
	if smoke {
		total, k = 200, 2 // smoke: 2 processes × 100 streams
	}
	var peers []idleFleetPeer
	for _, p := range proxies(b) {
		b.Run(p.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := measureFleet(b, p, total, k)
				b.ReportMetric(r.BytesPerStream, "B/stream")
				b.ReportMetric(float64(r.RSSTotal)/(1<<20), "MiB-rss-total")
				peers = slices.DeleteFunc(peers, func(x idleFleetPeer) bool { return x.Peer == p.name })
				peers = append(peers, r)
			}
		})
	}
	for _, r := range peers {
		if r.RSSTotal <= 0 || r.BaseTotal <= 0 {
			b.Errorf("%s: RSS %d, baseline %d", r.Peer, r.RSSTotal, r.BaseTotal)
		}
	}
	if len(peers) == 0 {
		return
	}
	writeIdleResults(b, smoke, func(f *idleFile) {
		f.Fleet = &idleFleet{Streams: total, Processes: k, Peers: peers}
	})
}

// measureFleet runs one fleet of k processes of kind p holding total streams.
func measureFleet(b *testing.B, p proxy, total, k int) idleFleetPeer {
	type group struct {
		addr   string
		pid    int
		stop   func()
		warm   []net.Conn
		fds    int
		n      int
		holder *idleHolder
	}
	gs := make([]*group, k)
	var stopped sync.Once
	stopAll := func() {
		stopped.Do(func() {
			var wg sync.WaitGroup
			for _, g := range gs {
				if g == nil {
					continue
				}
				wg.Go(func() {
					if g.holder != nil {
						g.holder.close()
					}
					closeAll(g.warm)
					waitFDs(g.pid, g.fds, 10*time.Second)
					g.stop()
				})
			}
			wg.Wait()
		})
	}
	defer stopAll()
	for i := range gs {
		sink := startSink(b)
		addr, pid, stop := p.start(b, sink)
		g := &group{addr: addr, pid: pid, stop: stop, n: total / k}
		if i < total%k {
			g.n++
		}
		gs[i] = g
		g.warm = openStreams(b, addr, 1)
		g.fds = countFDs(pid)
	}
	pids := make([]int, k)
	for i, g := range gs {
		pids[i] = g.pid
	}
	base, err := settleRSS(b, p.name+" fleet baseline", pids)
	if err != nil {
		b.Fatal(err)
	}

	// Open every group's streams at once, each from its own holder.
	start := time.Now()
	deadline := start.Add(idleOpenTimeout)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, g := range gs {
		h, err := startIdleHolder(g.addr, g.n, sourceAddrs(i+1, idleSources))
		if err != nil {
			b.Fatal(err)
		}
		g.holder = h
		wg.Go(func() { errs[i] = h.wait(deadline) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("%s fleet: %v", p.name, err)
	}
	opened := time.Since(start)
	after, err := settleRSS(b, p.name+" fleet", pids)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s fleet: %d streams through %d processes opened in %.1fs, settled in %.1fs", p.name, total, k,
		opened.Seconds(), (time.Since(start) - opened).Seconds())
	r := idleFleetPeer{Peer: p.name}
	for i, g := range gs {
		checkRelaying(b, fmt.Sprintf("%s process %d", p.name, i+1), g.pid, g.n)
		r.BaseTotal += base[i]
		r.RSSTotal += after[i]
		b.Logf("%-7s process %d: %5d streams, RSS %6.1f → %6.1f MiB (%.0f B/stream), %5d descriptors", p.name, i+1, g.n,
			float64(base[i])/(1<<20), float64(after[i])/(1<<20), float64(after[i]-base[i])/float64(g.n), countFDs(g.pid))
	}
	r.BytesPerStream = float64(r.RSSTotal-r.BaseTotal) / float64(total)
	b.Logf("%s fleet: %d streams, %d processes: RSS %.1f MiB over a baseline of %.1f MiB, %.0f B/stream", p.name, total, k,
		float64(r.RSSTotal)/(1<<20), float64(r.BaseTotal)/(1<<20), r.BytesPerStream)
	stopAll()
	return r
}

// sourceAddrs returns n source addresses of group g: 127.0.0.1 … 127.0.0.n
// for group 0, 127.g.0.1 … 127.g.0.n for group g.
func sourceAddrs(g, n int) []net.IP {
	ips := make([]net.IP, n)
	for i := range ips {
		ips[i] = net.IPv4(127, byte(g), 0, byte(i+1))
	}
	return ips
}

// idleHolder is the parent's handle on a client holder process.
type idleHolder struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	n    int
	once sync.Once
	done chan struct{}
}

// startIdleHolder starts a client holder that opens n streams to addr from
// srcs in turn.
func startIdleHolder(addr string, n int, srcs []net.IP) (*idleHolder, error) {
	ss := make([]string, len(srcs))
	for i, ip := range srcs {
		ss[i] = ip.String()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", idleHolderEnv, addr, n, strings.Join(ss, ",")))
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &idleHolder{cmd: cmd, in: in, out: bufio.NewReader(out), n: n, done: make(chan struct{})}
	go func() { cmd.Wait(); close(h.done) }()
	return h, nil
}

// wait waits until the holder reports its streams open, until deadline.
func (h *idleHolder) wait(deadline time.Time) error {
	line := make(chan string, 1)
	go func() {
		s, err := h.out.ReadString('\n')
		if err != nil {
			s = "exited: " + err.Error()
		}
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s != fmt.Sprintf("ok %d", h.n) {
			return fmt.Errorf("holder %d: %s", h.cmd.Process.Pid, s)
		}
		return nil
	case <-time.After(time.Until(deadline)):
		return fmt.Errorf("holder %d: %d streams not open after %s", h.cmd.Process.Pid, h.n, idleOpenTimeout)
	}
}

// close makes the holder close its streams and exit (killed after 10s).
func (h *idleHolder) close() {
	h.once.Do(func() {
		h.in.Close()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			h.cmd.Process.Kill()
			<-h.done
		}
	})
}

// runIdleHolder is the client holder process: it opens N streams to ADDR
// from the source addresses in turn, as openStreams does, prints "ok N"
// (or "error ..."), holds the streams until stdin closes, then closes them.
func runIdleHolder(spec string) {
	fail := func(err error) {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	f := strings.Fields(spec)
	if len(f) != 3 {
		fail(fmt.Errorf("%s=%q: want ADDR N SRC,SRC,...", idleHolderEnv, spec))
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		fail(err)
	}
	var srcs []net.IP
	for _, s := range strings.Split(f[2], ",") {
		ip := net.ParseIP(s)
		if ip == nil {
			fail(fmt.Errorf("bad source address %q", s))
		}
		srcs = append(srcs, ip)
	}
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), idleOpenTimeout)
	go func() {
		<-eof // the parent gave up: stop opening
		cancel()
	}()
	conns, err := dialIdleStreams(ctx, f[0], n, srcs, 0, idleWorkers)
	if err != nil {
		fail(err)
	}
	fmt.Printf("ok %d\n", len(conns))
	<-eof
	closeAll(conns)
	os.Exit(0)
}

// openStreams opens n streams through addr, each one opened end to end: the
// client's header reaches the sink, whose header comes back.
func openStreams(b *testing.B, addr string, n int) []net.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), idleOpenTimeout)
	defer cancel()
	conns, err := dialIdleStreams(ctx, addr, n, nil, 0, idleWorkers)
	if err != nil {
		b.Fatal(err)
	}
	return conns
}

// dialIdleStreams opens n streams through addr with workers dialers, each
// one end to end (client header → sink header). Stream i dials from
// srcs[(first+i) % len(srcs)], or from the system's choice without srcs.
// At the first error it stops, closes the streams it opened and returns the
// error.
func dialIdleStreams(ctx context.Context, addr string, n int, srcs []net.IP, first, workers int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	dialers := make([]*net.Dialer, max(len(srcs), 1))
	for i := range dialers {
		// No TCP keepalive, as a phone's client has none: with Go's
		// default (probes after 15 s idle) on both ends of a connection
		// that carried data, this kernel fails a share of the proxy's
		// sockets with ETIMEDOUT once their TCP_USER_TIMEOUT (Guard's
		// probe_timeout, 30 s) has passed, although the client is there:
		// Guard would close streams under the benchmark's feet.
		dialers[i] = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1, Control: bindAddressNoPort}
		if len(srcs) > 0 {
			dialers[i].LocalAddr = &net.TCPAddr{IP: srcs[i]}
		}
	}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		failed.Store(true)
	}
	for range min(workers, n) {
		wg.Go(func() {
			buf := make([]byte, len(sinkHeader))
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d := dialers[(first+i)%len(dialers)]
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					fail(fmt.Errorf("stream %d: %w", first+i, err))
					return
				}
				conns[i] = c
				dl := time.Now().Add(10 * time.Second)
				if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
					dl = cd
				}
				c.SetDeadline(dl)
				if _, err := io.WriteString(c, clientHeader); err != nil {
					fail(fmt.Errorf("stream %d: sending the header: %w", first+i, err))
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					fail(fmt.Errorf("stream %d: reading the sink's header: %w", first+i, err))
					return
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): a socket
// bound to a source address with port 0 gets its port at connect, unique
// per destination, instead of at bind, unique per source address and kept
// from every other connect: without it, tens of thousands of bound client
// sockets would exhaust the ephemeral ports that the proxies' own
// connections to their backends need.
const ipBindAddressNoPort = 24

func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	}); err != nil {
		return err
	}
	return serr
}

// closeAll closes conns (nil ones skipped), 16 at a time.
func closeAll(conns []net.Conn) {
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(conns); i += 16 {
				if conns[i] != nil {
					conns[i].Close()
				}
			}
		})
	}
	wg.Wait()
}

// settleRSS waits until the summed RSS of pids settles (see idleSettleMin)
// and returns each process's last reading.
func settleRSS(b *testing.B, what string, pids []int) ([]int64, error) {
	start := time.Now()
	time.Sleep(idleSettleMin)
	read := func() ([]int64, int64, error) {
		vs := make([]int64, len(pids))
		var sum int64
		for i, pid := range pids {
			v, err := readRSS(pid)
			if err != nil {
				return nil, 0, err
			}
			vs[i] = v
			sum += v
		}
		return vs, sum, nil
	}
	_, prev, err := read()
	if err != nil {
		return nil, err
	}
	for {
		time.Sleep(idleSettlePoll)
		vs, sum, err := read()
		if err != nil {
			return nil, err
		}
		d := sum - prev
		if d < 0 {
			d = -d
		}
		if 100*d < prev {
			return vs, nil
		}
		if time.Since(start) >= idleSettleMax {
			b.Logf("%s: RSS still moving after %s (%.1f → %.1f MiB): taking the last reading", what,
				idleSettleMax, float64(prev)/(1<<20), float64(sum)/(1<<20))
			return vs, nil
		}
		prev = sum
	}
}

// checkRelaying fails the benchmark when process pid holds fewer than two
// descriptors per stream: streams closed under the measurement.
func checkRelaying(b *testing.B, what string, pid, streams int) {
	if n := countFDs(pid); n < 2*streams {
		b.Errorf("%s: %d descriptors for %d streams: the proxy closed streams during the measurement", what, n, streams)
	}
}

// countFDs returns how many descriptors process pid holds (0 if unknown).
func countFDs(pid int) int {
	des, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(des)
}

// waitFDs waits, up to limit, until process pid holds at most n descriptors.
func waitFDs(pid, n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for countFDs(pid) > n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// writeIdleResults applies update to results/idle.json (or idle-smoke.json),
// keeping the other benchmark's section.
func writeIdleResults(b *testing.B, smoke bool, update func(*idleFile)) {
	var f idleFile
	if !readResultsFile("idle", smoke, &f) {
		f = idleFile{}
	}
	update(&f)
	f.Date = time.Now().UTC().Format(time.RFC3339)
	writeResults(b, "idle", smoke, f)
}

// rss returns the resident set size of process pid in bytes.
func rss(b *testing.B, pid int) int64 {
	v, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// readRSS returns the resident set size (VmRSS) of process pid in bytes.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// buildGuard builds cmd/guard once per test binary run.
var buildGuard = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "guard-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "guard")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/guard").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})
