package proxy

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
)

// This file is the connection log (a line for each stream's end) and the
// per-connection logger every line of a session goes through.

// ConnLog says which ends of streams the connection log writes: a line at
// info with the reason (the reason label of guard_connections_closed_total),
// the duration, the bytes relayed each way, the backend and node, the
// client's address and the stream's to.
type ConnLog struct {
	Mode ConnLogMode
	// Sample is the fraction of clean ends (client_closed, backend_closed)
	// written; every other end is. 0 or 1: all.
	Sample float64
}

// ConnLogMode is what the connection log writes.
type ConnLogMode uint8

// The modes of the connection log.
const (
	ConnLogAll    ConnLogMode = iota // every end (Sample applies to clean ones)
	ConnLogErrors                    // only ends other than a clean close
	ConnLogOff                       // nothing
)

var connLogModeNames = [...]string{ConnLogAll: "all", ConnLogErrors: "errors", ConnLogOff: "off"}

// String returns the mode's name in the configuration file: "all",
// "errors" or "off".
func (m ConnLogMode) String() string { return enumName(connLogModeNames[:], int(m), "ConnLogMode") }

// logEnd writes the connection log's line for a stream that ended for
// reason.
func (ss *session) logEnd(cl ConnLog, reason string) {
	clean := reason == ReasonClientClosed || reason == ReasonBackendClosed
	switch {
	case cl.Mode == ConnLogOff, clean && cl.Mode == ConnLogErrors:
		return
	case clean && cl.Sample > 0 && cl.Sample < 1 && rand.Float64() >= cl.Sample:
		return
	}
	if !ss.log.base.IsInfo() {
		return
	}
	var in, out int64
	ss.mu.Lock()
	if r := ss.relay; r != nil {
		in, out = r.relayedBytes[clientToBackend].Load(), r.relayedBytes[backendToClient].Load()
	}
	ss.mu.Unlock()
	args := []any{"transport", transport(&ss.st.cfg), "stream", ss.st.cfg.Stream.Short(), "reason", reason, "duration", time.Since(ss.start).Round(time.Millisecond).String(),
		"bytes_in", in, "bytes_out", out}
	if ss.bst != nil {
		args = append(args, "backend", ss.bst.name)
	}
	if ss.node != nil {
		args = append(args, "node", ss.node.addr)
	}
	ss.log.Info("stream ended", args...)
}

// connLog logs for one connection, tagging every line with the connection
// id, the client's address and, once known, the domain it asked for. It
// builds the fields only when a line is written: a derived hclog logger per
// connection would cost an idle stream several hundred bytes.
type connLog struct {
	base   hclog.Logger
	id     uint64
	client netip.AddrPort
	to     string
	from   string // s2s: the remote server's domain
}

func (l *connLog) fields(args []any) []any {
	out := make([]any, 0, len(args)+6)
	out = append(out, "conn", l.id, "client", l.client.String())
	if l.to != "" {
		out = append(out, "to", l.to)
	}
	if l.from != "" {
		out = append(out, "from", l.from)
	}
	return append(out, args...)
}

func (l *connLog) Debug(msg string, args ...any) {
	if l.base.IsDebug() {
		l.base.Debug(msg, l.fields(args)...)
	}
}

func (l *connLog) Info(msg string, args ...any) {
	if l.base.IsInfo() {
		l.base.Info(msg, l.fields(args)...)
	}
}

func (l *connLog) Warn(msg string, args ...any) {
	if l.base.IsWarn() {
		l.base.Warn(msg, l.fields(args)...)
	}
}
