package proxy

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
)

// Adaptive admission: Guard learns what each node of a backend can hold
// (limits.Adaptive) from its stream opens, measured from the dial to the
// backend's stream header, and from its failures before the header. The
// backend's gate admits the sum of the usable nodes' learned caps, within
// max_streams; the rest waits in the queue as for a fixed cap, and is
// served in order as the caps grow. A stream whose open the node reset or
// closed before its header (a node above what it holds: Openfire over its
// capacity) was Guard's probe of the cap, not the client's fault: the
// stream gives its slot back and queues again, under the lowered cap,
// without using up a retry (at most maxRequeues times). Refusals and
// timeouts (a node down) take the ordinary retries.

// maxRequeues bounds how often one stream goes back to the queue.
const maxRequeues = 8

// learnedLogStep is the relative change of a node's learned cap that is
// logged.
const learnedLogStep = 0.25

// nodeLimit is a node's learned cap, and the last value logged.
type nodeLimit struct {
	l      *limits.Adaptive
	logged int
}

// learner returns n's limiter, or nil when adaptive admission is off.
func (n *nodeState) learner() *nodeLimit { return n.adaptive.Load() }

// limit returns n's learned cap, or 0 when adaptive admission is off.
func (n *nodeState) limit() int {
	if nl := n.learner(); nl != nil {
		return nl.l.Limit()
	}
	return 0
}

// setAdaptive turns adaptive admission on (cfg not nil) or off for n, keeping
// what n learned when it stays on.
func (n *nodeState) setAdaptive(cfg *limits.AdaptiveConfig, max int) {
	switch cur := n.learner(); {
	case cfg == nil:
		n.adaptive.Store(nil)
	case cur == nil:
		c := *cfg
		c.Max = max
		l := limits.NewAdaptive(c)
		n.adaptive.Store(&nodeLimit{l: l, logged: l.Limit()})
	default:
		cur.l.SetMax(max)
	}
}

// learnOpen feeds the outcome of one stream open to n's limiter and the
// backend's gate: latency on success, or a failure before the header. It
// reports whether adaptive admission is on for n.
func (st *backendState) learnOpen(n *nodeState, ok bool, latency time.Duration, log hclog.Logger) (learning bool) {
	nl := n.learner()
	if nl == nil {
		return false
	}
	inflight := int(n.open.Load())
	now := time.Now()
	var limit int
	if ok {
		waiting := false
		if g := st.gate.Load(); g != nil {
			waiting = g.Stats().Waiting > 0
		}
		limit = nl.l.Success(latency, inflight, waiting, now)
	} else {
		inflight++ // the failed stream was counted until now
		limit = nl.l.Failure(inflight, now)
	}
	st.poolMu.Lock()
	moved := float64(abs(limit-nl.logged)) > learnedLogStep*float64(nl.logged)
	if moved {
		nl.logged = limit
	}
	st.poolMu.Unlock()
	if moved {
		log.Info("backend node's learned stream cap moved", "backend", st.name, "node", n.addr, "learned_max_streams", limit, "streams", inflight, "open_latency", latency.Round(time.Millisecond), "failed", !ok)
	}
	st.updateCapacity()
	st.probe(false)
	return true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// updateCapacity sets the gate's capacity to the sum of the usable nodes'
// learned caps, within max_streams; a no-op without adaptive admission.
func (st *backendState) updateCapacity() {
	st.poolMu.Lock()
	nodes, max, queue := st.nodes, st.maxStreams, st.queueSize
	st.poolMu.Unlock()
	g := st.gate.Load()
	if g == nil {
		return
	}
	now := time.Now()
	sum, learning := 0, false
	for _, n := range nodes {
		if l := n.limit(); l > 0 {
			learning = true
			if n.usable(now) {
				sum += l
			}
		}
	}
	if !learning {
		return
	}
	if sum == 0 {
		sum = 1 // every node down: one stream at a time finds out
	}
	if max > 0 {
		sum = min(sum, max)
	}
	if g.Stats().Capacity != sum {
		g.SetLimits(sum, queue)
	}
}

// requeue gives the session's slot back and waits for one again, for a
// stream whose open failed because its node was above its learned cap.
func (ss *session) requeue(ctx context.Context) policy.Event {
	if ss.releaseSlot != nil {
		ss.releaseSlot()
		ss.releaseSlot = nil
	}
	release, ev := ss.admitBackend(ctx, ss.bk.Admission, true)
	if ev != "" {
		return ev
	}
	ss.releaseSlot = release
	return ""
}

// probe grows a learned cap by one when clients wait (arriving: the caller
// is about to) and nothing under way would grow it: the gate is full, every
// slot taken is a stream on a node, and no stream is still opening (its
// outcome would reach learnOpen). XMPP streams last hours; without a probe,
// caps reached by long-lived streams would never grow while those streams
// stay. One probe at a time: the stream it admits is opening until its
// outcome is learned, and learnOpen probes again after it. While a
// failure's ceiling holds every cap, a timer probes when it lifts.
func (st *backendState) probe(arriving bool) {
	g := st.gate.Load()
	if g == nil {
		return
	}
	s := g.Stats()
	if s.Waiting == 0 && !arriving || s.InUse < s.Capacity {
		return
	}
	st.poolMu.Lock()
	nodes, max := st.nodes, st.maxStreams
	st.poolMu.Unlock()
	if max > 0 && s.Capacity >= max {
		return // max_streams binds, not what was learned
	}
	now := time.Now()
	var (
		best *nodeState
		open int32
	)
	for _, n := range nodes {
		o := n.open.Load()
		open += o
		if n.opening.Load() > 0 {
			return // its outcome will tell
		}
		if n.learner() == nil || !n.usable(now) {
			continue
		}
		if best == nil || n.load(o) < best.load(best.open.Load()) {
			best = n
		}
	}
	if best == nil || int(open) < s.InUse {
		return // a slot on its way to a node, or a stream closing: it will
	}
	_, grew, lifts := best.learner().l.Probe(now)
	if grew {
		st.updateCapacity()
		return
	}
	if lifts.IsZero() {
		return
	}
	st.poolMu.Lock()
	defer st.poolMu.Unlock()
	if st.probeTimer == nil {
		st.probeTimer = time.AfterFunc(lifts.Sub(now), func() {
			st.poolMu.Lock()
			st.probeTimer = nil
			st.poolMu.Unlock()
			st.probe(false)
		})
	}
}
