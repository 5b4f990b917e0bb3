package proxyproto

import (
	"bytes"
	"io"
	"testing"
)

// countingReader counts the Read calls that reach the underlying reader,
// which on a net.Conn would each be a system call.
type countingReader struct {
	r     io.Reader
	calls int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.calls++
	return c.r.Read(p)
}

// TestReadCalls pins how many reads a header takes from an unbuffered
// connection, so a change that degrades version 1 to byte-at-a-time reads
// shows up.
func TestReadCalls(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		max  int
	}{
		{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n"), 6},
		{"v1 TCP4 longest", []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), 8},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 5222\r\n"), 8},
		{"v1 TCP6 longest", []byte("PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"), 16},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), 1},
		{"v1 UNKNOWN longest", []byte("PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n"), 47},
		{"v2 TCP4", v2(0x21, 0x11, inet4), 3},
		{"v2 TCP6 TLVs", v2(0x21, 0x21, inet6, tlv(TypeAuthority, "example.net")), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &countingReader{r: bytes.NewReader(append(tt.wire, payload...))}
			if _, err := Read(c); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes in %d reads", len(tt.wire), c.calls)
			if c.calls > tt.max {
				t.Errorf("%d reads, want at most %d", c.calls, tt.max)
			}
		})
	}
}
