package limits

import (
	"testing"
	"time"
)

func TestShaper(t *testing.T) {
	type read struct {
		n    int
		at   time.Duration
		want time.Duration
	}
	tests := []struct {
		name        string
		rate, burst int
		reads       []read
	}{
		{"within burst, then debt", 1000, 1000, []read{
			{1000, 0, 0},
			{500, 0, 500 * time.Millisecond},
			{0, 200 * time.Millisecond, 300 * time.Millisecond}, // still owed
			{0, 500 * time.Millisecond, 0},
			{100, 500 * time.Millisecond, 100 * time.Millisecond},
			{0, 550 * time.Millisecond, 50 * time.Millisecond},
		}},
		{"burst defaults to one second", 1000, 0, []read{
			{1000, 0, 0},
			{1, 0, time.Millisecond},
		}},
		{"delays round up to the nanosecond", 3, 1, []read{
			{1, 0, 0},
			{1, 0, 333_333_334},
			{1, 333_333_334, 333_333_333},
		}},
		{"refill stops at burst", 1000, 1000, []read{
			{1000, 0, 0},
			{2000, time.Hour, time.Second},
		}},
		{"one large read", 1 << 20, 64 << 10, []read{
			{1<<20 + 64<<10, 0, time.Second},
		}},
		{"time going back changes nothing", 1000, 1000, []read{
			{1500, time.Second, 500 * time.Millisecond},
			{0, 0, 500 * time.Millisecond},
		}},
		{"huge read does not overflow", 1, 1, []read{
			{1 << 62, 0, time.Duration(maxCredit/int64(time.Second)-1) * time.Second}, // cost clamped, one second of burst paid
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewShaper(tt.rate, tt.burst)
			for i, r := range tt.reads {
				if got := s.Delay(r.n, t0.Add(r.at)); got != r.want {
					t.Fatalf("read %d (%d bytes at +%v): Delay = %v (%d ns), want %v", i, r.n, r.at, got, int64(got), r.want)
				}
			}
		})
	}
}

func TestShaperUnlimited(t *testing.T) {
	for _, rate := range []int{0, -1} {
		s := NewShaper(rate, 100)
		if s != nil {
			t.Fatalf("NewShaper(%d) = %v, want nil", rate, s)
		}
		if d := s.Delay(1<<30, t0); d != 0 {
			t.Fatalf("nil Shaper: Delay = %v", d)
		}
	}
	var nilShaper *Shaper
	if a := testing.AllocsPerRun(100, func() { nilShaper.Delay(4096, t0) }); a != 0 {
		t.Fatalf("unlimited Delay allocates %v times", a)
	}
	s := NewShaper(1000, 1000)
	now := t0
	if a := testing.AllocsPerRun(100, func() { now = now.Add(time.Millisecond); s.Delay(1, now) }); a != 0 {
		t.Fatalf("Delay allocates %v times", a)
	}
}
