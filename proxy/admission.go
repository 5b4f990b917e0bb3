package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxyproto"
)

// Admission settings of a backend, shared by every listener that uses it.
type Admission struct {
	// MaxStreams caps the streams open to the backend at once; 0 = no cap.
	MaxStreams int
	// QueueSize is how many clients may wait for a slot; QueueTimeout is
	// the longest one waits.
	QueueSize    int
	QueueTimeout time.Duration
	// NewStreamsPerSecond paces new backend streams (storm smoothing);
	// 0 = unlimited. NewStreamsBurst is the burst.
	NewStreamsPerSecond float64
	NewStreamsBurst     int
}

// AddrLimits are a listener's per-client-address limits.
type AddrLimits struct {
	MaxConnsPerIP    int     // concurrent connections per address (IPv6: per /64); 0 = no cap
	ConnRatePerIP    float64 // new connections per second per address; 0 = unlimited
	ConnBurstPerIP   int
	TrackedAddresses int // memory bound of the address table
	// ClientBytesPerSecond shapes what each client sends by delaying reads;
	// 0 = unlimited.
	ClientBytesPerSecond int
	// Deny are refused at once with the event denied (policy-violation).
	Deny proxyproto.Trusted
}

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

// admitAddress applies the per-address limits to a new client. It returns
// the release to call when the connection ends, or the event to refuse with.
func (ss *session) admitAddress() (func(), policy.Event) {
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

// admitBackend takes a stream slot of the backend, waiting in its FIFO queue
// for at most the queue timeout, then waits for the storm pacer. It returns
// the release to call when the stream ends, or the event to refuse with.
// Shutdown (ss.cancel) ends the wait as well.
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
