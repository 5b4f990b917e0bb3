package tlshello

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/guard-xmpp/guard/internal/testcert"
)

// fragment re-frames the handshake message of a one-record hello into
// records of at most size bytes of payload.
func fragment(hello []byte, size int) []byte {
	msg := hello[5:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
		want Hello
	}{
		{"s2s, XEP-0368", &tls.Config{ServerName: "example.net", NextProtos: []string{"xmpp-server"}},
			Hello{ServerName: "example.net", ALPN: []string{"xmpp-server"}}},
		{"c2s", &tls.Config{ServerName: "chat.example.net", NextProtos: []string{"xmpp-client", "h2"}},
			Hello{ServerName: "chat.example.net", ALPN: []string{"xmpp-client", "h2"}}},
		{"no SNI, no ALPN", &tls.Config{InsecureSkipVerify: true}, Hello{}},
		{"TLS 1.2 only", &tls.Config{ServerName: "example.net", MaxVersion: tls.VersionTLS12},
			Hello{ServerName: "example.net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testcert.ClientHello(t, tt.cfg)
			for _, in := range [][]byte{b, fragment(b, 100), fragment(b, 1), append(b[:len(b):len(b)], "after"...)} {
				got, err := Parse(in)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				want := tt.want
				want.Len = len(in)
				if bytes.HasSuffix(in, []byte("after")) {
					want.Len -= len("after")
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Parse = %+v, want %+v", got, want)
				}
				// Every shorter prefix asks for more.
				for _, n := range []int{0, 1, 5, 6, 9, want.Len / 2, want.Len - 1} {
					if _, err := Parse(in[:n]); err != ErrShort {
						t.Fatalf("Parse of %d of %d bytes = %v; want ErrShort", n, want.Len, err)
					}
				}
			}
		})
	}
}

func TestParseNotAHello(t *testing.T) {
	hello := testcert.ClientHello(t, &tls.Config{ServerName: "example.net"})
	serverHello := append([]byte(nil), hello...)
	serverHello[5] = 2
	for name, in := range map[string][]byte{
		"XMPP":         []byte("<?xml version='1.0'?><stream:stream"),
		"HTTP":         []byte("GET / HTTP/1.1\r\n"),
		"SSLv2-ish":    {0x80, 0x2e, 0x01, 0x03, 0x01},
		"alert":        {21, 3, 3, 0, 2, 2, 40},
		"empty record": {22, 3, 1, 0, 0},
		"ServerHello":  serverHello,
		"huge hello":   {22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff},
		"truncated":    append(append([]byte{22, 3, 1, 0, 8}, 1, 0, 0, 4), 3, 3, 0, 0),
	} {
		if _, err := Parse(in); !errors.As(err, new(*Error)) {
			t.Errorf("%s: Parse = %v; want an *Error", name, err)
		}
	}
}

// FuzzParse: no input panics; a parsed hello is a prefix of the input that
// parses alike on its own, and each of its own prefixes asks for more.
func FuzzParse(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{ServerName: "example.net", NextProtos: []string{"xmpp-server"}},
		{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12},
	} {
		b := testcert.ClientHello(f, cfg)
		f.Add(b)
		f.Add(fragment(b, 64))
	}
	f.Add([]byte("<?xml version='1.0'?>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			return
		}
		if h.Len > len(b) || h.Len < 5 {
			t.Fatalf("Len %d of %d bytes", h.Len, len(b))
		}
		again, err := Parse(b[:h.Len])
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("the hello alone: %+v, %v; want %+v", again, err, h)
		}
		if _, err := Parse(b[:h.Len-1]); err != ErrShort {
			t.Fatalf("one byte short: %v; want ErrShort", err)
		}
	})
}

// The corpus in testdata/fuzz is kept: a new crasher lands there.
func TestCorpusKept(t *testing.T) {
	if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzParse")); err != nil {
		t.Fatalf("the fuzz corpus of FuzzParse is missing: %v", err)
	}
}
