package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/netip"
)

// sigV2 is the 12-byte version 2 signature.
const sigV2 = "\r\n\r\n\x00\r\nQUIT\n"

// Address families and transports: the high and low nibble of byte 14.
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	protoUnspec = 0x0
	protoStream = 0x1
	protoDgram  = 0x2
)

// addrLen is the size of the address block of each family.
var addrLen = [...]int{famUnspec: 0, famInet: 12, famInet6: 36, famUnix: 216}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readV2 reads the rest of a version 2 header whose first prefixLen bytes
// are in buf, and parses it.
func readV2(r io.Reader, buf *[maxV1Len]byte) (Header, error) {
	if _, err := io.ReadFull(r, buf[prefixLen:16]); err != nil {
		return Header{}, ioError(noEOF(err), prefixLen)
	}
	fixed := buf[:16]
	verCmd, famProto := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return Header{}, malformed("version 2 signature with version nibble %d", verCmd>>4)
	}
	cmd := Command(verCmd & 0xf)
	fam, proto := int(famProto>>4), famProto&0xf
	if cmd != Local && cmd != Proxy {
		return Header{}, malformed("version 2 command %d", cmd)
	}
	// LOCAL ignores the family byte; for PROXY it must be defined.
	limit := addrLen[famUnix] + MaxTLVBytes
	if cmd == Proxy {
		if fam > famUnix || proto > protoDgram {
			return Header{}, malformed("version 2 family and transport byte %#02x", famProto)
		}
		limit = addrLen[fam] + MaxTLVBytes
	}
	if length > limit {
		return Header{}, malformed("version 2 length %d exceeds %d for family and transport %#02x", length, limit, famProto)
	}
	body := make([]byte, length)
	if m, err := io.ReadFull(r, body); err != nil {
		return Header{}, ioError(noEOF(err), 16+m)
	}

	h := Header{Version: 2, Command: cmd}
	if cmd == Local || fam == famUnspec || proto == protoUnspec {
		return h, nil
	}
	if length < addrLen[fam] {
		return Header{}, malformed("version 2 length %d shorter than the %d-byte address block", length, addrLen[fam])
	}
	if fam == famUnix || proto == protoDgram {
		return h, &Error{Kind: ErrUnsupported, Reason: "version 2 header for " + transportName(fam, proto)}
	}
	var sport, dport uint16
	if fam == famInet {
		src, dst := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		sport, dport = binary.BigEndian.Uint16(body[8:10]), binary.BigEndian.Uint16(body[10:12])
		h.Source, h.Dest = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	} else {
		src, dst := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		sport, dport = binary.BigEndian.Uint16(body[32:34]), binary.BigEndian.Uint16(body[34:36])
		h.Source, h.Dest = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	}
	tlvs, err := parseTLVs(fixed, body, addrLen[fam])
	if err != nil {
		return Header{}, err
	}
	h.TLVs = tlvs
	return h, nil
}

func transportName(fam int, proto byte) string {
	names := [...]string{famInet: "IPv4", famInet6: "IPv6", famUnix: "AF_UNIX"}
	if proto == protoDgram {
		return "datagrams over " + names[fam]
	}
	return "streams over " + names[fam]
}

// parseTLVs parses the TLVs in body[off:] and verifies a CRC32C TLV against
// the whole header, fixed being its first 16 bytes.
func parseTLVs(fixed, body []byte, off int) ([]TLV, error) {
	if len(body)-off > MaxTLVBytes {
		return nil, malformed("version 2 TLV block of %d bytes exceeds %d", len(body)-off, MaxTLVBytes)
	}
	var tlvs []TLV
	crcAt := -1
	for i := off; i < len(body); {
		if len(body)-i < 3 {
			return nil, malformed("version 2 TLV header truncated at offset %d", 16+i)
		}
		t, n := body[i], int(binary.BigEndian.Uint16(body[i+1:i+3]))
		i += 3
		if n > len(body)-i {
			return nil, malformed("version 2 TLV type %#02x of length %d overruns the header", t, n)
		}
		if t == TypeCRC32C {
			if n != 4 {
				return nil, malformed("version 2 CRC32C TLV of length %d, want 4", n)
			}
			if crcAt >= 0 {
				return nil, malformed("version 2 header with two CRC32C TLVs")
			}
			crcAt = i
		}
		tlvs = append(tlvs, TLV{Type: t, Value: body[i : i+n : i+n]})
		i += n
	}
	if crcAt >= 0 {
		want := binary.BigEndian.Uint32(body[crcAt:])
		if got := headerCRC(fixed, body, crcAt); got != want {
			return nil, malformed("version 2 CRC32C %#08x, computed %#08x", want, got)
		}
	}
	return tlvs, nil
}

// headerCRC returns the CRC32c of the header fixed+body with the 4 bytes at
// body[at:] taken as zero.
func headerCRC(fixed, body []byte, at int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, fixed)
	c = crc32.Update(c, castagnoli, body[:at])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, body[at+4:])
}

// AppendV2 appends h as a version 2 header to b and returns the extended
// slice.
//
// With Command Proxy and valid Source and Dest it writes TCP over IPv4 if
// both addresses are IPv4 and TCP over IPv6 otherwise (an IPv4 address
// becoming IPv4-mapped; zones are dropped), followed by the TLVs in order.
// TLVs stop at the first one that has a value over 65535 bytes or would take
// the block past [MaxTLVBytes]. The first [TypeCRC32C] TLV with a 4-byte
// value gets the header's checksum, whatever its value was ([Read] rejects a
// header with a second CRC32C TLV or one of another length).
//
// Anything else is written as a bare header without addresses or TLVs: LOCAL
// for any Command other than Proxy, PROXY with the unspecified family for a
// Proxy header that lacks an address.
func (h Header) AppendV2(b []byte) []byte {
	start := len(b)
	b = append(b, sigV2...)
	src, dst, ok := h.addrs()
	if !ok {
		cmd := Local
		if h.Command == Proxy {
			cmd = Proxy
		}
		return append(b, 0x20|byte(cmd), famUnspec<<4|protoUnspec, 0, 0)
	}
	if src.Is4() && dst.Is4() {
		b = append(b, 0x21, famInet<<4|protoStream, 0, 0)
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
	} else {
		b = append(b, 0x21, famInet6<<4|protoStream, 0, 0)
		s, d := src.As16(), dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, h.Source.Port())
	b = binary.BigEndian.AppendUint16(b, h.Dest.Port())
	crcAt, tlvBytes := -1, 0
	for _, tlv := range h.TLVs {
		n := 3 + len(tlv.Value)
		if len(tlv.Value) > 0xffff || tlvBytes+n > MaxTLVBytes {
			break
		}
		tlvBytes += n
		b = append(b, tlv.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(tlv.Value)))
		if tlv.Type == TypeCRC32C && len(tlv.Value) == 4 && crcAt < 0 {
			crcAt = len(b)
			b = append(b, 0, 0, 0, 0)
			continue
		}
		b = append(b, tlv.Value...)
	}
	hdr := b[start:]
	binary.BigEndian.PutUint16(hdr[14:16], uint16(len(hdr)-16))
	if crcAt >= 0 {
		binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(hdr, castagnoli))
	}
	return b
}
