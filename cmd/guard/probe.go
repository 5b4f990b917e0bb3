package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/proxy"
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
			if l.Backend == b.Name && l.TLS.Mode.Terminates() {
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

// probeBackend opens a stream to the backend (its first node) and returns
// its first stream features.
func probeBackend(b config.Backend, domain string) ([]byte, error) {
	var tc *tls.Config
	if b.TLS != nil {
		var err error
		if tc, err = backendTLSConfig(b.TLS); err != nil {
			return nil, err
		}
	}
	addr := b.Address
	if addr == "" && len(b.Nodes) > 0 {
		addr = b.Nodes[0].Address
	}
	return proxy.ProbeStream(context.Background(), addr, tc, b.ProxyProtocol, domain, b.ConnectTimeout+b.ReplyTimeout)
}
