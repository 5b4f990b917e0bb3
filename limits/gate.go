package limits

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrQueueFull is returned by [Gate.Acquire] when every slot is taken and the
// wait queue already holds its maximum number of waiters. The proxy answers
// it like a queue timeout (resource-constraint, or see-other-host).
var ErrQueueFull = errors.New("limits: admission queue full")

// Gate is a concurrency cap with a bounded FIFO wait queue: at most Capacity
// tickets are out at once, and at most QueueSize callers wait for one.
//
// Admission is in strict arrival order: while anyone waits, a newcomer queues
// behind them even if it arrives just as a slot is freed, and a freed slot
// goes to the oldest waiter. Waiting goroutines block on a channel of their
// own; the gate starts no goroutines and takes no timers (the caller bounds
// the wait with its context).
//
// A Gate is safe for concurrent use. The zero value is not usable: call [NewGate].
type Gate struct {
	clk clock // for Ticket.Waited

	mu        sync.Mutex
	capacity  int // <= 0: no cap
	queueSize int // <= 0: no queue
	inUse     int
	waiters   waitQueue

	admitted        uint64
	rejectedFull    uint64
	rejectedTimeout uint64
}

// GateStats is a snapshot of a Gate, for metrics. The counters are cumulative
// since [NewGate].
type GateStats struct {
	InUse     int // tickets out; may exceed Capacity after [Gate.SetLimits] lowered it
	Waiting   int // callers blocked in Acquire
	Capacity  int // as set; 0 means no cap
	QueueSize int // as set; 0 means no queue

	Admitted        uint64 // Acquire calls that returned a ticket
	RejectedFull    uint64 // Acquire calls refused with ErrQueueFull
	RejectedTimeout uint64 // Acquire calls that returned ctx.Err() (queue timeout or cancellation)
}

// NewGate returns a gate with capacity slots and room for queueSize waiters.
// A capacity of 0 (or less) means no cap: every Acquire succeeds at once but
// is still counted. A queueSize of 0 (or less) means no queue: Acquire
// returns ErrQueueFull at once when every slot is taken.
func NewGate(capacity, queueSize int) *Gate {
	g := &Gate{clk: systemClock{}}
	g.capacity, g.queueSize = clampLimits(capacity, queueSize)
	return g
}

func clampLimits(capacity, queueSize int) (int, int) {
	return max(capacity, 0), max(queueSize, 0)
}

// Ticket is one slot taken from a [Gate]. Release returns it.
//
// A held ticket is one small object: the waiter of a wait in the queue (its
// channel, its links) is dropped once the wait is over, as thousands of
// long-lived streams each hold a ticket.
type Ticket struct {
	g        *Gate
	released atomic.Bool
	waited   time.Duration // in the queue, for Waited
}

// Acquire takes a slot. If one is free and nobody waits, it returns at once.
// Otherwise it waits in FIFO order behind earlier callers until a slot is
// handed to it, or ctx ends (it returns ctx.Err(): give it the queue timeout
// through [context.WithTimeout]), or, if the queue is already full, it returns
// ErrQueueFull at once without waiting.
//
// A ctx that has already ended is honoured only when the caller would have to
// wait: a free slot is taken even then.
//
// If a slot is handed over at the very moment ctx ends, Acquire still
// returns ctx.Err() and passes the slot on to the next waiter (or back to the
// pool), so no slot leaks.
func (g *Gate) Acquire(ctx context.Context) (*Ticket, error) {
	return g.acquire(ctx, false)
}

// AcquireFirst is Acquire for a caller that held a slot and gave it back
// through no fault of its own (its try on the backend was Guard's probe of
// a node's capacity): it waits at the front of the queue, and a full queue
// does not refuse it.
func (g *Gate) AcquireFirst(ctx context.Context) (*Ticket, error) {
	return g.acquire(ctx, true)
}

func (g *Gate) acquire(ctx context.Context, first bool) (*Ticket, error) {
	g.mu.Lock()
	if (g.waiters.len() == 0 || first) && (g.capacity == 0 || g.inUse < g.capacity) {
		g.inUse++
		g.admitted++
		g.mu.Unlock()
		return &Ticket{g: g}, nil
	}
	if g.waiters.len() >= g.queueSize && !first {
		g.rejectedFull++
		g.mu.Unlock()
		return nil, ErrQueueFull
	}
	if err := ctx.Err(); err != nil {
		g.rejectedTimeout++
		g.mu.Unlock()
		return nil, err
	}
	w := &waiter{ready: make(chan struct{}), start: g.clk.Now()}
	if first {
		g.waiters.pushFront(w)
	} else {
		g.waiters.push(w)
	}
	g.mu.Unlock()

	select {
	case <-w.ready:
		return &Ticket{g: g, waited: w.waited}, nil
	case <-ctx.Done():
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		// A Release handed us the slot while ctx ended: pass it on.
		g.admitted--
		g.inUse--
		g.dispatchLocked()
	} else {
		g.waiters.remove(w)
	}
	g.rejectedTimeout++
	return nil, ctx.Err()
}

// dispatchLocked hands free slots to the oldest waiters.
func (g *Gate) dispatchLocked() {
	for {
		w := g.waiters.front()
		if w == nil || (g.capacity != 0 && g.inUse >= g.capacity) {
			return
		}
		g.inUse++
		g.admitted++
		w.waited = g.clk.Now().Sub(w.start)
		g.waiters.grant(w)
	}
}

// Release returns the ticket's slot to the gate, where the oldest waiter, if
// any, takes it. Only the first call has an effect; Release is safe to call
// from any goroutine, and on a nil ticket.
func (t *Ticket) Release() {
	if t == nil || !t.released.CompareAndSwap(false, true) {
		return
	}
	g := t.g
	g.mu.Lock()
	g.inUse--
	g.dispatchLocked()
	g.mu.Unlock()
}

// Waited reports how long the ticket's owner waited in the queue: zero for a
// ticket taken at once. Feed it to a wait-time histogram.
func (t *Ticket) Waited() time.Duration {
	if t == nil {
		return 0
	}
	return t.waited
}

// SetLimits changes the capacity and the queue size, for a configuration
// reload, with the meanings of [NewGate]. Raising the capacity admits waiters
// at once. Lowering it revokes nothing: tickets already out stay valid, and
// in-use may exceed the new capacity until releases bring it down (no waiter
// is admitted until then). A smaller queue drops no current waiter; it only
// refuses newcomers until the queue has shrunk below the new size.
func (g *Gate) SetLimits(capacity, queueSize int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.capacity, g.queueSize = clampLimits(capacity, queueSize)
	g.dispatchLocked()
}

// Stats returns a consistent snapshot of the gate's state and counters.
func (g *Gate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return GateStats{
		InUse:           g.inUse,
		Waiting:         g.waiters.len(),
		Capacity:        g.capacity,
		QueueSize:       g.queueSize,
		Admitted:        g.admitted,
		RejectedFull:    g.rejectedFull,
		RejectedTimeout: g.rejectedTimeout,
	}
}
