package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxy"
	"github.com/guard-xmpp/guard/xmpp"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr(s string) *string { return &s }

// minimal is the smallest valid configuration.
const minimal = `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}
backend "xmpp" {
  address = "127.0.0.1:5262"
}
`

func TestParseValid(t *testing.T) {
	defaultListener := Listener{
		Name: "c2s", Address: "0.0.0.0:5222", Backend: "xmpp",
		Timeouts: proxy.Timeouts{
			Handshake: 10 * time.Second, Idle: 0, Probe: 60 * time.Second, ProbeTimeout: 30 * time.Second,
			HalfClose: 5 * time.Second,
		},
		Limits: Limits{
			XMLLimits:  proxy.XMLLimits{MaxStanzaSize: 256 * 1024, MaxHeaderSize: 4 * 1024, Advertise: true},
			AddrLimits: proxy.AddrLimits{TrackedAddresses: 100000},
		},
		TLS: TLS{Mode: proxy.TLSNone, MinVersion: "1.2"},
	}
	defaultBackend := Backend{Backend: proxy.Backend{
		Name: "xmpp", Address: "127.0.0.1:5262", ConnectTimeout: 2 * time.Second, ReplyTimeout: 5 * time.Second, Retries: 2,
		Admission: proxy.Admission{MaxStreams: 10000, QueueSize: 1000, QueueTimeout: 10 * time.Second},
		Adaptive:  &limits.AdaptiveConfig{Min: 4, Initial: 16, Tolerance: 2, Reprobe: 5 * time.Second},
	}}
	withDefaults := func(edit func(*Config)) *Config {
		c := &Config{
			Log:       Log{Level: "info", Format: "text", Connections: proxy.ConnLog{Mode: proxy.ConnLogAll, Sample: 1}},
			Admin:     Admin{Address: "127.0.0.1:9090"},
			Shutdown:  Shutdown{DrainTimeout: 25 * time.Second, Deadline: 30 * time.Second},
			Listeners: []Listener{defaultListener},
			Backends:  []Backend{defaultBackend},
		}
		if edit != nil {
			edit(c)
		}
		return c
	}

	tests := []struct {
		name string
		src  string
		want *Config
	}{
		{"minimal gets every default", minimal, withDefaults(nil)},
		{"empty blocks get defaults", minimal + `
log {}
admin {}
shutdown {}
policy {}
`, withDefaults(nil)},
		{"defaults written out are the defaults", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    handshake     = "10s"
    idle          = "0s"
    probe         = "60s"
    probe_timeout = "30s"
    half_close    = "5s"
  }
  limits {
    max_stanza_size         = "256KiB"
    max_header_size         = "4KiB"
    max_connections_per_ip  = 0
    connection_rate_per_ip  = "0/s"
    connection_burst_per_ip = 0
    tracked_addresses       = 100000
    client_bytes_per_second = "0B/s"
  }
  tls {
    mode        = "none"
    cert_file   = ""
    key_file    = ""
    alpn        = []
    min_version = "1.2"
  }
  proxy_protocol {
    trusted = []
  }
}
backend "xmpp" {
  address                = "127.0.0.1:5262"
  connect_timeout        = "2s"
  reply_timeout          = "5s"
  retries                = 2
  max_streams            = 10000
  queue_size             = 1000
  queue_timeout          = "10s"
  new_streams_per_second = 0
  new_streams_burst      = 0
  proxy_protocol         = 0
}
policy {
  see_other_host  = ""
  overload        = "resource-constraint"
  shutdown        = "system-shutdown"
  backend_failure = "internal-server-error"
  event "queue-full" {}
  event "backend-refused" { condition = "internal-server-error" }
}
`, withDefaults(nil)},
		{"every value set", `
log {
  level  = "debug"
  format = "json"
  connections = "errors"
  connections_sample = 0.5
}
admin {
  address = "[::1]:9191"
}
shutdown {
  accept_delay  = "5s"
  drain_timeout = "1m30s"
  deadline      = "100s"
}
listener "c2s" {
  address = "[::]:5222"
  backend = "prosody"
  timeouts {
    handshake     = "500ms"
    idle          = "2h"
    probe         = "90s"
    probe_timeout = "10s"
    half_close    = "1s"
  }
  limits {
    max_stanza_size         = "1MB"
    max_header_size         = "2000B"
    max_connections_per_ip  = 20
    connection_rate_per_ip  = "30/m"
    connection_burst_per_ip = 5
    tracked_addresses       = 1000
    client_bytes_per_second = "64KiB/s"
  }
}
backend "prosody" {
  address                = "prosody.internal:5262"
  connect_timeout        = "750ms"
  reply_timeout          = "3s"
  retries                = 4
  max_streams            = 5000
  queue_size             = 2000
  queue_timeout          = "30s"
  new_streams_per_second = 12.5
  new_streams_burst      = 100
  adaptive {
    enabled           = true
    min_streams       = 8
    initial_streams   = 32
    latency_tolerance = 3
    reprobe_after     = "10s"
  }
}
policy {
  see_other_host  = "xmpp2.example.net:5222"
  overload        = "see-other-host"
  shutdown        = "see-other-host"
  backend_failure = "remote-connection-failed"
  event "queue-timeout" {
    condition = "resource-constraint"
    text      = "busy"
  }
  event "backend-stalled" {
    condition = "undefined-condition"
  }
  event "denied" {
    text = ""
  }
}
`, &Config{
			Log:      Log{Level: "debug", Format: "json", Connections: proxy.ConnLog{Mode: proxy.ConnLogErrors, Sample: 0.5}},
			Admin:    Admin{Address: "[::1]:9191"},
			Shutdown: Shutdown{AcceptDelay: 5 * time.Second, DrainTimeout: 90 * time.Second, Deadline: 100 * time.Second},
			Listeners: []Listener{{
				Name: "c2s", Address: "[::]:5222", Backend: "prosody",
				Timeouts: proxy.Timeouts{
					Handshake: 500 * time.Millisecond, Idle: 2 * time.Hour, Probe: 90 * time.Second,
					ProbeTimeout: 10 * time.Second, HalfClose: time.Second,
				},
				Limits: Limits{
					XMLLimits: proxy.XMLLimits{MaxStanzaSize: 1000000, MaxHeaderSize: 2000, Advertise: true},
					AddrLimits: proxy.AddrLimits{
						MaxConnsPerIP: 20, ConnRatePerIP: 0.5, ConnBurstPerIP: 5, TrackedAddresses: 1000,
						ClientBytesPerSecond: 64 << 10,
					},
				},
				TLS: TLS{Mode: proxy.TLSNone, MinVersion: "1.2"},
			}},
			Backends: []Backend{{Backend: proxy.Backend{
				Name: "prosody", Address: "prosody.internal:5262",
				ConnectTimeout: 750 * time.Millisecond, ReplyTimeout: 3 * time.Second, Retries: 4,
				Admission: proxy.Admission{
					MaxStreams: 5000, QueueSize: 2000, QueueTimeout: 30 * time.Second,
					NewStreamsPerSecond: 12.5, NewStreamsBurst: 100,
				},
				Adaptive: &limits.AdaptiveConfig{Min: 8, Initial: 32, Tolerance: 3, Reprobe: 10 * time.Second},
			}}},
			Policy: policy.Config{
				SeeOtherHost: "xmpp2.example.net:5222",
				Overrides: map[policy.Event]policy.Override{
					policy.QueueFull:       {Condition: xmpp.SeeOtherHost},
					policy.PoolUnavailable: {Condition: xmpp.SeeOtherHost},
					policy.QueueTimeout:    {Text: ptr("busy")}, // the event block wins over overload
					policy.Shutdown:        {Condition: xmpp.SeeOtherHost},
					policy.BackendRefused:  {Condition: xmpp.RemoteConnectionFailed},
					policy.BackendReset:    {Condition: xmpp.RemoteConnectionFailed},
					policy.BackendStalled:  {Condition: xmpp.UndefinedCondition},
					policy.BackendGarbage:  {Condition: xmpp.RemoteConnectionFailed},
					policy.BackendClosed:   {Condition: xmpp.RemoteConnectionFailed},
					policy.Denied:          {Text: ptr("")},
				},
			},
		}},
		{"zero where zero has a meaning", minimal + `
admin { address = "" }
shutdown { drain_timeout = "0s" }
`, withDefaults(func(c *Config) {
			c.Admin.Address = ""
			c.Shutdown.DrainTimeout = 0
		})},
		{"adaptive admission turned off", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}
backend "xmpp" {
  address  = "127.0.0.1:5262"
  adaptive { enabled = false }
}
`, withDefaults(func(c *Config) { c.Backends[0].Adaptive = nil })},
		{"zero probe turns probes off", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts { probe = "0s" }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) { c.Listeners[0].Timeouts.Probe = 0 })},
		{"partial limits keep the other default", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits { max_header_size = "512B" }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) { c.Listeners[0].Limits.MaxHeaderSize = 512 })},
		{"sizes at their bounds, in every unit", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits {
    max_stanza_size = "16MiB"
    max_header_size = "64KiB"
  }
}
listener "c2s-small" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  limits {
    max_stanza_size = "1024B"
    max_header_size = "1KB"
  }
}
listener "c2s-mb" {
  address = "0.0.0.0:5224"
  backend = "xmpp"
  limits { max_stanza_size = "16MB" }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) {
			c.Listeners = []Listener{defaultListener, defaultListener, defaultListener}
			c.Listeners[0].Limits.MaxStanzaSize, c.Listeners[0].Limits.MaxHeaderSize = 16<<20, 64<<10
			c.Listeners[1].Name, c.Listeners[1].Address = "c2s-small", "0.0.0.0:5223"
			c.Listeners[1].Limits.MaxStanzaSize, c.Listeners[1].Limits.MaxHeaderSize = 1024, 1000
			c.Listeners[2].Name, c.Listeners[2].Address = "c2s-mb", "0.0.0.0:5224"
			c.Listeners[2].Limits.MaxStanzaSize = 16000000
		})},
		{"see_other_host as a bare domain, for shutdown only", minimal + `
policy {
  see_other_host = "xmpp2.example.net"
  shutdown       = "see-other-host"
}
`, withDefaults(func(c *Config) {
			c.Policy = policy.Config{
				SeeOtherHost: "xmpp2.example.net",
				Overrides:    map[policy.Event]policy.Override{policy.Shutdown: {Condition: xmpp.SeeOtherHost}},
			}
		})},
		{"an event block may redirect and set any condition", minimal + `
policy {
  see_other_host = "node-2.xmpp.svc.cluster.local:5222"
  event "queue-timeout" { condition = "see-other-host" }
  event "rate-limited" {
    condition = "policy-violation"
    text      = "slow down, please"
  }
  event "backend-closed" { condition = "reset" }
}
`, withDefaults(func(c *Config) {
			c.Policy = policy.Config{
				SeeOtherHost: "node-2.xmpp.svc.cluster.local:5222",
				Overrides: map[policy.Event]policy.Override{
					policy.QueueTimeout:  {Condition: xmpp.SeeOtherHost},
					policy.RateLimited:   {Text: ptr("slow down, please")},
					policy.BackendClosed: {Condition: xmpp.Reset},
				},
			}
		})},
		{"partial timeouts keep the other defaults", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts { idle = "30m" }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) { c.Listeners[0].Timeouts.Idle = 30 * time.Minute })},
		{"listeners share a backend, in file order; port 0 and an empty host", `
listener "c2s" {
  address = ":0"
  backend = "xmpp"
}
listener "test" {
  address = "127.0.0.1:0"
  backend = "xmpp"
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) {
			c.Listeners = []Listener{defaultListener, defaultListener}
			c.Listeners[0].Address = ":0"
			c.Listeners[1].Name, c.Listeners[1].Address = "test", "127.0.0.1:0"
		})},
		{"zero where zero has a meaning: admission and per-address limits", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits {
    max_connections_per_ip  = 0
    connection_rate_per_ip  = "0/h"
    client_bytes_per_second = "0B/s"
  }
}
backend "xmpp" {
  address     = "127.0.0.1:5262"
  max_streams = 0
}
`, withDefaults(func(c *Config) { c.Backends[0].Admission.MaxStreams = 0 })},
		{"queue_size 0 refuses at once", minimal + "backend \"spare\" {\n  address    = \"127.0.0.1:5263\"\n  queue_size = 0\n}\n" +
			"listener \"spare\" {\n  address = \"0.0.0.0:5223\"\n  backend = \"spare\"\n}\n",
			withDefaults(func(c *Config) {
				c.Listeners = append(c.Listeners, c.Listeners[0])
				c.Listeners[1].Name, c.Listeners[1].Address, c.Listeners[1].Backend = "spare", "0.0.0.0:5223", "spare"
				c.Backends = append(c.Backends, c.Backends[0])
				c.Backends[1].Name, c.Backends[1].Address, c.Backends[1].Admission.QueueSize = "spare", "127.0.0.1:5263", 0
			})},
		{"rates in every unit, with their default bursts", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits { connection_rate_per_ip = "5/s" }
}
listener "c2s-m" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  limits { connection_rate_per_ip = "90/m" }
}
listener "c2s-h" {
  address = "0.0.0.0:5224"
  backend = "xmpp"
  limits {
    connection_rate_per_ip  = "0.5/h"
    connection_burst_per_ip = 3
  }
}
backend "xmpp" {
  address                = "127.0.0.1:5262"
  new_streams_per_second = 0.25
}
backend "b" {
  address                = "127.0.0.1:5263"
  new_streams_per_second = 200.5
}
listener "b" {
  address = "0.0.0.0:5225"
  backend = "b"
}
`, withDefaults(func(c *Config) {
			c.Listeners = []Listener{defaultListener, defaultListener, defaultListener, defaultListener}
			c.Listeners[0].Limits.ConnRatePerIP, c.Listeners[0].Limits.ConnBurstPerIP = 5, 5
			c.Listeners[1].Name, c.Listeners[1].Address = "c2s-m", "0.0.0.0:5223"
			c.Listeners[1].Limits.ConnRatePerIP, c.Listeners[1].Limits.ConnBurstPerIP = 1.5, 2
			c.Listeners[2].Name, c.Listeners[2].Address = "c2s-h", "0.0.0.0:5224"
			c.Listeners[2].Limits.ConnRatePerIP, c.Listeners[2].Limits.ConnBurstPerIP = 0.5/3600, 3
			c.Listeners[3].Name, c.Listeners[3].Address, c.Listeners[3].Backend = "b", "0.0.0.0:5225", "b"
			c.Backends = []Backend{defaultBackend, defaultBackend}
			c.Backends[0].Admission.NewStreamsPerSecond, c.Backends[0].Admission.NewStreamsBurst = 0.25, 1
			c.Backends[1].Name, c.Backends[1].Address = "b", "127.0.0.1:5263"
			c.Backends[1].Admission.NewStreamsPerSecond, c.Backends[1].Admission.NewStreamsBurst = 200.5, 201
		})},
		{"counts and rates at their bounds", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits {
    max_connections_per_ip  = 1000000000
    connection_rate_per_ip  = "1000000/s"
    tracked_addresses       = 10000000
    client_bytes_per_second = "1024MiB/s"
  }
}
listener "c2s-low" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  limits {
    tracked_addresses       = 1e3
    client_bytes_per_second = "1KiB/s"
  }
}
backend "xmpp" {
  address                = "127.0.0.1:5262"
  max_streams            = 1000000000
  queue_size             = 1000000000
  new_streams_per_second = 1000000
  new_streams_burst      = 1
}
`, withDefaults(func(c *Config) {
			c.Listeners = []Listener{defaultListener, defaultListener}
			c.Listeners[0].Limits.MaxConnsPerIP = 1000000000
			c.Listeners[0].Limits.ConnRatePerIP, c.Listeners[0].Limits.ConnBurstPerIP = 1000000, 1000000
			c.Listeners[0].Limits.TrackedAddresses = 10000000
			c.Listeners[0].Limits.ClientBytesPerSecond = 1 << 30
			c.Listeners[1].Name, c.Listeners[1].Address = "c2s-low", "0.0.0.0:5223"
			c.Listeners[1].Limits.TrackedAddresses = 1000
			c.Listeners[1].Limits.ClientBytesPerSecond = 1024
			c.Backends[0].Admission.MaxStreams, c.Backends[0].Admission.QueueSize = 1000000000, 1000000000
			c.Backends[0].Admission.NewStreamsPerSecond, c.Backends[0].Admission.NewStreamsBurst = 1000000, 1
		})},
		{"pool, health check and routes", `
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  route "Chat.Example.net" { backend = "chat" }
  route "example.org" { backend = "xmpp" }
}
backend "xmpp" {
  address = "127.0.0.1:5262"
  health_check { interval = "5s" }
}
backend "chat" {
  node "10.0.0.1:5262" { max_streams = 2500 }
  node "[2001:db8::2]:5262" {}
  node "openfire-2.internal:5262" { max_streams = 0 }
  health_check {
    interval = "10s"
    timeout  = "9s"
    domain   = "chat.example.net"
  }
  tls {}
}
`, withDefaults(func(c *Config) {
			c.Listeners[0].Routes = []Route{{Domain: "Chat.Example.net", Backend: "chat"}, {Domain: "example.org", Backend: "xmpp"}}
			c.Backends[0].Health = proxy.HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, Domain: "localhost"}
			chat := defaultBackend
			chat.Name, chat.Address = "chat", ""
			chat.Nodes = []proxy.Node{{Address: "10.0.0.1:5262", MaxStreams: 2500}, {Address: "[2001:db8::2]:5262"}, {Address: "openfire-2.internal:5262"}}
			chat.Health = proxy.HealthCheck{Interval: 10 * time.Second, Timeout: 9 * time.Second, Domain: "chat.example.net"}
			chat.TLS = &BackendTLS{ServerName: "10.0.0.1", MinVersion: "1.2"}
			c.Backends = append(c.Backends, chat)
		})},
		{"routes without a listener backend", `
listener "c2s" {
  address = "0.0.0.0:5222"
  route "example.net" { backend = "xmpp" }
}
backend "xmpp" { address = "127.0.0.1:5262" }
`, withDefaults(func(c *Config) {
			c.Listeners[0].Backend = ""
			c.Listeners[0].Routes = []Route{{Domain: "example.net", Backend: "xmpp"}}
		})},
		{"null means the default", `
log { level = null }
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits { max_stanza_size = null }
}
backend "xmpp" { address = "127.0.0.1:5262" }
policy {
  overload = null
  event "denied" { text = null }
}
`, withDefaults(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := policy.New(got.Policy); err != nil {
				t.Errorf("policy.New: %v", err)
			}
			if w := got.Warnings(); w != nil {
				t.Errorf("Warnings: %v", w)
			}
			got.warnings = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// diagLines renders diags as "LINE,COL Summary" (with "warning: " for
// warnings), which is what the rule tests compare.
func diagLines(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		s := d.Summary
		if d.Severity == hcl.DiagWarning {
			s = "warning: " + s
		}
		if d.Subject != nil {
			s = fmt.Sprintf("%d,%d %s", d.Subject.Start.Line, d.Subject.Start.Column, s)
		}
		out = append(out, s)
	}
	return out
}

func TestParseRules(t *testing.T) {
	const backend = "\nbackend \"xmpp\" { address = \"127.0.0.1:5262\" }\n"
	// listener returns a listener block whose first line is line 1.
	listener := func(body string) string {
		return "listener \"c2s\" {\n" + body + "\n}\n"
	}
	tests := []struct {
		name   string
		src    string
		want   []string // diagLines
		detail string   // a substring of the first diagnostic's detail
	}{
		{"unknown argument", listener(`address = "0.0.0.0:5222"
bakend = "xmpp"`) + backend,
			[]string{"1,1 Missing required argument", "3,1 Unsupported argument"},
			`has no backend`},
		{"unknown argument suggestion", listener(`address = "0.0.0.0:5222"
backend = "xmpp"
timeout { idle = "1s" }
bakend = "xmpp"`) + backend,
			[]string{"4,1 Unsupported block type", "5,1 Unsupported argument"},
			`Did you mean "timeouts"? A listener block takes the arguments "address", "backend", "stream" and the blocks "timeouts", "limits", "tls", "proxy_protocol", "websocket", "route".`},
		{"unknown block", "cache {}\n" + minimal,
			[]string{"1,1 Unsupported block type"},
			`The top level of the file takes the blocks "log", "admin", "shutdown", "listener", "backend", "policy", "acme".`},
		{"argument at the top level", "level = \"info\"\n" + minimal,
			[]string{"1,1 Unsupported argument"}, `The top level of the file takes the blocks`},
		{"missing address and backend", listener("") + backend,
			[]string{"1,1 Missing required argument", "1,1 Missing required argument"},
			`listener "c2s" has no address. Add one, e.g. address = "0.0.0.0:5222".`},
		{"missing backend address", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {}\n",
			[]string{"5,1 Missing required argument"}, `backend "xmpp" has no address.`},
		{"missing label", "listener {\n}\n" + minimal,
			[]string{"1,10 Missing name for listener"}, ""},
		{"bad name", "listener \"c 2s\" {\naddress = \":5222\"\nbackend = \"xmpp\"\n}\n" + backend,
			[]string{"1,10 Invalid listener name"}, `Use letters, digits, "-", "_" and "." only`},
		{"bad duration", listener(`address = ":5222"
backend = "xmpp"
timeouts { handshake = "10 s" }`) + backend,
			[]string{"4,24 Invalid duration"},
			`"10 s" is not a duration. Use a number with a unit: "500ms", "10s", "2m".`},
		{"duration without a unit", listener(`address = ":5222"
backend = "xmpp"
timeouts { idle = 30 }`) + backend,
			[]string{"4,19 Invalid duration"}, `A plain number has no unit: for seconds, write "30s".`},
		{"negative duration where zero is off", listener(`address = ":5222"
backend = "xmpp"
timeouts { idle = "-1s" }`) + backend,
			[]string{"4,19 Negative duration"}, `Use "0s" to turn the idle timeout off`},
		{"negative duration", "shutdown { drain_timeout = \"-2s\" }\n" + minimal,
			[]string{"1,28 Negative duration"}, `Use "0s" to close open streams at once`},
		{"zero where a duration must be positive", listener(`address = ":5222"
backend = "xmpp"
timeouts {
  handshake = "0s"
  half_close = "0"
}`) + backend,
			[]string{"5,15 Duration must be positive", "6,16 Duration must be positive"},
			`handshake must be greater than zero.`},
		{"zero probe timeout", listener(`address = ":5222"
backend = "xmpp"
timeouts {
  probe         = "0s"
  probe_timeout = "0s"
}`) + backend,
			[]string{"6,19 Duration must be positive"}, `probe_timeout must be greater than zero.`},
		{"negative probe", listener(`address = ":5222"
backend = "xmpp"
timeouts { probe = "-60s" }`) + backend,
			[]string{"4,20 Negative duration"}, `Use "0s" to send no keepalives, or a positive duration such as "60s".`},
		{"zero reply timeout", listener(`address = "0.0.0.0:5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nreply_timeout = \"0s\"\n}\n",
			[]string{"7,17 Duration must be positive"}, `reply_timeout must be greater than zero. Use a positive duration such as "5s"`},
		{"adaptive floor of zero", listener(`address = "0.0.0.0:5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nadaptive {\nmin_streams = 0\n}\n}\n",
			[]string{"8,15 Number out of range"}, `min_streams = 0 is less than the smallest allowed, 1. Use a whole number from 1 to 1000000000, such as 16, or leave it out for the default, 4.`},
		{"size without a unit", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = 262144 }`) + backend,
			[]string{"4,28 Invalid size"}, `"262144" has no unit. For bytes, write "262144B", or "256KiB".`},
		{"size without a unit, not whole KiB", listener(`address = ":5222"
backend = "xmpp"
limits { max_header_size = "1000" }`) + backend,
			[]string{"4,28 Invalid size"}, `"1000" has no unit. For bytes, write "1000B". Use a whole number with a unit`},
		{"size unit in the wrong case", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = "256kib" }`) + backend,
			[]string{"4,28 Invalid size"}, `"kib" is not a unit. Units are case-sensitive: did you mean "256KiB"?`},
		{"size with a space", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = "256 KiB" }`) + backend,
			[]string{"4,28 Invalid size"}, `Write the number and the unit without a space: "256KiB".`},
		{"size in an unknown unit", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = "1GiB" }`) + backend,
			[]string{"4,28 Invalid size"}, `"1GiB" is not a size: "GiB" is not a unit. Use a whole number with a unit, B, KB, KiB, MB or MiB`},
		{"fractional size", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = "0.5MiB" }`) + backend,
			[]string{"4,28 Invalid size"}, `is not a unit`},
		{"size that is no number", listener(`address = ":5222"
