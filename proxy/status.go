package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The status page's view of Guard: what Backends reports, the listeners,
// the ends of the last minutes by reason, and the oldest and busiest
// streams. Built on request from counters Guard keeps anyway; only the ends
// are remembered for it, in a ring of recentSlots buckets.

const (
	recentSlot  = 10 * time.Second
	recentSlots = 30 // five minutes
	topStreams  = 10
)

// Status is a snapshot for the status page.
type Status struct {
	Time      time.Time        `json:"time"`
	Draining  bool             `json:"draining"`
	Open      int              `json:"open"` // client connections held
	Listeners []ListenerStatus `json:"listeners"`
	Backends  []BackendStatus  `json:"backends"`
	// Ends are the last five minutes' ends by reason (the reason label of
	// guard_connections_closed_total), most first; Slots the same minutes
	// in 10-second buckets, oldest first, for a chart.
	Ends    []ReasonCount `json:"ends"`
	Slots   []Slot        `json:"slots"`
	Oldest  []StreamInfo  `json:"oldest"`  // the longest-relaying streams
	Busiest []StreamInfo  `json:"busiest"` // the most bytes relayed
}

// ListenerStatus is one listener.
type ListenerStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Stream  string `json:"stream"` // the streams it takes: c2s, or s2s (federation)
	Backend string `json:"backend"`
	Streams int    `json:"streams"` // relaying now
}

// ReasonCount is how many streams ended for one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Slot is one bucket of the recent minutes: streams that ended well
// (client_closed, backend_closed) and the rest, and the peaks of client
// connections held and of clients waiting for admission.
type Slot struct {
	Start       time.Time `json:"start"`
	Clean       int       `json:"clean"`
	Others      int       `json:"others"`
	PeakOpen    int       `json:"peak_connections"`
	PeakWaiting int       `json:"peak_waiting"`
}

// StreamInfo is one relaying stream: addresses, age and bytes, no JID.
type StreamInfo struct {
	Listener string         `json:"listener"`
	Client   netip.AddrPort `json:"client"`
	To       string         `json:"to"`
	From     string         `json:"from,omitempty"` // s2s: the remote server's domain
	Node     string         `json:"node"`
	Age      time.Duration  `json:"age_ns"`
	BytesIn  int64          `json:"bytes_in"`  // from the client
	BytesOut int64          `json:"bytes_out"` // to the client
}

// recentEnds counts ends by reason in the current slot of a ring.
type recentEnds struct {
	mu    sync.Mutex
	slots [recentSlots]recentSlotData
}

type recentSlotData struct {
	start              time.Time
	reasons            map[string]int
	peakOpen, peakWait int
	lastOpen           int // client connections at the slot's last event
}

// slot returns the slot of now, emptied if it held an older one; r.mu is
// held.
func (r *recentEnds) slot(now time.Time) *recentSlotData {
	start := now.Truncate(recentSlot)
	s := &r.slots[int(start.Unix()/int64(recentSlot/time.Second))%recentSlots]
	if !s.start.Equal(start) {
		s.start = start
		clear(s.reasons)
		s.peakOpen, s.peakWait, s.lastOpen = 0, 0, 0
	}
	return s
}

func (r *recentEnds) ended(reason string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slot(now)
	if s.reasons == nil {
		s.reasons = make(map[string]int)
	}
	s.reasons[reason]++
}

// opened notes that open client connections are held (after one came or
// went).
func (r *recentEnds) opened(open int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slot(now)
	s.peakOpen = max(s.peakOpen, open)
	s.lastOpen = open
}

// waiting notes that n clients wait for admission to one backend.
func (r *recentEnds) waiting(n int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slot(now)
	s.peakWait = max(s.peakWait, n)
}

// snapshot returns the counts of the last recentSlots slots up to now.
func (r *recentEnds) snapshot(now time.Time) ([]ReasonCount, []Slot) {
	cur := now.Truncate(recentSlot)
	totals := map[string]int{}
	slots := make([]Slot, recentSlots)
	r.mu.Lock()
	carry := 0 // connections held through slots in which none came or went
	for k := range recentSlots {
		start := cur.Add(-time.Duration(recentSlots-1-k) * recentSlot)
		slots[k].Start = start
		s := &r.slots[int(start.Unix()/int64(recentSlot/time.Second))%recentSlots]
		if !s.start.Equal(start) {
			slots[k].PeakOpen = carry
			continue
		}
		slots[k].PeakOpen, slots[k].PeakWaiting = max(s.peakOpen, carry), s.peakWait
		if s.peakOpen > 0 || s.lastOpen > 0 {
			carry = s.lastOpen
		}
		for reason, n := range s.reasons {
			totals[reason] += n
			if reason == ReasonClientClosed || reason == ReasonBackendClosed {
				slots[k].Clean += n
			} else {
				slots[k].Others += n
			}
		}
	}
	r.mu.Unlock()
	ends := make([]ReasonCount, 0, len(totals))
	for reason, n := range totals {
		ends = append(ends, ReasonCount{reason, n})
	}
	slices.SortFunc(ends, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	return ends, slots
}

// Status returns a snapshot for the status page.
func (s *Server) Status() Status {
	now := time.Now()
	st := Status{Time: now, Draining: s.Draining(), Backends: s.Backends()}
	st.Ends, st.Slots = s.recent.snapshot(now)
	perListener := map[*listener]int{}
	var streams []StreamInfo
	for _, ss := range s.sessionList() {
		ss.mu.Lock()
		r, since := ss.relay, ss.since
		ss.mu.Unlock()
		if r == nil {
			continue
		}
		to := ss.log.to // written before relaying, never after
		perListener[ss.l]++
		si := StreamInfo{Listener: ss.st.cfg.Name, Client: ss.remote, To: to, From: ss.peerDomain, Age: now.Sub(time.Unix(0, since)),
			BytesIn: r.relayedBytes[clientToBackend].Load(), BytesOut: r.relayedBytes[backendToClient].Load()}
		if ss.node != nil {
			si.Node = ss.node.addr
		}
		streams = append(streams, si)
	}
	st.Open = s.Open()
	if n := len(st.Slots); n > 0 {
		st.Slots[n-1].PeakOpen = max(st.Slots[n-1].PeakOpen, st.Open)
	}
	for _, l := range s.listenerList() {
		cfg := l.state.Load().cfg
		st.Listeners = append(st.Listeners, ListenerStatus{Name: cfg.Name, Address: l.ln.Addr().String(),
			Stream: cfg.Stream.Short(), Backend: cfg.Backend.Name, Streams: perListener[l]})
	}
	slices.SortFunc(st.Listeners, func(a, b ListenerStatus) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(streams, func(a, b StreamInfo) int { return cmp.Compare(b.Age, a.Age) })
	st.Oldest = slices.Clone(streams[:min(topStreams, len(streams))])
	slices.SortFunc(streams, func(a, b StreamInfo) int {
		return cmp.Compare(b.BytesIn+b.BytesOut, a.BytesIn+a.BytesOut)
	})
	st.Busiest = slices.Clone(streams[:min(topStreams, len(streams))])
	return st
}
