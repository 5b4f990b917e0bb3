package limits

import (
	"context"
	"errors"
	"testing"
	"time"
)

func (p *Pacer) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters.len()
}

// startWaiters queues n Wait calls in a known order; each reports its index
// on the returned channel when it returns nil, or -1-index on error.
func startWaiters(t *testing.T, p *Pacer, ctxs []context.Context) <-chan int {
	t.Helper()
	out := make(chan int, len(ctxs))
	base := p.queued()
	for i, ctx := range ctxs {
		go func() {
			if err := p.Wait(ctx); err != nil {
				out <- -1 - i
				return
			}
			out <- i
		}()
		waitFor(t, "pacer waiter", func() bool { return p.queued() == base+i+1 })
	}
	return out
}

func backgrounds(n int) []context.Context {
	c := make([]context.Context, n)
	for i := range c {
		c[i] = context.Background()
	}
	return c
}

func expectNone(t *testing.T, out <-chan int) {
	t.Helper()
	select {
	case i := <-out:
		t.Fatalf("waiter %d returned early", i)
	case <-time.After(5 * time.Millisecond):
	}
}

func TestPacerBurstThenRate(t *testing.T) {
	clk := newFakeClock()
	p := newPacer(10, 3, clk) // one token every 100ms
	for i := range 3 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatalf("burst token %d: %v", i, err)
		}
	}
	out := startWaiters(t, p, backgrounds(5))
	for i := range 5 {
		clk.Advance(99 * time.Millisecond)
		expectNone(t, out)
		clk.Advance(time.Millisecond)
		if got := <-out; got != i {
			t.Fatalf("after %d tokens: waiter %d returned, want %d (FIFO)", i+1, got, i)
		}
	}
	if clk.pending() != 0 {
		t.Fatalf("%d timers armed with nobody waiting", clk.pending())
	}
	// Quiet for long enough to refill the burst, not more.
	clk.Advance(10 * time.Second)
	for range 3 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("with the bucket empty and ctx done: err = %v", err)
	}
}

func TestPacerCancelMidQueue(t *testing.T) {
	clk := newFakeClock()
	p := newPacer(10, 1, clk)
	_ = p.Wait(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	ctxs := backgrounds(3)
	ctxs[1] = ctx
	out := startWaiters(t, p, ctxs)
	cancel()
	if got := <-out; got != -2 {
		t.Fatalf("got %d, want the cancelled waiter 1 (-2)", got)
	}
	clk.Advance(100 * time.Millisecond)
	if got := <-out; got != 0 {
		t.Fatalf("got %d, want waiter 0", got)
	}
	// The cancelled waiter spent nothing: waiter 2 is next, one interval on.
	clk.Advance(100 * time.Millisecond)
	if got := <-out; got != 2 {
		t.Fatalf("got %d, want waiter 2", got)
	}
}

// A token granted at the instant a waiter's context ends goes to the next.
func TestPacerGrantCancelRace(t *testing.T) {
	clk := newFakeClock()
	p := newPacer(10, 1, clk)
	_ = p.Wait(context.Background())
	passedOn := 0
	for round := range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		out := startWaiters(t, p, []context.Context{ctx, context.Background()})
		p.mu.Lock()
		cancel()
		clk.mu.Lock()
		clk.now = clk.now.Add(100 * time.Millisecond)
		clk.mu.Unlock()
		p.dispatchLocked() // grants waiter 0 while its ctx is done
		p.mu.Unlock()
		// Waiter 0 either took its token, or gave it up and its token went
		// straight to waiter 1 (the two may report in either order).
		var got0, got1, passed bool
		for range 2 {
			select {
			case i := <-out:
				switch i {
				case 0:
					got0 = true
					clk.Advance(100 * time.Millisecond) // waiter 1's token
				case -1:
					passed = true
					passedOn++
				case 1:
					got1 = true
				default:
					t.Fatalf("round %d: unexpected result %d", round, i)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: waiter 1 never got a token", round)
			}
		}
		if !got1 || got0 == passed {
			t.Fatalf("round %d: got0=%v got1=%v passed=%v", round, got0, got1, passed)
		}
		if p.queued() != 0 {
			t.Fatalf("round %d: %d still queued", round, p.queued())
		}
		clk.Advance(100 * time.Millisecond) // spend nothing: bucket back to 1
		_ = p.Wait(context.Background())
	}
	if passedOn == 0 {
		t.Error("the granted-but-cancelled path never ran")
	}
}

func TestPacerSetRate(t *testing.T) {
	t.Run("raise reschedules the queue in order", func(t *testing.T) {
		clk := newFakeClock()
		p := newPacer(1, 1, clk)
		_ = p.Wait(context.Background())
		out := startWaiters(t, p, backgrounds(3))
		clk.Advance(500 * time.Millisecond)
		p.SetRate(100, 1) // half a token earned; the rest takes 5ms now
		clk.Advance(4 * time.Millisecond)
		expectNone(t, out)
		clk.Advance(time.Millisecond)
		if got := <-out; got != 0 {
			t.Fatalf("got %d, want 0", got)
		}
		clk.Advance(10 * time.Millisecond)
		if got := <-out; got != 1 {
			t.Fatalf("got %d, want 1", got)
		}
		// A newcomer queues behind waiter 2.
		late := startWaiters(t, p, backgrounds(1))
		clk.Advance(10 * time.Millisecond)
		if got := <-out; got != 2 {
			t.Fatalf("got %d, want 2", got)
		}
		expectNone(t, late)
		clk.Advance(10 * time.Millisecond)
		<-late
	})
	t.Run("unlimited releases everyone", func(t *testing.T) {
		clk := newFakeClock()
		p := newPacer(1, 1, clk)
		_ = p.Wait(context.Background())
		out := startWaiters(t, p, backgrounds(4))
		p.SetRate(0, 0)
		for range 4 {
			if got := <-out; got < 0 {
				t.Fatalf("waiter %d failed", -1-got)
			}
		}
		for range 100 {
			if err := p.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		p.SetRate(1, 2) // limited again: starts from a full burst
		_ = p.Wait(context.Background())
		_ = p.Wait(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		defer cancel()
		if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

// TestPacerRealClock runs the system clock at a high rate, briefly.
func TestPacerRealClock(t *testing.T) {
	p := NewPacer(1000, 1)
	start := time.Now()
	for range 20 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 18*time.Millisecond {
		t.Fatalf("20 tokens at 1000/s in %v; want at least 19ms", d)
	}
}
