// Package proxy accepts XMPP client connections, connects each to its backend
// and relays between them until both sides have closed.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/limits"
)

// Options carries what a Server receives from its owner.
type Options struct {
	Logger  hclog.Logger // required
	Metrics *Metrics     // optional
	// ReturnMemory gives memory back to the system once a burst of
	// streams has opened or closed and Guard is quiet (memory.go): for a
	// process that runs one Server, as guard does.
	ReturnMemory bool
}

// Server runs listeners and tracks every connection they accept, so that
// Shutdown can drain them. Its zero value is not usable; call New.
type Server struct {
	log     hclog.Logger
	metrics *Metrics

	nextID   atomic.Uint64
	draining atomic.Bool

	// memoryStop ends the memory governor (ReturnMemory), memoryDone
	// closes when it has; nil without one.
	memoryStop, memoryDone chan struct{}
	memoryOnce             sync.Once

	mu        sync.Mutex
	listeners map[*listener]struct{}
	sessions  map[*session]struct{}
	backends  map[string]*backendState // by backend name
	recent    recentEnds               // the last minutes' ends, for the status page
	checkWG   sync.WaitGroup           // health-check goroutines
	idle      chan struct{}            // closed and replaced when sessions drops to zero during a drain
	wg        sync.WaitGroup
}

// New returns a Server with no listeners.
func New(opts Options) *Server {
	if opts.Logger == nil {
		panic("proxy: Options.Logger is required")
	}
	s := &Server{
		log:       opts.Logger,
		metrics:   opts.Metrics,
		listeners: make(map[*listener]struct{}),
		sessions:  make(map[*session]struct{}),
		backends:  make(map[string]*backendState),
	}
	if opts.Metrics != nil {
		opts.Metrics.setServer(s)
	}
	if opts.ReturnMemory {
		s.memoryStop, s.memoryDone = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(s.memoryDone)
			s.governMemory(s.memoryStop)
		}()
	}
	return s
}

// listener is one accept loop.
type listener struct {
	ln      *net.TCPListener
	log     hclog.Logger
	metrics *listenerMetrics
	addrs   *limits.AddrLimiter
	domains *limits.KeyLimiter[string]    // s2s: the streams of each remote domain
	state   atomic.Pointer[listenerState] // swapped by Apply; sessions keep the one they started with
	// tuned: Guard opened ln with Go's keepalive off and TCP_LINGER2 set
	// on the listening socket, which accepted sockets inherit.
	tuned bool
}

// listenerState is a listener's configuration as of one Apply.
type listenerState struct {
	cfg     ListenerConfig
	backend *backendState
	routes  map[string]route // by lower-case domain
}

// route is where streams to one domain go.
type route struct {
	cfg *Backend
	st  *backendState
}

// newListenerState resolves cfg's backends to their shared states.
func (s *Server) newListenerState(cfg ListenerConfig) *listenerState {
	ls := &listenerState{cfg: cfg}
	s.metrics.setTransport(cfg.Name, transport(&cfg), cfg.Stream)
	if cfg.Backend.Address != "" || len(cfg.Backend.Nodes) > 0 {
		ls.backend = s.backendFor(cfg.Backend)
	}
	if len(cfg.Routes) > 0 {
		ls.routes = make(map[string]route, len(cfg.Routes))
		for domain, b := range cfg.Routes {
			b := b
			ls.routes[strings.ToLower(domain)] = route{cfg: &b, st: s.backendFor(b)}
		}
	}
	return ls
}

// routeFor returns the backend for a stream to domain: the route for the
// domain, else the listener's backend; ok is false when neither exists.
func (ls *listenerState) routeFor(domain string) (*Backend, *backendState, bool) {
	if r, ok := ls.routes[strings.ToLower(domain)]; ok {
		return r.cfg, r.st, true
	}
	if ls.backend == nil {
		return nil, nil, false
	}
	return &ls.cfg.Backend, ls.backend, true
}

