package tlsconf

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// This file is the one place where certmagic's zap logging joins Guard's hclog root: every zap
// logger handed to certmagic is built by newZapLogger.

// newZapLogger returns a zap logger whose entries go to l: zap's logger names become hclog
// sub-logger names, fields become key/value pairs, and l's level decides what is written.
func newZapLogger(l hclog.Logger) *zap.Logger {
	return zap.New(zapCore{log: l})
}

// zapCore is a zapcore.Core that writes to an hclog.Logger.
type zapCore struct {
	log hclog.Logger
}

var _ zapcore.Core = zapCore{}

// hclogLevel maps a zap level to hclog's: DPanic, Panic and Fatal are errors (zap itself still
// panics or exits after writing them).
func hclogLevel(l zapcore.Level) hclog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return hclog.Debug
	case l == zapcore.InfoLevel:
		return hclog.Info
	case l == zapcore.WarnLevel:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (c zapCore) Enabled(l zapcore.Level) bool {
	switch hclogLevel(l) {
	case hclog.Debug:
		return c.log.IsDebug()
	case hclog.Info:
		return c.log.IsInfo()
	case hclog.Warn:
		return c.log.IsWarn()
	default:
		return c.log.IsError()
	}
}

func (c zapCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return zapCore{log: c.log.With(hclogArgs(fields)...)}
}

func (c zapCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c zapCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	l := c.log
	if name := strings.Trim(ent.LoggerName, "."); name != "" {
		// zap joins names with dots, also under an empty parent: "..acme_client"
		for strings.Contains(name, "..") {
			name = strings.ReplaceAll(name, "..", ".")
		}
		l = l.Named(name)
	}
	args := hclogArgs(fields)
	if ent.Stack != "" {
		args = append(args, "stack", ent.Stack)
	}
	l.Log(hclogLevel(ent.Level), ent.Message, args...)
	return nil
}

func (zapCore) Sync() error { return nil }

// hclogArgs turns zap fields into hclog's alternating keys and values, sorted by key. Values
// keep their Go types (times, nested objects as maps, arrays as slices) except durations, which
// become their String form; errors become their message.
func hclogArgs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		v := enc.Fields[k]
		if d, ok := v.(time.Duration); ok {
			v = d.String() // "1m30s", not nanoseconds in JSON
		}
		args = append(args, k, v)
	}
	return args
}
