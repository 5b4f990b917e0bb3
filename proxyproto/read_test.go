package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// payload stands for the XMPP bytes that follow a header.
const payload = "<?xml version='1.0'?><stream:stream to='example.net'>"

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// v2 builds a version 2 header by hand: the signature, the version and
// command byte, the family and transport byte, the length of body, body.
func v2(verCmd, famProto byte, body ...[]byte) []byte {
	b := []byte(sigV2)
	b = append(b, verCmd, famProto, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:], uint16(len(b)-16))
	return b
}

// v2len is v2 with an explicit length field and no body check.
func v2len(verCmd, famProto byte, length int, body []byte) []byte {
	b := []byte(sigV2)
	b = append(b, verCmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	return append(b, body...)
}

func tlv(t byte, v string) []byte {
	b := []byte{t}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// inet4 is the address block of 192.0.2.1:56324 -> 198.51.100.7:5222.
var inet4 = []byte{192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x14, 0x66}

// inet6 is the address block of [2001:db8::1]:56324 -> [2001:db8::2]:5222.
var inet6 = func() []byte {
	s, d := netip.MustParseAddr("2001:db8::1").As16(), netip.MustParseAddr("2001:db8::2").As16()
	b := append(s[:], d[:]...)
	return append(b, 0xdc, 0x04, 0x14, 0x66)
}()

var (
	src4 = ap("192.0.2.1:56324")
	dst4 = ap("198.51.100.7:5222")
	src6 = ap("[2001:db8::1]:56324")
	dst6 = ap("[2001:db8::2]:5222")
)

func equalHeader(a, b Header) bool {
	if a.Version != b.Version || a.Command != b.Command || a.Source != b.Source || a.Dest != b.Dest || len(a.TLVs) != len(b.TLVs) {
		return false
	}
	for i := range a.TLVs {
		if a.TLVs[i].Type != b.TLVs[i].Type || !bytes.Equal(a.TLVs[i].Value, b.TLVs[i].Value) {
			return false
		}
	}
	return true
}

var ffff6 = strings.Repeat("ffff:", 7) + "ffff"

var validTests = []struct {
	name string
	wire []byte
	want Header
}{
	{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n"),
		Header{Version: 1, Command: Proxy, Source: src4, Dest: dst4}},
	{"v1 TCP4 shortest", []byte("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
		Header{Version: 1, Command: Proxy, Source: ap("0.0.0.0:0"), Dest: ap("0.0.0.0:0")}},
	{"v1 TCP4 longest", []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
		Header{Version: 1, Command: Proxy, Source: ap("255.255.255.255:65535"), Dest: ap("255.255.255.255:65535")}},
	{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 5222\r\n"),
		Header{Version: 1, Command: Proxy, Source: src6, Dest: dst6}},
	{"v1 TCP6 shortest", []byte("PROXY TCP6 :: :: 0 0\r\n"),
		Header{Version: 1, Command: Proxy, Source: ap("[::]:0"), Dest: ap("[::]:0")}},
	{"v1 TCP6 longest", []byte("PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"),
		Header{Version: 1, Command: Proxy, Source: ap("[" + ffff6 + "]:65535"), Dest: ap("[" + ffff6 + "]:65535")}},
	{"v1 TCP6 upper case", []byte("PROXY TCP6 2001:DB8::1 2001:db8::2 56324 5222\r\n"),
		Header{Version: 1, Command: Proxy, Source: src6, Dest: dst6}},
	{"v1 TCP6 IPv4-mapped", []byte("PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 5222\r\n"),
		Header{Version: 1, Command: Proxy, Source: ap("[::ffff:192.0.2.1]:56324"), Dest: dst6}},
	{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Command: Proxy}},
	{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN 192.0.2.1 198.51.100.7 56324 5222\r\n"),
		Header{Version: 1, Command: Proxy}},
	{"v1 UNKNOWN longest", []byte("PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n"),
		Header{Version: 1, Command: Proxy}},
	{"v1 UNKNOWN junk", []byte("PROXY UNKNOWN \x00\xff anything\r\n"), Header{Version: 1, Command: Proxy}},

	{"v2 TCP4", v2(0x21, 0x11, inet4), Header{Version: 2, Command: Proxy, Source: src4, Dest: dst4}},
	{"v2 TCP6", v2(0x21, 0x21, inet6), Header{Version: 2, Command: Proxy, Source: src6, Dest: dst6}},
	{"v2 TCP4 TLVs", v2(0x21, 0x11, inet4, tlv(TypeAuthority, "example.net"), tlv(TypeNoop, ""), tlv(0xe0, "x")),
		Header{Version: 2, Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{
			{TypeAuthority, []byte("example.net")}, {TypeNoop, []byte{}}, {0xe0, []byte("x")}}}},
	{"v2 TCP6 TLV block at limit", v2(0x21, 0x21, inet6, tlv(TypeNoop, strings.Repeat("\x00", MaxTLVBytes-3))),
		Header{Version: 2, Command: Proxy, Source: src6, Dest: dst6, TLVs: []TLV{
			{TypeNoop, make([]byte, MaxTLVBytes-3)}}}},
	// The checksums in this file were computed independently of the package.
	{"v2 CRC32C", v2(0x21, 0x11, inet4, tlv(TypeCRC32C, "\x72\x3e\xe2\x29"), tlv(TypeUniqueID, "abc")),
		Header{Version: 2, Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{
			{TypeCRC32C, []byte{0x72, 0x3e, 0xe2, 0x29}}, {TypeUniqueID, []byte("abc")}}}},
	{"v2 LOCAL", v2(0x20, 0x00), Header{Version: 2, Command: Local}},
	{"v2 LOCAL with address", v2(0x20, 0x11, inet4, tlv(TypeNoop, "")), Header{Version: 2, Command: Local}},
	{"v2 LOCAL odd family", v2(0x20, 0xff, []byte("abc")), Header{Version: 2, Command: Local}},
	{"v2 PROXY UNSPEC", v2(0x21, 0x00), Header{Version: 2, Command: Proxy}},
	{"v2 PROXY UNSPEC with bytes", v2(0x21, 0x00, inet4), Header{Version: 2, Command: Proxy}},
	{"v2 PROXY IPv4 unspecified transport", v2(0x21, 0x10, inet4), Header{Version: 2, Command: Proxy}},
	{"v2 PROXY unspecified family over TCP", v2(0x21, 0x01), Header{Version: 2, Command: Proxy}},
}

func TestReadValid(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tt := range validTests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				src := bytes.NewReader(append(append([]byte(nil), tt.wire...), payload...))
				h, err := Read(wrap(src))
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if !equalHeader(h, tt.want) {
					t.Errorf("Read = %+v, want %+v", h, tt.want)
				}
				if rest, _ := io.ReadAll(src); string(rest) != payload {
					t.Errorf("after the header the reader holds %q, want the payload %q", rest, payload)
				}
			})
		}
	}
}

