package limits

import (
	"math"
	"sync"
	"time"
)

// Adaptive learns how many streams a backend node can hold from what its
// stream opens tell: how long the backend takes to answer a new stream (the
// stream-open latency) and whether it fails before answering (reset,
// closed, refused, timed out). Its [Adaptive.Limit] is the node's effective
// cap, between Min and Max.
//
// The algorithm, and why:
//
//   - Growth only when the limit binds (clients waiting, or streams in
//     flight within one of it): a node carrying 10 streams says nothing
//     about 1,000. Below the
//     first sign of trouble the limit grows by one per good open (slow
//     start: it doubles every round of opens, so a restarted Openfire with
//     thousands of returning clients is found in a few rounds); after it,
//     by 1/limit per good open (additive increase: one a round). And by
//     one on a [Adaptive.Probe]: streams that stay open send no signal.
//   - A latency gradient: latency over Tolerance times the recent minimum
//     (the node's own unloaded latency, the lowest of the last two
//     Windows) plus Slack shrinks the limit by the ratio, at most by half
//     and never below what is in flight, and holds probes for ten
//     Cooldowns: a backend that slows down under load is relieved before
//     it starts failing. It does not end slow start (a slow open may be
//     Guard's own CPU in a storm); only a failure does.
//     Gradient2 (Netflix's concurrency-limits) and Envoy's adaptive
//     concurrency filter work the same way on request latency.
//   - Multiplicative decrease on a failure before the header: the limit
//     drops to Backoff times what was in flight; and below what was in
//     flight at once, on every failure of a burst, since a node that
//     failed a stream with k others open holds at most k. An Openfire over capacity
//     does not slow down, it resets: the loss is the signal. The level at
//     which it failed becomes a ceiling the limit stays under for Reprobe,
//     after which it probes above it again in slow start, so a backend
//     that got its capacity back gets its streams back within rounds; a
//     backend still full fails the probe (a retried open, not a client's
//     error) and sets the ceiling for another Reprobe.
//   - Multiplicative decreases are at most one per Cooldown: one overload
//     burst resets many connections at once, and counts as one signal.
//
// Time is passed in (now arguments). An Adaptive is safe for concurrent use.
type Adaptive struct {
	cfg AdaptiveConfig

	mu        sync.Mutex
	limit     float64
	slowStart bool
	ceiling   float64 // 0: none
	ceilUntil time.Time
	lastDrop  time.Time
	slowUntil time.Time     // a slow open holds probes until then
	ewma      time.Duration // smoothed latency
	minCur    time.Duration // lowest latency in the current window
	minPrev   time.Duration // lowest latency in the previous window
	winStart  time.Time
}

// AdaptiveConfig are the settings of an [Adaptive]. Zero fields take the
// defaults named below.
type AdaptiveConfig struct {
	Min       int           // the floor; default DefaultAdaptiveMin
	Max       int           // the ceiling (max_streams); <= 0: DefaultAdaptiveMax
	Initial   int           // the limit to start from; default max(Min, DefaultAdaptiveInitial)
	Tolerance float64       // latency over Tolerance × the minimum shrinks the limit; default 2
	Backoff   float64       // the limit after a failure, a fraction of the streams in flight; default 0.7
	Reprobe   time.Duration // how long the level of a failure caps the limit; default 5s
	Window    time.Duration // the span of the latency minimum; default 30s
	Cooldown  time.Duration // the least time between two multiplicative decreases; default 100ms
	// Slack is added to Tolerance × the minimum latency: on a LAN the
	// unloaded latency is well under a millisecond, and tens of
	// milliseconds of it can be Guard's own scheduling in a burst of
	// opens (thousands of clients reconnecting, each with a TLS
	// handshake), which says nothing of the backend. An Openfire that
	// drowns answers in hundreds of milliseconds. Default 50ms.
	Slack time.Duration
}

// Defaults of [AdaptiveConfig].
const (
	DefaultAdaptiveMin       = 4
	DefaultAdaptiveMax       = 1 << 20
	DefaultAdaptiveInitial   = 16
	DefaultAdaptiveTolerance = 2.0
	DefaultAdaptiveBackoff   = 0.7
	DefaultAdaptiveReprobe   = 5 * time.Second
	DefaultAdaptiveWindow    = 30 * time.Second
	DefaultAdaptiveCooldown  = 100 * time.Millisecond
	DefaultAdaptiveSlack     = 50 * time.Millisecond
)

func (c AdaptiveConfig) withDefaults() AdaptiveConfig {
	if c.Min <= 0 {
		c.Min = DefaultAdaptiveMin
	}
	if c.Max <= 0 {
		c.Max = DefaultAdaptiveMax
	}
	c.Min = min(c.Min, c.Max)
	if c.Initial <= 0 {
		c.Initial = DefaultAdaptiveInitial
	}
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	if c.Tolerance <= 1 {
		c.Tolerance = DefaultAdaptiveTolerance
	}
	if c.Backoff <= 0 || c.Backoff >= 1 {
		c.Backoff = DefaultAdaptiveBackoff
	}
	if c.Reprobe <= 0 {
		c.Reprobe = DefaultAdaptiveReprobe
	}
	if c.Window <= 0 {
		c.Window = DefaultAdaptiveWindow
	}
	if c.Cooldown <= 0 {
		c.Cooldown = DefaultAdaptiveCooldown
	}
	if c.Slack <= 0 {
		c.Slack = DefaultAdaptiveSlack
	}
	return c
}

// NewAdaptive returns a limiter at cfg's initial limit, in slow start.
func NewAdaptive(cfg AdaptiveConfig) *Adaptive {
	cfg = cfg.withDefaults()
	return &Adaptive{cfg: cfg, limit: float64(cfg.Initial), slowStart: true}
}

