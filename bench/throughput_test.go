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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The throughput benchmark: S streams through each peer send large chat
// stanzas one way, as fast as they can, to a backend process that counts
// and discards them. Four peers run in the same run, in rounds that rotate
// over them: a direct connection to the backend, Guard (XMPP framing, the
// default), Guard raw (tls mode "passthrough": bytes relayed as they come)
// and HAProxy (mode tcp). The figure is the bytes the backend received per
// second, and the proxy's CPU time per GB relayed.
//
// Settings (environment):
//
//	GUARD_BENCH_THROUGHPUT_STREAMS   streams per peer (default 8)
//	GUARD_BENCH_THROUGHPUT_SIZES     stanza sizes in bytes (default "16384,1024")
//	GUARD_BENCH_THROUGHPUT_DURATION  how long each peer is driven per round (default 3s)
//	GUARD_BENCH_THROUGHPUT_ROUNDS    rounds over the peers (default 3)
//	GUARD_BENCH_SMOKE=1              as -short: 2 streams, 0.3s, 1 round, 16384 only

const (
	// throughputSinkEnv makes the test binary run as the counting backend.
	throughputSinkEnv = "GUARD_BENCH_THROUGHPUT_SINK"

	throughputStreamEnd  = "</stream:stream>"
	throughputStanzaHead = "<message to='x@localhost' type='chat'><body>"
	throughputStanzaTail = "</body></message>"
	// throughputFiller is the body text, repeated and cut to size: plain
	// text, with nothing XML must escape.
	throughputFiller = "Guard relays whole stanzas, this body is plain text without markup. "

	// throughputWrite is about how many bytes each client write carries
	// (whole stanzas, at least one).
	throughputWrite = 256 << 10
	// throughputIOTimeout bounds each write, the stream's opening and its
	// close; throughputStreamLimit bounds a backend stream's whole life.
	throughputIOTimeout   = 10 * time.Second
	throughputStreamLimit = 5 * time.Minute
)

// throughputSettings is the size of one run, as written to the results.
type throughputSettings struct {
	Streams  int     `json:"streams"`
	Sizes    []int   `json:"stanza_sizes"`
	Seconds  float64 `json:"seconds_per_peer"`
	Rounds   int     `json:"rounds"`
	Smoke    bool    `json:"smoke"`
	duration time.Duration
}

func throughputSettingsFromEnv(b testing.TB) throughputSettings {
	s := throughputSettings{
		Streams:  envInt("GUARD_BENCH_THROUGHPUT_STREAMS", 8),
		Sizes:    []int{16384, 1024},
		Rounds:   envInt("GUARD_BENCH_THROUGHPUT_ROUNDS", 3),
		duration: 3 * time.Second,
	}
	if v := os.Getenv("GUARD_BENCH_THROUGHPUT_SIZES"); v != "" {
		s.Sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < len(throughputStanzaHead)+len(throughputStanzaTail)+1 {
				b.Fatalf("GUARD_BENCH_THROUGHPUT_SIZES=%q: %q is not a stanza size (at least %d bytes)",
					v, f, len(throughputStanzaHead)+len(throughputStanzaTail)+1)
			}
			s.Sizes = append(s.Sizes, n)
		}
	}
	if d, err := time.ParseDuration(os.Getenv("GUARD_BENCH_THROUGHPUT_DURATION")); err == nil && d > 0 {
		s.duration = d
	}
	if testing.Short() || os.Getenv("GUARD_BENCH_SMOKE") == "1" {
		s = throughputSettings{Streams: 2, Sizes: []int{16384}, Rounds: 1, duration: 300 * time.Millisecond, Smoke: true}
	}
	s.Seconds = s.duration.Seconds()
	return s
}

// throughputResult is one peer's figures for one stanza size, summed over
// the rounds. MB are 10^6 bytes, GB 10^9.
type throughputResult struct {
	Peer            string  `json:"peer"`
	StanzaBytes     int     `json:"stanza_bytes"`
	Bytes           int64   `json:"bytes"`
	Seconds         float64 `json:"seconds"`
	MBPerS          float64 `json:"mb_per_s"`
	RatioToDirect   float64 `json:"ratio_to_direct"`
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds"`
	ProxyCPUPerGB   float64 `json:"proxy_cpu_s_per_gb"`

	backendCPUSeconds float64
	clientCPUSeconds  float64
}

