package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/guard-xmpp/guard/proxy"
)

// proxySrc returns a listener "c2s" on line 1 whose proxy_protocol block,
// on line 4, has trusted on line 5, then on line 8 a backend "xmpp" with
// backend on line 10. Either line may be "".
func proxySrc(trusted, backend string) string {
	return "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n  proxy_protocol {\n" + trusted +
		"\n  }\n}\nbackend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n" + backend + "\n}\n"
}

func prefixes(s ...string) []netip.Prefix {
	var p []netip.Prefix
	for _, v := range s {
		p = append(p, netip.MustParsePrefix(v))
	}
	return p
}

func TestParseProxyProtocolValid(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		trusted []netip.Prefix
		version int
	}{
		{"off without the block and the key", minimal, nil, 0},
		{"an empty block is off", proxySrc("", ""), nil, 0},
		{"an empty list is off", proxySrc("trusted = []", "proxy_protocol = 0"), nil, 0},
		{"null is off", proxySrc("trusted = null", "proxy_protocol = null"), nil, 0},
		{"addresses become /32 and /128, prefixes are kept, in order", proxySrc(
			`trusted = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "2001:db8::1", "::ffff:192.0.2.0/120", "198.51.100.9/32"]`,
			"proxy_protocol = 1"),
			prefixes("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "2001:db8::1/128", "::ffff:192.0.2.0/120", "198.51.100.9/32"), 1},
		{"version 2", proxySrc("", "proxy_protocol = 2"), nil, 2},
		{"version 2 written as 2.0", proxySrc("", "proxy_protocol = 2.0"), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if w := c.Warnings(); w != nil {
				t.Errorf("Warnings: %v", w)
			}
			if got := c.Listeners[0].ProxyProtocol; !reflect.DeepEqual(got, proxy.ProxyProtocol{Trusted: tt.trusted}) {
				t.Errorf("ProxyProtocol = %+v, want %v", got, tt.trusted)
			}
			if got := c.Backends[0].ProxyProtocol; got != tt.version {
				t.Errorf("Backend.ProxyProtocol = %d, want %d", got, tt.version)
			}
		})
	}
}

