package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// deep returns a message whose body is nested n elements deep (the message
// at depth 1).
func deep(n int) string {
	return "<message to='a@localhost'>" + strings.Repeat("<x xmlns='urn:deep'>", n-2) + "<body>deep</body>" +
		strings.Repeat("</x>", n-2) + "</message>"
}

// writeChunks writes s in pieces of n bytes, so that the tokenizer sees
// the stanza across many reads.
func writeChunks(t *testing.T, c interface{ Write([]byte) (int, error) }, s string, n int) {
	t.Helper()
	for len(s) > 0 {
		k := min(n, len(s))
		if _, err := c.Write([]byte(s[:k])); err != nil {
			t.Fatal(err)
		}
		s = s[k:]
		time.Sleep(time.Millisecond)
	}
}

// XMPP servers bound a stanza's size, not its depth: a stanza nested 500
// deep, well within max_stanza_size, passes byte for byte by default,
// whether it comes in one read or in many.
func TestDeepStanzaPasses(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{})
	c, bc := openStream(t, b, addr)
	stanza := deep(500)
	write(t, c, stanza)
	expect(t, bc, stanza)
	writeChunks(t, c, stanza, 97)
	expect(t, bc, stanza)
	write(t, c, message)
	expect(t, bc, message)
	write(t, c, streamEnd)
	expect(t, bc, streamEnd)
	write(t, bc, streamEnd)
	expectEOF(t, c, streamEnd)
	c.Close()
	bc.Close()
	waitOpen(t, s, 0)
}

// limits { max_depth = 64 }: a stanza at 64 passes, one at 65 ends the
// stream with policy-violation and a text that names the limit; the
// backend sees nothing of it.
func TestMaxDepth(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, b.addr(), ListenerConfig{XMLLimits: XMLLimits{MaxDepth: 64}})
	c, bc := openStream(t, b, addr)
	write(t, c, deep(64))
	expect(t, bc, deep(64))
	write(t, c, deep(65))
	expectStreamError(t, c, "", false, "", "policy-violation", "element nesting exceeds max_depth (64)")
	expectEOF(t, bc, streamEnd)
	bc.Close()
	waitOpen(t, s, 0)
}

// An element with an attribute twice is not well-formed (XML 1.0, Unique
// Att Spec): Guard refuses it with not-well-formed before any of it is
// forwarded, in a top-level element or deep in one, whether the tag comes
// in one read or split across reads, among a few attributes or many.
func TestDuplicateAttributeRefused(t *testing.T) {
	leakcheck.Check(t)
	var many strings.Builder
	for i := range 40 {
		fmt.Fprintf(&many, " a%d='%d'", i, i)
	}
	tests := []struct {
		name, stanza, attr string
		chunk              int // 0: one write
	}{
		{"top-level", "<message to='a@localhost' type='chat' to='b@localhost'><body>x</body></message>", "to", 0},
		{"nested", "<iq type='set' id='1'><query xmlns='jabber:iq:roster'><item jid='a@localhost' name='A' jid='b@localhost'/></query></iq>", "jid", 0},
		{"prefixed", "<message xml:lang='en' id='x' xml:lang='de'/>", "xml:lang", 0},
		{"split across reads", "<message to='a@localhost' type='chat' id='1' to='b@localhost'><body>x</body></message>", "to", 3},
		{"among many", "<message" + many.String() + " a31='again'/>", "a31", 0},
		{"among many, split", "<message" + many.String() + " a31='again'/>", "a31", 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			s, addr := startGuard(t, b.addr(), ListenerConfig{})
			c, bc := openStream(t, b, addr)
			write(t, c, message) // a good stanza first: it is delivered
			expect(t, bc, message)
			if tt.chunk == 0 {
				write(t, c, tt.stanza)
			} else {
				writeChunks(t, c, tt.stanza, tt.chunk)
			}
			expectStreamError(t, c, "", false, "", "not-well-formed", "duplicate attribute "+tt.attr)
			// Nothing of the stanza reached the backend: only the end of
			// the stream.
			expectEOF(t, bc, streamEnd)
			bc.Close()
			waitOpen(t, s, 0)
		})
	}
}
