package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/xmpp"
)

// probeBackends opens a stream to each backend as a client would (through
// Guard) and reports what it offers: a backend that offers SASL -PLUS
// mechanisms (channel binding) to a listener where Guard terminates TLS will
// fail those logins, so it is reported as a problem. It returns false if a
// backend is unreachable or misconfigured for a listener using it.
func probeBackends(cfg *config.Config, domain string, w io.Writer) bool {
	ok := true
	for _, b := range cfg.Backends {
		var terminating []string
		for _, l := range cfg.Listeners {
			if l.Backend == b.Name && (l.TLS.Mode == "starttls" || l.TLS.Mode == "direct") {
				terminating = append(terminating, l.Name)
			}
		}
		features, err := probeBackend(b, domain)
		if err != nil {
			fmt.Fprintf(w, "backend %q (%s): %v\n", b.Name, b.Address, err)
			ok = false
			continue
		}
		fmt.Fprintf(w, "backend %q (%s): opened a stream for %q\n", b.Name, b.Address, domain)
		if bytes.Contains(features, []byte("<starttls")) {
			fmt.Fprintf(w, "  offers <starttls/>: fine, Guard removes it on TLS listeners\n")
		}
		if bytes.Contains(features, []byte("-PLUS</mechanism>")) {
			if b.TLS != nil && len(terminating) == 0 {
				// Guard's TLS to the backend is not the client's: the
				// binding cannot match whatever the listener does.
				terminating = []string{"(any: Guard speaks TLS to this backend)"}
			}
			if len(terminating) > 0 {
				fmt.Fprintf(w, "  PROBLEM: offers SASL -PLUS mechanisms (channel binding) behind TLS-terminating listeners %q: "+
					"clients that pick them fail to log in. Turn them off on the backend (docs/tls.md).\n", terminating)
				ok = false
			} else {
				fmt.Fprintf(w, "  offers SASL -PLUS mechanisms; no listener terminates TLS in front of it\n")
			}
		}
	}
	return ok
}

// probeBackend sends a client stream header and returns the backend's
// first stream features.
func probeBackend(b config.Backend, domain string) ([]byte, error) {
	var c net.Conn
	c, err := net.DialTimeout("tcp", b.Address, b.ConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer c.Close()
	if b.TLS != nil {
		tc, err := backendTLSConfig(b.TLS)
		if err != nil {
			return nil, err
		}
		t := tls.Client(c, tc)
		t.SetDeadline(time.Now().Add(b.ConnectTimeout))
		if err := t.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		c = t
	}
	c.SetDeadline(time.Now().Add(b.ReplyTimeout))
	hdr := "<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='" + xmpp.StreamsNS + "' version='1.0'>"
	if _, err := io.WriteString(c, hdr); err != nil {
		return nil, err
	}
	tok := xmpp.NewTokenizer(0)
	var buf, unit []byte
	rd := make([]byte, 4096)
	headerSeen := false
	for {
		n, err := c.Read(rd)
		buf = append(buf, rd[:n]...)
		for len(buf) > 0 {
			k, kind, terr := tok.Next(buf)
			if terr != nil {
				return nil, fmt.Errorf("not XMPP: %w", terr)
			}
			unit = append(unit, buf[:k]...)
			buf = buf[k:]
			switch kind {
			case xmpp.KindHeader:
				headerSeen = true
				unit = unit[:0]
			case xmpp.KindElement:
				if headerSeen {
					io.WriteString(c, "</stream:stream>")
					return unit, nil
				}
			case xmpp.KindEnd:
				return nil, fmt.Errorf("the backend closed the stream before its features")
			case xmpp.KindNone:
			default:
				unit = unit[:0]
			}
		}
		if err != nil {
			return nil, fmt.Errorf("no stream features: %w", err)
		}
	}
}