func TestParseProxyProtocolRules(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		want   []string // diagLines
		detail string   // a substring of the first diagnostic's detail
	}{
		{"host bits set", proxySrc(`trusted = ["10.1.2.3/8"]`, ""),
			[]string{"5,12 Invalid trusted address"},
			`"10.1.2.3/8" has host bits set, so it is not a prefix. Did you mean the network, "10.0.0.0/8", or the one address, "10.1.2.3"?`},
		{"IPv6 host bits set", proxySrc(`trusted = ["2001:db8::1/32"]`, ""),
			[]string{"5,12 Invalid trusted address"}, `Did you mean the network, "2001:db8::/32", or the one address, "2001:db8::1"?`},
		{"each bad element at its position", proxySrc(`trusted = ["10.0.0.0/8", "lb.example", "192.0.2.7", "10.0.0.0/33"]`, ""),
			[]string{"5,26 Invalid trusted address", "5,53 Invalid trusted address"},
			`"lb.example" is not an IP address or a CIDR prefix: Guard does not look names up; write the balancer's IP addresses. ` +
				`List the load balancer's addresses, e.g. trusted = ["10.0.0.0/8", "192.0.2.7"].`},
		{"prefix length out of range", proxySrc(`trusted = ["10.0.0.0/33"]`, ""),
			[]string{"5,12 Invalid trusted address"}, `"10.0.0.0/33" is not an IP address or a CIDR prefix: prefix length out of range.`},
		{"an address with a port", proxySrc(`trusted = ["[2001:db8::7]:5222"]`, ""),
			[]string{"5,12 Invalid trusted address"}, `write the address without a port, "2001:db8::7".`},
		{"an address with a zone", proxySrc(`trusted = ["fe80::1%eth0"]`, ""),
			[]string{"5,12 Invalid trusted address"}, `an address is written without its zone, "fe80::1".`},
		{"an empty address", proxySrc(`trusted = [""]`, ""),
			[]string{"5,12 Invalid trusted address"}, `"" is not an IP address or a CIDR prefix: it is empty.`},
		{"a leading zero", proxySrc(`trusted = ["010.0.0.1"]`, ""),
			[]string{"5,12 Invalid trusted address"}, `IPv4 field has octet with leading zero`},
		{"a string, not a list", proxySrc(`trusted = "10.0.0.0/8"`, ""),
			[]string{"5,11 Incorrect argument type"}, `trusted is a list: put the value in brackets, trusted = ["10.0.0.0/8"].`},
		{"misspelt key", proxySrc(`trust = ["10.0.0.0/8"]`, ""),
			[]string{"5,1 Unsupported argument"}, `Did you mean "trusted"? A proxy_protocol block takes the argument "trusted".`},
		{"duplicate block", "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n  proxy_protocol {}\n  proxy_protocol {}\n}\n" +
			"backend \"xmpp\" { address = \"127.0.0.1:5262\" }\n",
			[]string{"5,3 Duplicate proxy_protocol block"}, `Only one proxy_protocol block is allowed`},
		{"version 3", proxySrc("", "proxy_protocol = 3"),
			[]string{"10,18 Invalid PROXY protocol version"},
			`proxy_protocol = 3 is not a PROXY protocol version. Use one of 0, 1, 2: 1 or 2 sends the backend a header of that version, 0 (the default) none.`},
		{"negative version", proxySrc("", "proxy_protocol = -1"),
			[]string{"10,18 Invalid PROXY protocol version"}, `proxy_protocol = -1 is not a PROXY protocol version. Use one of 0, 1, 2`},
		{"fractional version", proxySrc("", "proxy_protocol = 1.5"),
			[]string{"10,18 Invalid PROXY protocol version"}, `proxy_protocol = 1.5 is not`},
		{"version in quotes", proxySrc("", `proxy_protocol = "2"`),
			[]string{"10,18 Incorrect argument type"}, `proxy_protocol must be a number, written without quotes: proxy_protocol = 2.`},
		{"version as a switch", proxySrc("", `proxy_protocol = true`),
			[]string{"10,18 Incorrect argument type"}, `proxy_protocol must be a number, not true or false`},
		{"version as a word", proxySrc("", `proxy_protocol = v2`),
			[]string{"10,18 Variables not allowed"}, ``},
		{"a listener's key on a backend", proxySrc("", `proxy_protocol { trusted = ["10.0.0.0/8"] }`),
			[]string{"10,1 Unsupported block type"}, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %+v, %v; want an *Error", c, err)
			}
			if got := diagLines(e.Diags); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q\n%v", got, tt.want, e)
			}
			for _, d := range e.Diags {
				if d.Summary == "" || d.Detail == "" || d.Subject == nil {
					t.Errorf("diagnostic without summary, detail or position: %+v", d)
				}
			}
			if !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestParseProxyProtocolWarnings(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		want    []string // diagLines
		detail  string   // a substring of the first warning's detail
		prefix  []netip.Prefix
	}{
		{"every IPv4 address", `trusted = ["10.0.0.0/8", "0.0.0.0/0"]`,
			[]string{"5,26 warning: Every address trusted"},
			`"0.0.0.0/0" trusts every IPv4 address, so anyone can claim any address`,
			prefixes("10.0.0.0/8", "0.0.0.0/0")},
		{"every IPv6 address", `trusted = ["::/0"]`,
			[]string{"5,12 warning: Every address trusted"}, `"::/0" trusts every IPv6 address`, prefixes("::/0")},
		{"every IPv4 address, mapped", `trusted = ["::ffff:0.0.0.0/96"]`,
			[]string{"5,12 warning: Every address trusted"}, `trusts every IPv4 address`, prefixes("::ffff:0.0.0.0/96")},
		{"a /1 is not everyone", `trusted = ["0.0.0.0/1", "::/1"]`, nil, "", prefixes("0.0.0.0/1", "::/1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(proxySrc(tt.trusted, "")))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			if w := c.Warnings(); w != nil {
				diags := w.(*Error).Diags
				got = diagLines(diags)
				if !strings.Contains(diags[0].Detail, tt.detail) {
					t.Errorf("detail %q\ndoes not contain %q", diags[0].Detail, tt.detail)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q\n%v", got, tt.want, c.Warnings())
			}
			if p := []netip.Prefix(c.Listeners[0].ProxyProtocol.Trusted); !reflect.DeepEqual(p, tt.prefix) {
				t.Errorf("Trusted = %v, want %v", p, tt.prefix)
			}
		})
	}
}
