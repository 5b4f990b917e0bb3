package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the active health checks of a backend's nodes, and
// ProbeStream, the probe they run (shared with guard validate -probe): a
// real client stream that must answer with a header and features.

// startHealthChecks runs the active checks of st until ctx ends.
func (st *backendState) startHealthChecks(ctx context.Context, b Backend, log hclog.Logger, wg *sync.WaitGroup) {
	hc := b.Health
	if hc.Interval <= 0 {
		return
	}
	orDefault(&hc.Timeout, DefaultHealthTimeout)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(hc.Interval)
		defer t.Stop()
		for {
			st.poolMu.Lock()
			nodes := slices.Clone(st.nodes)
			st.poolMu.Unlock()
			for _, n := range nodes {
				err := checkNode(ctx, n.addr, b, hc)
				if ctx.Err() != nil {
					return // cancelled (reload, shutdown): not the node's fault
				}
				n.setChecked(err == nil, log)
				st.updateCapacity()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stopChecks ends every backend's active health checks and waits for them.
func (s *Server) stopChecks() {
	s.mu.Lock()
	for _, st := range s.backends {
		if st.checks != nil {
			st.checks()
		}
	}
	s.mu.Unlock()
	s.checkWG.Wait()
	s.stopMemory()
}

// checkNode opens a stream to addr and expects a header and features.
func checkNode(ctx context.Context, addr string, b Backend, hc HealthCheck) error {
	_, err := ProbeStream(ctx, addr, b.TLS, b.ProxyProtocol, hc.Domain, hc.Timeout)
	return err
}

// ProbeStream opens a client stream to the XMPP server at addr (over TLS
// when tlsConfig is not nil), asking for domain (DefaultHealthDomain if
// empty), and returns the server's first stream features, then ends the
// stream cleanly; everything within timeout. It is Guard's health check,
// and what `guard validate -probe` reports on.
func ProbeStream(ctx context.Context, addr string, tlsConfig *tls.Config, proxyVersion int, domain string, timeout time.Duration) ([]byte, error) {
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(timeout))
	if proxyVersion != 0 {
		// A backend that expects a PROXY header gets one: LOCAL (v2) or
		// UNKNOWN (v1), the forms for a proxy's own connections.
		h := proxyproto.Header{Command: proxyproto.Local}
		hb := h.AppendV2(nil)
		if proxyVersion == 1 {
			hb = h.AppendV1(nil)
		}
		if _, err := raw.Write(hb); err != nil {
			return nil, err
		}
	}
	c := raw
	if tlsConfig != nil {
		tc := tls.Client(raw, tlsConfig)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		c = tc
	}
	if domain == "" {
		domain = DefaultHealthDomain
	}
	hdr := "<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='" + xmpp.StreamsNS + "' version='1.0'>"
	if _, err := io.WriteString(c, hdr); err != nil {
		return nil, err
	}
	tok := xmpp.NewTokenizer(64 << 10)
	var unit []byte
	buf := make([]byte, 4096)
	header := false
	for {
		k, rerr := c.Read(buf)
		b := buf[:k]
		for len(b) > 0 {
			n, kind, err := tok.Next(b)
			if err != nil {
				return nil, fmt.Errorf("not XMPP: %w", err)
			}
			unit = append(unit, b[:n]...)
			b = b[n:]
			switch kind {
			case xmpp.KindNone:
				continue
			case xmpp.KindHeader:
				header = true
			case xmpp.KindElement:
				if header {
					// End the stream and read the server's end, so that
					// closing leaves no unread input (no reset).
					io.WriteString(c, "</stream:stream>")
					c.SetReadDeadline(time.Now().Add(min(timeout, 200*time.Millisecond)))
					io.Copy(io.Discard, io.LimitReader(c, 64<<10))
					return unit, nil
				}
			case xmpp.KindEnd:
				return nil, errors.New("the server closed the stream before its features")
			}
			unit = unit[:0]
		}
		if rerr != nil {
			return nil, fmt.Errorf("no stream features: %w", rerr)
		}
	}
}
