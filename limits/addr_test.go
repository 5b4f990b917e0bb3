package limits

import (
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestKey(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := Key(netip.MustParseAddr(tt.addr))
			if got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("Key(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
	if got := Key(netip.Addr{}); got != (netip.Prefix{}) {
		t.Fatalf("Key(zero) = %v, want zero Prefix", got)
	}
}

// step is one call in an AddrLimiter script: admit (from addr at t0+at) or
// release the n-th successful admission.
type step struct {
	addr    string
	at      time.Duration
	release int // if > 0: release admission number release (1-based) instead
	want    error
}

func TestAddrLimiter(t *testing.T) {
	tests := []struct {
		name  string
		lim   AddrLimits
		steps []step
	}{
		{"conns cap", AddrLimits{MaxConns: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: ErrTooManyConns},
			{addr: "192.0.2.2"}, // other key, own count
			{release: 1},
			{release: 1}, // idempotent
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: ErrTooManyConns},
		}},
		{"rate with burst", AddrLimits{Rate: 1, Burst: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: ErrRateLimited},
			{addr: "192.0.2.9"},
			{addr: "192.0.2.1", at: 999 * time.Millisecond, want: ErrRateLimited},
			{addr: "192.0.2.1", at: time.Second},
			{addr: "192.0.2.1", at: 1500 * time.Millisecond, want: ErrRateLimited},
			{addr: "192.0.2.1", at: 2 * time.Second},
		}},
		{"burst below 1 means 1", AddrLimits{Rate: 10}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: ErrRateLimited},
			{addr: "192.0.2.1", at: 100 * time.Millisecond},
		}},
		{"conns refusal spends no token", AddrLimits{MaxConns: 1, Rate: 1, Burst: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: ErrTooManyConns},
			{addr: "192.0.2.1", want: ErrTooManyConns},
			{release: 1},
			{addr: "192.0.2.1"}, // second token still there
		}},
		{"IPv6 /64 shares one count", AddrLimits{MaxConns: 2}, []step{
			{addr: "2001:db8::1"},
			{addr: "2001:db8::ffff:2"},
			{addr: "2001:db8::abcd:3", want: ErrTooManyConns},
			{addr: "2001:db8:0:1::1"}, // next /64
		}},
		{"IPv4-mapped is the IPv4 key", AddrLimits{MaxConns: 1}, []step{
			{addr: "::ffff:198.51.100.7"},
			{addr: "198.51.100.7", want: ErrTooManyConns},
		}},
		{"table full of busy keys", AddrLimits{MaxConns: 5, MaxKeys: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.2"},
			{addr: "192.0.2.3", want: ErrAddrTableFull},
			{addr: "192.0.2.1"}, // tracked keys still admitted
			{release: 2},
			{addr: "192.0.2.3"}, // 192.0.2.2 is gone: room again
		}},
		{"idle key evicted for a new one", AddrLimits{Rate: 1, Burst: 1, MaxKeys: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.2"},
			{release: 1}, // 192.0.2.1 idle, its bucket empty
			{addr: "192.0.2.3"},
			// 192.0.2.1's empty bucket was evicted: the documented price of the bound.
			{addr: "192.0.2.1", want: ErrAddrTableFull},
			{release: 3},
			{addr: "192.0.2.1"},
		}},
		{"no limits", AddrLimits{}, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {release: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewAddrLimiter(tt.lim)
			var releases []func()
			for i, s := range tt.steps {
				if s.release > 0 {
					releases[s.release-1]()
					continue
				}
				rel, err := l.Admit(Key(netip.MustParseAddr(s.addr)), t0.Add(s.at))
				if !errors.Is(err, s.want) {
					t.Fatalf("step %d: Admit(%s, +%v) err = %v, want %v", i, s.addr, s.at, err, s.want)
				}
				if (err == nil) != (rel != nil) {
					t.Fatalf("step %d: release = %v with err %v", i, rel != nil, err)
				}
				if err == nil {
					releases = append(releases, rel)
				}
			}
		})
	}
}

