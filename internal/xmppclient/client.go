// Package xmppclient is a small, real XMPP client-to-server client for tests
// and the demo: it opens a stream, authenticates with SASL SCRAM-SHA-1 (or
// PLAIN), binds a resource, sends and receives messages, and closes the stream
// gracefully.
//
// It speaks plaintext XMPP only (no STARTTLS): the tests run it over loopback
// against a Prosody that allows plaintext authentication, with or without
// Guard in between. The read side uses encoding/xml.
//
// A Client is safe for one reader and any number of writers at a time. Close
// must not run while a ReadMessage is in progress; cancel that read's context
// first.
package xmppclient

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Namespaces used on the wire.
const (
	NSClient  = "jabber:client"
	NSStream  = "http://etherx.jabber.org/streams"
	NSStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	NSSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind    = "urn:ietf:params:xml:ns:xmpp-bind"
)

const (
	defaultHandshake = 10 * time.Second // when the context has no deadline
	writeTimeout     = 10 * time.Second
	closeTimeout     = 3 * time.Second // wait for the peer's </stream:stream> and EOF
	maxSkip          = 100000          // bound on tokens or stanzas skipped in one read
)

// ErrStreamClosed is returned by reads after the peer sent </stream:stream>.
var ErrStreamClosed = errors.New("xmppclient: peer closed the stream")

// StreamError is the content of a <stream:error/> from the server (RFC 6120
// section 4.9). Reads return it wrapped; use errors.As.
type StreamError struct {
	Condition string // e.g. "system-shutdown", "policy-violation"
	Text      string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return "stream error: " + e.Condition + ": " + e.Text
	}
	return "stream error: " + e.Condition
}

// SASLError is a <failure/> answer to authentication (RFC 6120 section 6.5).
type SASLError struct {
	Mechanism string
	Condition string // e.g. "not-authorized"
	Text      string
}

func (e *SASLError) Error() string {
	s := "sasl " + e.Mechanism + " failure: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Options adjust the session set-up. The zero value is usable.
type Options struct {
	Resource string // default "xmppclient"
	// Mechanism forces "SCRAM-SHA-1" or "PLAIN"; default: SCRAM-SHA-1 when
	// offered, else PLAIN.
	Mechanism string
	// NoPresence skips the initial <presence/>. Without it Prosody does not
	// route messages sent to the bare JID to this resource.
	NoPresence bool
}

// Client is one authenticated XMPP stream.
type Client struct {
	conn   net.Conn
	br     *bufio.Reader
	dec    *xml.Decoder
	domain string
	jid    string

	wmu    sync.Mutex
	closed bool
	nextID int

	// StreamID is the id of the last stream header the server sent.
	StreamID string
	// Features lists the local names of the features after the bind restart.
	Features []string
}

// Dial connects over TCP and sets up a session as New does.
func Dial(ctx context.Context, addr, domain, user, password string) (*Client, error) {
	return DialOptions(ctx, addr, domain, user, password, Options{})
}

// DialOptions is Dial with Options.
func DialOptions(ctx context.Context, addr, domain, user, password string, opts Options) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("xmppclient: dial %s: %w", addr, err)
	}
	c, err := NewOptions(ctx, conn, domain, user, password, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// New sets up a session over conn: stream header, features, SASL, stream
// restart, resource binding and initial presence. It is bounded by ctx (or
// 10 seconds when ctx has no deadline). On error the caller closes conn.
func New(ctx context.Context, conn net.Conn, domain, user, password string) (*Client, error) {
	return NewOptions(ctx, conn, domain, user, password, Options{})
}

// NewOptions is New with Options.
func NewOptions(ctx context.Context, conn net.Conn, domain, user, password string, opts Options) (*Client, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultHandshake)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := &Client{conn: conn, br: bufio.NewReader(conn), domain: domain}
	if opts.Resource == "" {
		opts.Resource = "xmppclient"
	}
	if err := c.handshake(user, password, opts); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *Client) handshake(user, password string, opts Options) error {
	feats, err := c.openStream()
	if err != nil {
		return err
	}
	if feats.Mechanisms == nil {
		return fmt.Errorf("xmppclient: server offered no SASL mechanisms (features %v)", feats.names())
	}
	mech := opts.Mechanism
	if mech == "" {
		mech = "PLAIN"
		if feats.Mechanisms.has("SCRAM-SHA-1") {
			mech = "SCRAM-SHA-1"
		}
	}
	if !feats.Mechanisms.has(mech) {
		return fmt.Errorf("xmppclient: mechanism %s not offered (have %v)", mech, feats.Mechanisms.Names)
	}
	switch mech {
	case "SCRAM-SHA-1":
		err = c.authSCRAM(user, password)
	case "PLAIN":
		err = c.authPlain(user, password)
	default:
		err = fmt.Errorf("xmppclient: unsupported mechanism %s", mech)
	}
	if err != nil {
		return err
	}
	// Stream restart (RFC 6120 section 6.4.6).
	feats, err = c.openStream()
	if err != nil {
		return err
	}
	c.Features = feats.names()
	if !feats.Bind {
		return fmt.Errorf("xmppclient: no <bind/> after authentication (features %v)", c.Features)
	}
	if err := c.bind(opts.Resource); err != nil {
		return err
	}
	if !opts.NoPresence {
		return c.writeRaw("<presence/>")
	}
	return nil
}

