package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// twoListeners is a file with the admin endpoint off and two listeners, on
// a and on b, at lines 5 and 9 (their address values at column 13).
func twoListeners(a, b string) string {
	return fmt.Sprintf(`admin {
  address = ""
}
listener "a" {
  address = %q
  backend = "xmpp"
}
listener "b" {
  address = %q
  backend = "xmpp"
}
backend "xmpp" {
  address = "127.0.0.1:5262"
}
`, a, b)
}

// fakeLookup resolves localhost as an /etc/hosts with ::1 first would,
// xmpp.internal to 10.0.0.5 and nothing else, without the network.
func fakeLookup(t testing.TB) {
	old := lookupHost
	lookupHost = func(_ context.Context, host string) ([]netip.Addr, error) {
		switch strings.ToLower(host) {
		case "localhost":
			return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
		case "xmpp.internal":
			return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	t.Cleanup(func() { lookupHost = old })
}

// Two addresses that are one socket once Guard binds them are an error at
// the second, naming the first at FILE:LINE:COL, saying why, and proposing
// a port that nothing else in the file uses; two that the kernel binds
// side by side are not.
func TestListenAddressConflicts(t *testing.T) {
	fakeLookup(t)
	tests := []struct {
		a, b string
		want []string // substrings of the detail; nil: no error
	}{
		{"0.0.0.0:5222", "0.0.0.0:5222", []string{`which listener "a" already uses (at test.hcl:5:13).`}},
		{"0.0.0.0:5222", ":5222", []string{`(at test.hcl:5:13, as "0.0.0.0:5222"): Guard listens on IPv4 and IPv6 with one socket`, `e.g. address = ":5223".`}},
		{":5222", "[::]:5222", []string{`as ":5222"`, `e.g. address = "[::]:5223".`}},
		{"[::]:5222", "0.0.0.0:5222", []string{`as "[::]:5222"`}},
		{"[::ffff:0.0.0.0]:5222", ":5222", []string{`the same host`}},
		{"0.0.0.0:5222", "127.0.0.1:5222", []string{`"0.0.0.0:5222" takes every IPv4 and IPv6 address of port 5222, 127.0.0.1 included`, `e.g. address = "127.0.0.1:5223".`}},
		{"[::1]:5222", ":5222", []string{`":5222" takes every IPv4 and IPv6 address of port 5222, ::1 included`}},
		{"[::ffff:127.0.0.1]:5222", "127.0.0.1:5222", []string{`both are 127.0.0.1:5222`}},
		{"127.0.0.1:5222", "127.0.0.1:05222", []string{`both are 127.0.0.1:5222`, `e.g. address = "127.0.0.1:5223".`}},
		{"localhost:5222", "127.0.0.1:5222", []string{`Guard listens on "localhost" at 127.0.0.1, the address the name resolves to`}},
		{"127.0.0.1:5222", "LocalHost:5222", []string{`"LocalHost" at 127.0.0.1`, `e.g. address = "LocalHost:5223".`}},
		{"xmpp.internal:5222", "[::ffff:10.0.0.5]:5222", []string{`"xmpp.internal" at 10.0.0.5`}},
		{"nowhere.invalid:5222", "NOWHERE.invalid:5222", []string{`host names do not depend on case`}},
		{"nowhere.invalid:5222", "0.0.0.0:5222", []string{`nowhere.invalid included`}},
		{"localhost:5222", "[::1]:5222", nil}, // Go binds localhost at its first IPv4 address
		{"127.0.0.1:5222", "[::1]:5222", nil},
		{"127.0.0.1:5222", "127.0.0.2:5222", nil},
		{"nowhere.invalid:5222", "127.0.0.1:5222", nil}, // unresolved: compared as written
		{"0.0.0.0:5222", "0.0.0.0:5223", nil},
		{":0", "0.0.0.0:0", nil}, // each gets its own free port
		{"[fe80::1%eth0]:5222", "[fe80::1%eth1]:5222", nil},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			_, err := Parse("test.hcl", []byte(twoListeners(tt.a, tt.b)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || len(e.Diags) != 1 || e.Diags[0].Summary != "Duplicate listen address" {
				t.Fatalf("Parse = %v, want one Duplicate listen address", err)
			}
			d := e.Diags[0]
			if got := position(*d.Subject); got != "test.hcl:9:13" {
				t.Errorf("at %s, want test.hcl:9:13 (the second address)", got)
			}
			for _, w := range append(tt.want, fmt.Sprintf(`listener "b" listens on %q, which listener "a" already uses (at test.hcl:5:13`, tt.b)) {
				if !strings.Contains(d.Detail, w) {
					t.Errorf("detail %q\ndoes not contain %q", d.Detail, w)
				}
			}
		})
	}
}

// The admin endpoint and the ACME solver are checked against the listeners
// the same way, and a suggested port is one that nothing else uses.
func TestListenAddressConflictsAdmin(t *testing.T) {
	fakeLookup(t)
	const backend = "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\n"
	listener := func(name, addr string) string {
		return fmt.Sprintf("listener %q {\n  address = %q\n  backend = \"xmpp\"\n}\n", name, addr)
	}
	tests := []struct {
		name, src string
		at        string
		want      string
	}{
		{"the default admin address", listener("c2s", "0.0.0.0:9090") + backend, "test.hcl:2:13",
			`listener "c2s" listens on "0.0.0.0:9090", which the admin endpoint already uses (by default, as "127.0.0.1:9090"): "0.0.0.0:9090" takes every IPv4 and IPv6 address of port 9090, 127.0.0.1 included. Give each one its own port, e.g. address = "0.0.0.0:9091".`},
		{"admin on every address", "admin {\n  address = \":9090\"\n}\n" + listener("c2s", "localhost:9090") + backend, "test.hcl:5:13",
			`listener "c2s" listens on "localhost:9090", which the admin endpoint already uses (at test.hcl:2:13, as ":9090"): Guard listens on "localhost" at 127.0.0.1, the address the name resolves to; ":9090" takes every IPv4 and IPv6 address of port 9090, 127.0.0.1 included.`},
		{"the next ports are taken", listener("c2s", ":5222") + listener("c2s-tls", ":5223") + listener("dup", "0.0.0.0:5222") + backend, "test.hcl:10:13",
			`Give each one its own port, e.g. address = "0.0.0.0:5224".`},
		{"the last port", listener("a", ":65535") + listener("b", "[::]:65535") + backend, "test.hcl:6:13",
			`e.g. address = "[::]:65534".`},
		{"the ACME solver", listener("c2s", "0.0.0.0:80") + backend + `acme {
  ca           = "https://acme.example.net/directory"
  email        = "ops@example.net"
  domains      = ["xmpp.example.net"]
  challenges   = ["http-01"]
  http_address = ":80"
}
`, "test.hcl:13:18",
			`The ACME http-01 solver listens on ":80", which listener "c2s" already uses (at test.hcl:2:13, as "0.0.0.0:80"): Guard listens on IPv4 and IPv6 with one socket, so "", "0.0.0.0" and "::" are the same host: every address of the port. Give each one its own port, e.g. http_address = ":81".`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want diagnostics", err)
			}
			for _, d := range e.Diags {
				if d.Summary == "Duplicate listen address" && position(*d.Subject) == tt.at {
					if !strings.Contains(d.Detail, tt.want) {
						t.Errorf("detail %q\ndoes not contain %q", d.Detail, tt.want)
					}
					return
				}
			}
			t.Errorf("no Duplicate listen address at %s: %v", tt.at, err)
		})
	}
}

