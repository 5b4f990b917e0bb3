package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/sockstat"
)

// tcpEnds are the two addresses of one connection, taken while it is open.
type tcpEnds struct{ a, b string }

func endsOf(c net.Conn) tcpEnds { return tcpEnds{c.LocalAddr().String(), c.RemoteAddr().String()} }

// waitClosedByFIN waits (bounded) until both sockets of each connection are
// gone from the kernel's table but for TIME_WAIT (one, or both when the
// FINs crossed): the mark of a close by FIN on both sides. A reset leaves no TIME_WAIT on either side; a
// side that never finished its close stays in FIN_WAIT or CLOSE_WAIT.
func waitClosedByFIN(t *testing.T, conns ...tcpEnds) {
	t.Helper()
	var last []sockstat.Entry
	deadline := time.Now().Add(5 * time.Second)
	for {
		all, err := sockstat.Sockets()
		if err != nil {
			t.Fatal(err)
		}
		last = last[:0]
		ok := true
		for _, c := range conns {
			var tw, other int
			for _, e := range all {
				l, r := e.Local.String(), e.Remote.String()
				if (l == c.a && r == c.b) || (l == c.b && r == c.a) {
					last = append(last, e)
					if e.State == sockstat.TimeWait {
						tw++
					} else {
						other++
					}
				}
			}
			// Both in TIME_WAIT: the two FINs crossed (a simultaneous
			// close), a close by FIN all the same.
			ok = ok && tw >= 1 && other == 0
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want each connection closed by FIN (TIME_WAIT and nothing else); its sockets:\n%s", sockstat.Format(last))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every kind of end Guard makes, not only a plain relay's: a client error,
// a drain, a refusal, an idle timeout. The client reads its exact stream
// error and a FIN, the backend its end of stream and a FIN; once the test's
// ends have closed, every connection was closed by FIN on both sides (no
// reset, in either direction), and none of Guard's sockets lingers.
func TestSocketStatesAfterEachEnd(t *testing.T) {
	ends := []struct {
		name string
		cfg  ListenerConfig
		// end makes the end of an open stream c/bc (a second client
		// for a refusal) and returns the connections to check.
		end func(t *testing.T, s *Server, addr string, c, bc *net.TCPConn) []tcpEnds
	}{
		{"client error", ListenerConfig{}, func(t *testing.T, s *Server, addr string, c, bc *net.TCPConn) []tcpEnds {
			ce, be := endsOf(c), endsOf(bc)
			write(t, c, "<message><body>x</message>")
			expectStreamError(t, c, "", false, "", "not-well-formed", "end tag does not match <body>")
			expectEOF(t, bc, streamEnd)
			bc.Close()
			return []tcpEnds{ce, be}
		}},
		{"drain", ListenerConfig{}, func(t *testing.T, s *Server, addr string, c, bc *net.TCPConn) []tcpEnds {
			ce, be := endsOf(c), endsOf(bc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Drain(ctx, 0) }()
			expectStreamError(t, c, "", false, "", "system-shutdown", "")
			expectEOF(t, bc, streamEnd)
			bc.Close()
			if err := <-done; err != nil {
				t.Errorf("drain: %v", err)
			}
			return []tcpEnds{ce, be}
		}},
		{"refusal", ListenerConfig{Backend: Backend{Admission: Admission{MaxStreams: 1}}}, func(t *testing.T, s *Server, addr string, c, bc *net.TCPConn) []tcpEnds {
			c2 := dial(t, addr)
			e2 := endsOf(c2)
			write(t, c2, clientHeader)
			expectStreamError(t, c2, "", true, "localhost", "resource-constraint", "the server is at capacity; try again later")
			// The stream that holds the slot ends normally.
			ce, be := endsOf(c), endsOf(bc)
			closeCleanly(t, c, bc)
			return []tcpEnds{e2, ce, be}
		}},
		{"idle", ListenerConfig{Timeouts: Timeouts{Idle: 200 * time.Millisecond}}, func(t *testing.T, s *Server, addr string, c, bc *net.TCPConn) []tcpEnds {
			ce, be := endsOf(c), endsOf(bc)
			expectStreamError(t, c, "", false, "", "connection-timeout", "idle too long")
			expectEOF(t, bc, streamEnd)
			bc.Close()
			return []tcpEnds{ce, be}
		}},
	}
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), tt.cfg)
			c, bc := openStream(t, b, addr)
			conns := tt.end(t, s, addr, c, bc)
			waitOpen(t, s, 0)
			waitClosedByFIN(t, conns...)
			if left := sockstat.InState(guardSockets(t, addr, b.addr()), append(lingering, sockstat.Established)...); len(left) > 0 {
				t.Fatalf("Guard's sockets left after the end:\n%s", sockstat.Format(left))
			}
		})
	}
}