// Listen opens cfg.Address and starts accepting on it. It returns the bound
// address (useful with port 0).
func (s *Server) Listen(cfg ListenerConfig) (net.Addr, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: tuneListener}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
	}
	if err := s.serveOn(ln.(*net.TCPListener), cfg, true); err != nil {
		ln.Close()
		return nil, err
	}
	return ln.Addr(), nil
}

// Serve accepts on ln, which the caller opened (socket activation, or a
// test's network namespace), as the listener cfg describes; cfg.Address is
// not used. The Server owns ln from now on.
func (s *Server) Serve(ln *net.TCPListener, cfg ListenerConfig) error {
	return s.serveOn(ln, cfg, false)
}

// serveOn is Serve; tuned says that Listen opened ln (see listener.tuned).
func (s *Server) serveOn(ln *net.TCPListener, cfg ListenerConfig, tuned bool) error {
	cfg = cfg.withDefaults()
	l := &listener{
		tuned:   tuned,
		ln:      ln,
		log:     s.log.Named("listener").With("listener", cfg.Name),
		metrics: s.metrics.forListener(cfg.Name),
		addrs:   newAddrLimiter(cfg.Limits),
		domains: limits.NewKeyLimiter[string](domainLimits(cfg.Limits)),
	}
	l.state.Store(s.newListenerState(cfg))
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return errors.New("proxy: server is shutting down")
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serve(l)
	l.log.Info("listening", "address", ln.Addr().String(), "backend", cfg.Backend.Address)
	return nil
}

// serve is the accept loop of one listener. It backs off on temporary
// errors (EMFILE among them) from 5ms doubling to 1s, and never dies on them.
func (s *Server) serve(l *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else {
				backoff = min(2*backoff, time.Second)
			}
			l.log.Warn("accept failed; backing off", "error", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		ss := s.newSession(l, c)
		if ss == nil {
			continue
		}
		go ss.run()
	}
}

// newSession registers a session for c, or closes c if the server is
// shutting down. The socket is tuned before the session is seen anywhere
// (the status page, Shutdown): no moment shows it with Go's keepalive on.
func (s *Server) newSession(l *listener, c *net.TCPConn) *session {
	ss := &session{
		srv:    s,
		l:      l,
		client: c,
		id:     s.nextID.Add(1),
		st:     l.state.Load(),
		remote: addrPort(c.RemoteAddr()),
		start:  time.Now(),
	}
	ss.log = connLog{base: l.log, id: ss.id, client: ss.remote}
	var userTimeout time.Duration
	if t := ss.st.cfg.Timeouts; t.Probe > 0 {
		userTimeout = t.ProbeTimeout
	}
	if err := tuneClient(c, userTimeout, !l.tuned); err != nil {
		ss.log.Debug("setting socket options failed", "error", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		c.Close()
		return nil
	}
	s.sessions[ss] = struct{}{}
	s.recent.opened(len(s.sessions), time.Now())
	s.wg.Add(1)
	l.metrics.connAccepted()
	return ss
}

func (s *Server) sessionDone(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.recent.opened(len(s.sessions), time.Now())
	if len(s.sessions) == 0 {
		s.sessions = make(map[*session]struct{}) // a map keeps the room of its largest size
		if s.idle != nil {
			close(s.idle)
			s.idle = nil
		}
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Open returns the number of client connections currently held.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops accepting, closes connections that have not started
// relaying, and waits for relayed streams to end by themselves. When ctx ends
// first, the remaining connections are closed and ctx's error is returned.
// Shutdown returns once every connection and accept loop has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.mu.Lock()
	var idle chan struct{}
	if len(s.sessions) > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	s.mu.Unlock()

	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
			s.closeSessions()
		}
	}
	s.wg.Wait()
	s.stopChecks()
	return err
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		l.ln.Close()
	}
	s.mu.Unlock()
	for _, ss := range s.sessionList() {
		ss.closeNow()
	}
	s.wg.Wait()
	s.stopChecks()
	return nil
}

// closeSessions ends every session with its shutdown stream error, each in
// its own goroutine: one client that does not read must not hold up the
// others, nor s.mu.
func (s *Server) closeSessions() {
	for _, ss := range s.sessionList() {
		go ss.endStream()
	}
}

func (s *Server) sessionList() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}
