package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/xmpp"
	"github.com/hashicorp/hcl/v2"
)

// This file decodes the policy block into a policy.Config: which stream
// error Guard sends for each event that ends a stream.

// policyGroup is an attribute of the policy block that sets the condition
// of several events at once.
type policyGroup struct {
	attr    string
	events  []policy.Event
	allowed []string // the conditions it accepts; the first is the default
}

var policyGroups = []policyGroup{
	{"overload", []policy.Event{policy.QueueFull, policy.QueueTimeout, policy.PoolUnavailable},
		[]string{"resource-constraint", "see-other-host"}},
	{"shutdown", []policy.Event{policy.Shutdown},
		[]string{"system-shutdown", "see-other-host"}},
	{"backend_failure", []policy.Event{
		policy.BackendRefused, policy.BackendReset, policy.BackendStalled, policy.BackendGarbage, policy.BackendClosed,
	}, []string{"internal-server-error", "remote-connection-failed", "undefined-condition"}},
}

// redirectable returns the events that may answer with see-other-host: those
// of the groups that allow it (overload and shutdown), where another node
// can serve the client.
func redirectable() []string {
	var out []string
	for _, g := range policyGroups {
		if slices.Contains(g.allowed, string(xmpp.SeeOtherHost)) {
			for _, e := range g.events {
				out = append(out, string(e))
			}
		}
	}
	return out
}

// policy decodes the policy block. The Overrides it returns hold only what
// departs from policy.Defaults, so a key set to its default is the same as
// no key; every check that fails keeps the default, and policy.New, called
// last, must accept the result.
func (d *decoder) policy(b *hcl.Block) policy.Config {
	content := d.content(b.Body, policySchema, "A policy block")
	a := content.Attributes
	host, hostBad := d.seeOtherHost(a["see_other_host"])

	// The condition of each event, and the attribute that set it.
	type choice struct {
		condition xmpp.Condition
		at        *hcl.Attribute
		text      *string
	}
	chosen := map[policy.Event]choice{}
	for _, g := range policyGroups {
		attr := a[g.attr]
		c := xmpp.Condition(d.oneOf(attr, g.allowed[0], "condition for "+g.attr, g.allowed...))
		for _, e := range g.events {
			chosen[e] = choice{condition: c, at: attr}
		}
	}

	events := content.Blocks.OfType("event")
	d.unique(events)
	seen := map[string]bool{}
	for _, eb := range events {
		ev, known := d.eventName(eb)
		ea := d.content(eb.Body, eventSchema, "An event block").Attributes
		c, cok := d.condition(ea["condition"])
		text, tok := d.text(ea["text"])
		if !known || seen[string(ev)] {
			continue // reported by eventName or unique
		}
		seen[string(ev)] = true
		ch := chosen[ev]
		if cok {
			if c == xmpp.SeeOtherHost && !slices.Contains(redirectable(), string(ev)) {
				at := ea["condition"]
				d.errorf(at.Expr.Range(), &at.Range, "Redirect not allowed",
					fmt.Sprintf(`see-other-host sends the client to another node, which helps only when this one is overloaded `+
						`or shutting down, not for event %q. It is allowed for %s.`, ev, quoteList(redirectable())))
			} else {
				ch.condition, ch.at = c, ea["condition"]
			}
		}
		if tok {
			ch.text = &text
		}
		chosen[ev] = ch
	}

	cfg := policy.Config{SeeOtherHost: host, SeeOtherURI: d.seeOtherURI(a["see_other_uri"])}
	redirects := false
	asked := map[*hcl.Attribute]bool{} // attributes reported by missingSeeOtherHost
	for _, name := range policy.Events() {
		ev := policy.Event(name)
		ch, ok := chosen[ev]
		if !ok {
			continue
		}
		if ch.condition == xmpp.SeeOtherHost {
			switch {
			case hostBad:
				ch.condition = "" // see_other_host is wrong: reported there
			case host == "":
				if !asked[ch.at] {
					asked[ch.at] = true
					d.missingSeeOtherHost(ch.at, a["see_other_host"])
				}
				ch.condition = ""
			default:
				redirects = true
			}
		}
		o := policy.Override{Condition: ch.condition, Text: ch.text}
		if o.Condition == policy.Defaults[ev].Condition {
			o.Condition = ""
		}
		if o == (policy.Override{}) {
			continue
		}
		if cfg.Overrides == nil {
			cfg.Overrides = map[policy.Event]policy.Override{}
		}
		cfg.Overrides[ev] = o
	}
	if at := a["see_other_host"]; host != "" && !redirects {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Unused see_other_host",
			Detail: fmt.Sprintf(`No event answers with see-other-host, so Guard never sends %q. `+
				`Set overload or shutdown to "see-other-host", or remove see_other_host.`, host),
			Subject: at.Expr.Range().Ptr(),
			Context: at.Range.Ptr(),
		})
	}

	// config's checks above should leave nothing for policy.New to reject;
	// if they do not, the two disagree, and the policy block says so.
	if _, err := policy.New(cfg); err != nil {
		d.errorf(b.DefRange, nil, "Invalid policy", err.Error()+".")
	}
	return cfg
}