// openStream writes a stream header and reads the server's header and features.
func (c *Client) openStream() (*features, error) {
	err := c.writeRaw(fmt.Sprintf("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "+
		"xmlns='%s' xmlns:stream='%s'>", xmlEscape(c.domain), NSClient, NSStream))
	if err != nil {
		return nil, err
	}
	// A new XML document starts: a fresh decoder over the same buffered
	// reader (bufio.Reader is an io.ByteReader, so the decoder adds no
	// buffering of its own and nothing is lost between the two streams).
	c.dec = xml.NewDecoder(c.br)
	c.dec.Strict = true
	for i := 0; i < 100; i++ {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, c.readErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != NSStream || t.Name.Local != "stream" {
				return nil, fmt.Errorf("xmppclient: expected stream header, got <%s xmlns=%q>", t.Name.Local, t.Name.Space)
			}
			for _, a := range t.Attr {
				if a.Name.Local == "id" && a.Name.Space == "" {
					c.StreamID = a.Value
				}
			}
			var f features
			start, err := c.nextElement()
			if err != nil {
				return nil, err
			}
			if start.Name.Space != NSStream || start.Name.Local != "features" {
				c.dec.Skip()
				return nil, fmt.Errorf("xmppclient: expected <stream:features>, got <%s xmlns=%q>", start.Name.Local, start.Name.Space)
			}
			if err := c.dec.DecodeElement(&f, &start); err != nil {
				return nil, c.readErr(err)
			}
			return &f, nil
		case xml.ProcInst, xml.CharData:
			// XML declaration, whitespace.
		default:
			return nil, fmt.Errorf("xmppclient: unexpected %T before stream header", tok)
		}
	}
	return nil, errors.New("xmppclient: no stream header")
}

// nextElement returns the next top-level StartElement inside the stream,
// turning <stream:error/> and </stream:stream> into errors.
func (c *Client) nextElement() (xml.StartElement, error) {
	for i := 0; i < maxSkip; i++ {
		tok, err := c.dec.Token()
		if err != nil {
			return xml.StartElement{}, c.readErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == NSStream && t.Name.Local == "error" {
				return xml.StartElement{}, c.decodeStreamError(t)
			}
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, ErrStreamClosed
		}
		// Whitespace keepalives and the like.
	}
	return xml.StartElement{}, errors.New("xmppclient: too many tokens between elements")
}