// Limit returns the current limit, a whole number between Min and Max.
func (a *Adaptive) Limit() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limitLocked()
}

func (a *Adaptive) limitLocked() int {
	return int(math.Floor(a.limit))
}

// Success records a stream the node opened in latency, with inflight
// streams open to it (this one included); waiting tells whether clients were
// waiting for a slot (demand above the limit). It returns the new limit.
func (a *Adaptive) Success(latency time.Duration, inflight int, waiting bool, now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.observe(latency, now)
	if limit := a.cfg.Tolerance*float64(a.minLatency()) + float64(a.cfg.Slack); float64(a.ewma) > limit && a.minLatency() > 0 {
		// Slower than the node's unloaded self by more than the
		// tolerance: shrink by the ratio.
		// Never below what is in flight: XMPP streams stay open for
		// hours, and a limit under them would only stop admission
		// until enough of them end, not relieve the node. Nor does it
		// end slow start: a slow open can be Guard's own CPU in a
		// storm of reconnects as well as the backend's load, and only
		// a failure is sure. Probes wait for ten Cooldowns.
		ratio := max(limit/float64(a.ewma), 0.5)
		if now.Sub(a.lastDrop) >= a.cfg.Cooldown {
			a.lastDrop = now
			a.limit = max(min(max(a.limit*ratio, float64(inflight)), a.limit), float64(a.cfg.Min))
		}
		a.slowUntil = now.Add(a.holdAfterSlow())
		return a.limitLocked()
	}
	if !waiting && float64(inflight) < a.limit-1 {
		return a.limitLocked() // the limit does not bind: nothing learned
	}
	step := 1.0
	if !a.slowStart {
		step = 1 / a.limit
	}
	next := min(a.limit+step, a.below(now))
	a.limit = min(max(next, a.limit), float64(a.cfg.Max))
	return a.limitLocked()
}

// below returns the level the limit must stay under: a recent failure's
// ceiling less one, or +Inf. A ceiling whose Reprobe is over is dropped,
// and slow start begins again: a backend that got its capacity back gets
// its streams back within rounds.
func (a *Adaptive) below(now time.Time) float64 {
	if a.ceiling > 0 {
		if now.Before(a.ceilUntil) {
			return a.ceiling - 1
		}
		a.ceiling = 0
		a.slowStart = true
	}
	return math.Inf(1)
}

// Probe raises the limit by one for a client that waits while the node
// holds its limit of streams and none of them is still opening, so that no
// open under way will report ([Adaptive.Success] grows the limit only on
// an open). XMPP streams last hours: without a probe, a limit reached by
// long-lived streams would never grow while they stay. It returns the new
// limit and whether it grew. It does not grow while the level of a recent
// failure caps it, nor for a while (ten Cooldowns) after a slow open;
// until then tells when it may.
func (a *Adaptive) Probe(now time.Time) (limit int, grew bool, until time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := math.Floor(a.limit) + 1
	if now.Before(a.slowUntil) {
		return a.limitLocked(), false, a.slowUntil
	}
	if next > a.below(now) {
		return a.limitLocked(), false, a.ceilUntil
	}
	if next > float64(a.cfg.Max) {
		return a.limitLocked(), false, time.Time{}
	}
	a.limit = next
	return a.limitLocked(), true, time.Time{}
}

func (a *Adaptive) holdAfterSlow() time.Duration { return 10 * a.cfg.Cooldown }

// Failure records a stream open that failed before the backend's header,
// with inflight streams open to the node (the failed one included). It
// returns the new limit.
func (a *Adaptive) Failure(inflight int, now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.slowStart = false
	// The node failed with inflight-1 other streams open to it, some
	// perhaps not even accepted yet: it holds fewer than inflight. That
	// bound applies at once, to every failure of a burst.
	level := min(float64(inflight), a.limit)
	if a.ceiling == 0 || level < a.ceiling || !now.Before(a.ceilUntil) {
		a.ceiling = max(level, float64(a.cfg.Min)+1)
	}
	a.ceilUntil = now.Add(a.cfg.Reprobe)
	a.limit = max(min(a.limit, float64(inflight-1)), float64(a.cfg.Min))
	// The multiplicative decrease, once a burst.
	a.decrease(level*a.cfg.Backoff, now)
	return a.limitLocked()
}

func (a *Adaptive) decrease(to float64, now time.Time) {
	if now.Sub(a.lastDrop) < a.cfg.Cooldown {
		return
	}
	a.lastDrop = now
	a.slowStart = false
	a.limit = max(min(to, a.limit), float64(a.cfg.Min))
}

// observe feeds one latency sample to the smoothed latency and the
// windowed minimum.
func (a *Adaptive) observe(latency time.Duration, now time.Time) {
	latency = max(latency, time.Microsecond)
	if a.ewma == 0 {
		a.ewma = latency
	} else {
		a.ewma = (a.ewma + latency) / 2
	}
	if a.winStart.IsZero() || now.Sub(a.winStart) >= a.cfg.Window {
		a.minPrev, a.minCur, a.winStart = a.minCur, 0, now
	}
	if a.minCur == 0 || latency < a.minCur {
		a.minCur = latency
	}
}

func (a *Adaptive) minLatency() time.Duration {
	if a.minPrev > 0 && a.minPrev < a.minCur {
		return a.minPrev
	}
	return a.minCur
}

// SetMax changes the ceiling (a reload of max_streams).
func (a *Adaptive) SetMax(m int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m <= 0 {
		m = DefaultAdaptiveMax
	}
	a.cfg.Max = m
	a.cfg.Min = min(a.cfg.Min, m)
	a.limit = min(a.limit, float64(m))
}
