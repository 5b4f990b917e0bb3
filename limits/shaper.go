package limits

import (
	"math"
	"sync"
	"time"
)

// Shaper keeps one connection's read rate under a byte rate, like ejabberd's
// shapers: after each read the reader asks [Shaper.Delay] how long to pause
// before reading again. Data is never dropped; a client that sends faster
// simply finds its TCP window closing, which is back-pressure, not loss.
//
// It is a token bucket of bytes, kept in exact integer arithmetic so delays
// are reproducible to the nanosecond: the bucket starts full at burst bytes,
// refills at bytesPerSecond, and a read larger than what is left puts it in
// debt; the delay is the time to pay the debt back.
//
// A nil *Shaper is unlimited: Delay returns 0. A Shaper is safe for
// concurrent use, though one per connection direction is the intended use.
type Shaper struct {
	mu     sync.Mutex
	rate   int64 // bytes a second, > 0
	cap    int64 // burst, in nano-bytes (bytes × 1e9)
	credit int64 // nano-bytes; negative while in debt
	last   time.Time
}

// maxCredit keeps every product below in int64 range.
const maxCredit = math.MaxInt64 / 4

// NewShaper returns a shaper for bytesPerSecond bytes a second that allows
// bursts of up to burst bytes. A bytesPerSecond of 0 (or less) means
// unlimited: NewShaper returns nil, whose Delay always returns 0 and
// allocates nothing. A burst of 0 (or less) means one second's worth.
func NewShaper(bytesPerSecond, burst int) *Shaper {
	if bytesPerSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = bytesPerSecond
	}
	c := min(int64(burst), maxCredit/int64(time.Second)) * int64(time.Second)
	return &Shaper{rate: int64(bytesPerSecond), cap: c, credit: c}
}

// Delay records that n bytes were read at now and returns how long the
// reader should wait before its next read: 0 while the bucket holds enough,
// else exactly the time the bucket needs to refill to zero. Calling it with
// n = 0 reports the delay still owed. The first call's now starts the clock.
func (s *Shaper) Delay(n int, now time.Time) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		s.last = now
	}
	if elapsed := int64(now.Sub(s.last)); elapsed > 0 {
		// Refill elapsed×rate nano-bytes, without overflowing.
		need := s.cap - s.credit
		if elapsed >= need/s.rate+1 {
			s.credit = s.cap
		} else {
			s.credit = min(s.credit+elapsed*s.rate, s.cap)
		}
		s.last = now
	}
	if n > 0 {
		cost := min(int64(n), maxCredit/int64(time.Second)) * int64(time.Second)
		s.credit = max(s.credit-cost, -maxCredit)
	}
	if s.credit >= 0 {
		return 0
	}
	debt := -s.credit
	return time.Duration((debt + s.rate - 1) / s.rate) // ceil: never early
}
