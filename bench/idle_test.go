package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleStreams is how many relayed streams the idle benchmark holds. One
// process may hold at most 20,000 descriptors and a relay needs two per
// stream, so 9,000 leaves room for everything else.
var idleStreams = envInt("GUARD_BENCH_IDLE_STREAMS", 9000)

// BenchmarkIdleStreamRSS holds idleStreams open, relayed XMPP streams through
// each proxy and reports the proxy's resident memory per stream. Guard and
// HAProxy (mode tcp) run in the same run against the same sink backend.
func BenchmarkIdleStreamRSS(b *testing.B) {
	sink := startSink(b)
	for _, p := range proxies(b) {
		b.Run(p.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n := idleStreams
				if testing.Short() {
					n = 200 // smoke: the machinery, not the figure
				}
				perStream, total := measureIdle(b, p, sink, n)
				b.ReportMetric(perStream, "B/stream")
				b.ReportMetric(float64(total)/(1<<20), "MiB-rss")
			}
		})
	}
}

func measureIdle(b *testing.B, p proxy, sink string, n int) (float64, int64) {
	addr, pid, stop := p.start(b, sink)
	defer stop()
	// Warm up with one stream so that baseline includes the fixed costs.
	warm := openStreams(b, addr, 1)
	time.Sleep(200 * time.Millisecond)
	base := rss(b, pid)
	conns := openStreams(b, addr, n)
	time.Sleep(time.Second)
	after := rss(b, pid)
	for _, c := range append(conns, warm...) {
		c.Close()
	}
	return float64(after-base) / float64(n), after
}

// openStreams opens n streams through addr, each one opened end to end: the
// client's header reaches the sink, whose header comes back.
func openStreams(b *testing.B, addr string, n int) []net.Conn {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, clientHeader); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, len(sinkHeader))
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				c.SetDeadline(time.Time{})
			}
		}()
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

// rss returns the resident set size of process pid in bytes.
func rss(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
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