// throughputFile is results/throughput.json.
type throughputFile struct {
	Date     string             `json:"date"` // when it was written, UTC, RFC 3339
	Settings throughputSettings `json:"settings"`
	Results  []throughputResult `json:"results"`
	Ratios   map[string]float64 `json:"ratios"`
}

// throughputPeer is one way to the backend: its address, and the PID of
// the proxy (0 for direct).
type throughputPeer struct {
	name string
	addr string
	pid  int
}

// BenchmarkThroughput measures the one-way relay of large stanzas: bytes
// per second the backend receives, direct and through each proxy, and each
// proxy's CPU time per GB. Each stanza size is a sub-benchmark; the figures
// go to results/throughput.json (throughput-smoke.json in smoke mode).
func BenchmarkThroughput(b *testing.B) {
	s := throughputSettingsFromEnv(b)
	sink := startThroughputSink(b)
	peers := []throughputPeer{{name: "direct", addr: sink.addr}}
	for _, p := range proxies(b) {
		addr, pid, stop := p.start(b, sink.addr)
		b.Cleanup(stop)
		peers = append(peers, throughputPeer{p.name, addr, pid})
		if p.name == "guard" {
			addr, pid, stop := startGuardRaw(b, sink.addr)
			b.Cleanup(stop)
			peers = append(peers, throughputPeer{"guard-raw", addr, pid})
		}
	}

	var results []throughputResult
	rounds := 0 // rounds run: b.N times s.Rounds
	for _, size := range s.Sizes {
		b.Run(fmt.Sprintf("stanza-%d", size), func(b *testing.B) {
			payload := throughputPayload(size)
			totals := make([]throughputResult, len(peers))
			rounds = max(rounds, b.N*s.Rounds)
			for i := 0; i < b.N; i++ {
				for round := 0; round < s.Rounds; round++ {
					for k, p := range peers {
						runThroughput(b, s, sink, p, size, payload, &totals[k])
					}
				}
			}
			direct := totals[0].MBPerS
			for k, p := range peers {
				r := &totals[k]
				r.Peer, r.StanzaBytes = p.name, size
				if direct > 0 {
					r.RatioToDirect = r.MBPerS / direct
				}
				b.ReportMetric(r.MBPerS, p.name+":MB/s")
				gb := float64(r.Bytes) / 1e9
				if p.pid != 0 && gb > 0 {
					b.ReportMetric(r.ProxyCPUPerGB, p.name+":cpu-s/GB")
				}
				if gb > 0 {
					b.Logf("%-9s %5d-byte stanzas  %8.1f MB/s  %.2f of direct  proxy CPU %5.2f s/GB  backend %5.2f s/GB  clients %5.2f s/GB",
						p.name, size, r.MBPerS, r.RatioToDirect, r.ProxyCPUPerGB, r.backendCPUSeconds/gb, r.clientCPUSeconds/gb)
				}
			}
			// The framework may run a sub-benchmark again with a larger
			// b.N: keep the last run's figures only.
			results = slices.DeleteFunc(results, func(r throughputResult) bool { return r.StanzaBytes == size })
			results = append(results, totals...)
		})
	}

	ratios := map[string]float64{}
	for _, size := range s.Sizes {
		h := findThroughput(results, "haproxy", size)
		if h == nil || h.MBPerS == 0 {
			continue
		}
		for _, name := range []string{"guard", "guard-raw"} {
			if r := findThroughput(results, name, size); r != nil {
				key := fmt.Sprintf("%s_vs_haproxy_%d", strings.ReplaceAll(name, "-", "_"), size)
				ratios[key] = r.MBPerS / h.MBPerS
			}
		}
	}
	s.Rounds = rounds
	writeThroughputResults(b, throughputFile{Settings: s, Results: results, Ratios: ratios})

	// Behaviour, never timing: every peer relayed something (runThroughput
	// checked each round's bytes against what the clients wrote).
	for _, r := range results {
		if r.Bytes == 0 {
			b.Errorf("%s, %d-byte stanzas: nothing relayed", r.Peer, r.StanzaBytes)
		}
	}
}

func findThroughput(rs []throughputResult, peer string, size int) *throughputResult {
	for i := range rs {
		if rs[i].Peer == peer && rs[i].StanzaBytes == size {
			return &rs[i]
		}
	}
	return nil
}

