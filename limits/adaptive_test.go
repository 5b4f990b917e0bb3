package limits

import (
	"testing"
	"time"
)

// simulate drives a limiter against a node of capacity c (it fails every
// open beyond c streams in flight) whose open latency is lat(inflight),
// for rounds of opens, each round filling the limit; it returns the limit
// after each round and the failures seen after round skip.
func simulate(a *Adaptive, rounds, skip int, c func(round int) int, lat func(inflight int) time.Duration) (limits []int, lateFailures int) {
	now := time.Unix(0, 0)
	for r := 0; r < rounds; r++ {
		for inflight := 1; inflight <= a.Limit(); inflight++ {
			now = now.Add(10 * time.Millisecond)
			if inflight > c(r) {
				a.Failure(inflight, now)
				if r >= skip {
					lateFailures++
				}
				break
			}
			a.Success(lat(inflight), inflight, true, now)
		}
		now = now.Add(200 * time.Millisecond)
		limits = append(limits, a.Limit())
	}
	return limits, lateFailures
}

func flat(time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return 5 * time.Millisecond }
}

// Jitter of a few milliseconds on a sub-millisecond latency (a LAN) is not
// load: the limit keeps growing.
func TestAdaptiveIgnoresJitter(t *testing.T) {
	a := NewAdaptive(AdaptiveConfig{Initial: 4})
	jitter := func(inflight int) time.Duration {
		return 200*time.Microsecond + time.Duration(inflight%4)*time.Millisecond
	}
	// It grows to the capacity (1000), where the failure takes it to 700.
	limits, _ := simulate(a, 5, 0, func(int) int { return 1000 }, jitter)
	if l := limits[len(limits)-1]; l < 700 {
		t.Errorf("limit %d: jitter shrank it; limits %v", l, limits)
	}
}

// Slow start finds a capacity far above the initial limit in a few rounds;
// the first failure settles the limit under it, and the ceiling keeps it
// there (no failure after the learning rounds) until Reprobe.
func TestAdaptiveFindsCapacity(t *testing.T) {
	a := NewAdaptive(AdaptiveConfig{Initial: 4, Reprobe: time.Hour})
	const capacity = 200
	limits, late := simulate(a, 40, 12, func(int) int { return capacity }, flat(0))
	if late != 0 {
		t.Errorf("%d failures after the learning rounds; limits %v", late, limits)
	}
	last := limits[len(limits)-1]
	if last > capacity || last < capacity/2 {
		t.Errorf("limit %d against a capacity of %d; limits %v", last, capacity, limits)
	}
}

// A capacity that halves and comes back: the limit follows it down at once
// and back up once the ceiling's Reprobe is over.
func TestAdaptiveFollowsCapacity(t *testing.T) {
	a := NewAdaptive(AdaptiveConfig{Initial: 4, Reprobe: time.Second})
	capAt := func(r int) int {
		if r >= 30 && r < 60 {
			return 20
		}
		return 40
	}
	limits, _ := simulate(a, 120, 0, capAt, flat(0))
	if l := limits[59]; l > 20 {
		t.Errorf("limit %d while the capacity was 20; limits %v", l, limits)
	}
	if l := limits[119]; l <= 20 || l > 40 {
		t.Errorf("limit %d after the capacity came back to 40; limits %v", l, limits)
	}
}

// A node that slows down before it fails: the latency gradient holds the
// limit below the level where failures start, so none happens at all. Each
// open has the whole limit in flight (the gate is full while clients wait).
func TestAdaptiveLatencyBeforeFailure(t *testing.T) {
	// Slack 5ms: the model's latencies are 10 and 50ms.
	a := NewAdaptive(AdaptiveConfig{Initial: 4, Min: 2, Slack: 5 * time.Millisecond})
	const capacity = 30
	slow := func(inflight int) time.Duration {
		if inflight > 20 {
			return 50 * time.Millisecond // ×5
		}
		return 10 * time.Millisecond
	}
	now := time.Unix(0, 0)
	var limits []int
	failures := 0
	for range 60 {
		for range a.Limit() {
			// Each open admitted as the limit grows: the limit in flight.
			l := a.Limit()
			now = now.Add(10 * time.Millisecond)
			if l > capacity {
				a.Failure(l, now)
				failures++
				break
			}
			a.Success(slow(l), l, true, now)
		}
		now = now.Add(200 * time.Millisecond)
		limits = append(limits, a.Limit())
	}
	if failures != 0 {
		t.Errorf("%d failures: the latency did not hold the limit below the capacity; limits %v", failures, limits)
	}
	if l := limits[len(limits)-1]; l > 25 || l < 10 {
		t.Errorf("limit %d; want it near where latency rises (20); limits %v", l, limits)
	}
}

