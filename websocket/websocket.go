// Package websocket is the server side of RFC 6455 framing, as Guard needs
// it for XMPP over WebSocket (RFC 7395): the opening handshake's accept key,
// the frames a client sends (masked, perhaps fragmented, with control frames
// between the fragments) decoded from a byte slice, and the frames a server
// sends, rendered. It does no I/O and holds no connection: the caller owns
// the socket, its deadlines and its close, which is what a proxy that must
// end every stream with a Close frame and a FIN, never a reset, needs.
// Standard library only.
package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Opcode is a frame's opcode.
type Opcode uint8

// The opcodes of RFC 6455 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// Close status codes (RFC 6455 7.4.1).
const (
	CloseNormal        = 1000
	CloseProtocolError = 1002
	CloseUnsupported   = 1003
	CloseInvalidData   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
)

// Errors of Decoder.Next. Both end the connection with a Close frame of
// the code Code returns.
var (
	// ErrProtocol: the client broke RFC 6455 (an unmasked frame, reserved
	// bits, an unknown opcode, a fragmented or long control frame, a
	// continuation without a message).
	ErrProtocol = errors.New("websocket: protocol error")
	// ErrTooBig: a message longer than Decoder.MaxMessage.
	ErrTooBig = errors.New("websocket: message too big")
	// ErrInvalidUTF8: a text message that is not UTF-8.
	ErrInvalidUTF8 = errors.New("websocket: text message is not UTF-8")
)

// Code returns the Close status code for an error of Decoder.Next.
func Code(err error) uint16 {
	switch {
	case errors.Is(err, ErrTooBig):
		return CloseTooBig
	case errors.Is(err, ErrInvalidUTF8):
		return CloseInvalidData
	default:
		return CloseProtocolError
	}
}

// AcceptKey is the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key (RFC 6455 4.2.2).
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// ValidKey reports whether a Sec-WebSocket-Key is 16 bytes in base64.
func ValidKey(key string) bool {
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

// Message is a whole message, or a control frame, decoded from a client.
type Message struct {
	Op      Opcode // OpText, OpBinary, OpClose, OpPing or OpPong; 0: nothing whole yet
	Payload []byte // valid until the next call of Next or a change of its input
}

// Decoder decodes the frames a client sends into messages. The zero value
// takes messages of any size; set MaxMessage to bound them.
type Decoder struct {
	MaxMessage int // the longest message payload accepted; 0: no bound

	op   Opcode // the fragmented message under way; 0: none
	frag []byte // its payload so far
}

// Next decodes from b, the bytes received and not yet consumed, the next
// message or control frame, unmasking b in place. It returns what it
// decoded and how many bytes of b it consumed: a Message with Op 0 and n >
// 0 is a fragment taken in (call again); n == 0 means b holds no whole
// frame yet (read more: Need says how much at least).
func (d *Decoder) Next(b []byte) (m Message, n int, err error) {
	fin, op, masked, length, hlen, err := header(b)
	if err != nil || hlen == 0 {
		return Message{}, 0, err
	}
	if !masked {
		return Message{}, 0, ErrProtocol // RFC 6455 5.1: a client masks every frame
	}
	control := op >= OpClose
	if control && (!fin || length > 125) {
		return Message{}, 0, ErrProtocol
	}
	max := int64(d.MaxMessage)
	if !control && max > 0 && int64(len(d.frag))+length > max {
		return Message{}, 0, ErrTooBig
	}
	if int64(len(b)-hlen) < length {
		return Message{}, 0, nil
	}
	n = hlen + int(length)
	p := b[hlen:n]
	unmask(p, [4]byte(b[hlen-4:hlen]))
	switch {
	case control:
		if op == OpClose && !validClose(p) {
			return Message{}, 0, ErrProtocol
		}
		return Message{Op: op, Payload: p}, n, nil
	case op == OpContinuation && d.op == 0, op != OpContinuation && d.op != 0:
		return Message{}, 0, ErrProtocol // a continuation of nothing, or a message inside another
	case op == OpContinuation:
		d.frag = append(d.frag, p...)
		if !fin {
			return Message{}, n, nil
		}
		m = Message{Op: d.op, Payload: d.frag}
		d.op, d.frag = 0, d.frag[:0]
	case !fin:
		d.op, d.frag = op, append(d.frag[:0], p...)
		return Message{}, n, nil
	default:
		m = Message{Op: op, Payload: p}
	}
	if m.Op == OpText && !utf8.Valid(m.Payload) {
		return Message{}, 0, ErrInvalidUTF8
	}
	return m, n, nil
}

// Need returns how many bytes the frame at the start of b takes in all, or
// the least it takes while its header is incomplete.
func Need(b []byte) int {
	_, _, _, length, hlen, err := header(b)
	if err != nil {
		return 0
	}
	if hlen == 0 {
		return 14 // the longest header, masked
	}
	return hlen + int(length)
}

// Release drops the payload of a fragmented message in progress.
func (d *Decoder) Release() { d.op, d.frag = 0, nil }

// header parses the frame header at the start of b; hlen 0: incomplete.
func header(b []byte) (fin bool, op Opcode, masked bool, length int64, hlen int, err error) {
	if len(b) < 2 {
		return
	}
	if b[0]&0x70 != 0 {
		err = ErrProtocol // reserved bits without an extension
		return
	}
	fin, op, masked = b[0]&0x80 != 0, Opcode(b[0]&0x0F), b[1]&0x80 != 0
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		err = ErrProtocol
		return
	}
	length, hlen = int64(b[1]&0x7F), 2
	switch length {
	case 126:
		if len(b) < 4 {
			return fin, op, masked, 0, 0, nil
		}
		length, hlen = int64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return fin, op, masked, 0, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			err = ErrProtocol
			return
		}
		length, hlen = int64(u), 10
	}
	if masked {
		hlen += 4
	}
	if len(b) < hlen {
		return fin, op, masked, length, 0, nil
	}
	return
}

