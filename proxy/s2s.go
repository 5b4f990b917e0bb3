package proxy

import (
	"bytes"
	"errors"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"golang.org/x/time/rate"
)

// This file is what is particular to server-to-server streams (federation):
// the per-domain limits a remote server's streams are admitted under, and
// the hand-over to TLS between the remote server and the backend. Guard
// frames an s2s stream like a client's until STARTTLS: it reads the remote
// server's header, routes it by to, limits it by from, admits it and
// answers with stream errors; when the backend's <proceed/> passes, both
// directions become raw (raw.go's relay: bytes as they come, every end a
// FIN), so that the TLS, and dialback or SASL EXTERNAL inside it, is the
// remote server's and the backend's own, end to end.

// domainLimits are the limits of the per-domain table.
func domainLimits(l AddrLimits) limits.AddrLimits {
	return limits.AddrLimits{
		MaxConns: l.MaxStreamsPerDomain,
		Rate:     rate.Limit(l.StreamRatePerDomain),
		Burst:    l.StreamBurstPerDomain,
		MaxKeys:  l.TrackedAddresses,
	}
}

// admitDomain applies the per-domain limits to a new s2s stream from
// ss.peerDomain, keeping the release for finish, or returns the refusal.
// Streams whose header has no from count together, under "".
func (ss *session) admitDomain() error {
	release, err := ss.l.domains.Admit(ss.peerDomain, time.Now())
	var ev policy.Event
	switch {
	case err == nil:
		ss.releaseDomain = release
		return nil
	case errors.Is(err, limits.ErrRateLimited):
		ev = policy.DomainRate
	case errors.Is(err, limits.ErrAddrTableFull):
		ev = policy.QueueFull
	default:
		ev = policy.DomainLimit
	}
	ss.log.Info("refused by per-domain limits", "event", ev, "from", ss.peerDomain)
	return refused(ev, "")
}

// tlsWatch is what a pipe of an s2s stream looks for among its units: the
// last unit before the stream turns into TLS.
type tlsWatch uint8

const (
	watchNone     tlsWatch = iota
	watchStartTLS          // the remote server's <starttls/>
	watchProceed           // the backend's <proceed/>
)

var proceedOpen = []byte("<proceed")

// matches reports whether the top-level element unit is the one w watches
// for.
func (w tlsWatch) matches(unit []byte) bool {
	switch w {
	case watchStartTLS:
		return isStartTLS(unit)
	case watchProceed:
		u := bytes.TrimSpace(unit)
		return bytes.HasPrefix(u, proceedOpen) && len(u) > len(proceedOpen) && isTagEnd(u[len(proceedOpen)]) &&
			bytes.Contains(u, []byte(tlsNS))
	}
	return false
}

// watchTLS makes the pipes of an s2s relay turn raw after STARTTLS: the
// client's after its <starttls/> (it sends nothing more until the
// backend's answer, then its TLS ClientHello), the backend's after its
// <proceed/>. A backend that answers <failure/> ends the stream (RFC 6120
// 5.4.2.2), which the relay passes on as usual.
func (r *relay) watchTLS() {
	r.side[sideClient].pipe.watch = watchStartTLS
	r.side[sideBackend].pipe.watch = watchProceed
}
