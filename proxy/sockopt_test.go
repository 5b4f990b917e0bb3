package proxy

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/sockstat"
)

// guardFD returns the descriptor this process (Guard, in the test binary)
// holds for the TCP socket local->remote: found in the kernel's table by
// its addresses, then in /proc/self/fd by its inode.
func guardFD(t *testing.T, local, remote net.Addr) int {
	t.Helper()
	all, err := sockstat.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	var inode uint64
	for _, e := range all {
		if e.Local.String() == local.String() && e.Remote.String() == remote.String() && e.State == sockstat.Established {
			inode = e.Inode
		}
	}
	if inode == 0 {
		t.Fatalf("no established socket %v->%v in the kernel's table", local, remote)
	}
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, de := range des {
		if link, err := os.Readlink("/proc/self/fd/" + de.Name()); err == nil && link == want {
			fd, err := strconv.Atoi(de.Name())
			if err != nil {
				t.Fatal(err)
			}
			return fd
		}
	}
	t.Fatalf("socket inode %d (%v->%v) is not held by this process", inode, local, remote)
	return -1
}

func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The sockets Guard relays on carry the options the README promises, read
// back from Guard's own descriptors while a stream is open: TCP_LINGER2 of
// 1 s on the client's and the backend's socket (a socket Guard closed does
// not wait a minute in FIN_WAIT2), TCP_USER_TIMEOUT of probe_timeout on the
// client's (probes on), and no kernel keepalive on the client's (Guard's probe is the
// whitespace keepalive). On a listener Guard opened, the client's socket
// inherits TCP_LINGER2 from the listening one and Go's keepalive is never
// on; on one the caller opened and handed to Serve (Go's keepalive on,
// nothing set), Guard sets each option on the accepted socket.
func TestRelaySocketOptions(t *testing.T) {
	for _, opened := range []string{"by Guard", "by the caller"} {
		t.Run(opened, func(t *testing.T) { testRelaySocketOptions(t, opened == "by Guard") })
	}
}

func testRelaySocketOptions(t *testing.T, byGuard bool) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	const probeTimeout = 7 * time.Second
	cfg := ListenerConfig{Timeouts: Timeouts{Probe: time.Minute, ProbeTimeout: probeTimeout}}
	var s *Server
	var addr string
	if byGuard {
		s, addr = startGuard(t, b.addr(), cfg)
	} else {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		s = New(Options{Logger: testLogger(t)})
		t.Cleanup(func() { s.Close() })
		cfg.Name, cfg.Backend = "test", Backend{Name: "b", Address: b.addr()}
		if err := s.Serve(ln, cfg); err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
	}
	c, bc := openStream(t, b, addr)

	cfd := guardFD(t, c.RemoteAddr(), c.LocalAddr())
	if v := sockopt(t, cfd, unix.IPPROTO_TCP, unix.TCP_LINGER2); v != 1 {
		t.Errorf("client socket: TCP_LINGER2 = %d s, want 1", v)
	}
	if v := sockopt(t, cfd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT); v != int(probeTimeout/time.Millisecond) {
		t.Errorf("client socket: TCP_USER_TIMEOUT = %d ms, want %d (probe_timeout)", v, probeTimeout/time.Millisecond)
	}
	if v := sockopt(t, cfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
		t.Errorf("client socket: SO_KEEPALIVE = %d, want 0", v)
	}
	bfd := guardFD(t, bc.RemoteAddr(), bc.LocalAddr())
	if v := sockopt(t, bfd, unix.IPPROTO_TCP, unix.TCP_LINGER2); v != 1 {
		t.Errorf("backend socket: TCP_LINGER2 = %d s, want 1", v)
	}
	// The test's own sockets keep the system's settings: the lookup found
	// Guard's ends, not the mirror images.
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		if v, _ := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT); v != 0 {
			t.Errorf("the test's client socket has TCP_USER_TIMEOUT %d: the lookup is wrong", v)
		}
	})
	closeCleanly(t, c, bc)
	waitOpen(t, s, 0)
}