backend = "xmpp"
limits { max_stanza_size = "big" }`) + backend,
			[]string{"4,28 Invalid size"}, `"big" is not a size. Use a whole number with a unit`},
		{"sizes out of range", listener(`address = ":5222"
backend = "xmpp"
limits {
  max_stanza_size = "17MB"
  max_header_size = "511B"
}`) + backend,
			[]string{"5,21 Size out of range", "6,21 Size out of range"},
			`max_stanza_size = "17MB" (17000000 bytes) is more than the largest allowed, 16MiB (16777216 bytes). ` +
				`Use a size from 1KiB to 16MiB, such as "256KiB", or leave it out for the default, 256KiB.`},
		{"size below the minimum", listener(`address = ":5222"
backend = "xmpp"
limits { max_header_size = "511B" }`) + backend,
			[]string{"4,28 Size out of range"},
			`max_header_size = "511B" is less than the smallest allowed, 512B. Use a size from 512B to 64KiB`},
		{"huge and negative sizes", listener(`address = ":5222"
backend = "xmpp"
limits {
  max_stanza_size = "99999999999999999999999MiB"
  max_header_size = "-1KiB"
}`) + backend,
			[]string{"5,21 Size out of range", "6,21 Size out of range"},
			`max_stanza_size = "99999999999999999999999MiB" is more than the largest allowed`},
		{"duplicate limits block", listener(`address = ":5222"
