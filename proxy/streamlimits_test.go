package proxy

import (
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

const mechsEl = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"

func limitsEl(maxBytes, idle string) string {
	s := "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>" + maxBytes + "</max-bytes>"
	if idle != "" {
		s += "<idle-seconds>" + idle + "</idle-seconds>"
	}
	return s + "</limits>"
}

func TestWithLimits(t *testing.T) {
	tests := []struct {
		name, in, want string
		idle           time.Duration
	}{
		{"none: Guard's added", "<stream:features>" + mechsEl + "</stream:features>",
			"<stream:features>" + mechsEl + limitsEl("1024", "") + "</stream:features>", 0},
		{"a looser one: Guard's instead", "<stream:features>" + limitsEl("100000", "") + mechsEl + "</stream:features>",
			"<stream:features>" + limitsEl("1024", "") + mechsEl + "</stream:features>", 0},
		{"a tighter one: kept as it is", "<stream:features>" + limitsEl("500", "60") + mechsEl + "</stream:features>",
			"<stream:features>" + limitsEl("500", "60") + mechsEl + "</stream:features>", 0},
		{"the idle limit: Guard's shorter one", "<stream:features>" + limitsEl("500", "600") + "</stream:features>",
			"<stream:features>" + limitsEl("500", "300") + "</stream:features>", 5 * time.Minute},
		{"the idle limit, none from the backend, rounded up", "<stream:features>" + mechsEl + "</stream:features>",
			"<stream:features>" + mechsEl + limitsEl("1024", "2") + "</stream:features>", 1500 * time.Millisecond},
		{"a tighter idle limit of the backend's", "<stream:features>" + limitsEl("2000", "30") + "</stream:features>",
			"<stream:features>" + limitsEl("1024", "30") + "</stream:features>", 5 * time.Minute},
		{"another namespace's limits are not these", "<stream:features><limits xmlns='urn:example'/></stream:features>",
			"<stream:features><limits xmlns='urn:example'/>" + limitsEl("1024", "") + "</stream:features>", 0},
		{"empty features", "<stream:features/>", "<stream:features/>", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte("HDR" + tt.in + "TAIL")
			out := withLimits(b, 3, 3+len(tt.in), 1024, tt.idle)
			if string(out) != "HDR"+tt.want+"TAIL" {
				t.Fatalf("got  %s\nwant %s", out, "HDR"+tt.want+"TAIL")
			}
		})
	}
}

// A client reading Guard's features sees the limits Guard enforces, where
// the backend advertises looser ones or none; a tighter one is kept. The
// features after a restart are treated the same.
func TestStreamLimitsAdvertised(t *testing.T) {
	leakcheck.Check(t)
	cfg := ListenerConfig{XMLLimits: XMLLimits{MaxStanzaSize: 10000, Advertise: true}, Timeouts: Timeouts{Idle: 10 * time.Minute}}
	for _, tc := range []struct{ name, backend, client string }{
		{"none", "<stream:features>" + mechsEl + "</stream:features>",
			"<stream:features>" + mechsEl + limitsEl("10000", "600") + "</stream:features>"},
		{"larger", "<stream:features>" + mechsEl + limitsEl("262144", "3600") + "</stream:features>",
			"<stream:features>" + mechsEl + limitsEl("10000", "600") + "</stream:features>"},
		{"smaller", "<stream:features>" + mechsEl + limitsEl("5000", "120") + "</stream:features>",
			"<stream:features>" + mechsEl + limitsEl("5000", "120") + "</stream:features>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), cfg)
			c := dial(t, addr)
			write(t, c, clientHeader)
			bc := b.accept(t)
			expect(t, bc, clientHeader)
			write(t, bc, backendHeader+tc.backend)
			expect(t, c, backendHeader+tc.client)
			// Stanzas are not features: they pass unchanged.
			write(t, bc, message)
			expect(t, c, message)
			// After SASL the backend's new features are rewritten too.
			write(t, bc, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
			expect(t, c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
			write(t, c, clientHeader)
			expect(t, bc, clientHeader)
			write(t, bc, backendHeader+tc.backend)
			expect(t, c, backendHeader+tc.client)
			closeCleanly(t, c, bc)
			waitOpen(t, s, 0)
		})
	}
}
