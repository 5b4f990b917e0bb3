package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// benchPeer is what a benchmark client talks to: Guard in front of a
// backend, or the backend itself (the direct baseline of the same run).
type benchPeer struct {
	name  string
	setup func(b *testing.B, backend string) string
}

var benchPeers = []benchPeer{
	{"direct", func(b *testing.B, backend string) string { return backend }},
	{"guard", func(b *testing.B, backend string) string {
		s := New(Options{Logger: hclog.NewNullLogger()})
		addr, err := s.Listen(ListenerConfig{
			Name: "bench", Address: "127.0.0.1:0",
			Backend:  Backend{Address: backend, ConnectTimeout: time.Second},
			Timeouts: Timeouts{Handshake: 5 * time.Second, HalfClose: time.Second},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return addr.String()
	}},
}

// serveBackend runs a loopback backend that handles each connection with fn.
func serveBackend(b *testing.B, fn func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fn(c) }()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// BenchmarkRelayThroughput sends 16 KiB chunks one way into a discarding
// backend: MB/s of Guard against a direct loopback connection.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, p := range benchPeers {
		b.Run(p.name, func(b *testing.B) {
			backend := serveBackend(b, func(c net.Conn) { io.Copy(io.Discard, c) })
			c, err := net.Dial("tcp", p.setup(b, backend))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			chunk := bytes.Repeat([]byte("<message>x</message>"), 16<<10/20)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelayRoundTrip sends a 200-byte stanza to an echoing backend and
// waits for it to come back: latency per message and allocations per message
// (the whole process, so Guard's relay included) against a direct connection.
func BenchmarkRelayRoundTrip(b *testing.B) {
	msg := []byte("<message to='alice@localhost/res' from='bob@localhost/res' type='chat' id='m1'><body>" +
		string(bytes.Repeat([]byte("x"), 200-110)) + "</body></message>")
	for _, p := range benchPeers {
		b.Run(p.name, func(b *testing.B) {
			backend := serveBackend(b, func(c net.Conn) { io.Copy(c, c) })
			c, err := net.Dial("tcp", p.setup(b, backend))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