backend = "xmpp"
limits {}
limits {}`) + backend,
			[]string{"5,1 Duplicate limits block"}, `Only one limits block is allowed`},
		{"unknown limit", listener(`address = ":5222"
backend = "xmpp"
limits { max_connections = 10 }`) + backend,
			[]string{"4,10 Unsupported argument"}, `A limits block takes the arguments "max_stanza_size", "max_header_size", "max_depth", "advertise", ` +
				`"max_connections_per_ip", "connection_rate_per_ip", "connection_burst_per_ip", "tracked_addresses", "client_bytes_per_second", "deny", "max_streams_per_domain", "stream_rate_per_domain", "stream_burst_per_domain".`},
		{"deny with host bits", listener(`address = ":5222"
backend = "xmpp"
limits { deny = ["203.0.113.7/24"] }`) + backend,
			[]string{"4,18 Invalid denied address"}, `has host bits set`},
		{"deny everything", listener(`address = ":5222"
backend = "xmpp"
limits { deny = ["192.0.2.1", "0.0.0.0/0"] }`) + backend,
			[]string{"4,31 Every address denied"}, `no client could connect`},
		{"rate in a unit of time that is not one", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "5/min" }`) + backend,
			[]string{"4,35 Invalid rate"}, `"5/min" is not a rate. Did you mean "5/m"? Write a number, a slash and a unit of time, s (a second), m (a minute) or h (an hour), without spaces: "5/s", "30/m", "100/h"; "0/s" for no limit.`},
		{"rate with a space", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "5 /s" }`) + backend,
			[]string{"4,35 Invalid rate"}, `Did you mean "5/s"?`},
		{"rate unit in capitals", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "5/S" }`) + backend,
			[]string{"4,35 Invalid rate"}, `Did you mean "5/s"?`},
		{"rate per day", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "5/d" }`) + backend,
			[]string{"4,35 Invalid rate"}, `"5/d" is not a rate: "d" is not a unit of time.`},
		{"rate without a unit", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = 5 }`) + backend,
			[]string{"4,35 Invalid rate"}, `"5" has no unit of time. For a number a second, write "5/s".`},
		{"rate that is no number", listener(`address = ":5222"
backend = "xmpp"
limits {
  connection_rate_per_ip = "1e3/s"
  connection_burst_per_ip = 10
}`) + backend,
			[]string{"5,28 Invalid rate"}, `"1e3/s" is not a rate: "1e3" is not a number.`},
		{"rate that is no rate", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "fast" }`) + backend,
			[]string{"4,35 Invalid rate"}, `"fast" is not a rate. Write a number`},
		{"negative and huge rates", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "-5/s" }`) + strings.Replace(listener(`address = ":5223"
backend = "xmpp"
limits { connection_rate_per_ip = "99999999999999999999999/h" }`), "c2s", "c2s-2", 1) + backend,
			[]string{"4,35 Negative rate", "9,35 Rate out of range"},
			`connection_rate_per_ip = "-5/s" is negative. Use "0/s" for no limit, or a positive rate such as "5/s".`},
		{"rate above the maximum", listener(`address = ":5222"
backend = "xmpp"
limits { connection_rate_per_ip = "60000001/m" }`) + backend,
			[]string{"4,35 Rate out of range"}, `is more than the largest allowed, 1000000/s.`},
		{"negative and fractional counts", listener(`address = ":5222"
backend = "xmpp"
limits {
  max_connections_per_ip  = -1
  connection_burst_per_ip = 2.5
}`) + backend,
			[]string{"5,29 Negative number", "6,29 Invalid number"},
			`max_connections_per_ip = -1 is negative. Use 0 to set no cap, or a positive number such as 20.`},
		{"count in quotes", listener(`address = ":5222"
backend = "xmpp"
limits { max_connections_per_ip = "20" }`) + backend,
			[]string{"4,35 Incorrect argument type"},
			`max_connections_per_ip must be a number, written without quotes: max_connections_per_ip = 20.`},
		{"count that is no number", listener(`address = ":5222"
backend = "xmpp"
limits { max_connections_per_ip = "many" }`) + backend,
			[]string{"4,35 Incorrect argument type"}, `must be a number, not a string, e.g. max_connections_per_ip = 20.`},
		{"count that is a bool", listener(`address = ":5222"
backend = "xmpp"
limits { max_connections_per_ip = true }`) + backend,
			[]string{"4,35 Incorrect argument type"}, `not true or false`},
		{"count as a bare word", listener(`address = ":5222"
backend = "xmpp"
limits { max_connections_per_ip = many }`) + backend,
			[]string{"4,35 Variables not allowed"}, ``},
		{"tracked_addresses out of range", listener(`address = ":5222"
backend = "xmpp"
limits { tracked_addresses = 999 }`) + strings.Replace(listener(`address = ":5223"
backend = "xmpp"
limits { tracked_addresses = 1e30 }`), "c2s", "c2s-2", 1) + backend,
			[]string{"4,30 Number out of range", "9,30 Number out of range"},
			`tracked_addresses = 999 is less than the smallest allowed, 1000. Use a whole number from 1000 to 10000000, such as 100000, or leave it out for the default, 100000.`},
		{"byte rate without /s", listener(`address = ":5222"
backend = "xmpp"
limits { client_bytes_per_second = "64KiB" }`) + backend,
			[]string{"4,36 Invalid byte rate"}, `"64KiB" has no "/s". A byte rate is a size a second: write "64KiB/s".`},
		{"byte rate as a plain number", listener(`address = ":5222"
backend = "xmpp"
limits { client_bytes_per_second = 65536 }`) + backend,
			[]string{"4,36 Invalid byte rate"}, `"65536" has no unit and no "/s". For bytes a second, write "65536B/s", or "64KiB/s".`},
		{"byte rate per minute", listener(`address = ":5222"
backend = "xmpp"
limits { client_bytes_per_second = "64KiB/m" }`) + backend,
			[]string{"4,36 Invalid byte rate"}, `the rate is per second only, not per "m". Write a size a second, e.g. "64KiB/s".`},
		{"byte rate with a bad size", listener(`address = ":5222"
backend = "xmpp"
limits { client_bytes_per_second = "64kib/s" }`) + backend,
			[]string{"4,36 Invalid size"}, `Units are case-sensitive: did you mean "64KiB/s"? Use a whole number with a unit, B, KB, KiB, MB or MiB (1KB = 1000 bytes, 1KiB = 1024): "512B/s", "4KiB/s", "256KiB/s".`},
		{"byte rate out of range", listener(`address = ":5222"
backend = "xmpp"
limits { client_bytes_per_second = "512B/s" }`) + strings.Replace(listener(`address = ":5223"
backend = "xmpp"
limits { client_bytes_per_second = "2048MiB/s" }`), "c2s", "c2s-2", 1) + backend,
			[]string{"4,36 Size out of range", "9,36 Size out of range"},
			`client_bytes_per_second = "512B/s" is less than the smallest allowed, 1KiB/s (1024 bytes). Use a size from 1KiB/s to 1024MiB/s, such as "64KiB/s", or "0B/s" to set no limit.`},
		{"negative admission counts", minimal[:len(minimal)-3] + `
  max_streams       = -1
  queue_size        = -5
  new_streams_burst = -1
}
`, []string{"8,23 Negative number", "9,23 Negative number", "10,23 Negative number"},
			`max_streams = -1 is negative. Use 0 to set no cap, or a positive number such as 5000.`},
		{"queue_size 0 in words", minimal[:len(minimal)-3] + `
  queue_size = -1
}
`, []string{"8,16 Negative number"}, `Use 0 to refuse at once when every stream slot is taken`},
		{"zero queue timeout", minimal[:len(minimal)-3] + `
  queue_timeout = "0s"
}
`, []string{"8,19 Duration must be positive"}, `queue_timeout must be greater than zero.`},
		{"bad new_streams_per_second", minimal[:len(minimal)-3] + `
  new_streams_per_second = "10"
}
backend "b" {
  address                = "127.0.0.1:5263"
  new_streams_per_second = -0.5
}
backend "c" {
  address                = "127.0.0.1:5264"
  new_streams_per_second = 2e6
}
`, []string{"8,28 Incorrect argument type", "10,1 warning: Unused backend", "12,28 Negative number",
			"14,1 warning: Unused backend", "16,28 Number out of range"},
			`new_streams_per_second must be a number, written without quotes: new_streams_per_second = 10.`},
		{"new_streams_per_second above the maximum", minimal[:len(minimal)-3] + `
  new_streams_per_second = 1000000.5
}
`, []string{"8,28 Number out of range"},
			`new_streams_per_second = 1000000.5 is more than the largest allowed, 1000000. Use a number from 0 to 1000000, such as 200, or 0 to set no limit.`},
		{"duplicate policy block", "policy {}\npolicy {}\n" + minimal,
			[]string{"2,1 Duplicate policy block"}, ""},
		{"unknown event", "policy {\n  event \"backend-refsed\" {}\n}\n" + minimal,
			[]string{"2,9 Unknown event"}, `"backend-refsed" is not an event. Did you mean "backend-refused"? The events are "address-limit", "backend-closed",`},
		{"event without a name", "policy {\n  event {}\n}\n" + minimal,
			[]string{"2,9 Missing name for event"}, `Write it as event "NAME" {}, with the block's content between the braces.`},
		{"duplicate event", "policy {\n  event \"denied\" {}\n  event \"denied\" { text = \"x\" }\n}\n" + minimal,
			[]string{"3,3 Duplicate event name"}, `An event named "denied" is already defined at test.hcl:2:3.`},
		{"unknown event argument", "policy {\n  event \"denied\" { reason = \"x\" }\n}\n" + minimal,
			[]string{"2,20 Unsupported argument"}, `An event block takes the arguments "condition", "text".`},
		{"unknown condition", "policy {\n  event \"backend-reset\" { condition = \"remote-conection-failed\" }\n}\n" + minimal,
			[]string{"2,39 Unknown condition"},
			`"remote-conection-failed" is not a stream error condition of RFC 6120. Did you mean "remote-connection-failed"? Use one of "bad-format",`},
		{"condition outside its group", "policy {\n  overload = \"internal-server-error\"\n  backend_failure = \"see-other-host\"\n}\n" + minimal,
			[]string{"2,14 Invalid condition for overload", "3,21 Invalid condition for backend_failure"},
			`"internal-server-error" is not a condition for overload. Use one of "resource-constraint", "see-other-host"; the default is "resource-constraint".`},
		{"condition misspelt", "policy {\n  shutdown = \"system_shutdown\"\n}\n" + minimal,
			[]string{"2,14 Invalid condition for shutdown"}, `Did you mean "system-shutdown"?`},
		{"redirect without see_other_host", "policy {\n  overload = \"see-other-host\"\n  event \"shutdown\" { condition = \"see-other-host\" }\n}\n" + minimal,
			[]string{"2,14 Missing see_other_host", "3,34 Missing see_other_host"},
			`see-other-host sends the client to another node, but the policy block does not say which. Add see_other_host = "DOMAIN[:PORT]" to it`},
		{"redirect with an empty see_other_host", "policy {\n  see_other_host = \"\"\n  shutdown = \"see-other-host\"\n}\n" + minimal,
			[]string{"3,14 Missing see_other_host"}, `but see_other_host is empty.`},
		{"redirect for an event that cannot redirect", "policy {\n  see_other_host = \"x.example\"\n  shutdown = \"see-other-host\"\n  event \"backend-refused\" { condition = \"see-other-host\" }\n}\n" + minimal,
			[]string{"4,41 Redirect not allowed"}, `not for event "backend-refused". It is allowed for "queue-full", "queue-timeout", "pool-unavailable", "shutdown".`},
		{"text that XML cannot carry", "policy {\n  event \"denied\" { text = \"bell\\u0007\" }\n}\n" + minimal,
			[]string{"2,27 Invalid text"}, `The text holds U+0007 at byte 4, which XML does not allow`},
		{"see_other_host with a scheme", "policy {\n  see_other_host = \"xmpp://x.example\"\n  overload = \"see-other-host\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `write no scheme`},
		{"see_other_host with a bad port", "policy {\n  see_other_host = \"x.example:xmpp\"\n  overload = \"see-other-host\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `the port "xmpp" is not a number from 1 to 65535`},
		{"see_other_host port 0", "policy {\n  see_other_host = \"x.example:0\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `the port "0" is not a number`},
		{"see_other_host as an IP address", "policy {\n  see_other_host = \"[::1]:5222\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `"::1" is an IP address`},
		{"see_other_host as an IPv4 address", "policy {\n  see_other_host = \"10.0.0.2\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `is an IP address`},
		{"see_other_host as a list of hosts", "policy {\n  see_other_host = \"a.example:5222,b.example:5222\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `is not DOMAIN or DOMAIN:PORT: too many colons in address.`},
		{"see_other_host with bad labels", "policy {\n  see_other_host = \"xmpp_2..example\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `the label "xmpp_2" holds characters other than letters, digits and "-"`},
		{"see_other_host without a domain", "policy {\n  see_other_host = \":5222\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `the domain is missing`},
		{"see_other_host ending in a number", "policy {\n  see_other_host = \"node.42\"\n}\n" + minimal,
			[]string{"2,20 Invalid see_other_host"}, `the last label, "42", is all digits, which no domain's is`},
		{"zero connect timeout", minimal + "backend \"b\" {\naddress = \"h:1\"\nconnect_timeout = \"0s\"\n}\n",
			[]string{"9,1 warning: Unused backend", "11,19 Duration must be positive"}, ""},
		{"address without port", listener(`address = "0.0.0.0"
backend = "xmpp"`) + backend,
			[]string{"2,11 Invalid address"}, `"0.0.0.0" is not HOST:PORT (missing port in address).`},
		{"IPv6 address without brackets", listener(`address = "::1:5222"
backend = "xmpp"`) + backend,
			[]string{"2,11 Invalid address"}, `too many colons`},
		{"named port", listener(`address = "0.0.0.0:xmpp-client"
backend = "xmpp"`) + backend,
			[]string{"2,11 Invalid port"}, `is not a port number. Use a number from 1 to 65535 (0 picks a free port, for tests)`},
		{"negative port", listener(`address = "0.0.0.0:-1"
backend = "xmpp"`) + backend,
			[]string{"2,11 Invalid port"}, ""},
		{"port out of range", listener(`address = "0.0.0.0:65536"
backend = "xmpp"`) + backend,
			[]string{"2,11 Invalid port"}, `out of range`},
		{"backend port 0", listener(`address = "0.0.0.0:5222"
backend = "xmpp"`) + "backend \"xmpp\" { address = \"127.0.0.1:0\" }\n",
			[]string{"5,28 Invalid port"}, `Use a number from 1 to 65535.`},
		{"backend without host", listener(`address = "0.0.0.0:5222"
backend = "xmpp"`) + "backend \"xmpp\" { address = \":5262\" }\n",
			[]string{"5,28 Missing host"}, ""},
		{"bad admin address", "admin { address = \"9090\" }\n" + minimal,
			[]string{"1,19 Invalid address"}, `Use "" to turn it off.`},
		{"dangling backend", listener(`address = "0.0.0.0:5222"
backend = "xmp"`) + backend,
			[]string{"3,11 Unknown backend", "6,1 warning: Unused backend"},
			`listener "c2s" names backend "xmp", but no backend block has that name. Did you mean "xmpp"? Defined backends: "xmpp".`},
		{"empty backend name", listener(`address = "0.0.0.0:5222"
backend = ""`) + backend,
			[]string{"3,11 Empty backend name"}, `Name a backend block`},
		{"no backend at all", listener(`address = "0.0.0.0:5222"
backend = "xmpp"`),
			[]string{"3,11 Unknown backend"}, `No backend is defined: add one, e.g. backend "xmpp"`},
		{"duplicate listener", minimal + listener(`address = "0.0.0.0:5223"
backend = "xmpp"`),
			[]string{"9,1 Duplicate listener name"}, `A listener named "c2s" is already defined at test.hcl:2:1.`},
		{"duplicate backend", minimal + "backend \"xmpp\" { address = \"h:1\" }\n",
			[]string{"9,1 Duplicate backend name"}, `already defined at test.hcl:6:1`},
		{"duplicate log block", "log {}\nlog {}\n" + minimal,
			[]string{"2,1 Duplicate log block"}, `Only one log block is allowed, and one is already defined at test.hcl:1:1.`},
		{"duplicate listen address", minimal + "listener \"other\" {\naddress = \"0.0.0.0:5222\"\nbackend = \"xmpp\"\n}\n",
			[]string{"10,11 Duplicate listen address"}, `listener "other" listens on "0.0.0.0:5222", which listener "c2s" already uses (at test.hcl:3:13). Give each one its own port, e.g. address = "0.0.0.0:5223".`},
		{"listener on the default admin address", listener(`address = "127.0.0.1:9090"
backend = "xmpp"`) + backend,
			[]string{"2,11 Duplicate listen address"}, `which the admin endpoint already uses (by default). Give each one its own port, e.g. address = "127.0.0.1:9091".`},
		{"no listener", backend,
			[]string{"1,1 No listener"}, `Guard needs at least one listener block`},
		{"empty file", "",
			[]string{"1,1 No listener"}, ""},
		{"bad log level", "log { level = \"verbose\" }\n" + minimal,
			[]string{"1,15 Invalid log level"},
			`"verbose" is not a log level. Use one of "trace", "debug", "info", "warn", "error"; the default is "info".`},
		{"log format in capitals", "log { format = \"JSON\" }\n" + minimal,
			[]string{"1,16 Invalid log format"}, `Did you mean "json"?`},
		{"unquoted word", "log { level = debug }\n" + minimal,
			[]string{"1,15 Variables not allowed"}, `put it in quotes: level = "debug".`},
		{"list instead of string", "log { level = [\"debug\"] }\n" + minimal,
			[]string{"1,15 Incorrect argument type"}, `level must be a string in quotes, not a list, e.g. level = "info".`},
		{"object instead of string", "log { level = { a = 1 } }\n" + minimal,
			[]string{"1,15 Incorrect argument type"}, `not an object`},
		{"label on a single block", "log \"x\" {}\n" + minimal,
			[]string{"1,5 Extraneous label for log"}, `Write it as log {}, with the block's content between the braces.`},
		{"two labels", "backend \"a\" \"b\" { address = \"h:1\" }\n" + minimal,
			[]string{"1,13 Extraneous label for backend"}, `Write it as backend "NAME" {}, with the block's content between the braces.`},
		{"syntax error stops before the shape", "listener \"c2s\" {\nbogus = 1\n",
			[]string{"1,16 Unclosed configuration block"}, ""},
		{"all errors in one pass", `log { level = "x" }
log { format = "y" }
listener "a" {
  address = "nope"
  backend = "b"
  timeouts { handshake = "1 s" }
}
listener "a" {}
backend "c" { address = "h:0" }
`, []string{
			"1,15 Invalid log level",
			"2,1 Duplicate log block",
			"4,13 Invalid address",
			"5,13 Unknown backend",
			"6,26 Invalid duration",
			"8,1 Duplicate listener name",
			"8,1 Missing required argument",
			"8,1 Missing required argument",
			"9,25 Invalid port",
		}, ""},
		{"address and nodes", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nnode \"h:2\" {}\n}\n",
			[]string{"5,1 Both address and node blocks"},
			`backend "xmpp" has an address (at test.hcl:6:1) and 1 node block: keep one of the two. Keep address for a single server, or the node blocks for a pool and remove address; to keep its server in the pool, make it a node block too: node "h:1" {}.`},
		{"neither address nor nodes", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\nhealth_check { interval = \"5s\" }\n}\n",
			[]string{"5,1 Missing required argument"}, `or for a pool of servers one node block each, e.g. node "10.0.0.1:5262" {}.`},
		{"address set to null", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" { address = null }\n",
			[]string{"5,1 Missing required argument"}, `backend "xmpp" has no address.`},
		{"listener backend set to null", listener(`address = ":5222"
backend = null`) + backend,
			[]string{"1,1 Missing required argument"}, `listener "c2s" has no backend.`},
		{"bad node addresses", listener(`address = ":5222"
backend = "xmpp"`) + `backend "xmpp" {
node "h" {}
node ":5262" {}
node "h:0" {}
node "H:5262" { max_streams = -1 }
node "h:5262" {}
node "[::1]:5262" {}
node "[0::1]:5262" {}
}
`,
			[]string{"6,6 Invalid address", "7,6 Missing host", "8,6 Invalid port", "9,31 Negative number",
				"10,1 Duplicate node", "12,1 Duplicate node"},
			`"h" is not HOST:PORT (missing port in address). Write it as host, colon, port, e.g. "10.0.0.1:5262"`},
		{"node without a label", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\nnode {}\n}\n",
			[]string{"6,6 Missing address for node"}, `Write it as node "ADDRESS" {}, with the block's content between the braces.`},
		{"route without a label", listener(`address = ":5222"
route {
  backend = "xmpp"
}`) + backend,
			[]string{"3,7 Missing domain for route"}, `Write it as route "DOMAIN" {}, with the block's content between the braces.`},
		{"health check", listener(`address = ":5222"
backend = "xmpp"`) + `backend "xmpp" {
address = "h:1"
health_check {
  timeout = "0s"
  domain  = "*.example.net"
  port    = 5222
}
}
`,
			[]string{"7,1 Missing required argument", "8,13 Duration must be positive", "9,13 Invalid domain", "10,3 Unsupported argument"},
			`health_check has no interval. Add one, e.g. interval = "5s".`},
		{"health check interval zero", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nhealth_check { interval = \"0s\" }\n}\n",
			[]string{"7,27 Duration must be positive"}, `interval must be greater than zero. Use a positive duration such as "5s".`},
		{"health check timeout not below interval", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nhealth_check {\ninterval = \"3s\"\ntimeout = \"3s\"\n}\n}\n",
			[]string{"9,11 Health check timeout too long"}, `timeout (3s) must be shorter than interval (3s)`},
		{"health check interval below the default timeout", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nhealth_check { interval = \"1s\" }\n}\n",
			[]string{"7,27 Health check timeout too long"}, `e.g. timeout = "500ms"`},
		{"health check domain", listener(`address = ":5222"
backend = "xmpp"`) + "backend \"xmpp\" {\naddress = \"h:1\"\nhealth_check {\ninterval = \"5s\"\ndomain = \"10.0.0.1\"\n}\nhealth_check { interval = \"1s\" }\n}\n",
			[]string{"9,10 Invalid domain", "11,1 Duplicate health_check block"}, `"10.0.0.1" is not a DNS name: it is an IP address.`},
		{"routes", listener(`address = ":5222"
route "example.net" { backend = "xmpp" }
route "Example.NET" { backend = "xmpp" }
route "example.net." { backend = "xmpp" }
route "10.0.0.1" { backend = "xmpp" }
route "example.org" {}
route "example.com" { backend = "" }
route "example.info" { backend = "xmp" }
route "example.edu" { server = "xmpp" }`) + backend,
			[]string{"4,1 Duplicate route", "5,7 Invalid route domain", "6,7 Invalid route domain", "7,1 Missing required argument",
				"8,33 Empty backend name", "9,34 Unknown backend", "10,1 Missing required argument", "10,23 Unsupported argument"},
			`The domain "Example.NET" is already routed at test.hcl:3:1 (as "example.net"; case does not matter).`},
		{"route to a missing backend", listener(`address = ":5222"
backend = "xmpp"
route "example.net" { backend = "chat" }`) + backend,
			[]string{"4,33 Unknown backend"},
			`route "example.net" of listener "c2s" names backend "chat", but no backend block has that name. Defined backends: "xmpp".`},
		{"listener without backend or routes", listener(`address = ":5222"`) + backend,
			[]string{"1,1 Missing required argument"}, `listener "c2s" has no backend.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %+v, %v; want an *Error", c, err)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			got := diagLines(e.Diags)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q\n%v", got, tt.want, e)
			}
			for _, d := range e.Diags {
				if d.Summary == "" || d.Detail == "" {
					t.Errorf("diagnostic without summary or detail: %+v", d)
				}
				if d.Subject == nil || d.Subject.Filename != "test.hcl" {
					t.Errorf("diagnostic without a position in test.hcl: %+v", d)
				}
			}
			if tt.detail != "" && !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestWarningsDoNotFail(t *testing.T) {
	c, err := Parse("test.hcl", []byte(minimal+"backend \"spare\" { address = \"127.0.0.1:5263\" }\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(c.Backends) != 2 {
		t.Errorf("Backends = %+v, want 2", c.Backends)
	}
	w := c.Warnings()
	if w == nil {
		t.Fatal("Warnings() = nil, want the unused backend")
	}
	want := `test.hcl:9:1: warning: Unused backend; No listener names backend "spare", so Guard never connects to it. Point a listener at it with backend = "spare", or remove the block.`
	if w.Error() != want {
		t.Errorf("Warnings().Error() =\n%s\nwant\n%s", w, want)
	}

	c, err = Parse("test.hcl", []byte(minimal+"policy {\n  see_other_host = \"x.example\"\n}\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Policy.SeeOtherHost != "x.example" || c.Policy.Overrides != nil {
		t.Errorf("Policy = %+v", c.Policy)
	}
	want = `test.hcl:10:20: warning: Unused see_other_host; No event answers with see-other-host, so Guard never sends "x.example". Set overload or shutdown to "see-other-host", or remove see_other_host.`
	if w := c.Warnings(); w == nil || w.Error() != want {
		t.Errorf("Warnings() =\n%v\nwant\n%s", w, want)
	}
}

func TestAdmissionWarnings(t *testing.T) {
	const listener = "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n"
	tests := []struct {
		name string
		src  string
		want []string // diagLines
		// check looks at the Config: a burst without a rate is dropped.
		check func(*Config) bool
	}{
		{"long queue timeout", minimal[:len(minimal)-3] + "\n  queue_timeout = \"45s\"\n}\n",
			[]string{"8,19 warning: Long queue timeout"},
			func(c *Config) bool { return c.Backends[0].Admission.QueueTimeout == 45*time.Second }},
		{"queue timeout of 30s is not long", minimal[:len(minimal)-3] + "\n  queue_timeout = \"30s\"\n}\n",
			nil, nil},
		{"queue without a cap", minimal[:len(minimal)-3] + "\n  max_streams = 0\n  queue_size = 10\n  queue_timeout = \"5s\"\n  adaptive { enabled = false }\n}\n",
			[]string{"9,16 warning: Unused queue_size", "10,19 warning: Unused queue_timeout"},
			func(c *Config) bool {
				return c.Backends[0].Admission.MaxStreams == 0 && c.Backends[0].Admission.QueueSize == 10
			}},
		{"default queue without a cap", minimal[:len(minimal)-3] + "\n  max_streams = 0\n}\n", nil, nil},
		{"queue without a fixed cap, under the learned one", minimal[:len(minimal)-3] + "\n  max_streams = 0\n  queue_size = 10\n}\n", nil,
			func(c *Config) bool { return c.Backends[0].Adaptive != nil && c.Backends[0].Admission.QueueSize == 10 }},
		{"backend burst without a rate", minimal[:len(minimal)-3] + "\n  new_streams_burst = 10\n}\n",
			[]string{"8,23 warning: Unused new_streams_burst"},
			func(c *Config) bool { return c.Backends[0].Admission.NewStreamsBurst == 0 }},
		{"listener burst without a rate", listener + "  limits { connection_burst_per_ip = 3 }\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\n",
			[]string{"4,38 warning: Unused connection_burst_per_ip"},
			func(c *Config) bool { return c.Listeners[0].Limits.ConnBurstPerIP == 0 }},
		{"burst with a zero rate", listener + "  limits {\n    connection_rate_per_ip = \"0/s\"\n    connection_burst_per_ip = 3\n  }\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\n",
			[]string{"6,31 warning: Unused connection_burst_per_ip"}, nil},
		{"backend used only by a route", listener + "  route \"example.net\" { backend = \"chat\" }\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\nbackend \"chat\" { address = \"127.0.0.1:5263\" }\n",
			nil, nil},
		{"backend used by no listener or route", "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  route \"example.net\" { backend = \"chat\" }\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\nbackend \"chat\" { address = \"127.0.0.1:5263\" }\n",
			[]string{"5,1 warning: Unused backend"}, func(c *Config) bool { return c.Listeners[0].Backend == "" }},
		{"burst below the rate is kept", listener + "  limits {\n    connection_rate_per_ip = \"10/s\"\n    connection_burst_per_ip = 1\n  }\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\n",
			nil, func(c *Config) bool { return c.Listeners[0].Limits.ConnBurstPerIP == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			if w := c.Warnings(); w != nil {
				got = diagLines(w.(*Error).Diags)
				for _, d := range w.(*Error).Diags {
					if d.Detail == "" || d.Subject == nil {
						t.Errorf("warning without detail or position: %+v", d)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q\n%v", got, tt.want, c.Warnings())
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("Config: listeners %+v, backends %+v", c.Listeners, c.Backends)
			}
		})
	}
}

// TestPolicyAgrees checks that config's own checks of the policy block
// follow package policy, so that the final policy.New never has the last
// word: the defaults of overload, shutdown and backend_failure are those of
// policy.Defaults, and see-other-host is allowed for exactly the events that
// policy.New accepts it for.
func TestPolicyAgrees(t *testing.T) {
	for _, g := range policyGroups {
		for _, e := range g.events {
			if got := policy.Defaults[e].Condition; string(got) != g.allowed[0] {
				t.Errorf("%s: the default of %s is %q, policy.Defaults says %q", g.attr, e, g.allowed[0], got)
			}
		}
		for _, c := range g.allowed {
			if _, ok := xmpp.ParseCondition(c); !ok {
				t.Errorf("%s allows %q, which is not a condition", g.attr, c)
			}
		}
	}
	for _, name := range policy.Events() {
		cfg := policy.Config{
			SeeOtherHost: "x.example",
			Overrides:    map[policy.Event]policy.Override{policy.Event(name): {Condition: xmpp.SeeOtherHost}},
		}
		_, err := policy.New(cfg)
		if allowed := slices.Contains(redirectable(), name); allowed != (err == nil) {
			t.Errorf("event %q: config allows see-other-host: %v; policy.New: %v", name, allowed, err)
		}
	}
}

// TestGolden parses every file under testdata/invalid and testdata/warning
// and compares what WriteDiagnostics prints with NAME.golden. Run
// `go test ./config -update` to rewrite the golden files.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d test files, want at least 10", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(path, ".hcl"), func(t *testing.T) {
			c, err := LoadFile(path)
			switch filepath.Base(filepath.Dir(path)) {
			case "invalid":
				if err == nil {
					t.Fatal("LoadFile succeeded, want an error")
				}
			case "warning":
				if err != nil {
					t.Fatalf("LoadFile: %v", err)
				}
				if err = c.Warnings(); err == nil {
					t.Fatal("no warnings")
				}
			}
			var out strings.Builder
			if err := WriteDiagnostics(&out, err, 78, false); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(path, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -update)", err)
			}
			if out.String() != string(want) {
				t.Errorf("WriteDiagnostics differs from %s (run go test ./config -update after checking):\n%s", golden, out.String())
			}
		})
	}
}

func TestRepositoryConfig(t *testing.T) {
	c, err := LoadFile("../config.hcl")
	if err != nil {
		var out strings.Builder
		_ = WriteDiagnostics(&out, err, 0, false)
		t.Fatalf("../config.hcl:\n%s", out.String())
	}
	if w := c.Warnings(); w != nil {
		t.Errorf("../config.hcl warnings: %v", w)
	}
	c.warnings = nil
	want := &Config{
		Log:      Log{Level: "info", Format: "text", Connections: proxy.ConnLog{Mode: proxy.ConnLogAll, Sample: 1}},
		Admin:    Admin{Address: "127.0.0.1:9090"},
		Shutdown: Shutdown{DrainTimeout: 25 * time.Second, Deadline: 30 * time.Second},
		Listeners: []Listener{{
			Name: "c2s", Address: "0.0.0.0:5222", Backend: "xmpp",
			Timeouts: proxy.Timeouts{
				Handshake: 10 * time.Second, Probe: 60 * time.Second, ProbeTimeout: 30 * time.Second,
				HalfClose: 5 * time.Second,
			},
			Limits: Limits{
				XMLLimits:  proxy.XMLLimits{MaxStanzaSize: 256 << 10, MaxHeaderSize: 4 << 10, Advertise: true},
				AddrLimits: proxy.AddrLimits{TrackedAddresses: 100000},
			},
			TLS: TLS{Mode: proxy.TLSNone, MinVersion: "1.2"},
		}},
		Backends: []Backend{{Backend: proxy.Backend{
			Name: "xmpp", Address: "127.0.0.1:5262", ConnectTimeout: 2 * time.Second, ReplyTimeout: 5 * time.Second, Retries: 2,
			Admission: proxy.Admission{MaxStreams: 10000, QueueSize: 1000, QueueTimeout: 10 * time.Second},
			Adaptive:  &limits.AdaptiveConfig{Min: 4, Initial: 16, Tolerance: 2, Reprobe: 5 * time.Second},
		}}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("../config.hcl:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.hcl"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile = %v, want fs.ErrNotExist", err)
	}
	var out strings.Builder
	if err := WriteDiagnostics(&out, err, 78, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Error: config: open ") || !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("WriteDiagnostics = %q", out.String())
	}
}

func TestDefault(t *testing.T) {
	got := Default("0.0.0.0:5222", "127.0.0.1:5262")
	parsed, err := Parse("default.hcl", []byte(`
listener "default" {
  address = "0.0.0.0:5222"
  backend = "default"
}
backend "default" {
  address = "127.0.0.1:5262"
}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, parsed) {
		t.Errorf("Default:\n got %+v\nwant %+v", got, parsed)
	}
}

func TestConfigBackend(t *testing.T) {
	c, err := Parse("test.hcl", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := c.Backend("xmpp")
	if !ok || b.Address != "127.0.0.1:5262" {
		t.Errorf(`Backend("xmpp") = %+v, %v`, b, ok)
	}
	if b, ok := c.Backend("nope"); ok || !reflect.DeepEqual(b, Backend{}) {
		t.Errorf(`Backend("nope") = %+v, %v; want zero, false`, b, ok)
	}
	for _, l := range c.Listeners {
		if _, ok := c.Backend(l.Backend); !ok {
			t.Errorf("listener %q: backend %q missing", l.Name, l.Backend)
		}
	}
}

func TestErrorString(t *testing.T) {
	_, err := Parse("testdata/x.hcl", []byte("log { level = \"x\" }\nlistener \"a\" {\n  adress = \"h:1\"\n}\n"))
	want := strings.Join([]string{
		`testdata/x.hcl:1:15: error: Invalid log level; "x" is not a log level. Use one of "trace", "debug", "info", "warn", "error"; the default is "info".`,
		`testdata/x.hcl:2:1: error: Missing required argument; listener "a" has no address. Add one, e.g. address = "0.0.0.0:5222".`,
		`testdata/x.hcl:2:1: error: Missing required argument; listener "a" has no backend. Add one, e.g. backend = "xmpp".`,
		`testdata/x.hcl:3:3: error: Unsupported argument; An argument named "adress" is not expected here. Did you mean "address"? A listener block takes the arguments "address", "backend", "stream" and the blocks "timeouts", "limits", "tls", "proxy_protocol", "websocket", "route".`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant\n%s", err, want)
	}

	// A block to write follows its diagnostic's line, indented.
	_, err = Parse("t.hcl", []byte("backend \"prosody\" {\n  address = \"127.0.0.1:5262\"\n}\n"))
	want = `t.hcl:1:1: error: No listener; Guard needs at least one listener block, the address where clients connect and the backend that receives their streams, for example:` +
		"\n    listener \"c2s\" {\n      address = \"0.0.0.0:5222\"\n      backend = \"prosody\"\n    }"
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant\n%s", err, want)
	}
}

func TestWriteDiagnostics(t *testing.T) {
	_, err := Parse("t.hcl", []byte("log { level = \"x\" }\n"))
	var plain, color strings.Builder
	if err := WriteDiagnostics(&plain, err, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiagnostics(&color, err, 0, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain output has escapes: %q", plain.String())
	}
	if !strings.Contains(color.String(), "t.hcl:1:15: \x1b[31merror\x1b[0m: Invalid log level\n") {
		t.Errorf("color output lacks the red error: %q", color.String())
	}
	if !strings.Contains(color.String(), "level = \x1b[1;4m\"x\"\x1b[0m }") {
		t.Errorf("color output does not underline the value: %q", color.String())
	}
	// Width 0 does not wrap: each detail is one line.
	if !strings.Contains(plain.String(), "\n\""+`x" is not a log level. Use one of "trace", "debug", "info", "warn", "error"; the default is "info".`+"\n") {
		t.Errorf("plain output:\n%s", plain.String())
	}

	var none strings.Builder
	if err := WriteDiagnostics(&none, nil, 0, false); err != nil || none.Len() != 0 {
		t.Errorf("WriteDiagnostics(nil) wrote %q, %v", none.String(), err)
	}
	if err := WriteDiagnostics(failWriter{}, err, 0, false); err == nil {
		t.Error("WriteDiagnostics to a failing writer succeeded")
	}
}

// WriteDiagnostics prints each diagnostic once: its summary on its
// FILE:LINE:COL line and nowhere else (hcl's own writer repeats it on an
// "Error: Summary" line), its source line once, and its detail.
func TestWriteDiagnosticsOnce(t *testing.T) {
	paths, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		c, err := LoadFile(path)
		if err == nil {
			err = c.Warnings()
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want diagnostics", path, err)
		}
		var out strings.Builder
		if err := WriteDiagnostics(&out, err, 0, false); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "Error: ") || strings.HasPrefix(line, "Warning: ") {
				t.Errorf("%s: the summary is repeated on %q:\n%s", path, line, text)
			}
		}
		headers := 0
		for _, d := range e.Diags {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			header := fmt.Sprintf("%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
			if !strings.HasPrefix(text, header) && !strings.Contains(text, "\n\n"+header) {
				t.Errorf("%s: no diagnostic opens with %q:\n%s", path, header, text)
			}
			same := 0 // diagnostics with this summary
			for _, o := range e.Diags {
				if o.Summary == d.Summary {
					same++
				}
			}
			if n := strings.Count(text, d.Summary); n != same {
				t.Errorf("%s: %q is printed %d times for %d diagnostics:\n%s", path, d.Summary, n, same, text)
			}
			headers++
		}
		if n := strings.Count(text, ": error: ") + strings.Count(text, ": warning: "); n != headers {
			t.Errorf("%s: %d FILE:LINE:COL lines for %d diagnostics:\n%s", path, n, headers, text)
		}
	}
}

// Every position a diagnostic prints is FILE:LINE:COL: its first line, and
// in its detail each position of another place in the file (the first of
// two duplicates, hcl's "already set at"), in WriteDiagnostics and in
// Error() alike; never hcl's FILE:LINE,COL-COL, "on FILE line N" or
// "line N".
func TestPositions(t *testing.T) {
	other := regexp.MustCompile(`\.hcl:\d+,\d+|\.hcl line \d+|\bline \d+\b`)
	const backend = "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\n"
	const listener = "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n}\n"
	tests := []struct{ name, src, want string }{
		{"argument set twice", "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  address = \"0.0.0.0:5223\"\n}\n",
			`The argument "address" was already set at test.hcl:2:3.`},
		{"block twice", "log {}\nlog {}\n" + listener + backend, `already defined at test.hcl:1:1.`},
		{"name twice", listener + listener + backend, `A listener named "c2s" is already defined at test.hcl:1:1.`},
		{"route twice", "listener \"c2s\" {\n  address = \":5222\"\n  route \"a.example\" { backend = \"xmpp\" }\n" +
			"  route \"A.example\" { backend = \"xmpp\" }\n}\n" + backend, `already routed at test.hcl:3:3 (as "a.example"`},
		{"node twice", listener + "backend \"xmpp\" {\n  node \"10.0.0.1:5262\" {}\n  node \"10.0.0.1:5262\" {}\n}\n",
			`already has the node "10.0.0.1:5262" at test.hcl:6:3.`},
		{"address and nodes", listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n  node \"10.0.0.1:5262\" {}\n}\n",
			`has an address (at test.hcl:6:3) and 1 node block`},
		{"event twice", listener + backend + "policy {\n  event \"denied\" {}\n  event \"denied\" {}\n}\n",
			`An event named "denied" is already defined at test.hcl:9:3.`},
		{"listen address twice", listener + "listener \"b\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n}\n" + backend,
			`already uses (at test.hcl:2:13)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.hcl", []byte(tt.src))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			var out strings.Builder
			if err := WriteDiagnostics(&out, err, 0, false); err != nil {
				t.Fatal(err)
			}
			for what, text := range map[string]string{"WriteDiagnostics": out.String(), "Error()": err.Error()} {
				if !strings.Contains(text, tt.want) {
					t.Errorf("%s does not say %q:\n%s", what, tt.want, text)
				}
				if m := other.FindString(text); m != "" {
					t.Errorf("%s writes a position as %q:\n%s", what, m, text)
				}
			}
		})
	}
	paths, _ := filepath.Glob("testdata/*/*.golden")
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if m := other.FindString(string(b)); m != "" {
			t.Errorf("%s writes a position as %q", path, m)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("write failed") }

// TestDocs keeps docs/config.md in step with the code: it documents every
// block and key of the schemas, and its sample output is a current golden.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*hcl.BodySchema{
		fileSchema, logSchema, adminSchema, shutdownSchema, listenerSchema, timeoutsSchema, limitsSchema,
		tlsSchema, backendSchema, backendTLSSchema, policySchema, eventSchema, acmeSchema, proxyProtocolSchema,
		routeSchema, nodeSchema, healthCheckSchema,
	} {
		for _, a := range s.Attributes {
			if !strings.Contains(string(doc), "| `"+a.Name+"` |") {
				t.Errorf("docs/config.md has no table row for %q", a.Name)
			}
		}
		for _, b := range s.Blocks {
			if !strings.Contains(string(doc), "## `"+b.Type) && !strings.Contains(string(doc), "### `"+b.Type) {
				t.Errorf("docs/config.md has no section for block %q", b.Type)
			}
		}
	}
	for _, e := range policy.Events() {
		if !strings.Contains(string(doc), "| `"+e+"` | `"+string(policy.Defaults[policy.Event(e)].Condition)+"` |") {
			t.Errorf("docs/config.md has no table row for event %q with its default condition", e)
		}
	}
	golden, err := os.ReadFile("testdata/invalid/typo.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(golden)) {
		t.Error("docs/config.md does not show the current testdata/invalid/typo.golden")
	}
	// The overlapping addresses of the listener section, as guard validate
	// prints them (unwrapped).
	_, err = LoadFile("testdata/invalid/overlapping_address.hcl")
	var out strings.Builder
	if err := WriteDiagnostics(&out, err, 0, false); err != nil {
		t.Fatal(err)
	}
	const at = "testdata/invalid/overlapping_address.hcl:29:13: "
	if i := strings.Index(out.String(), at); i < 0 {
		t.Errorf("testdata/invalid/overlapping_address.hcl has no diagnostic at %s", at)
	} else if diag, _, _ := strings.Cut(out.String()[i:], "\n\ntestdata/"); !strings.Contains(string(doc), "```text\n"+strings.TrimSpace(diag)+"\n```") {
		t.Errorf("docs/config.md does not show\n%s", diag)
	}
	if _, err := LoadFile("testdata/invalid/typo.hcl"); err == nil || !strings.Contains(string(doc), "```text\n"+err.Error()+"\n```") {
		t.Errorf("docs/config.md does not show the Error() of testdata/invalid/typo.hcl:\n%v", err)
	}
}