func TestAddrLimiterForgetting(t *testing.T) {
	k1 := Key(netip.MustParseAddr("192.0.2.1"))
	k2 := Key(netip.MustParseAddr("192.0.2.2"))

	t.Run("rate 0 drops a key with its last connection", func(t *testing.T) {
		l := NewAddrLimiter(AddrLimits{MaxConns: 3})
		a, _ := l.Admit(k1, t0)
		b, _ := l.Admit(k1, t0)
		a()
		if l.Len() != 1 {
			t.Fatalf("Len = %d with one connection open, want 1", l.Len())
		}
		b()
		if l.Len() != 0 {
			t.Fatalf("Len = %d after the last release, want 0", l.Len())
		}
	})
	t.Run("refilled idle keys are swept", func(t *testing.T) {
		l := NewAddrLimiter(AddrLimits{Rate: 1, Burst: 1})
		rel, _ := l.Admit(k1, t0)
		rel()
		if _, err := l.Admit(k2, t0.Add(500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if l.Len() != 2 {
			t.Fatalf("Len = %d, want 2 (k1's bucket not yet full)", l.Len())
		}
		if _, err := l.Admit(k2, t0.Add(time.Second)); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("err = %v, want ErrRateLimited", err)
		}
		if l.Len() != 1 {
			t.Fatalf("Len = %d, want 1 (k1 refilled and swept)", l.Len())
		}
	})
	t.Run("SetLimits", func(t *testing.T) {
		l := NewAddrLimiter(AddrLimits{Rate: 1, Burst: 1, MaxKeys: 10})
		var busy func()
		for i := range 10 {
			k := Key(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
			rel, err := l.Admit(k, t0)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				busy = rel
			} else {
				rel()
			}
		}
		l.SetLimits(AddrLimits{Rate: 1, Burst: 1, MaxKeys: 4})
		if l.Len() != 4 {
			t.Fatalf("Len = %d after lowering MaxKeys to 4, want 4", l.Len())
		}
		// The busy key survived; a raised burst applies from its next Admit
		// on, without tokens for the time before it (rate.Limiter's rule).
		l.SetLimits(AddrLimits{Rate: 1, Burst: 3, MaxKeys: 4})
		k0 := Key(netip.AddrFrom4([4]byte{10, 0, 0, 0}))
		for i, want := range []error{nil, ErrRateLimited} {
			if _, err := l.Admit(k0, t0.Add(2*time.Second)); !errors.Is(err, want) {
				t.Fatalf("at 2s, admission %d: err = %v, want %v", i, err, want)
			}
		}
		for i, want := range []error{nil, nil, nil, ErrRateLimited} {
			if _, err := l.Admit(k0, t0.Add(10*time.Second)); !errors.Is(err, want) {
				t.Fatalf("at 10s, admission %d: err = %v, want %v", i, err, want)
			}
		}
		busy()
		l.SetLimits(AddrLimits{MaxConns: 1})
		if l.Len() != 1 {
			t.Fatalf("Len = %d after dropping the rate, want 1 (k0 still busy)", l.Len())
		}
	})
}

// TestAddrLimiterFlood offers 100k distinct keys and checks that the table
// and the heap stay bounded.
func TestAddrLimiterFlood(t *testing.T) {
	const maxKeys, flood = 1000, 100_000
	tests := []struct {
		name string
		lim  AddrLimits
		hold int // keep every hold-th admission open
	}{
		{"rate only, all released", AddrLimits{Rate: 1, Burst: 1, MaxKeys: maxKeys}, 0},
		{"rate and cap, some held", AddrLimits{MaxConns: 2, Rate: 5, Burst: 5, MaxKeys: maxKeys}, 200},
		{"cap only", AddrLimits{MaxConns: 2, MaxKeys: maxKeys}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapInuse

			l := NewAddrLimiter(tt.lim)
			var held []func()
			refused := 0
			for i := range flood {
				var a [16]byte
				a[0], a[1] = 0x20, 0x01
				a[4], a[5], a[6] = byte(i>>16), byte(i>>8), byte(i) // distinct /64s
				a[15] = byte(i)
				rel, err := l.Admit(Key(netip.AddrFrom16(a)), t0.Add(time.Duration(i)*time.Microsecond))
				if err != nil {
					refused++
					continue
				}
				if tt.hold > 0 && i%tt.hold == 0 {
					held = append(held, rel)
				} else {
					rel()
				}
				if n := l.Len(); n > maxKeys {
					t.Fatalf("after %d keys: Len = %d > MaxKeys %d", i+1, n, maxKeys)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			delta := int64(ms.HeapInuse) - int64(before)
			t.Logf("Len = %d, refused %d, held %d, HeapInuse delta %d KiB", l.Len(), refused, len(held), delta/1024)
			if refused != 0 {
				t.Errorf("%d distinct new keys refused; idle keys should have made room", refused)
			}
			// 1000 entries take a few hundred KiB (a few MiB of spans when
			// held entries pin them); 100k leaked ones would take over 25 MiB.
			if delta > 8<<20 {
				t.Errorf("HeapInuse grew by %d KiB for a %d-key table", delta/1024, maxKeys)
			}
			for _, rel := range held {
				rel()
			}
			runtime.KeepAlive(l)
		})
	}
}

func TestAddrLimiterConcurrent(t *testing.T) {
	l := NewAddrLimiter(AddrLimits{MaxConns: 3, Rate: rate.Inf, Burst: 1, MaxKeys: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := Key(netip.AddrFrom4([4]byte{192, 0, 2, byte((g*7 + i) % 100)}))
				rel, err := l.Admit(k, time.Now())
				if err != nil {
					if !errors.Is(err, ErrTooManyConns) && !errors.Is(err, ErrAddrTableFull) {
						t.Errorf("Admit: %v", err)
					}
					continue
				}
				go rel()
				rel()
			}
		}()
	}
	wg.Wait()
	waitFor(t, "releases", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range l.entries {
			if e.conns != 0 {
				return false
			}
		}
		return true
	})
	if n := l.Len(); n > 64 {
		t.Fatalf("Len = %d > MaxKeys", n)
	}
}