// throughputPayload is one client write: whole stanzas of exactly size
// bytes each, about throughputWrite bytes in all.
func throughputPayload(size int) []byte {
	n := size - len(throughputStanzaHead) - len(throughputStanzaTail)
	body := strings.Repeat(throughputFiller, n/len(throughputFiller)+1)[:n]
	stanza := throughputStanzaHead + body + throughputStanzaTail
	return []byte(strings.Repeat(stanza, max(1, throughputWrite/size)))
}

// runThroughput drives one peer for one round and adds what it measured to
// acc. Every stream opens (client header → backend header), then writes
// payload until the round's time is up, ends its stream with
// </stream:stream> and a FIN, and waits for the backend's end and close.
// By then the backend has counted the stream, so its count is complete:
// it must equal what the clients wrote, byte for byte.
func runThroughput(b *testing.B, s throughputSettings, sink *throughputSink, p throughputPeer, size int, payload []byte, acc *throughputResult) {
	conns := make([]*net.TCPConn, s.Streams)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := openThroughputStream(p.addr)
		if err != nil {
			b.Fatalf("%s: stream %d: %v", p.name, i, err)
		}
		conns[i] = c
	}

	st0 := sink.stats(b)
	proxy0, backend0 := cpuSeconds(b, p.pid), cpuSeconds(b, sink.pid)
	client0 := procCPU(b, os.Getpid())
	start := time.Now()
	end := start.Add(s.duration)
	written := make([]int64, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { written[i], errs[i] = sendThroughput(c, payload, end) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	proxyCPU, backendCPU := cpuSeconds(b, p.pid)-proxy0, cpuSeconds(b, sink.pid)-backend0
	clientCPU := (procCPU(b, os.Getpid()) - client0).Seconds()
	st1 := sink.stats(b)
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("%s, %d-byte stanzas: %v", p.name, size, err)
	}

	var sent int64
	for _, n := range written {
		sent += n
	}
	got := st1.Bytes - st0.Bytes
	if n := st1.Streams - st0.Streams; n != len(conns) {
		b.Errorf("%s, %d-byte stanzas: the backend saw %d streams end, want %d", p.name, size, n, len(conns))
	}
	if n := st1.Unclean - st0.Unclean; n > 0 {
		b.Errorf("%s, %d-byte stanzas: %d streams did not reach the backend whole (no </stream:stream> before the FIN)", p.name, size, n)
	}
	if got != sent || got%int64(size) != 0 {
		b.Errorf("%s, %d-byte stanzas: the backend received %d bytes (%d stanzas and %d bytes), the clients wrote %d",
			p.name, size, got, got/int64(size), got%int64(size), sent)
	}

	acc.Bytes += got
	acc.Seconds += elapsed.Seconds()
	acc.ProxyCPUSeconds += proxyCPU
	acc.backendCPUSeconds += backendCPU
	acc.clientCPUSeconds += clientCPU
	if acc.Seconds > 0 {
		acc.MBPerS = float64(acc.Bytes) / 1e6 / acc.Seconds
	}
	if acc.Bytes > 0 {
		acc.ProxyCPUPerGB = acc.ProxyCPUSeconds / (float64(acc.Bytes) / 1e9)
	}
}