// missingSeeOtherHost reports, at the attribute at (a group attribute or an
// event's condition), that see-other-host needs see_other_host.
func (d *decoder) missingSeeOtherHost(at, host *hcl.Attribute) {
	if at == nil {
		return // cannot happen: the default conditions are not see-other-host
	}
	detail := `see-other-host sends the client to another node, but the policy block does not say which. ` +
		`Add see_other_host = "DOMAIN[:PORT]" to it, e.g. see_other_host = "xmpp2.example.net:5222".`
	if host != nil {
		detail = `see-other-host sends the client to another node, but see_other_host is empty. ` +
			`Set it to DOMAIN[:PORT], e.g. see_other_host = "xmpp2.example.net:5222".`
	}
	d.errorf(at.Expr.Range(), &at.Range, "Missing see_other_host", detail)
}

// eventName returns the event an event block names, reporting an unknown
// one at its label.
func (d *decoder) eventName(b *hcl.Block) (policy.Event, bool) {
	name := b.Labels[0]
	events := policy.Events()
	if slices.Contains(events, name) {
		return policy.Event(name), true
	}
	detail := fmt.Sprintf("%q is not an event.", name)
	if s := suggest(name, events); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	detail += " The events are " + quoteList(events) + "."
	d.errorf(b.LabelRanges[0], &b.DefRange, "Unknown event", detail)
	return "", false
}

// condition returns the value of a, a stream error condition of RFC 6120.
// ok is false when a is absent or invalid (reported).
func (d *decoder) condition(a *hcl.Attribute) (c xmpp.Condition, ok bool) {
	s, ok := d.value(a, string(xmpp.RemoteConnectionFailed))
	if !ok {
		return "", false
	}
	if c, ok := xmpp.ParseCondition(s); ok {
		return c, true
	}
	var names []string
	for _, c := range xmpp.Conditions() {
		names = append(names, string(c))
	}
	detail := fmt.Sprintf("%q is not a stream error condition of RFC 6120.", s)
	if sug := suggest(s, names); sug != "" {
		detail += fmt.Sprintf(" Did you mean %q?", sug)
	}
	detail += " Use one of " + quoteList(names) + ", or leave condition out to keep the event's default."
	d.errorf(a.Expr.Range(), &a.Range, "Unknown condition", detail)
	return "", false
}

// text returns the value of a, the text of a stream error, which must
// consist of characters XML allows. ok is false when a is absent or invalid.
func (d *decoder) text(a *hcl.Attribute) (s string, ok bool) {
	s, ok = d.value(a, "node down")
	if !ok {
		return "", false
	}
	for i, r := range s {
		if !xmlChar(r) || r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			d.errorf(a.Expr.Range(), &a.Range, "Invalid text",
				fmt.Sprintf(`The text holds %U at byte %d, which XML does not allow, so no stream error could carry it. `+
					`Remove it; "" sends no text.`, r, i))
			return "", false
		}
	}
	return s, true
}

// xmlChar reports whether XML 1.0 allows r in character data.
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// seeOtherHost returns the value of a, DOMAIN or DOMAIN:PORT, or "". bad is
// true when a was given but is invalid (reported), so that the checks that
// need it do not report its absence as well.
func (d *decoder) seeOtherHost(a *hcl.Attribute) (host string, bad bool) {
	const example = "xmpp2.example.net:5222"
	n := len(d.diags)
	s, ok := d.value(a, example)
	if !ok {
		return "", len(d.diags) > n
	}
	if s == "" {
		return "", false
	}
	fail := func(why string) (string, bool) {
		d.errorf(a.Expr.Range(), &a.Range, "Invalid see_other_host",
			fmt.Sprintf(`%q is not DOMAIN or DOMAIN:PORT: %s. Name another node that serves the same XMPP domain, `+
				`e.g. "xmpp2.example.net" or %q.`, s, why, example))
		return "", true
	}
	if strings.Contains(s, "://") {
		return fail("write no scheme, only the domain and the port")
	}
	domain := s
	if strings.Contains(s, ":") {
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			if ae, ok := err.(*net.AddrError); ok {
				return fail(ae.Err)
			}
			return fail(err.Error())
		}
		p, err := strconv.Atoi(port)
		if err != nil || strings.ContainsAny(port, "+-") || p < 1 || p > 65535 {
			return fail(fmt.Sprintf("the port %q is not a number from 1 to 65535", port))
		}
		domain = h
	}
	if net.ParseIP(domain) != nil {
		return fail(fmt.Sprintf("%q is an IP address; the client must verify the other node's certificate for the "+
			"XMPP domain, so name the node by domain", domain))
	}
	if why := checkDomain(domain); why != "" {
		return fail(why)
	}
	return s, false
}

// checkDomain returns why s is not a DNS domain name, or "".
func checkDomain(s string) string {
	if s == "" {
		return "the domain is missing"
	}
	if len(s) > 253 {
		return "the domain is longer than 253 characters"
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "the domain has an empty label (two dots in a row, or a dot at an end)"
		case len(l) > 63:
			return fmt.Sprintf("the label %q is longer than 63 characters", l)
		case strings.Map(domainRune, l) != l:
			return fmt.Sprintf(`the label %q holds characters other than letters, digits and "-" (write a non-ASCII domain in its xn-- form)`, l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Sprintf(`the label %q starts or ends with "-"`, l)
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return fmt.Sprintf("the last label, %q, is all digits, which no domain's is", last)
	}
	return ""
}

// domainRune maps r to itself if a DNS label may hold it, else to -1.
func domainRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
		return r
	}
	return -1
}
