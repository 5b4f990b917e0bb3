package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"time"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the handshake of a client connection, before Guard knows
// where its stream goes: the PROXY protocol header of a trusted balancer,
// TLS (Direct, or STARTTLS answered by Guard itself), and the client's
// stream header, whole, within the handshake deadline.

// readProxyHeader reads the PROXY protocol header a trusted load balancer
// sends first, within the handshake timeout, and takes the client's address
// from it. A LOCAL header (the balancer's own health check) keeps the
// socket's address.
func (ss *session) readProxyHeader(cfg *ListenerConfig) error {
	ss.client.SetReadDeadline(time.Now().Add(cfg.Timeouts.Handshake))
	h, err := proxyproto.Read(ss.client)
	ss.client.SetReadDeadline(time.Time{})
	if err != nil {
		ss.log.Info("bad PROXY protocol header from a trusted address", "error", err)
		return closed(ReasonProxyProtocol)
	}
	if h.Command == proxyproto.Proxy && h.Source.IsValid() {
		ss.remote = h.Source
		ss.local = &h.Dest
		ss.log.client = h.Source
	}
	return nil
}

// handshakeTCP is the TCP front's handshake (see front): a framed stream
// on c taken to the client's stream header, whole, within the handshake
// deadline (TLS included): a client sending a byte a second is cut as
// surely as a silent one.
func (ss *session) handshakeTCP(cfg *ListenerConfig, c *sideConn) (*pipe, scan, error) {
	ctok := clientTokenizer(cfg)
	deadline := time.Now().Add(cfg.Timeouts.Handshake)
	if cfg.TLS.Mode == TLSDirect {
		if err := ss.handshakeTLS(cfg, c, deadline); err != nil {
			return nil, scan{}, err
		}
	}
	cp, cs, err := ss.clientHeader(c, ctok, deadline)
	if err != nil {
		return cp, cs, err
	}
	if cfg.TLS.Mode == TLSStartTLS {
		// Guard answers this first stream itself and upgrades it; the
		// backend only ever sees the stream that follows TLS.
		if err := ss.startTLS(cfg, c, cp, cs, deadline); err != nil {
			return cp, cs, err
		}
		ctok.Reset()
		if cp, cs, err = ss.clientHeader(c, ctok, deadline); err != nil {
			return cp, cs, err
		}
	}
	ss.headerDone()
	return cp, cs, nil
}

// clientHeader makes the pipe of the client's stream over c and reads the
// stream header (readClientHeader); the pipe, once made, is returned even
// with an error.
func (ss *session) clientHeader(c *sideConn, tok *xmpp.Tokenizer, deadline time.Time) (*pipe, scan, error) {
	cp, err := newSidePipe(c, tok)
	if err != nil {
		return nil, scan{}, closed(ReasonClientError)
	}
	cs, err := ss.readClientHeader(cp, deadline)
	return cp, cs, err
}

// clientTokenizer returns the tokenizer of a client's stream, with the
// listener's limits.
func clientTokenizer(cfg *ListenerConfig) *xmpp.Tokenizer {
	t := xmpp.NewTokenizer(cfg.MaxStanzaSize)
	if cfg.MaxHeaderSize > 0 {
		t.MaxHeader = cfg.MaxHeaderSize
	}
	t.MaxDepth = cfg.MaxDepth
	return t
}

// headerDone records that the client's stream header has arrived: from now
// on a drain ends the stream instead of closing the connection.
func (ss *session) headerDone() {
	ss.mu.Lock()
	ss.headerSeen = true
	ss.mu.Unlock()
	ss.log.to, ss.log.from = ss.domain, ss.peerDomain
}

// readClientHeader reads and checks the client's stream header within the
// deadline. It returns the scan holding it, or why the connection ends
// (refused or gone).
func (ss *session) readClientHeader(cp *pipe, deadline time.Time) (scan, error) {
	cp.setReadDeadline(deadline)
	hdr, cs, ev, text := readHeader(cp)
	cp.setReadDeadline(time.Time{})
	ss.domain = hdr.To
	if ss.st.cfg.Stream == StreamServer {
		ss.peerDomain = hdr.From
	}
	if want := ss.st.cfg.Stream.ns(); ev == "" && hdr.NS != want {
		ev, text = policy.BadNamespace, "a "+ss.st.cfg.Stream.String()+" stream must use "+want
	}
	switch ev {
	case "":
		return cs, nil
	case closedEvent:
		return cs, closed(ReasonShutdown)
	case clientGoneEvent, eofEvent:
		return cs, closed(ReasonClientError)
	default:
		ss.log.Debug("refusing stream", "event", ev, "detail", text)
		return cs, refused(ev, text)
	}
}

