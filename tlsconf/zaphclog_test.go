package tlsconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
)

// TestZapToHclog logs through the adapter into a JSON hclog logger and reads the lines back.
func TestZapToHclog(t *testing.T) {
	var out bytes.Buffer
	hl := hclog.New(&hclog.LoggerOptions{Name: "guard", Level: hclog.Info, Output: &out, JSONFormat: true})
	zl := newZapLogger(hl)

	zl.Debug("dropped: below the hclog level", zap.String("k", "v"))
	zl.Named("cache").Named("maintenance").With(zap.String("cache", "0x1")).
		Info("started", zap.Duration("interval", 10*time.Minute), zap.Strings("subjects", []string{"a.test", "b.test"}))
	zl.Named("").Named("obtain").Warn("retrying", zap.Int("attempt", 2), zap.Error(errors.New("rate limited")))
	zl.Error("failed", zap.Bool("fatal", false))

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, want := range []map[string]any{
		{"@level": "info", "@module": "guard.cache.maintenance", "@message": "started",
			"cache": "0x1", "interval": "10m0s", "subjects": []any{"a.test", "b.test"}},
		{"@level": "warn", "@module": "guard.obtain", "@message": "retrying", "attempt": float64(2), "error": "rate limited"},
		{"@level": "error", "@module": "guard", "@message": "failed", "fatal": false},
	} {
		for k, v := range want {
			got, _ := json.Marshal(lines[i][k])
			exp, _ := json.Marshal(v)
			if !bytes.Equal(got, exp) {
				t.Errorf("line %d: %s = %s, want %s", i, k, got, exp)
			}
		}
	}
}

// TestZapLevels checks that zap asks hclog's level before building an entry.
func TestZapLevels(t *testing.T) {
	for _, tc := range []struct {
		level hclog.Level
		want  [4]bool // debug, info, warn, error enabled
	}{
		{hclog.Trace, [4]bool{true, true, true, true}},
		{hclog.Debug, [4]bool{true, true, true, true}},
		{hclog.Info, [4]bool{false, true, true, true}},
		{hclog.Warn, [4]bool{false, false, true, true}},
		{hclog.Error, [4]bool{false, false, false, true}},
		{hclog.Off, [4]bool{}},
	} {
		zl := newZapLogger(hclog.New(&hclog.LoggerOptions{Level: tc.level, Output: &bytes.Buffer{}}))
		got := [4]bool{
			zl.Core().Enabled(zap.DebugLevel), zl.Core().Enabled(zap.InfoLevel),
			zl.Core().Enabled(zap.WarnLevel), zl.Core().Enabled(zap.ErrorLevel),
		}
		if got != tc.want {
			t.Errorf("hclog %s: enabled %v, want %v", tc.level, got, tc.want)
		}
	}
	if newZapLogger(hclog.NewNullLogger()).Core().Enabled(zap.ErrorLevel) {
		t.Error("null logger enables errors")
	}
}
