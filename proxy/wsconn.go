package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/websocket"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is a WebSocket client's connection after the upgrade, as the
// session and the relay see it: a net.Conn whose reads are the client's
// stream as c2s bytes (<open/> turned into a stream header, <close/> into
// </stream:stream>, every other message passed as it is) and whose writes
// take whole c2s units and send each as one text message in RFC 7395's
// form. CloseWrite sends the Close frame before TLS's close_notify and the
// FIN; a whitespace keepalive is a Ping.

// wsConn is the client's WebSocket connection.
type wsConn struct {
	net.Conn // the socket, or TLS over it: frames go here

	dec    websocket.Decoder
	raw    []byte // raw[ro:rn]: received and not yet decoded; nil when empty
	ro, rn int
	out    []byte // decoded c2s bytes not yet returned by Read

	// ftok checks that each client message holds one element; otok cuts
	// what Guard writes to the client into units, one message each.
	ftok, otok *xmpp.Tokenizer
	frames     []byte // the frames of one Write, reused
	msg        []byte // a message Guard renders itself (<open/>, <close/>), reused

	// seeOtherURI, if set, turns a see-other-host stream error into a
	// redirect: <close see-other-uri/> (RFC 7395 3.6.1); redirect is set
	// once such an error was held back.
	seeOtherURI string
	redirect    bool

	wmu          sync.Mutex // frames: Read's Pongs and Closes beside the relay's writes
	closeSent    bool
	pingAt       time.Time // the Ping not yet answered; zero: none
	probeTimeout time.Duration
}

// keptFrames is the largest buffer a wsConn keeps between messages.
const keptFrames = 1 << 10

// errNoPong ends a stream whose client did not answer a Ping within
// probe_timeout: connection-timeout, as an unanswered TCP keepalive is.
var errNoPong = fmt.Errorf("websocket: no Pong within probe_timeout: %w", syscall.ETIMEDOUT)

func newWSConn(c net.Conn, received []byte, cfg *ListenerConfig) *wsConn {
	ws := &wsConn{Conn: c, probeTimeout: cfg.Timeouts.ProbeTimeout, seeOtherURI: cfg.Policy.SeeOtherURI()}
	ws.dec.MaxMessage = cfg.MaxStanzaSize
	ws.ftok = xmpp.NewTokenizer(cfg.MaxStanzaSize)
	// Messages are judged as elements of a stream.
	for h := (xmpp.Header{NS: xmpp.ClientNS}).AppendTo(nil); len(h) > 0; {
		n, _, err := ws.ftok.Next(h)
		if err != nil || n == 0 {
			break
		}
		h = h[n:]
	}
	ws.otok = xmpp.NewTokenizer(cfg.MaxStanzaSize) // the backend's units are bounded so
	if len(received) > 0 {
		ws.raw = getBuf()
		if len(received) > len(ws.raw) {
			ws.raw = make([]byte, len(received))
		}
		ws.rn = copy(ws.raw, received)
	}
	return ws
}

// Read returns the client's stream as c2s bytes. Frames already received
// are decoded before the socket is read, so that a read with a deadline in
// the past returns them (the pipe checks for buffered data that way, as it
// does for TLS).
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if cap(c.out) > keptFrames {
			c.out = nil // an idle stream keeps no large buffer
		}
		c.out = c.out[:0]
		m, n, err := c.dec.Next(c.raw[c.ro:c.rn])
		if err != nil {
			return 0, c.fail(err)
		}
		if n == 0 {
			if err := c.receive(); err != nil {
				return 0, err
			}
			continue
		}
		err = c.handle(m)
		if m.Op == websocket.OpText || m.Op == websocket.OpBinary {
			c.dec.Release() // a whole message: no fragments kept by an idle stream
		}
		c.consume(n)
		if err != nil {
			return 0, err
		}
	}
}

// receive reads more of the client's frames from the socket, after the
// incomplete frame left in raw, moved to its start.
func (c *wsConn) receive() error {
	if c.raw == nil {
		c.raw = getBuf()
	}
	if c.ro > 0 {
		c.rn = copy(c.raw, c.raw[c.ro:c.rn])
		c.ro = 0
	}
	if need := websocket.Need(c.raw[:c.rn]); need > len(c.raw) {
		c.raw = append(c.raw[:c.rn], make([]byte, need-c.rn)...)
	}
	k, err := c.Conn.Read(c.raw[c.rn:])
	c.rn += k
	if k > 0 {
		return nil
	}
	if c.rn == 0 {
		c.release()
	}
	return err
}

// consume drops the first n bytes received and not yet decoded.
func (c *wsConn) consume(n int) {
	c.ro += n
	if c.ro == c.rn {
		c.release()
	}
}

func (c *wsConn) release() {
	putBuf(c.raw) // a grown buffer is left to the GC
	c.raw, c.ro, c.rn = nil, 0, 0
}

// handle takes in one message or control frame from the client.
func (c *wsConn) handle(m websocket.Message) error {
	switch m.Op {
	case websocket.OpText:
		return c.fromClient(m.Payload)
	case websocket.OpBinary:
		return framingError("a binary frame: XMPP over WebSocket takes text messages")
	case websocket.OpPing:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if !c.closeSent {
			c.Conn.Write(websocket.AppendFrame(nil, websocket.OpPong, m.Payload))
		}
	case websocket.OpPong:
		c.wmu.Lock()
		c.pingAt = time.Time{}
		c.wmu.Unlock()
	case websocket.OpClose:
		return io.EOF // the client's end: Guard answers with its own Close (CloseWrite)
	}
	return nil
}

