package xmpp

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// genStanza writes a random well-formed element of depth at most depth:
// prefixed and non-ASCII names, both quote styles, references, CDATA and
// multi-byte text.
func genStanza(r *rand.Rand, b *strings.Builder, depth int) {
	names := []string{"message", "body", "x:item", "presence", "é", "a-b.c_d", "q1", "stream:features", "日本"}
	name := names[r.IntN(len(names))]
	b.WriteString("<" + name)
	if strings.Contains(name, ":") {
		b.WriteString(" xmlns:" + name[:strings.IndexByte(name, ':')] + "='urn:x'")
	}
	for i := r.IntN(4); i > 0; i-- {
		attr := []string{"to", "from", "id", "xml:lang", "type"}[i]
		q := []string{"'", `"`}[r.IntN(2)]
		b.WriteString([]string{" ", "\n\t", "  "}[r.IntN(3)] + attr + []string{"=", " = "}[r.IntN(2)] + q)
		b.WriteString(genText(r, q))
		b.WriteString(q)
	}
	if depth == 0 || r.IntN(4) == 0 {
		b.WriteString([]string{"/>", " />"}[r.IntN(2)])
		return
	}
	b.WriteString(">")
	for i := r.IntN(4); i > 0; i-- {
		switch r.IntN(3) {
		case 0:
			genStanza(r, b, depth-1)
		case 1:
			b.WriteString(genText(r, ""))
		default:
			b.WriteString("<![CDATA[" + strings.ReplaceAll(genText(r, ""), "&", "<&>") + "]]]>")
		}
	}
	b.WriteString("</" + name + []string{">", " >", "\n>"}[r.IntN(3)])
}

// genText returns character data without quote q.
func genText(r *rand.Rand, q string) string {
	pieces := []string{"hi", " ", "&lt;", "&gt;", "&amp;", "&quot;", "&apos;", "&#65;", "&#x1F600;", "ça", "日本語", "😀", "]", ">", "\t", "\r\n", "'", `"`, "\u007f", "\uFFFD"}
	var b strings.Builder
	for i := r.IntN(8); i > 0; i-- {
		p := pieces[r.IntN(len(pieces))]
		if p == q {
			continue
		}
		b.WriteString(p)
	}
	// "]]>" must not appear in character data.
	return strings.ReplaceAll(b.String(), "]>", "] >")
}

// TestGenerated checks that random well-formed stanzas are accepted whole in
// every chunking, and that encoding/xml agrees they are well-formed.
func TestGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		genStanza(r, &b, 5)
		elem := b.String()
		if err := xmlParse(elem); err != nil && !nameTableDiff(elem, err) {
			t.Fatalf("generator produced bad XML %q: %v", elem, err)
		}
		for name, ch := range map[string]chunker{"whole": whole, "bytes": byteByByte, "random": randomSplits(uint64(i))} {
			units, err := tokenize(t, NewTokenizer(0), []byte(hdr+elem+" "), ch)
			if err != nil || kinds(units) != "header element space" || units[1].data != elem {
				t.Fatalf("%s: %q: %v %v", name, elem, units, err)
			}
		}
	}
}