func (c *Client) decodeStreamError(start xml.StartElement) error {
	var raw struct {
		Children []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := c.dec.DecodeElement(&raw, &start); err != nil {
		return fmt.Errorf("xmppclient: decoding stream error: %w", c.readErr(err))
	}
	se := &StreamError{}
	for _, ch := range raw.Children {
		if ch.XMLName.Local == "text" {
			se.Text = ch.Text
		} else if se.Condition == "" && (ch.XMLName.Space == NSStreams || ch.XMLName.Space == "") {
			se.Condition = ch.XMLName.Local
		}
	}
	return fmt.Errorf("xmppclient: %w", se)
}

func (c *Client) readErr(err error) error {
	var syn *xml.SyntaxError
	if errors.Is(err, io.EOF) || errors.As(err, &syn) && syn.Msg == "unexpected EOF" {
		return fmt.Errorf("xmppclient: read: connection closed without </stream:stream>: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("xmppclient: read: %w", err)
}

type features struct {
	Mechanisms *mechanisms `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms"`
	Bind       bool        `xml:"-"`
	Any        []struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (f *features) names() []string {
	var n []string
	if f.Mechanisms != nil {
		n = append(n, "mechanisms")
	}
	for _, a := range f.Any {
		n = append(n, a.XMLName.Local)
	}
	return n
}

// UnmarshalXML records <bind/> among the other features.
func (f *features) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	type plain features
	var p plain
	if err := d.DecodeElement(&p, &start); err != nil {
		return err
	}
	*f = features(p)
	for _, a := range f.Any {
		if a.XMLName.Space == NSBind && a.XMLName.Local == "bind" {
			f.Bind = true
		}
	}
	return nil
}

type mechanisms struct {
	Names []string `xml:"mechanism"`
}

func (m *mechanisms) has(name string) bool {
	for _, n := range m.Names {
		if strings.EqualFold(strings.TrimSpace(n), name) {
			return true
		}
	}
	return false
}

// saslAnswer reads <challenge/>, <success/> or <failure/>.
func (c *Client) saslAnswer(mech string) (kind string, data []byte, err error) {
	start, err := c.nextElement()
	if err != nil {
		return "", nil, err
	}
	if start.Name.Space != NSSASL {
		c.dec.Skip()
		return "", nil, fmt.Errorf("xmppclient: expected SASL answer, got <%s xmlns=%q>", start.Name.Local, start.Name.Space)
	}
	var el struct {
		Text     string `xml:",chardata"`
		Children []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := c.dec.DecodeElement(&el, &start); err != nil {
		return "", nil, c.readErr(err)
	}
	switch start.Name.Local {
	case "failure":
		fe := &SASLError{Mechanism: mech}
		for _, ch := range el.Children {
			if ch.XMLName.Local == "text" {
				fe.Text = ch.Text
			} else if fe.Condition == "" {
				fe.Condition = ch.XMLName.Local
			}
		}
		return "", nil, fmt.Errorf("xmppclient: %w", fe)
	case "challenge", "success":
		s := strings.TrimSpace(el.Text)
		if s == "=" || s == "" {
			return start.Name.Local, nil, nil
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", nil, fmt.Errorf("xmppclient: SASL %s payload: %w", start.Name.Local, err)
		}
		return start.Name.Local, data, nil
	}
	return "", nil, fmt.Errorf("xmppclient: unexpected SASL element <%s>", start.Name.Local)
}

func (c *Client) authPlain(user, password string) error {
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.writeRaw(fmt.Sprintf("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>", NSSASL, msg)); err != nil {
		return err
	}
	kind, _, err := c.saslAnswer("PLAIN")
	if err != nil {
		return err
	}
	if kind != "success" {
		return fmt.Errorf("xmppclient: PLAIN: unexpected %s", kind)
	}
	c.jid = user + "@" + c.domain
	return nil
}

func (c *Client) authSCRAM(user, password string) error {
	nonce := make([]byte, 18)
	rand.Read(nonce)
	s := newSCRAM(user, password, base64.RawStdEncoding.EncodeToString(nonce))
	first := base64.StdEncoding.EncodeToString([]byte(s.clientFirst()))
	if err := c.writeRaw(fmt.Sprintf("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s</auth>", NSSASL, first)); err != nil {
		return err
	}
	kind, data, err := c.saslAnswer("SCRAM-SHA-1")
	if err != nil {
		return err
	}
	if kind != "challenge" {
		return fmt.Errorf("xmppclient: SCRAM: expected challenge, got %s", kind)
	}
	final, err := s.clientFinal(string(data))
	if err != nil {
		return fmt.Errorf("xmppclient: SCRAM: %w", err)
	}
	if err := c.writeRaw(fmt.Sprintf("<response xmlns='%s'>%s</response>", NSSASL,
		base64.StdEncoding.EncodeToString([]byte(final)))); err != nil {
		return err
	}
	kind, data, err = c.saslAnswer("SCRAM-SHA-1")
	if err != nil {
		return err
	}
	if kind == "challenge" { // server-final as a challenge, success follows empty
		if err := s.verifyServerFinal(string(data)); err != nil {
			return fmt.Errorf("xmppclient: SCRAM: %w", err)
		}
		if err := c.writeRaw(fmt.Sprintf("<response xmlns='%s'/>", NSSASL)); err != nil {
			return err
		}
		if kind, _, err = c.saslAnswer("SCRAM-SHA-1"); err != nil {
			return err
		}
		if kind != "success" {
			return fmt.Errorf("xmppclient: SCRAM: expected success, got %s", kind)
		}
	} else if err := s.verifyServerFinal(string(data)); err != nil {
		return fmt.Errorf("xmppclient: SCRAM: %w", err)
	}
	c.jid = user + "@" + c.domain
	return nil
}

func (c *Client) bind(resource string) error {
	id := c.id()
	err := c.writeRaw(fmt.Sprintf("<iq type='set' id='%s'><bind xmlns='%s'><resource>%s</resource></bind></iq>",
		id, NSBind, xmlEscape(resource)))
	if err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		start, err := c.nextElement()
		if err != nil {
			return err
		}
		if start.Name.Local != "iq" || attr(start, "id") != id {
			c.dec.Skip()
			continue
		}
		var iq struct {
			Type string `xml:"type,attr"`
			JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
		}
		if err := c.dec.DecodeElement(&iq, &start); err != nil {
			return c.readErr(err)
		}
		if iq.Type != "result" || iq.JID == "" {
			return fmt.Errorf("xmppclient: bind failed (type %q)", iq.Type)
		}
		c.jid = iq.JID
		return nil
	}
	return errors.New("xmppclient: no answer to bind")
}

func (c *Client) id() string {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nextID++
	return fmt.Sprintf("xc%d", c.nextID)
}

// JID is the full JID bound for this session (user@domain/resource).
func (c *Client) JID() string { return c.jid }

// BareJID is the JID without the resource.
func (c *Client) BareJID() string {
	if i := strings.IndexByte(c.jid, '/'); i >= 0 {
		return c.jid[:i]
	}
	return c.jid
}

// Conn is the underlying connection.
func (c *Client) Conn() net.Conn { return c.conn }

// SendMessage sends a chat message.
func (c *Client) SendMessage(to, body string) error {
	return c.writeRaw(fmt.Sprintf("<message type='chat' to='%s' id='%s'><body>%s</body></message>",
		xmlEscape(to), c.id(), xmlEscape(body)))
}

// SendRaw writes bytes as they are, for tests that need malformed or
// oversized input.
func (c *Client) SendRaw(s string) error { return c.writeRaw(s) }

// ReadMessage returns the next <message/> with a <body/>, skipping other
// stanzas. A message of type "error" is returned as an error. It ends with a
// *StreamError (wrapped) when the server sends one, with ErrStreamClosed
// after </stream:stream>, or with ctx's error. After any error the Client
// can only be closed: the XML decoder keeps its error.
func (c *Client) ReadMessage(ctx context.Context) (from, body string, err error) {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			c.conn.SetReadDeadline(time.Time{})
		}
		if err != nil && ctx.Err() != nil && !isStreamErr(err) {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
	}()
	for i := 0; i < maxSkip; i++ {
		start, err := c.nextElement()
		if err != nil {
			return "", "", err
		}
		if start.Name.Local != "message" {
			if err := c.dec.Skip(); err != nil {
				return "", "", c.readErr(err)
			}
			continue
		}
		var m struct {
			From  string  `xml:"from,attr"`
			Type  string  `xml:"type,attr"`
			Body  *string `xml:"body"`
			Error struct {
				Inner []struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"error"`
		}
		if err := c.dec.DecodeElement(&m, &start); err != nil {
			return "", "", c.readErr(err)
		}
		if m.Type == "error" {
			cond := ""
			if len(m.Error.Inner) > 0 {
				cond = m.Error.Inner[0].XMLName.Local
			}
			return m.From, "", fmt.Errorf("xmppclient: message error from %s: %s", m.From, cond)
		}
		if m.Body != nil {
			return m.From, *m.Body, nil
		}
	}
	return "", "", errors.New("xmppclient: too many stanzas without a message body")
}

func isStreamErr(err error) bool {
	var se *StreamError
	return errors.As(err, &se) || errors.Is(err, ErrStreamClosed)
}

// Close ends the stream gracefully: it sends </stream:stream>, waits a
// bounded time for the server's </stream:stream> and EOF, then closes the
// connection. It returns nil when the server answered in kind; a
// *StreamError, io.ErrUnexpectedEOF or a timeout otherwise. The connection is
// closed in every case.
func (c *Client) Close() error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return nil
	}
	c.closed = true
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, werr := io.WriteString(c.conn, "</stream:stream>")
	c.wmu.Unlock()

	defer c.conn.Close()
	if werr != nil {
		return fmt.Errorf("xmppclient: close: %w", werr)
	}
	c.conn.SetReadDeadline(time.Now().Add(closeTimeout))
	var err error
	for i := 0; i < 10000; i++ {
		_, err = c.nextElement()
		if err != nil {
			break
		}
		if err = c.dec.Skip(); err != nil {
			err = c.readErr(err)
			break
		}
	}
	if !errors.Is(err, ErrStreamClosed) {
		return fmt.Errorf("xmppclient: close: %w", err)
	}
	// The peer closed its stream; now expect EOF (its FIN).
	buf := make([]byte, 512)
	for i := 0; i < 1000; i++ {
		_, rerr := c.br.Read(buf)
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("xmppclient: close: waiting for EOF: %w", rerr)
		}
	}
	return errors.New("xmppclient: close: data after </stream:stream>")
}

func (c *Client) writeRaw(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return errors.New("xmppclient: write after Close")
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		return fmt.Errorf("xmppclient: write: %w", err)
	}
	return nil
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // also escapes both quote characters
	return b.String()
}
