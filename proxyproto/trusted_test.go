package proxyproto

import (
	"net/netip"
	"testing"
)

func TestTrustedContains(t *testing.T) {
	trusted, err := ParseTrusted("10.0.0.0/8", "192.0.2.10", "2001:db8:1::/48", "2001:db8::7", "::ffff:198.51.100.0/120")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.0.2.10", true},
		{"192.0.2.11", false},
		{"::ffff:10.1.2.3", true},     // IPv4 peer on a dual-stack listener
		{"::ffff:192.0.2.10", true},   // same, single address
		{"::ffff:192.0.2.11", false},  // mapped, not listed
		{"2001:db8:1:ffff::1", true},  // inside the /48
		{"2001:db8:2::1", false},      // outside it
		{"2001:db8::7", true},         // single IPv6 address
		{"2001:db8::7%eth0", true},    // zone ignored
		{"198.51.100.9", true},        // listed in mapped form
		{"::ffff:198.51.100.9", true}, // both mapped
		{"198.51.101.9", false},       // outside the mapped /120
		{"::a00:1", false},            // IPv4-compatible is not IPv4-mapped
		{"fe80::1", false},            // link-local, not listed
		{"0.0.0.0", false},            // unspecified
		{"::", false},                 // unspecified
	}
	for _, tt := range tests {
		if got := trusted.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if trusted.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}
	if (Trusted{}).Contains(netip.MustParseAddr("10.0.0.1")) || Trusted(nil).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an empty Trusted contains an address")
	}
	all, _ := ParseTrusted("0.0.0.0/0")
	if !all.Contains(netip.MustParseAddr("::ffff:203.0.113.1")) || all.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("0.0.0.0/0 must cover every IPv4 peer, mapped or not, and no IPv6 peer")
	}
}

func TestParseTrusted(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.1/8", "10.0.0.0/33", "example.net", "fe80::1%eth0", "10.0.0.0/", "2001:db8::1/32"} {
		if _, err := ParseTrusted(bad); err == nil {
			t.Errorf("ParseTrusted(%q) succeeded", bad)
		}
	}
	got, err := ParseTrusted("192.0.2.1", "2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	want := Trusted{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ParseTrusted = %v, want %v", got, want)
	}
}
