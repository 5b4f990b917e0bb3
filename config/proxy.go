package config

import (
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"github.com/guard-xmpp/guard/proxy"
	"github.com/guard-xmpp/guard/proxyproto"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// This file decodes the PROXY protocol settings: a listener's
// proxy_protocol block (which balancers send a header) and a backend's
// proxy_protocol key (which version Guard sends).

// exampleTrusted is the list shown in messages.
const exampleTrusted = `["10.0.0.0/8", "192.0.2.7"]`

// proxyProtocol decodes a listener's proxy_protocol block b: each element
// of trusted is checked by proxyproto.ParseTrusted and reported at its
// position; a prefix of every address is a warning.
func (d *decoder) proxyProtocol(b *hcl.Block) proxy.ProxyProtocol {
	a := d.content(b.Body, proxyProtocolSchema, "A proxy_protocol block").Attributes["trusted"]
	var p proxy.ProxyProtocol
	for _, e := range d.prefixes(a, exampleTrusted, "Invalid trusted address", "List the load balancer's addresses, e.g. trusted = %s.") {
		if every, ok := everyAddress(e.prefix); ok {
			d.warnf(e.at, &a.Range, "Every address trusted",
				fmt.Sprintf("%q trusts every %s address, so anyone can claim any address: any client may begin with a PROXY header "+
					"naming whatever source it likes, escaping the per-address limits and choosing the address that logs and the backend see. "+
					"List only the load balancer's addresses, e.g. trusted = %s.", e.src, every, exampleTrusted))
		}
		p.Trusted = append(p.Trusted, e.prefix)
	}
	return p
}

// listedPrefix is one element of a list of addresses and prefixes: its
// value, as written, and where.
type listedPrefix struct {
	prefix netip.Prefix
	src    string
	at     hcl.Range
}

// prefixes decodes a, a list of addresses and prefixes (trusted, deny):
// each element is checked by proxyproto.ParseTrusted, and one that fails is
// reported at its position with summary and hint (a sentence with a %s for
// example).
func (d *decoder) prefixes(a *hcl.Attribute, example, summary, hint string) []listedPrefix {
	list, at, _ := d.list(a, example)
	var out []listedPrefix
	for i, s := range list {
		t, err := proxyproto.ParseTrusted(s)
		if err != nil {
			d.errorf(at[i], &a.Range, summary, trustedWhy(s, err)+" "+fmt.Sprintf(hint, example))
			continue
		}
		out = append(out, listedPrefix{t[0], s, at[i]})
	}
	return out
}

// everyAddress reports whether p holds every address of a family, and
// which ("IPv4" also for ::ffff:0:0/96).
func everyAddress(p netip.Prefix) (family string, ok bool) {
	switch {
	case p.Addr().Is4In6() && p.Bits() == 96, p.Addr().Is4() && p.Bits() == 0:
		return "IPv4", true
	case p.Bits() == 0:
		return "IPv6", true
	}
	return "", false
}

// trustedWhy says why s, an element of trusted, is not an address or a
// prefix, in a sentence or two; err is what proxyproto.ParseTrusted
// returned for it.
func trustedWhy(s string, err error) string {
	if p, e := netip.ParsePrefix(s); e == nil && p != p.Masked() {
		return fmt.Sprintf("%q has host bits set, so it is not a prefix. Did you mean the network, %q, or the one address, %q?",
			s, p.Masked().String(), p.Addr().String())
	}
	why := err.Error() // proxyproto: trusted address "x": ParseAddr("x"): reason
	if i := strings.LastIndex(why, "): "); i >= 0 {
		why = why[i+len("): "):]
	}
	if ap, e := netip.ParseAddrPort(s); e == nil {
		why = fmt.Sprintf("write the address without a port, %q", ap.Addr().WithZone("").String())
	} else if a, e := netip.ParseAddr(s); e == nil && a.Zone() != "" {
		why = fmt.Sprintf("an address is written without its zone, %q", a.WithZone("").String())
	} else if s == "" {
		why = "it is empty"
	} else if !strings.ContainsAny(s, "/:") && strings.ContainsFunc(s, isLetter) && dnsName(s) == "" {
		why = "Guard does not look names up; write the balancer's IP addresses"
	}
	return fmt.Sprintf("%q is not an IP address or a CIDR prefix: %s.", s, why)
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// proxyVersion returns the value of a, a backend's proxy_protocol: 0 (no
// header, the default), 1 or 2, written as a number.
func (d *decoder) proxyVersion(a *hcl.Attribute) int {
	v, ok := d.constant(a, false)
	if !ok {
		return 0
	}
	if v.Type() != cty.Number {
		// count reports a value that is not a number, and says to remove
		// quotes from "2".
		d.count(a, numberRule{max: 2, zero: "send no PROXY header", example: "2"})
		return 0
	}
	n := v.AsBigFloat()
	if n.IsInt() && n.Sign() >= 0 && n.Cmp(big.NewFloat(2)) <= 0 {
		i, _ := n.Int64()
		return int(i)
	}
	d.errorf(a.Expr.Range(), &a.Range, "Invalid PROXY protocol version",
		fmt.Sprintf("proxy_protocol = %s is not a PROXY protocol version. Use one of 0, 1, 2: 1 or 2 sends the backend a header of that version, "+
			"0 (the default) none.", formatNumber(n)))
	return 0
}

// exampleDeny is a typical deny list in messages.
const exampleDeny = `["203.0.113.0/24", "2001:db8::/32"]`

// denyList decodes a limits block's deny: addresses and prefixes, as
// proxy_protocol's trusted are written; one that denies every address is an
// error.
func (d *decoder) denyList(a *hcl.Attribute) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range d.prefixes(a, exampleDeny, "Invalid denied address", "List addresses or prefixes, e.g. deny = %s.") {
		if _, ok := everyAddress(e.prefix); ok {
			d.errorf(e.at, &a.Range, "Every address denied",
				fmt.Sprintf("%q denies every address: no client could connect. List the networks to refuse, e.g. deny = %s.", e.src, exampleDeny))
			continue
		}
		out = append(out, e.prefix)
	}
	return out
}
