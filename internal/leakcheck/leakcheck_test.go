package leakcheck

import (
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeT records what the cleanup reports.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	errs     []string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Error(args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, strings.TrimSpace(sprint(args)))
	f.mu.Unlock()
}
func (f *fakeT) Errorf(string, ...any)             { f.Error("errorf") }
func (f *fakeT) Fatalf(format string, args ...any) { f.Error("fatal") }
func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func sprint(args []any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

func TestClean(t *testing.T) {
	Check(t)
	done := make(chan struct{})
	go func() { time.Sleep(50 * time.Millisecond); close(done) }()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-done; f.Close() }() // both gone shortly after the test body
}

func TestReportsGoroutineAndFD(t *testing.T) {
	// The report is count-based: let goroutines of earlier tests finish
	// first, so that none ending during this test hides the new ones.
	settle(t)
	ft := &fakeT{TB: t}
	CheckTimeout(ft, 100*time.Millisecond)
	stop := make(chan struct{})
	for i := 0; i < 3; i++ {
		go func() { <-stop }()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft.runCleanups()
	close(stop)
	l.Close()
	if len(ft.errs) != 1 {
		t.Fatalf("errors: %q", ft.errs)
	}
	msg := ft.errs[0]
	for _, want := range []string{"goroutines, baseline", "TestReportsGoroutineAndFD", "open fds", "socket:["} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
}

// settle waits (bounded) until the goroutine count has not changed for 100ms.
func settle(t *testing.T) {
	last, since := runtime.NumGoroutine(), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n := runtime.NumGoroutine(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 100*time.Millisecond {
			return
		}
	}
}
