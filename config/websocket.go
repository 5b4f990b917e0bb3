package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/guard-xmpp/guard/proxy"
	"github.com/hashicorp/hcl/v2"
)

// This file decodes a listener's websocket block: XMPP over WebSocket
// (RFC 7395) at path, for browsers of the allowed origins, behind the
// trusted reverse proxies.

var websocketSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "path"}, {Name: "allowed_origins"}, {Name: "trusted_proxies"}},
}

const exampleOrigins = `["https://chat.example.net"]`

// websocket decodes a websocket block.
func (d *decoder) websocket(b *hcl.Block) *proxy.WebSocket {
	a := d.content(b.Body, websocketSchema, "A websocket block").Attributes
	ws := &proxy.WebSocket{Path: d.str(a["path"], proxy.DefaultWebSocketPath, proxy.DefaultWebSocketPath)}
	if at := a["path"]; at != nil && !d.reported(at) && !strings.HasPrefix(ws.Path, "/") {
		d.errorf(at.Expr.Range(), &at.Range, "Invalid path",
			fmt.Sprintf("The path of the WebSocket endpoint starts with a slash, e.g. path = %s.", hclString("/"+ws.Path)))
		d.withFix("path = " + hclString("/"+ws.Path))
	}
	if at := a["allowed_origins"]; at != nil {
		list, pos, _ := d.list(at, exampleOrigins)
		for i, o := range list {
			if why := originWhy(o); why != "" {
				d.errorf(pos[i], &at.Range, "Invalid origin",
					fmt.Sprintf("%s An origin is a browser page's scheme, host and port, e.g. allowed_origins = %s; \"*\" allows any.", why, exampleOrigins))
				continue
			}
			ws.AllowedOrigins = append(ws.AllowedOrigins, strings.TrimSuffix(o, "/"))
		}
	}
	for _, e := range d.prefixes(a["trusted_proxies"], exampleTrusted, "Invalid trusted proxy",
		"List the reverse proxy's addresses, e.g. trusted_proxies = %s.") {
		ws.TrustedProxies = append(ws.TrustedProxies, e.prefix)
	}
	return ws
}

// originWhy says why o is not an origin, or "".
func originWhy(o string) string {
	if o == "*" {
		return ""
	}
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Host == "":
		return fmt.Sprintf("%q is not scheme://host.", o)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q: an origin's scheme is http or https.", o)
	case strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Sprintf("%q has more than a scheme, host and port: an origin has no path, query or user.", o)
	}
	return ""
}

// websocketTLS checks a WebSocket listener's TLS: ws:// (mode "none") or
// wss:// (mode "direct", where browsers ask for ALPN http/1.1).
func (d *decoder) websocketTLS(b *hcl.Block, t *decoded[TLS]) {
	switch t.value.Mode {
	case proxy.TLSNone:
	case proxy.TLSDirect:
		if t.attrs["alpn"] == nil {
			t.value.ALPN = []string{"http/1.1"}
		}
	default:
		at := b.DefRange
		if m := t.attrs["mode"]; m != nil {
			at = m.Expr.Range()
		}
		d.errorf(at, &b.DefRange, "TLS mode for a WebSocket listener",
			fmt.Sprintf(`A WebSocket listener speaks TLS from the first byte (wss://, mode = "direct") or not at all (ws://, mode = "none"); mode = %q cannot carry WebSocket. Set mode = "direct".`, t.value.Mode))
		d.withFix(`mode = "direct"`)
	}
}

// seeOtherURI decodes the policy's see_other_uri: a ws:// or wss:// URI.
func (d *decoder) seeOtherURI(a *hcl.Attribute) string {
	const example = "wss://xmpp2.example.net/xmpp-websocket"
	s, ok := d.value(a, example)
	if !ok || s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || strings.ContainsAny(s, "'\"<>&") {
		d.errorf(a.Expr.Range(), &a.Range, "Invalid see_other_uri",
			fmt.Sprintf("%q is not a ws:// or wss:// URI of another node's WebSocket endpoint, e.g. see_other_uri = %q.", s, example))
		return ""
	}
	return s
}
