package websocket

import (
	"bytes"
	"errors"
	"testing"
)

// clientFrame renders a frame as a client sends it: masked with key.
func clientFrame(fin bool, op Opcode, p []byte, key [4]byte) []byte {
	return AppendClientFrame(nil, fin, op, p, key)
}

var key = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// The accept key of RFC 6455 1.3's example.
func TestAcceptKey(t *testing.T) {
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
	if !ValidKey("dGhlIHNhbXBsZSBub25jZQ==") || ValidKey("c2hvcnQ=") || ValidKey("not base64!") {
		t.Fatal("ValidKey is wrong")
	}
}

// Messages decode whole from any split of the input, fragments are joined
// with control frames between them, and the sizes of every length form
// come through.
func TestDecoderMessages(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 70000)
	mid := bytes.Repeat([]byte("y"), 300)
	var in []byte
	in = append(in, clientFrame(true, OpText, []byte("<open/>"), key)...)
	in = append(in, clientFrame(false, OpText, []byte("<message><bo"), key)...)
	in = append(in, clientFrame(true, OpPing, []byte("hi"), key)...)
	in = append(in, clientFrame(true, OpContinuation, []byte("dy/></message>"), key)...)
	in = append(in, clientFrame(true, OpText, mid, key)...)
	in = append(in, clientFrame(true, OpBinary, long, key)...)
	in = append(in, clientFrame(true, OpClose, []byte{0x03, 0xe8}, key)...)
	want := []Message{{OpText, []byte("<open/>")}, {OpPing, []byte("hi")},
		{OpText, []byte("<message><body/></message>")}, {OpText, mid}, {OpBinary, long}, {OpClose, []byte{3, 0xe8}}}
	for _, step := range []int{1, 7, 1000, len(in)} {
		var d Decoder
		buf := append([]byte(nil), in...)
		var got []Message
		avail := 0
		for pos := 0; pos < len(buf); {
			avail = min(max(avail, pos)+step, len(buf))
			for {
				m, n, err := d.Next(buf[pos:avail])
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if n == 0 {
					if Need(buf[pos:avail]) <= avail-pos {
						t.Fatalf("step %d: Need says %d of %d are enough", step, Need(buf[pos:avail]), avail-pos)
					}
					break
				}
				if m.Op != 0 {
					got = append(got, Message{m.Op, append([]byte(nil), m.Payload...)})
				}
				pos += n
			}
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: %d messages, want %d", step, len(got), len(want))
		}
		for i := range want {
			if got[i].Op != want[i].Op || !bytes.Equal(got[i].Payload, want[i].Payload) {
				t.Fatalf("step %d: message %d = %v %.20q, want %v %.20q", step, i, got[i].Op, got[i].Payload, want[i].Op, want[i].Payload)
			}
		}
	}
}

func TestDecoderRefuses(t *testing.T) {
	unmasked := AppendFrame(nil, OpText, []byte("x"))
	reserved := clientFrame(true, OpText, []byte("x"), key)
	reserved[0] |= 0x40
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"unmasked", unmasked, 0, ErrProtocol},
		{"reserved bits", reserved, 0, ErrProtocol},
		{"unknown opcode", clientFrame(true, 3, []byte("x"), key), 0, ErrProtocol},
		{"fragmented ping", clientFrame(false, OpPing, nil, key), 0, ErrProtocol},
		{"long ping", clientFrame(true, OpPing, make([]byte, 126), key), 0, ErrProtocol},
		{"continuation of nothing", clientFrame(true, OpContinuation, []byte("x"), key), 0, ErrProtocol},
		{"message inside a message", append(clientFrame(false, OpText, []byte("a"), key), clientFrame(true, OpText, []byte("b"), key)...), 0, ErrProtocol},
		{"too big, told by the header", clientFrame(true, OpText, make([]byte, 200), key)[:8], 100, ErrTooBig},
		{"too big in fragments", append(clientFrame(false, OpText, make([]byte, 60), key), clientFrame(true, OpContinuation, make([]byte, 60), key)...), 100, ErrTooBig},
		{"not UTF-8", clientFrame(true, OpText, []byte{0xff, 0xfe}, key), 0, ErrInvalidUTF8},
		{"bad close", clientFrame(true, OpClose, []byte{3}, key), 0, ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoder{MaxMessage: tc.max}
			b := tc.in
			var err error
			for i := 0; i < 4 && err == nil && len(b) > 0; i++ {
				var n int
				_, n, err = d.Next(b)
				b = b[n:]
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := AppendFrame(nil, OpText, make([]byte, n))
		fin, op, masked, length, hlen, err := header(f)
		if err != nil || !fin || op != OpText || masked || length != int64(n) || hlen+n != len(f) {
			t.Fatalf("%d: %v %v %v %d %d %v", n, fin, op, masked, length, hlen, err)
		}
	}
	if c := AppendClose(nil, CloseNormal, ""); !bytes.Equal(c, []byte{0x88, 2, 0x03, 0xe8}) || CloseCode(c[2:]) != 1000 || CloseCode(nil) != 1005 {
		t.Fatalf("close frame % x", c)
	}
}

// FuzzDecoder: any input decodes or fails without panicking, consumes no
// more than it has, and a message is never longer than MaxMessage.
func FuzzDecoder(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte("<open/>"), key))
	f.Add(append(clientFrame(false, OpText, []byte("ab"), key), clientFrame(true, OpContinuation, []byte("cd"), key)...))
	f.Add(clientFrame(true, OpClose, []byte{3, 0xe8, 'o', 'k'}, key))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Decoder{MaxMessage: 1 << 12}
		for i := 0; i < 64 && len(b) > 0; i++ {
			m, n, err := d.Next(b)
			if err != nil || n == 0 {
				return
			}
			if n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			if m.Op < OpClose && len(m.Payload) > d.MaxMessage {
				t.Fatalf("message of %d bytes", len(m.Payload))
			}
			b = b[n:]
		}
	})
}