// openThroughputStream dials addr and opens a stream: the client's header
// out, the backend's header back.
func openThroughputStream(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, throughputIOTimeout)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	tc.SetDeadline(time.Now().Add(throughputIOTimeout))
	if _, err := io.WriteString(tc, clientHeader); err != nil {
		tc.Close()
		return nil, err
	}
	if _, err := readStreamHeader(tc); err != nil {
		tc.Close()
		return nil, fmt.Errorf("reading the backend's header: %w", err)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// sendThroughput writes payload to c until end, then ends the stream and
// waits until the backend has ended it too. It returns the stanza bytes
// written: whole payloads, so whole stanzas.
func sendThroughput(c *net.TCPConn, payload []byte, end time.Time) (int64, error) {
	var written int64
	for time.Now().Before(end) {
		c.SetWriteDeadline(time.Now().Add(throughputIOTimeout))
		n, err := c.Write(payload)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	c.SetDeadline(time.Now().Add(throughputIOTimeout))
	if _, err := io.WriteString(c, throughputStreamEnd); err != nil {
		return written, err
	}
	if err := c.CloseWrite(); err != nil {
		return written, err
	}
	reply, err := io.ReadAll(io.LimitReader(c, 4096))
	if err != nil {
		return written, fmt.Errorf("waiting for the backend's end: %w", err)
	}
	if !bytes.HasSuffix(reply, []byte(throughputStreamEnd)) {
		return written, fmt.Errorf("the stream ended with %q, not the backend's %s", reply, throughputStreamEnd)
	}
	return written, nil
}

// readStreamHeader reads from c up to the end of a stream header (the '>'
// of <stream:stream ...>), at most 4 KiB, and returns what it read past it.
func readStreamHeader(c net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for len(buf) < cap(buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf, []byte("<stream:stream")); i >= 0 {
			if j := bytes.IndexByte(buf[i:], '>'); j >= 0 {
				return buf[i+j+1:], nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, errors.New("no stream header in the first 4 KiB")
}

// throughputStats are the counting backend's totals since it started.
type throughputStats struct {
	Streams int   `json:"streams"` // streams that ended (the client's FIN)
	Bytes   int64 `json:"bytes"`   // bytes between the headers and </stream:stream>
	Unclean int   `json:"unclean"` // streams that did not end with </stream:stream> and a FIN
}

// throughputSink is the parent's handle on the counting backend process.
type throughputSink struct {
	addr string
	pid  int
	in   io.WriteCloser
	out  *bufio.Reader
	cmd  *exec.Cmd
}

func startThroughputSink(b *testing.B) *throughputSink {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), throughputSinkEnv+"=1")
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
	p := &throughputSink{pid: cmd.Process.Pid, in: in, out: bufio.NewReader(stdout), cmd: cmd}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("throughput backend: %v", err)
	}
	p.addr = strings.TrimSpace(line)
	return p
}

func (p *throughputSink) stats(b *testing.B) throughputStats {
	if _, err := io.WriteString(p.in, "stats\n"); err != nil {
		b.Fatalf("throughput backend: %v", err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("throughput backend: %v", err)
	}
	var st throughputStats
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		b.Fatalf("throughput backend stats %q: %v", line, err)
	}
	return st
}

// runThroughputSink is the counting backend process. Each stream gets a
// header in answer to the client's; everything after the client's header
// is read and counted, and at the client's FIN the stream's count (less
// the final </stream:stream>) is added to the totals before the backend
// sends its own </stream:stream> and closes: a client that has seen that
// end knows its bytes are counted. It prints its address, answers "stats"
// on stdin with a JSON line, and exits when stdin closes.
func runThroughputSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughput backend:", err)
		os.Exit(1)
	}
	var (
		mu sync.Mutex
		st throughputStats
	)
	acceptEach(ln, func(c net.Conn) {
		go func() {
			defer c.Close()
			n, clean := countThroughputStream(c)
			mu.Lock()
			st.Streams++
			st.Bytes += n
			if !clean {
				st.Unclean++
			}
			mu.Unlock()
			io.WriteString(c, throughputStreamEnd)
		}()
	})
	fmt.Println(ln.Addr().String())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "stats" {
			fmt.Println("unknown command")
			continue
		}
		mu.Lock()
		data, _ := json.Marshal(st)
		mu.Unlock()
		fmt.Println(string(data))
	}
	ln.Close()
	os.Exit(0)
}

// countThroughputStream answers the client's header and reads the stream
// to its FIN. It returns the bytes after the client's header, less a final
// </stream:stream>, and whether the stream ended with one and a FIN.
func countThroughputStream(c net.Conn) (int64, bool) {
	c.SetDeadline(time.Now().Add(throughputStreamLimit))
	rest, err := readStreamHeader(c)
	if err != nil {
		return 0, false
	}
	if _, err := io.WriteString(c, sinkHeader); err != nil {
		return 0, false
	}
	n := int64(len(rest))
	tail := keepTail(nil, rest)
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Read(buf)
		n += int64(k)
		tail = keepTail(tail, buf[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, false
		}
	}
	if !bytes.HasSuffix(tail, []byte(throughputStreamEnd)) {
		return n, false
	}
	return n - int64(len(throughputStreamEnd)), true
}

// keepTail returns the last len(throughputStreamEnd) bytes of tail
// followed by b.
func keepTail(tail, b []byte) []byte {
	const l = len(throughputStreamEnd)
	if len(b) >= l {
		return append(tail[:0], b[len(b)-l:]...)
	}
	tail = append(tail, b...)
	return tail[max(0, len(tail)-l):]
}

func writeThroughputResults(b *testing.B, f throughputFile) {
	f.Date = time.Now().UTC().Format(time.RFC3339)
	writeResults(b, "throughput", f.Settings.Smoke, f)
}
