package proxy

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/hashicorp/go-hclog"
)

// The governor returns memory once per burst, after the stream count and
// the allocation rate have settled, and never while Guard is busy.
func TestMemoryGovernor(t *testing.T) {
	const mb = 1 << 20
	type look struct {
		open      int
		allocMB   uint64 // allocated since the start
		freeMB    uint64
		wantFreed bool
	}
	tests := []struct {
		name  string
		looks []look
	}{
		{"a burst opened, then quiet: once", []look{
			{0, 0, 0, false}, {3000, 40, 0, false}, {9000, 90, 0, false},
			{9000, 90, 0, false}, {9000, 91, 0, true}, {9000, 91, 0, false}, {9000, 91, 0, false},
		}},
		{"a burst closed: once more", []look{
			{9000, 0, 0, false}, {9000, 0, 0, false}, {4000, 0, 0, false}, {0, 0, 0, false},
			{0, 0, 0, false}, {0, 0, 0, true}, {0, 0, 0, false},
		}},
		{"small moves are not a burst", []look{
			{1000, 0, 0, false}, {1100, 1, 0, false}, {1100, 1, 0, false}, {1100, 1, 0, false}, {1200, 1, 0, false},
			{1200, 1, 0, false}, {1200, 1, 0, false},
		}},
		{"busy: allocating, the runtime's business", []look{
			{0, 0, 0, false}, {5000, 100, 0, false}, {5000, 200, 0, false}, {5000, 300, 0, false}, {5000, 400, 0, false},
		}},
		{"a count still moving is not settled", []look{
			{0, 0, 0, false}, {2000, 0, 0, false}, {2100, 0, 0, false}, {2200, 0, 0, false}, {2200, 0, 0, false}, {2200, 0, 0, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g memoryGovernor
			now := time.Unix(1000, 0)
			for i, l := range tt.looks {
				if got := g.tick(l.open, l.allocMB*mb, l.freeMB*mb, now, time.Second); got != l.wantFreed {
					t.Fatalf("look %d (%+v): returned %v, want %v", i, l, got, l.wantFreed)
				}
				now = now.Add(time.Second)
			}
		})
	}
	// Quiet with much free heap (a collection of the runtime's own):
	// returned, at most once a minute.
	var g memoryGovernor
	now := time.Unix(1000, 0)
	var calls int
	for i := 0; i < 150; i++ {
		if g.tick(500, 0, 64*mb, now, time.Second) {
			calls++
		}
		now = now.Add(time.Second)
	}
	if calls != 2 {
		t.Fatalf("150 quiet seconds with 64 MiB free: %d returns, want 2 (one a minute)", calls)
	}
}

// A Server with ReturnMemory returns memory after streams opened at once
// have settled, and again after they closed; its governor ends with it.
func TestReturnMemoryAfterBurst(t *testing.T) {
	leakcheck.Check(t)
	var freed atomic.Int32
	oldTick, oldFree := memoryTick, freeOSMemory
	memoryTick, freeOSMemory = 20*time.Millisecond, func() { freed.Add(1) }
	t.Cleanup(func() { memoryTick, freeOSMemory = oldTick, oldFree })

	b := newTestBackend(t)
	s := New(Options{Logger: hclog.NewNullLogger(), ReturnMemory: true})
	la, err := s.Listen(ListenerConfig{Name: "test", Address: "127.0.0.1:0", Backend: Backend{Name: "b", Address: b.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	const n = memoryMinMove + 44
	var closers []func()
	for range n {
		c, bc := openStream(t, b, la.String())
		closers = append(closers, func() { c.Close(); bc.Close() })
	}
	waitFor(t, "memory returned after the streams opened", func() bool { return freed.Load() >= 1 })
	time.Sleep(10 * memoryTick)
	if got := freed.Load(); got != 1 {
		t.Fatalf("while the streams are idle: %d returns, want 1", got)
	}
	for _, c := range closers {
		c()
	}
	waitOpen(t, s, 0)
	waitFor(t, "memory returned after the streams closed", func() bool { return freed.Load() >= 2 })
	s.Close()
}
