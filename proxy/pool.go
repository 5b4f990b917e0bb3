package proxy

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// This file is a backend's pool of nodes: their health (passive ejection;
// the active checks are in health.go), the choice of a node for each
// stream, and the pool as GET /backends reports it.

// Passive ejection: a node that fails this many times in a row (refused,
// timed out, a failed TLS handshake, a stalled or garbled header) is taken
// out for ejectFor, then tried again, unless it is the last usable node of
// its pool. A reset or close before the backend's header is not counted: an
// overloaded server (Openfire over its capacity) sheds connections that way
// while it serves the rest, and ejecting it would turn every client away.
const (
	ejectAfter = 3
	ejectFor   = 10 * time.Second
)

// nodeState is the health and load of one node.
type nodeState struct {
	addr     string
	max      atomic.Int32 // 0: no cap of its own
	open     atomic.Int32
	opening  atomic.Int32              // of open: streams whose backend header has not come yet
	adaptive atomic.Pointer[nodeLimit] // the learned cap; nil: adaptive admission off

	mu        sync.Mutex
	failures  int       // consecutive
	downUntil time.Time // passive ejection
	checkedUp bool      // the last active check passed (true when none ran)
}

func (n *nodeState) usable(now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.checkedUp && !now.Before(n.downUntil)
}

// nodeFailed records a failed connection to n. A hard failure counts
// toward ejection; n is ejected after ejectAfter in a row if another node of
// the pool is usable: ejection exists to send traffic elsewhere, and with
// nowhere else to go the node keeps being dialed (health checks and retries
// decide).
func (st *backendState) nodeFailed(n *nodeState, hard bool, log hclog.Logger) {
	if !hard {
		return
	}
	n.mu.Lock()
	n.failures++
	due := n.failures >= ejectAfter && time.Now().After(n.downUntil)
	failures := n.failures
	n.mu.Unlock()
	if !due {
		return
	}
	if !st.otherUsable(n) {
		if failures == ejectAfter {
			log.Warn("backend node keeps failing; not ejected: it is the pool's last usable node", "node", n.addr, "failures", failures)
		}
		return
	}
	n.mu.Lock()
	n.downUntil = time.Now().Add(ejectFor)
	n.mu.Unlock()
	log.Warn("backend node ejected after consecutive failures", "node", n.addr, "failures", failures, "for", ejectFor)
}

// otherUsable reports whether a node of the pool other than n is usable.
func (st *backendState) otherUsable(n *nodeState) bool {
	st.poolMu.Lock()
	nodes := st.nodes
	st.poolMu.Unlock()
	now := time.Now()
	for _, o := range nodes {
		if o != n && o.usable(now) {
			return true
		}
	}
	return false
}

func (n *nodeState) succeeded() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failures = 0
}

func (n *nodeState) setChecked(up bool, log hclog.Logger) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if up != n.checkedUp {
		if up {
			log.Info("backend node passes its health check again", "node", n.addr)
			n.downUntil = time.Time{}
			n.failures = 0
		} else {
			log.Warn("backend node fails its health check", "node", n.addr)
		}
	}
	n.checkedUp = up
}

// setNodes makes the backend's pool the given nodes, keeping the state of
// nodes whose address is unchanged.
func (st *backendState) setNodes(b Backend) {
	nodes := b.Nodes
	if len(nodes) == 0 {
		nodes = []Node{{Address: b.Address}}
	}
	st.poolMu.Lock()
	defer st.poolMu.Unlock()
	st.maxStreams, st.queueSize = b.Admission.MaxStreams, b.Admission.QueueSize
	old := make(map[string]*nodeState, len(st.nodes))
	for _, n := range st.nodes {
		old[n.addr] = n
	}
	st.nodes = st.nodes[:0:0]
	for _, nd := range nodes {
		n := old[nd.Address]
		if n == nil {
			n = &nodeState{addr: nd.Address, checkedUp: true}
		}
		n.max.Store(int32(nd.MaxStreams))
		max := nd.MaxStreams
		if max <= 0 {
			max = b.Admission.MaxStreams
		}
		n.setAdaptive(b.Adaptive, max)
		st.nodes = append(st.nodes, n)
	}
}

