// Package wsclient is a WebSocket client for tests, frame by frame: it
// sends the upgrade and masked frames as a browser does, and reads the
// server's frames as they are, so that a test can assert every message, the
// Close frame and its code, and the FIN after it.
package wsclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/guard-xmpp/guard/websocket"
)

// Opcodes of RFC 6455.
const (
	OpText   = 0x1
	OpBinary = 0x2
	OpClose  = 0x8
	OpPing   = 0x9
	OpPong   = 0xA
)

// Upgrade is the request template: the path, the Host, then extra header
// lines (each ending in \r\n).
const Upgrade = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"

// Client is one WebSocket connection.
type Client struct {
	Conn *net.TCPConn
	BR   *bufio.Reader
	// Timeout bounds each read (10 s if zero).
	Timeout time.Duration
}

// Dial connects to addr and sends the upgrade for path with extra header
// lines; it returns the client and the server's response.
func Dial(addr, path, extra string) (*Client, *http.Response, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	cl := &Client{Conn: c.(*net.TCPConn), BR: bufio.NewReader(c)}
	if _, err := fmt.Fprintf(c, Upgrade, path, addr, extra); err != nil {
		c.Close()
		return nil, nil, err
	}
	c.SetReadDeadline(time.Now().Add(cl.timeout()))
	resp, err := http.ReadResponse(cl.BR, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return cl, resp, nil
}

// DialXMPP upgrades with the xmpp subprotocol at path and fails unless the
// server switches protocols.
func DialXMPP(addr, path string) (*Client, error) {
	cl, resp, err := Dial(addr, path, "Sec-WebSocket-Protocol: xmpp\r\n")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		cl.Conn.Close()
		return nil, fmt.Errorf("upgrade answered %s %v", resp.Status, resp.Header)
	}
	return cl, nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// Send writes one masked frame.
func (c *Client) Send(op byte, payload string) error {
	_, err := c.Conn.Write(websocket.AppendClientFrame(nil, true, websocket.Opcode(op), []byte(payload), [4]byte{1, 2, 3, 4}))
	return err
}

// Next reads one server frame.
func (c *Client) Next() (op byte, payload string, err error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout()))
	var h [2]byte
	if _, err := io.ReadFull(c.BR, h[:]); err != nil {
		return 0, "", err
	}
	if h[1]&0x80 != 0 || h[0]&0x80 == 0 {
		return 0, "", errors.New("a masked or fragmented server frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.BR, l[:]); err != nil {
			return 0, "", err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.BR, l[:]); err != nil {
			return 0, "", err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	p := make([]byte, n)
	_, err = io.ReadFull(c.BR, p)
	return h[0] & 0x0F, string(p), err
}

// NextData is Next with Pings answered and skipped.
func (c *Client) NextData() (op byte, payload string, err error) {
	for {
		op, p, err := c.Next()
		if err != nil || op != OpPing {
			return op, p, err
		}
		c.Send(OpPong, p)
	}
}

// CloseCode is the status code of a Close frame's payload; 1005 if none.
func CloseCode(p string) int {
	if len(p) < 2 {
		return 1005
	}
	return int(p[0])<<8 | int(p[1])
}

// ExpectClose reads a Close frame of code, then EOF (the server's FIN), and
// answers as a browser does: its own Close frame, then its FIN.
func (c *Client) ExpectClose(code int) error {
	op, p, err := c.NextData()
	if err != nil || op != OpClose || CloseCode(p) != code {
		return fmt.Errorf("got %v %q (%v); want a Close frame %d", op, p, err, code)
	}
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout()))
	if n, err := c.BR.Read(make([]byte, 1)); err != io.EOF {
		return fmt.Errorf("after the Close frame: %d bytes, %v; want EOF (a FIN)", n, err)
	}
	c.Send(OpClose, p)
	return c.Conn.CloseWrite()
}
