package config

import (
	"fmt"

	"github.com/guard-xmpp/guard/proxy"
	"github.com/hashicorp/hcl/v2"
)

// This file decodes what makes a listener take server-to-server streams
// (federation): its stream attribute, the TLS modes that keep the remote
// server's TLS its own, and the per-domain limits.

var streamKinds = []proxy.StreamKind{proxy.StreamClient, proxy.StreamServer}

// checkStream checks a listener's blocks against its stream kind k (the
// stream attribute a): an s2s listener takes no websocket block, and Guard
// does not terminate its TLS (TLS mode "none", where STARTTLS passes
// through to the backend, or "passthrough" for Direct TLS).
func (d *decoder) checkStream(b *hcl.Block, a *hcl.Attribute, k proxy.StreamKind, blocks hcl.Blocks, t decoded[TLS]) {
	if k != proxy.StreamServer {
		return
	}
	if wb := blocks.OfType("websocket"); len(wb) > 0 {
		d.errorf(wb[0].DefRange, &b.DefRange, "WebSocket on an s2s listener",
			`Servers federate over TCP (port 5269), not WebSocket. Remove the websocket block, or set stream = "client" for web clients.`)
	}
	switch t.value.Mode {
	case proxy.TLSNone, proxy.TLSPassthrough:
	default:
		at := a.Expr.Range()
		if m := t.attrs["mode"]; m != nil {
			at = m.Expr.Range()
		}
		d.errorf(at, &b.DefRange, "TLS mode for an s2s listener",
			fmt.Sprintf(`Guard keeps a remote server's TLS end to end, so that the backend sees its certificate (SASL EXTERNAL) and dialback works; mode = %q would terminate it. Set mode = "none" (STARTTLS passes through to the backend) or mode = "passthrough" (Direct TLS).`, t.value.Mode))
	}
}

// domainLimitsOnClient warns about per-domain limits in the limits block
// lb of a listener that takes client streams, where they do nothing.
func (d *decoder) domainLimitsOnClient(lb *hcl.Block) {
	attrs, _ := lb.Body.JustAttributes()
	for _, name := range []string{"max_streams_per_domain", "stream_rate_per_domain", "stream_burst_per_domain"} {
		if at := attrs[name]; at != nil {
			d.warnf(at.Range, &lb.DefRange, "Unused "+name,
				fmt.Sprintf(`%s limits the streams of a remote server's domain, on a listener with stream = "server"; this one takes client streams, where it has no effect. Remove it, or set stream = "server".`, name))
		}
	}
}