func unmask(p []byte, key [4]byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}

// validClose reports whether a Close frame's payload is empty, or a status
// code of two bytes and UTF-8 text.
func validClose(p []byte) bool {
	return len(p) == 0 || len(p) >= 2 && utf8.Valid(p[2:])
}

// AppendFrame appends a whole, unmasked frame (a server's) with payload p.
func AppendFrame(dst []byte, op Opcode, p []byte) []byte {
	return append(AppendFrameHeader(dst, op, len(p)), p...)
}

// AppendClientFrame appends a frame as a client sends it: masked with key
// (a client, or a test playing one).
func AppendClientFrame(dst []byte, fin bool, op Opcode, p []byte, key [4]byte) []byte {
	dst = append(appendHeader(dst, fin, op, len(p), 0x80), key[:]...)
	for i, c := range p {
		dst = append(dst, c^key[i&3])
	}
	return dst
}

// AppendFrameHeader appends the header of a whole, unmasked frame of n
// payload bytes, for a server that writes the payload after it itself.
func AppendFrameHeader(dst []byte, op Opcode, n int) []byte {
	return appendHeader(dst, true, op, n, 0)
}

// appendHeader appends a frame header up to its mask key; mask is 0x80 for
// a masked frame.
func appendHeader(dst []byte, fin bool, op Opcode, n int, mask byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	dst = append(dst, b0)
	switch {
	case n <= 125:
		dst = append(dst, mask|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, mask|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, mask|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return dst
}

// AppendClose appends a Close frame with a status code and a reason (at
// most 123 bytes; longer is cut).
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), code)
	return AppendFrame(dst, OpClose, append(p, reason...))
}

// CloseCode returns the status code of a Close frame's payload, or 1005
// (none given) for an empty one.
func CloseCode(p []byte) uint16 {
	if len(p) < 2 {
		return 1005
	}
	return binary.BigEndian.Uint16(p)
}
