package policy

import (
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/xmpp"
)

func ptr(s string) *string { return &s }

func TestDefaultsFollowTheDesignTable(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ev   Event
		want xmpp.Condition
	}{
		{QueueFull, "resource-constraint"},
		{QueueTimeout, "resource-constraint"},
		{RateLimited, "policy-violation"},
		{AddressLimit, "policy-violation"},
		{Denied, "policy-violation"},
		{StanzaTooLarge, "policy-violation"},
		{NotWellFormed, "not-well-formed"},
		{RestrictedXML, "restricted-xml"},
		{ProbeUnanswered, "connection-timeout"},
		{HandshakeTimeout, "connection-timeout"},
		{Shutdown, "system-shutdown"},
		{BackendRefused, "internal-server-error"},
		{BackendReset, "internal-server-error"},
		{BackendStalled, "internal-server-error"},
		{BackendGarbage, "internal-server-error"},
		{BackendClosed, "internal-server-error"},
		{HostUnknown, "host-unknown"},
		{BadNamespace, "invalid-namespace"},
		{BadVersion, "unsupported-version"},
	}
	for _, tt := range tests {
		t.Run(string(tt.ev), func(t *testing.T) {
			got := p.Decide(tt.ev, Context{})
			if got.Condition != tt.want {
				t.Errorf("Decide(%s) = %s, want %s", tt.ev, got.Condition, tt.want)
			}
			if _, ok := xmpp.ParseCondition(string(got.Condition)); !ok {
				t.Errorf("%s is not an RFC 6120 condition", got.Condition)
			}
		})
	}
	for e := range Defaults {
		if _, ok := xmpp.ParseCondition(string(Defaults[e].Condition)); !ok {
			t.Errorf("default for %s: %q is not a condition", e, Defaults[e].Condition)
		}
	}
}

func TestOverrides(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		ev      Event
		ctx     Context
		want    xmpp.StreamError
		wantErr string
	}{
		{
			name: "redirect on overload",
			cfg:  Config{SeeOtherHost: "xmpp2.example.net:5222", Overrides: map[Event]Override{QueueFull: {Condition: "see-other-host"}}},
			ev:   QueueFull,
			want: xmpp.StreamError{Condition: "see-other-host", Text: Defaults[QueueFull].Text, SeeOtherHost: "xmpp2.example.net:5222"},
		},
		{
			name: "no redirect before TLS",
			cfg:  Config{SeeOtherHost: "xmpp2.example.net", Overrides: map[Event]Override{Shutdown: {Condition: "see-other-host"}}},
			ev:   Shutdown,
			ctx:  Context{TLSPending: true},
			want: xmpp.StreamError{Condition: "system-shutdown"},
		},
		{
			name: "text replaced and removed",
			cfg:  Config{Overrides: map[Event]Override{BackendRefused: {Text: ptr("")}}},
			ev:   BackendRefused,
			want: xmpp.StreamError{Condition: "internal-server-error"},
		},
		{
			name: "other condition",
			cfg:  Config{Overrides: map[Event]Override{BackendReset: {Condition: "remote-connection-failed", Text: ptr("node down")}}},
			ev:   BackendReset,
			want: xmpp.StreamError{Condition: "remote-connection-failed", Text: "node down"},
		},
		{
			name:    "redirect needs a host",
			cfg:     Config{Overrides: map[Event]Override{QueueFull: {Condition: "see-other-host"}}},
			wantErr: "needs see_other_host",
		},
		{
			name:    "redirect only for overload and shutdown",
			cfg:     Config{SeeOtherHost: "x", Overrides: map[Event]Override{NotWellFormed: {Condition: "see-other-host"}}},
			wantErr: "only for overload and shutdown",
		},
		{
			name:    "unknown condition",
			cfg:     Config{Overrides: map[Event]Override{NotWellFormed: {Condition: "bad-stuff"}}},
			wantErr: "not an RFC 6120",
		},
		{
			name:    "unknown event",
			cfg:     Config{Overrides: map[Event]Override{"nope": {Condition: "conflict"}}},
			wantErr: `unknown event "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New() error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Decide(tt.ev, tt.ctx); got != tt.want {
				t.Fatalf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}