// readHeader reads until p's peer has sent a whole stream header, and
// returns it parsed, with the scan that holds it; or the event that ends
// the connection instead, with a detail for the log and the error text.
func readHeader(p *pipe) (xmpp.Header, scan, policy.Event, string) {
	for {
		s, err := p.fill()
		if s.header {
			h, herr := xmpp.ParseHeader(p.buf[p.hdrStart:p.hdrEnd])
			if herr != nil {
				return h, s, headerEvent(herr), errText(herr)
			}
			if s.serr != nil {
				return h, s, eventForSyntax(s.serr), s.serr.Msg
			}
			return h, s, "", ""
		}
		if s.serr != nil {
			ev := eventForSyntax(s.serr)
			if ev == policy.NotWellFormed && p.tok.Offset() < 64 && s.serr.Offset < 64 {
				ev = policy.BytesBeforeHeader
			}
			return xmpp.Header{}, s, ev, s.serr.Msg
		}
		if err != nil {
			ev, text := readEvent(err), ""
			switch ev {
			case eofEvent:
				text = "EOF before the stream header"
			case clientGoneEvent:
				text = err.Error()
			}
			return xmpp.Header{}, s, ev, text
		}
	}
}

// startTLS answers the client's first stream on a STARTTLS listener: Guard's
// header and features offering <starttls/> as required, then, on the
// client's <starttls/>, <proceed/> and the TLS handshake, all within the
// handshake deadline. Anything else than <starttls/> is refused with
// policy-violation (RFC 6120 5.3.1).
func (ss *session) startTLS(cfg *ListenerConfig, c *sideConn, cp *pipe, cs scan, deadline time.Time) error {
	// The plaintext header ends here; whole units the client sent right
	// after it (a pipelined <starttls/>) are judged like later ones.
	pending := cs.fwd - int(cp.hdrEnd)
	cp.consume(int(cp.hdrEnd))
	if err := ss.writeClient(append(ss.ownHeader(), startTLSFeatures...), deadline); err != nil {
		return err
	}
	ss.streamOpen = true
	cp.setReadDeadline(deadline)
	err := ss.awaitStartTLS(cp, pending)
	cp.setReadDeadline(time.Time{})
	if err != nil {
		return err
	}
	if err := ss.writeClient([]byte(proceedTLS), deadline); err != nil {
		return err
	}
	ss.streamOpen = false // TLS starts a new stream
	return ss.handshakeTLS(cfg, c, deadline)
}

// awaitStartTLS reads the client's next unit, pending bytes of which are
// in cp already, and accepts only <starttls/> with nothing after it;
// whitespace keepalives are waited through.
func (ss *session) awaitStartTLS(cp *pipe, pending int) error {
	for {
		var s scan
		var err error
		if pending > 0 {
			s, pending = scan{fwd: pending}, 0
		} else {
			s, err = cp.fill()
		}
		if s.fwd > 0 {
			units := cp.units(s.fwd)
			if len(bytes.TrimSpace(units)) == 0 {
				cp.consume(s.fwd) // whitespace keepalives: wait on
				continue
			}
			if !isStartTLS(units) {
				ss.log.Info("client did not start TLS where it is required")
				return refused(policy.TLSRequired, "")
			}
			if cp.n > s.fwd {
				// Bytes after <starttls/> and before <proceed/>: a client
				// that does not wait is broken, or an injection attempt.
				return refused(policy.NotWellFormed, "data after <starttls/>")
			}
			cp.discardAll()
			return nil
		}
		if s.serr != nil {
			return refused(eventForSyntax(s.serr), s.serr.Msg)
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			return refused(policy.HandshakeTimeout, "")
		default:
			return closed(ReasonClientError)
		}
	}
}

// writeClient writes b to the client within deadline.
func (ss *session) writeClient(b []byte, deadline time.Time) error {
	ss.front.SetWriteDeadline(deadline)
	_, err := ss.front.Write(b)
	ss.front.SetWriteDeadline(time.Time{})
	if err != nil {
		return closed(ReasonClientError)
	}
	return nil
}

// handshakeTLS terminates TLS on the client's connection c within the
// deadline. A failed handshake ends the connection with TLS's own alert:
// no XMPP can be spoken to a client without TLS on a TLS listener.
func (ss *session) handshakeTLS(cfg *ListenerConfig, c *sideConn, deadline time.Time) error {
	if cfg.TLS.Config == nil {
		ss.log.Warn("TLS listener without a TLS configuration")
		return closed(ReasonClientError)
	}
	tc := c.startTLS(cfg.TLS.Config)
	ss.client.SetDeadline(deadline)
	err := tc.Handshake()
	ss.client.SetDeadline(time.Time{})
	if err != nil {
		ss.log.Info("TLS handshake failed", "error", err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return closed(eventReason(policy.HandshakeTimeout))
		}
		return closed(ReasonTLSFailed)
	}
	ss.tlsPending = false
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acmeTLSALPN {
		// An ACME CA validating a tls-alpn-01 challenge, not a client.
		return closed(ReasonACMEChallenge)
	}
	ss.log.Debug("TLS established", "version", tls.VersionName(st.Version), "alpn", st.NegotiatedProtocol, "sni", st.ServerName, "resumed", st.DidResume)
	return nil
}