// What the check reports is what binding does: for each pair of hosts, on
// a port that is free, Parse reports the pair exactly when the second
// listen of the pair fails with "address already in use", listening as
// Guard's listeners and its admin endpoint do (net.Listen "tcp", with the
// system's resolver for localhost).
func TestListenAddressesMatchBind(t *testing.T) {
	hosts := []string{"", "0.0.0.0", "::", "::ffff:0.0.0.0", "127.0.0.1", "::ffff:127.0.0.1", "127.0.0.2", "::1", "localhost"}
	checked := 0
	for _, a := range hosts {
		for _, b := range hosts {
			probe, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(probe.Addr().(*net.TCPAddr).Port)
			probe.Close()
			addrA, addrB := net.JoinHostPort(a, port), net.JoinHostPort(b, port)
			first, err := net.Listen("tcp", addrA)
			if err != nil {
				t.Logf("%s: %v (skipped)", addrA, err)
				continue
			}
			second, err := net.Listen("tcp", addrB)
			if err == nil {
				second.Close()
			}
			first.Close()
			if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
				t.Logf("%s after %s: %v (skipped)", addrB, addrA, err)
				continue
			}
			inUse := err != nil
			_, perr := Parse("test.hcl", []byte(twoListeners(addrA, addrB)))
			if reported := perr != nil; reported != inUse {
				t.Errorf("%q then %q: the second listen fails: %v; Parse reports them: %v (%v)", addrA, addrB, inUse, reported, perr)
			}
			checked++
		}
	}
	if checked < len(hosts)*len(hosts)/2 {
		t.Errorf("checked %d pairs of %d", checked, len(hosts)*len(hosts))
	}
}
