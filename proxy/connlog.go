package proxy

import (
	"net/netip"

	"github.com/hashicorp/go-hclog"
)

// connLog logs for one connection, tagging every line with the connection
// id, the client's address and, once known, the domain it asked for. It
// builds the fields only when a line is written: a derived hclog logger per
// connection would cost an idle stream several hundred bytes.
type connLog struct {
	base   hclog.Logger
	id     uint64
	client netip.AddrPort
	to     string
}

func (l *connLog) fields(args []any) []any {
	out := make([]any, 0, len(args)+6)
	out = append(out, "conn", l.id, "client", l.client.String())
	if l.to != "" {
		out = append(out, "to", l.to)
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
