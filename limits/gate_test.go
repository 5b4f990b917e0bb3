package limits

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func waitingIs(g *Gate, n int) func() bool {
	return func() bool { return g.Stats().Waiting == n }
}

func mustAcquire(t testing.TB, g *Gate) *Ticket {
	t.Helper()
	tk, err := g.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return tk
}

// checkStats compares the gauges and counters of a snapshot.
func checkStats(t *testing.T, g *Gate, want GateStats) {
	t.Helper()
	if got := g.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestGateImmediate(t *testing.T) {
	tests := []struct {
		name            string
		capacity, queue int
		acquire         int // sequential Acquire calls, nothing released
		wantOK          int
		wantFull        int
	}{
		{"under capacity", 3, 0, 2, 2, 0},
		{"at capacity, no queue", 2, 0, 5, 2, 3},
		{"no cap", 0, 0, 100, 100, 0},
		{"negative means no cap and no queue", -1, -1, 10, 10, 0},
		{"zero capacity with queue still means no cap", 0, 5, 7, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGate(tt.capacity, tt.queue)
			var ok, full int
			var tickets []*Ticket
			for range tt.acquire {
				tk, err := g.Acquire(context.Background())
				switch {
				case err == nil:
					ok++
					tickets = append(tickets, tk)
				case errors.Is(err, ErrQueueFull):
					full++
				default:
					t.Fatalf("Acquire: %v", err)
				}
			}
			if ok != tt.wantOK || full != tt.wantFull {
				t.Fatalf("admitted %d, refused %d; want %d, %d", ok, full, tt.wantOK, tt.wantFull)
			}
			for _, tk := range tickets {
				if tk.Waited() != 0 {
					t.Errorf("Waited = %v for an immediate ticket", tk.Waited())
				}
				tk.Release()
			}
			if s := g.Stats(); s.InUse != 0 || s.Admitted != uint64(ok) || s.RejectedFull != uint64(full) {
				t.Fatalf("Stats after release = %+v", s)
			}
		})
	}
}

func TestGateFIFO(t *testing.T) {
	for _, n := range []int{1, 2, 10, 50} {
		t.Run("", func(t *testing.T) {
			g := NewGate(1, n)
			holder := mustAcquire(t, g)
			order := make(chan int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tk, err := g.Acquire(context.Background())
					if err != nil {
						t.Errorf("waiter %d: %v", i, err)
						return
					}
					order <- i
					tk.Release()
				}()
				// Queue the waiters one at a time so arrival order is known.
				waitFor(t, "waiter to queue", waitingIs(g, i+1))
			}
			holder.Release()
			wg.Wait()
			close(order)
			want := 0
			for got := range order {
				if got != want {
					t.Fatalf("waiter %d admitted in place %d", got, want)
				}
				want++
			}
			checkStats(t, g, GateStats{Capacity: 1, QueueSize: n, Admitted: uint64(n + 1)})
		})
	}
}

// A freed slot goes to the oldest waiter at Release, so a newcomer arriving
// right after finds it taken.
func TestGateNoBarging(t *testing.T) {
	g := NewGate(1, 2)
	holder := mustAcquire(t, g)
	got := make(chan *Ticket)
	go func() {
		tk, _ := g.Acquire(context.Background())
		got <- tk
	}()
	waitFor(t, "waiter to queue", waitingIs(g, 1))
	holder.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("newcomer: err = %v, want context.Canceled (slot already handed to the waiter)", err)
	}
	(<-got).Release()
	checkStats(t, g, GateStats{Capacity: 1, QueueSize: 2, Admitted: 2, RejectedTimeout: 1})
}

func TestGateQueueFull(t *testing.T) {
	g := NewGate(1, 2)
	holder := mustAcquire(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("waiter: err = %v", err)
			}
		}()
		waitFor(t, "waiter to queue", waitingIs(g, i+1))
	}
	start := time.Now()
	if _, err := g.Acquire(context.Background()); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("ErrQueueFull took %v; want at once", d)
	}
	cancel()
	wg.Wait()
	holder.Release()
	checkStats(t, g, GateStats{Capacity: 1, QueueSize: 2, Admitted: 1, RejectedFull: 1, RejectedTimeout: 2})
}

