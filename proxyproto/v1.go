package proxyproto

import (
	"bytes"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// v1 protocol tokens, as Read classifies the line after its first 15 bytes.
const (
	v1Unknown = iota
	v1TCP4
	v1TCP6
)

// minFieldLen is the shortest text of the four fields after the protocol
// token: source and destination address, source and destination port.
var minFieldLen = [...][4]int{
	v1TCP4: {len("0.0.0.0"), len("0.0.0.0"), 1, 1},
	v1TCP6: {len("::"), len("::"), 1, 1},
}

// readV1 reads the rest of a version 1 line whose first prefixLen bytes are
// in buf, and parses it.
func readV1(r io.Reader, buf *[maxV1Len]byte) (Header, error) {
	n := prefixLen
	var proto int
	switch line := buf[:n]; {
	case bytes.HasPrefix(line, []byte("PROXY TCP4 ")):
		proto = v1TCP4
	case bytes.HasPrefix(line, []byte("PROXY TCP6 ")):
		proto = v1TCP6
	case bytes.HasPrefix(line, []byte("PROXY UNKNOWN")) && (line[13] == ' ' || line[13] == '\r'):
		proto = v1Unknown
	default:
		return Header{}, malformed("version 1 line does not start with PROXY TCP4, TCP6 or UNKNOWN: %q", line)
	}
	for {
		end, err := findCRLF(buf[:n])
		if err != nil {
			return Header{}, err
		}
		if end >= 0 {
			if end != n {
				// Only an invalid line ends before the shortest valid
				// completion Read assumed.
				return Header{}, malformed("version 1 line too short: %q", buf[:end])
			}
			break
		}
		need := v1Need(buf[:n], proto)
		if n+need > maxV1Len {
			return Header{}, malformed("no CRLF in the first %d bytes of a version 1 line", maxV1Len)
		}
		m, err := io.ReadFull(r, buf[n:n+need])
		n += m
		if err != nil {
			return Header{}, ioError(noEOF(err), n)
		}
	}
	return parseV1(buf[:n-2], proto)
}

// noEOF turns io.EOF inside a header into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// findCRLF returns the length of line up to and including its first CRLF, or
// -1 if it has none yet. A CR followed by anything but LF, or an LF not
// preceded by CR, is an error.
func findCRLF(line []byte) (int, error) {
	for i, c := range line {
		switch c {
		case '\r':
			if i+1 < len(line) && line[i+1] != '\n' {
				return 0, malformed("CR without LF in version 1 line")
			}
		case '\n':
			if i == 0 || line[i-1] != '\r' {
				return 0, malformed("LF without CR in version 1 line")
			}
			return i + 1, nil
		}
	}
	return -1, nil
}

// v1Need returns how many more bytes any valid completion of the unfinished
// line needs at least, so that reading that many never reads past the CRLF.
// The line has no CRLF yet.
func v1Need(line []byte, proto int) int {
	if line[len(line)-1] == '\r' {
		return 1
	}
	need := 2 // the CRLF
	if proto == v1Unknown {
		return need
	}
	tail := line[len("PROXY TCP4 "):]
	field := bytes.Count(tail, []byte{' '})
	if field >= 4 {
		return need // invalid; the parser will say so at the CRLF
	}
	cur := len(tail) - (bytes.LastIndexByte(tail, ' ') + 1)
	mins := minFieldLen[proto]
	s := max(0, mins[field]-cur)
	for j := field + 1; j < 4; j++ {
		s += 1 + mins[j]
	}
	return max(need, s+2)
}

// parseV1 parses a complete version 1 line without its CRLF.
func parseV1(line []byte, proto int) (Header, error) {
	if proto == v1Unknown {
		return Header{Version: 1, Command: Proxy}, nil
	}
	f := strings.Split(string(line), " ")
	if len(f) != 6 {
		return Header{}, malformed("version 1 line has %d fields, want 6: %q", len(f), line)
	}
	src, err := parseV1Addr(f[2], proto)
	if err != nil {
		return Header{}, err
	}
	dst, err := parseV1Addr(f[3], proto)
	if err != nil {
		return Header{}, err
	}
	sport, err := parseV1Port(f[4])
	if err != nil {
		return Header{}, err
	}
	dport, err := parseV1Port(f[5])
	if err != nil {
		return Header{}, err
	}
	return Header{
		Version: 1,
		Command: Proxy,
		Source:  netip.AddrPortFrom(src, sport),
		Dest:    netip.AddrPortFrom(dst, dport),
	}, nil
}

func parseV1Addr(s string, proto int) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, malformed("version 1 address %q: %v", s, err)
	case proto == v1TCP4 && !a.Is4():
		return netip.Addr{}, malformed("version 1 TCP4 line with address %q", s)
	case proto == v1TCP6 && (!a.Is6() || a.Zone() != ""):
		return netip.Addr{}, malformed("version 1 TCP6 line with address %q", s)
	}
	return a, nil
}

// parseV1Port parses a decimal port in 0–65535 without leading zeros.
func parseV1Port(s string) (uint16, error) {
	if s == "" || len(s) > 5 || (s[0] == '0' && len(s) > 1) {
		return 0, malformed("version 1 port %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("version 1 port %q", s)
		}
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, malformed("version 1 port %q out of range", s)
	}
	return uint16(p), nil
}

// AppendV1 appends h as a version 1 line to b and returns the extended
// slice. With Command Proxy and valid Source and Dest it writes a TCP4 line
// if both addresses are IPv4 and a TCP6 line otherwise, with an IPv4 address
// written as IPv4-mapped IPv6; zones are dropped. Anything else is written as
// "PROXY UNKNOWN\r\n", which tells the receiver to use the connection's own
// addresses (the specification advises against sending it on connections
// the receiver is expected to accept).
func (h Header) AppendV1(b []byte) []byte {
	src, dst, ok := h.addrs()
	if !ok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	b = append(b, "PROXY TCP4 "...)
	if !src.Is4() || !dst.Is4() {
		b[len(b)-2] = '6'
		src, dst = as6(src), as6(dst)
	}
	b = src.AppendTo(b)
	b = append(b, ' ')
	b = dst.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Source.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Dest.Port()), 10)
	return append(b, "\r\n"...)
}

// addrs returns the zone-free addresses of a Proxy header that has both.
func (h Header) addrs() (src, dst netip.Addr, ok bool) {
	if h.Command != Proxy || !h.Source.IsValid() || !h.Dest.IsValid() {
		return netip.Addr{}, netip.Addr{}, false
	}
	return h.Source.Addr().WithZone(""), h.Dest.Addr().WithZone(""), true
}

// as6 returns a as a 16-byte address, IPv4 becoming IPv4-mapped.
func as6(a netip.Addr) netip.Addr { return netip.AddrFrom16(a.As16()) }