// fromClient turns one text message into c2s bytes for the stream.
func (c *wsConn) fromClient(msg []byte) error {
	b := bytes.Trim(msg, " \t\r\n")
	if len(b) == 0 {
		return nil // white space between messages carries nothing
	}
	switch xmpp.FramingKind(b) {
	case xmpp.KindHeader:
		h, err := xmpp.ParseOpen(b)
		if err != nil {
			return err
		}
		c.out = h.AppendTo(c.out)
	case xmpp.KindEnd:
		c.out = append(c.out, xmpp.StreamEnd...)
	default:
		n, kind, err := c.ftok.Next(b)
		if err == nil && (kind != xmpp.KindElement || n != len(b)) {
			return framingError("a message must hold exactly one element (RFC 7395 3.3.3)")
		}
		// Not well-formed: the stream's own tokenizer says so, in its
		// words, from the same bytes.
		c.out = append(c.out, b...)
	}
	return nil
}

// fail ends the stream for a frame that breaks RFC 6455: a message over
// max_stanza_size is policy-violation, like an oversize stanza; anything
// else is closed at once with its Close code.
func (c *wsConn) fail(err error) error {
	if err == websocket.ErrTooBig {
		return &xmpp.SyntaxError{Condition: xmpp.PolicyViolation, Limit: xmpp.LimitSize, Msg: "message too large"}
	}
	c.wmu.Lock()
	if !c.closeSent {
		c.closeSent = true
		c.Conn.Write(websocket.AppendClose(nil, websocket.Code(err), err.Error()))
	}
	c.wmu.Unlock()
	return err
}

func framingError(msg string) error {
	return &xmpp.SyntaxError{Condition: xmpp.PolicyViolation, Limit: xmpp.LimitFraming, Msg: msg}
}

// Write sends whole c2s units to the client, each as one text message:
// a stream header as <open/>, </stream:stream> as <close/>, an element
// with the namespace declarations it relies on; white space is dropped.
func (c *wsConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	c.frames = c.toClient(c.frames[:0], b)
	if len(c.frames) == 0 {
		return len(b), nil
	}
	_, err := c.Conn.Write(c.frames)
	if cap(c.frames) > keptFrames {
		c.frames = nil // a large stanza's frames are not kept by an idle stream
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// toClient appends the frames for the units of b. An element is written
// straight into its frame, its namespace declarations added on the way.
func (c *wsConn) toClient(dst, b []byte) []byte {
	for len(b) > 0 {
		n, kind, err := c.otok.Next(b)
		if err != nil {
			// Guard writes only units its own tokenizer has cut: this is
			// not reached. Should it be, the rest goes as one message.
			return websocket.AppendFrame(dst, websocket.OpText, b)
		}
		unit := b[:n]
		b = b[n:]
		switch kind {
		case xmpp.KindHeader:
			h, _ := xmpp.ParseHeader(unit)
			c.msg = h.AppendOpen(c.msg[:0])
			dst = websocket.AppendFrame(dst, websocket.OpText, c.msg)
		case xmpp.KindEnd:
			uri := ""
			if c.redirect {
				uri = c.seeOtherURI
			}
			c.msg = xmpp.AppendClose(c.msg[:0], uri)
			dst = websocket.AppendFrame(dst, websocket.OpText, c.msg)
		case xmpp.KindElement:
			if c.seeOtherURI != "" && bytes.HasPrefix(unit, []byte("<stream:error>")) && bytes.Contains(unit, []byte("<see-other-host ")) {
				c.redirect = true // the redirect goes in <close/>
				continue
			}
			if bytes.HasPrefix(unit, featuresOpen) {
				unit = withoutPlus(unit)
			}
			at, decl := xmpp.NamespaceDecl(unit)
			dst = websocket.AppendFrameHeader(dst, websocket.OpText, len(unit)+len(decl))
			dst = append(append(append(dst, unit[:at]...), decl...), unit[at:]...)
		}
		// Else the XML declaration, white space, an incomplete unit: no
		// message.
	}
	return dst
}

var featuresOpen = []byte("<stream:features")

// CloseWrite ends Guard's half: the Close frame (1000), then TLS's
// close_notify; the FIN is the socket's (sideConn.CloseWrite).
func (c *wsConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if !c.closeSent {
		c.closeSent = true
		_, err = c.Conn.Write(websocket.AppendClose(nil, websocket.CloseNormal, ""))
	}
	if tc, ok := c.Conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	return err
}

// ping is the WebSocket's keepalive: a Ping, unless the last one is still
// unanswered after probe_timeout, which ends the stream (errNoPong).
func (c *wsConn) ping(now time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.pingAt.IsZero() && now.Sub(c.pingAt) >= c.probeTimeout {
		return errNoPong
	}
	if c.closeSent {
		return nil
	}
	if c.pingAt.IsZero() {
		c.pingAt = now
	}
	_, err := c.Conn.Write(websocket.AppendFrame(nil, websocket.OpPing, nil))
	return err
}
