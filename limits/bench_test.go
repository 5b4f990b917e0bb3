package limits

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func BenchmarkGate(b *testing.B) {
	ctx := context.Background()
	b.Run("uncontended", func(b *testing.B) {
		g := NewGate(1, 1)
		b.ReportAllocs()
		for b.Loop() {
			t, err := g.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			t.Release()
		}
	})
	// Many goroutines, enough slots for all: lock contention only.
	b.Run("parallel/ample", func(b *testing.B) {
		g := NewGate(1<<20, 0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, err := g.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				t.Release()
			}
		})
	})
	// More goroutines than slots: callers queue and are handed slots.
	b.Run("parallel/queued", func(b *testing.B) {
		g := NewGate(max(runtime.GOMAXPROCS(0)/2, 1), 1<<20)
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, err := g.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				t.Release()
			}
		})
		if w := g.Stats().Admitted - uint64(b.N); w != 0 {
			b.Fatalf("admitted %d more than b.N", w)
		}
	})
}

func BenchmarkAddrLimiterAdmit(b *testing.B) {
	// A key spends one token per op and earns almost nothing back (time
	// moves 1ns an op at 1 token a second), so its bucket never refills and
	// it is never swept as forgettable: these measure the path where the key
	// is already tracked (or evicted, for the flood of distinct keys).
	lim := AddrLimits{MaxConns: 1 << 20, Rate: 1, Burst: 1 << 30, MaxKeys: 100_000}
	keys := func(n int) []netip.Prefix {
		k := make([]netip.Prefix, n)
		for i := range k {
			k[i] = Key(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		}
		return k
	}
	for _, bc := range []struct {
		name string
		keys int
	}{
		{"1key", 1},
		{"10kkeys", 10_000},   // every key stays in the table
		{"1Mkeys", 1_000_000}, // distinct addresses: evictions at 100k
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := NewAddrLimiter(lim)
			ks := keys(bc.keys)
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now = now.Add(time.Nanosecond)
				rel, err := l.Admit(ks[i%len(ks)], now)
				if err != nil {
					b.Fatal(err)
				}
				rel()
				i++
			}
		})
	}
	// A key whose bucket has refilled by its next connection is dropped
	// and created afresh: the common case for a client that connects now
	// and then.
	b.Run("1key/refilled", func(b *testing.B) {
		l := NewAddrLimiter(AddrLimits{MaxConns: 10, Rate: 1, Burst: 5})
		k := keys(1)[0]
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(10 * time.Second)
			rel, err := l.Admit(k, now)
			if err != nil {
				b.Fatal(err)
			}
			rel()
		}
	})
	b.Run("1key/parallel", func(b *testing.B) {
		l := NewAddrLimiter(lim)
		k := keys(1)[0]
		now := time.Now()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := now
			for pb.Next() {
				now = now.Add(time.Nanosecond)
				rel, err := l.Admit(k, now)
				if err != nil {
					b.Error(err)
					return
				}
				rel()
			}
		})
	})
}

func BenchmarkShaperDelay(b *testing.B) {
	s := NewShaper(1<<20, 64<<10)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		s.Delay(1024, now)
	}
}

func BenchmarkPacerWaitUnlimited(b *testing.B) {
	p := NewPacer(0, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Wait(ctx)
	}
}
