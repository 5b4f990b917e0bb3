package proxyproto

import (
	"fmt"
	"net/netip"
	"strings"
)

// Trusted lists the networks whose connections may carry a PROXY header:
// the balancers in front of Guard. The zero value trusts no one.
type Trusted []netip.Prefix

// ParseTrusted parses addresses ("192.0.2.10", "2001:db8::1") and prefixes
// ("10.0.0.0/8", "2001:db8::/32"). A prefix with host bits set, such as
// "10.1.2.3/8", is an error, as it is usually a typo.
func ParseTrusted(s ...string) (Trusted, error) {
	t := make(Trusted, 0, len(s))
	for _, v := range s {
		if !strings.Contains(v, "/") {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("proxyproto: trusted address %q: %w", v, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("proxyproto: trusted address %q has a zone", v)
			}
			t = append(t, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("proxyproto: trusted prefix %q: %w", v, err)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("proxyproto: trusted prefix %q has host bits set (did you mean %s?)", v, p.Masked())
		}
		t = append(t, p)
	}
	return t, nil
}

// Contains reports whether a is in one of the prefixes. An IPv4-mapped IPv6
// address (as a dual-stack listener reports IPv4 peers) is unmapped first,
// and a zone is ignored, so "::ffff:192.0.2.10%eth0" matches 192.0.2.0/24.
// Prefixes written in IPv4-mapped form (::ffff:192.0.2.0/120) match the
// IPv4 addresses they cover.
func (t Trusted) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	for _, p := range t {
		if pa := p.Addr(); pa.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}
