package proxy

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// This file gives memory back to the operating system after a burst of
// streams has opened or closed and Guard has gone quiet again. Go's
// runtime keeps what a burst allocated: the heap goal stays at twice the
// live heap of the last collection, a collection comes only with new
// allocation (or every two minutes), and the background scavenger returns
// free pages slowly. A fleet of idle streams allocates nothing, so after
// 9,000 streams opened at once, or closed, the process would hold the
// burst's peak for minutes. Once the stream count has moved far and both
// it and the allocation rate have settled, one debug.FreeOSMemory (a
// collection, then every free page returned) brings the resident size
// down to what the streams hold. A busy Guard, allocating, is left to the
// runtime.

// memoryTick is how often the governor looks; memorySettle how many quiet
// looks in a row it waits for.
var (
	memoryTick   = time.Second
	memorySettle = 2
)

const (
	// memoryMinMove is the least change of the stream count, since the
	// last return, that counts as a burst; a quarter of that count if more.
	memoryMinMove = 256
	// memoryQuietRate is the allocation rate below which Guard is quiet.
	memoryQuietRate = 4 << 20 // bytes a second
	// memoryIdleFree: quiet, with this much free heap not yet returned,
	// the memory is returned even without a burst (after the runtime's
	// own collection, say), at most every memoryIdleEvery.
	memoryIdleFree  = 32 << 20
	memoryIdleEvery = time.Minute
)

// freeOSMemory is debug.FreeOSMemory; a test counts the calls.
var freeOSMemory = debug.FreeOSMemory

// memoryGovernor decides when to return memory, from what it is shown at
// each tick; it does no I/O (memory_test.go drives it with figures).
type memoryGovernor struct {
	atLast    int       // streams at the last return
	lastAt    time.Time // when memory was last returned
	prevOpen  int
	prevAlloc uint64
	quiet     int // quiet ticks in a row
	started   bool
}

// tick takes the stream count, the bytes allocated so far and the free
// heap not yet returned, at now, and says whether to return memory now.
func (g *memoryGovernor) tick(open int, allocated, free uint64, now time.Time, every time.Duration) bool {
	if !g.started {
		g.started, g.atLast, g.lastAt = true, open, now
		g.prevOpen, g.prevAlloc = open, allocated
		return false
	}
	rate := float64(allocated-g.prevAlloc) / every.Seconds()
	steady := abs(open-g.prevOpen) <= max(8, g.prevOpen/100)
	g.prevOpen, g.prevAlloc = open, allocated
	if !steady || rate >= memoryQuietRate {
		g.quiet = 0
		return false
	}
	g.quiet++
	if g.quiet < memorySettle {
		return false
	}
	burst := abs(open-g.atLast) >= max(memoryMinMove, g.atLast/4)
	idle := free >= memoryIdleFree && now.Sub(g.lastAt) >= memoryIdleEvery
	if !burst && !idle {
		return false
	}
	g.atLast, g.lastAt, g.quiet = open, now, 0
	return true
}

// stopMemory ends the memory governor, if any, and waits for it.
func (s *Server) stopMemory() {
	if s.memoryStop == nil {
		return
	}
	s.memoryOnce.Do(func() { close(s.memoryStop) })
	<-s.memoryDone
}

// governMemory runs the governor until stop is closed.
func (s *Server) governMemory(stop <-chan struct{}) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(memoryTick)
	defer t.Stop()
	var g memoryGovernor
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			metrics.Read(samples)
			if g.tick(s.Open(), samples[0].Value.Uint64(), samples[1].Value.Uint64(), now, memoryTick) {
				start := time.Now()
				freeOSMemory()
				s.log.Debug("memory returned to the system", "streams", g.atLast, "took", time.Since(start))
			}
		}
	}
}