// A slow open in a storm (Guard's own CPU, not the backend) holds the limit
// where it is for a moment but does not end slow start: once opens are fast
// again, the limit doubles per round as before.
func TestAdaptiveSlowOpenKeepsSlowStart(t *testing.T) {
	a := NewAdaptive(AdaptiveConfig{Initial: 16, Max: 1000})
	now := time.Unix(0, 0)
	a.Success(time.Millisecond, 1, true, now)
	now = now.Add(time.Second)
	a.Success(150*time.Millisecond, 16, true, now) // one slow open
	held := a.Limit()
	for range 5 { // five rounds of fast opens, each with the limit in flight
		l := a.Limit()
		for range l {
			now = now.Add(time.Millisecond)
			a.Success(time.Millisecond, l, true, now)
		}
	}
	if got := a.Limit(); got < 8*held {
		t.Errorf("limit %d after five fast rounds from %d; want slow start to go on (at least %d)", got, held, 8*held)
	}
}

// The limit never leaves [Min, Max], and a burst of failures counts once.
func TestAdaptiveBounds(t *testing.T) {
	a := NewAdaptive(AdaptiveConfig{Min: 3, Max: 10, Initial: 8})
	now := time.Unix(0, 0)
	a.Failure(8, now)
	after := a.Limit()
	for i := 0; i < 20; i++ {
		a.Failure(8, now.Add(time.Millisecond))
	}
	if got := a.Limit(); got != after || got < 3 {
		t.Errorf("limit %d after a burst of failures, %d after the first; want the burst to count once", got, after)
	}
	for i := 0; i < 50; i++ {
		now = now.Add(time.Second)
		a.Failure(1, now)
	}
	if got := a.Limit(); got != 3 {
		t.Errorf("limit %d after repeated failures, want the floor 3", got)
	}
	b := NewAdaptive(AdaptiveConfig{Max: 10, Initial: 8, Reprobe: time.Nanosecond})
	for i := 0; i < 100; i++ {
		b.Success(time.Millisecond, b.Limit(), true, now)
	}
	if got := b.Limit(); got != 10 {
		t.Errorf("limit %d, want the ceiling 10", got)
	}
	b.SetMax(6)
	if got := b.Limit(); got != 6 {
		t.Errorf("limit %d after SetMax(6)", got)
	}
}

// A probe grows the limit by one at a time, up to Max; a failure's ceiling
// holds it until Reprobe is over, and then it grows again.
func TestAdaptiveProbe(t *testing.T) {
	now := time.Unix(0, 0)
	a := NewAdaptive(AdaptiveConfig{Min: 2, Initial: 4, Max: 6, Reprobe: time.Second})
	for want := 5; want <= 6; want++ {
		if l, grew, _ := a.Probe(now); !grew || l != want {
			t.Fatalf("probe: limit %d grew %v, want %d", l, grew, want)
		}
	}
	if l, grew, until := a.Probe(now); grew || l != 6 || !until.IsZero() {
		t.Fatalf("probe at Max: limit %d grew %v until %v, want 6, no growth, no ceiling", l, grew, until)
	}
	a.Failure(5, now) // 4 held: the ceiling is 5; the limit 0.7×5
	if l, grew, _ := a.Probe(now.Add(time.Millisecond)); !grew || l != 4 {
		t.Fatalf("probe below the ceiling: limit %d grew %v, want 4", l, grew)
	}
	l, grew, until := a.Probe(now.Add(time.Millisecond))
	if grew || l != 4 || !until.Equal(now.Add(time.Second)) {
		t.Fatalf("probe under the ceiling: limit %d grew %v until %v, want 4, no growth until %v", l, grew, until, now.Add(time.Second))
	}
	if l, grew, _ := a.Probe(now.Add(time.Second)); !grew || l != 5 {
		t.Fatalf("probe after Reprobe: limit %d grew %v, want 5", l, grew)
	}
}