// TestReadTruncated cuts every valid header at every byte: Read must fail
// with an end-of-file error, never succeed or claim a malformed header.
func TestReadTruncated(t *testing.T) {
	for _, tt := range validTests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range len(tt.wire) {
				for _, r := range []io.Reader{bytes.NewReader(tt.wire[:i]), iotest.OneByteReader(bytes.NewReader(tt.wire[:i]))} {
					_, err := Read(r)
					want := io.ErrUnexpectedEOF
					if i == 0 {
						want = io.EOF
					}
					if !errors.Is(err, want) {
						t.Fatalf("Read of the first %d bytes: err = %v, want %v", i, err, want)
					}
				}
			}
		})
	}
}

func TestReadErrorFromReader(t *testing.T) {
	wire := []byte("PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n")
	for i := range len(wire) {
		r := io.MultiReader(bytes.NewReader(wire[:i]), iotest.ErrReader(os.ErrDeadlineExceeded))
		if _, err := Read(r); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("timeout after %d bytes: err = %v, want os.ErrDeadlineExceeded", i, err)
		}
	}
}

func TestReadInvalid(t *testing.T) {
	tests := []struct {
		name string
		wire string
		want error
	}{
		{"XMPP", payload, ErrNoHeader},
		{"TLS", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh", ErrNoHeader},
		{"HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrNoHeader},
		{"lower case", "proxy TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n", ErrNoHeader},
		{"short non-header", "<a", ErrNoHeader},
		{"v2 signature broken", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + string(inet4), ErrNoHeader},

		{"v1 no space after PROXY", "PROXYTCP4 192.0.2.1 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 TCP5", "PROXY TCP5 192.0.2.1 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 tcp4", "PROXY tcp4 192.0.2.1 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 UNKNOWNX", "PROXY UNKNOWNX\r\n", ErrMalformed},
		{"v1 UDP4", "PROXY UDP4 192.0.2.1 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 LF only", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\n" + payload, ErrMalformed},
		{"v1 CR only", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r" + payload, ErrMalformed},
		{"v1 CR CR LF", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\r\n", ErrMalformed},
		{"v1 UNKNOWN lone LF", "PROXY UNKNOWN a\nb\r\n", ErrMalformed},
		{"v1 double space", "PROXY TCP4 192.0.2.1  198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 trailing space", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222 \r\n", ErrMalformed},
		{"v1 extra field", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 5222 1\r\n", ErrMalformed},
		{"v1 missing port", "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n", ErrMalformed},
		{"v1 tab", "PROXY TCP4 192.0.2.1\t198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 leading zero port", "PROXY TCP4 192.0.2.1 198.51.100.7 056324 5222\r\n", ErrMalformed},
		{"v1 port 65536", "PROXY TCP4 192.0.2.1 198.51.100.7 65536 5222\r\n", ErrMalformed},
		{"v1 port 99999", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 99999\r\n", ErrMalformed},
		{"v1 port sign", "PROXY TCP4 192.0.2.1 198.51.100.7 +5632 5222\r\n", ErrMalformed},
		{"v1 port hex", "PROXY TCP4 192.0.2.1 198.51.100.7 0x10 5222\r\n", ErrMalformed},
		{"v1 octet leading zero", "PROXY TCP4 192.0.2.01 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 octet 256", "PROXY TCP4 192.0.2.256 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 TCP4 with IPv6", "PROXY TCP4 2001:db8::1 198.51.100.7 56324 5222\r\n", ErrMalformed},
		{"v1 TCP6 with IPv4", "PROXY TCP6 192.0.2.1 2001:db8::2 56324 5222\r\n", ErrMalformed},
		{"v1 TCP6 zone", "PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 5222\r\n", ErrMalformed},
		{"v1 TCP6 brackets", "PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 5222\r\n", ErrMalformed},
		{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("a", 200) + "\r\n", ErrMalformed},
		{"v1 CRLF at byte 108", "PROXY UNKNOWN " + strings.Repeat("a", 92) + "\r\n", ErrMalformed},
		{"v1 TCP6 port too long", "PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 655350\r\n", ErrMalformed},

		{"v2 version 1", string(v2(0x11, 0x11, inet4)), ErrMalformed},
		{"v2 version 3", string(v2(0x31, 0x11, inet4)), ErrMalformed},
		{"v2 command 2", string(v2(0x22, 0x11, inet4)), ErrMalformed},
		{"v2 command 15", string(v2(0x2f, 0x00)), ErrMalformed},
		{"v2 family 4", string(v2(0x21, 0x41, inet4)), ErrMalformed},
		{"v2 transport 3", string(v2(0x21, 0x13, inet4)), ErrMalformed},
		{"v2 TCP4 short block", string(v2(0x21, 0x11, inet4[:11])), ErrMalformed},
		{"v2 TCP6 short block", string(v2(0x21, 0x21, inet4)), ErrMalformed},
		{"v2 UNIX short block", string(v2(0x21, 0x31, inet6)), ErrMalformed},
		// The length is refused before the body is read: only 16 bytes exist.
		{"v2 TCP4 length over limit", string(v2len(0x21, 0x11, 12+MaxTLVBytes+1, nil)), ErrMalformed},
		{"v2 TCP6 length over limit", string(v2len(0x21, 0x21, 36+MaxTLVBytes+1, nil)), ErrMalformed},
		{"v2 LOCAL length over limit", string(v2len(0x20, 0x00, 216+MaxTLVBytes+1, nil)), ErrMalformed},
		{"v2 length 65535", string(v2len(0x21, 0x11, 65535, nil)), ErrMalformed},
		{"v2 TLV header truncated", string(v2(0x21, 0x11, inet4, []byte{TypeNoop, 0})), ErrMalformed},
		{"v2 TLV overruns", string(v2(0x21, 0x11, inet4, []byte{TypeAuthority, 0, 5, 'a', 'b'})), ErrMalformed},
		{"v2 CRC32C wrong", string(v2(0x21, 0x11, inet4, tlv(TypeCRC32C, "\x00\x00\x00\x00"))), ErrMalformed},
		{"v2 CRC32C short", string(v2(0x21, 0x11, inet4, tlv(TypeCRC32C, "\x00\x00\x00"))), ErrMalformed},
		{"v2 two CRC32C", string(Header{Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{
			{TypeCRC32C, make([]byte, 4)}, {TypeCRC32C, make([]byte, 4)}}}.AppendV2(nil)), ErrMalformed},

		{"v2 UDP4", string(v2(0x21, 0x12, inet4)), ErrUnsupported},
		{"v2 UDP6", string(v2(0x21, 0x22, inet6)), ErrUnsupported},
		{"v2 UNIX stream", string(v2(0x21, 0x31, make([]byte, 216))), ErrUnsupported},
		{"v2 UNIX datagram", string(v2(0x21, 0x32, make([]byte, 216), tlv(TypeNoop, "x"))), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A client sends its first bytes right after the header, and
			// an invalid version 1 line may be read past its CRLF.
			wire := tt.wire + payload
			for _, r := range []io.Reader{strings.NewReader(wire), iotest.OneByteReader(strings.NewReader(wire))} {
				_, err := Read(r)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Read(%q): err = %v, want %v", tt.wire, err, tt.want)
				}
				var e *Error
				if !errors.As(err, &e) || e.Reason == "" {
					t.Errorf("error %v is not an *Error with a reason", err)
				}
			}
		})
	}
}

// TestReadUnsupportedConsumes checks that after ErrUnsupported the reader is
// positioned after the header, so a caller could fall back as the
// specification allows.
func TestReadUnsupportedConsumes(t *testing.T) {
	wire := append(v2(0x21, 0x32, make([]byte, 216), tlv(TypeNoop, "x")), payload...)
	r := bytes.NewReader(wire)
	h, err := Read(r)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	if h.Version != 2 || h.Command != Proxy || h.Source.IsValid() {
		t.Errorf("header = %+v, want version 2 PROXY without addresses", h)
	}
	if rest, _ := io.ReadAll(r); string(rest) != payload {
		t.Errorf("rest = %q, want %q", rest, payload)
	}
}

// TestReadNoHeaderEarly checks that a client speaking XMPP directly is
// recognised from its first 15 bytes.
func TestReadNoHeaderEarly(t *testing.T) {
	r := strings.NewReader(payload)
	if _, err := Read(r); !errors.Is(err, ErrNoHeader) {
		t.Fatalf("err = %v, want ErrNoHeader", err)
	}
	if got := len(payload) - r.Len(); got != prefixLen {
		t.Errorf("Read consumed %d bytes, want %d", got, prefixLen)
	}
}

func TestAppend(t *testing.T) {
	crc := Header{Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{{TypeCRC32C, []byte{1, 2, 3, 4}}}}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"v1 TCP4", Header{Command: Proxy, Source: src4, Dest: dst4}.AppendV1([]byte("x")),
			"xPROXY TCP4 192.0.2.1 198.51.100.7 56324 5222\r\n"},
		{"v1 TCP6", Header{Command: Proxy, Source: src6, Dest: dst6}.AppendV1(nil),
			"PROXY TCP6 2001:db8::1 2001:db8::2 56324 5222\r\n"},
		{"v1 mixed", Header{Command: Proxy, Source: src4, Dest: dst6}.AppendV1(nil),
			"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 5222\r\n"},
		{"v1 zone", Header{Command: Proxy, Source: ap("[fe80::1%eth0]:1"), Dest: ap("[fe80::2%eth0]:2")}.AppendV1(nil),
			"PROXY TCP6 fe80::1 fe80::2 1 2\r\n"},
		{"v1 LOCAL", Header{Command: Local, Source: src4, Dest: dst4}.AppendV1(nil), "PROXY UNKNOWN\r\n"},
		{"v1 no address", Header{Command: Proxy, Source: src4}.AppendV1(nil), "PROXY UNKNOWN\r\n"},
		{"v2 TCP4", Header{Command: Proxy, Source: src4, Dest: dst4}.AppendV2([]byte("x")),
			"x" + string(v2(0x21, 0x11, inet4))},
		{"v2 TCP6", Header{Command: Proxy, Source: src6, Dest: dst6}.AppendV2(nil), string(v2(0x21, 0x21, inet6))},
		{"v2 TLVs", Header{Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{{TypeAuthority, []byte("example.net")}}}.AppendV2(nil),
			string(v2(0x21, 0x11, inet4, tlv(TypeAuthority, "example.net")))},
		{"v2 TLVs cut at limit", Header{Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{
			{TypeNoop, make([]byte, MaxTLVBytes-6)}, {TypeNoop, []byte{}}, {TypeNoop, []byte{}}}}.AppendV2(nil),
			string(v2(0x21, 0x11, inet4, tlv(TypeNoop, string(make([]byte, MaxTLVBytes-6))), tlv(TypeNoop, "")))},
		{"v2 TLV value too long", Header{Command: Proxy, Source: src4, Dest: dst4, TLVs: []TLV{
			{TypeNoop, make([]byte, 70000)}}}.AppendV2(nil), string(v2(0x21, 0x11, inet4))},
		{"v2 CRC32C", crc.AppendV2(nil), string(v2(0x21, 0x11, inet4, tlv(TypeCRC32C, "\x0b\xcd\x39\x6f")))},
		{"v2 LOCAL", Header{Command: Local, Source: src4, Dest: dst4}.AppendV2(nil), string(v2(0x20, 0x00))},
		{"v2 invalid command", Header{Command: 7}.AppendV2(nil), string(v2(0x20, 0x00))},
		{"v2 PROXY no address", Header{Command: Proxy, TLVs: []TLV{{TypeNoop, nil}}}.AppendV2(nil), string(v2(0x21, 0x00))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %q\nwant %q", tt.got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	headers := []Header{
		{Command: Proxy, Source: src4, Dest: dst4},
		{Command: Proxy, Source: src6, Dest: dst6},
		{Command: Proxy, Source: src4, Dest: dst6},
		{Command: Proxy, Source: ap("[::ffff:192.0.2.1]:1"), Dest: ap("[::ffff:192.0.2.2]:2")},
		{Command: Proxy, Source: ap("0.0.0.0:0"), Dest: ap("255.255.255.255:65535")},
		{Command: Proxy, Source: ap("[" + ffff6 + "]:65535"), Dest: ap("[::]:0")},
		{Command: Proxy, Source: src6, Dest: dst6, TLVs: []TLV{
			{TypeALPN, []byte("xmpp-client")}, {TypeCRC32C, make([]byte, 4)}, {TypeNoop, []byte{}}}},
		{Command: Proxy},
		{Command: Local},
	}
	for i, h := range headers {
		for _, version := range []int{1, 2} {
			t.Run(fmt.Sprintf("%d/v%d", i, version), func(t *testing.T) {
				var wire []byte
				want := h
				want.Version = version
				if version == 1 {
					wire = h.AppendV1(nil)
					want.Command, want.TLVs = Proxy, nil
				} else {
					wire = h.AppendV2(nil)
				}
				if h.Source.Addr().Is4() != h.Dest.Addr().Is4() {
					want.Source = netip.AddrPortFrom(as6(h.Source.Addr()), h.Source.Port())
				}
				got, err := Read(bytes.NewReader(wire))
				if err != nil {
					t.Fatalf("Read(%q): %v", wire, err)
				}
				if crc, ok := got.Lookup(TypeCRC32C); ok {
					// AppendV2 filled in the checksum; Read verified it.
					want.TLVs = append([]TLV(nil), want.TLVs...)
					want.TLVs[1].Value = crc
				}
				if !equalHeader(got, want) {
					t.Errorf("Read(%q) = %+v, want %+v", wire, got, want)
				}
			})
		}
	}
}

func TestLookup(t *testing.T) {
	h := Header{TLVs: []TLV{{TypeNoop, nil}, {TypeAuthority, []byte("a")}, {TypeAuthority, []byte("b")}}}
	if v, ok := h.Lookup(TypeAuthority); !ok || string(v) != "a" {
		t.Errorf("Lookup(TypeAuthority) = %q, %v; want \"a\", true", v, ok)
	}
	if _, ok := h.Lookup(TypeALPN); ok {
		t.Error("Lookup(TypeALPN) found a TLV that is not there")
	}
}

func TestCommandString(t *testing.T) {
	for c, want := range map[Command]string{Local: "LOCAL", Proxy: "PROXY", 9: "Command(9)"} {
		if got := c.String(); got != want {
			t.Errorf("Command(%d).String() = %q, want %q", c, got, want)
		}
	}
}
