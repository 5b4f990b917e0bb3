package proxy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/sockstat"
)

// netns is a network namespace of the test's own, with only a loopback
// interface: a place where a client can vanish without a FIN or a reset.
type netns struct {
	name string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to create a network namespace, and CI must run the tests as root")
		}
		t.Skip("needs root to create a network namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs ip from iproute2 (apt-get install -y iproute2)")
	}
	ns := &netns{name: fmt.Sprintf("guardtest-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	ns.ip(t, "netns", "add", ns.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
	ns.ip(t, "-n", ns.name, "link", "set", "lo", "up")
	return ns
}

func (ns *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// do runs fn on an OS thread switched into the namespace, so that the
// sockets fn creates live there (a socket keeps its namespace for life).
//
// The thread is switched back before it is unlocked. Left in the
// namespace, it would exit with the goroutine, unless it is the main
// thread, which Go never ends: that thread, the process's leader, would
// stay in the namespace, and /proc/self/net/tcp (sockstat.Sockets), which
// shows the leader's namespace, would list the namespace's sockets instead
// of the host's for the rest of the test binary: the socket-state checks
// of later tests would find none of their sockets.
func (ns *netns) do(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			t.Error(err)
			return // still in the host's namespace
		}
		defer home.Close()
		target, err := os.Open("/var/run/netns/" + ns.name)
		if err != nil {
			t.Error(err)
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			runtime.UnlockOSThread()
			return
		}
		fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the thread exits with the goroutine.
			t.Errorf("back to the host's network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// listen opens a loopback listener in the namespace.
func (ns *netns) listen(t *testing.T) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	var err error
	ns.do(t, func() {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln = l.(*net.TCPListener)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dial connects from the namespace; the connection is closed at cleanup.
func (ns *netns) dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	var c net.Conn
	var err error
	ns.do(t, func() { c, err = net.Dial("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// A client that vanishes (its host drops off the network: no FIN, no reset)
// is found by the probe: the keepalive goes unacknowledged, TCP_USER_TIMEOUT
// fails the socket, and Guard ends the stream with connection-timeout (sent
// for the record) and gives the backend a clean end of its stream.
func TestProbeFindsVanishedClient(t *testing.T) {
	ns := newNetns(t)
	leakcheck.Check(t)
	b := newTestBackend(t)
	reg := prometheus.NewRegistry()
	s := New(Options{Logger: testLogger(t), Metrics: NewMetrics(reg)})
	t.Cleanup(func() { s.Close() })

	// Guard's listener and the client both live in the namespace; the
	// backend (and Guard's connection to it) on the host's loopback.
	ln := ns.listen(t)
	c := ns.dial(t, ln.Addr().String())
	err := s.Serve(ln, ListenerConfig{
		Name:     "ns",
		Backend:  Backend{Name: "b", Address: b.addr()},
		Timeouts: Timeouts{Probe: 200 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, clientHeader)
	bc := b.accept(t)
	expect(t, bc, clientHeader)
	write(t, bc, backendHeader)
	expect(t, c, backendHeader)
	// A live client answers the probes at the TCP level and stays.
	expect(t, c, " ")
	if s.Open() != 1 {
		t.Fatal("a live client was cut")
	}

	// The client's network goes away.
	ns.ip(t, "-n", ns.name, "link", "set", "lo", "down")

	// The backend hears a clean end of stream and a FIN ...
	be := endsOf(bc)
	expectEOF(t, bc, streamEnd)
	bc.Close()
	// ... and Guard has let go of the client, for the right reason.
	waitOpen(t, s, 0)
	if got := counterValue(t, reg, "guard_connections_closed_total", "probe_unanswered"); got != 1 {
		t.Fatalf("closed{reason=probe_unanswered} = %v, want 1", got)
	}
	// The backend's connection was closed by FIN on both sides, and
	// Guard's socket of the vanished client is gone, not left lingering.
	waitClosedByFIN(t, be)
	gp := port(t, ln.Addr().String())
	sockstat.WaitUntil(t, 5*time.Second, func([]sockstat.Entry) bool {
		return len(sockstat.InState(ns.sockets(t, gp), append(lingering, sockstat.Established)...)) == 0
	})
}

// counterValue reads one labelled counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Guard's client sockets run no TCP keepalive of their own: combined with
// TCP_USER_TIMEOUT it ended live, idle streams of clients that run
// keepalives themselves (see tuneClient). Checked on the accepted socket of
// a relayed stream, and on one still in its handshake.
func TestClientSocketsHaveNoKeepalive(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{Timeouts: Timeouts{Probe: time.Minute, ProbeTimeout: 30 * time.Second}})
	c, _ := openStream(t, b, addr)
	waiting := dial(t, addr)
	waitFor(t, "two sessions", func() bool { return s.Open() == 2 })
	s.mu.Lock()
	var sessions []*session
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		var on int
		var serr error
		clientSocket(t, ss, func(fd int) { on, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE) })
		if serr != nil || on != 0 {
			t.Errorf("Guard's socket for client %v: SO_KEEPALIVE = %d (%v), want 0", ss.remote, on, serr)
		}
	}
	c.Close()
	waiting.Close()
	waitOpen(t, s, 0)
}

// clientSocket runs fn on the descriptor of ss's client socket: the
// accepted net.TCPConn, or, once a loop relays the stream, the loop's own
// descriptor of it.
func clientSocket(t *testing.T, ss *session, fn func(fd int)) {
	t.Helper()
	ss.mu.Lock()
	c, r := ss.client, ss.relay
	ss.mu.Unlock()
	var fc *fdConn
	if c == nil && r != nil {
		r.mu.Lock()
		fc, _ = r.side[sideClient].conn.(*fdConn)
		r.mu.Unlock()
	}
	if fc != nil {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		fn(fc.fd)
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { fn(int(fd)) })
}
