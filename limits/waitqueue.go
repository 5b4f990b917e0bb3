package limits

import "time"

// waiter is one goroutine blocked in [Gate.Acquire] or [Pacer.Wait]. It is
// linked into a waitQueue under the owner's mutex; the owner grants it by
// setting granted and closing ready, both under that mutex, so a waiter that
// gives up (its context ended) can tell under the same mutex whether a grant
// raced with it and hand the grant on.
type waiter struct {
	ready      chan struct{}
	start      time.Time
	waited     time.Duration // set at grant, for Ticket.Waited
	granted    bool
	queued     bool
	prev, next *waiter
}

// waitQueue is an intrusive doubly linked FIFO of waiters: O(1) push, pop and
// removal from the middle (a waiter that times out), no allocation of its own.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) len() int { return q.n }

func (q *waitQueue) push(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
	w.queued = true
	q.n++
}

// pushFront queues w before every other waiter.
func (q *waitQueue) pushFront(w *waiter) {
	w.prev, w.next = nil, q.head
	if q.head == nil {
		q.tail = w
	} else {
		q.head.prev = w
	}
	q.head = w
	w.queued = true
	q.n++
}

func (q *waitQueue) front() *waiter { return q.head }

func (q *waitQueue) remove(w *waiter) {
	if !w.queued {
		return
	}
	if w.prev == nil {
		q.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		q.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
	q.n--
}

// grant removes w from the queue and wakes it. The caller holds the owner's mutex.
func (q *waitQueue) grant(w *waiter) {
	q.remove(w)
	w.granted = true
	close(w.ready)
}
