package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/websocket"
)

// This file is the WebSocket front end (RFC 7395): the client's HTTP/1.1
// upgrade read and checked (path, the xmpp subprotocol, Origin, the
// forwarded address of a trusted reverse proxy) within the handshake
// deadline, answered with 101 or an HTTP error, and then the client's
// <open/> read as the TCP front reads a stream header. From then on the
// session and the relay see a c2s stream (wsconn.go).

// ReasonWebSocketRefused: a WebSocket upgrade refused with an HTTP error
// (wrong path, no xmpp subprotocol, a foreign Origin, not an upgrade).
const ReasonWebSocketRefused = "websocket_refused"

// wsFront is a WebSocket client: the TCP front's socket (and TLS), with
// the WebSocket over it once upgraded.
type wsFront struct{ *sideConn }

func (f wsFront) terminatesTLS() bool { return true } // the TLS is the WebSocket's

// keepalive is a Ping once upgraded.
func (f wsFront) keepalive(now time.Time) error {
	if ws, ok := f.Conn.(*wsConn); ok {
		return ws.ping(now)
	}
	return nil
}

// admitsLater: behind a trusted reverse proxy, the client's address comes
// with the upgrade request, and the per-address limits wait for it.
func (f wsFront) admitsLater(cfg *ListenerConfig, remote netip.AddrPort) bool {
	return cfg.WebSocket.TrustedProxies.Contains(remote.Addr())
}

func (f wsFront) handshake(ss *session, cfg *ListenerConfig) (*pipe, scan, error) {
	deadline := time.Now().Add(cfg.Timeouts.Handshake)
	if cfg.TLS.Mode == TLSDirect {
		if err := ss.handshakeTLS(cfg, f.sideConn, deadline); err != nil {
			return nil, scan{}, err
		}
	}
	ws, err := ss.upgrade(cfg, f.sideConn, deadline)
	if err != nil {
		return nil, scan{}, err
	}
	f.Conn = ws
	if f.admitsLater(cfg, addrPort(ss.client.RemoteAddr())) {
		if err := ss.admitAddress(); err != nil {
			return nil, scan{}, err
		}
	}
	cp, cs, err := ss.clientHeader(f.sideConn, clientTokenizer(cfg), deadline)
	if err == nil {
		ss.headerDone()
	}
	return cp, cs, err
}

// upgrade reads the client's upgrade request on c within deadline and
// answers it: 101 and the WebSocket (with any frames the client sent right
// after its request), or an HTTP error and a quiet close.
func (ss *session) upgrade(cfg *ListenerConfig, c *sideConn, deadline time.Time) (*wsConn, error) {
	c.SetReadDeadline(deadline)
	br := bufio.NewReaderSize(c.Conn, 4096)
	req, err := http.ReadRequest(br)
	c.SetReadDeadline(time.Time{})
	var opErr *net.OpError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, quiet(eventReason(policy.HandshakeTimeout))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &opErr):
		return nil, closed(ReasonClientError)
	case err != nil:
		return nil, ss.refuseUpgrade(c, http.StatusBadRequest, "not an HTTP/1.1 request", deadline)
	}
	if status, text := checkUpgrade(req, cfg.WebSocket); status != 0 {
		ss.log.Info("WebSocket upgrade refused", "status", status, "reason", text, "path", req.URL.Path, "origin", req.Header.Get("Origin"))
		return nil, ss.refuseUpgrade(c, status, text, deadline)
	}
	if cfg.WebSocket.TrustedProxies.Contains(ss.remote.Addr()) {
		if a, ok := forwardedFor(req.Header); ok {
			ss.remote = netip.AddrPortFrom(a, 0)
			ss.log.client = ss.remote
		}
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + websocket.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
		"Sec-WebSocket-Protocol: xmpp\r\n\r\n"
	c.SetWriteDeadline(deadline)
	_, err = c.Conn.Write([]byte(resp))
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		return nil, closed(ReasonClientError)
	}
	received, _ := br.Peek(br.Buffered())
	return newWSConn(c.Conn, received, cfg), nil
}

// refuseUpgrade answers an upgrade Guard does not take with an HTTP error.
func (ss *session) refuseUpgrade(c *sideConn, status int, text string, deadline time.Time) error {
	body := text + "\n"
	extra := ""
	if status == http.StatusUpgradeRequired {
		extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	}
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s",
		status, http.StatusText(status), len(body), extra, body)
	c.SetWriteDeadline(deadline)
	c.Conn.Write([]byte(resp))
	c.SetWriteDeadline(time.Time{})
	return quiet(ReasonWebSocketRefused)
}

// checkUpgrade returns the HTTP status and text refusing req, or 0.
func checkUpgrade(req *http.Request, ws *WebSocket) (int, string) {
	switch {
	case req.URL.Path != ws.Path:
		return http.StatusNotFound, "XMPP over WebSocket is at " + ws.Path
	case req.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "the upgrade is a GET"
	case !headerHas(req.Header, "Connection", "upgrade") || !headerHas(req.Header, "Upgrade", "websocket"):
		return http.StatusUpgradeRequired, "this is a WebSocket endpoint: upgrade to websocket"
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusUpgradeRequired, "WebSocket version 13 is required"
	case !websocket.ValidKey(req.Header.Get("Sec-WebSocket-Key")):
		return http.StatusBadRequest, "a Sec-WebSocket-Key of 16 bytes in base64 is required"
	case !headerHas(req.Header, "Sec-WebSocket-Protocol", "xmpp"):
		return http.StatusBadRequest, "the xmpp subprotocol is required (RFC 7395)"
	case !originAllowed(req, ws.AllowedOrigins):
		return http.StatusForbidden, "this origin may not open XMPP streams here"
	}
	return 0, ""
}

// headerHas reports whether a comma-separated header holds token, in any
// case.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed checks a browser's Origin (cross-site WebSocket hijacking):
// one of allowed, "*" for any, or, with none listed, the origin of the
// request's own Host. A request without Origin is not a browser's.
func originAllowed(req *http.Request, allowed []string) bool {
	origin := req.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(allowed) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, req.Host)
	}
	return slices.ContainsFunc(allowed, func(a string) bool {
		return a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin)
	})
}

// forwardedFor returns the client's address as the trusted proxy in front
// reported it: the last for= of Forwarded (RFC 7239), else the last
// address of X-Forwarded-For, the one that proxy added.
func forwardedFor(h http.Header) (netip.Addr, bool) {
	if v := h.Values("Forwarded"); len(v) > 0 {
		elems := strings.Split(strings.Join(v, ","), ",")
		for _, pair := range strings.Split(elems[len(elems)-1], ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				return parseNodeAddr(strings.Trim(val, `"`))
			}
		}
	}
	if v := h.Values("X-Forwarded-For"); len(v) > 0 {
		all := strings.Split(strings.Join(v, ","), ",")
		return parseNodeAddr(strings.TrimSpace(all[len(all)-1]))
	}
	return netip.Addr{}, false
}

// parseNodeAddr parses an address as Forwarded and X-Forwarded-For write
// it: bare, with a port, IPv6 in brackets.
func parseNodeAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err == nil
}