func TestGateTimeout(t *testing.T) {
	g := NewGate(1, 1)
	holder := mustAcquire(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	tk, err := g.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || tk != nil {
		t.Fatalf("Acquire = %v, %v; want nil, DeadlineExceeded", tk, err)
	}
	checkStats(t, g, GateStats{InUse: 1, Capacity: 1, QueueSize: 1, Admitted: 1, RejectedTimeout: 1})
	holder.Release()
	// The timed-out waiter left the queue: the slot is free.
	mustAcquire(t, g).Release()
	checkStats(t, g, GateStats{Capacity: 1, QueueSize: 1, Admitted: 2, RejectedTimeout: 1})
}

func TestGateWaited(t *testing.T) {
	clk := newFakeClock()
	g := NewGate(1, 1)
	g.clk = clk
	holder := mustAcquire(t, g)
	got := make(chan *Ticket)
	go func() {
		tk, _ := g.Acquire(context.Background())
		got <- tk
	}()
	waitFor(t, "waiter to queue", waitingIs(g, 1))
	clk.Advance(1500 * time.Millisecond)
	holder.Release()
	tk := <-got
	if tk.Waited() != 1500*time.Millisecond {
		t.Fatalf("Waited = %v, want 1.5s", tk.Waited())
	}
	tk.Release()
}

func TestGateReleaseOnce(t *testing.T) {
	g := NewGate(2, 0)
	a, b := mustAcquire(t, g), mustAcquire(t, g)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() { defer wg.Done(); a.Release() }()
	}
	wg.Wait()
	if s := g.Stats(); s.InUse != 1 {
		t.Fatalf("InUse = %d after releasing one ticket 16 times, want 1", s.InUse)
	}
	b.Release()
	b.Release()
	var nilTicket *Ticket
	nilTicket.Release()
	if s := g.Stats(); s.InUse != 0 {
		t.Fatalf("InUse = %d, want 0", s.InUse)
	}
}

// TestGateReleaseTimeoutRace hands a slot to a waiter at the moment its
// context ends. Whichever wins, no slot may leak: the waiter behind it gets
// the slot, and in the end the gate is empty.
func TestGateReleaseTimeoutRace(t *testing.T) {
	const rounds = 300
	passedOn := 0
	for range rounds {
		g := NewGate(1, 2)
		holder := mustAcquire(t, g)
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			tk, err := g.Acquire(ctx)
			if err == nil {
				tk.Release()
			}
			first <- err
		}()
		waitFor(t, "first waiter", waitingIs(g, 1))
		second := make(chan *Ticket, 1)
		go func() {
			tk, err := g.Acquire(context.Background())
			if err != nil {
				t.Errorf("second waiter: %v", err)
			}
			second <- tk
		}()
		waitFor(t, "second waiter", waitingIs(g, 2))

		// Release and cancel as one step: under the gate's lock, so the
		// first waiter is granted a slot while its context is already done.
		g.mu.Lock()
		cancel()
		holder.released.Store(true)
		g.inUse--
		g.dispatchLocked()
		g.mu.Unlock()

		if err := <-first; err != nil {
			passedOn++
		}
		select {
		case tk := <-second:
			tk.Release()
		case <-time.After(5 * time.Second):
			t.Fatal("second waiter never got the slot: it leaked")
		}
		if s := g.Stats(); s.InUse != 0 || s.Waiting != 0 || s.Admitted+s.RejectedTimeout != 3 {
			t.Fatalf("Stats = %+v", s)
		}
	}
	t.Logf("%d of %d rounds took the granted-but-cancelled path", passedOn, rounds)
	if passedOn == 0 {
		t.Error("the granted-but-cancelled path never ran")
	}
}

// TestGateReleaseTimeoutRaceFree races Release with a real timer, from
// separate goroutines, many times.
func TestGateReleaseTimeoutRaceFree(t *testing.T) {
	const rounds = 500
	g := NewGate(1, 4)
	for i := range rounds {
		holder := mustAcquire(t, g)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*time.Microsecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if tk, err := g.Acquire(ctx); err == nil {
				tk.Release()
			}
		}()
		time.Sleep(time.Duration(i%50) * time.Microsecond)
		holder.Release()
		<-done
		cancel()
		if s := g.Stats(); s.InUse != 0 || s.Waiting != 0 {
			t.Fatalf("round %d: Stats = %+v", i, s)
		}
	}
	s := g.Stats()
	if s.Admitted+s.RejectedTimeout != 2*rounds {
		t.Fatalf("Stats = %+v: %d Acquire calls unaccounted", s, 2*rounds-int(s.Admitted+s.RejectedTimeout))
	}
}

