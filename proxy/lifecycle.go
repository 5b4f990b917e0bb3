package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file is the server's lifecycle beyond accepting: Apply (reload),
// Drain (the open streams ended spread over a window), and the closes a
// deadline forces.

// Apply makes the server's listeners those of cfgs, matched by Name: a
// listener whose address is unchanged keeps its socket and takes the new
// configuration for connections it accepts from now on (established streams
// keep the configuration they started with); a listener with a new address
// is replaced; new ones start; missing ones stop accepting, and their open
// streams run on. Backend admission settings (gate, queue, pacer) are
// updated in place, so admitted streams keep their slots. The first
// listener that cannot be opened is reported; the others are still applied.
func (s *Server) Apply(cfgs []ListenerConfig) error {
	if s.draining.Load() {
		return errors.New("proxy: server is shutting down")
	}
	want := make(map[string]ListenerConfig, len(cfgs))
	for _, c := range cfgs {
		want[c.Name] = c
	}
	var errs []error
	for _, l := range s.listenerList() {
		cur := l.state.Load().cfg
		c, keep := want[cur.Name]
		switch {
		case !keep || c.Address != cur.Address:
			s.stopListener(l)
		default:
			c = c.withDefaults()
			l.addrs.SetLimits(addrLimits(c.Limits))
			l.domains.SetLimits(domainLimits(c.Limits))
			l.state.Store(s.newListenerState(c))
			delete(want, c.Name)
		}
	}
	for _, c := range cfgs {
		if _, open := want[c.Name]; !open {
			continue
		}
		if _, err := s.Listen(c); err != nil {
			errs = append(errs, err)
		}
	}
	s.dropUnusedBackends()
	return errors.Join(errs...)
}

// dropUnusedBackends forgets the backends no listener uses any more: their
// health checks stop and they leave /backends and the metrics. Streams
// already relayed to them keep their state until they end.
func (s *Server) dropUnusedBackends() {
	used := make(map[*backendState]bool)
	for _, l := range s.listenerList() {
		st := l.state.Load()
		if st.backend != nil {
			used[st.backend] = true
		}
		for _, r := range st.routes {
			used[r.st] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.backends {
		if !used[st] {
			if st.checks != nil {
				st.checks()
			}
			delete(s.backends, name)
		}
	}
}

// listenerList returns the current listeners.
func (s *Server) listenerList() []*listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*listener, 0, len(s.listeners))
	for l := range s.listeners {
		out = append(out, l)
	}
	return out
}

// stopListener closes a listener's socket; its accept loop ends and its
// streams run on.
func (s *Server) stopListener(l *listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	l.ln.Close()
	l.log.Info("listener stopped")
}

// Listeners returns the name and address of each open listener.
func (s *Server) Listeners() map[string]string {
	out := make(map[string]string)
	for _, l := range s.listenerList() {
		out[l.state.Load().cfg.Name] = l.ln.Addr().String()
	}
	return out
}

// Drain stops accepting, closes connections that have not sent a stream
// header, and ends every open stream with the shutdown stream error, one at
// a time, evenly spread over window: with n streams, one every window/n, so
// that clients reconnect elsewhere at a pace the rest of the cluster can
// take instead of in one storm. Streams that end by themselves leave
// earlier. Drain returns when every connection has ended. If ctx ends first,
// the remaining connections are closed at once and ctx's error is returned.
func (s *Server) Drain(ctx context.Context, window time.Duration) error {
	s.stopAccepting()
	s.mu.Lock()
	open := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		open = append(open, ss)
	}
	s.mu.Unlock()
	slices.SortFunc(open, func(a, b *session) int { return int(a.id - b.id) })

	start := time.Now()
	n := len(open)
	s.log.Info("draining", "streams", n, "window", window)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, ss := range open {
		at := start.Add(window * time.Duration(i) / time.Duration(max(n, 1)))
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-done:
				s.stopChecks()
				return nil // every stream ended by itself before its turn
			case <-ctx.Done():
				return s.killAll(ctx.Err())
			}
		}
		// Its own goroutine: a client that does not read must not delay
		// the schedule of the others.
		go ss.endStream()
	}
	// Every stream has been told; wait for the closes to finish.
	select {
	case <-done:
		s.stopChecks()
		return nil
	case <-ctx.Done():
		return s.killAll(ctx.Err())
	}
}

// stopAccepting closes the listeners and the connections that have not sent
// a stream header.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(true)
	for l := range s.listeners {
		l.ln.Close()
	}
	for ss := range s.sessions {
		ss.closeIfHandshaking()
	}
}

// killAll closes every connection's sockets now, waits for the sessions to
// end, and returns err.
func (s *Server) killAll(err error) error {
	s.mu.Lock()
	for ss := range s.sessions {
		ss.closeNow()
	}
	n := len(s.sessions)
	s.mu.Unlock()
	if n > 0 {
		s.log.Warn("deadline reached: closed remaining connections", "count", n)
	}
	s.wg.Wait()
	s.stopChecks()
	return fmt.Errorf("proxy: drain cut short: %w", err)
}
