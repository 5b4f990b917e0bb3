package limits

import (
	"context"
	"math"
	"sync"
	"time"
)

// Pacer caps the rate at which a listener opens new backend streams, to
// smooth a reconnection storm (every client of a restarted server coming back
// at once) into a steady flow the backend can absorb. It is a token bucket of
// perSecond tokens a second holding at most burst; [Pacer.Wait] takes one
// token, waiting for it in strict FIFO order.
//
// Pacer is not a wrapper over rate.Limiter.Wait, whose reservations do not
// keep FIFO in two cases that matter here: a reservation's wake-up time is
// fixed when it is made, so after a reload raises the rate a newcomer is
// scheduled before the waiters already queued at the old rate (and they keep
// waiting the old, longer time); and a waiter that gives up in the middle of
// the queue returns its token to nobody. Pacer instead keeps its own queue
// and one timer for the head of it: tokens always go to the oldest waiter,
// a rate change reschedules that one timer, and a token granted to a waiter
// that gave up at that instant goes to the next one.
//
// A Pacer is safe for concurrent use. Waiting goroutines block on a channel
// of their own; the pacer holds at most one timer.
type Pacer struct {
	clk clock

	mu      sync.Mutex
	rate    float64 // tokens a second; 0: unlimited
	burst   float64
	tokens  float64
	last    time.Time
	waiters waitQueue
	timer   stopper // armed while waiters wait for tokens
	timerID uint64  // identifies the armed timer; a stale firing is ignored
}

// NewPacer returns a pacer that lets perSecond streams a second through, up
// to burst at once after a quiet spell; it starts full. A perSecond of 0 (or
// less, or +Inf) means unlimited: Wait returns at once. A burst below 1
// means 1.
func NewPacer(perSecond float64, burst int) *Pacer {
	return newPacer(perSecond, burst, systemClock{})
}

func newPacer(perSecond float64, burst int, clk clock) *Pacer {
	p := &Pacer{clk: clk}
	p.rate, p.burst = pacerLimits(perSecond, burst)
	p.tokens = p.burst
	p.last = clk.Now()
	return p
}

func pacerLimits(perSecond float64, burst int) (float64, float64) {
	if !(perSecond > 0) || math.IsInf(perSecond, 1) {
		perSecond = 0
	}
	return perSecond, float64(max(burst, 1))
}

// tokenEpsilon absorbs floating-point error: a timer set for the instant a
// token is due must find it there.
const tokenEpsilon = 1e-9

// Wait takes one token, waiting for it behind earlier callers if needed. It
// returns nil when the caller may open its stream, or ctx.Err() if ctx ended
// first (then no token is spent). A token is available at once only when
// nobody is already waiting.
func (p *Pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	if p.rate == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.waiters.len() == 0 {
		p.refillLocked(p.clk.Now())
		if p.tokens >= 1-tokenEpsilon {
			p.tokens--
			p.mu.Unlock()
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return err
	}
	w := &waiter{ready: make(chan struct{})}
	p.waiters.push(w)
	if p.waiters.len() == 1 {
		p.dispatchLocked()
	}
	p.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.granted {
		// Granted as ctx ended: give the token back to the next waiter.
		p.tokens = min(p.tokens+1, p.burst)
	} else {
		p.waiters.remove(w)
	}
	p.dispatchLocked()
	return ctx.Err()
}

// SetRate changes the rate and burst, with the meanings of [NewPacer], for a
// configuration reload. Tokens already earned are kept (up to the new
// burst; a pacer that was unlimited starts full); queued waiters keep their
// order and are rescheduled at the new rate at once.
func (p *Pacer) SetRate(perSecond float64, burst int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	p.refillLocked(now) // earn at the old rate up to now
	wasUnlimited := p.rate == 0
	p.rate, p.burst = pacerLimits(perSecond, burst)
	if wasUnlimited {
		p.tokens = p.burst
	}
	p.tokens = min(p.tokens, p.burst)
	p.dispatchLocked()
}

func (p *Pacer) refillLocked(now time.Time) {
	if elapsed := now.Sub(p.last); elapsed > 0 {
		p.tokens = min(p.burst, p.tokens+elapsed.Seconds()*p.rate)
	}
	p.last = now
}

// dispatchLocked hands tokens to the oldest waiters and arms the timer for
// the next token if anyone is left waiting.
func (p *Pacer) dispatchLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.timerID++
	if p.rate == 0 {
		for w := p.waiters.front(); w != nil; w = p.waiters.front() {
			p.waiters.grant(w)
		}
		return
	}
	p.refillLocked(p.clk.Now())
	for w := p.waiters.front(); w != nil; w = p.waiters.front() {
		if p.tokens < 1-tokenEpsilon {
			secs := (1 - p.tokens) / p.rate
			d := time.Duration(math.Ceil(secs * float64(time.Second)))
			id := p.timerID
			p.timer = p.clk.AfterFunc(d, func() { p.onTimer(id) })
			return
		}
		p.tokens--
		p.waiters.grant(w)
	}
}

func (p *Pacer) onTimer(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id != p.timerID {
		return // stopped too late, or superseded
	}
	p.timer = nil
	p.dispatchLocked()
}