func TestGateSetLimits(t *testing.T) {
	t.Run("raise admits waiters at once", func(t *testing.T) {
		g := NewGate(1, 5)
		holder := mustAcquire(t, g)
		got := make(chan *Ticket, 3)
		for i := range 3 {
			go func() { tk, _ := g.Acquire(context.Background()); got <- tk }()
			waitFor(t, "waiter", waitingIs(g, i+1))
		}
		g.SetLimits(3, 5)
		checkStats(t, g, GateStats{InUse: 3, Waiting: 1, Capacity: 3, QueueSize: 5, Admitted: 3})
		g.SetLimits(0, 5) // no cap
		checkStats(t, g, GateStats{InUse: 4, Waiting: 0, Capacity: 0, QueueSize: 5, Admitted: 4})
		for range 3 {
			(<-got).Release()
		}
		holder.Release()
	})
	t.Run("lower revokes nothing", func(t *testing.T) {
		g := NewGate(4, 5)
		held := make([]*Ticket, 4)
		for i := range held {
			held[i] = mustAcquire(t, g)
		}
		g.SetLimits(2, 5)
		got := make(chan *Ticket, 1)
		go func() { tk, _ := g.Acquire(context.Background()); got <- tk }()
		waitFor(t, "waiter", waitingIs(g, 1))
		checkStats(t, g, GateStats{InUse: 4, Waiting: 1, Capacity: 2, QueueSize: 5, Admitted: 4})
		held[0].Release()
		held[1].Release()
		checkStats(t, g, GateStats{InUse: 2, Waiting: 1, Capacity: 2, QueueSize: 5, Admitted: 4})
		held[2].Release()
		checkStats(t, g, GateStats{InUse: 2, Waiting: 0, Capacity: 2, QueueSize: 5, Admitted: 5})
		(<-got).Release()
		held[3].Release()
	})
	t.Run("smaller queue keeps its waiters", func(t *testing.T) {
		g := NewGate(1, 3)
		holder := mustAcquire(t, g)
		got := make(chan *Ticket, 3)
		for i := range 3 {
			go func() { tk, _ := g.Acquire(context.Background()); got <- tk }()
			waitFor(t, "waiter", waitingIs(g, i+1))
		}
		g.SetLimits(1, 1)
		if _, err := g.Acquire(context.Background()); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("newcomer: err = %v, want ErrQueueFull", err)
		}
		checkStats(t, g, GateStats{InUse: 1, Waiting: 3, Capacity: 1, QueueSize: 1, Admitted: 1, RejectedFull: 1})
		holder.Release()
		for range 3 {
			(<-got).Release()
		}
		checkStats(t, g, GateStats{Capacity: 1, QueueSize: 1, Admitted: 4, RejectedFull: 1})
	})
}

// TestGateSetLimitsUnderLoad reloads limits while many goroutines acquire
// and release, and checks that the number of tickets out never exceeds the
// largest capacity set, and that everything drains.
func TestGateSetLimitsUnderLoad(t *testing.T) {
	const maxCap = 8
	g := NewGate(2, 64)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(w%4)*time.Millisecond)
				tk, err := g.Acquire(ctx)
				cancel()
				if err != nil {
					continue
				}
				n := held.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if i%3 == 0 {
					time.Sleep(10 * time.Microsecond)
				}
				held.Add(-1)
				tk.Release()
			}
		}()
	}
	for i := range 200 {
		g.SetLimits(1+i%maxCap, 1+(i*7)%64)
		time.Sleep(50 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	if p := peak.Load(); p > maxCap {
		t.Fatalf("%d tickets out at once, more than any capacity set (%d)", p, maxCap)
	}
	s := g.Stats()
	if s.InUse != 0 || s.Waiting != 0 || s.Admitted == 0 {
		t.Fatalf("Stats after drain = %+v", s)
	}
}

// AcquireFirst is served before every waiter, and a full queue does not
// refuse it.
func TestGateAcquireFirst(t *testing.T) {
	g := NewGate(1, 1)
	holder := mustAcquire(t, g)
	order := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tk, err := g.Acquire(context.Background())
		if err != nil {
			t.Errorf("waiter: %v", err)
			return
		}
		order <- "waiter"
		tk.Release()
	}()
	waitFor(t, "the waiter to queue", waitingIs(g, 1))
	go func() {
		defer wg.Done()
		tk, err := g.AcquireFirst(context.Background())
		if err != nil {
			t.Errorf("AcquireFirst with the queue full: %v", err)
			return
		}
		order <- "first"
		tk.Release()
	}()
	waitFor(t, "AcquireFirst to queue", waitingIs(g, 2))
	holder.Release()
	wg.Wait()
	if a, b := <-order, <-order; a != "first" || b != "waiter" {
		t.Errorf("served %s then %s, want first then waiter", a, b)
	}
}
