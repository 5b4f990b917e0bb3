package proxy

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
)

// This file is admission, in the order a client meets it: the per-address
// limits at accept (deny list, concurrent connections, new connections a
// second), then a slot of the backend's gate in FIFO order within
// queue_timeout, then the storm pacer, with a watch that gives up the
// place of a client that left while it waited.

// backendState is the admission state of one backend, shared by listeners.
type backendState struct {
	name string
	// gate and pacer are swapped by Apply while sessions read them; nil:
	// no cap, no pacing.
	gate  atomic.Pointer[limits.Gate]
	pacer atomic.Pointer[limits.Pacer]

	poolMu     sync.Mutex
	nodes      []*nodeState
	maxStreams int // the backend's max_streams, for the learned capacity
	queueSize  int
	checks     context.CancelFunc // stops the active health checks
	checkOf    HealthCheck        // the settings they run with
	probeTimer *time.Timer        // adaptive admission: a probe when a failure's ceiling lifts
}

// backendFor returns the shared admission state of backend b, creating it,
// or applying b's (possibly changed) settings to it.
func (s *Server) backendFor(b Backend) *backendState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.backends[b.Name]
	if st == nil {
		st = &backendState{name: b.Name}
		s.backends[b.Name] = st
	}
	st.setNodes(b)
	if st.checks == nil || st.checkOf != b.Health {
		if st.checks != nil {
			st.checks()
			if b.Health.Interval <= 0 {
				st.resetChecks() // no more checks: no node stays down for one
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		st.checks, st.checkOf = cancel, b.Health
		st.startHealthChecks(ctx, b, s.log.Named("health").With("backend", b.Name), &s.checkWG)
	}
	a := b.Admission
	switch g := st.gate.Load(); {
	case a.MaxStreams <= 0 && b.Adaptive == nil:
		st.gate.Store(nil) // tickets already out release into the old gate
	case g == nil:
		st.gate.Store(limits.NewGate(a.MaxStreams, a.QueueSize))
	default:
		g.SetLimits(a.MaxStreams, a.QueueSize)
	}
	st.updateCapacity() // adaptive admission: the learned caps
	switch p := st.pacer.Load(); {
	case a.NewStreamsPerSecond <= 0:
		st.pacer.Store(nil)
	case p == nil:
		st.pacer.Store(limits.NewPacer(a.NewStreamsPerSecond, a.NewStreamsBurst))
	default:
		p.SetRate(a.NewStreamsPerSecond, a.NewStreamsBurst)
	}
	return st
}

func newAddrLimiter(l AddrLimits) *limits.AddrLimiter {
	return limits.NewAddrLimiter(addrLimits(l))
}

func addrLimits(l AddrLimits) limits.AddrLimits {
	return limits.AddrLimits{
		MaxConns: l.MaxConnsPerIP,
		Rate:     rate.Limit(l.ConnRatePerIP),
		Burst:    l.ConnBurstPerIP,
		MaxKeys:  l.TrackedAddresses,
	}
}

// admitAddress applies the per-address limits to a new client, keeping the
// release for finish, or returns the refusal.
func (ss *session) admitAddress() error {
	release, ev := ss.addressLimits()
	if ev != "" {
		ss.l.metrics.addrRejected(eventReason(ev))
		ss.log.Info("refused by per-address limits", "event", ev)
		return refused(ev, "")
	}
	ss.releaseAddr = release
	return nil
}

// addressLimits applies the per-address limits to a new client. It returns
// the release to call when the connection ends, or the event to refuse with.
func (ss *session) addressLimits() (func(), policy.Event) {
	if !ss.remote.IsValid() {
		return func() {}, ""
	}
	if ss.st.cfg.Limits.Deny.Contains(ss.remote.Addr()) {
		return nil, policy.Denied
	}
	release, err := ss.l.addrs.Admit(limits.Key(ss.remote.Addr()), time.Now())
	switch {
	case err == nil:
		return release, ""
	case errors.Is(err, limits.ErrRateLimited):
		return nil, policy.RateLimited
	case errors.Is(err, limits.ErrAddrTableFull):
		return nil, policy.QueueFull
	default:
		return nil, policy.AddressLimit
	}
}

// mayWait reports whether a new stream may have to wait for admission:
// pacing is on, or every slot of the gate is taken or promised. A stream
// admitted at once needs no watch over its client.
func (st *backendState) mayWait() bool {
	if st.pacer.Load() != nil {
		return true
	}
	g := st.gate.Load()
	if g == nil {
		return false
	}
	s := g.Stats()
	return s.Waiting > 0 || (s.Capacity > 0 && s.InUse >= s.Capacity)
}

// admitBackend takes a stream slot of the backend, waiting in its FIFO queue
// for at most the queue timeout, then waits for the storm pacer. It returns
// the release to call when the stream ends, or the event to refuse with;
// ctx's end (Shutdown, the client gone) ends the wait as well.
// A requeued stream (its open was Guard's probe of a node's cap) waits at
// the front of the queue, is not refused by a full one, and waits only
// what is left of its first queue_timeout.
func (ss *session) admitBackend(ctx context.Context, a Admission, requeued bool) (func(), policy.Event) {
	st := ss.bst
	start := time.Now()
	if !requeued || ss.queueDeadline.IsZero() {
		ss.queueDeadline = start.Add(a.QueueTimeout)
	}
	ctx, cancel := context.WithDeadline(ctx, ss.queueDeadline)
	defer cancel()
	release := func() {}
	if g := st.gate.Load(); g != nil {
		st.probe(true)
		if s := g.Stats(); s.Capacity > 0 && s.InUse >= s.Capacity && (s.Waiting < s.QueueSize || requeued) {
			ss.srv.recent.waiting(s.Waiting+1, start) // it will wait
		}
		acquire := g.Acquire
		if requeued {
			acquire = g.AcquireFirst
		}
		t, err := acquire(ctx)
		switch {
		case err == nil:
			release = t.Release
		case errors.Is(err, limits.ErrQueueFull):
			ss.l.metrics.rejected(st.name, "queue_full")
			return nil, policy.QueueFull
		default:
			ss.l.metrics.rejected(st.name, "queue_timeout")
			return nil, policy.QueueTimeout
		}
	}
	if p := st.pacer.Load(); p != nil {
		if err := p.Wait(ctx); err != nil {
			release()
			ss.l.metrics.rejected(st.name, "queue_timeout")
			return nil, policy.QueueTimeout
		}
	}
	ss.l.metrics.admitted(st.name, time.Since(start))
	return release, ""
}

// admit runs the backend admission of a client whose header has arrived,
// keeping the slot for finish, or returns why the connection ends: refused
// (queue full or timed out, shutdown) or gone (the client left its place).
func (ss *session) admit(cp *pipe) error {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return refused(policy.Shutdown, "")
	}
	ss.stopWait = func() { cancel(nil) }
	ss.mu.Unlock()
	stopWatch := func() {}
	if ss.bst.mayWait() {
		stopWatch = watchGone(cp, func() { cancel(errClientGone) })
	}
	release, ev := ss.admitBackend(ctx, ss.bk.Admission, false)
	stopWatch()
	ss.mu.Lock()
	ss.stopWait = nil
	ended := ss.closed
	ss.mu.Unlock()
	if ev != "" && !ended && context.Cause(ctx) == errClientGone {
		// It left the queue with its place: the next client moves up.
		ss.log.Debug("client left while queued")
		return closed(ReasonClientError)
	}
	if ev != "" {
		if ended {
			ev = policy.Shutdown
		}
		ss.log.Info("admission refused", "event", ev)
		return refused(ev, "")
	}
	ss.releaseSlot = release
	// A client that gave up while it waited is not worth a backend stream.
	if cp.wait.gone() {
		return closed(ReasonClientError)
	}
	return nil
}

// errClientGone ends a client's wait in the admission queue when it has
// closed or reset its connection.
var errClientGone = errors.New("client gone")

// watchGone watches the client's socket while the session waits for
// admission, and calls gone if the client closes or resets it: a client that
// gave up must not keep its place in the queue (a storm of clients that time
// out and reconnect would fill it with places nobody takes). Bytes from a
// live client (pipelined stanzas) end the watch: they stay in the socket for
// the relay. stop ends the watch and returns once it has.
func watchGone(cp *pipe, gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := cp.wait.wait()
		if err == nil && !cp.wait.gone() {
			return // data: alive
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, syscall.ETIMEDOUT) {
			return // stopped
		}
		gone()
	}()
	return func() {
		// A deadline in the past wakes the wait; the socket gets the
		// session's own deadline back.
		cp.setPollDeadline(aLongTimeAgo)
		<-done
		cp.setPollDeadline(cp.deadline)
	}
}
