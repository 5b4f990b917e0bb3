package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// benchPeer is what a benchmark client talks to: Guard in front of a
// backend (framed, or raw as the baseline of framing's cost), or the
// backend itself (the direct baseline of the same run).
type benchPeer struct {
	name  string
	setup func(b *testing.B, backend string) string
}

func guardPeer(raw bool) func(b *testing.B, backend string) string {
	return func(b *testing.B, backend string) string {
		s := New(Options{Logger: hclog.NewNullLogger()})
		addr, err := s.Listen(ListenerConfig{
			Name: "bench", Address: "127.0.0.1:0",
			Backend: Backend{Address: backend},
			Raw:     raw,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return addr.String()
	}
}

var benchPeers = []benchPeer{
	{"direct", func(b *testing.B, backend string) string { return backend }},
	{"guard-raw", guardPeer(true)},
	{"guard-framed", guardPeer(false)},
}

// serveBackend runs a loopback XMPP backend: it reads the client's header,
// answers with its own, then handles the stream with fn.
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
			go func() {
				defer c.Close()
				hdr := make([]byte, len(clientHeader))
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				io.WriteString(c, backendHeader)
				fn(c)
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// openBenchStream connects to addr and opens the XMPP stream.
func openBenchStream(b *testing.B, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	io.WriteString(c, clientHeader)
	hdr := make([]byte, len(backendHeader))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, hdr); err != nil {
		b.Fatal(err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// stanzaMix is a realistic client→server mix: chat messages, presence with
// entity capabilities, and a large IQ result (~16 KiB).
var stanzaMix = func() []byte {
	var buf bytes.Buffer
	for i := 0; i < 20; i++ {
		buf.WriteString("<message to='alice@localhost/res' from='bob@localhost/phone' type='chat' id='m" + strings.Repeat("1", 8) + "'><body>Are we still on for lunch tomorrow? &lt;3</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	}
	for i := 0; i < 10; i++ {
		buf.WriteString("<presence from='bob@localhost/phone'><show>away</show><status>On the road</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>")
	}
	buf.WriteString("<iq type='result' id='roster1'><query xmlns='jabber:iq:roster'>")
	for i := 0; i < 200; i++ {
		buf.WriteString("<item jid='contact@example.net' name='A Contact' subscription='both'><group>Friends</group></item>")
	}
	buf.WriteString("</query></iq>")
	return buf.Bytes()
}()

// BenchmarkRelayThroughput sends a realistic stanza mix one way into a
// discarding backend: MB/s of Guard (raw and framed) against a direct
// loopback connection measured in the same run.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, p := range benchPeers {
		b.Run(p.name, func(b *testing.B) {
			backend := serveBackend(b, func(c net.Conn) { io.Copy(io.Discard, c) })
			c := openBenchStream(b, p.setup(b, backend))
			defer c.Close()
			b.SetBytes(int64(len(stanzaMix)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(stanzaMix); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelayRoundTrip sends a ~200-byte stanza to an echoing backend and
// waits for it to come back: latency and allocations per message (the whole
// process, so Guard's relay included) against a direct connection.
func BenchmarkRelayRoundTrip(b *testing.B) {
	msg := []byte("<message to='alice@localhost/res' from='bob@localhost/res' type='chat' id='m1'><body>" +
		strings.Repeat("x", 200-110) + "</body></message>")
	for _, p := range benchPeers {
		b.Run(p.name, func(b *testing.B) {
			backend := serveBackend(b, func(c net.Conn) { io.Copy(c, c) })
			c := openBenchStream(b, p.setup(b, backend))
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

// largeStanzas is 16 message stanzas of 16 KiB each, mostly body text: the
// bulk case (file transfer in-band, pasted logs, inline images).
var largeStanzas = func() []byte {
	const size = 16 << 10
	head := "<message to='alice@localhost/res' from='bob@localhost/phone' type='chat'><body>"
	tail := "</body></message>"
	text := strings.Repeat("All work and no play makes Jack a dull boy. ", size/44+1)
	one := head + text[:size-len(head)-len(tail)] + tail
	return []byte(strings.Repeat(one, 16))
}()

// BenchmarkRelayLargeStanzas is BenchmarkRelayThroughput with 16 KiB
// stanzas, the size of Guard's read buffer: every stanza straddles reads.
func BenchmarkRelayLargeStanzas(b *testing.B) {
	for _, p := range benchPeers {
		b.Run(p.name, func(b *testing.B) {
			backend := serveBackend(b, func(c net.Conn) { io.Copy(io.Discard, c) })
			c := openBenchStream(b, p.setup(b, backend))
			defer c.Close()
			b.SetBytes(int64(len(largeStanzas)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(largeStanzas); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