// load is how full n is with open streams: the share of its learned cap
// under adaptive admission, else the count.
func (n *nodeState) load(open int32) float64 {
	if l := n.limit(); l > 0 {
		return float64(open) / float64(l)
	}
	return float64(open)
}

// pick chooses the node for a new stream: usable (healthy, not ejected),
// below its own cap, the least loaded (see load); none of tried. It reports
// whether any node was merely full (as opposed to down).
func (st *backendState) pick(tried []*nodeState) (best *nodeState, full bool) {
	st.poolMu.Lock()
	nodes := st.nodes
	st.poolMu.Unlock()
	now := time.Now()
	for {
		best, full = nil, false
		for _, n := range nodes {
			if slices.Contains(tried, n) || !n.usable(now) {
				continue
			}
			open := n.open.Load()
			if max := n.max.Load(); max > 0 && open >= max {
				full = true
				continue
			}
			if best == nil || n.load(open) < best.load(best.open.Load()) {
				best = n
			}
		}
		if best == nil {
			return nil, full
		}
		// Reserve the stream on the node now, so that concurrent picks
		// cannot all take its last place; the caller gives it back if the
		// dial fails.
		open := best.open.Load()
		if max := best.max.Load(); max > 0 && open >= max {
			continue
		}
		if best.open.CompareAndSwap(open, open+1) {
			return best, full
		}
	}
}

// BackendStatus is a backend's pool as GET /backends reports it.
type BackendStatus struct {
	Name       string       `json:"name"`
	Streams    int          `json:"streams"`
	MaxStreams int          `json:"max_streams"`
	Waiting    int          `json:"waiting"`
	Nodes      []NodeStatus `json:"nodes"`
}

// NodeStatus is one node's state.
type NodeStatus struct {
	Address    string `json:"address"`
	Up         bool   `json:"up"`      // usable now
	Ejected    bool   `json:"ejected"` // out after consecutive failures
	Healthy    bool   `json:"healthy"` // the last active check passed
	Streams    int    `json:"streams"`
	MaxStreams int    `json:"max_streams"`
	Failures   int    `json:"consecutive_failures"`
	// LearnedMaxStreams is the node's cap learned by adaptive admission;
	// 0 when it is off.
	LearnedMaxStreams int `json:"learned_max_streams"`
}

// Backends reports every backend pool, sorted by name.
func (s *Server) Backends() []BackendStatus {
	s.mu.Lock()
	states := make([]*backendState, 0, len(s.backends))
	for _, st := range s.backends {
		states = append(states, st)
	}
	s.mu.Unlock()
	slices.SortFunc(states, func(a, b *backendState) int { return strings.Compare(a.name, b.name) })
	out := make([]BackendStatus, 0, len(states))
	now := time.Now()
	for _, st := range states {
		bs := BackendStatus{Name: st.name}
		if gate := st.gate.Load(); gate != nil {
			g := gate.Stats()
			bs.Streams, bs.MaxStreams, bs.Waiting = g.InUse, g.Capacity, g.Waiting
		}
		st.poolMu.Lock()
		nodes := slices.Clone(st.nodes)
		st.poolMu.Unlock()
		for _, n := range nodes {
			n.mu.Lock()
			ns := NodeStatus{Address: n.addr, Healthy: n.checkedUp, Ejected: now.Before(n.downUntil),
				Streams: int(n.open.Load()), MaxStreams: int(n.max.Load()), Failures: n.failures}
			ns.LearnedMaxStreams = n.limit()
			n.mu.Unlock()
			ns.Up = ns.Healthy && !ns.Ejected
			bs.Nodes = append(bs.Nodes, ns)
		}
		out = append(out, bs)
	}
	return out
}

// size returns the number of nodes in the pool.
func (st *backendState) size() int {
	st.poolMu.Lock()
	defer st.poolMu.Unlock()
	return len(st.nodes)
}

// resetChecks marks every node as passing, when active checks stop.
func (st *backendState) resetChecks() {
	st.poolMu.Lock()
	defer st.poolMu.Unlock()
	for _, n := range st.nodes {
		n.mu.Lock()
		n.checkedUp = true
		n.mu.Unlock()
	}
}
